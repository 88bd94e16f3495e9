#!/usr/bin/env bash
# Builds walproof's contracts, runs their tests with forge's gas report, and exports the
# artifacts the Rust side compiles its sol! bindings from: contracts/artifacts/<Name>.json =
# {"abi": …, "bytecode": {"object": "0x…"}}, pretty-printed with sorted keys.
#
#   bash contracts/build.sh           build, test, export the artifacts
#   bash contracts/build.sh --check   build, test, and fail if a checked-in artifact is not
#                                     what the fresh build gives (nothing is written)
#
# forge: $WALPROOF_FORGE_BIN, else the npm copy deploy/stack.sh caches. Offline throughout
# (tools/solc wraps the npm solc; see foundry.toml).
set -euo pipefail

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: bash contracts/build.sh [--check]" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")"
forge="${WALPROOF_FORGE_BIN:-/var/cache/walproof/npm/node_modules/@foundry-rs/forge-linux-amd64/bin/forge}"
if [[ ! -x "$forge" ]]; then
  echo "build.sh: no forge at $forge (run \`bash deploy/stack.sh up\`, or set WALPROOF_FORGE_BIN)" >&2
  exit 1
fi

# Contracts the Rust side binds, as <source file>:<contract>; a missing source is skipped.
contracts=(
  Bridge.sol:Bridge
  KeyRegistry.sol:KeyRegistry
  verifiers/DevAttestationVerifier.sol:DevAttestationVerifier
  verifiers/ConfidentialSpaceVerifier.sol:ConfidentialSpaceVerifier
  TestToken.sol:TestToken
)

echo "==> forge build ($("$forge" --version | head -n 1))"
"$forge" build

echo "==> forge test --offline --gas-report"
"$forge" test --offline --gas-report

if $check; then
  dest="$(mktemp -d)"
  trap 'rm -rf "$dest"' EXIT
  echo "==> checking contracts/artifacts against the fresh build"
else
  dest=artifacts
  mkdir -p "$dest"
  echo "==> exporting contracts/artifacts"
fi

exported=()
for entry in "${contracts[@]}"; do
  source="src/${entry%%:*}"
  name="${entry##*:}"
  if [[ ! -f "$source" ]]; then
    echo "    skip $name ($source does not exist)"
    continue
  fi
  # forge keeps one output per source file name: out/<file>.sol/<Name>.json
  python3 - "out/$(basename "$source")/$name.json" "$dest/$name.json" <<'EOF'
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as f:
    out = json.load(f)
bytecode = out["bytecode"]
if bytecode.get("linkReferences"):
    sys.exit(f"{src}: the bytecode needs linked libraries, which the bindings cannot link")
if not bytecode["object"].startswith("0x") or len(bytecode["object"]) <= 2:
    sys.exit(f"{src}: no bytecode")
artifact = {"abi": out["abi"], "bytecode": {"object": bytecode["object"]}}
with open(dst, "w", encoding="utf-8") as f:
    json.dump(artifact, f, indent=2, sort_keys=True)
    f.write("\n")
EOF
  exported+=("$name")
  $check || echo "    artifacts/$name.json"
done

if $check; then
  stale=0
  for name in "${exported[@]}"; do
    if [[ ! -f "artifacts/$name.json" ]]; then
      echo "    contracts/artifacts/$name.json is missing" >&2
      stale=1
    elif ! cmp -s "$dest/$name.json" "artifacts/$name.json"; then
      echo "    contracts/artifacts/$name.json differs from the fresh build" >&2
      stale=1
    else
      echo "    artifacts/$name.json is current"
    fi
  done
  if [[ $stale -ne 0 ]]; then
    echo "build.sh --check: artifacts are stale; run \`bash contracts/build.sh\` and commit them" >&2
    exit 1
  fi
fi
echo "==> done"
