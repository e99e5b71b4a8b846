#!/usr/bin/env bash
# Builds the Debian package from the release build, installs it with dpkg,
# checks what it installed, starts the service as its unit would, asks /v2/,
# stops it and purges the package again.
#
# Usage: tests/packaging/deb.sh        (as root; after `cargo build --release`)
# Needs cargo-deb in .tools/bin (tests/env/install.sh deb).
# Prints "ok - NAME" / "not ok - NAME" per check, then "deb: N passed, N failed".
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"
cd "$WHARF_ROOT" || exit 1

CARGO_DEB=$WHARF_ROOT/.tools/bin/cargo-deb
UNIT=/lib/systemd/system/wharf.service
CONF=/etc/wharf/wharf.toml
DATA=/var/lib/wharf
# Marks a data directory this script made, so only such a one is removed.
MARKER=$DATA/.wharf-deb-test

[[ $EUID -eq 0 ]] || die "run as root (dpkg -i)"
[[ -x $CARGO_DEB ]] || die "$CARGO_DEB is missing: run tests/env/install.sh deb"

pid=""
user_existed=0
getent passwd wharf >/dev/null && user_existed=1
cleanup() {
    local rc=$?
    [[ -n $pid ]] && stop_pid "$pid" wharf
    if dpkg-query -W -f='${Status}' wharf 2>/dev/null | grep -q 'ok installed'; then
        dpkg --purge wharf >/dev/null 2>&1 || true
    fi
    [[ -e $MARKER ]] && rm -rf "$DATA"
    ((user_existed)) || userdel wharf 2>/dev/null || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A real installation on this machine is never touched.
if [[ -d $DATA && ! -e $MARKER ]]; then
    t_not_ok "no real Wharf installation in $DATA" "refusing to install over it"
    t_summary deb
    exit 1
fi
if dpkg-query -W -f='${Status}' wharf 2>/dev/null | grep -q 'ok installed'; then
    [[ -e $MARKER ]] || { t_not_ok "the wharf package is not installed for real" "refusing to purge it"; t_summary deb; exit 1; }
    dpkg --purge wharf >/dev/null # left over from an interrupted run of this script
fi
rm -rf "$DATA"

# ------------------------------------------------------------------ build ---
out_dir=$WHARF_RESULTS_DIR/deb
rm -rf "$out_dir"
mkdir -p "$out_dir"
# --strip: the release profile keeps line tables for backtraces; the package need not.
if t_check "cargo deb --no-build --strip (reusing the release build)" "$CARGO_DEB" --no-build --strip --output "$out_dir"; then
    deb=$(ls "$out_dir"/wharf_*.deb 2>/dev/null | head -n 1)
else
    deb=""
fi
if [[ -z $deb ]]; then
    t_not_ok "a .deb was built" "$(ls -l "$out_dir")"
    t_summary deb
    exit 1
fi
info=$(dpkg-deb --info "$deb")
if grep -q '^ Package: wharf' <<<"$info" && grep -q '^ Depends:.*passwd' <<<"$info"; then
    t_ok "$(basename "$deb"): package wharf, depends on passwd"
else
    t_not_ok "package metadata" "$info"
fi

# ---------------------------------------------------------------- install ---
t_check "dpkg -i $(basename "$deb")" dpkg -i "$deb" || { t_summary deb; exit 1; }
touch "$MARKER"
for f in /usr/bin/wharf "$UNIT" "$CONF" /usr/share/doc/wharf/wharf.toml.example; do
    if [[ -f $f ]]; then t_ok "installed $f"; else t_not_ok "installed $f"; fi
done
if dpkg-query -W -f='${Conffiles}\n' wharf | grep -q " $CONF "; then
    t_ok "$CONF is a conffile"
else
    t_not_ok "$CONF is a conffile" "$(dpkg-query -W -f='${Conffiles}\n' wharf)"
fi
if [[ $(getent passwd wharf | cut -d: -f7) == /usr/sbin/nologin && $(id -u wharf) -lt 1000 ]]; then
    t_ok "system user wharf (uid $(id -u wharf), no login shell)"
else
    t_not_ok "system user wharf" "$(getent passwd wharf)"
fi
if [[ $(stat -c '%U:%G %a' "$DATA") == "wharf:wharf 700" ]]; then
    t_ok "$DATA is wharf:wharf 0700"
else
    t_not_ok "$DATA is wharf:wharf 0700" "$(stat -c '%U:%G %a' "$DATA")"
fi
if [[ $(stat -c '%U:%G %a' "$CONF") == "root:wharf 640" ]]; then
    t_ok "$CONF is root:wharf 0640 (wharf reads it, only root writes it)"
else
    t_not_ok "$CONF is root:wharf 0640" "$(stat -c '%U:%G %a' "$CONF")"
fi
version=$(/usr/bin/wharf --version 2>&1)
if [[ $version =~ ^wharf\ [0-9.]+\ \(commit\ [0-9a-f]{7,}\)$ ]]; then
    t_ok "installed wharf --version names the commit: $version"
else
    t_not_ok "installed wharf --version names the commit" "$version"
fi
if command -v systemd-analyze >/dev/null; then
    # Offline check of the unit: syntax, known directives, ExecStart exists.
    if out=$(systemd-analyze verify "$UNIT" 2>&1) && ! grep -q 'wharf.service' <<<"$out"; then
        t_ok "systemd-analyze verify $UNIT"
    else
        t_not_ok "systemd-analyze verify $UNIT" "$out"
    fi
else
    t_not_ok "systemd-analyze is installed (tests/env/install.sh deb)"
fi

# ------------------------------------------------------------------ start ---
# No systemd in CI: start it as the unit does (User=wharf, UMask=0077,
# ExecStart), on a test port. setpriv execs wharf itself, so the pid is
# wharf's and SIGTERM reaches it directly.
port=$(free_port)
admin_pw="deb-admin-$RANDOM$RANDOM"
log_file=$WHARF_RESULTS_DIR/logs/deb-wharf.log
mkdir -p "$(dirname "$log_file")"
(
    cd / && umask 077 &&
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin WHARF_LISTEN="127.0.0.1:$port" WHARF_ADMIN_PASSWORD="$admin_pw" \
            setpriv --reuid=wharf --regid=wharf --init-groups -- /usr/bin/wharf serve --config "$CONF"
) >"$log_file" 2>&1 &
pid=$!
if wait_http "http://127.0.0.1:$port/v2/" 30 "$pid"; then
    t_ok "the packaged service answers on 127.0.0.1:$port"
else
    t_not_ok "the packaged service starts" "$(tail -n 20 "$log_file")"
    t_summary deb
    exit 1
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")
with_auth=$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$admin_pw" "http://127.0.0.1:$port/v2/")
if [[ $code == 401 && $with_auth == 200 ]]; then
    t_ok "GET /v2/: 401 without credentials (auth on by default), 200 as admin"
else
    t_not_ok "GET /v2/ answers 401, then 200 as admin" "got $code and $with_auth"
fi
owners=$(find "$DATA" -mindepth 1 ! -user wharf -printf '%p %u\n' | grep -v "^$MARKER " || true)
if [[ -z $owners && -f $DATA/wharf.db ]]; then
    t_ok "the service keeps its database in $DATA, everything owned by wharf"
else
    t_not_ok "database in $DATA owned by wharf" "$owners" "$(ls -la "$DATA")"
fi
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if ((rc == 0)); then t_ok "SIGTERM stops it cleanly"; else t_not_ok "SIGTERM stops it cleanly" "exit status $rc"; fi

# ------------------------------------------------------------------ purge ---
if t_check "dpkg --purge wharf" dpkg --purge wharf; then
    left=$(ls -d /usr/bin/wharf "$UNIT" /etc/wharf 2>/dev/null || true)
    if [[ -z $left ]]; then
        t_ok "purge removed the binary, the unit and /etc/wharf"
    else
        t_not_ok "purge removed the binary, the unit and /etc/wharf" "$left"
    fi
    if [[ -d $DATA ]]; then
        t_ok "purge keeps the registry's data in $DATA (removed by this test)"
    else
        t_not_ok "purge keeps the registry's data in $DATA"
    fi
fi

t_summary deb
