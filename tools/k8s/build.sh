#!/usr/bin/env bash
# Build a real Kubernetes control plane for placer's k8s tests from the Go module proxy alone
# (the project's machines have Go but no container engine, so no kind/k3d): etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, Kueue's controller (+ its CRDs) and
# kwok, into a cache folder keyed by the versions. Pieces already in the cache are skipped.
#
#   tools/k8s/build.sh                      # every piece, smallest useful set first
#   tools/k8s/build.sh etcd kube-apiserver  # only these
#   tools/k8s/build.sh --print-bin          # print the bin folder and exit
#
# Environment: PLACER_K8S_CACHE (default ~/.cache/placer/k8s), K8S_VERSION, ETCD_VERSION,
# KUEUE_VERSION, KWOK_VERSION. Builds run one at a time under `nice -n 19`, GOMAXPROCS=1 and
# `-p=1` so they do not starve tests on a 2-core machine; set PLACER_K8S_JOBS=N to use N cores.
# Each build is timed with /usr/bin/time -v into <versions>/logs/<piece>.time, and a line
# "piece wall_s cpu_s bin_bytes" is appended to <versions>/logs/summary.tsv.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
# k8s.io/kubernetes vX.Y.Z publishes its staging modules (k8s.io/api, ...) as v0.Y.Z.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"

CACHE="${PLACER_K8S_CACHE:-$HOME/.cache/placer/k8s}"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kueue-${KUEUE_VERSION}_kwok-${KWOK_VERSION}"
ROOT="$CACHE/$KEY"
BIN="$ROOT/bin"
SRC="$ROOT/src"
LOGS="$ROOT/logs"
JOBS="${PLACER_K8S_JOBS:-1}"

if [[ "${1:-}" == "--print-bin" ]]; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$BIN" "$SRC" "$LOGS"
# The build cache lives with the binaries so its disk use is attributable and it survives with
# them; the module cache stays Go's default (shared with every other Go build).
export GOCACHE="$ROOT/go-build"
export GOMAXPROCS="$JOBS"
export GOFLAGS="-p=$JOBS -buildvcs=false -trimpath"
export CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '[k8s-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# run_timed PIECE CMD...: run CMD niced, timed with /usr/bin/time -v, from the piece's folder.
run_timed() {
    local piece="$1"
    shift
    /usr/bin/time -v -o "$LOGS/$piece.time" nice -n 19 "$@"
}

record() {
    local piece="$1" out="$2"
    local wall cpu_user cpu_sys size
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$LOGS/$piece.time")
    cpu_user=$(awk -F': ' '/User time/ {print $2}' "$LOGS/$piece.time")
    cpu_sys=$(awk -F': ' '/System time/ {print $2}' "$LOGS/$piece.time")
    size=$(stat -c %s "$out")
    printf '%s\twall=%s\tcpu=%.0fs\tbin_bytes=%s\tgocache=%s\n' "$piece" "$wall" \
        "$(awk "BEGIN {print $cpu_user + $cpu_sys}")" "$size" "$(du -sh "$GOCACHE" | cut -f1)" \
        | tee -a "$LOGS/summary.tsv" >&2
}

build_etcd() {
    local dir="$SRC/etcd"
    mkdir -p "$dir"
    cat >"$dir/main.go" <<'EOF'
// Command etcd is etcd's own server entry point, built from the published server module
// (etcd's root module replaces its submodules with local paths, so `go install` refuses it).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
    cat >"$dir/go.mod" <<EOF
module placer.local/k8s/etcd

go 1.25
EOF
    (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
    (cd "$dir" && run_timed etcd go build -ldflags "-s -w" -o "$BIN/etcd" .)
    record etcd "$BIN/etcd"
}

# The staging modules k8s.io/kubernetes replaces with ./staging/src/k8s.io/* paths.
staging_modules() {
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | awk -F'"' '/"GoMod"/ {print $4}')
    awk '/=> \.\/staging\/src\// {print $1}' "$gomod"
}

prepare_kubernetes() {
    local dir="$SRC/kubernetes"
    [[ -f "$dir/.ready" ]] && return 0
    mkdir -p "$dir"
    {
        echo "module placer.local/k8s/kubernetes"
        echo
        echo "go 1.26"
        echo
        echo "require k8s.io/kubernetes $K8S_VERSION"
        echo
        echo "// k8s.io/kubernetes points these at its own tree; use the published release of each."
        echo "replace ("
        staging_modules | while read -r m; do echo "	$m => $m $STAGING_VERSION"; done
        echo ")"
    } >"$dir/go.mod"
    (cd "$dir" && go get \
        "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION")
    touch "$dir/.ready"
}

build_kube() {
    local piece="$1"
    prepare_kubernetes
    local major minor rest
    rest="${K8S_VERSION#v}"
    major="${rest%%.*}"
    rest="${rest#*.}"
    minor="${rest%%.*}"
    local pkg=k8s.io/component-base/version
    local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major"
    ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
    (cd "$SRC/kubernetes" && run_timed "$piece" go build -ldflags "$ldflags" \
        -o "$BIN/$piece" "k8s.io/kubernetes/cmd/$piece")
    record "$piece" "$BIN/$piece"
}

build_kueue() {
    # sigs.k8s.io/kueue's go.mod has no replace directives, so `go install @version` works.
    (cd "$SRC" && GOBIN="$BIN" run_timed kueue go install -ldflags "-s -w" \
        "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION")
    record kueue "$BIN/kueue"
    local moddir
    moddir=$(go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | awk -F'"' '/"Dir"/ {print $4}')
    mkdir -p "$ROOT/kueue-crds"
    cp "$moddir"/config/components/crd/bases/*.yaml "$ROOT/kueue-crds/"
    chmod u+w "$ROOT"/kueue-crds/*.yaml
}

build_kwok() {
    (cd "$SRC" && GOBIN="$BIN" run_timed kwok go install -ldflags "-s -w" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    record kwok "$BIN/kwok"
}

ALL=(etcd kube-apiserver kube-controller-manager kube-scheduler kueue kwok)
PIECES=("$@")
[[ ${#PIECES[@]} -eq 0 ]] && PIECES=("${ALL[@]}")

failed=()
for piece in "${PIECES[@]}"; do
    if [[ -x "$BIN/$piece" ]]; then
        log "$piece: cached in $BIN"
        continue
    fi
    log "$piece: building"
    case "$piece" in
        etcd) fn=build_etcd ;;
        kube-apiserver | kube-controller-manager | kube-scheduler) fn="build_kube $piece" ;;
        kueue) fn=build_kueue ;;
        kwok) fn=build_kwok ;;
        *)
            log "unknown piece '$piece' (known: ${ALL[*]})"
            exit 2
            ;;
    esac
    # A piece that fails is reported and the rest still build. (A function called from an
    # `if` runs without `set -e`, hence the subshell and the explicit status.)
    set +e
    (set -e; $fn) 2> >(tee "$LOGS/$piece.err" >&2)
    rc=$?
    set -e
    if [[ $rc -ne 0 ]]; then
        log "$piece: FAILED (exit $rc), see $LOGS/$piece.err"
        failed+=("$piece")
    fi
done
log "bin: $BIN ($(du -sh "$BIN" | cut -f1)); go build cache $(du -sh "$GOCACHE" 2>/dev/null | cut -f1)"
if [[ ${#failed[@]} -gt 0 ]]; then
    log "failed: ${failed[*]}"
    exit 1
fi

# KubeRay's CRDs (ray.io RayJob, RayCluster, RayService), for tests that have the real API
# server validate placer's RayJob against their structural schema; the operator is not built
# (nothing runs a RayJob here). The Go module proxy serves github.com/ray-project/kuberay/
# ray-operator, whose module holds the CRDs under config/crd/bases/ (v1.5.0 is what the proxy
# answered for @latest on 2026-12-06). Copied into <versions>/kuberay-crds/ with a VERSION file,
# and copied again when KUBERAY_VERSION changes.
KUBERAY_VERSION="${KUBERAY_VERSION:-v1.5.0}"
KUBERAY_CRDS="$ROOT/kuberay-crds"
if [[ "$(cat "$KUBERAY_CRDS/VERSION" 2>/dev/null)" != "$KUBERAY_VERSION" ]]; then
    log "kuberay-crds: fetching github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION"
    kuberay_dir=$(go mod download -json "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION" \
        | awk -F'"' '/"Dir"/ {print $4}')
    if [[ -z "$kuberay_dir" ]] || ! ls "$kuberay_dir"/config/crd/bases/ray.io_*.yaml >/dev/null; then
        log "kuberay-crds: FAILED, no config/crd/bases/ray.io_*.yaml in the module"
        exit 1
    fi
    rm -rf "$KUBERAY_CRDS"
    mkdir -p "$KUBERAY_CRDS"
    cp "$kuberay_dir"/config/crd/bases/ray.io_*.yaml "$KUBERAY_CRDS/"
    chmod u+w "$KUBERAY_CRDS"/*.yaml
    echo "$KUBERAY_VERSION" >"$KUBERAY_CRDS/VERSION"
    log "kuberay-crds: $(ls "$KUBERAY_CRDS"/*.yaml | wc -l) CRDs in $KUBERAY_CRDS"
fi
