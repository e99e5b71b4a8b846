#!/usr/bin/env bash
# HAProxy (Debian's haproxy) on 127.0.0.1 with a generated configuration, for
# the multi-node test (tests/cluster/run.sh).
#
# Usage:
#   tests/services/haproxy.sh start NAME [--tcp] [--port PORT] SERVER...
#       SERVER is NAME=HOST:PORT. Prints KEY=VALUE lines:
#         HAPROXY_ADDR=127.0.0.1:PORT   the frontend
#         HAPROXY_SOCKET=PATH           the runtime API (show stat, show servers state)
#         HAPROXY_LOG=PATH              one line per request (httplog: server, status, URL)
#         HAPROXY_PID=PID               the process (the benchmark reads its CPU time)
#       http mode (default): round-robin per request, no stickiness, each
#       server checked with `GET /readyz` every second (down after 2
#       failures, up after 2 successes); a request whose server refused the
#       connection is sent to another one. Bodies are streamed both ways.
#       Each request carries the client's address in X-Forwarded-For.
#       --tcp: a plain TCP relay to the first SERVER (no checks); the test
#       puts one between a node and its database or object store, and stops
#       it to make them unreachable from that node alone.
#   tests/services/haproxy.sh stop NAME
#   tests/services/haproxy.sh status NAME
# State lives in $WHARF_RESULTS_DIR/services/haproxy-NAME.*.
set -euo pipefail

. "$(dirname "$0")/../env/lib.sh"

state_dir="$WHARF_RESULTS_DIR/services"

paths() {
    local name=$1
    [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "haproxy: bad name '$name'"
    cfg="$state_dir/haproxy-$name.cfg"
    pid_file="$state_dir/haproxy-$name.pid"
    env_file="$state_dir/haproxy-$name.env"
    sock="$state_dir/haproxy-$name.sock"
    log_file="$WHARF_RESULTS_DIR/logs/haproxy-$name.log"
}

running() {
    [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

do_stop() {
    if running; then
        stop_pid "$(cat "$pid_file")" "haproxy $1"
    fi
    rm -f "$pid_file" "$env_file" "$sock"
}

write_config() { # MODE PORT SERVER...
    local mode=$1 port=$2 s n a
    shift 2
    cat <<EOF
global
    maxconn 4096
    stats socket $sock mode 600 level admin
    log stdout format raw local0 info

defaults
    log global
    timeout connect 2s
    # Blob uploads and downloads stream for as long as they take.
    timeout client 10m
    timeout server 10m
    timeout http-request 1m
    timeout tunnel 10m
    # Longer than Wharf's health.timeout (2s): Wharf answers 503 itself,
    # naming the part, instead of the probe being cut off.
    timeout check 3s
EOF
    if [[ $mode == tcp ]]; then
        cat <<EOF
    mode tcp
    option tcplog

listen relay
    bind 127.0.0.1:$port
    server ${1%%=*} ${1#*=}
EOF
        return
    fi
    cat <<EOF
    mode http
    option httplog
    # A request may go to another server when its connection is refused
    # (a node that was killed): retries on connection failures only, never
    # on a request a node has started to answer.
    retries 3
    option redispatch 1
    # Every request is balanced on its own: the PATCH chunks of one upload
    # land on different nodes.
    option http-server-close
    # Large uploads and downloads are streamed, never buffered whole.
    no option http-buffer-request
    # The client's address for the nodes (their server.trusted_proxies
    # names this balancer): appended to what the client sent.
    option forwardfor

frontend registry
    bind 127.0.0.1:$port
    default_backend wharf

backend wharf
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
EOF
    for s in "$@"; do
        n=${s%%=*}
        a=${s#*=}
        echo "    server $n $a check"
    done
}

do_start() {
    local name=$1 mode=http port=""
    shift
    paths "$name"
    while (($#)); do
        case $1 in
            --tcp) mode=tcp; shift ;;
            --port) port=$2; shift 2 ;;
            *) break ;;
        esac
    done
    (($#)) || die "haproxy: no SERVER given"
    local s
    for s in "$@"; do
        [[ $s =~ ^[A-Za-z0-9_-]+=127\.[0-9.]+:[0-9]+$ ]] || die "haproxy: SERVER must be NAME=127.x.x.x:PORT (loopback), not '$s'"
    done
    command -v haproxy >/dev/null || "$WHARF_ROOT/tests/env/install.sh" haproxy >&2
    do_stop "$name"
    mkdir -p "$state_dir" "$(dirname "$log_file")"
    [[ -n $port ]] || port=$(free_port)
    write_config "$mode" "$port" "$@" >"$cfg"
    haproxy -c -q -f "$cfg" >&2 || die "haproxy $name: invalid configuration $cfg"
    # -db: in the foreground, so the request log (to stdout) lands in the log file.
    setsid nohup haproxy -db -f "$cfg" >"$log_file" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pid_file"
    local i
    for ((i = 0; i < 50; i++)); do
        port_is_loopback_only "$port" && [[ -S $sock ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! kill -0 "$pid" 2>/dev/null || ! port_is_loopback_only "$port"; then
        log "haproxy $name: did not start on 127.0.0.1:$port; log:"
        tail -n 20 "$log_file" >&2
        do_stop "$name"
        return 1
    fi
    cat >"$env_file" <<EOF
HAPROXY_ADDR=127.0.0.1:$port
HAPROXY_SOCKET=$sock
HAPROXY_LOG=$log_file
HAPROXY_PID=$pid
EOF
    log "haproxy $name ($mode, pid $pid) on 127.0.0.1:$port -> $*; log $log_file"
    cat "$env_file"
}

cmd=${1:-}
[[ $# -ge 2 ]] || { echo "usage: $0 start NAME [--tcp] [--port PORT] SERVER... | stop NAME | status NAME" >&2; exit 2; }
case $cmd in
    start) shift; do_start "$@" ;;
    stop) paths "$2"; do_stop "$2" ;;
    status)
        paths "$2"
        if running; then echo "haproxy $2: running (pid $(cat "$pid_file"))"; else echo "haproxy $2: not running"; exit 1; fi
        ;;
    *) echo "usage: $0 start NAME [--tcp] [--port PORT] SERVER... | stop NAME | status NAME" >&2; exit 2 ;;
esac
