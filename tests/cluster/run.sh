#!/usr/bin/env bash
# Multi-node test (issue 13): three `wharf serve` nodes sharing one PostgreSQL
# database and one S3 bucket (versitygw), behind HAProxy balancing round-robin
# per request with `GET /readyz` as its health check.
#
# Usage: tests/cluster/run.sh      (as root: docker needs a private dockerd)
#
# Through the load balancer: a chunked upload whose PATCHes land on different
# nodes (from HAProxy's request log), docker push/pull, crane pushes and
# copies in parallel while one node is SIGKILLed (clients retry through the
# load balancer), promotions and rollbacks sent to two nodes at once, GC and
# retention scheduled every second with zero grace on every node (each job
# runs on one node at a time, the holder of its lease in the database).
# Afterwards: every accepted manifest pulls completely from every node, every
# stage points at its newest release, the audit chain verifies, no node
# answered 500, and every GC and retention run was recorded once with one
# holder among the three nodes (`node.id`), no two runs of one job
# overlapping in time. Failed logins count on every node together, per
# client address as HAProxy forwards it. Then readiness: a node
# whose object store, then database, is unreachable is taken out by HAProxy
# and comes back once they are reachable again.
# Auth is on: every client authenticates, and a token one node issued is
# used on the others (the signing keys live in the database).
# Prints "ok - NAME" / "not ok - NAME", then "cluster: N passed, N failed".
# Logs and configuration: $WHARF_RESULTS_DIR/cluster/.
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"

out_dir="$WHARF_RESULTS_DIR/cluster"
rm -rf "$out_dir"
mkdir -p "$out_dir"
# The services' own state and logs go under the cluster directory too.
export WHARF_RESULTS_DIR="$out_dir"
mkdir -p "$out_dir/logs"
: "${WHARF_BIN:=$WHARF_ROOT/target/release/wharf}"
svc="$WHARF_ROOT/tests/services"

[[ $EUID -eq 0 ]] || die "cluster: run as root (a private dockerd needs root)"
[[ -x $WHARF_BIN ]] || die "cluster: $WHARF_BIN is missing (cargo build --release)"
command -v haproxy >/dev/null || "$WHARF_ROOT/tests/env/install.sh" haproxy >&2 || die "cluster: cannot install haproxy"
command -v dockerd >/dev/null || "$WHARF_ROOT/tests/env/install.sh" docker >&2 || die "cluster: cannot install docker.io"
crane_bin=$("$WHARF_ROOT/conformance/build.sh" crane | tail -n 1) || die "cluster: could not build crane"
crane() { "$crane_bin" --insecure "$@"; }

work=$(mktemp -d /tmp/wcl.XXXXXX)
declare -A NODE_PID=() NODE_ADDR=()
NODES=(wharf-a wharf-b wharf-c)
dockerd_pid=""
cleanup() {
    local rc=$? n
    [[ -n $dockerd_pid ]] && stop_pid "$dockerd_pid" dockerd
    for n in "${!NODE_PID[@]}"; do stop_pid "${NODE_PID[$n]}" "$n"; done
    for n in lb relay-db relay-s3; do bash "$svc/haproxy.sh" stop "$n" >/dev/null 2>&1; done
    bash "$svc/versitygw.sh" stop >/dev/null 2>&1
    bash "$svc/postgres.sh" stop >/dev/null 2>&1
    local m
    awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail_early() { t_not_ok "$1" "${@:2}"; t_summary cluster; exit 1; }

# ------------------------------------------------------------- services ---
pg_env=$(bash "$svc/postgres.sh" start) || fail_early "PostgreSQL starts" "$(tail -n 20 "$out_dir/logs/postgres.log" 2>/dev/null)"
eval "$pg_env"
db_url="${WHARF_TEST_POSTGRES_URL%/*}/wharf_cluster"
psql "$WHARF_TEST_POSTGRES_URL" -qc 'CREATE DATABASE wharf_cluster' || fail_early "database wharf_cluster created"
s3_env=$(bash "$svc/versitygw.sh" start) || fail_early "versitygw starts" "$(tail -n 20 "$out_dir/logs/versitygw.log" 2>/dev/null)"
set -a
eval "$s3_env"
set +a
t_ok "PostgreSQL and versitygw are up (${WHARF_TEST_POSTGRES_URL##*@}, $WHARF_TEST_S3_ENDPOINT)"

# Node C reaches both through TCP relays, so they can be cut for it alone.
pg_hostport=${WHARF_TEST_POSTGRES_URL##*@}
pg_hostport=${pg_hostport%%/*}
s3_hostport=${WHARF_TEST_S3_ENDPOINT#http://}
relay_db_port=$(free_port)
relay_s3_port=$(free_port)
relay() { # NAME PORT TARGET
    bash "$svc/haproxy.sh" start "$1" --tcp --port "$2" "target=$3" >/dev/null
}
relay relay-db "$relay_db_port" "$pg_hostport" || fail_early "TCP relay to PostgreSQL starts"
relay relay-s3 "$relay_s3_port" "$s3_hostport" || fail_early "TCP relay to versitygw starts"

# --------------------------------------------------------------- nodes ---
# One configuration for all; only node C's addresses of the database and
# object store differ (the relays). Retention and GC run every second with
# zero grace on every node, while clients push.
cat >"$out_dir/wharf.toml" <<EOF
[storage]
backend = "s3"
[storage.s3]
bucket = "$WHARF_TEST_S3_BUCKET"
region = "$WHARF_TEST_S3_REGION"
allow_http = true
prefix = "cluster"
[gc]
grace = "0s"
schedule = "1s"
[retention]
schedule = "1s"
[[retention.policies]]
name = "churn"
repositories = "cluster/churn/**"
keep_last = 2
delete_untagged_after = "0s"
[health]
timeout = "2s"
cache = "500ms"
[log]
level = "info"
[auth]
enabled = true
max_failed_logins = 5
[server]
# HAProxy connects from 127.0.0.1 and forwards the client's address.
trusted_proxies = ["127.0.0.1"]
EOF
admin_pw="cluster-admin-$RANDOM$RANDOM"

node_env() { # NODE: the environment of one node
    local db=$db_url s3=$WHARF_TEST_S3_ENDPOINT
    if [[ $1 == wharf-c ]]; then
        db=${db_url/$pg_hostport/127.0.0.1:$relay_db_port}
        s3=http://127.0.0.1:$relay_s3_port
    fi
    echo "WHARF_NODE__ID=$1"
    echo "WHARF_DATABASE__URL=$db"
    echo "WHARF_STORAGE__S3__ENDPOINT=$s3"
    echo "WHARF_STORAGE__S3__ACCESS_KEY_ID=$WHARF_TEST_S3_ACCESS_KEY_ID"
    echo "WHARF_STORAGE__S3__SECRET_ACCESS_KEY=$WHARF_TEST_S3_SECRET_ACCESS_KEY"
    # Every node may be the first on the empty database: each is told the
    # admin password, and exactly one admin account must result.
    echo "WHARF_ADMIN_PASSWORD=$admin_pw"
}

node_start() { # NODE [PORT]
    local n=$1 port=${2:-$(free_port)}
    local -a envs
    mapfile -t envs < <(node_env "$n")
    mkdir -p "$work/$n"
    # No AWS_* from the host: the S3 settings come from this test alone.
    env $(compgen -e | grep '^AWS_' | sed 's/^/-u /') "${envs[@]}" NO_COLOR=1 \
        "$WHARF_BIN" serve --config "$out_dir/wharf.toml" --listen "127.0.0.1:$port" --data-dir "$work/$n" \
        >>"$out_dir/logs/$n.log" 2>&1 </dev/null &
    NODE_PID[$n]=$!
    NODE_ADDR[$n]=127.0.0.1:$port
}

# All three start at once: migrations run under their advisory lock, and
# the admin bootstrap races.
for n in "${NODES[@]}"; do node_start "$n"; done
for n in "${NODES[@]}"; do
    if wait_http "http://${NODE_ADDR[$n]}/readyz" 90 "${NODE_PID[$n]}" &&
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://${NODE_ADDR[$n]}/readyz") == 200 ]]; then
        t_ok "node $n is up and ready on ${NODE_ADDR[$n]}"
    else
        fail_early "node $n is up and ready" "$(tail -n 30 "$out_dir/logs/$n.log")"
    fi
done

lb_env=$(bash "$svc/haproxy.sh" start lb "wharf-a=${NODE_ADDR[wharf-a]}" "wharf-b=${NODE_ADDR[wharf-b]}" "wharf-c=${NODE_ADDR[wharf-c]}") ||
    fail_early "HAProxy starts in front of the nodes"
eval "$lb_env"
lb=$HAPROXY_ADDR
lb_log=$HAPROXY_LOG

# server_state NODE: HAProxy's view (UP, DOWN, ...) from its runtime API.
server_state() {
    python3 - "$HAPROXY_SOCKET" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
lines = data.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
for line in lines[1:]:
    row = dict(zip(head, line.split(",")))
    if row.get("pxname") == "wharf" and row.get("svname") == sys.argv[2]:
        print(row["status"].split()[0])
EOF
}
# wait_state NODE STATE SECONDS
wait_state() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        [[ $(server_state "$1") == "$2" ]] && return 0
        sleep 0.2
    done
    return 1
}
all_up=1
for n in "${NODES[@]}"; do wait_state "$n" UP 15 || all_up=0; done
if ((all_up)); then
    t_ok "HAProxy on $lb sees the three nodes UP through GET /readyz"
else
    fail_early "HAProxy sees the three nodes UP" "$(for n in "${NODES[@]}"; do echo "$n: $(server_state "$n")"; done)"
fi

# ------------------------------------------------------------------ auth ---
# A token issued by one node is accepted by the two others.
auth_hdr=(-u "admin:$admin_pw")
token=$(curl -sS "${auth_hdr[@]}" "http://${NODE_ADDR[wharf-a]}/auth/token?service=wharf&scope=registry:catalog:*" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
codes=""
for n in wharf-b wharf-c; do
    codes+="$n:$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://${NODE_ADDR[$n]}/v2/") "
done
if [[ -n $token && $codes == "wharf-b:200 wharf-c:200 " ]]; then
    t_ok "a token issued by wharf-a is accepted by wharf-b and wharf-c"
else
    t_not_ok "a token issued by wharf-a is accepted by wharf-b and wharf-c" "token: ${token:0:20}... answers: $codes"
fi
n_admin=$(curl -sS "${auth_hdr[@]}" "http://$lb/api/v1/users" | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("users", d) if isinstance(d, dict) else d; print(sum(1 for u in d if u.get("name") == "admin"))' 2>&1)
if [[ $n_admin == 1 ]]; then
    t_ok "three nodes started at once on an empty database made exactly one admin account"
else
    t_not_ok "three nodes started at once made exactly one admin account" "$n_admin"
fi
# crane and docker log in through the load balancer and to each node (the
# pulls at the end go to each node directly).
export DOCKER_CONFIG="$work/docker-config"
mkdir -p "$DOCKER_CONFIG"
login_ok=1
for a in "$lb" "${NODE_ADDR[@]}"; do
    crane auth login "$a" -u admin -p "$admin_pw" >>"$out_dir/logs/crane.log" 2>&1 || login_ok=0
done
if ((login_ok)); then t_ok "crane auth login through the load balancer and to each node"; else t_not_ok "crane auth login" "$(tail -n 5 "$out_dir/logs/crane.log")"; fi

# Failed logins count on every node together: five wrong passwords through
# the load balancer (spread over the three nodes) lock the account out on
# all of them (auth.max_failed_logins = 5). The guesser connects from
# 127.0.0.2: HAProxy forwards that address, and the nodes (trusting
# 127.0.0.1, the balancer) count it, so the same account from 127.0.0.3 is
# only slowed, not locked.
code=$(curl -sS "${auth_hdr[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -X POST \
    -d '{"name":"guesser","password":"guesser-pw-12345"}' "http://$lb/api/v1/users")
codes=""
for i in 1 2 3 4 5; do
    codes+="$(curl -sS --interface 127.0.0.2 -u guesser:wrong-password -o /dev/null -w '%{http_code}' "http://$lb/v2/") "
done
codes+="$(curl -sS --interface 127.0.0.2 -u guesser:guesser-pw-12345 -o /dev/null -w '%{http_code}' "http://$lb/v2/")"
other=$(curl -sS --interface 127.0.0.3 -u guesser:guesser-pw-12345 -o /dev/null -w '%{http_code}' "http://$lb/v2/")
sleep 0.5 # HAProxy logs a request when it ends
guess_nodes=$(grep -F 'GET /v2/ ' "$lb_log" | grep -F '127.0.0.2:' | grep -o 'wharf/wharf-[abc]' | sort -u | tr '\n' ' ')
if [[ $code == 201 && $codes == "401 401 401 401 401 429" && $other == 200 ]] &&
    grep -qh 'peer=127.0.0.2' "$out_dir"/logs/wharf-[abc].log; then
    t_ok "5 failed logins spread over the nodes ($guess_nodes) lock the account on all of them for the client's address (the right password then answers 429; from another address 200)"
else
    t_not_ok "failed logins spread over the nodes count together, per forwarded client address (5 wrong, then the right password: 429; another address: 200)" \
        "create user: $code; answers: $codes; from 127.0.0.3: $other; nodes: $guess_nodes" \
        "a 200 last: each node counts its own failures; 429 from 127.0.0.3: X-Forwarded-For not used" \
        "access log lines naming 127.0.0.2: $(grep -ch 'peer=127.0.0.2' "$out_dir"/logs/wharf-[abc].log | tr '\n' ' ')"
fi

# retry N CMD...: a client retrying through the load balancer.
retry() {
    local n=$1 i rc=1
    shift
    for ((i = 1; i <= n; i++)); do
        "$@" && return 0
        rc=$?
        echo "retry: attempt $i of $* failed (exit $rc)" >&2
        sleep 1
    done
    return "$rc"
}

# ------------------------------------------------ chunked upload, 3 nodes ---
# up_post ADDR REPO / up_patch ADDR FILE OFFSET / up_put ADDR DIGEST: the
# steps of a chunked upload, each sent to ADDR (the load balancer or one
# node); UP_PATH is the session's path from the last Location, and each
# step appends its HTTP status to UP_CODES.
UP_PATH="" UP_CODES=""
up_location() { tr -d '\r' | sed -n 's/^[Ll]ocation: //p' | sed 's#^https\?://[^/]*##'; }
up_post() {
    local hdr
    hdr=$(curl -sS "${auth_hdr[@]}" -o /dev/null -D - -X POST "http://$1/v2/$2/blobs/uploads/")
    UP_PATH=$(up_location <<<"$hdr")
    UP_CODES="$(head -n 1 <<<"$hdr" | cut -d' ' -f2)"
}
up_patch() {
    local size hdr
    size=$(stat -c %s "$2")
    hdr=$(curl -sS "${auth_hdr[@]}" -o /dev/null -D - -X PATCH -H 'Content-Type: application/octet-stream' \
        -H "Content-Range: $3-$(($3 + size - 1))" --data-binary "@$2" "http://$1$UP_PATH")
    UP_PATH=$(up_location <<<"$hdr")
    UP_CODES+=" $(head -n 1 <<<"$hdr" | cut -d' ' -f2)"
}
up_put() {
    local sep='?'
    [[ $UP_PATH == *\?* ]] && sep='&'
    UP_CODES+=" $(curl -sS "${auth_hdr[@]}" -o /dev/null -w '%{http_code}' -X PUT "http://$1$UP_PATH${sep}digest=$2")"
}
# blob_sha REPO DIGEST: the digest of the blob as read back through the load
# balancer, or "collected" when zero-grace GC already took it (unreferenced).
blob_sha() {
    local code
    code=$(curl -sS "${auth_hdr[@]}" -o "$work/blob.out" -w '%{http_code}' "http://$lb/v2/$1/blobs/$2")
    case $code in
        200) echo "sha256:$(sha256sum <"$work/blob.out" | cut -d' ' -f1)" ;;
        404) echo collected ;;
        *) echo "HTTP $code" ;;
    esac
}

# POST, six PATCHes, PUT through the load balancer; HAProxy's log says which
# node served each request of this upload.
head -c 600000 /dev/urandom >"$work/chunked.bin"
digest="sha256:$(sha256sum <"$work/chunked.bin" | cut -d' ' -f1)"
split -b 100000 -d "$work/chunked.bin" "$work/chunk."
up_post "$lb" cluster/chunked
offset=0
for c in "$work"/chunk.*; do
    up_patch "$lb" "$c" "$offset"
    offset=$((offset + $(stat -c %s "$c")))
done
upload_id=${UP_PATH%%\?*}
upload_id=${upload_id##*/}
up_put "$lb" "$digest"
codes=$UP_CODES
got=$(blob_sha cluster/chunked "$digest")
if [[ $codes == "202 202 202 202 202 202 202 201" && ($got == "$digest" || $got == collected) ]]; then
    t_ok "chunked upload of 600 kB in 6 PATCHes through $lb: 201, and the blob reads back intact (or was already collected: $got)"
else
    t_not_ok "chunked upload through the load balancer" "POST, PATCH x6, PUT: $codes" "read back $got, want $digest"
fi
sleep 0.5 # HAProxy logs a request when it ends
patch_nodes=$(grep -F "PATCH /v2/cluster/chunked/blobs/uploads/$upload_id" "$lb_log" | grep -o 'wharf/wharf-[abc]' | sort | uniq -c | tr -s ' \n' ' ')
if (($(grep -F "PATCH /v2/cluster/chunked/blobs/uploads/$upload_id" "$lb_log" | grep -o 'wharf/wharf-[abc]' | sort -u | wc -l) >= 2)); then
    t_ok "the PATCHes of upload $upload_id landed on different nodes (HAProxy log: $patch_nodes)"
else
    t_not_ok "the PATCHes of one upload landed on different nodes" "HAProxy log: ${patch_nodes:-no PATCH line for $upload_id}"
fi

# ---------------------------------------------------------- test images ---
# make_layers DIR N: N small, distinct layer tarballs.
make_layers() {
    local d=$1 n=$2 i
    for ((i = 1; i <= n; i++)); do
        mkdir -p "$d/l$i/data"
        head -c $((20000 + RANDOM)) /dev/urandom >"$d/l$i/data/f$i.bin"
        tar --owner=0 --group=0 --numeric-owner -C "$d/l$i" -cf "$d/layer$i.tar" .
    done
}
accepted="$out_dir/accepted.txt" # REPO@DIGEST of every manifest a client saw accepted
: >"$accepted"
# push_image REF: crane append (retried through the load balancer); records the digest.
push_image() {
    local ref=$1 d
    d=$(mktemp -d "$work/img.XXXXXX")
    make_layers "$d" 3
    local outp
    if outp=$(retry 4 "$crane_bin" --insecure append --oci-empty-base -f "$d/layer1.tar" -f "$d/layer2.tar" -f "$d/layer3.tar" -t "$ref" 2>>"$out_dir/logs/crane.log"); then
        ref=${ref#"$lb"/}
        echo "${ref%:*}@${outp##*@}" >>"$accepted"
        echo "$ref ${outp##*@}" >>"$work/pushed.txt"
    else
        echo "PUSH FAILED $ref" >>"$work/push-failures.txt"
    fi
}

# -------------------------------------------------------------- docker ---
docker_dir=$work/d
mkdir -p "$docker_dir/root" "$docker_dir/exec" "$docker_dir/config" "$docker_dir/ctx"
printf '{"deprecated-key-path": "%s"}\n' "$docker_dir/key.json" >"$docker_dir/daemon.json"
export DOCKER_HOST="unix://$docker_dir/docker.sock" DOCKER_BUILDKIT=0
dockerd --config-file "$docker_dir/daemon.json" --data-root "$docker_dir/root" --exec-root "$docker_dir/exec" \
    --pidfile "$docker_dir/docker.pid" -H "$DOCKER_HOST" --storage-driver=vfs --iptables=false --ip6tables=false \
    --ip-masq=false --ip-forward=false --bridge=none --userland-proxy=false >"$out_dir/logs/dockerd.log" 2>&1 </dev/null &
dockerd_pid=$!

# ----------------------------------------- parallel pushes, kill a node ---
# Eight crane pushers and a churning repository (retention keeps its last
# two tags) through the load balancer; node B is SIGKILLed in the middle.
: >"$work/pushed.txt"
pushers=()
for i in 1 2 3 4 5 6 7 8; do
    (for v in 1 2 3; do push_image "$lb/cluster/app-$i:v$v"; done) &
    pushers+=($!)
done
(for v in $(seq 1 8); do push_image "$lb/cluster/churn/app:t$v"; done) &
pushers+=($!)
# An upload begun on wharf-b (two chunks) is continued on wharf-a and
# completed on wharf-c after wharf-b is killed.
up_post "${NODE_ADDR[wharf-b]}" cluster/orphan
up_patch "${NODE_ADDR[wharf-b]}" "$work/chunk.00" 0
up_patch "${NODE_ADDR[wharf-b]}" "$work/chunk.01" 100000
sleep 3
kill -KILL "${NODE_PID[wharf-b]}"
wait "${NODE_PID[wharf-b]}" 2>/dev/null
killed_at=$(date +%s)
log "cluster: SIGKILLed wharf-b (pid ${NODE_PID[wharf-b]}) while pushes run"
unset 'NODE_PID[wharf-b]'
if wait_state wharf-b DOWN 10; then
    t_ok "HAProxy took the killed node wharf-b out within $(($(date +%s) - killed_at)) s"
else
    t_not_ok "HAProxy took the killed node wharf-b out" "state: $(server_state wharf-b)"
fi
offset=200000
for c in "$work"/chunk.0[2-5]; do
    up_patch "${NODE_ADDR[wharf-a]}" "$c" "$offset"
    offset=$((offset + 100000))
done
up_put "${NODE_ADDR[wharf-c]}" "$digest"
codes=$UP_CODES
got=$(blob_sha cluster/orphan "$digest")
if [[ $codes == "202 202 202 202 202 202 202 201" && ($got == "$digest" || $got == collected) ]]; then
    t_ok "an upload begun on wharf-b before its SIGKILL was continued on wharf-a and completed on wharf-c (read back: $got)"
else
    t_not_ok "an upload begun on the killed node continues on the others" "POST+2 PATCH on b, 4 PATCH on a, PUT on c: $codes" "read back $got, want $digest"
fi
for p in "${pushers[@]}"; do wait "$p"; done
if [[ -s $work/push-failures.txt ]]; then
    t_not_ok "every push completed through the load balancer (clients retrying)" "$(cat "$work/push-failures.txt")" "$(tail -n 20 "$out_dir/logs/crane.log")"
else
    t_ok "all $(wc -l <"$work/pushed.txt") crane pushes completed through the load balancer despite the SIGKILL ($(grep -c '^retry:' "$out_dir/logs/crane.log" 2>/dev/null || echo 0) retries)"
fi

# Node B comes back on its address; HAProxy puts it back.
node_start wharf-b "${NODE_ADDR[wharf-b]#*:}"
if wait_state wharf-b UP 60; then
    t_ok "the restarted wharf-b is back UP in HAProxy"
else
    t_not_ok "the restarted wharf-b is back UP in HAProxy" "$(tail -n 20 "$out_dir/logs/wharf-b.log")"
fi

# --------------------------------------------------- parallel crane copies ---
copy_fail=0
copies=()
for i in 1 2 3 4 5 6; do
    (retry 4 crane copy "$lb/cluster/app-$i:v1" "$lb/cluster/copies/app-$i:v1" >>"$out_dir/logs/crane.log" 2>&1) &
    copies+=($!)
done
for p in "${copies[@]}"; do wait "$p" || copy_fail=$((copy_fail + 1)); done
for i in 1 2 3 4 5 6; do
    src_d=$(crane digest "$lb/cluster/app-$i:v1" 2>/dev/null)
    dst_d=$(crane digest "$lb/cluster/copies/app-$i:v1" 2>/dev/null)
    if [[ -n $src_d && $src_d == "$dst_d" ]]; then echo "cluster/copies/app-$i@$dst_d" >>"$accepted"; else copy_fail=$((copy_fail + 1)); fi
done
if ((copy_fail == 0)); then
    t_ok "6 crane copies in parallel through the load balancer, same digests"
else
    t_not_ok "6 crane copies in parallel through the load balancer" "$copy_fail failed" "$(tail -n 20 "$out_dir/logs/crane.log")"
fi

# ------------------------------------------------------ docker push/pull ---
docker_up=0
for ((i = 0; i < 150; i++)); do
    docker version >/dev/null 2>&1 && { docker_up=1; break; }
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.4
done
if ((docker_up)); then
    ctx=$docker_dir/ctx
    mkdir -p "$ctx/data"
    head -c 1500000 /dev/urandom >"$ctx/data/a.bin"
    seq 1 100000 >"$ctx/data/n.txt"
    printf 'FROM scratch\nCOPY data/a.bin /a.bin\nCOPY data/n.txt /n.txt\nCMD ["/x"]\n' >"$ctx/Dockerfile"
    img="$lb/cluster/docker/app:v1"
    t_check "docker login $lb as admin" docker login -u admin --password-stdin "$lb" <<<"$admin_pw"
    if docker build -q -t "$img" "$ctx" >"$work/build.out" 2>&1 && out=$(retry 3 docker push "$img" 2>&1); then
        d=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$out" | tail -n 1)
        id=$(docker image inspect -f '{{.Id}}' "$img")
        echo "cluster/docker/app@$d" >>"$accepted"
        docker rmi -f "$img" >/dev/null 2>&1
        if retry 3 docker pull -q "$img" >/dev/null 2>&1 && [[ $(docker image inspect -f '{{.Id}}' "$img") == "$id" ]]; then
            t_ok "docker push and pull through the load balancer give the same image ($d)"
        else
            t_not_ok "docker pull through the load balancer gives the pushed image"
        fi
    else
        t_not_ok "docker build and push through the load balancer" "$(cat "$work/build.out")" "${out:-}"
    fi
else
    t_not_ok "private dockerd is up" "$(tail -n 20 "$out_dir/logs/dockerd.log")"
fi

# ------------------------- promotions and rollbacks from two nodes at once ---
gov=cluster/gov
for v in 1 2 3 4 5 6; do push_image "$lb/$gov:v$v"; done
mapfile -t gov_digests < <(grep "^$gov:" "$work/pushed.txt" | cut -d" " -f2)
# promoter NODE DIGEST...: each digest through test, preprod, prod, then a
# rollback of prod; every answer is 200, 201 or 409 (a refusal), never 5xx.
promoter() {
    local node=$1 d s code
    shift
    for d in "$@"; do
        for s in test preprod prod; do
            code=$(curl -sS "${auth_hdr[@]}" -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
                -d "{\"reference\":\"$d\",\"stage\":\"$s\"}" "http://${NODE_ADDR[$node]}/api/v1/repositories/$gov/promotions")
            echo "$node promote $s $d $code"
        done
        code=$(curl -sS "${auth_hdr[@]}" -o /dev/null -w '%{http_code}' -X POST "http://${NODE_ADDR[$node]}/api/v1/repositories/$gov/stages/prod/rollback")
        echo "$node rollback prod $code"
    done
}
if ((${#gov_digests[@]} == 6)); then
    promoter wharf-a "${gov_digests[@]:0:3}" >"$work/promo-a.txt" &
    pa=$!
    promoter wharf-c "${gov_digests[@]:3:3}" >"$work/promo-c.txt" &
    pc=$!
    wait "$pa" "$pc"
    cat "$work/promo-a.txt" "$work/promo-c.txt" >"$out_dir/promotions.txt"
    bad=$(awk '$NF !~ /^(200|201|409)$/' "$out_dir/promotions.txt")
    n201=$(awk '$NF == 201' "$out_dir/promotions.txt" | wc -l)
    if [[ -z $bad ]] && ((n201 >= 6)); then
        t_ok "promotions and rollbacks sent to wharf-a and wharf-c at once: $n201 created, none failed"
    else
        t_not_ok "promotions and rollbacks from two nodes at once answer 200/201/409" "${bad:-only $n201 created}"
    fi
else
    t_not_ok "six images pushed for the promotions" "got ${#gov_digests[@]}"
fi

# Let GC and retention loop a little longer over the final state.
sleep 3

# -------------------------------------------------------------- verify ---
live=(wharf-a wharf-b wharf-c)
# Each stage's current release is its newest (highest sequence, sequences
# 1..N without gaps), and the stage tag resolves to it on every node.
stage_report=$(python3 - "$lb" "$gov" "$admin_pw" <<EOF 2>&1
import base64, json, sys, urllib.request
lb, repo, pw = sys.argv[1], sys.argv[2], sys.argv[3]
basic = "Basic " + base64.b64encode(f"admin:{pw}".encode()).decode()
nodes = {$(for n in "${live[@]}"; do printf '"%s": "%s", ' "$n" "${NODE_ADDR[$n]}"; done)}
def get(addr, path, accept=None):
    req = urllib.request.Request(f"http://{addr}{path}", headers={"Authorization": basic})
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=20) as r:
        return r.read(), r.headers
stages = json.loads(get(lb, f"/api/v1/repositories/{repo}/stages")[0])["stages"]
bad = []
for st in stages:
    cur = st["current"]
    if cur is None:
        bad.append(f"{st['stage']}: no current release")
        continue
    rel = json.loads(get(lb, f"/api/v1/repositories/{repo}/stages/{st['stage']}/releases?n=1000")[0])["releases"]
    seqs = sorted(r["sequence"] for r in rel)
    if seqs != list(range(1, len(seqs) + 1)):
        bad.append(f"{st['stage']}: release sequences are not 1..{len(seqs)}: {seqs}")
    if rel[0]["sequence"] != cur["sequence"] or rel[0]["digest"] != cur["digest"]:
        bad.append(f"{st['stage']}: current is #{cur['sequence']} {cur['digest']}, newest release is #{rel[0]['sequence']} {rel[0]['digest']}")
    for n, addr in nodes.items():
        _, h = get(addr, f"/v2/{repo}/manifests/{st['stage']}", "application/vnd.oci.image.manifest.v1+json")
        if h["Docker-Content-Digest"] != cur["digest"]:
            bad.append(f"{st['stage']}: tag on {n} resolves to {h['Docker-Content-Digest']}, stage says {cur['digest']}")
    print(f"{st['stage']}: #{cur['sequence']} of {len(rel)} releases")
if bad:
    print("\n".join(bad))
    sys.exit(1)
EOF
)
if [[ $? == 0 ]]; then
    t_ok "every stage points at its newest release, and its tag resolves to it on every node ($(tr '\n' ' ' <<<"$stage_report"))"
else
    t_not_ok "every stage points at its newest release on every node" "$stage_report"
fi

# Every accepted manifest pulls completely (crane validate fetches and checks
# every blob) from each node. The churning repository keeps only what
# retention keeps: there, every tag still listed pulls completely.
sort -u "$accepted" | grep -v '^cluster/churn/' >"$work/check.txt"
for t in $(crane ls "$lb/cluster/churn/app" 2>/dev/null); do
    echo "cluster/churn/app:$t" >>"$work/check.txt"
done
nchurn=$(grep -c '^cluster/churn/' "$work/check.txt")
pull_bad=""
while read -r ref; do
    for n in "${live[@]}"; do
        crane validate --remote "${NODE_ADDR[$n]}/$ref" >/dev/null 2>>"$out_dir/logs/validate.log" || pull_bad+="$ref from $n"$'\n'
    done
done <"$work/check.txt"
total=$(wc -l <"$work/check.txt")
if [[ -z $pull_bad ]] && ((total > 30)); then
    t_ok "all $total accepted manifests pull completely from each of the 3 nodes (churn repository: $nchurn tags kept by retention)"
else
    t_not_ok "every accepted manifest pulls completely from every node" "$(head -n 20 <<<"$pull_bad")" "of $total; see $out_dir/logs/validate.log"
fi
if ((nchurn >= 1 && nchurn <= 2)); then
    t_ok "retention kept $nchurn of 8 tags in cluster/churn/app (keep_last = 2)"
else
    t_not_ok "retention kept at most the last 2 tags of cluster/churn/app" "kept $nchurn"
fi

verify=$(curl -sS "${auth_hdr[@]}" "http://$lb/api/v1/audit/verify")
if python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["valid"] and r["rows_checked"] > 0' "$verify" 2>/dev/null; then
    t_ok "the audit chain verifies ($(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rows_checked"])' "$verify") rows)"
else
    t_not_ok "the audit chain verifies" "$verify"
fi

# No node answered 500: a race is a retry or a clear refusal, never an
# internal error. (HAProxy's own 502/503 for the killed node are not Wharf's.)
errors=$(grep -E ' wharf/wharf-[abc] [-0-9/]+ 5[0-9][0-9] ' "$lb_log" | grep -vE ' (SH|SD|SC|sH|sD|sC|CH|CD|CC)[-A-Za-z]{2} ' || true)
if [[ -z $errors ]]; then
    t_ok "no node answered 5xx to any of $(grep -c ' wharf/wharf-' "$lb_log") requests through the load balancer"
else
    t_not_ok "no node answered 5xx through the load balancer" "$(head -n 10 <<<"$errors")"
fi
for n in "${NODES[@]}"; do
    if grep -qE ' ERROR |panicked' "$out_dir/logs/$n.log"; then
        t_not_ok "no ERROR or panic in the log of $n" "$(grep -E ' ERROR |panicked' "$out_dir/logs/$n.log" | head -n 8 | cut -c1-400)"
    else
        t_ok "no ERROR or panic in the log of $n"
    fi
done

# With zero grace, GC may collect the layers of a push before its manifest
# arrives: that manifest PUT is refused (MANIFEST_BLOB_UNKNOWN), never
# accepted without its blobs, and the client pushes again. Counted, for the log.
refused=$(grep -cE ' wharf/wharf-[abc] [-0-9/]+ 400 .*"PUT /v2/[^ ]*/manifests/' "$lb_log")
log "cluster: $refused manifest PUTs answered 400; crane reported MANIFEST_BLOB_UNKNOWN $(grep -c MANIFEST_BLOB_UNKNOWN "$out_dir/logs/crane.log") times (layers collected by zero-grace GC before their manifest came); clients pushed again"

# Each scheduled run happened on exactly one node: the audit row of every
# GC and retention run names the one node that held the job's lease, and
# runs of one job never overlap in time (each started after the previous
# one finished; a run cut short by the SIGKILL wrote no row).
runs=$(python3 - "$lb" "$admin_pw" "${NODES[@]}" <<'EOF' 2>&1
import base64, json, sys, urllib.request
lb, nodes = sys.argv[1], set(sys.argv[3:])
basic = "Basic " + base64.b64encode(f"admin:{sys.argv[2]}".encode()).decode()
def rows(action):
    out, cursor = [], None
    while True:
        url = f"http://{lb}/api/v1/audit?action={action}&n=1000" + (f"&cursor={cursor}" if cursor else "")
        page = json.load(urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": basic}), timeout=30))
        out += page["entries"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out
summary, bad = [], []
for action in ("gc.run", "retention.run"):
    runs = rows(action)
    if not runs:
        bad.append(f"no {action} row (job leases with the holder: not in this build)")
        continue
    holders, spans = {}, []
    for r in runs:
        d = r["details"] if isinstance(r["details"], dict) else {}
        h = d.get("holder")
        if not isinstance(h, str) or h not in nodes:
            bad.append(f"{action} row {r['id']}: holder is {h!r}, not one of {sorted(nodes)}")
            continue
        if d.get("trigger") != "schedule":
            bad.append(f"{action} row {r['id']}: trigger {d.get('trigger')!r}, not schedule")
        start, end = d.get("started_at"), d.get("finished_at")
        if not (isinstance(start, int) and isinstance(end, int) and start <= end):
            bad.append(f"{action} row {r['id']}: started_at {start!r}, finished_at {end!r}")
            continue
        holders[h] = holders.get(h, 0) + 1
        spans.append((start, end, h, r["id"]))
    spans.sort()
    for (s0, e0, h0, i0), (s1, e1, h1, i1) in zip(spans, spans[1:]):
        if s1 < e0:
            bad.append(f"{action}: row {i1} ({h1}) started at {s1}, before row {i0} ({h0}) finished at {e0}")
    summary.append(f"{action}: {len(runs)} runs by holder {holders}")
print("; ".join(summary))
if bad:
    print("\n".join(bad[:20]))
    sys.exit(1)
EOF
)
if [[ $? == 0 ]]; then
    t_ok "each scheduled GC/retention run was recorded with exactly one holder, runs of one job never overlapping ($runs)"
else
    t_not_ok "each scheduled run happened on exactly one node, runs of one job not overlapping" "$runs" \
        "runs finished per node (logs): $(for n in "${NODES[@]}"; do printf '%s gc=%s retention=%s; ' "$n" "$(grep -c 'garbage collection finished' "$out_dir/logs/$n.log")" "$(grep -c 'retention finished' "$out_dir/logs/$n.log")"; done)"
fi

# ----------------------------------------------------------- readiness ---
# The object store, then the database, unreachable from wharf-c alone:
# /readyz says which, HAProxy takes wharf-c out, requests through the load
# balancer keep succeeding, and wharf-c is back once they are reachable.
readiness_cut() { # RELAY PORT TARGET WHAT
    local relay_name=$1 port=$2 target=$3 what=$4 body codes="" i
    bash "$svc/haproxy.sh" stop "$relay_name" >/dev/null
    if wait_state wharf-c DOWN 15; then
        body=$(curl -sS "http://${NODE_ADDR[wharf-c]}/readyz")
        t_ok "$what unreachable from wharf-c: HAProxy takes it out (/readyz: $body)"
    else
        t_not_ok "$what unreachable from wharf-c: HAProxy takes it out" "state $(server_state wharf-c); /readyz: $(curl -sS "http://${NODE_ADDR[wharf-c]}/readyz")"
    fi
    for i in 1 2 3 4 5 6 7 8 9; do
        codes+="$(curl -sS "${auth_hdr[@]}" -o /dev/null -w '%{http_code}' "http://$lb/v2/cluster/app-1/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json') "
    done
    if [[ $codes == "200 200 200 200 200 200 200 200 200 " ]]; then
        t_ok "meanwhile 9 manifest GETs through the load balancer all answer 200"
    else
        t_not_ok "meanwhile manifest GETs through the load balancer all answer 200" "$codes"
    fi
    relay "$relay_name" "$port" "$target" || t_not_ok "relay $relay_name restarts"
    if wait_state wharf-c UP 30; then
        t_ok "$what reachable again: wharf-c is back UP"
    else
        t_not_ok "$what reachable again: wharf-c is back UP" "/readyz: $(curl -sS "http://${NODE_ADDR[wharf-c]}/readyz")" "$(tail -n 10 "$out_dir/logs/wharf-c.log" | cut -c1-300)"
    fi
}
readiness_cut relay-s3 "$relay_s3_port" "$s3_hostport" "object store"
readiness_cut relay-db "$relay_db_port" "$pg_hostport" "database"

for n in "${NODES[@]}"; do
    curl -s "http://${NODE_ADDR[$n]}/metrics" >"$out_dir/metrics-$n.txt" 2>/dev/null
done
t_summary cluster
