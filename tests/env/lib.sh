# shellcheck shell=bash
# Shared helpers for Wharf's shell test harness. Source it, do not run it:
#   . "$(dirname "$0")/../env/lib.sh"
#
# Provides: logging, free ports, waiting for HTTP endpoints, a tiny
# "ok - / not ok -" check counter, and starting/stopping registry servers
# (Wharf itself, or Debian's reference docker-registry for validating the
# harness) with their logs kept under the results directory.

WHARF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export WHARF_ROOT
# Everything the harness writes (server logs, conformance reports) lands here.
: "${WHARF_RESULTS_DIR:=$WHARF_ROOT/test-results}"
export WHARF_RESULTS_DIR
# Python virtualenv for test-only Python tools (moto S3 server).
: "${WHARF_TEST_VENV:=$WHARF_ROOT/.venv-test}"
export WHARF_TEST_VENV

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Print a TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# wait_http URL [TIMEOUT_SECONDS] [PID]
# Waits until URL answers with any HTTP status. Fails early if PID dies.
wait_http() {
    local url=$1 timeout=${2:-30} pid=${3:-} i code
    for ((i = 0; i < timeout * 5; i++)); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null) || true
        if [[ -n $code && $code != 000 ]]; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# Addresses on which PORT is in LISTEN state (from /proc, no tools needed).
listen_addrs() {
    python3 - "$1" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
for path, fam in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
    try:
        lines = open(path).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        addr, p = f[1].split(":")
        if int(p, 16) != port or f[3] != "0A":  # 0A == LISTEN
            continue
        raw = bytes.fromhex(addr)
        if fam == socket.AF_INET:
            raw = struct.pack("<I", struct.unpack(">I", raw)[0])
        else:
            raw = b"".join(struct.pack("<I", w) for w in struct.unpack(">4I", raw))
        print(socket.inet_ntop(fam, raw))
EOF
}

# True if every listener on PORT is bound to a loopback address.
port_is_loopback_only() {
    local addrs a
    addrs=$(listen_addrs "$1")
    [[ -n $addrs ]] || return 1
    for a in $addrs; do
        case $a in
            127.*|::1|::ffff:127.*) ;;
            *) return 1 ;;
        esac
    done
}

# stop_pid PID [NAME]: TERM, wait up to 15 s, then KILL.
stop_pid() {
    local pid=$1 name=${2:-process} i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.2
    done
    log "$name (pid $pid) did not stop after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- checks ---
T_PASSED=0
T_FAILED=0
T_OUT=""

t_ok() { T_PASSED=$((T_PASSED + 1)); echo "ok - $1"; }

# t_not_ok NAME [DETAIL...]: details are printed as "#   " comment lines.
t_not_ok() {
    local name=$1
    shift
    T_FAILED=$((T_FAILED + 1))
    echo "not ok - $name"
    if (($#)); then
        printf '%s\n' "$@" | sed 's/^/#   /'
    fi
}

# t_check NAME CMD [ARGS...]: runs CMD; its combined output is kept in $T_OUT
# (and printed as comments when it fails).
t_check() {
    local name=$1 rc=0
    shift
    T_OUT=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        t_ok "$name"
    else
        t_not_ok "$name" "command failed (exit $rc): $*" "$(printf '%s\n' "$T_OUT" | tail -n 15)"
    fi
    return "$rc"
}

# t_summary PREFIX: prints "PREFIX: N passed, N failed"; status 1 on failures.
t_summary() {
    echo "$1: $T_PASSED passed, $T_FAILED failed"
    ((T_FAILED == 0 && T_PASSED > 0))
}

# -------------------------------------------------------------- servers ---
# Which registry implementation to start: "wharf" (default), "reference"
# (Debian's docker-registry 2.8, used to validate this harness itself) or
# "distribution" (CNCF distribution v3 from .tools/bin, the benchmark's reference).
: "${WHARF_TEST_SERVER:=wharf}"
: "${WHARF_BIN:=$WHARF_ROOT/target/release/wharf}"
declare -gA SERVER_PID=() SERVER_ADDR=() SERVER_LOG=() SERVER_DIR=() SERVER_DB=()
# WHARF_TEST_SERVER_POSTGRES=postgres://... (a server tests/services/postgres.sh
# started): each Wharf server_start starts gets a fresh database there for its
# metadata instead of the embedded SQLite one; server_stop drops it again.
: "${WHARF_TEST_SERVER_POSTGRES:=}"

# _server_database NAME: creates a fresh database for server NAME on
# $WHARF_TEST_SERVER_POSTGRES; its URL goes to _SERVER_DB_URL (not printed:
# SERVER_DB must be set in this shell, not a command substitution's).
_server_database() {
    local db
    db="wharf_$(printf '%s' "$1" | tr -c 'a-z0-9' '_')_$$_$RANDOM"
    psql "$WHARF_TEST_SERVER_POSTGRES" -v ON_ERROR_STOP=1 -qtAc "CREATE DATABASE $db" >/dev/null || return 1
    SERVER_DB[$1]=$db
    # Same server and credentials, another database: replace the URL's path.
    _SERVER_DB_URL=${WHARF_TEST_SERVER_POSTGRES%/*}/$db
}

# server_start NAME BACKEND [S3_PREFIX]
# BACKEND is "fs" or "s3" (s3 reads WHARF_TEST_S3_* from the environment).
# On success sets SERVER_ADDR[NAME]=127.0.0.1:PORT and logs to
# $WHARF_RESULTS_DIR/logs/NAME.log.
server_start() {
    local name=$1 backend=$2 prefix=${3:-$1} port dir logf pid
    shift 3 2>/dev/null || shift $#
    local -a extra_env=("$@")
    port=$(free_port)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/wharf-test-$name.XXXXXX")
    mkdir -p "$WHARF_RESULTS_DIR/logs"
    logf="$WHARF_RESULTS_DIR/logs/$name.log"
    : >"$logf"
    if [[ $backend == s3 && -z ${WHARF_TEST_S3_ENDPOINT:-} ]]; then
        log "server $name: backend s3 requested but WHARF_TEST_S3_ENDPOINT is not set"
        return 1
    fi
    # Keep the host's AWS_* settings (CA bundle, profile, endpoint, keys) out
    # of the servers: the S3 backend must be configured by the test alone.
    local -a noaws=(env) v
    for v in $(compgen -e | grep '^AWS_' || true); do
        noaws+=(-u "$v")
    done
    case $WHARF_TEST_SERVER in
        wharf)
            [[ -x $WHARF_BIN ]] || { log "server $name: $WHARF_BIN is missing"; return 1; }
            local -a envs=("${noaws[@]}" -u WHARF_STORAGE__BACKEND -u WHARF_STORAGE__S3__ENDPOINT
                -u WHARF_STORAGE__S3__BUCKET -u WHARF_STORAGE__S3__REGION
                -u WHARF_STORAGE__S3__ACCESS_KEY_ID -u WHARF_STORAGE__S3__SECRET_ACCESS_KEY
                -u WHARF_STORAGE__S3__ALLOW_HTTP -u WHARF_STORAGE__S3__PREFIX)
            if [[ $backend == s3 ]]; then
                envs+=(WHARF_STORAGE__BACKEND=s3
                    "WHARF_STORAGE__S3__ENDPOINT=$WHARF_TEST_S3_ENDPOINT"
                    "WHARF_STORAGE__S3__BUCKET=$WHARF_TEST_S3_BUCKET"
                    "WHARF_STORAGE__S3__REGION=$WHARF_TEST_S3_REGION"
                    "WHARF_STORAGE__S3__ACCESS_KEY_ID=$WHARF_TEST_S3_ACCESS_KEY_ID"
                    "WHARF_STORAGE__S3__SECRET_ACCESS_KEY=$WHARF_TEST_S3_SECRET_ACCESS_KEY"
                    WHARF_STORAGE__S3__ALLOW_HTTP=true
                    "WHARF_STORAGE__S3__PREFIX=$prefix")
            fi
            if [[ -n $WHARF_TEST_SERVER_POSTGRES ]]; then
                _server_database "$name" || { log "server $name: could not create its PostgreSQL database"; return 1; }
                envs+=("WHARF_DATABASE__URL=$_SERVER_DB_URL")
                # Filesystem blobs under PostgreSQL start only when declared
                # shared; each test server is a single node on its own directory.
                [[ $backend == s3 ]] || envs+=(WHARF_STORAGE__FILESYSTEM__SHARED=true)
            fi
            envs+=("${extra_env[@]}")
            # NO_COLOR: plain log files instead of ANSI escapes.
            "${envs[@]}" NO_COLOR=1 "$WHARF_BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" \
                >>"$logf" 2>&1 </dev/null &
            pid=$!
            ;;
        reference)
            [[ -x /usr/bin/docker-registry ]] || { log "server $name: /usr/bin/docker-registry is missing (apt-get install docker-registry)"; return 1; }
            _reference_config "$dir" "$port" "$backend" "$prefix" >"$dir/config.yml"
            "${noaws[@]}" /usr/bin/docker-registry serve "$dir/config.yml" >>"$logf" 2>&1 </dev/null &
            pid=$!
            ;;
        distribution)
            local reg="$WHARF_ROOT/.tools/bin/registry"
            [[ -x $reg ]] || { log "server $name: $reg is missing (tests/env/install.sh distribution)"; return 1; }
            _reference_config "$dir" "$port" "$backend" "$prefix" >"$dir/config.yml"
            # Without this v3 exports traces to a collector that is not there,
            # spending CPU on every request.
            "${noaws[@]}" OTEL_TRACES_EXPORTER=none "$reg" serve "$dir/config.yml" >>"$logf" 2>&1 </dev/null &
            pid=$!
            ;;
        *)
            log "unknown WHARF_TEST_SERVER=$WHARF_TEST_SERVER (wharf|reference|distribution)"
            return 1
            ;;
    esac
    SERVER_PID[$name]=$pid
    SERVER_ADDR[$name]="127.0.0.1:$port"
    SERVER_LOG[$name]=$logf
    SERVER_DIR[$name]=$dir
    if ! wait_http "http://127.0.0.1:$port/v2/" 60 "$pid"; then
        local how="did not answer within 60 s"
        if ! kill -0 "$pid" 2>/dev/null; then
            local prc=0
            wait "$pid" 2>/dev/null || prc=$?
            how="exited with status $prc before answering"
        fi
        log "server $name ($WHARF_TEST_SERVER, $backend) on 127.0.0.1:$port $how; last log lines:"
        tail -n 40 "$logf" >&2
        server_stop "$name"
        return 1
    fi
    log "server $name ($WHARF_TEST_SERVER, backend $backend) is up on 127.0.0.1:$port (pid $pid, log $logf)"
}

_reference_config() {
    local dir=$1 port=$2 backend=$3 prefix=$4
    cat <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
http:
  addr: 127.0.0.1:$port
  secret: wharf-harness-reference
storage:
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
EOF
    if [[ $backend == s3 ]]; then
        cat <<EOF
  s3:
    accesskey: $WHARF_TEST_S3_ACCESS_KEY_ID
    secretkey: $WHARF_TEST_S3_SECRET_ACCESS_KEY
    region: $WHARF_TEST_S3_REGION
    regionendpoint: $WHARF_TEST_S3_ENDPOINT
    bucket: $WHARF_TEST_S3_BUCKET
    rootdirectory: /$prefix
    secure: false
    v4auth: true
    # The loopback endpoint has no per-bucket host names (docker-registry
    # 2.8 always uses paths; distribution v3 needs telling).
    forcepathstyle: true
EOF
    else
        cat <<EOF
  filesystem:
    rootdirectory: $dir/data
EOF
    fi
}

# server_stop NAME: stops the server and removes its temporary data dir.
server_stop() {
    local name=$1
    [[ -n ${SERVER_PID[$name]:-} ]] || return 0
    stop_pid "${SERVER_PID[$name]}" "server $name"
    unset 'SERVER_PID[$name]'
    if [[ -n ${SERVER_DIR[$name]:-} && -d ${SERVER_DIR[$name]} ]]; then
        rm -rf "${SERVER_DIR[$name]}"
    fi
    if [[ -n ${SERVER_DB[$name]:-} ]]; then
        psql "$WHARF_TEST_SERVER_POSTGRES" -qtAc "DROP DATABASE IF EXISTS ${SERVER_DB[$name]} WITH (FORCE)" >/dev/null 2>&1 || true
        unset 'SERVER_DB[$name]'
    fi
}

server_stop_all() {
    local n
    for n in "${!SERVER_PID[@]}"; do
        server_stop "$n"
    done
}

# server_log_tail NAME [LINES]: prints the last warnings/errors and the end
# of a server's log.
server_log_tail() {
    local name=$1 lines=${2:-60} f
    f=${SERVER_LOG[$name]:-}
    [[ -f $f ]] || return 0
    if grep -qE 'WARN|ERROR|error|panic' "$f"; then
        echo "----- last 20 warning/error lines of $f -----"
        grep -E 'WARN|ERROR|error|panic' "$f" | tail -n 20 | cut -c1-400
    fi
    echo "----- last $lines lines of $f -----"
    tail -n "$lines" "$f" | cut -c1-400
    echo "----- end of log -----"
}

# server_alive NAME
server_alive() {
    [[ -n ${SERVER_PID[$1]:-} ]] && kill -0 "${SERVER_PID[$1]}" 2>/dev/null
}

# make_test_accounts HOSTPORT ADMIN_PASSWORD: on an auth-enabled Wharf,
# creates users `dev` (developer on team/**) and `reader` (reader on team/**),
# both with password $TEST_USER_PASSWORD, and robot `ci` (developer on
# team/**); prints the robot's token.
TEST_USER_PASSWORD=test-user-pw-123
make_test_accounts() {
    local reg=$1 pw=$2 body code
    _admin_post() {
        code=$(curl -sS -o "$WHARF_RESULTS_DIR/logs/admin-post.out" -w '%{http_code}' -u "admin:$pw" \
            -H 'Content-Type: application/json' -X POST -d "$2" "http://$reg$1") || return 1
        [[ $code == 201 ]] || { log "POST $1 -> $code: $(cat "$WHARF_RESULTS_DIR/logs/admin-post.out")"; return 1; }
    }
    for body in \
        "{\"name\":\"dev\",\"password\":\"$TEST_USER_PASSWORD\"}" \
        "{\"name\":\"reader\",\"password\":\"$TEST_USER_PASSWORD\"}"; do
        _admin_post /api/v1/users "$body" || return 1
    done
    _admin_post /api/v1/robots '{"name":"ci","expires_in_days":1}' || return 1
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$WHARF_RESULTS_DIR/logs/admin-post.out" >"$WHARF_RESULTS_DIR/logs/robot.token" || return 1
    for body in \
        '{"account":"dev","repository":"team/**","role":"developer"}' \
        '{"account":"reader","repository":"team/**","role":"reader"}' \
        '{"account":"ci","repository":"team/**","role":"developer"}'; do
        _admin_post /api/v1/grants "$body" || return 1
    done
    cat "$WHARF_RESULTS_DIR/logs/robot.token"
    rm -f "$WHARF_RESULTS_DIR/logs/robot.token" "$WHARF_RESULTS_DIR/logs/admin-post.out"
}
