#!/usr/bin/env bash
# A real S3-compatible server (moto, pinned in s3-requirements.txt) on
# 127.0.0.1 for the tests, with the bucket "wharf-test" created.
#
# Usage:
#   tests/services/s3.sh start   start (or reuse a running one); prints
#                                KEY=VALUE lines for the WHARF_TEST_S3_* vars:
#                                  set -a; eval "$(tests/services/s3.sh start)"; set +a
#   tests/services/s3.sh env     print those lines for the running server
#   tests/services/s3.sh stop    stop it
#   tests/services/s3.sh status  exit 0 if it is running
# State (pid, env) lives in $WHARF_RESULTS_DIR/services/, the server log in
# $WHARF_RESULTS_DIR/logs/s3.log. Progress messages go to stderr.
set -euo pipefail

. "$(dirname "$0")/../env/lib.sh"

state_dir="$WHARF_RESULTS_DIR/services"
pid_file="$state_dir/s3.pid"
env_file="$state_dir/s3.env"
log_file="$WHARF_RESULTS_DIR/logs/s3.log"
bucket=wharf-test
region=us-east-1
key_id="test"
secret="test"

running() {
    [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

do_stop() {
    if [[ -f $pid_file ]]; then
        local pid
        pid=$(cat "$pid_file")
        if kill -0 "$pid" 2>/dev/null; then
            log "s3: stopping moto (pid $pid)"
            stop_pid "$pid" moto
        fi
    fi
    rm -f "$pid_file" "$env_file"
}

do_start() {
    if running && [[ -f $env_file ]]; then
        log "s3: reusing running moto (pid $(cat "$pid_file"))"
        cat "$env_file"
        return 0
    fi
    do_stop
    if [[ ! -x $WHARF_TEST_VENV/bin/moto_server ]]; then
        "$WHARF_ROOT/tests/env/install.sh" s3 >&2
    fi
    mkdir -p "$state_dir" "$(dirname "$log_file")"
    local port pid endpoint
    port=$(free_port)
    endpoint="http://127.0.0.1:$port"
    # setsid + nohup: the server outlives this script (and its caller's
    # process group) until "s3.sh stop"; all output goes to the log file.
    setsid nohup "$WHARF_TEST_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" \
        >"$log_file" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pid_file"
    if ! wait_http "$endpoint/" 60 "$pid"; then
        log "s3: moto did not start on $endpoint; log:"
        tail -n 30 "$log_file" >&2
        do_stop
        return 1
    fi
    if ! port_is_loopback_only "$port"; then
        log "s3: moto listens on non-loopback addresses: $(listen_addrs "$port" | tr '\n' ' ')"
        do_stop
        return 1
    fi
    # Create the bucket and prove a signed put/get/delete round trip works.
    if ! "$WHARF_TEST_VENV/bin/python" - "$endpoint" "$bucket" "$region" "$key_id" "$secret" >&2 <<'EOF'
import sys
import boto3
from botocore.config import Config
endpoint, bucket, region, key_id, secret = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  aws_access_key_id=key_id, aws_secret_access_key=secret,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_object(Bucket=bucket, Key="wharf-s3-selftest", Body=b"hello")
assert s3.get_object(Bucket=bucket, Key="wharf-s3-selftest")["Body"].read() == b"hello"
s3.delete_object(Bucket=bucket, Key="wharf-s3-selftest")
print(f"s3: bucket {bucket} ready at {endpoint}", file=sys.stderr)
EOF
    then
        log "s3: bucket setup failed; log:"
        tail -n 30 "$log_file" >&2
        do_stop
        return 1
    fi
    cat >"$env_file" <<EOF
WHARF_TEST_S3_ENDPOINT=$endpoint
WHARF_TEST_S3_BUCKET=$bucket
WHARF_TEST_S3_ACCESS_KEY_ID=$key_id
WHARF_TEST_S3_SECRET_ACCESS_KEY=$secret
WHARF_TEST_S3_REGION=$region
EOF
    log "s3: moto (pid $pid) listening on 127.0.0.1:$port only; log $log_file"
    cat "$env_file"
}

case ${1:-} in
    start) do_start ;;
    stop) do_stop ;;
    env)
        if ! running || [[ ! -f $env_file ]]; then die "s3: not running (use: $0 start)"; fi
        cat "$env_file"
        ;;
    status)
        if running; then echo "s3: running (pid $(cat "$pid_file"))"; else echo "s3: not running"; exit 1; fi
        ;;
    *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
