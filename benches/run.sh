#!/usr/bin/env bash
# walproof's benchmarks, in one command:
#
#   bash benches/run.sh [decoder] [flags]   the decoder vs pg_recvlogical (the default)
#   bash benches/run.sh snapshot [flags]    the initial snapshot vs COPY … TO of the same table
#   bash benches/run.sh committer [flags]   the committer's apply path vs SHA-256 and stock monotree
#   bash benches/run.sh validator [flags]   source commit to root attestation at a steady 1k and 5k tx/s
#   bash benches/run.sh [snapshot] --help   every knob of a benchmark
#
# Loads the local stack's settings (.stack/env; start the stack with `bash deploy/stack.sh up`),
# builds the release `walproof` binary and the benchmark, and runs it. Each prints figures and
# ratios against a baseline measured in the same run; it fails only when something does not
# work, never on speed.
set -euo pipefail

benchmark=decoder_vs_recvlogical
case "${1:-}" in
    decoder) shift ;;
    snapshot) benchmark=snapshot_vs_copy; shift ;;
    committer) benchmark=committer_apply; shift ;;
    validator) benchmark=validator_latency; shift ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ "$benchmark" == committer_apply ]]; then
    # In process, no services: the committer's state and trees only.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${WALPROOF_CACHE_DIR:-/var/cache/walproof}/target}"
    echo "==> building the committer benchmark into $CARGO_TARGET_DIR (a few minutes the first time)"
    cargo build --release --locked -p walproof-benches --bin "$benchmark"
    echo "==> running the benchmark (built from $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
    exec "$CARGO_TARGET_DIR/release/$benchmark" "$@"
fi

env_file="${WALPROOF_STACK_ENV:-$root/.stack/env}"
if [[ ! -f "$env_file" ]]; then
    echo "benches/run.sh: $env_file is missing: start the local stack with 'bash deploy/stack.sh up'" >&2
    exit 1
fi
echo "==> loading the stack's settings from $env_file"
# Variables already set in the environment win over the file (as in walproof-testkit).
while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    key="${key#export }"
    [[ -z "${!key:-}" ]] && export "$key=$value"
done < "$env_file"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${WALPROOF_CACHE_DIR:-/var/cache/walproof}/target}"
echo "==> building the release walproof binary and the benchmark ($benchmark) into $CARGO_TARGET_DIR (a few minutes the first time)"
cargo build --release --locked -p walproof -p walproof-benches --bin walproof --bin "$benchmark"

revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD -- crates 2>/dev/null; then revision="$revision + uncommitted changes in crates/"; fi
echo "==> running the benchmark (walproof built from $revision)"
exec "$CARGO_TARGET_DIR/release/$benchmark" \
    --walproof-bin "$CARGO_TARGET_DIR/release/walproof" "$@"
