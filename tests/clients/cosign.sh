#!/usr/bin/env bash
# Signed promotions with the real cosign (tests/env/install.sh cosign builds
# it from the Go module proxy into .tools/bin).
#
# Usage: tests/clients/cosign.sh
#
# Generates two key pairs (trusted "ci", and a stranger), starts its own
# Wharf on a loopback port whose prod stage requires a signature by "ci",
# pushes images with crane and signs them with `cosign sign --key` in the
# tag convention (sha256-<hex>.sig) and as OCI 1.1 referrers, then checks:
# promotion succeeds with a trusted signature and is refused with none, an
# untrusted key, a signature copied from another digest and a tampered
# payload; the verdict is in history (API and `wharf history`) and the audit
# log; `cosign verify --key` of :prod succeeds after promotion and after a
# retention + GC run. Prints "ok - NAME" / "not ok - NAME", then
# "cosign: N passed, N failed"; exits non-zero if any check failed.
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"

cosign_bin=$WHARF_ROOT/.tools/bin/cosign
[[ -x $cosign_bin ]] || die "$cosign_bin is missing: run tests/env/install.sh cosign"
crane_bin=$("$WHARF_ROOT/conformance/build.sh" crane | tail -n 1) || die "could not build crane"
crane() { "$crane_bin" --insecure "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wharf-cosign.XXXXXX")
server=wharf-cosign
trap 'server_stop "$server"; rm -rf "$work"' EXIT
# Keep both tools away from the host's docker credentials and sigstore cache.
export DOCKER_CONFIG="$work/docker-config" HOME="$work/home" TUF_ROOT="$work/tuf"
mkdir -p "$DOCKER_CONFIG" "$HOME"
export COSIGN_PASSWORD="cosign-test-$RANDOM"
# Plain HTTP on loopback, no transparency log (no network), no prompts.
sign_flags=(--tlog-upload=false --allow-insecure-registry --allow-http-registry -y)
verify_flags=(--insecure-ignore-tlog=true --allow-insecure-registry --allow-http-registry)
cosign() { "$cosign_bin" "$@"; }

(cd "$work" && cosign generate-key-pair --output-key-prefix trusted >/dev/null 2>&1 &&
    cosign generate-key-pair --output-key-prefix stranger >/dev/null 2>&1) || die "cosign generate-key-pair failed"

server_start "$server" fs "$server" \
    "WHARF_GOVERNANCE__GATES__PROD__REQUIRE_SIGNATURE__KEYS=[{name=\"ci\", pem_file=\"$work/trusted.pub\"}]" \
    WHARF_GOVERNANCE__GATES__PROD__REQUIRE_SIGNATURE__CHECK_REPOSITORY=true \
    'WHARF_RETENTION__POLICIES=[{name="all", repositories="**", keep_last=1, delete_untagged_after="1ms"}]' \
    WHARF_GC__GRACE=0s || die "wharf did not start"
reg=${SERVER_ADDR[$server]}
api="http://$reg/api/v1"
name="wharf-it/cosign-$(date +%s)-$RANDOM"
# For functions run through t_check, whose own `local name` shadows $name.
repo_path=$name
repo="$reg/$name"

# push_image TAG: a one-layer image made locally; prints its digest.
push_image() {
    mkdir -p "$work/l-$1"
    printf 'cosign test %s %s\n' "$1" "$RANDOM$RANDOM" >"$work/l-$1/hello.txt"
    tar --owner=0 --group=0 -C "$work/l-$1" -cf "$work/l-$1.tar" . &&
        crane append --oci-empty-base -f "$work/l-$1.tar" -t "$repo:$1" >/dev/null &&
        crane digest "$repo:$1"
}

# promote DIGEST STAGE: prints the HTTP status, the body goes to $work/last.json.
promote() {
    curl -sS -o "$work/last.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"reference\": \"$1\", \"stage\": \"$2\"}" "$api/repositories/$name/promotions"
}

# to_prod NAME DIGEST WANT_STATUS [TEXT]: test and preprod, then prod; the
# prod answer must have WANT_STATUS and (if given) contain TEXT.
to_prod() {
    local check=$1 digest=$2 want=$3 text=${4:-} s got
    for s in test preprod; do
        got=$(promote "$digest" "$s")
        [[ $got == 201 || $got == 200 ]] || { t_not_ok "$check" "promotion to $s: HTTP $got" "$(cat "$work/last.json")"; return 1; }
    done
    got=$(promote "$digest" prod)
    if [[ $got == "$want" ]] && { [[ -z $text ]] || grep -qF -- "$text" "$work/last.json"; }; then
        t_ok "$check"
    else
        t_not_ok "$check" "prod: HTTP $got (want $want${text:+ with \"$text\"})" "$(head -c 1500 "$work/last.json")"
        return 1
    fi
}

sig_tag() { printf '%s.sig' "${1/:/-}"; }

a=$(push_image a) && b=$(push_image b) && c=$(push_image c) && d=$(push_image d) && e=$(push_image e) ||
    { t_not_ok "push five images with crane" "$a $b $c $d $e"; t_summary cosign; exit 1; }
t_ok "push five images with crane"

# ------------------------------------------------------------ refusals ---
to_prod "refused without any signature" "$a" 409 "no signature by a trusted key for $a"

t_check "cosign sign (untrusted key, tag convention)" cosign sign --key "$work/stranger.key" "${sign_flags[@]}" "$repo@$b"
to_prod "refused when signed by an untrusted key" "$b" 409 "verifies with no trusted key"

t_check "cosign sign (trusted key, tag convention)" cosign sign --key "$work/trusted.key" "${sign_flags[@]}" "$repo@$c"
t_check "copy c's signature as d's (crane copy)" crane copy "$repo:$(sig_tag "$c")" "$repo:$(sig_tag "$d")"
to_prod "refused with a signature copied from another digest" "$d" 409 "signature by key ci is for another digest ($c)"

# Tampered: e's genuine signature, with one byte of its payload changed.
# tamper DIGEST: rewrites DIGEST's .sig manifest to point at an altered payload.
tamper() {
    local tag payload_digest loc new_digest media_type
    tag=$(sig_tag "$1")
    crane manifest "$repo:$tag" >"$work/sig.json" || return 1
    payload_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"])' "$work/sig.json") || return 1
    crane blob "$repo@$payload_digest" | sed 's/"docker-reference"/"docker-reference" /' >"$work/tampered.json" || return 1
    cmp -s <(crane blob "$repo@$payload_digest") "$work/tampered.json" && return 1
    new_digest="sha256:$(sha256sum "$work/tampered.json" | cut -d' ' -f1)"
    loc=$(curl -sS -D - -o /dev/null -X POST "http://$reg/v2/$repo_path/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
    [[ -n $loc ]] || return 1
    [[ $loc == /* ]] && loc="http://$reg$loc"
    [[ $loc == *\?* ]] && loc="$loc&digest=$new_digest" || loc="$loc?digest=$new_digest"
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$work/tampered.json" "$loc" >/dev/null || return 1
    python3 - "$work/sig.json" "$new_digest" "$(stat -c %s "$work/tampered.json")" >"$work/sig-tampered.json" <<'PY' || return 1
import json, sys
m = json.load(open(sys.argv[1]))
m["layers"][0]["digest"], m["layers"][0]["size"] = sys.argv[2], int(sys.argv[3])
print(json.dumps(m), end="")
PY
    media_type=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mediaType"])' "$work/sig.json") || return 1
    curl -fsS -X PUT -H "Content-Type: $media_type" --data-binary @"$work/sig-tampered.json" "http://$reg/v2/$repo_path/manifests/$tag" >/dev/null
}
t_check "cosign sign e (trusted key)" cosign sign --key "$work/trusted.key" "${sign_flags[@]}" "$repo@$e"
t_check "tamper with e's signature payload" tamper "$e"
to_prod "refused with a tampered payload" "$e" 409 "no signature by a trusted key for $e"

# ------------------------------------------------------------ success ---
to_prod "promoted with a trusted signature (tag convention)" "$c" 201 '"key":"ci"'
export COSIGN_EXPERIMENTAL=1
t_check "cosign sign (trusted key, --registry-referrers-mode=oci-1-1)" \
    cosign sign --key "$work/trusted.key" "${sign_flags[@]}" --registry-referrers-mode=oci-1-1 "$repo@$a"
to_prod "promoted with a trusted signature (OCI 1.1 referrer)" "$a" 201 '"key":"ci"'
t_check "the referrers API lists a's cosign signature" \
    bash -c "curl -fsS 'http://$reg/v2/$name/referrers/$a' | grep -q 'application/vnd.dev.cosign.artifact.sig.v1+json'"

# ------------------------------------------------------------ records ---
if curl -fsS "$api/repositories/$name/stages/prod/releases" >"$work/history.json" &&
    python3 - "$work/history.json" "$a" "$c" <<'EOF'; then
import json, sys
h = json.load(open(sys.argv[1]))["releases"]
assert [r["digest"] for r in h] == [sys.argv[2], sys.argv[3]], h
for r in h:
    s = r["signature"]["signers"]
    assert s[0]["key"] == "ci" and s[0]["fingerprint"].startswith("sha256:") and s[0]["algorithm"] == "ecdsa-p256", r
EOF
    t_ok "history: both prod releases carry the verdict (key ci, fingerprint)"
else
    t_not_ok "history: both prod releases carry the verdict" "$(head -c 1500 "$work/history.json")"
fi
t_check "wharf history shows the signer" bash -c "'$WHARF_BIN' history '$name' --stage prod --url 'http://$reg' | grep -E 'SIGNED BY' -A3 | grep -q ' ci '"
if curl -fsS "$api/audit?repository=$name&n=200" >"$work/audit.json" &&
    python3 - "$work/audit.json" <<'EOF'; then
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
prom = [x for x in e if x["action"] == "promotion" and x["reference"] == "prod"]
assert len(prom) == 2 and all(x["details"]["signature"]["signers"][0]["key"] == "ci" for x in prom), prom
denied = [x for x in e if x["action"] == "promotion.denied"]
assert len(denied) == 4 and all("require_signature" in x["details"]["failed_gates"][0] for x in denied), denied
EOF
    t_ok "audit log: promotions carry the verdict, the 4 refusals name require_signature"
else
    t_not_ok "audit log: verdicts and refusals" "$(head -c 1500 "$work/audit.json")"
fi
t_check "audit chain verifies" curl -fsS "$api/audit/verify"

# ------------------------------------------------------------- verify ---
t_check "cosign verify --key of :prod (OCI 1.1 referrer)" \
    cosign verify --key "$work/trusted.pub" "${verify_flags[@]}" --experimental-oci11 "$repo:prod"
t_check "cosign verify --key of the previous prod release (tag convention)" \
    cosign verify --key "$work/trusted.pub" "${verify_flags[@]}" "$repo@$c"
later1=$(push_image later1) && push_image later2 >/dev/null
sleep 1
t_check "retention run" curl -fsS -X POST "$api/retention/runs"
t_check "gc run" curl -fsS -X POST "$api/gc/runs"
t_check "cosign verify --key of :prod after retention + GC" \
    cosign verify --key "$work/trusted.pub" "${verify_flags[@]}" --experimental-oci11 "$repo:prod"
t_check "cosign verify --key of the rollback target after retention + GC" \
    cosign verify --key "$work/trusted.pub" "${verify_flags[@]}" "$repo@$c"
t_check "retention did delete the unreleased, untagged later1" bash -c "! curl -fsS -o /dev/null 'http://$reg/v2/$name/manifests/$later1'"

t_summary cosign
