#!/usr/bin/env bash
# Black-box test of a registry with go-containerregistry's crane, built from
# the version pinned in conformance/go.mod.
#
# Usage: tests/clients/crane.sh REGISTRY_HOSTPORT      (e.g. 127.0.0.1:5000)
#
# Builds a small image without network (crane append of locally made layer
# tarballs onto the empty base), then exercises copy, tag, ls, manifest,
# digest, config, blob, export, validate, catalog and delete.
# Prints "ok - NAME" / "not ok - NAME" per check, then
# "crane: N passed, N failed"; exits non-zero if any check failed.
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"

if [[ $# -ne 1 || -z $1 || $1 == *://* ]]; then
    echo "usage: $0 REGISTRY_HOSTPORT   (e.g. 127.0.0.1:5000, no scheme)" >&2
    exit 2
fi
reg=$1

crane_bin=$("$WHARF_ROOT/conformance/build.sh" crane | tail -n 1) || die "could not build crane"
# --insecure: plain HTTP is allowed (crane also assumes HTTP for loopback).
crane() { "$crane_bin" --insecure "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wharf-crane.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Keep crane away from any docker credentials of the host.
export DOCKER_CONFIG="$work/docker-config"
mkdir -p "$DOCKER_CONFIG"

# ------------------------------------------------------------ layers ---
mkdir -p "$work/l1/etc" "$work/l2/data" "$work/l3/opt/app"
printf 'crane test %s\n' "$(date -u +%FT%TZ) $$ $RANDOM" >"$work/l1/etc/motd"
head -c 200000 /dev/urandom >"$work/l2/data/random.bin"
seq 1 50000 >"$work/l2/data/numbers.txt"
printf '#!/bin/sh\necho hi\n' >"$work/l3/opt/app/run.sh"
for n in 1 2 3; do
    tar --owner=0 --group=0 --numeric-owner -C "$work/l$n" -cf "$work/layer$n.tar" .
done
(cd "$work/l1" && find . -type f -exec sha256sum {} +; cd "$work/l2" && find . -type f -exec sha256sum {} +;
    cd "$work/l3" && find . -type f -exec sha256sum {} +) | sed 's#  \./#  #' | sort -k2 >"$work/expected.sha256"

ns="wharf-it/crane-$(date +%s)-$RANDOM"
src="$reg/$ns/src"
dst="$reg/$ns/dst"

# ----------------------------------------------------- build + push ---
if ! t_check "crane append: build and push a 3-layer image to $src:v1" \
    crane append --oci-empty-base -f "$work/layer1.tar" -f "$work/layer2.tar" -f "$work/layer3.tar" -t "$src:v1"; then
    t_summary crane
    exit 1
fi
appended_ref=$(tail -n 1 <<<"$T_OUT")

# ---------------------------------------------------------- manifest ---
if t_check "crane manifest $src:v1" crane manifest "$src:v1"; then
    printf '%s' "$T_OUT" >"$work/manifest.json"
    if info=$(python3 - "$work/manifest.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["schemaVersion"] == 2, m
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m.get("mediaType")
assert len(m["layers"]) == 3, len(m["layers"])
print(m["config"]["digest"], " ".join(l["digest"] for l in m["layers"]))
EOF
    ); then
        t_ok "manifest is an OCI image manifest with 3 layers"
        read -r config_digest layer_digests <<<"$info"
    else
        t_not_ok "manifest is an OCI image manifest with 3 layers" "$info"
        config_digest="" layer_digests=""
    fi
fi

# ------------------------------------------------------------ digest ---
if t_check "crane digest $src:v1" crane digest "$src:v1"; then
    digest=$T_OUT
    local_digest="sha256:$(sha256sum <"$work/manifest.json" | cut -d' ' -f1)"
    if [[ $digest == "$local_digest" ]]; then
        t_ok "digest equals sha256 of the manifest bytes"
    else
        t_not_ok "digest equals sha256 of the manifest bytes" "crane digest: $digest" "computed: $local_digest"
    fi
    if [[ $appended_ref == *"@$digest" ]]; then
        t_ok "digest equals the one crane append pushed"
    else
        t_not_ok "digest equals the one crane append pushed" "append printed: $appended_ref"
    fi
else
    digest=""
fi

# ---------------------------------------------------- config + blobs ---
if [[ -n ${config_digest:-} ]]; then
    if t_check "crane config $src:v1" crane config "$src:v1"; then
        got="sha256:$(printf '%s' "$T_OUT" | sha256sum | cut -d' ' -f1)"
        if [[ $got == "$config_digest" ]]; then
            t_ok "config blob matches its digest"
        else
            t_not_ok "config blob matches its digest" "expected $config_digest, got $got"
        fi
    fi
    bad=""
    for d in $layer_digests; do
        got="sha256:$(crane blob "$src@$d" 2>/dev/null | sha256sum | cut -d' ' -f1)"
        [[ $got == "$d" ]] || bad+="$d -> $got; "
    done
    if [[ -z $bad ]]; then
        t_ok "crane blob: every layer blob matches its digest"
    else
        t_not_ok "crane blob: every layer blob matches its digest" "$bad"
    fi
fi

if t_check "crane validate --remote $src:v1" crane validate --remote "$src:v1"; then :; fi

# ------------------------------------------------------------ export ---
mkdir -p "$work/export"
if crane export "$src:v1" - 2>"$work/export.err" | tar -C "$work/export" -xf - 2>>"$work/export.err"; then
    cut -c67- "$work/expected.sha256" | (cd "$work/export" && xargs -d '\n' sha256sum) 2>&1 | sort -k2 >"$work/actual.sha256"
    if cmp -s "$work/expected.sha256" "$work/actual.sha256"; then
        t_ok "crane export: filesystem content matches the layers ($(wc -l <"$work/expected.sha256") files)"
    else
        t_not_ok "crane export: filesystem content matches the layers" "$(diff "$work/expected.sha256" "$work/actual.sha256" | head -n 20)"
    fi
else
    t_not_ok "crane export: filesystem content matches the layers" "$(cat "$work/export.err")"
fi

# -------------------------------------------------------------- copy ---
if t_check "crane copy $src:v1 -> $dst:v1" crane copy "$src:v1" "$dst:v1"; then
    got=$(crane digest "$dst:v1" 2>&1)
    if [[ -n $digest && $got == "$digest" ]]; then
        t_ok "copied manifest has the same digest"
    else
        t_not_ok "copied manifest has the same digest" "source ${digest:-none}, copy $got"
    fi
fi

# -------------------------------------------------------- tag and ls ---
t_check "crane tag $src:v1 v2" crane tag "$src:v1" v2
t_check "crane tag $src:v1 latest" crane tag "$src:v1" latest
if t_check "crane ls $src" crane ls "$src"; then
    tags=$(sort <<<"$T_OUT" | tr '\n' ' ')
    if [[ $tags == "latest v1 v2 " ]]; then
        t_ok "crane ls lists exactly: latest v1 v2"
    else
        t_not_ok "crane ls lists exactly: latest v1 v2" "got: $tags"
    fi
fi
if [[ -n $digest ]]; then
    got=$(crane digest "$src:v2" 2>&1)
    if [[ $got == "$digest" ]]; then
        t_ok "new tag v2 resolves to the same digest"
    else
        t_not_ok "new tag v2 resolves to the same digest" "got $got"
    fi
fi

# ----------------------------------------------------------- catalog ---
if t_check "crane catalog $reg" crane catalog "$reg"; then
    cat_out=$T_OUT
    if grep -qx "$ns/src" <<<"$cat_out" && grep -qx "$ns/dst" <<<"$cat_out"; then
        t_ok "catalog lists $ns/src and $ns/dst"
    else
        t_not_ok "catalog lists $ns/src and $ns/dst" "$(head -n 20 <<<"$cat_out")"
    fi
fi

# ------------------------------------------------------------ delete ---
if [[ -n $digest ]]; then
    if t_check "crane delete $dst@$digest" crane delete "$dst@$digest"; then
        if out=$(crane manifest "$dst@$digest" 2>&1); then
            t_not_ok "deleted manifest is unknown afterwards" "crane manifest still succeeds: $(head -c 300 <<<"$out")"
        elif grep -qE 'MANIFEST_UNKNOWN|NOT_FOUND|NAME_UNKNOWN|404' <<<"$out"; then
            t_ok "deleted manifest is unknown afterwards (404 / MANIFEST_UNKNOWN)"
        else
            t_not_ok "deleted manifest is unknown afterwards (404 / MANIFEST_UNKNOWN)" "$out"
        fi
        if out=$(crane manifest "$dst:v1" 2>&1); then
            t_not_ok "tag pointing at the deleted manifest is gone" "crane manifest $dst:v1 still succeeds"
        else
            t_ok "tag pointing at the deleted manifest is gone"
        fi
    fi
    # The source repository must be untouched by the delete in the other one.
    got=$(crane digest "$src:v1" 2>&1)
    if [[ $got == "$digest" ]]; then
        t_ok "source repository unaffected by delete in the copy"
    else
        t_not_ok "source repository unaffected by delete in the copy" "$got"
    fi
fi

if out=$(crane manifest "$src:no-such-tag" 2>&1); then
    t_not_ok "manifest of a missing tag is unknown" "$out"
elif grep -qE 'MANIFEST_UNKNOWN|NOT_FOUND|404' <<<"$out"; then
    t_ok "manifest of a missing tag is unknown (404 / MANIFEST_UNKNOWN)"
else
    t_not_ok "manifest of a missing tag is unknown (404 / MANIFEST_UNKNOWN)" "$out"
fi

# ------------------------------------- access control: auth login, robot ---
# Against a second Wharf with auth on (run-all.sh starts it).
if [[ -n ${WHARF_TEST_AUTH_REGISTRY:-} ]]; then
    areg=$WHARF_TEST_AUTH_REGISTRY
    if robot=$(make_test_accounts "$areg" "$WHARF_TEST_ADMIN_PASSWORD"); then
        t_ok "accounts dev, reader and robot ci created through the management API"
    else
        t_not_ok "accounts created through the management API"
    fi
    if out=$(crane copy "$src:v1" "$areg/team/app:v1" 2>&1); then
        t_not_ok "crane copy without credentials is refused" "$out"
    else
        t_ok "crane copy without credentials is refused"
    fi
    if t_check "crane auth login $areg as reader" crane auth login "$areg" -u reader -p "$TEST_USER_PASSWORD"; then
        if out=$(crane copy "$src:v1" "$areg/team/app:v1" 2>&1); then
            t_not_ok "crane copy as reader is refused" "$out"
        elif grep -qiE 'denied' <<<"$out"; then
            t_ok "crane copy as reader is refused (DENIED)"
        else
            t_not_ok "crane copy as reader is refused with DENIED" "$out"
        fi
    fi
    if t_check "crane auth login $areg as dev" crane auth login "$areg" -u dev -p "$TEST_USER_PASSWORD" &&
        t_check "crane copy to $areg/team/app:v1 as dev" crane copy "$src:v1" "$areg/team/app:v1"; then
        if [[ $(crane digest "$areg/team/app:v1" 2>&1) == "$(crane digest "$src:v1" 2>&1)" ]]; then
            t_ok "copied image has the source's digest"
        else
            t_not_ok "copied image has the source's digest"
        fi
    fi
    if [[ -n $robot ]] && t_check "crane auth login as robot ci with its token" crane auth login "$areg" -u ci -p "$robot"; then
        t_check "crane copy as robot ci" crane copy "$src:v1" "$areg/team/robot:v1"
        t_check "crane ls as robot ci" crane ls "$areg/team/robot"
        if out=$(crane copy "$src:v1" "$areg/elsewhere/robot:v1" 2>&1); then
            t_not_ok "crane copy as robot ci outside its grant is refused" "$out"
        else
            t_ok "crane copy as robot ci outside its grant is refused"
        fi
    fi
    crane auth logout "$areg" >/dev/null 2>&1
fi

t_summary crane
