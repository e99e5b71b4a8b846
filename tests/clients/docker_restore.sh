# Sourced by tests/clients/docker.sh (needs its dockerd, $work, $ctx and the
# image $image_id built there). Backup and restore as an operator runs them,
# checked with the real docker client: on a Wharf of its own, two releases go
# through the stages; `wharf backup create` runs while docker keeps pushing;
# the server is stopped, its data directory wiped, `wharf restore` run, the
# server started again; then `docker pull :prod` and every release of prod's
# rollback window give the images pushed, a rollback works and the audit chain
# verifies. Wharf only (run-all.sh sets WHARF_TEST_SERVER).

restore_check() {
    local name=wharf-docker-restore dir data port pid rreg rrepo api backup="$work/backup" id1 id2 d1 d2 out code
    server_start "$name" fs "$name" || { t_not_ok "backup/restore: a Wharf of its own starts"; return; }
    rreg=${SERVER_ADDR[$name]}
    port=${rreg##*:}
    dir=${SERVER_DIR[$name]}
    data=$dir/data
    rrepo="$rreg/restore/app"
    api="http://$rreg/api/v1/repositories/restore/app"

    # Release 1 and release 2, each promoted through every stage.
    release() { # TAG: push, print the digest, promote it to test, preprod, prod
        local out d s
        out=$(docker push "$rrepo:$1" 2>&1) || { echo "push: $out" >&2; return 1; }
        d=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$out" | tail -n 1)
        for s in test preprod prod; do
            curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
                -d "{\"reference\":\"$d\",\"stage\":\"$s\"}" "$api/promotions" || { echo "promote $d to $s failed" >&2; return 1; }
        done
        echo "$d"
    }
    docker tag "$image_id" "$rrepo:r1"
    id1=$image_id
    printf 'restore release two %s\n' "$RANDOM$RANDOM" >"$ctx/etc/motd"
    docker build -q -t "$rrepo:r2" "$ctx" >/dev/null 2>&1
    id2=$(docker image inspect -f '{{.Id}}' "$rrepo:r2" 2>/dev/null)
    if d1=$(release r1) && d2=$(release r2); then
        t_ok "backup/restore: two releases pushed with docker and promoted to prod"
    else
        t_not_ok "backup/restore: two releases pushed with docker and promoted to prod"
        server_stop "$name"
        return
    fi

    # The backup runs while docker pushes a third image.
    printf 'restore pushed during backup %s\n' "$RANDOM$RANDOM" >"$ctx/etc/motd"
    docker build -q -t "$rrepo:during" "$ctx" >/dev/null 2>&1
    docker push "$rrepo:during" >"$work/push-during.out" 2>&1 &
    local pusher=$!
    if out=$("$WHARF_BIN" backup create "$backup" --data-dir "$data" 2>&1); then
        t_ok "backup/restore: wharf backup create beside the serving Wharf while docker pushes"
    else
        t_not_ok "backup/restore: wharf backup create beside the serving Wharf while docker pushes" "$out"
    fi
    wait "$pusher" || t_not_ok "backup/restore: the push during the backup succeeds" "$(cat "$work/push-during.out")"

    # Stop, wipe, restore, start on the same address.
    stop_pid "${SERVER_PID[$name]}" "server $name"
    rm -rf "$data"
    if out=$("$WHARF_BIN" restore "$backup" --data-dir "$data" 2>&1); then
        t_ok "backup/restore: wharf restore into the wiped data directory"
    else
        t_not_ok "backup/restore: wharf restore into the wiped data directory" "$out"
    fi
    NO_COLOR=1 "$WHARF_BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" >>"${SERVER_LOG[$name]}" 2>&1 </dev/null &
    pid=$!
    SERVER_PID[$name]=$pid
    if ! wait_http "http://$rreg/v2/" 60 "$pid"; then
        t_not_ok "backup/restore: the restored Wharf starts" "$(tail -n 20 "${SERVER_LOG[$name]}")"
        server_stop "$name"
        return
    fi

    # Pull with an empty local store for these images.
    docker rmi -f "$rrepo:r1" "$rrepo:r2" "$rrepo:during" "$rrepo:prod" "$id1" "$id2" >/dev/null 2>&1
    if docker pull -q "$rrepo:prod" >/dev/null 2>&1 && [[ $(docker image inspect -f '{{.Id}}' "$rrepo:prod") == "$id2" ]]; then
        t_ok "backup/restore: docker pull :prod after the restore gives release 2"
    else
        t_not_ok "backup/restore: docker pull :prod after the restore gives release 2" "expected $id2"
    fi
    local d id ok=1
    for d in "$d1" "$d2"; do
        docker rmi -f "$rrepo@$d" >/dev/null 2>&1
        if ! docker pull -q "$rrepo@$d" >/dev/null 2>&1; then ok=0; continue; fi
        id=$(docker image inspect -f '{{.Id}}' "$rrepo@$d")
        [[ $d == "$d1" && $id == "$id1" || $d == "$d2" && $id == "$id2" ]] || ok=0
    done
    if ((ok)); then
        t_ok "backup/restore: docker pull of every release in prod's rollback window gives the image pushed"
    else
        t_not_ok "backup/restore: docker pull of every release in prod's rollback window gives the image pushed" "$d1 $d2"
    fi
    code=$(curl -sS -o "$work/restore-rollback.out" -w '%{http_code}' -X POST "$api/stages/prod/rollback")
    docker rmi -f "$rrepo:prod" >/dev/null 2>&1
    if [[ $code == 201 ]] && docker pull -q "$rrepo:prod" >/dev/null 2>&1 &&
        [[ $(docker image inspect -f '{{.Id}}' "$rrepo:prod") == "$id1" ]]; then
        t_ok "backup/restore: rollback of prod after the restore; docker pull :prod gives release 1"
    else
        t_not_ok "backup/restore: rollback of prod after the restore" "HTTP $code" "$(cat "$work/restore-rollback.out")"
    fi
    out=$(curl -sS "http://$rreg/api/v1/audit/verify")
    if grep -q '"valid":true' <<<"$out"; then
        t_ok "backup/restore: the audit chain verifies after restore and rollback"
    else
        t_not_ok "backup/restore: the audit chain verifies after restore and rollback" "$out"
    fi
    docker rmi -f "$rrepo:prod" "$rrepo@$d1" "$rrepo@$d2" >/dev/null 2>&1
    server_stop "$name"
}

if [[ $WHARF_TEST_SERVER == wharf && -n ${image_id:-} ]]; then
    restore_check
fi
