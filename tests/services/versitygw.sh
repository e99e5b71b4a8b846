#!/usr/bin/env bash
# A real S3 gateway for the tests: versitygw (Apache-2.0, pinned in
# tests/env/install.sh) over a directory, on 127.0.0.1, with the bucket
# "wharf-test" created. Unlike moto (a mock), versitygw is a real
# implementation over a filesystem: a bucket is a directory, an object a file.
#
# Usage:
#   tests/services/versitygw.sh start   start (or reuse a running one); prints
#                                       KEY=VALUE lines for the WHARF_TEST_S3_* vars:
#                                         set -a; eval "$(tests/services/versitygw.sh start)"; set +a
#   tests/services/versitygw.sh env     print those lines for the running server
#   tests/services/versitygw.sh bucket NAME
#                                       create one more bucket (private: only
#                                       the root credentials above reach it)
#   tests/services/versitygw.sh stop    stop it and remove its data
#   tests/services/versitygw.sh status  exit 0 if it is running
# State (pid, env, the data directory) lives in $WHARF_RESULTS_DIR/services/,
# the server log in $WHARF_RESULTS_DIR/logs/versitygw.log.
set -euo pipefail

. "$(dirname "$0")/../env/lib.sh"

state_dir="$WHARF_RESULTS_DIR/services"
pid_file="$state_dir/versitygw.pid"
env_file="$state_dir/versitygw.env"
data_dir="$state_dir/versitygw-data"
log_file="$WHARF_RESULTS_DIR/logs/versitygw.log"
bin="$WHARF_ROOT/.tools/bin/versitygw"
bucket=wharf-test
region=us-east-1
key_id="wharf-test-root"
secret="wharf-test-root-secret"

running() {
    [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

do_stop() {
    if [[ -f $pid_file ]]; then
        local pid
        pid=$(cat "$pid_file")
        if kill -0 "$pid" 2>/dev/null; then
            log "versitygw: stopping (pid $pid)"
            stop_pid "$pid" versitygw
        fi
    fi
    rm -f "$pid_file" "$env_file"
    rm -rf "$data_dir"
}

do_start() {
    if running && [[ -f $env_file ]]; then
        log "versitygw: reusing running server (pid $(cat "$pid_file"))"
        cat "$env_file"
        return 0
    fi
    do_stop
    if [[ ! -x $bin ]]; then
        "$WHARF_ROOT/tests/env/install.sh" versitygw >&2
    fi
    # boto3 (from the moto venv) sets up the bucket and proves a round trip.
    if [[ ! -x $WHARF_TEST_VENV/bin/python ]]; then
        "$WHARF_ROOT/tests/env/install.sh" s3 >&2
    fi
    mkdir -p "$state_dir" "$(dirname "$log_file")" "$data_dir/$bucket"
    local port pid endpoint
    port=$(free_port)
    endpoint="http://127.0.0.1:$port"
    # A bucket is a directory under the root (made above). setsid + nohup:
    # the server outlives this script until "versitygw.sh stop".
    ROOT_ACCESS_KEY=$key_id ROOT_SECRET_KEY=$secret setsid nohup "$bin" \
        --port "127.0.0.1:$port" --region "$region" posix "$data_dir" \
        >"$log_file" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pid_file"
    if ! wait_http "$endpoint/" 60 "$pid"; then
        log "versitygw: did not start on $endpoint; log:"
        tail -n 30 "$log_file" >&2
        do_stop
        return 1
    fi
    if ! port_is_loopback_only "$port"; then
        log "versitygw: listens on non-loopback addresses: $(listen_addrs "$port" | tr '\n' ' ')"
        do_stop
        return 1
    fi
    # A signed put/get/delete round trip. The bucket policy then lets
    # unsigned requests in, as moto does: the harness contract
    # (TestApp::s3_location) lets a test plant and list objects past Wharf.
    if ! "$WHARF_TEST_VENV/bin/python" - "$endpoint" "$bucket" "$region" "$key_id" "$secret" >&2 <<'EOF'
import json
import sys
import boto3
from botocore.config import Config
endpoint, bucket, region, key_id, secret = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  aws_access_key_id=key_id, aws_secret_access_key=secret,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
s3.head_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="wharf-s3-selftest", Body=b"hello")
assert s3.get_object(Bucket=bucket, Key="wharf-s3-selftest")["Body"].read() == b"hello"
s3.delete_object(Bucket=bucket, Key="wharf-s3-selftest")
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }],
}))
print(f"versitygw: bucket {bucket} ready at {endpoint}", file=sys.stderr)
EOF
    then
        log "versitygw: bucket setup failed; log:"
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
WHARF_TEST_S3_SERVER=versitygw
EOF
    log "versitygw: (pid $pid) listening on 127.0.0.1:$port only, data in $data_dir; log $log_file"
    cat "$env_file"
}

do_bucket() {
    local name=$1
    [[ $name =~ ^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ ]] || die "versitygw: bad bucket name '$name'"
    if ! running || [[ ! -f $env_file ]]; then die "versitygw: not running (use: $0 start)"; fi
    local endpoint
    endpoint=$(sed -n 's/^WHARF_TEST_S3_ENDPOINT=//p' "$env_file")
    "$WHARF_TEST_VENV/bin/python" - "$endpoint" "$name" "$region" "$key_id" "$secret" <<'EOF'
import sys
import boto3
from botocore.config import Config
endpoint, bucket, region, key_id, secret = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  aws_access_key_id=key_id, aws_secret_access_key=secret,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
s3.create_bucket(Bucket=bucket)
s3.head_bucket(Bucket=bucket)
print(f"versitygw: bucket {bucket} ready at {endpoint}", file=sys.stderr)
EOF
}

case ${1:-} in
    start) do_start ;;
    bucket)
        [[ -n ${2:-} ]] || { echo "usage: $0 bucket NAME" >&2; exit 2; }
        do_bucket "$2"
        ;;
    stop) do_stop ;;
    env)
        if ! running || [[ ! -f $env_file ]]; then die "versitygw: not running (use: $0 start)"; fi
        cat "$env_file"
        ;;
    status)
        if running; then echo "versitygw: running (pid $(cat "$pid_file"))"; else echo "versitygw: not running"; exit 1; fi
        ;;
    *) echo "usage: $0 start|stop|env|status|bucket NAME" >&2; exit 2 ;;
esac
