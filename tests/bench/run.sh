#!/usr/bin/env bash
# Benchmarks Wharf side by side with CNCF distribution (Debian's
# docker-registry), one after the other in one run, and prints both with the
# ratio Wharf / docker-registry.
#
# Usage: bash tests/bench/run.sh [--smoke] [wharf-bench options...]
#   (no option)  the full profile: 1 GiB blobs, 10 s of manifest load,
#                500 images, 10,000 tags, 5,000 repositories (about 10 minutes)
#   --smoke      tiny sizes; every scenario still runs (the test suite's check)
#   other options go to wharf-bench (e.g. --scenarios pull,manifest-get)
#
# Installs docker-registry from Debian if missing, builds the release
# binaries, starts both registries on loopback with the filesystem backend,
# and writes the table to $WHARF_RESULTS_DIR/bench/ (Markdown and JSON).
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"
cd "$WHARF_ROOT" || exit 1

profile=full
args=()
for a in "$@"; do
    case $a in
        --smoke) profile=smoke ;;
        *) args+=("$a") ;;
    esac
done

bash "$WHARF_ROOT/tests/env/install.sh" reference >/dev/null || die "could not install docker-registry"
cargo build --release --locked --bins || die "build failed"
bench_bin="$WHARF_ROOT/target/release/wharf-bench"

out_dir="$WHARF_RESULTS_DIR/bench"
mkdir -p "$out_dir"
trap server_stop_all EXIT

WHARF_TEST_SERVER=wharf server_start bench-wharf fs || die "wharf did not start"
WHARF_TEST_SERVER=reference server_start bench-reference fs || die "docker-registry did not start"

{
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
    echo "Reference: docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null); Wharf $(git -C "$WHARF_ROOT" rev-parse --short HEAD 2>/dev/null); profile $profile; $(date -u +%F)"
    echo
} | tee "$out_dir/$profile.md"

"$bench_bin" \
    --wharf-url "http://${SERVER_ADDR[bench-wharf]}" --wharf-pid "${SERVER_PID[bench-wharf]}" \
    --reference-url "http://${SERVER_ADDR[bench-reference]}" --reference-pid "${SERVER_PID[bench-reference]}" \
    --profile "$profile" --json "$out_dir/$profile.json" "${args[@]}" | tee -a "$out_dir/$profile.md"
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
