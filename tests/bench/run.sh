#!/usr/bin/env bash
# Benchmarks Wharf side by side with CNCF distribution, one after the other
# in one run, and prints both with the ratio Wharf / reference and each
# server's CPU per request (or per MiB).
#
# Usage: bash tests/bench/run.sh [--smoke] [--reference distribution|docker-registry] [wharf-bench options...]
#   (no option)  the full profile: 1 GiB blobs, 10 s of manifest load,
#                500 images, 10,000 tags, 5,000 repositories (about 10 minutes)
#   --smoke      tiny sizes; every scenario still runs (the test suite's check)
#   --reference  distribution (default): CNCF distribution v3.1.2, built from
#                the Go module proxy; docker-registry: Debian's 2.8.2
#   other options go to wharf-bench (e.g. --scenarios pull,manifest-get)
#
# Installs the reference if missing, builds the release binaries, starts both
# registries on loopback with the filesystem backend, and writes the table to
# $WHARF_RESULTS_DIR/bench/ (Markdown and JSON).
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"
cd "$WHARF_ROOT" || exit 1

profile=full
args=()
reference=distribution
while (($#)); do
    case $1 in
        --smoke) profile=smoke ;;
        --reference)
            reference=${2:-}
            shift
            ;;
        *) args+=("$1") ;;
    esac
    shift
done
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
trap server_stop_all EXIT

WHARF_TEST_SERVER=wharf server_start bench-wharf fs || die "wharf did not start"
WHARF_TEST_SERVER=$ref_server server_start bench-reference fs || die "$ref_version did not start"

{
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
    echo "Reference: $ref_version; Wharf $(git -C "$WHARF_ROOT" rev-parse --short HEAD 2>/dev/null); profile $profile; $(date -u +%F)"
    echo
} | tee "$out_dir/$profile.md"

"$bench_bin" \
    --wharf-url "http://${SERVER_ADDR[bench-wharf]}" --wharf-pid "${SERVER_PID[bench-wharf]}" \
    --reference-url "http://${SERVER_ADDR[bench-reference]}" --reference-pid "${SERVER_PID[bench-reference]}" \
    --reference-name "$reference" --profile "$profile" --json "$out_dir/$profile.json" "${args[@]}" | tee -a "$out_dir/$profile.md"
rc=${PIPESTATUS[0]}

for s in bench-wharf bench-reference; do
    if ! server_alive "$s"; then
        echo "bench: server $s is no longer running (crashed?)" >&2
        server_log_tail "$s" 40
        rc=1
    fi
done
echo "bench: results in $out_dir/$profile.md and $profile.json"
exit "$rc"
