#!/usr/bin/env bash
# Wharf's project test command:   bash tests/run-all.sh [STEP...]
#
# Steps (default: all, in this order):
#   install          tests/env/install.sh: apt packages, Go modules + tools, moto venv
#   build            cargo build --release --locked
#   lint             cargo fmt --check and cargo clippy --all-targets -D warnings
#   readme           tests/clients/readme.sh: README.md's two commands; the run
#                    command verbatim on a fresh clone (needs 127.0.0.1:5000 free)
#   s3               start the moto S3 server (tests/services/s3.sh), export WHARF_TEST_S3_*
#   cargo-test       cargo test --release --locked (Rust black-box tests)
#   cargo-test-versitygw  the S3 half of those tests (names s3::...) against
#                    versitygw, a real S3 gateway over a directory
#                    (tests/services/versitygw.sh), instead of moto
#   openapi          /api/v1/openapi.json of a fresh Wharf through openapi-spec-validator
#                    (tests/openapi.rs, in cargo-test, checks real answers against it)
#   conformance-fs   OCI conformance suite vs a fresh Wharf, filesystem backend
#   conformance-s3   OCI conformance suite vs a fresh Wharf, S3 backend
#   docker           tests/clients/docker.sh vs a fresh Wharf
#   crane            tests/clients/crane.sh vs a fresh Wharf
#   deb              tests/packaging/deb.sh: cargo deb from the release build, dpkg -i,
#                    start as the systemd unit would, GET /v2/, stop, dpkg --purge
#   bench-smoke      tests/bench/run.sh --smoke: every benchmark scenario, tiny sizes,
#                    Wharf and CNCF distribution v3.1.2 (so the benchmark cannot rot);
#                    embedded (filesystem + SQLite), then --backend pg-s3 (PostgreSQL +
#                    versitygw) with one node and with three behind HAProxy
#   cargo-test-postgres  the whole Rust suite (contract suite's postgres half included) with
#                    each Wharf on a fresh PostgreSQL database (tests/services/postgres.sh);
#                    SQLite-only binaries and tests are listed in the step, with why
#   cosign           tests/clients/cosign.sh: signed promotions with the real cosign
#                    (its own Wharf with a signature-gated prod stage)
#   console          tests/console/browser.sh: the web console clicked through in
#                    headless Debian chromium (Selenium); screenshots in
#                    test-results/console/; then tests/bench/console.sh --smoke
#                    (the page-timing benchmark on a small fixture)
#   pg-clients       conformance-fs, docker and crane again, each Wharf with its
#                    metadata in a fresh PostgreSQL database (WHARF_TEST_SERVER_POSTGRES)
#   cluster          tests/cluster/run.sh: three Wharf nodes on one PostgreSQL and one
#                    versitygw bucket behind HAProxy (its own servers; docker, crane,
#                    a node SIGKILLed, readiness), results in test-results/cluster/
# Steps may also be chosen with WHARF_TEST_STEPS="step step ...".
#
# Every step runs even when an earlier one failed (a step whose prerequisite
# failed is reported as failed without running). Server logs and reports go to
# test-results/ (WHARF_RESULTS_DIR). The last line is "N passed, N failed"
# counting steps; the exit status is non-zero if any step failed.
#
# WHARF_TEST_SERVER=reference runs the server steps against Debian's
# docker-registry instead of Wharf (to validate this harness itself).
set -uo pipefail

. "$(dirname "$0")/env/lib.sh"
cd "$WHARF_ROOT" || exit 1

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A failing test prints its message, not a stack trace: the CI log is cut
# off, and the trace hid which tests failed. Set it to 1 to debug.
export RUST_BACKTRACE=${WHARF_TEST_BACKTRACE:-0}

all_steps=(install build lint readme s3 cargo-test cargo-test-versitygw openapi conformance-fs conformance-s3 docker crane deb bench-smoke cargo-test-postgres cosign console pg-clients cluster)
if (($#)); then
    steps=("$@")
elif [[ -n ${WHARF_TEST_STEPS:-} ]]; then
    read -r -a steps <<<"$WHARF_TEST_STEPS"
else
    steps=("${all_steps[@]}")
fi
for s in "${steps[@]}"; do
    [[ " ${all_steps[*]} " == *" $s "* ]] || die "unknown step '$s' (steps: ${all_steps[*]})"
done

rm -rf "$WHARF_RESULTS_DIR/conformance"
mkdir -p "$WHARF_RESULTS_DIR/logs"

s3_started=0
versitygw_started=0
postgres_started=0
cleanup() {
    server_stop_all
    if ((s3_started)); then
        bash "$WHARF_ROOT/tests/services/s3.sh" stop >/dev/null 2>&1 || true
    fi
    if ((versitygw_started)); then
        bash "$WHARF_ROOT/tests/services/versitygw.sh" stop >/dev/null 2>&1 || true
    fi
    if ((postgres_started)); then
        bash "$WHARF_ROOT/tests/services/postgres.sh" stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'echo "run-all: interrupted" >&2; exit 130' INT TERM

declare -A status=() duration=() note=()
order=()

selected() { [[ " ${steps[*]} " == *" $1 "* ]]; }

# run_step NAME FUNCTION: runs it in this shell (so traps see its servers).
run_step() {
    local name=$1 fn=$2 t0 rc
    order+=("$name")
    echo
    echo "=================================================================="
    echo "== step: $name   ($(date -u +%H:%M:%S) UTC)"
    echo "=================================================================="
    t0=$(date +%s)
    "$fn"
    rc=$?
    duration[$name]=$(($(date +%s) - t0))
    if ((rc == 0)); then
        status[$name]=PASS
    else
        status[$name]=FAIL
        [[ -n ${note[$name]:-} ]] || note[$name]="exit status $rc"
    fi
    echo "== step $name: ${status[$name]} (${duration[$name]}s)${note[$name]:+ - ${note[$name]}}"
}

# A step that cannot run because a prerequisite failed counts as failed.
need() {
    local step=$1 dep
    shift
    for dep in "$@"; do
        if [[ ${status[$dep]:-} == FAIL ]]; then
            note[$step]="not run: step '$dep' failed"
            echo "${note[$step]}"
            return 1
        fi
    done
}

need_server_binary() {
    local step=$1
    if [[ $WHARF_TEST_SERVER == wharf && ! -x $WHARF_BIN ]]; then
        note[$step]="not run: $WHARF_BIN does not exist"
        echo "${note[$step]}"
        return 1
    fi
}

# ------------------------------------------------------------------ steps ---
# Install components one by one, so that one failing (say docker.io) only
# blocks the steps that need it.
declare -A install_failed=()
step_install() {
    local comps=(base rust go s3) c rc=0
    if selected docker; then comps+=(docker); fi
    if selected cargo-test-versitygw; then comps+=(versitygw); fi
    if [[ $WHARF_TEST_SERVER == reference ]]; then comps+=(reference); fi
    if selected bench-smoke; then comps+=(distribution postgres versitygw haproxy); fi
    if selected openapi; then comps+=(openapi); fi
    if selected deb; then comps+=(deb); fi
    if selected cargo-test-postgres; then comps+=(postgres); fi
    if selected cosign; then comps+=(cosign); fi
    if selected console; then comps+=(console); fi
    if selected pg-clients; then comps+=(postgres docker); fi
    if selected cluster; then comps+=(go docker versitygw postgres haproxy); fi
    for c in "${comps[@]}"; do
        if ! bash "$WHARF_ROOT/tests/env/install.sh" "$c"; then
            install_failed[$c]=1
            rc=1
        fi
    done
    if ((rc)); then
        note[install]="failed components: ${!install_failed[*]}"
    fi
    return "$rc"
}

# need_installed STEP COMPONENT...: fails if installing a component failed.
need_installed() {
    local step=$1 c
    shift
    for c in "$@"; do
        if [[ -n ${install_failed[$c]:-} || -n ${install_failed[base]:-} ]]; then
            note[$step]="not run: installing '$c' failed"
            echo "${note[$step]}"
            return 1
        fi
    done
}

step_build() {
    need_installed build rust || return 1
    cargo build --release --locked
}

# Formatting and lints are part of the suite: a warning fails the run.
step_lint() {
    need lint build || return 1
    if ! cargo fmt --check; then
        note[lint]="cargo fmt --check found unformatted code (run cargo fmt)"
        return 1
    fi
    cargo clippy --release --locked --all-targets -- -D warnings
}

step_readme() {
    need_installed readme rust || return 1
    need readme build || return 1
    bash "$WHARF_ROOT/tests/clients/readme.sh"
}

step_s3() {
    need_installed s3 s3 || return 1
    local out
    # Stop at exit only a server this run started (s3.sh reuses a running one).
    if bash "$WHARF_ROOT/tests/services/s3.sh" status >/dev/null 2>&1; then
        echo "note: reusing the S3 server that is already running; it is left running"
    else
        s3_started=1
    fi
    if ! out=$(bash "$WHARF_ROOT/tests/services/s3.sh" start); then
        note[s3]="S3 server did not start (log: $WHARF_RESULTS_DIR/logs/s3.log)"
        return 1
    fi
    set -a
    eval "$out"
    set +a
    echo "$out"
}

step_cargo_test() {
    need cargo-test build || return 1
    if [[ -z ${WHARF_TEST_S3_ENDPOINT:-} ]]; then
        echo "note: WHARF_TEST_S3_* not set (step s3 not run or failed); S3 tests may skip or fail"
    fi
    # --no-fail-fast: one failing test binary must not hide the others' results.
    # The contract suite's PostgreSQL half (tests named postgres::) runs in
    # step cargo-test-postgres, which starts the server it needs. Tests of
    # what an S3 server must verify (verifying_s3::) run in step
    # cargo-test-versitygw only: moto verifies no signature or checksum.
    cargo test --release --locked --no-fail-fast -- --skip postgres:: --skip verifying_s3::
}

# The S3 half runs again against a real S3 implementation: versitygw's
# posix backend answers as S3 does (signatures checked, 409 on some racing
# writes) where moto, a mock, is lenient. Its WHARF_TEST_S3_* replace moto's
# for this step only.
step_cargo_test_versitygw() {
    need_installed cargo-test-versitygw versitygw s3 || return 1
    need cargo-test-versitygw build || return 1
    local out rc=0
    # Stop afterwards only a server this step started.
    if ! bash "$WHARF_ROOT/tests/services/versitygw.sh" status >/dev/null 2>&1; then
        versitygw_started=1
    fi
    if ! out=$(bash "$WHARF_ROOT/tests/services/versitygw.sh" start); then
        note[cargo-test-versitygw]="versitygw did not start (log: $WHARF_RESULTS_DIR/logs/versitygw.log)"
        return 1
    fi
    echo "$out"
    (
        set -a
        eval "$out"
        set +a
        cargo test --release --locked --no-fail-fast -- s3::
    ) || rc=$?
    if ((rc != 0)); then
        note[cargo-test-versitygw]="see the output above and $WHARF_RESULTS_DIR/logs/versitygw.log"
    fi
    if ((versitygw_started)); then
        bash "$WHARF_ROOT/tests/services/versitygw.sh" stop >/dev/null 2>&1 || true
        versitygw_started=0
    fi
    return "$rc"
}

# conformance_against NAME BACKEND [RESULTS_SUBDIR (default: BACKEND)]
conformance_against() {
    local step=$1 backend=$2 results=${3:-$2} server rc=0
    server="$WHARF_TEST_SERVER-$step"
    need_installed "$step" go || return 1
    need "$step" build || return 1
    if [[ $backend == s3 ]]; then need "$step" s3 || return 1; fi
    need_server_binary "$step" || return 1
    # Distinct S3 prefix per run so nothing from an earlier server is reused.
    if ! server_start "$server" "$backend" "conformance-$(date +%s)-$RANDOM"; then
        note[$step]="server did not start"
        return 1
    fi
    CONFORMANCE_RESULTS_DIR="$WHARF_RESULTS_DIR/conformance/$results" \
        bash "$WHARF_ROOT/conformance/run.sh" "http://${SERVER_ADDR[$server]}" || rc=$?
    if ! server_alive "$server"; then
        echo "run-all: server $server is no longer running (crashed?)"
        rc=1
    fi
    if ((rc != 0)); then
        note[$step]="see $WHARF_RESULTS_DIR/conformance/$results/ and ${SERVER_LOG[$server]}"
        server_log_tail "$server" 60
    fi
    server_stop "$server"
    return "$rc"
}
step_conformance_fs() { conformance_against conformance-fs fs; }
step_conformance_s3() { conformance_against conformance-s3 s3; }

# client_against STEP SCRIPT INSTALL_COMPONENT
# Against Wharf, a second server with auth on is started too; the script
# finds it in WHARF_TEST_AUTH_REGISTRY (admin password WHARF_TEST_ADMIN_PASSWORD).
client_against() {
    local step=$1 script=$2 comp=$3 server auth_server="" rc=0 s
    server="$WHARF_TEST_SERVER-$step"
    need_installed "$step" "$comp" || return 1
    need "$step" build || return 1
    need_server_binary "$step" || return 1
    if ! server_start "$server" fs; then
        note[$step]="server did not start"
        return 1
    fi
    local -a auth_env=()
    if [[ $WHARF_TEST_SERVER == wharf ]]; then
        auth_server="$server-auth"
        local admin_pw="admin-pw-$RANDOM$RANDOM"
        if ! server_start "$auth_server" fs "$auth_server" WHARF_AUTH__ENABLED=true "WHARF_ADMIN_PASSWORD=$admin_pw"; then
            note[$step]="auth server did not start"
            server_stop "$server"
            return 1
        fi
        auth_env=("WHARF_TEST_AUTH_REGISTRY=${SERVER_ADDR[$auth_server]}" "WHARF_TEST_ADMIN_PASSWORD=$admin_pw")
        # The client scripts assert that a normal session logs no ERROR line.
        auth_env+=("WHARF_TEST_SERVER_LOGS=${SERVER_LOG[$server]} ${SERVER_LOG[$auth_server]}")
    fi
    env "${auth_env[@]}" bash "$script" "${SERVER_ADDR[$server]}" || rc=$?
    for s in "$server" $auth_server; do
        if ! server_alive "$s"; then
            echo "run-all: server $s is no longer running (crashed?)"
            rc=1
        fi
    done
    if ((rc != 0)); then
        note[$step]="see ${SERVER_LOG[$server]}${auth_server:+ and ${SERVER_LOG[$auth_server]}}"
        for s in "$server" $auth_server; do server_log_tail "$s" 40; done
    fi
    for s in "$server" $auth_server; do server_stop "$s"; done
    return "$rc"
}
step_docker() { client_against docker "$WHARF_ROOT/tests/clients/docker.sh" docker; }
step_crane() { client_against crane "$WHARF_ROOT/tests/clients/crane.sh" go; }
step_openapi() {
    local server=wharf-openapi doc="$WHARF_RESULTS_DIR/openapi.json" rc=0
    need_installed openapi openapi || return 1
    need openapi build || return 1
    [[ $WHARF_TEST_SERVER == wharf ]] || { note[openapi]="Wharf only"; return 0; }
    need_server_binary openapi || return 1
    server_start "$server" fs || { note[openapi]="server did not start"; return 1; }
    if curl -fsS -o "$doc" "http://${SERVER_ADDR[$server]}/api/v1/openapi.json"; then
        "$WHARF_TEST_VENV/bin/openapi-spec-validator" "$doc" || rc=$?
    else
        rc=1
    fi
    ((rc == 0)) || note[openapi]="see $doc"
    server_stop "$server"
    return "$rc"
}
step_deb() {
    need_installed deb deb || return 1
    need deb build || return 1
    [[ $WHARF_TEST_SERVER == wharf ]] || { note[deb]="Wharf only"; return 0; }
    bash "$WHARF_ROOT/tests/packaging/deb.sh"
}
step_cosign() {
    need_installed cosign cosign go || return 1
    need cosign build || return 1
    [[ $WHARF_TEST_SERVER == wharf ]] || { note[cosign]="Wharf only"; return 0; }
    need_server_binary cosign || return 1
    bash "$WHARF_ROOT/tests/clients/cosign.sh"
}
step_console() {
    need_installed console console || return 1
    need console build || return 1
    [[ $WHARF_TEST_SERVER == wharf ]] || { note[console]="Wharf only"; return 0; }
    need_server_binary console || return 1
    local rc=0
    bash "$WHARF_ROOT/tests/console/browser.sh" || rc=$?
    # The page-timing benchmark's small fixture, so it cannot rot.
    bash "$WHARF_ROOT/tests/bench/console.sh" --smoke || rc=$?
    return "$rc"
}
step_bench_smoke() {
    need_installed bench-smoke distribution postgres versitygw haproxy || return 1
    need bench-smoke build || return 1
    local rc=0 nodes
    bash "$WHARF_ROOT/tests/bench/run.sh" --smoke || rc=1
    # Smaller listings and a shorter manifest load than --smoke's: every
    # scenario still runs (several pages per walk), in about 40 s each.
    for nodes in 1 3; do
        bash "$WHARF_ROOT/tests/bench/run.sh" --smoke --backend pg-s3 --nodes "$nodes" \
            --manifest-secs 1 --tags 100 --repos 60 --page 25 || rc=1
    done
    ((rc == 0)) || note[bench-smoke]="see $WHARF_RESULTS_DIR/bench/"
    return "$rc"
}

# The whole Rust suite on PostgreSQL: WHARF_TEST_DATABASE=postgres makes the
# harness (tests/common) give every Wharf it starts a fresh database on the
# throw-away server tests/services/postgres.sh starts (and hand its URL to the
# CLI runs a test makes itself); the contract suite's postgres:: half runs
# here too. Reuses the release build. Every test binary runs except these,
# inherently SQLite:
sqlite_only_binaries=(
    # Permissions of the data directory and the SQLite files in it, and the
    # data-dir lock around them.
    datadir
    # Not about an engine: source files and layers.
    layering
)
# Single tests that are SQLite-only, with why:
sqlite_only=(
    # Holds SQLite's write lock from a second connection to make the node unready.
    readyz_follows_the_database
    # S3 is orthogonal to the metadata engine and has its own steps (s3, versitygw).
    s3::
)
step_cargo_test_postgres() {
    need_installed cargo-test-postgres postgres || return 1
    need cargo-test-postgres build || return 1
    local out rc=0 t skips=()
    # Stop afterwards only a server this step started.
    if ! bash "$WHARF_ROOT/tests/services/postgres.sh" status >/dev/null 2>&1; then
        postgres_started=1
    fi
    if ! out=$(bash "$WHARF_ROOT/tests/services/postgres.sh" start); then
        note[cargo-test-postgres]="PostgreSQL did not start (log: $WHARF_RESULTS_DIR/logs/postgres.log)"
        return 1
    fi
    local bins=() f
    for t in "${sqlite_only[@]}"; do skips+=(--skip "$t"); done
    for f in "$WHARF_ROOT"/tests/*.rs; do
        t=$(basename "$f" .rs)
        [[ " ${sqlite_only_binaries[*]} " == *" $t "* ]] || bins+=(--test "$t")
    done
    (
        eval "$out"
        export WHARF_TEST_DATABASE=postgres
        cargo test --release --locked --no-fail-fast "${bins[@]}" -- "${skips[@]}"
    ) || rc=$?
    if ((rc != 0)); then
        note[cargo-test-postgres]="see the output above and $WHARF_RESULTS_DIR/logs/postgres.log"
    fi
    if ((postgres_started)); then
        bash "$WHARF_ROOT/tests/services/postgres.sh" stop >/dev/null 2>&1 || true
        postgres_started=0
    fi
    return "$rc"
}
# The multi-node test starts its own PostgreSQL, versitygw, nodes and HAProxy
# (under test-results/cluster/) and stops them; it reuses the release build.
step_cluster() {
    need_installed cluster go docker versitygw postgres haproxy || return 1
    need cluster build || return 1
    [[ $WHARF_TEST_SERVER == wharf ]] || { note[cluster]="Wharf only"; return 0; }
    need_server_binary cluster || return 1
    if ! bash "$WHARF_ROOT/tests/cluster/run.sh"; then
        note[cluster]="see $WHARF_RESULTS_DIR/cluster/"
        return 1
    fi
}

# The OCI conformance suite, docker and crane against Wharf with its metadata
# on PostgreSQL: server_start gives each server a fresh database on the
# tests/services/postgres.sh server. Reuses the release build.
step_pg_clients() {
    need_installed pg-clients postgres go docker || return 1
    need pg-clients build || return 1
    [[ $WHARF_TEST_SERVER == wharf ]] || { note[pg-clients]="Wharf only"; return 0; }
    local out rc=0 part
    if ! bash "$WHARF_ROOT/tests/services/postgres.sh" status >/dev/null 2>&1; then
        postgres_started=1
    fi
    if ! out=$(bash "$WHARF_ROOT/tests/services/postgres.sh" start); then
        note[pg-clients]="PostgreSQL did not start (log: $WHARF_RESULTS_DIR/logs/postgres.log)"
        return 1
    fi
    local failed=()
    (
        eval "$out"
        export WHARF_TEST_SERVER_POSTGRES=$WHARF_TEST_POSTGRES_URL
        conformance_against pg-clients fs pg-fs || exit 1
    ) || failed+=(conformance)
    for part in docker crane; do
        (
            eval "$out"
            export WHARF_TEST_SERVER_POSTGRES=$WHARF_TEST_POSTGRES_URL
            if [[ $part == docker ]]; then
                client_against pg-clients "$WHARF_ROOT/tests/clients/docker.sh" docker
            else
                client_against pg-clients "$WHARF_ROOT/tests/clients/crane.sh" go
            fi
        ) || failed+=("$part")
    done
    if ((${#failed[@]})); then
        note[pg-clients]="failed on PostgreSQL: ${failed[*]} (logs in $WHARF_RESULTS_DIR/logs/)"
        rc=1
    fi
    if ((postgres_started)); then
        bash "$WHARF_ROOT/tests/services/postgres.sh" stop >/dev/null 2>&1 || true
        postgres_started=0
    fi
    return "$rc"
}

# ------------------------------------------------------------------- main ---
t_start=$(date +%s)
echo "run-all: steps: ${steps[*]} (server: $WHARF_TEST_SERVER, results: $WHARF_RESULTS_DIR)"
for s in "${all_steps[@]}"; do
    selected "$s" || continue
    run_step "$s" "step_${s//-/_}"
done

passed=0 failed=0
echo
echo "=================================================================="
echo "== summary ($(($(date +%s) - t_start))s total)"
echo "=================================================================="
for s in "${order[@]}"; do
    printf '  %-16s %-4s %6ss  %s\n' "$s" "${status[$s]}" "${duration[$s]}" "${note[$s]:-}"
    if [[ ${status[$s]} == PASS ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "results and server logs: $WHARF_RESULTS_DIR"
echo "$passed passed, $failed failed"
((failed == 0))
