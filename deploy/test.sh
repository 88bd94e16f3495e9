#!/usr/bin/env bash
# The whole walproof test suite, from a fresh machine: installs what is missing, brings the
# local stack of real services up (deploy/stack.sh), then runs every test.
#
#   bash deploy/test.sh            # everything
#   bash deploy/test.sh -E 'test(kafka)'   # extra arguments go to cargo nextest
#
# Slow builds are cached outside the repository: the cargo target dir defaults to
# $WALPROOF_CACHE_DIR/target (WALPROOF_CACHE_DIR defaults to /var/cache/walproof).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${WALPROOF_CACHE_DIR:-/var/cache/walproof}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cd "$repo"

step() { printf '==> %s\n' "$*"; }
elapsed() { printf '%ss' "$((SECONDS - ${1}))"; }

started=$SECONDS
mkdir -p "$cache"

# Toolchain: the machine's Rust (rustup cannot download here); C compiler and make build the
# bundled librdkafka.
if ! command -v cargo >/dev/null; then
  echo "!! cargo not found: walproof needs a Rust toolchain (1.85 or newer) on PATH" >&2
  exit 1
fi
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v make >/dev/null || missing+=(make)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  step "installing ${missing[*]} from apt"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest from crates.io (once, into ~/.cargo/bin)"
  cargo install cargo-nextest --locked
fi

step "bringing the local stack up"
bash deploy/stack.sh up

step "checking formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "hash vectors, second implementation (python)"
python3 crates/core/testdata/verify_vectors.py
step "proof vectors, second implementation (python)"
python3 crates/committer/testdata/verify_proofs.py

step "contracts: forge build, forge test with the gas report, artifacts current (contracts/build.sh --check)"
bash contracts/build.sh --check

step "fuzzing the pgoutput parser for ${WALPROOF_FUZZ_SECONDS:-20} s (cargo-fuzz)"
if ! CARGO_TARGET_DIR="$cache/fuzz-target" bash crates/source/fuzz/run.sh "${WALPROOF_FUZZ_SECONDS:-20}" >"$cache/fuzz.log" 2>&1; then
  tail -n 60 "$cache/fuzz.log"
  echo "!! the fuzzer found a failing input; full log in $cache/fuzz.log" >&2
  exit 1
fi
grep -E '^Done [0-9]+ runs' "$cache/fuzz.log"

step "building workspace and tests into $CARGO_TARGET_DIR"
build_started=$SECONDS
cargo build --workspace --all-targets --locked
step "build took $(elapsed "$build_started")"

step "lints (cargo clippy, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "running tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast "$@"
step "all tests passed in $(elapsed "$started")"
