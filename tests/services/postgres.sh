#!/usr/bin/env bash
# A throw-away PostgreSQL server (Debian's postgresql package) on 127.0.0.1
# for the tests: initdb + pg_ctl as the `postgres` user in a temporary
# directory, a free port, password authentication for one superuser `wharf`
# (the tests create a fresh database per test, so it needs CREATEDB).
#
# Usage:
#   tests/services/postgres.sh start   start (or reuse a running one); prints
#                                      `export WHARF_TEST_POSTGRES_URL=...`:
#                                        eval "$(tests/services/postgres.sh start)"
#   tests/services/postgres.sh env     print that line for the running server
#   tests/services/postgres.sh stop    stop it and delete its data directory
#   tests/services/postgres.sh status  exit 0 if it is running
# State (data directory path, env) lives in $WHARF_RESULTS_DIR/services/, the
# server log in $WHARF_RESULTS_DIR/logs/postgres.log. Progress goes to stderr.
set -euo pipefail

. "$(dirname "$0")/../env/lib.sh"

state_dir="$WHARF_RESULTS_DIR/services"
dir_file="$state_dir/postgres.dir"
env_file="$state_dir/postgres.env"
log_file="$WHARF_RESULTS_DIR/logs/postgres.log"
user=wharf

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_postgres() {
    runuser -u postgres -- "$@"
}

running() {
    [[ -f $dir_file ]] || return 1
    local bin
    bin=$(pg_bin)
    [[ -n $bin ]] && as_postgres "$bin/pg_ctl" status -D "$(cat "$dir_file")/data" >/dev/null 2>&1
}

do_stop() {
    if [[ -f $dir_file ]]; then
        local dir bin
        dir=$(cat "$dir_file")
        bin=$(pg_bin)
        if [[ -n $bin && -d $dir/data ]]; then
            log "postgres: stopping the server in $dir"
            as_postgres "$bin/pg_ctl" stop -D "$dir/data" -m fast -w >/dev/null 2>&1 || true
        fi
        # Only ever a directory this script made (mktemp, prefix checked).
        [[ $dir == /tmp/wharf-postgres.* ]] && rm -rf "$dir"
    fi
    rm -f "$dir_file" "$env_file"
}

do_start() {
    if running && [[ -f $env_file ]]; then
        log "postgres: reusing the running server in $(cat "$dir_file")"
        cat "$env_file"
        return 0
    fi
    do_stop
    local bin
    bin=$(pg_bin)
    if [[ -z $bin || ! -x $bin/initdb ]]; then
        "$WHARF_ROOT/tests/env/install.sh" postgres >&2
        bin=$(pg_bin)
    fi
    mkdir -p "$state_dir" "$(dirname "$log_file")"
    local dir port password
    dir=$(mktemp -d /tmp/wharf-postgres.XXXXXX)
    echo "$dir" >"$dir_file"
    chown postgres: "$dir"
    port=$(free_port)
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    printf '%s\n' "$password" >"$dir/pwfile"
    chown postgres: "$dir/pwfile"
    chmod 600 "$dir/pwfile"
    if ! as_postgres "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
        log "postgres: initdb failed:"
        tail -n 30 "$dir/initdb.log" >&2
        do_stop
        return 1
    fi
    rm -f "$dir/pwfile"
    # A test cluster: durability across a machine crash buys nothing here,
    # and fsync off keeps hundreds of short test databases cheap on a
    # shared disk. Many Wharf processes run at once, each with a few
    # connections, hence max_connections.
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    touch "$log_file"
    chown postgres: "$log_file"
    if ! as_postgres "$bin/pg_ctl" start -D "$dir/data" -l "$log_file" -w -t 60 >/dev/null; then
        log "postgres: the server did not start; log:"
        tail -n 30 "$log_file" >&2
        do_stop
        return 1
    fi
    if ! port_is_loopback_only "$port"; then
        log "postgres: listens on non-loopback addresses: $(listen_addrs "$port" | tr '\n' ' ')"
        do_stop
        return 1
    fi
    local url="postgres://$user:$password@127.0.0.1:$port/postgres"
    if ! PGPASSWORD=$password "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc 'SELECT 1' >/dev/null; then
        log "postgres: cannot connect as $user on 127.0.0.1:$port"
        do_stop
        return 1
    fi
    echo "export WHARF_TEST_POSTGRES_URL=$url" >"$env_file"
    log "postgres: $("$bin/postgres" --version) in $dir listening on 127.0.0.1:$port only; log $log_file"
    cat "$env_file"
}

case ${1:-} in
    start) do_start ;;
    stop) do_stop ;;
    env)
        if ! running || [[ ! -f $env_file ]]; then die "postgres: not running (use: $0 start)"; fi
        cat "$env_file"
        ;;
    status)
        if running; then echo "postgres: running in $(cat "$dir_file")"; else echo "postgres: not running"; exit 1; fi
        ;;
    *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
