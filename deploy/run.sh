#!/usr/bin/env bash
# deploy/run.sh — the main job in one command: the whole walproof pipeline on the local stack,
# fed by a sample workload, shown working. Ctrl-C (or SIGTERM) stops the workload, then walproof,
# cleanly.
#
#   bash deploy/run.sh
#
# What it does, saying so as it goes:
#   1. brings the local stack up (deploy/stack.sh up: Postgres, the tansu Kafka broker, …);
#   2. builds walproof, dev profile, into $CARGO_TARGET_DIR (default $WALPROOF_CACHE_DIR/target,
#      the build deploy/test.sh makes, so after the tests little or nothing is rebuilt; the demo's
#      few transactions a second need no release build);
#   3. recreates the source database walproof_demo (tables accounts and transfers, 20 accounts)
#      and the shadow database walproof_demo_shadow, empty, for the validator;
#   4. generates a development validator key once, $DEMO/validator.key (never printed);
#   5. writes $DEMO/walproof.toml, with a fresh topic prefix per run (demo_<time>): every run
#      starts a new ledger, so the source, the shadow, the committer's store and the archive
#      start afresh too;
#   6. runs `walproof setup`, then `walproof run` (decoder, committer, archiver, validator in one
#      process) in the background, its log in $DEMO/walproof.log;
#   7. drives a workload on the source: transfers between accounts (two updates and an insert
#      per transaction), new accounts, old transfers deleted; about $WALPROOF_DEMO_RATE
#      transactions a second;
#   8. every $WALPROOF_DEMO_INTERVAL seconds prints what happened: the latest root (committer),
#      the validator's status and its signed attestations, the archive's Parquet files, the
#      proof of an account row at the root the validator signed, checked with `walproof verify`,
#      and the bridge on anvil: the last root the relayer committed and the withdrawals paid.
#
# The chain part: the contracts are deployed to the stack's anvil (`walproof chain deploy`,
# threshold 1, funded with 100 ETH), the validator's key is attested by a development attester
# and registered (`walproof keys attest --provider dev`, `walproof keys register`), and
# `walproof run` includes the relayer. Every 20th transaction of the workload also inserts a
# withdrawal row (0.01 ETH to a demo recipient) into public.walproof_withdrawals.
#
# $DEMO is $WALPROOF_STATE_DIR/demo (default .stack/demo); it is kept after a stop, to look at.
# Overrides: WALPROOF_STATE_DIR, WALPROOF_CACHE_DIR, CARGO_TARGET_DIR, WALPROOF_DEMO_RATE (4),
# WALPROOF_DEMO_INTERVAL (5). Uses the HTTP ports 9187 (decoder metrics), 9188 (committer proofs)
# and 9189 (validator) on 127.0.0.1. Must run as root, like deploy/stack.sh.
set -euo pipefail
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$(realpath -m "${WALPROOF_STATE_DIR:-$REPO/.stack}")
CACHE=$(realpath -m "${WALPROOF_CACHE_DIR:-/var/cache/walproof}")
DEMO=$STATE/demo
RATE=${WALPROOF_DEMO_RATE:-4}
INTERVAL=${WALPROOF_DEMO_INTERVAL:-5}
CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$CACHE/target}")
export CARGO_TARGET_DIR
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

SOURCE_DB=walproof_demo
SHADOW_DB=walproof_demo_shadow
SLOT=walproof_demo
PUBLICATION=walproof_demo
METRICS=127.0.0.1:9187
PROOFS=127.0.0.1:9188
VALIDATOR=127.0.0.1:9189
RELAYER=127.0.0.1:9190

say() { echo "==> $*"; }
die() { echo "!! $*" >&2; exit 1; }
cd "$REPO"

[[ $(id -u) == 0 ]] || die "run as root (deploy/stack.sh installs packages and runs Postgres as its user)"
command -v cargo >/dev/null || die "cargo not found: walproof needs a Rust toolchain (1.85 or newer) on PATH"

# One demo at a time per state directory: it owns the demo databases, the ports and $DEMO.
mkdir -p "$DEMO"
exec 9>"$DEMO/.lock"
# (A few seconds' grace: short-lived children of a run just killed may still hold it.)
flock -w 10 9 || die "another deploy/run.sh is running with $DEMO (lock $DEMO/.lock)"

alive() {  # alive PID: exists and is not a zombie (an exited child stays one until reaped)
    local state
    [[ $1 =~ ^[0-9]+$ ]] && read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" && [[ $state != Z ]]
}

# A previous run killed before it could clean up (kill -9) may have left its walproof or its
# workload running, in sessions of their own: stop those, by the pids it recorded.
stop_leftover() {  # stop_leftover PIDFILE EXE-NAME
    local pid i
    pid=$(head -n1 "$1" 2>/dev/null) || return 0
    if alive "$pid" && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *"$2"* ]]; then
        say "stopping the $2 a previous run left behind (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$1"
}
stop_leftover "$DEMO/walproof.pid" walproof
stop_leftover "$DEMO/workload.pid" psql

# ---------------------------------------------------------------- the stack and the build
say "bringing the local stack up (deploy/stack.sh up)"
bash deploy/stack.sh up
set -a
# shellcheck disable=SC1091
. "$STATE/env"
set +a

missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v make >/dev/null || missing+=(make)
command -v psql >/dev/null || missing+=(postgresql-client)
if ((${#missing[@]})); then
    say "installing ${missing[*]} from apt"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

say "building walproof (cargo build -p walproof, dev profile, into $CARGO_TARGET_DIR)"
cargo build -p walproof --locked
BIN=$CARGO_TARGET_DIR/debug/walproof
[[ -x $BIN ]] || die "no walproof binary at $BIN after the build"

# ---------------------------------------------------------------- the demo databases
ADMIN_URL=$WALPROOF_PG_URL # the stack's maintenance database (the WALPROOF_* variables go later)
BASE_URL=${ADMIN_URL%/*}
SOURCE_URL=$BASE_URL/$SOURCE_DB
SHADOW_URL=$BASE_URL/$SHADOW_DB
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

say "recreating the source database $SOURCE_DB and the shadow database $SHADOW_DB"
# A slot pins its database: drop the demo's slots first (ending their walsender, if any).
for ((i = 0; ; i++)); do
    left=$(sql -tA "$WALPROOF_PG_URL" 2>/dev/null <<SQL | tail -n1
SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
 WHERE database = '$SOURCE_DB' AND active_pid IS NOT NULL;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE database = '$SOURCE_DB' AND NOT active;
SELECT count(*) FROM pg_replication_slots WHERE database = '$SOURCE_DB';
SQL
    ) || left=
    [[ $left == 0 ]] && break
    ((i < 50)) || die "could not drop the replication slots of $SOURCE_DB (is Postgres up?)"
    sleep 0.2
done
sql "$WALPROOF_PG_URL" <<SQL
DROP DATABASE IF EXISTS $SOURCE_DB WITH (FORCE);
DROP DATABASE IF EXISTS $SHADOW_DB WITH (FORCE);
CREATE DATABASE $SOURCE_DB;
CREATE DATABASE $SHADOW_DB;
SQL
sql "$SOURCE_URL" <<'SQL'
CREATE TABLE accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner      text NOT NULL,
    email      text NOT NULL UNIQUE,
    balance    numeric(12, 2) NOT NULL DEFAULT 0,
    currency   char(3) NOT NULL DEFAULT 'EUR',
    active     boolean NOT NULL DEFAULT true,
    opened_at  timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE transfers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_account bigint NOT NULL REFERENCES accounts,
    to_account   bigint NOT NULL REFERENCES accounts,
    amount       numeric(12, 2) NOT NULL CHECK (amount > 0),
    memo         text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (owner, email, balance)
SELECT (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'])[1 + i % 5] || ' ' || i,
       'customer' || i || '@example.com', 1000
  FROM generate_series(1, 20) AS i;
-- The outbound table: a row is a withdrawal the bridge pays once validators approved it.
CREATE TABLE walproof_withdrawals (
    id        bigint PRIMARY KEY,
    recipient text NOT NULL CHECK (recipient ~ '^0x[0-9a-f]{40}$'),
    amount    numeric(78, 0) NOT NULL CHECK (amount > 0)
);
SQL

# ---------------------------------------------------------------- key and config
KEY=$DEMO/validator.key
if [[ ! -s $KEY ]]; then
    say "generating a development validator key in $KEY (mode 600; for this demo only)"
    (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$KEY" && echo >>"$KEY")
fi

# ---------------------------------------------------------------- the contracts on anvil
new_key() {  # new_key FILE: a random secp256k1 key (hex), once, mode 600
    [[ -s $1 ]] || (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$1" && echo >>"$1")
}
rpc() {  # rpc METHOD PARAMS-JSON: one JSON-RPC call to anvil
    curl -sf --max-time 5 -H 'content-type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "${ETH_RPC:-$WALPROOF_ETH_RPC_URL}"
}
for name in deployer relayer attester recipient; do new_key "$DEMO/$name.key"; done
address_of() { RUST_LOG=error "$BIN" keys address --key-file "$1" | tail -n1; }
DEPLOYER=$(address_of "$DEMO/deployer.key")
RELAYER_ADDRESS=$(address_of "$DEMO/relayer.key")
ATTESTER=$(address_of "$DEMO/attester.key")
RECIPIENT=$(address_of "$DEMO/recipient.key" | tr 'A-F' 'a-f')
say "funding the demo's deployer $DEPLOYER and relayer $RELAYER_ADDRESS on anvil (anvil_setBalance)"
for who in "$DEPLOYER" "$RELAYER_ADDRESS"; do
    rpc anvil_setBalance "[\"$who\", \"0x3635C9ADC5DEA00000\"]" >/dev/null ||
        die "anvil at $WALPROOF_ETH_RPC_URL did not answer anvil_setBalance"
done
eth_balance() {  # eth_balance ADDRESS: wei, as a decimal number
    rpc eth_getBalance "[\"$1\", \"latest\"]" | python3 -c 'import json, sys; print(int(json.load(sys.stdin)["result"], 16))'
}
RECIPIENT_START=$(eth_balance "$RECIPIENT") || die "anvil did not answer eth_getBalance"
DEPLOYMENT=$DEMO/deployment.json
say "deploying the key registry, the development attestation verifier and the bridge (walproof chain deploy)"
RUST_LOG=warn "$BIN" chain deploy --rpc-url "$WALPROOF_ETH_RPC_URL" --deployer-key-file "$DEMO/deployer.key" \
    --attester "$ATTESTER" --threshold 1 --fund-wei 100000000000000000000 --out "$DEPLOYMENT" |
    sed 's/^/    /'
json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
REGISTRY=$(json_field "$DEPLOYMENT" registry)
VERIFIER=$(json_field "$DEPLOYMENT" dev_verifier)
BRIDGE=$(json_field "$DEPLOYMENT" bridge)
say "attesting the validator key (development attester $ATTESTER) and registering it"
RUST_LOG=warn "$BIN" keys attest --provider dev --attester-key-file "$DEMO/attester.key" \
    --key-file "$KEY" --registry "$REGISTRY" --verifier "$VERIFIER" \
    --chain-id "$WALPROOF_ETH_CHAIN_ID" --out "$DEMO/evidence.json" | sed 's/^/    /'
RUST_LOG=warn "$BIN" keys register --rpc-url "$WALPROOF_ETH_RPC_URL" --evidence "$DEMO/evidence.json" \
    --from-key-file "$DEMO/deployer.key" | sed 's/^/    /'

PREFIX=demo_$(date -u +%Y%m%d_%H%M%S)
CONFIG=$DEMO/walproof.toml
rm -rf "$DEMO/committer" "$DEMO/validator" "$DEMO/archive" "$DEMO/proofs"
mkdir -p "$DEMO/proofs"
say "writing $CONFIG (topic prefix $PREFIX)"
cat >"$CONFIG" <<EOF
# written by deploy/run.sh for the demo: the whole pipeline on the local stack
[source]
url = "$SOURCE_URL"
slot = "$SLOT"
publication = "$PUBLICATION"

[kafka]
brokers = "$WALPROOF_KAFKA_BROKERS"
topic_prefix = "$PREFIX"

[decoder]
metrics_addr = "$METRICS"
progress_interval_s = 30

[committer]
state_dir = "$DEMO/committer"
proof_addr = "$PROOFS"

[archive]
dir = "$DEMO/archive"
roll_interval_ms = 10000      # a file per table every 10 s, to watch them appear

[validator]
shadow_url = "$SHADOW_URL"
key_file = "$KEY"
chain_id = $WALPROOF_ETH_CHAIN_ID
audit_interval_ms = 15000
state_dir = "$DEMO/validator"   # its snapshot, written when it stops
http_addr = "$VALIDATOR"
# bridge: from the deployment below

[relayer]
rpc_url = "$WALPROOF_ETH_RPC_URL"
deployment = "$DEPLOYMENT"
sender_key_file = "$DEMO/relayer.key"
batch_interval_ms = 2000
http_addr = "$RELAYER"
EOF
# The file is the demo's only source of settings: no WALPROOF_* variable of the shell or of the
# stack's env file (which walproof would take over the file) changes it.
ETH_RPC=$WALPROOF_ETH_RPC_URL
while read -r name; do unset "$name"; done < <(compgen -e | grep '^WALPROOF_' || true)
export WALPROOF_CONFIG=$CONFIG

say "walproof setup (publication $PUBLICATION, DDL capture, slot $SLOT on $SOURCE_DB)"
# Its report, without the long SQL of DDL capture (kept in setup.txt).
if ! RUST_LOG=warn "$BIN" setup >"$DEMO/setup.txt"; then
    cat "$DEMO/setup.txt"
    die "walproof setup did not get $SOURCE_DB ready (above)"
fi
sed '/^Setup runs:/,$d' "$DEMO/setup.txt"
echo "(the SQL it ran is in $DEMO/setup.txt)"

# ---------------------------------------------------------------- start, stop
WALPROOF_PID=
WORKLOAD_PID=
STOP=$DEMO/workload.stop
LOG=$DEMO/walproof.log
rm -f "$STOP"

stopped=
stop_all() {
    local rc=$? i
    [[ -n $stopped ]] && return
    stopped=1
    trap - INT TERM HUP
    echo
    if [[ -n $WORKLOAD_PID ]]; then
        say "stopping the workload"
        touch "$STOP"
        for ((i = 0; i < 50; i++)); do alive "$WORKLOAD_PID" || break; sleep 0.1; done
        if alive "$WORKLOAD_PID"; then kill "$WORKLOAD_PID" 2>/dev/null || true; fi
        rm -f "$DEMO/workload.pid"
    fi
    if [[ -n $WORKLOAD_PID ]] && alive "$WALPROOF_PID"; then
        # The last transactions through every stage: the validator signs the committer's last root.
        local latest status lsn attested
        for ((i = 0; i < 30; i++)); do
            latest=$(get "http://$PROOFS/roots/latest") && status=$(get "http://$VALIDATOR/status") &&
                lsn=$(field commit_lsn <<<"$latest") && attested=$(field attested_lsn <<<"$status") &&
                [[ -n $lsn && $lsn == "$attested" ]] && break
            lsn=
            sleep 0.5
        done
        if [[ -n $lsn ]]; then
            say "caught up: the validator signed the committer's last root, $(field root <<<"$latest"), of LSN $lsn"
        fi
    fi
    if [[ -n $WALPROOF_PID ]] && alive "$WALPROOF_PID"; then
        say "stopping walproof (SIGTERM to pid $WALPROOF_PID)"
        kill -TERM "$WALPROOF_PID" 2>/dev/null || true
        for ((i = 0; i < 600; i++)); do alive "$WALPROOF_PID" || break; sleep 0.1; done
        if alive "$WALPROOF_PID"; then
            say "walproof still running after 60 s; killing it"
            kill -9 "$WALPROOF_PID" 2>/dev/null || true
        fi
    fi
    if [[ -n $WALPROOF_PID ]]; then
        local code=0
        wait "$WALPROOF_PID" 2>/dev/null || code=$?
        rm -f "$DEMO/walproof.pid"
        if ((code == 0 && rc == 0)); then
            say "walproof stopped cleanly: $(grep -o 'every stage stopped cleanly' "$LOG" | tail -n1)"
        else
            echo "!! walproof exited with status $code; last lines of $LOG:" >&2
            tail -n 20 "$LOG" >&2
            rc=1
        fi
    fi
    if [[ -n $WALPROOF_PID ]] && ! alive "$WALPROOF_PID"; then
        # The next run starts afresh; a slot left behind would keep the stack's Postgres from
        # recycling its WAL for as long as the stack runs.
        say "dropping the demo's replication slot $SLOT"
        sql -tA "$ADMIN_URL" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" >/dev/null 2>&1 ||
            echo "!! could not drop the slot $SLOT: drop it by hand, or it holds the stack's WAL" >&2
    fi
    [[ -n $WALPROOF_PID ]] && cat <<EOF
==> kept in $DEMO:
      walproof.toml   the config   (e.g. $BIN --config $CONFIG roots --last)
      setup.txt       what walproof setup checked and ran
      walproof.log    walproof's log, its lines named by stage
      archive/        the Parquet files ($BIN --config $CONFIG archive ls)
      proofs/         the proofs checked
EOF
    exit "$rc"
}
trap stop_all EXIT
# A stop request is noted and acted on between two looks, never in the middle of one.
STOP_REQUESTED=
trap 'STOP_REQUESTED=1' INT TERM HUP

say "walproof run: decoder, committer, archiver, validator and relayer in one process (log: $LOG)"
# A session of its own: the terminal's Ctrl-C reaches this script, which stops the workload
# first and then walproof, in that order.
setsid "$BIN" run >"$LOG" 2>&1 </dev/null 9>&- &
WALPROOF_PID=$!
echo "$WALPROOF_PID" >"$DEMO/walproof.pid"

get() { curl -sf --max-time 2 "$@"; }
field() {  # field KEY…: a field of the JSON on stdin ("" for null)
    python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key)] if isinstance(value, list) else value[key]
print("" if value is None else value)' "$@"
}
count() { python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'; }
metric() {  # metric URL NAME: a Prometheus sample's value
    get "$1" | awk -v name="$2" '$1 == name { print $2; exit }'
}
check_alive() {  # (on exit, stop_all shows the end of its log)
    alive "$WALPROOF_PID" && return 0
    echo "!! walproof stopped on its own" >&2
    exit 1
}

say "waiting for the initial snapshot's root (GET http://$PROOFS/roots/latest)"
for ((i = 0; ; i++)); do
    check_alive
    get "http://$PROOFS/roots/latest" >/dev/null && break
    ((i < 600)) || { echo "!! no root after 120 s; see $LOG" >&2; exit 1; }
    sleep 0.2
done
grep -E 'walproof run starting|snapshot written|serving|validator key loaded' "$LOG" |
    sed -E 's/^[^ ]+ +//; s/^/    /' || true

# ---------------------------------------------------------------- the workload
workload() {  # one transaction per line, about $RATE a second, until $STOP exists
    local n=20 i=0 a b cents amount
    local names=(Ada Grace Alan Edsger Barbara Donald Margaret Ken Dennis Frances)
    local pause
    pause=$(awk -v rate="$RATE" 'BEGIN { printf "%.3f", 1 / rate }')
    while [[ ! -e $STOP ]]; do
        i=$((i + 1))
        a=$((RANDOM % n + 1))
        b=$((RANDOM % n + 1))
        ((b != a)) || b=$((a % n + 1))
        cents=$((RANDOM % 20000 + 1))
        amount=$((cents / 100)).$(printf '%02d' $((cents % 100)))
        echo "BEGIN; UPDATE accounts SET balance = balance - $amount, updated_at = now() WHERE id = $a;" \
            "UPDATE accounts SET balance = balance + $amount, updated_at = now() WHERE id = $b;" \
            "INSERT INTO transfers (from_account, to_account, amount, memo) VALUES ($a, $b, $amount, 'payment $i'); COMMIT;"
        if ((i % 10 == 0)); then
            n=$((n + 1))
            echo "INSERT INTO accounts (owner, email) VALUES ('${names[RANDOM % ${#names[@]}]} $n', 'customer$n@example.com');"
        fi
        if ((i % 7 == 0)); then
            echo "DELETE FROM transfers WHERE id = (SELECT min(id) FROM transfers);"
        fi
        if ((i % 25 == 0)); then
            echo "UPDATE accounts SET active = NOT active, updated_at = now() WHERE id = $a;"
        fi
        if ((i % 20 == 0)); then  # 0.01 ETH to the demo recipient, paid by the bridge
            echo "INSERT INTO walproof_withdrawals VALUES ($((i / 20)), '$RECIPIENT', 10000000000000000);"
        fi
        sleep "$pause"
    done
}
say "workload: about $RATE transactions/s on $SOURCE_DB (transfers, new accounts, deletes, withdrawals)"
# fd 9 (the lock) closed on both sides: a workload outliving a killed run.sh must not hold it.
workload 9>&- | setsid psql -X -q "$SOURCE_URL" >"$DEMO/workload.log" 2>&1 9>&- &
WORKLOAD_PID=$!
echo "$WORKLOAD_PID" >"$DEMO/workload.pid"

# ---------------------------------------------------------------- showing it
say "every ${INTERVAL} s: roots, the validator, the archive, a proof. Ctrl-C stops."
started=$SECONDS
signed_lsn=
signed_root=
tamper_shown=
tick=0
log_seen=0
show() {
    local now latest root status applied divergence signed new files key proof verdict lines
    now=$((SECONDS - started))
    tick=$((tick + 1))
    printf -- '--- %02d:%02d %s\n' $((now / 60)) $((now % 60)) "$(printf '%.0s-' {1..60})"

    echo "  decoder    $(metric "http://$METRICS/metrics" walproof_decoder_transactions_total) transactions into $PREFIX.ledger"

    latest=$(get "http://$PROOFS/roots/latest") || latest=
    if [[ -n $latest ]]; then
        root=$(field root <<<"$latest")
        echo "  committer  root ${root:0:16}… of LSN $(field commit_lsn <<<"$latest"), $(field keys <<<"$latest") rows (GET /roots/latest)"
    else
        echo "  committer  no root yet"
    fi

    # The attestations signed since the last look; the newest gives the root the proof uses.
    new=$(get "http://$VALIDATOR/attestations${signed_lsn:+?after=$signed_lsn}") || new='[]'
    if [[ $new != '[]' ]]; then
        signed_lsn=$(field -1 commit_lsn <<<"$new")
        signed_root=$(field -1 root <<<"$new")
    fi
    status=$(get "http://$VALIDATOR/status") || status=
    if [[ -n $status ]]; then
        applied=$(field applied_lsn <<<"$status")
        divergence=$(field divergence <<<"$status")
        signed=$(metric "http://$VALIDATOR/metrics" walproof_validator_attestations_total)
        echo "  validator  replayed into $SHADOW_DB up to ${applied:--}; ${signed:-0} roots signed" \
            "(+$(count <<<"$new")), the last of LSN ${signed_lsn:--} (GET /status, /attestations)"
        if [[ -n $divergence ]]; then
            echo "             DIVERGENCE: $divergence"
        else
            echo "             no divergence: each root it recomputed equals the committer's"
        fi
    else
        echo "  validator  not answering yet"
    fi

    files=$("$BIN" archive ls 2>&1) || files="(walproof archive ls failed) $files"
    echo "  archive    $(tail -n1 <<<"$files" | sed 's/^# //') (walproof archive ls)"
    grep -v '^#' <<<"$files" | tail -n 2 |
        awk '{ root = $5 == "-" ? "not published yet at the roll" : substr($5, 1, 16) "…"
               printf "             %-17s %s..%s %4s changes, root %s\n", $1, $2, $3, $4, root }'

    # A row's proof at the root the validator signed, checked offline against that root.
    if [[ -n $signed_root ]]; then
        key=$((tick % 20 + 1))
        proof=$DEMO/proofs/account-$key.json
        if get "http://$PROOFS/proof?table=public.accounts&key=$key&at=$signed_lsn" >"$proof"; then
            echo "  proof      account $key at LSN $signed_lsn (GET /proof), checked against the root the validator signed:"
            if verdict=$("$BIN" verify --root "$signed_root" "$proof" 2>&1); then
                echo "             walproof verify: $verdict"
            else
                echo "             walproof verify FAILED: $verdict"
            fi
            if [[ -z $tamper_shown ]]; then  # once: with one byte changed, the proof fails
                tamper_shown=1
                python3 - "$proof" "$DEMO/proofs/tampered.json" <<'PY'
import json, sys
proof = json.load(open(sys.argv[1]))
node = proof["nodes"][-1]
proof["nodes"][-1] = node[:-3] + ("0" if node[-3] != "0" else "1") + node[-2:]
json.dump(proof, open(sys.argv[2], "w"))
PY
                if verdict=$("$BIN" verify --root "$signed_root" "$DEMO/proofs/tampered.json" 2>&1); then
                    echo "             a copy with one byte changed passed?! $verdict"
                else
                    echo "             the same proof with one byte changed: ${verdict#error: }"
                fi
            fi
        fi
    fi

    # The bridge on anvil: what the relayer committed and paid.
    local chain relayer_status committed paid balance
    chain=$(RUST_LOG=error "$BIN" chain status --rpc-url "$ETH_RPC" --deployment "$DEPLOYMENT" 2>/dev/null) || chain=
    # The recipient's balance before the relayer's count: the relayer counts a withdrawal once
    # its payment is mined, so read the other way round, a payment mined between the two reads
    # showed as received but not yet paid.
    balance=$(eth_balance "$RECIPIENT") || balance=
    relayer_status=$(get "http://$RELAYER/status") || relayer_status=
    if [[ -n $chain ]]; then
        committed=$(field last_commit_lsn <<<"$chain")
        echo "  bridge     ${BRIDGE:0:12}… on anvil holds the root ${committed:+of LSN $committed: }$(field last_root <<<"$chain" | cut -c1-18)… (walproof chain status)"
    fi
    if [[ -n $relayer_status ]]; then
        paid=$(field withdrawals_paid <<<"$relayer_status")
        echo "  relayer    $(field roots_committed <<<"$relayer_status") roots committed, $paid withdrawals paid;" \
            "recipient ${RECIPIENT:0:10}… received ${balance:+$(python3 -c "print(($balance - $RECIPIENT_START) / 1e18)") ETH this run}"
        [[ -n $(field last_error <<<"$relayer_status") ]] && echo "             last error: $(field last_error <<<"$relayer_status")"
    fi

    # Warnings and errors walproof logged since the last look (librdkafka's notes on its
    # experimental settings left out).
    lines=$(wc -l <"$LOG")
    if ((lines > log_seen)); then
        tail -n +$((log_seen + 1)) "$LOG" | grep -E ' (WARN|ERROR) ' | grep -v CONFWARN |
            tail -n 5 | cut -c1-300 | sed 's/^/  log: /'
        log_seen=$lines
    fi
}

# From here on a failed look is shown, not fatal.
set +e
while [[ -z $STOP_REQUESTED ]]; do
    check_alive
    next=$((SECONDS + INTERVAL))
    show
    if [[ -z $STOP_REQUESTED ]] && ((next > SECONDS)); then
        sleep $((next - SECONDS)) 9>&- &
        wait $!
    fi
done
exit 0
