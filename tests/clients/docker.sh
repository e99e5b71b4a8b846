#!/usr/bin/env bash
# Black-box test of a registry with the real Docker client.
#
# Usage: tests/clients/docker.sh REGISTRY_HOSTPORT      (e.g. 127.0.0.1:5000)
#
# Runs its OWN dockerd (as root: vfs storage, no bridge, no iptables, private
# data-root/exec-root/pidfile/socket under a temp dir) and stops it on exit.
# Nothing can be pulled from outside, so the test image is built locally
# FROM scratch with several COPY/ADD layers of generated files.
# Prints "ok - NAME" / "not ok - NAME" per check, then
# "docker: N passed, N failed"; exits non-zero if any check failed.
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"

if [[ $# -ne 1 || -z $1 || $1 == *://* ]]; then
    echo "usage: $0 REGISTRY_HOSTPORT   (e.g. 127.0.0.1:5000, no scheme)" >&2
    exit 2
fi
reg=$1

if [[ $EUID -ne 0 ]]; then
    t_not_ok "running as root (a private dockerd needs root)"
    t_summary docker
    exit 1
fi

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    "$WHARF_ROOT/tests/env/install.sh" docker || die "could not install docker.io"
fi

# Short base path: dockerd and containerd put unix sockets under exec-root.
work=$(mktemp -d /tmp/wdk.XXXXXX)
dockerd_pid=""
# dockerd always creates /run/docker/plugins; remove it again if it is ours.
run_docker_existed=0
[[ -e /run/docker ]] && run_docker_existed=1
cleanup() {
    local rc=$?
    if [[ -n $dockerd_pid ]]; then
        stop_pid "$dockerd_pid" dockerd
    fi
    # dockerd may leave mounts below its roots; unmount before removing.
    local m
    awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$work"
    if ((!run_docker_existed)); then
        rmdir /run/docker/plugins /run/docker 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/root" "$work/exec" "$work/config" "$work/ctx"
# Private daemon.json; keep the daemon's identity key out of /etc/docker.
printf '{"deprecated-key-path": "%s"}\n' "$work/key.json" >"$work/daemon.json"
export DOCKER_HOST="unix://$work/docker.sock"
export DOCKER_CONFIG="$work/config"
export DOCKER_BUILDKIT=0 # the legacy builder needs no buildx/buildkit
dockerd_log="$WHARF_RESULTS_DIR/logs/dockerd.log"
mkdir -p "$(dirname "$dockerd_log")"

insecure_args=()
case $reg in
    127.*|localhost:*|localhost) ;; # Docker treats 127.0.0.0/8 as insecure by default
    *) insecure_args=(--insecure-registry "$reg") ;;
esac

dockerd \
    --config-file "$work/daemon.json" \
    --data-root "$work/root" \
    --exec-root "$work/exec" \
    --pidfile "$work/docker.pid" \
    -H "$DOCKER_HOST" \
    --storage-driver=vfs \
    --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
    --bridge=none \
    --userland-proxy=false \
    "${insecure_args[@]}" \
    >"$dockerd_log" 2>&1 </dev/null &
dockerd_pid=$!

up=0
for ((i = 0; i < 150; i++)); do
    if docker version >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.4
done
if ((up)); then
    t_ok "private dockerd is up ($(docker version -f '{{.Server.Version}}' 2>/dev/null), storage $(docker info -f '{{.Driver}}' 2>/dev/null))"
else
    t_not_ok "private dockerd is up" "$(tail -n 25 "$dockerd_log")"
    t_summary docker
    exit 1
fi

if [[ ${#insecure_args[@]} -eq 0 ]]; then
    # Verify the default: 127.0.0.0/8 is listed as an insecure registry CIDR.
    cidrs=$(docker info -f '{{range .RegistryConfig.InsecureRegistryCIDRs}}{{.}} {{end}}' 2>&1)
    if [[ " $cidrs " == *" 127.0.0.0/8 "* ]]; then
        t_ok "loopback registry $reg is insecure (plain HTTP) by default"
    else
        t_not_ok "loopback registry $reg is insecure (plain HTTP) by default" "insecure CIDRs: $cidrs"
    fi
fi

# ---------------------------------------------------------- build image ---
ctx=$work/ctx
mkdir -p "$ctx/etc" "$ctx/data/sub" "$ctx/tree/a/b"
printf 'wharf docker client test %s\n' "$(date -u +%FT%TZ) $$ $RANDOM" >"$ctx/etc/motd"
head -c 3000000 /dev/urandom >"$ctx/data/random.bin"  # ~3 MB, incompressible
seq 1 200000 >"$ctx/data/sub/numbers.txt"             # ~1.3 MB, compressible
for n in 1 2 3 4 5; do head -c $((n * 1111)) /dev/urandom >"$ctx/tree/a/b/f$n"; done
tar -C "$ctx/tree" -cf "$ctx/tree.tar" a
head -c 512 /dev/urandom >"$ctx/single.bin"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY etc/ /etc/
COPY data/ /data/
ADD tree.tar /opt/tree/
COPY single.bin /single.bin
LABEL org.opencontainers.image.title="wharf docker client test"
CMD ["/nonexistent"]
EOF
(cd "$ctx" && find etc data single.bin -type f -exec sha256sum {} + ; cd "$ctx/tree" && find a -type f -exec sha256sum {} + | sed 's#  a/#  opt/tree/a/#') \
    | sort -k2 >"$work/expected.sha256"

# Unique repository per run, so the first push really uploads every layer.
repo="$reg/wharf-it/docker-$(date +%s)-$RANDOM"
img="$repo/multilayer"
if t_check "build multi-layer image FROM scratch (legacy builder)" docker build -q -t "$img:v1" "$ctx"; then
    built=1
else
    built=0
fi

if ((built)); then
    image_id=$(docker image inspect -f '{{.Id}}' "$img:v1")
    layers=$(docker image inspect -f '{{range .RootFS.Layers}}{{.}} {{end}}' "$img:v1")
    nlayers=$(wc -w <<<"$layers")
    if ((nlayers >= 4)); then
        t_ok "image has $nlayers layers"
    else
        t_not_ok "image has at least 4 layers" "layers: $layers"
    fi

    # ---------------------------------------------------------------- push ---
    pushed_digest=""
    if t_check "docker push $img:v1" docker push "$img:v1"; then
        push1_out=$T_OUT
        pushed_digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$push1_out" | tail -n 1)
        npushed=$(grep -c ': Pushed' <<<"$push1_out" || true)
        if [[ -n $pushed_digest && $npushed -eq $nlayers ]]; then
            t_ok "first push uploaded all $nlayers layers and reported manifest digest $pushed_digest"
        else
            t_not_ok "first push uploaded all layers and reported a digest" "pushed=$npushed layers=$nlayers digest=${pushed_digest:-none}" "$push1_out"
        fi
    fi

    # ---------------------------------------------------- remove and pull ---
    docker rmi -f "$img:v1" >/dev/null 2>&1
    if docker image inspect "$image_id" >/dev/null 2>&1; then
        t_not_ok "local image removed before pulling" "$(docker images 2>&1)"
    else
        t_ok "local image removed before pulling"
    fi

    if t_check "docker pull $img:v1" docker pull "$img:v1"; then
        pulled_id=$(docker image inspect -f '{{.Id}}' "$img:v1" 2>&1)
        pulled_layers=$(docker image inspect -f '{{range .RootFS.Layers}}{{.}} {{end}}' "$img:v1" 2>&1)
        if [[ $pulled_id == "$image_id" && $pulled_layers == "$layers" ]]; then
            t_ok "pulled image has the same image ID and layer diff IDs"
        else
            t_not_ok "pulled image has the same image ID and layer diff IDs" "pushed $image_id / $layers" "pulled $pulled_id / $pulled_layers"
        fi
        repo_digest=$(docker image inspect -f '{{range .RepoDigests}}{{.}} {{end}}' "$img:v1" 2>&1)
        if [[ -n $pushed_digest && $repo_digest == *"@$pushed_digest"* ]]; then
            t_ok "pulled manifest digest equals pushed digest"
        else
            t_not_ok "pulled manifest digest equals pushed digest" "pushed ${pushed_digest:-none}, repo digests: $repo_digest"
        fi
        # Compare the files (a created, never started container can be exported).
        mkdir -p "$work/export"
        if cid=$(docker create "$img:v1" 2>"$work/export.err") &&
            docker export "$cid" 2>>"$work/export.err" | tar -C "$work/export" -xf - 2>>"$work/export.err"; then
            cut -c67- "$work/expected.sha256" | (cd "$work/export" && xargs -d '\n' sha256sum) 2>&1 | sort -k2 >"$work/actual.sha256"
            if cmp -s "$work/expected.sha256" "$work/actual.sha256"; then
                t_ok "pulled image content matches the built files ($(wc -l <"$work/expected.sha256") files)"
            else
                t_not_ok "pulled image content matches the built files" "$(diff "$work/expected.sha256" "$work/actual.sha256" | head -n 20)"
            fi
            docker rm "$cid" >/dev/null 2>&1
        else
            t_not_ok "pulled image content matches the built files" "create/export failed: $cid" "$(cat "$work/export.err" 2>/dev/null)"
        fi
    fi

    # ------------------------------------------------------ pull by digest ---
    if [[ -n $pushed_digest ]]; then
        docker rmi -f "$img:v1" >/dev/null 2>&1
        if t_check "docker pull $img@$pushed_digest" docker pull "$img@$pushed_digest"; then
            got=$(docker image inspect -f '{{.Id}}' "$img@$pushed_digest" 2>&1)
            if [[ $got == "$image_id" ]]; then
                t_ok "image pulled by digest has the same image ID"
            else
                t_not_ok "image pulled by digest has the same image ID" "expected $image_id, got $got"
            fi
        fi
        docker tag "$image_id" "$img:v1" >/dev/null 2>&1
    else
        t_not_ok "docker pull by digest" "no digest known from the push"
    fi

    # -------------------------------------------- push again, other tag ---
    docker tag "$image_id" "$img:v2"
    if t_check "second docker push of the same image as $img:v2" docker push "$img:v2"; then
        out=$T_OUT
        nexist=$(grep -c ': Layer already exists' <<<"$out" || true)
        if ((nexist == nlayers)) && ! grep -q ': Pushed' <<<"$out"; then
            t_ok "second push: all $nlayers layers 'Layer already exists'"
        else
            t_not_ok "second push: all $nlayers layers 'Layer already exists'" "already exists: $nexist" "$out"
        fi
        d2=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$out" | tail -n 1)
        if [[ -n $d2 && $d2 == "$pushed_digest" ]]; then
            t_ok "second push reports the same manifest digest"
        else
            t_not_ok "second push reports the same manifest digest" "first ${pushed_digest:-none}, second ${d2:-none}"
        fi
    fi

    # ----------------------------------- push to another repo: blob mount ---
    other="$repo/mounted:v1"
    docker tag "$image_id" "$other"
    if t_check "docker push of the same image to a second repository" docker push "$other"; then
        out=$T_OUT
        nmount=$(grep -c -E ': (Mounted from|Layer already exists)' <<<"$out" || true)
        if ((nmount == nlayers)) && ! grep -q ': Pushed' <<<"$out"; then
            t_ok "second repository: layers cross-mounted, none uploaded again"
        else
            t_not_ok "second repository: layers cross-mounted, none uploaded again" "$out"
        fi
    fi

    # ------------------------------------------ governance: stages, rollback ---
    # Promote through every stage by the API, then `docker pull :prod` must give
    # exactly the promoted image; a newer release and a rollback move it.
    repo_path=${img#"$reg"/}
    promote() { # REFERENCE STAGE
        curl -sS -o "$work/promote.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            -d "{\"reference\":\"$1\",\"stage\":\"$2\"}" "http://$reg/api/v1/repositories/$repo_path/promotions"
    }
    pull_prod_id() {
        docker rmi -f "$img:prod" >/dev/null 2>&1
        docker pull -q "$img:prod" >/dev/null 2>&1 && docker image inspect -f '{{.Id}}' "$img:prod"
    }
    if [[ -n $pushed_digest ]]; then
        codes=""
        for stage in test preprod prod; do codes+="$(promote "$pushed_digest" "$stage") "; done
        if [[ $codes == "201 201 201 " ]]; then
            t_ok "promoted $pushed_digest through test, preprod, prod"
        else
            t_not_ok "promote through test, preprod, prod" "HTTP codes: $codes" "$(cat "$work/promote.out")"
        fi
        if [[ $(pull_prod_id) == "$image_id" ]]; then
            t_ok "docker pull $img:prod gives the promoted image"
        else
            t_not_ok "docker pull $img:prod gives the promoted image" "expected $image_id"
        fi
        # A second, different image released to prod.
        printf 'release two %s\n' "$RANDOM" >"$ctx/etc/motd"
        if docker build -q -t "$img:v3" "$ctx" >/dev/null 2>&1 && docker push "$img:v3" >"$work/push3.out" 2>&1; then
            id3=$(docker image inspect -f '{{.Id}}' "$img:v3")
            d3=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' "$work/push3.out" | tail -n 1)
            codes=""
            for stage in test preprod prod; do codes+="$(promote "$d3" "$stage") "; done
            if [[ $codes == "201 201 201 " && $(pull_prod_id) == "$id3" ]]; then
                t_ok "a newer release moves $img:prod"
            else
                t_not_ok "a newer release moves $img:prod" "codes: $codes"
            fi
            code=$(curl -sS -o "$work/rollback.out" -w '%{http_code}' -X POST "http://$reg/api/v1/repositories/$repo_path/stages/prod/rollback")
            if [[ $code == 201 && $(pull_prod_id) == "$image_id" ]]; then
                t_ok "rollback of prod: docker pull $img:prod gives the previous image again"
            else
                t_not_ok "rollback of prod restores the previous image" "HTTP $code" "$(cat "$work/rollback.out")"
            fi
        else
            t_not_ok "build and push a second release" "$(cat "$work/push3.out" 2>/dev/null)"
        fi
        # A CI retry of the promotion now current in prod: 200, nothing new.
        code=$(promote "$pushed_digest" prod)
        if [[ $code == 200 ]] && grep -q '"unchanged":true' "$work/promote.out"; then
            t_ok "promoting the digest already current in prod again is an idempotent 200"
        else
            t_not_ok "promoting the current prod digest again answers 200 unchanged" "HTTP $code" "$(cat "$work/promote.out")"
        fi
        docker tag "$image_id" "$img:prod"
        if out=$(docker push "$img:prod" 2>&1); then
            t_not_ok "docker push to the stage tag $img:prod is refused" "$out"
        elif grep -qi 'denied: prod is a stage tag' <<<"$out" && ! grep -qi 'denied: denied' <<<"$out"; then
            t_ok "docker push to the stage tag $img:prod is refused, saying why once (denied: prod is a stage tag...)"
        else
            t_not_ok "docker push to the stage tag $img:prod is refused with 'denied: prod is a stage tag', said once" "$out"
        fi
    else
        t_not_ok "governance checks" "no digest known from the push"
    fi

    # ---------------------------------------------------- negative pulls ---
    if out=$(docker pull "$img:no-such-tag" 2>&1); then
        t_not_ok "pull of a missing tag fails" "$out"
    elif grep -qiE 'not found|manifest unknown' <<<"$out"; then
        t_ok "pull of a missing tag fails with 'not found'"
    else
        t_not_ok "pull of a missing tag fails with 'not found'" "$out"
    fi

    # --------------------------------------- access control: docker login ---
    # Against a second Wharf with auth on (run-all.sh starts it).
    if [[ -n ${WHARF_TEST_AUTH_REGISTRY:-} ]]; then
        areg=$WHARF_TEST_AUTH_REGISTRY
        aimg="$areg/team/app"
        if robot=$(make_test_accounts "$areg" "$WHARF_TEST_ADMIN_PASSWORD"); then
            t_ok "accounts dev, reader and robot ci created through the management API"
        else
            t_not_ok "accounts created through the management API"
        fi
        docker tag "$image_id" "$aimg:v1"
        if out=$(docker push "$aimg:v1" 2>&1); then
            t_not_ok "docker push without login is refused" "$out"
        else
            t_ok "docker push without login is refused"
        fi
        if t_check "docker login $areg as reader" docker login -u reader --password-stdin "$areg" <<<"$TEST_USER_PASSWORD"; then
            if out=$(docker push "$aimg:v1" 2>&1); then
                t_not_ok "docker push as reader is refused" "$out"
            elif grep -qiE 'denied' <<<"$out"; then
                t_ok "docker push as reader is refused (denied)"
            else
                t_not_ok "docker push as reader is refused with 'denied'" "$out"
            fi
        fi
        if out=$(docker login -u dev --password-stdin "$areg" <<<"wrong-password" 2>&1); then
            t_not_ok "docker login with a wrong password fails" "$out"
        else
            t_ok "docker login with a wrong password fails"
        fi
        if t_check "docker login $areg as dev" docker login -u dev --password-stdin "$areg" <<<"$TEST_USER_PASSWORD" &&
            t_check "docker push $aimg:v1 as dev" docker push "$aimg:v1"; then
            docker rmi -f "$aimg:v1" >/dev/null 2>&1
            if t_check "docker pull $aimg:v1 as dev" docker pull "$aimg:v1" &&
                [[ $(docker image inspect -f '{{.Id}}' "$aimg:v1") == "$image_id" ]]; then
                t_ok "image pulled with credentials is the pushed image"
            else
                t_not_ok "image pulled with credentials is the pushed image"
            fi
        fi
        t_check "docker logout $areg" docker logout "$areg"
        docker rmi -f "$aimg:v1" >/dev/null 2>&1
        if out=$(docker pull "$aimg:v1" 2>&1); then
            t_not_ok "docker pull after logout is refused" "$out"
        else
            t_ok "docker pull after logout is refused"
        fi
        if [[ -n $robot ]] && t_check "docker login as robot ci with its token" docker login -u ci --password-stdin "$areg" <<<"$robot" &&
            t_check "docker pull $aimg:v1 as robot ci" docker pull "$aimg:v1"; then
            docker logout "$areg" >/dev/null 2>&1
        fi
    fi
fi

# ------------------------------------------------------------- image diff ---
# Two versions of an image built and pushed by docker; the diff API must report
# each known difference and nothing else (tests/clients/docker_diff.sh).
. "$(dirname "$0")/docker_diff.sh"

# --------------------------------------------------- backup and restore ---
# wharf backup create / restore on a Wharf of its own, then docker pull :prod,
# every release of the rollback window, a rollback (tests/clients/docker_restore.sh).
. "$(dirname "$0")/docker_restore.sh"

# ------------------------------------------------------- quiet server log ---
# Every login, push and pull above went through docker's TLS probe of the
# plain port; none of that, nor any refusal, is an ERROR on the server.
# run-all.sh names the Wharf logs (not set against other registries).
for server_log in ${WHARF_TEST_SERVER_LOGS:-}; do
    if errors=$(grep -E '(^|[[:space:]])ERROR[[:space:]]' "$server_log"); then
        t_not_ok "no ERROR line in the server log $(basename "$server_log")" "$(head -n 10 <<<"$errors")"
    elif [[ -s $server_log ]]; then
        t_ok "no ERROR line in the server log $(basename "$server_log") after login, push and pull"
    else
        t_not_ok "server log $server_log exists and is not empty"
    fi
done

t_summary docker
