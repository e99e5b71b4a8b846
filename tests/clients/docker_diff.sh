# Image diff against images built and pushed by docker (issue 16).
# Sourced by tests/clients/docker.sh with its private dockerd running; uses
# its $reg, $work and t_* helpers. Two versions of an image are built FROM
# scratch with known differences (files, env, user, labels, exposed port),
# pushed with docker, and the diff API must report each difference and
# nothing else.

diff_ctx=$work/diffctx
mkdir -p "$diff_ctx/v1/etc" "$diff_ctx/v1/data" "$diff_ctx/v1/bin" "$diff_ctx/v2/etc" "$diff_ctx/v2/data" "$diff_ctx/v2/bin" "$diff_ctx/v2/srv"
printf '#!/bin/app\n' >"$diff_ctx/v1/bin/app"
cp "$diff_ctx/v1/bin/app" "$diff_ctx/v2/bin/app"
printf 'kept\n' >"$diff_ctx/v1/data/keep.txt"
cp "$diff_ctx/v1/data/keep.txt" "$diff_ctx/v2/data/keep.txt"
printf 'mode=one\n' >"$diff_ctx/v1/etc/app.conf"
printf 'mode=two\n' >"$diff_ctx/v2/etc/app.conf"   # same size, other content
printf 'only in v1\n' >"$diff_ctx/v1/data/old.txt"
printf 'only in v2\n' >"$diff_ctx/v2/srv/new.txt"
# Same mtimes on both sides: a diff ignores them anyway, docker keeps them.
find "$diff_ctx" -exec touch -h -d '2024-01-01T00:00:00Z' {} +
cat >"$diff_ctx/Dockerfile.v1" <<'EOF'
FROM scratch
COPY v1/ /
ENV APP_MODE=one KEEP=same
USER 1000
LABEL org.example.version="1" org.example.keep="same"
EXPOSE 8080
CMD ["/bin/app"]
EOF
cat >"$diff_ctx/Dockerfile.v2" <<'EOF'
FROM scratch
COPY v2/ /
ENV APP_MODE=two KEEP=same
USER 2000
LABEL org.example.version="2" org.example.keep="same"
EXPOSE 8080 9090
CMD ["/bin/app"]
EOF

diff_repo_path="wharf-it/diff-$(date +%s)-$RANDOM"
diff_img="$reg/$diff_repo_path"
diff_built=1
for v in v1 v2; do
    if ! t_check "docker build of the diff test image $v" docker build -q -f "$diff_ctx/Dockerfile.$v" -t "$diff_img:$v" "$diff_ctx" ||
        ! t_check "docker push $diff_img:$v" docker push "$diff_img:$v"; then
        diff_built=0
    fi
done

if ((diff_built)); then
    code=$(curl -sS -o "$work/diff.json" -w '%{http_code}' "http://$reg/api/v1/repositories/$diff_repo_path/diff?from=v1&to=v2")
    if [[ $code != 200 ]]; then
        t_not_ok "diff API answers 200 for two docker-pushed images" "HTTP $code" "$(head -c 2000 "$work/diff.json")"
    else
        t_ok "diff API answers 200 for two docker-pushed images"
        # Each check prints "ok - ..." or "not ok - ..." and what it saw.
        python3 - "$work/diff.json" <<'EOF' >"$work/diff-checks.txt" 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
def check(name, ok, seen):
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else "\n    saw: " + json.dumps(seen)[:1500]))
cfg = {c["field"]: c for c in d["config"]}
check("diff: config fields changed are exactly Env, User, Labels, ExposedPorts, history",
      sorted(cfg) == sorted(["Env", "User", "Labels", "ExposedPorts", "history"]), sorted(cfg))
env = cfg.get("Env", {})
check("diff: Env reports APP_MODE one -> two only", env.get("from") == {"APP_MODE": "one"} and env.get("to") == {"APP_MODE": "two"}, env)
user = cfg.get("User", {})
check("diff: User 1000 -> 2000", (user.get("from"), user.get("to")) == ("1000", "2000"), user)
labels = cfg.get("Labels", {})
check("diff: Labels report org.example.version 1 -> 2 only",
      labels.get("from") == {"org.example.version": "1"} and labels.get("to") == {"org.example.version": "2"}, labels)
ports = cfg.get("ExposedPorts", {})
check("diff: ExposedPorts gains 9090/tcp", ports.get("from") == ["8080/tcp"] and ports.get("to") == ["8080/tcp", "9090/tcp"], ports)
files = {f["path"]: f["change"] for f in d["files"]}
expected = {"/data/old.txt": "removed", "/etc/app.conf": "modified", "/srv": "added", "/srv/new.txt": "added"}
check("diff: files are exactly /data/old.txt removed, /etc/app.conf modified, /srv and /srv/new.txt added", files == expected, files)
conf = next((f for f in d["files"] if f["path"] == "/etc/app.conf"), {})
check("diff: /etc/app.conf has the same size and another content hash",
      conf.get("from", {}).get("size") == conf.get("to", {}).get("size") == 9 and conf["from"]["sha256"] != conf["to"]["sha256"], conf)
check("diff: no package database, so packages is null", d["packages"] is None, d["packages"])
s = d["summary"]
check("diff: summary counts 2 added, 1 removed, 1 modified, 5 config changes",
      (s["files_added"], s["files_removed"], s["files_modified"], s["config_changes"]) == (2, 1, 1, 5), s)
check("diff: one layer per image, replaced", (s["layers_added"], s["layers_removed"]) == (1, 1), s)
EOF
        while IFS= read -r line; do
            case $line in
                "ok - "*) t_ok "${line#ok - }" ;;
                "not ok - "*) name=${line#not ok - }; IFS= read -r saw; t_not_ok "$name" "$saw" ;;
                *) t_not_ok "diff checks ran" "$line" ;;
            esac
        done <"$work/diff-checks.txt"
        # Again, warm: no layer read, the same answer.
        curl -sS -o "$work/diff2.json" "http://$reg/api/v1/repositories/$diff_repo_path/diff?from=v1&to=v2"
        if python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); s=b["summary"]; sys.exit(0 if s["layers_indexed"]==0 and a["files"]==b["files"] and a["config"]==b["config"] else 1)' "$work/diff.json" "$work/diff2.json"; then
            t_ok "diff again: the same answer from stored layer indexes (no layer read)"
        else
            t_not_ok "diff again: the same answer from stored layer indexes" "$(head -c 1000 "$work/diff2.json")"
        fi
    fi
fi
