#!/usr/bin/env bash
# The web console in a real headless browser (Debian's chromium and
# chromium-driver, driven by Selenium from .venv-test): starts its own Wharf
# with auth on, then tests/console/browser.py clicks through it as a
# releaser, a developer and a forger. Screenshots of each page go to
# $WHARF_RESULTS_DIR/console/. Prints "ok - NAME" / "not ok - NAME" and
# "console: N passed, N failed"; exits non-zero if any check failed.
#
# Usage: tests/console/browser.sh
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"

for f in /usr/bin/chromium /usr/bin/chromedriver "$WHARF_TEST_VENV/bin/python"; do
    [[ -x $f ]] || die "$f is missing: run tests/env/install.sh console"
done
server=wharf-console
admin_password="console-admin-$RANDOM$RANDOM"
trap 'server_stop "$server"' EXIT
server_start "$server" fs "" WHARF_AUTH__ENABLED=true "WHARF_ADMIN_PASSWORD=$admin_password" || die "could not start Wharf"
shots="$WHARF_RESULTS_DIR/console"
rm -rf "$shots"
mkdir -p "$shots"
# SE_OFFLINE: Selenium Manager must not fetch anything; the paths are given.
SE_OFFLINE=true WHARF_CONSOLE_URL="http://${SERVER_ADDR[$server]}" WHARF_ADMIN_PASSWORD="$admin_password" \
    WHARF_CONSOLE_SHOTS="$shots" timeout 300 "$WHARF_TEST_VENV/bin/python" "$WHARF_ROOT/tests/console/browser.py"
