#!/usr/bin/env bash
# Builds the test tools pinned in conformance/go.mod into conformance/.build/:
#   .build/conformance  the OCI distribution-spec conformance suite
#   .build/crane        go-containerregistry's crane client
# Usage: conformance/build.sh [conformance|crane|all]   (default: all)
# Prints the path of each built binary. Rebuilds only when go.mod, go.sum or
# the Go version changed since the last build (the Go build cache makes a
# forced rebuild cheap as well).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build_dir="$here/.build"
what=${1:-all}

declare -A pkg=(
    [conformance]=github.com/opencontainers/distribution-spec/conformance
    [crane]=github.com/google/go-containerregistry/cmd/crane
)
case $what in
    all) targets=(conformance crane) ;;
    conformance|crane) targets=("$what") ;;
    *) echo "usage: $0 [conformance|crane|all]" >&2; exit 2 ;;
esac

command -v go >/dev/null || { echo "build.sh: go is not installed (see tests/env/install.sh)" >&2; exit 1; }

mkdir -p "$build_dir"
cd "$here"
stamp_want=$( { cat go.mod go.sum; go version; } | sha256sum | cut -d' ' -f1)

for t in "${targets[@]}"; do
    bin="$build_dir/$t"
    stamp="$build_dir/$t.stamp"
    if [[ -x $bin && -f $stamp && $(cat "$stamp") == "$stamp_want" ]]; then
        echo "$bin"
        continue
    fi
    ldflags=""
    if [[ $t == conformance ]]; then
        # The suite records its commit in the report; without VCS info in the
        # module cache it would say "unknown", so inject the pinned version.
        ver=$(go list -m -f '{{.Version}}' "${pkg[$t]}")
        ldflags="-X main.Version=$ver"
    fi
    echo "build.sh: building $t (${pkg[$t]})" >&2
    # -mod=readonly: go.mod/go.sum are the pins and must not drift.
    go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$bin" "${pkg[$t]}"
    echo "$stamp_want" >"$stamp"
    echo "$bin"
done
