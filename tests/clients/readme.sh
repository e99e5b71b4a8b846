#!/usr/bin/env bash
# The README's two commands, as a newcomer meets them (issue 11).
#
# Usage: tests/clients/readme.sh          (run-all.sh step `readme`, after `build`)
#
# - Both commands are read from README.md's "The two commands" section, so
#   what is tested is what the README says (no second copy to drift).
# - The test command must be exactly the one .ci/run executes.
# - The run command runs VERBATIM in a fresh `git clone` of this checkout
#   (what is committed at HEAD: a clone never has uncommitted changes) until
#   `GET /v2/` answers 200; it must create the clone's ./data, and stop on
#   SIGTERM.
# The test command itself is not run here: it is the suite this script is
# part of (CI runs it on a clean clone through .ci/run), so running it would
# recurse.
#
# Prints "ok - NAME" / "not ok - NAME" per check, then
# "readme: N passed, N failed"; exits non-zero if any check failed.
set -uo pipefail

. "$(dirname "$0")/../env/lib.sh"

readme=$WHARF_ROOT/README.md
section="The two commands"

# --------------------------------------------------- read the commands ---
# Every fenced block of the section, one block per NUL-terminated record.
mapfile -d '' -t blocks < <(awk -v want="## $section" '
    /^## / { inside = ($0 == want); next }
    !inside { next }
    /^```/ { if (fence) { printf "%s%c", block, 0; block = ""; fence = 0 } else { fence = 1 }; next }
    fence { block = block (block == "" ? "" : "\n") $0 }
' "$readme")
if ((${#blocks[@]} == 2)) && [[ -n ${blocks[0]} && -n ${blocks[1]} && ${blocks[0]} != *$'\n'* && ${blocks[1]} != *$'\n'* ]]; then
    run_cmd=${blocks[0]}
    test_cmd=${blocks[1]}
    t_ok "README section \"$section\" has two one-line commands: run \`$run_cmd\`, test \`$test_cmd\`"
else
    t_not_ok "README section \"$section\" has two one-line commands" "found ${#blocks[@]} code block(s):" "${blocks[@]}"
    t_summary readme
    exit 1
fi

# ------------------------------------- the test command is what CI runs ---
ci_cmd=$(sed -n 's/^exec //p' "$WHARF_ROOT/.ci/run")
if [[ -n $ci_cmd && $ci_cmd == "$test_cmd" ]]; then
    t_ok ".ci/run executes the README's test command: $ci_cmd"
else
    t_not_ok ".ci/run executes the README's test command" "README: $test_cmd" ".ci/run: exec ${ci_cmd:-<no exec line>}"
fi

# ------------------------------------------- the run command, fresh clone ---
listen=$(sed -n 's/.*--listen[ =]\([^ ]*\).*/\1/p' <<<"$run_cmd")
host=${listen%:*}
port=${listen##*:}
if [[ -z $listen || -z $host || ! $port =~ ^[0-9]+$ ]]; then
    t_not_ok "the run command names its address with --listen HOST:PORT" "$run_cmd"
    t_summary readme
    exit 1
fi
# Verbatim means on the README's own port, so it has to be free. Bound as
# the server binds (SO_REUSEADDR), so closed connections in TIME_WAIT from
# an earlier server do not count as busy.
if ! python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))' "$host" "$port" 2>/dev/null; then
    t_not_ok "$listen is free for the README's run command" \
        "something already listens on $listen (addresses on port $port: $(listen_addrs "$port" | tr '\n' ' '))" \
        "stop it and run this step again; the command is run verbatim, so it cannot move to another port"
    t_summary readme
    exit 1
fi

if ! command -v git >/dev/null; then
    log "installing git"
    apt-get update -qq >/dev/null && apt-get install -y -qq git >/dev/null || die "could not install git"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/wharf-readme.XXXXXX")
pid=""
cleanup() {
    local rc=$?
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clone=$work/wharf
if ! t_check "git clone of the checkout into $clone" git clone -q "$WHARF_ROOT" "$clone"; then
    t_summary readme
    exit 1
fi
# Files of the checkout that differ from HEAD (changed, or new and not ignored).
dirty=$(cd "$WHARF_ROOT" && { git diff --name-only HEAD; git ls-files --others --exclude-standard; } | sort -u)
if [[ -n $dirty ]]; then
    log "note: the checkout has uncommitted changes; the clone (and so this test) has HEAD"
fi
if [[ -e $clone/data ]]; then
    t_not_ok "a fresh clone has no ./data yet" "$(ls -la "$clone/data")"
else
    t_ok "a fresh clone has no ./data yet"
fi

# A newcomer's environment has no Wharf or AWS settings: keep the harness's out.
unset_env=(env)
for v in $(compgen -e | grep -E '^(WHARF_|AWS_)' || true); do
    unset_env+=(-u "$v")
done
# Building the clone from nothing takes as long as the `build` step again.
# CARGO_TARGET_DIR lets it reuse the checkout's compiled dependencies (the
# command text stays verbatim): cargo keys workspace artifacts by paths
# relative to the workspace, so only the wharf crate itself is rebuilt (its
# sources are newer than the checkout's artifacts).
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$WHARF_ROOT/$target_dir
runlog=$WHARF_RESULTS_DIR/logs/readme-run.log
mkdir -p "$(dirname "$runlog")"
log "running in $clone: $run_cmd   (log: $runlog)"
# Its own process group (setsid), so SIGTERM reaches whatever the command
# started; `cargo run` replaces itself with the server on Unix.
(cd "$clone" && exec "${unset_env[@]}" CARGO_TARGET_DIR="$target_dir" NO_COLOR=1 \
    setsid bash -c "$run_cmd") >"$runlog" 2>&1 </dev/null &
pid=$!

code="" t0=$(date +%s)
# Generous: the wharf crate is compiled first.
while (($(date +%s) - t0 < 1200)); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$listen/v2/" 2>/dev/null) || true
    [[ $code == 200 ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
if [[ $code == 200 ]] && kill -0 "$pid" 2>/dev/null; then
    t_ok "the run command, verbatim in the clone, answers GET http://$listen/v2/ with 200 after $(($(date +%s) - t0)) s"
else
    state="still running"
    kill -0 "$pid" 2>/dev/null || state="exited"
    t_not_ok "the run command, verbatim in the clone, answers GET http://$listen/v2/ with 200" \
        "last answer: ${code:-none}; the command $state after $(($(date +%s) - t0)) s" "$(tail -n 30 "$runlog")"
fi

if [[ -d $clone/data && -n $(ls -A "$clone/data") ]]; then
    t_ok "the run command created ./data in the clone ($(ls "$clone/data" | tr '\n' ' '))"
else
    t_not_ok "the run command created ./data in the clone" "$(ls -la "$clone" 2>&1)"
fi

if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null
    rc="" i=0
    for ((i = 0; i < 150; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0
            wait "$pid" || rc=$?
            break
        fi
        sleep 0.2
    done
    if [[ $rc == 0 ]]; then
        t_ok "the server stops on SIGTERM with status 0"
    elif [[ -n $rc ]]; then
        t_not_ok "the server stops on SIGTERM with status 0" "exit status $rc" "$(tail -n 15 "$runlog")"
    else
        t_not_ok "the server stops on SIGTERM within 30 s" "$(tail -n 15 "$runlog")"
    fi
    pid=""
fi

# The clone's build left HEAD's wharf in the shared target dir, newer than
# any uncommitted change of the checkout, so cargo would take it for the
# checkout's build. Make those changes newer again and rebuild, so the steps
# after this one test the checkout (nothing to do on CI's clean clone).
if [[ -n $dirty ]]; then
    log "rebuilding the checkout's own wharf (it has uncommitted changes)"
    if (cd "$WHARF_ROOT" && xargs -r -d '\n' touch -c -- <<<"$dirty" && cargo build --release --locked) >>"$runlog" 2>&1; then
        t_ok "the checkout's uncommitted changes are built again after the clone's build"
    else
        t_not_ok "the checkout's uncommitted changes are built again after the clone's build" "$(tail -n 15 "$runlog")"
    fi
fi

t_summary readme
