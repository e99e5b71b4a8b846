#!/usr/bin/env bash
# Runs the official OCI distribution-spec conformance suite (pinned in
# conformance/go.mod) against a registry, with every API and data test on.
#
# Usage: conformance/run.sh REGISTRY_URL
#   REGISTRY_URL  http://127.0.0.1:5000 (plain HTTP), https://host:port, or
#                 host:port (taken as plain HTTP)
# Env:
#   CONFORMANCE_RESULTS_DIR  where junit.xml, report.html, results.yaml and
#                            the console output go (default:
#                            test-results/conformance/latest)
#   CONFORMANCE_PROFILE      "full" (default): every test the suite has, including
#                            the ones beyond the v1.1 stable defaults (sparse
#                            manifests, upload cancel, required Docker-Content-
#                            Digest headers, ?tag= on manifest PUT);
#                            "stable": the suite's own v1.1 defaults for those.
#   Any OCI_* variable below may be set by the caller to override the default.
# Exit status: 0 only if the suite reports an overall Pass.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 REGISTRY_URL   (e.g. http://127.0.0.1:5000)" >&2
    exit 2
fi
url=${1%/}
case $url in
    http://*) hostport=${url#http://} tls=disabled ;;
    https://*) hostport=${url#https://} tls=enabled ;;
    *://*) echo "run.sh: unsupported URL scheme in $url" >&2; exit 2 ;;
    *) hostport=$url tls=disabled ;;
esac
hostport=${hostport%%/*}

results=${CONFORMANCE_RESULTS_DIR:-$root/test-results/conformance/latest}
mkdir -p "$results"
results=$(cd "$results" && pwd)
rm -f "$results"/{junit.xml,report.html,results.yaml,output.txt,stderr.txt}

bin=$("$here/build.sh" conformance | tail -n 1)

profile=${CONFORMANCE_PROFILE:-full}
case $profile in
    full) extra=true ;;
    stable) extra=false ;;
    *) echo "run.sh: CONFORMANCE_PROFILE must be full or stable, not $profile" >&2; exit 2 ;;
esac

# ---------------------------------------------------------------------------
# Suite configuration. The pinned suite reads only environment variables (and
# an optional oci-conformance.yaml, which we do not use). Names come from the
# suite's config.go; every boolean is set explicitly so a change of defaults in
# a newer suite cannot silently switch a test off.
# ---------------------------------------------------------------------------
# Do not pick up a stray oci-conformance.yaml from the working directory.
export OCI_CONFIGURATION=/dev/null
# Spec version whose defaults apply: 1.1 (stable), 1.1+dev/dev, or 1.0.
export OCI_VERSION=${OCI_VERSION:-1.1}
# Registry host:port, without scheme.
export OCI_REGISTRY=$hostport
# "disabled" = plain HTTP, "enabled" = HTTPS, "insecure" = HTTPS without verification.
export OCI_TLS=${OCI_TLS:-$tls}
# First repository that content is pushed to (was OCI_NAMESPACE in the old suite).
export OCI_REPO1=${OCI_REPO1:-conformance/repo1}
# Second repository, source/target of cross-repo blob mounts (was OCI_CROSSMOUNT_NAMESPACE).
export OCI_REPO2=${OCI_REPO2:-conformance/repo2}
# Credentials: Wharf runs without auth here, so anonymous.
export OCI_USERNAME=${OCI_USERNAME:-} OCI_PASSWORD=${OCI_PASSWORD:-}
# Reuse auth headers between requests (irrelevant without auth).
export OCI_CACHE_AUTH=${OCI_CACHE_AUTH:-true}
# Log threshold of the suite's own logger (reports are unaffected).
export OCI_LOG=${OCI_LOG:-warn}
# Where junit.xml, report.html and results.yaml are written.
export OCI_RESULTS_DIR=$results
# Only run tests whose name starts with this (empty = all tests).
export OCI_FILTER_TEST=${OCI_FILTER_TEST:-}

# --- API tests (was OCI_TEST_PULL / OCI_TEST_PUSH / OCI_TEST_CONTENT_*) ---
# GET /v2/ ping.
export OCI_API_PING=${OCI_API_PING:-true}
# Pull: GET/HEAD of manifests and blobs, range requests (was OCI_TEST_PULL).
export OCI_API_PULL=${OCI_API_PULL:-true}
# Push: blob uploads (monolithic, chunked, streamed), mounts, manifest PUT (was OCI_TEST_PUSH).
export OCI_API_PUSH=${OCI_API_PUSH:-true}
# A deleted blob must be gone immediately afterwards.
export OCI_API_BLOBS_ATOMIC=${OCI_API_BLOBS_ATOMIC:-true}
# DELETE /v2/<name>/blobs/<digest> (part of the old OCI_TEST_CONTENT_MANAGEMENT).
export OCI_API_BLOBS_DELETE=${OCI_API_BLOBS_DELETE:-true}
# Require Docker-Content-Digest on blob responses (1.1+dev default; profile full only).
export OCI_API_BLOBS_DIGEST_HEADER=${OCI_API_BLOBS_DIGEST_HEADER:-$extra}
# POST ?mount=<digest> without from= (anonymous/automatic cross-mount; was OCI_AUTOMATIC_CROSSMOUNT).
export OCI_API_BLOBS_MOUNT_ANONYMOUS=${OCI_API_BLOBS_MOUNT_ANONYMOUS:-true}
# DELETE of an upload session to cancel it (1.1+dev default; profile full only).
export OCI_API_BLOBS_UPLOAD_CANCEL=${OCI_API_BLOBS_UPLOAD_CANCEL:-$extra}
# A deleted manifest must be gone immediately afterwards.
export OCI_API_MANIFESTS_ATOMIC=${OCI_API_MANIFESTS_ATOMIC:-true}
# DELETE /v2/<name>/manifests/<digest> (part of the old OCI_TEST_CONTENT_MANAGEMENT).
export OCI_API_MANIFESTS_DELETE=${OCI_API_MANIFESTS_DELETE:-true}
# Require Docker-Content-Digest on manifest responses (1.1+dev default; profile full only).
export OCI_API_MANIFESTS_DIGEST_HEADER=${OCI_API_MANIFESTS_DIGEST_HEADER:-$extra}
# PUT manifest by digest with ?tag= parameters (1.1+dev; profile full only). Without
# OCI-Tag support the sha256 case is a Skip, but the sha512 case then fails.
export OCI_API_MANIFESTS_TAG_PARAM=${OCI_API_MANIFESTS_TAG_PARAM:-$extra}
# A deleted tag must be gone immediately afterwards.
export OCI_API_TAGS_ATOMIC=${OCI_API_TAGS_ATOMIC:-true}
# DELETE /v2/<name>/manifests/<tag> (part of the old OCI_TEST_CONTENT_MANAGEMENT).
export OCI_API_TAGS_DELETE=${OCI_API_TAGS_DELETE:-true}
# GET /v2/<name>/tags/list incl. n/last pagination (part of the old OCI_TEST_CONTENT_DISCOVERY).
export OCI_API_TAGS_LIST=${OCI_API_TAGS_LIST:-true}
# GET /v2/<name>/referrers/<digest> incl. artifactType filter (part of the old OCI_TEST_CONTENT_DISCOVERY).
export OCI_API_REFERRER=${OCI_API_REFERRER:-true}

# --- Data tests: kinds of content pushed and pulled back ---
# Plain image manifest with layers (required by every other data test).
export OCI_DATA_IMAGE=${OCI_DATA_IMAGE:-true}
# Multi-platform image index.
export OCI_DATA_INDEX=${OCI_DATA_INDEX:-true}
# Index that contains another index (nested index).
export OCI_DATA_INDEX_LIST=${OCI_DATA_INDEX_LIST:-true}
# Manifests referencing descriptors never pushed. Off: Wharf rejects them on
# purpose with MANIFEST_BLOB_UNKNOWN (the spec allows it), so a manifest is never
# visible while a blob it needs is missing; the suite would count that as FAIL.
export OCI_DATA_SPARSE=${OCI_DATA_SPARSE:-false}
# Artifact: image manifest with artifactType.
export OCI_DATA_ARTIFACT=${OCI_DATA_ARTIFACT:-true}
# Artifact manifests with a subject (referrers).
export OCI_DATA_SUBJECT=${OCI_DATA_SUBJECT:-true}
# Manifest whose subject does not exist (yet) in the repository.
export OCI_DATA_SUBJECT_MISSING=${OCI_DATA_SUBJECT_MISSING:-true}
# Index with an artifactType.
export OCI_DATA_ARTIFACT_LIST=${OCI_DATA_ARTIFACT_LIST:-true}
# Index with a subject.
export OCI_DATA_SUBJECT_LIST=${OCI_DATA_SUBJECT_LIST:-true}
# Descriptors carrying the embedded "data" field.
export OCI_DATA_DATA_FIELD=${OCI_DATA_DATA_FIELD:-true}
# Image with non-distributable (foreign) layers that are not pushed.
export OCI_DATA_NONDISTRIBUTABLE=${OCI_DATA_NONDISTRIBUTABLE:-true}
# Manifests and config JSON with fields beyond the OCI spec.
export OCI_DATA_CUSTOM_FIELDS=${OCI_DATA_CUSTOM_FIELDS:-true}
# Image manifest with an empty layers list.
export OCI_DATA_NO_LAYERS=${OCI_DATA_NO_LAYERS:-true}
# Zero-byte blob.
export OCI_DATA_EMPTY_BLOB=${OCI_DATA_EMPTY_BLOB:-true}
# Blobs and manifests addressed with sha512 digests.
export OCI_DATA_SHA512=${OCI_DATA_SHA512:-true}

# --- Read-only mode (pre-loaded content, for registries without push): unused ---
# Space separated tags / manifest digests / blob digests / referrer subjects to read.
export OCI_RO_DATA_TAGS=${OCI_RO_DATA_TAGS:-} OCI_RO_DATA_MANIFESTS=${OCI_RO_DATA_MANIFESTS:-}
export OCI_RO_DATA_BLOBS=${OCI_RO_DATA_BLOBS:-} OCI_RO_DATA_REFERRERS=${OCI_RO_DATA_REFERRERS:-}

# Legacy variables of the pre-2026 suite (OCI_ROOT_URL, OCI_NAMESPACE,
# OCI_CROSSMOUNT_NAMESPACE, OCI_TEST_PULL/PUSH/CONTENT_DISCOVERY/
# CONTENT_MANAGEMENT, OCI_DEBUG, ...) are mapped to the ones above by the
# pinned suite with a deprecation warning, and OCI_AUTOMATIC_CROSSMOUNT,
# OCI_DELETE_MANIFEST_BEFORE_BLOBS and OCI_HIDE_SKIPPED_WORKFLOWS are no longer
# read at all (deletion order is fixed: tags, then manifests, then blobs). We
# therefore set only the new names; an explicit new name wins over a legacy one.

echo "conformance: suite github.com/opencontainers/distribution-spec/conformance@$(cd "$here" && go list -m -f '{{.Version}}' github.com/opencontainers/distribution-spec/conformance)"
echo "conformance: profile $profile; registry $OCI_REGISTRY (tls=$OCI_TLS), repos $OCI_REPO1 + $OCI_REPO2, results in $results"

rc=0
start=$(date +%s)
# The suite's summary tree goes to stdout, per-failure warnings to stderr.
(cd "$results" && "$bin") >"$results/output.txt" 2>"$results/stderr.txt" || rc=$?
elapsed=$(($(date +%s) - start))

if [[ ! -s $results/junit.xml ]]; then
    echo "conformance: the suite produced no report (exit $rc); its output:" >&2
    tail -n 40 "$results/stderr.txt" "$results/output.txt" >&2 || true
    exit 1
fi

# Compact summary: result counts, per-API and per-data status, failing tests.
sed -n '/^OCI Conformance Result:/,$p' "$results/output.txt"
python3 - "$results/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
bad = []
for tc in root.iter("testcase"):
    st = tc.get("status", "")
    if st in ("failure", "error"):
        msg = (tc.findtext("system-out") or "").strip()
        bad.append((tc.get("name", "?"), st, msg))
if bad:
    print(f"Failed tests ({len(bad)}):")
    for name, st, msg in bad:
        lines = msg.splitlines() or ["(no message)"]
        print(f"  {st.upper()}: {name}")
        for l in lines[:4]:
            print(f"      {l[:300]}")
        if len(lines) > 4:
            print(f"      ... ({len(lines) - 4} more lines)")
EOF

overall=$(sed -n 's/^OCI Conformance Result: //p' "$results/output.txt" | head -n 1)
echo "conformance: result ${overall:-unknown} in ${elapsed}s; reports: $results/report.html, $results/junit.xml, $results/results.yaml"
if [[ $rc -ne 0 || $overall != Pass ]]; then
    echo "conformance: FAILED (suite exit $rc, result ${overall:-unknown})"
    exit 1
fi
echo "conformance: PASSED"
