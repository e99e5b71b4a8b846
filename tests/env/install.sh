#!/usr/bin/env bash
# Installs what Wharf's test harness needs on a Debian 12 machine (as root).
# Idempotent: anything already present is skipped.
#
# Usage: tests/env/install.sh [COMPONENT...]
#   base       curl, ca-certificates, tar, gzip, python3 venv support
#   rust       checks that cargo/rustc are present (they cannot be installed here)
#   go         checks the Go version conformance/go.mod needs, downloads the modules pinned in
#              conformance/go.mod and builds conformance/.build/{conformance,crane}
#   s3         .venv-test/ with the pinned moto S3 server (tests/services/s3-requirements.txt)
#   versitygw  .tools/bin/versitygw, the versitygw S3 gateway at $VERSITYGW_VERSION (go install)
#   docker     Debian's docker.io (dockerd + CLI), without starting any service
#   reference  Debian's docker-registry 2.8 (harness validation; the benchmark's optional old reference)
#   distribution  .tools/bin/registry, CNCF distribution $DISTRIBUTION_VERSION (go install): the
#              benchmark's reference
#   deb        cargo-deb (pinned) into .tools/, and systemd-analyze (Debian package step)
#   openapi    openapi-spec-validator (tests/openapi/requirements.txt) in .venv-test/
#   postgres   Debian's postgresql (15): initdb, pg_ctl, postgres for tests/services/postgres.sh
#   cosign     .tools/bin/cosign at $COSIGN_VERSION (go install; signed-promotion step)
#   console    chromium + chromium-driver (Debian) and Selenium in .venv-test (console step)
#   haproxy    Debian's haproxy (the load balancer of the multi-node test, tests/cluster/run.sh)
#   all        base rust go s3 versitygw docker openapi deb postgres cosign console haproxy   (default)
set -euo pipefail

. "$(dirname "$0")/lib.sh"

export DEBIAN_FRONTEND=noninteractive
# Debian images with needrestart would otherwise print service-restart noise.
export NEEDRESTART_SUSPEND=1

apt_update_once() {
    if [[ ${WHARF_APT_UPDATED:-0} != 1 ]]; then
        log "install: apt-get update"
        apt-get update -qq
        export WHARF_APT_UPDATED=1
    fi
}

# apt_install PKG...: installs the packages that are not installed yet.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    apt_update_once
    log "install: apt-get install ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install_base() {
    local pkgs=()
    command -v curl >/dev/null || pkgs+=(curl)
    [[ -e /etc/ssl/certs/ca-certificates.crt ]] || pkgs+=(ca-certificates)
    command -v tar >/dev/null || pkgs+=(tar)
    command -v gzip >/dev/null || pkgs+=(gzip)
    command -v python3 >/dev/null || pkgs+=(python3)
    ((${#pkgs[@]} == 0)) || apt_install "${pkgs[@]}"
    # "python3 -m venv" needs ensurepip, which Debian ships separately.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv
    fi
}

install_rust() {
    command -v cargo >/dev/null || die "cargo is not installed: the Rust toolchain must be preinstalled (rustup)"
    cargo fmt --version >/dev/null 2>&1 || die "rustfmt is missing: the lint step needs the toolchain's rustfmt component"
    cargo clippy --version >/dev/null 2>&1 || die "clippy is missing: the lint step needs the toolchain's clippy component"
    log "install: $(cargo --version)"
}

install_go() {
    local v need
    need=$(awk '$1 == "go" {print $2; exit}' "$WHARF_ROOT/conformance/go.mod")
    command -v go >/dev/null || die "go is not installed: Go >= $need must be preinstalled"
    v=$(go env GOVERSION)
    v=${v#go}
    if ! printf '%s\n%s\n' "$need" "$v" | sort -V -C; then
        die "Go $v is too old: conformance/go.mod needs Go >= $need"
    fi
    log "install: go $v; downloading modules pinned in conformance/go.mod"
    (cd "$WHARF_ROOT/conformance" && go mod download && go mod verify >/dev/null)
    "$WHARF_ROOT/conformance/build.sh" all >/dev/null
    log "install: built conformance/.build/conformance and conformance/.build/crane"
}

install_s3() {
    local req="$WHARF_ROOT/tests/services/s3-requirements.txt" stamp want
    stamp="$WHARF_TEST_VENV/.wharf-requirements.sha256"
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ -x $WHARF_TEST_VENV/bin/moto_server && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        log "install: $WHARF_TEST_VENV is up to date"
        return 0
    fi
    install_base
    if [[ ! -x $WHARF_TEST_VENV/bin/python ]]; then
        log "install: creating $WHARF_TEST_VENV"
        python3 -m venv "$WHARF_TEST_VENV"
    fi
    log "install: pip install -r tests/services/s3-requirements.txt"
    "$WHARF_TEST_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --no-input --require-virtualenv -r "$req"
    echo "$want" >"$stamp"
}

# go_tool_install NAME BINARY MODULE VERSION: `go install MODULE@VERSION`
# into the project-local GOBIN (.tools/bin), unless BINARY is there already at
# VERSION (a stamp file beside it records the version built).
go_tool_install() {
    local name=$1 binary=$2 module=$3 version=$4 gobin="$WHARF_ROOT/.tools/bin" stamp
    stamp="$gobin/.$name-version"
    if [[ -x $gobin/$binary && -f $stamp && $(cat "$stamp") == "$version" ]]; then
        log "install: $name $version is up to date"
        return 0
    fi
    command -v go >/dev/null || die "go is not installed: building $name needs Go"
    mkdir -p "$gobin"
    log "install: go install $module@$version"
    GOBIN=$gobin go install "$module@$version"
    echo "$version" >"$stamp"
}

# versitygw, a real S3 implementation over a directory (tests/services/versitygw.sh).
VERSITYGW_VERSION=v1.8.0
install_versitygw() {
    go_tool_install versitygw versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
}

# CNCF distribution v3, the registry teams would pick today: the benchmark's reference.
DISTRIBUTION_VERSION=v3.1.2
install_distribution() {
    go_tool_install distribution registry github.com/distribution/distribution/v3/cmd/registry "$DISTRIBUTION_VERSION"
}

# cosign, to sign images for the signed-promotion step (tests/clients/cosign.sh); slow to build.
COSIGN_VERSION=v2.6.5
install_cosign() {
    go_tool_install cosign cosign github.com/sigstore/cosign/v2/cmd/cosign "$COSIGN_VERSION"
}

# Installing docker.io must not start a system dockerd: the tests run their
# own private daemon. policy-rc.d tells invoke-rc.d not to start services.
install_docker() {
    if command -v dockerd >/dev/null && command -v docker >/dev/null; then
        return 0
    fi
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    apt_install docker.io || rc=$?
    if ((made_policy)); then
        rm -f /usr/sbin/policy-rc.d
    fi
    return "$rc"
}

install_reference() {
    apt_install docker-registry
}

# cargo-deb builds the .deb from Cargo.toml's [package.metadata.deb]; it is
# built once into .tools/ (gitignored) and reused while the pin matches.
CARGO_DEB_VERSION=3.8.0
install_deb() {
    local tools="$WHARF_ROOT/.tools"
    if [[ $("$tools/bin/cargo-deb" --version 2>/dev/null) != *" $CARGO_DEB_VERSION"* ]]; then
        install_rust
        log "install: cargo install cargo-deb $CARGO_DEB_VERSION into .tools/"
        # Its own target dir: the project's release build is not touched.
        CARGO_TARGET_DIR="$tools/build" cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --root "$tools"
        rm -rf "$tools/build"
    fi
    command -v systemd-analyze >/dev/null || apt_install systemd
    # dpkg-shlibdeps computes the package's library dependencies ($auto).
    command -v dpkg-shlibdeps >/dev/null || apt_install dpkg-dev
}

install_openapi() {
    local req="$WHARF_ROOT/tests/openapi/requirements.txt" stamp want
    stamp="$WHARF_TEST_VENV/.wharf-openapi-requirements.sha256"
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ -x $WHARF_TEST_VENV/bin/openapi-spec-validator && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        return 0
    fi
    install_base
    [[ -x $WHARF_TEST_VENV/bin/python ]] || python3 -m venv "$WHARF_TEST_VENV"
    log "install: pip install -r tests/openapi/requirements.txt"
    "$WHARF_TEST_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --no-input --require-virtualenv -r "$req"
    echo "$want" >"$stamp"
}

# The console step (tests/console/browser.sh): Debian's chromium and its
# chromedriver, and Selenium in .venv-test pointed at them (nothing downloads
# a browser).
install_console() {
    apt_install chromium chromium-driver
    local req="$WHARF_ROOT/tests/console/requirements.txt" stamp want
    stamp="$WHARF_TEST_VENV/.wharf-console-requirements.sha256"
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ -x $WHARF_TEST_VENV/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        return 0
    fi
    install_base
    [[ -x $WHARF_TEST_VENV/bin/python ]] || python3 -m venv "$WHARF_TEST_VENV"
    log "install: pip install -r tests/console/requirements.txt"
    "$WHARF_TEST_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --no-input --require-virtualenv -r "$req"
    echo "$want" >"$stamp"
}

# The PostgreSQL server binaries; no cluster is created or started here
# (tests/services/postgres.sh makes a throw-away one per run).
install_postgres() {
    apt_install postgresql
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $bin && -x $bin/initdb && -x $bin/pg_ctl ]] || die "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
}

# The load balancer in front of the multi-node test (tests/services/haproxy.sh);
# installing the package must not leave its system service running.
install_haproxy() {
    command -v haproxy >/dev/null && return 0
    apt_install haproxy
    command -v systemctl >/dev/null && systemctl disable --now haproxy >/dev/null 2>&1 || true
    command -v haproxy >/dev/null || die "haproxy installed but not on PATH"
}

components=("$@")
((${#components[@]})) || components=(all)
for c in "${components[@]}"; do
    case $c in
        all) install_base; install_rust; install_go; install_s3; install_versitygw; install_docker; install_openapi; install_deb; install_postgres; install_cosign; install_console; install_haproxy ;;
        base|rust|go|s3|versitygw|docker|reference|distribution|deb|openapi|postgres|cosign|console|haproxy) "install_$c" ;;
        *) die "unknown component '$c' (base rust go s3 versitygw docker reference distribution deb openapi postgres cosign console haproxy all)" ;;
    esac
done
log "install: done (${components[*]})"
