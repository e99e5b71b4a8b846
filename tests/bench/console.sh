#!/usr/bin/env bash
# Console page timing on a large registry (issue 17): starts Wharf on its
# embedded default (SQLite + filesystem) with auth on, builds the fixture
# through the API and times every console page, p50 / p99 / max per page,
# beside the JSON API answering the same question (tests/bench/console_pages.py).
#
# Usage: bash tests/bench/console.sh [--smoke]
#   (no option)  5,000 repositories and 10,000 tags, 200 requests per page
#   --smoke      50 repositories and 100 tags, 5 requests per page (the test
#                command's console step runs this, so the benchmark cannot rot)
# Writes $WHARF_RESULTS_DIR/bench/console.{txt,json}.
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"
cd "$WHARF_ROOT" || exit 1

sizes=(--repos 5000 --tags 10000 --samples 200)
if [[ ${1:-} == --smoke ]]; then
    sizes=(--repos 50 --tags 100 --samples 5)
fi
[[ -x $WHARF_BIN ]] || die "$WHARF_BIN is missing: cargo build --release"
out_dir="$WHARF_RESULTS_DIR/bench"
mkdir -p "$out_dir"
server=bench-console
password="bench-admin-$RANDOM$RANDOM"
trap 'server_stop "$server"' EXIT
WHARF_TEST_SERVER=wharf WHARF_TEST_SERVER_POSTGRES='' server_start "$server" fs "" WHARF_AUTH__ENABLED=true \
    "WHARF_ADMIN_PASSWORD=$password" WHARF_LOG__LEVEL=warn || die "could not start Wharf"
{
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "Wharf $(git rev-parse --short HEAD 2>/dev/null), SQLite + filesystem, auth on, one keep-alive connection on loopback"
    python3 "$WHARF_ROOT/tests/bench/console_pages.py" --addr "${SERVER_ADDR[$server]}" --password "$password" \
        --json "$out_dir/console.json" "${sizes[@]}"
} 2>&1 | tee "$out_dir/console.txt"
exit "${PIPESTATUS[0]}"
