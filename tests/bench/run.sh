#!/usr/bin/env bash
# Benchmarks Wharf side by side with CNCF distribution, one after the other
# in one run, and prints both with the ratio Wharf / reference and each
# server's CPU per request (or per MiB).
#
# Usage: bash tests/bench/run.sh [--smoke] [--reference distribution|docker-registry]
#                                [--backend fs|pg-s3 [--nodes N]] [wharf-bench options...]
#   (no option)  the full profile: 1 GiB blobs, 10 s of manifest load,
#                500 images, 10,000 tags, 5,000 repositories (about 10 minutes)
#   --smoke      tiny sizes; every scenario still runs (the test suite's check)
#   --reference  distribution (default): CNCF distribution v3.1.2, built from
#                the Go module proxy; docker-registry: Debian's 2.8.2
#   --backend    fs (default): both registries on the filesystem, Wharf on its
#                embedded SQLite. pg-s3: a throw-away PostgreSQL
#                (tests/services/postgres.sh) holds Wharf's metadata, and
#                both registries store blobs in one versitygw S3 server
#                (tests/services/versitygw.sh), a bucket each
#   --nodes N    with pg-s3: N Wharf nodes (default 1) sharing the database
#                and bucket; with N > 1 HAProxy balances them round-robin
#                per request (tests/services/haproxy.sh, as the cluster test
#                does). Their CPU is summed; HAProxy's is reported apart.
#   other options go to wharf-bench (e.g. --scenarios pull,manifest-get)
#
# Installs the reference if missing, builds the release binaries, starts both
# registries on loopback, and writes the table to $WHARF_RESULTS_DIR/bench/
# (Markdown and JSON; PROFILE.md for fs, PROFILE-pg-s3-nN.md for pg-s3).
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"
cd "$WHARF_ROOT" || exit 1

profile=full
args=()
reference=distribution
backend=fs
nodes=1
while (($#)); do
    case $1 in
        --smoke) profile=smoke ;;
        --reference)
            reference=${2:-}
            shift
            ;;
        --backend)
            backend=${2:-}
            shift
            ;;
        --nodes)
            nodes=${2:-}
            shift
            ;;
        *) args+=("$1") ;;
    esac
    shift
done
case $backend in
    fs) ((nodes == 1)) || die "--nodes: only with --backend pg-s3" ;;
    pg-s3) [[ $nodes =~ ^[1-9]$ ]] || die "--nodes: 1 to 9, not '$nodes'" ;;
    *) die "--backend: fs or pg-s3, not '$backend'" ;;
esac
case $reference in
    distribution)
        bash "$WHARF_ROOT/tests/env/install.sh" distribution >/dev/null || die "could not install distribution"
        ref_server=distribution
        ref_version="CNCF distribution $(cat "$WHARF_ROOT/.tools/bin/.distribution-version")"
        ;;
    docker-registry)
        bash "$WHARF_ROOT/tests/env/install.sh" reference >/dev/null || die "could not install docker-registry"
        ref_server=reference
        ref_version="docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null)"
        ;;
    *) die "--reference: distribution or docker-registry, not '$reference'" ;;
esac
cargo build --release --locked --bins || die "build failed"
bench_bin="$WHARF_ROOT/target/release/wharf-bench"

out_dir="$WHARF_RESULTS_DIR/bench"
mkdir -p "$out_dir"
result=$profile
[[ $backend == fs ]] || result="$profile-$backend-n$nodes"
svc="$WHARF_ROOT/tests/services"
# The services keep their state and logs apart from any the developer runs
# (postgres.sh would reuse one): stopping them at the end stops only ours.
svc_results="$out_dir/services-$result"
cleanup() {
    server_stop_all
    if [[ $backend == pg-s3 ]]; then
        WHARF_RESULTS_DIR=$svc_results bash "$svc/haproxy.sh" stop bench-lb >/dev/null 2>&1
        WHARF_RESULTS_DIR=$svc_results bash "$svc/versitygw.sh" stop >/dev/null 2>&1
        WHARF_RESULTS_DIR=$svc_results bash "$svc/postgres.sh" stop >/dev/null 2>&1
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wharf_servers=(bench-wharf)
if [[ $backend == fs ]]; then
    WHARF_TEST_SERVER=wharf server_start bench-wharf fs || die "wharf did not start"
    WHARF_TEST_SERVER=$ref_server server_start bench-reference fs || die "$ref_version did not start"
    wharf_addr=${SERVER_ADDR[bench-wharf]}
    backend_line="filesystem (Wharf: embedded SQLite)"
else
    pg_env=$(WHARF_RESULTS_DIR=$svc_results bash "$svc/postgres.sh" start) || die "PostgreSQL did not start"
    eval "$pg_env"
    s3_env=$(WHARF_RESULTS_DIR=$svc_results bash "$svc/versitygw.sh" start) || die "versitygw did not start"
    set -a
    eval "$s3_env"
    set +a
    ref_bucket=wharf-bench-reference
    WHARF_RESULTS_DIR=$svc_results bash "$svc/versitygw.sh" bucket "$ref_bucket" || die "could not create bucket $ref_bucket"
    psql "$WHARF_TEST_POSTGRES_URL" -v ON_ERROR_STOP=1 -qc 'CREATE DATABASE wharf_bench' || die "could not create database wharf_bench"
    # Every node: the same database, bucket and prefix (server_start passes
    # the S3 endpoint, bucket and keys explicitly).
    wharf_servers=()
    for ((i = 1; i <= nodes; i++)); do
        n=bench-wharf
        ((nodes == 1)) || n=bench-wharf-$i
        WHARF_TEST_SERVER=wharf server_start "$n" s3 bench-wharf "WHARF_DATABASE__URL=${WHARF_TEST_POSTGRES_URL%/*}/wharf_bench" ||
            die "wharf node $n did not start"
        wharf_servers+=("$n")
    done
    # The reference: the same S3 server with explicit keys, its own bucket.
    WHARF_TEST_SERVER=$ref_server WHARF_TEST_S3_BUCKET=$ref_bucket server_start bench-reference s3 bench-reference ||
        die "$ref_version did not start"
    pg_version=$(psql "$WHARF_TEST_POSTGRES_URL" -tAc 'SHOW server_version' | cut -d' ' -f1)
    gw_version=$(cat "$WHARF_ROOT/.tools/bin/.versitygw-version" 2>/dev/null)
    backend_line="pg-s3: Wharf on PostgreSQL $pg_version, blobs of both in versitygw ${gw_version:-?} (S3, a bucket each)"
    if ((nodes == 1)); then
        wharf_addr=${SERVER_ADDR[bench-wharf]}
    else
        lb_servers=()
        for n in "${wharf_servers[@]}"; do lb_servers+=("$n=${SERVER_ADDR[$n]}"); done
        lb_env=$(WHARF_RESULTS_DIR=$svc_results bash "$svc/haproxy.sh" start bench-lb "${lb_servers[@]}") || die "HAProxy did not start"
        eval "$lb_env"
        wharf_addr=$HAPROXY_ADDR
        proxy_pid=$HAPROXY_PID
        # HAProxy sends nothing to a node before its checks passed.
        for ((i = 0; i < 50; i++)); do
            [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$wharf_addr/v2/") == 200 ]] && break
            sleep 0.2
        done
        backend_line+="; $nodes Wharf nodes behind HAProxy $(haproxy -v 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1) (round-robin per request)"
    fi
fi
wharf_pids=()
for n in "${wharf_servers[@]}"; do wharf_pids+=("${SERVER_PID[$n]}"); done
pid_list=$(IFS=,; echo "${wharf_pids[*]}")
proxy_args=()
[[ -z ${proxy_pid:-} ]] || proxy_args=(--wharf-proxy-pid "$proxy_pid")

{
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
    echo "Reference: $ref_version; Wharf $(git -C "$WHARF_ROOT" rev-parse --short HEAD 2>/dev/null); profile $profile; $(date -u +%F)"
    echo "Backend: $backend_line"
    echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
} | tee "$out_dir/$result.md"

"$bench_bin" \
    --wharf-url "http://$wharf_addr" --wharf-pid "$pid_list" "${proxy_args[@]}" \
    --reference-url "http://${SERVER_ADDR[bench-reference]}" --reference-pid "${SERVER_PID[bench-reference]}" \
    --reference-name "$reference" --profile "$profile" --json "$out_dir/$result.json" "${args[@]}" | tee -a "$out_dir/$result.md"
rc=${PIPESTATUS[0]}
{
    echo
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$out_dir/$result.md"

for s in "${wharf_servers[@]}" bench-reference; do
    if ! server_alive "$s"; then
        echo "bench: server $s is no longer running (crashed?)" >&2
        server_log_tail "$s" 40
        rc=1
    fi
done
if [[ -n ${proxy_pid:-} ]] && ! kill -0 "$proxy_pid" 2>/dev/null; then
    echo "bench: HAProxy is no longer running" >&2
    rc=1
fi
echo "bench: results in $out_dir/$result.md and $result.json"
exit "$rc"
