#!/usr/bin/env bash
# Fuzzes walproof-source's pgoutput parser for a number of seconds (default 30).
#
#   bash crates/source/fuzz/run.sh [SECONDS] [TARGET]
#
# Installs cargo-fuzz when missing. Builds under $CARGO_TARGET_DIR/fuzz (else
# ~/.cache/walproof-fuzz-target): out of the repository, and in its own directory so the
# sanitizer build neither waits on nor invalidates the workspace's build lock and artifacts.
# The corpus and any crash artifacts stay in crates/source/fuzz/{corpus,artifacts} (git-ignored).
set -euo pipefail

seconds="${1:-30}"
target="${2:-parse_message}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-${HOME}/.cache/walproof-fuzz-target}/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    # Its own build must not land in (or lock) the shared target directory.
    env -u CARGO_TARGET_DIR cargo install --locked cargo-fuzz
fi

# cargo-fuzz passes nightly-only flags (-Z sanitizer, sancov passes); the stable toolchain
# accepts them with RUSTC_BOOTSTRAP.
cd "${fuzz_dir}/.."
RUSTC_BOOTSTRAP=1 exec cargo fuzz run "${target}" --target-dir "${target_dir}" \
    -- -max_total_time="${seconds}"
