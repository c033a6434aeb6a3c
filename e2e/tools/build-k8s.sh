#!/usr/bin/env bash
# Build (or reuse) the Kubernetes control-plane binaries the e2e harness runs:
# kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes Go
# module), etcd (Debian's etcd-server, or the go.etcd.io/etcd/server/v3 module)
# and helm (helm.sh/helm/v3 module). Everything comes from official sources via
# the Go module proxy / apt; outputs are cached outside the repo in
#   ${EDDY_CACHE:-$HOME/.cache/eddy}/k8s/<k8s version>/bin/
# The script is idempotent: a binary that already exists is not rebuilt.
# Logs go to stderr; the bin dir is printed on stdout at the end, so
#   BIN=$(e2e/tools/build-k8s.sh)            # everything
#   BIN=$(e2e/tools/build-k8s.sh etcd k8s)   # only what the control plane needs
# works.
#
# Environment:
#   EDDY_K8S_VERSION   k8s.io/kubernetes version        (default v1.37.2)
#   EDDY_HELM_VERSION  helm.sh/helm/v3 version          (default v3.22.0)
#   EDDY_ETCD          debian | module                  (default debian: apt's etcd-server)
#   EDDY_ETCD_VERSION  go.etcd.io/etcd/server/v3 version when EDDY_ETCD=module (default v3.6.16)
#   EDDY_BUILD_KUBECTL 1 = also build kubectl of the same version (default 0: use the one on PATH)
#   EDDY_BUILD_JOBS    go build -p (default 1: the machine is shared; CI may raise it)
#   EDDY_CACHE         cache root (default $HOME/.cache/eddy)
set -euo pipefail

K8S_VERSION=${EDDY_K8S_VERSION:-v1.37.2}
HELM_VERSION=${EDDY_HELM_VERSION:-v3.22.0}
ETCD_SOURCE=${EDDY_ETCD:-debian}
ETCD_VERSION=${EDDY_ETCD_VERSION:-v3.6.16}
BUILD_KUBECTL=${EDDY_BUILD_KUBECTL:-0}
JOBS=${EDDY_BUILD_JOBS:-1}

ROOT=${EDDY_CACHE:-$HOME/.cache/eddy}/k8s/$K8S_VERSION
BIN=$ROOT/bin
SRC=$ROOT/src
mkdir -p "$BIN" "$SRC"

log() { echo "[build-k8s $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go not found on PATH"

# Go build settings: static, stripped, reproducible paths; one package at a time
# by default. GOFLAGS from the caller (e.g. -buildvcs=false) is kept.
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -p=$JOBS -mod=mod"
export GOWORK=off
if [ "$JOBS" = 1 ]; then export GOMAXPROCS=${GOMAXPROCS:-1}; fi
NICE=(nice -n 19)

# timed NAME CMD...: run CMD, log and record its wall time in $ROOT/build-times.txt
timed() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  "$@"
  local dt=$(( $(date +%s) - t0 ))
  log "$name took ${dt}s"
  echo "$(date -u +%FT%TZ) $name ${dt}s" >> "$ROOT/build-times.txt"
}

have() { local b; for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done; }

# --------------------------------------------------------------------------
# Kubernetes: a throwaway wrapper module that requires k8s.io/kubernetes and
# points every staging module (required as v0.0.0 and replaced with
# ./staging/... in k8s's own go.mod, which `go install pkg@version` refuses)
# at its published v0.<minor>.<patch> twin.
# --------------------------------------------------------------------------
build_k8s() {
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler)
  [ "$BUILD_KUBECTL" = 1 ] && cmds+=(kubectl)
  if have "${cmds[@]}"; then log "k8s $K8S_VERSION: cached"; return; fi

  local ver=${K8S_VERSION#v} major minor patch
  IFS=. read -r major minor patch <<<"${ver%%-*}"
  local staging="v0.$minor.$patch"
  [ "$ver" = "$major.$minor.$patch" ] || staging="v0.$minor.${ver#*.*.}"   # pre-releases: v0.37.0-rc.1

  log "k8s $K8S_VERSION: fetching module metadata"
  local gomod
  gomod=$("${NICE[@]}" go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
          sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || die "go mod download k8s.io/kubernetes@$K8S_VERSION gave no go.mod"

  local goline godebug mods
  goline=$(grep -m1 '^go ' "$gomod")
  godebug=$(grep '^godebug ' "$gomod" || true)
  # staging modules: the left side of every `=> ./staging/...` replace
  mods=$(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1} $1=="replace" && $3=="=>" && $4 ~ /^\.\/staging\// {print $2}' "$gomod" | sort -u)
  [ -n "$mods" ] || die "no staging replaces found in $gomod"

  local w=$SRC/kubernetes-wrapper
  rm -rf "$w"; mkdir -p "$w"
  {
    echo "module eddy.dev/e2e/k8s-build"
    echo
    echo "$goline"
    [ -n "$godebug" ] && echo "$godebug"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    local m; for m in $mods; do echo "	$m => $m $staging"; done
    echo ")"
  } > "$w/go.mod"
  log "k8s $K8S_VERSION: wrapper module $w/go.mod ($(wc -w <<<"$mods") staging modules at $staging)"

  # version stamping the way hack/lib/version.sh does it, so discovery, helm's
  # kubeVersion checks and kubectl's skew warning see the real version
  local date pkgs ld
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ld="-s -w"
  for pkgs in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $pkgs.gitVersion=$K8S_VERSION -X $pkgs.gitMajor=$major -X $pkgs.gitMinor=$minor"
    ld+=" -X $pkgs.gitTreeState=clean -X $pkgs.buildDate=$date"
  done

  local targets=() c
  for c in "${cmds[@]}"; do targets+=("k8s.io/kubernetes/cmd/$c"); done

  (
    cd "$w"
    log "k8s $K8S_VERSION: resolving dependencies (go get)"
    timed "k8s-$K8S_VERSION-resolve" "${NICE[@]}" go get "${targets[@]/%/@$K8S_VERSION}" >&2
    log "k8s $K8S_VERSION: building ${cmds[*]} (GOFLAGS=$GOFLAGS) — tens of minutes on 1 core"
    timed "k8s-$K8S_VERSION-build(${cmds[*]})" "${NICE[@]}" \
      go build -trimpath -ldflags="$ld" -o "$BIN/" "${targets[@]}" >&2
  )
  have "${cmds[@]}" || die "k8s build finished but binaries are missing in $BIN"
  echo "$K8S_VERSION" > "$BIN/.k8s-version"
}

# --------------------------------------------------------------------------
# etcd
# --------------------------------------------------------------------------
build_etcd() {
  case "$ETCD_SOURCE" in
    debian)
      if [ -x "$BIN/etcd" ] && [ -L "$BIN/etcd" ]; then log "etcd: cached (-> $(readlink "$BIN/etcd"))"; return; fi
      if ! command -v etcd >/dev/null; then
        [ "$(id -u)" = 0 ] || die "etcd missing and not root: apt-get install etcd-server, or EDDY_ETCD=module"
        log "etcd: apt-get install etcd-server"
        # The package would start a system etcd on :2379; the harness runs its own on free
        # ports. A policy-rc.d answering 101 keeps the package scripts from starting it (as
        # scripts/setup.sh does for prometheus), and on systemd hosts it is disabled too.
        local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
        if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; own_policy=1; fi
        { apt-cache policy etcd-server | grep -q 'Candidate: [0-9]' || "${NICE[@]}" apt-get update -qq >&2; } &&
          DEBIAN_FRONTEND=noninteractive "${NICE[@]}" apt-get install -y -qq --no-install-recommends etcd-server >&2 || rc=$?
        if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
        [ "$rc" = 0 ] || die "apt-get install etcd-server failed ($rc); EDDY_ETCD=module builds it instead"
        if [ -d /run/systemd/system ]; then systemctl disable --now etcd.service >/dev/null 2>&1 || true; fi
      fi
      ln -sf "$(command -v etcd)" "$BIN/etcd"
      log "etcd: $("$BIN/etcd" --version | head -1) (Debian)"
      ;;
    module)
      if have etcd && [ ! -L "$BIN/etcd" ]; then log "etcd: cached"; return; fi
      rm -f "$BIN/etcd"
      local w=$SRC/etcd-wrapper
      rm -rf "$w"; mkdir -p "$w"
      ( cd "$w"
        "${NICE[@]}" go mod init eddy.dev/e2e/etcd-build >&2 2>&1
        # etcd server's go.mod also has local replaces (./api, ./client/..., ./pkg),
        # all published under the same version
        local e
        for e in go.etcd.io/etcd/api/v3 go.etcd.io/etcd/client/pkg/v3 go.etcd.io/etcd/client/v3 go.etcd.io/etcd/pkg/v3; do
          go mod edit -replace "$e=$e@$ETCD_VERSION"
        done
        timed "etcd-$ETCD_VERSION-resolve" "${NICE[@]}" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
        timed "etcd-$ETCD_VERSION-build" "${NICE[@]}" go build -trimpath -ldflags="-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3 >&2
      )
      ;;
    *) die "EDDY_ETCD must be debian or module" ;;
  esac
}

# --------------------------------------------------------------------------
# helm: helm.sh/helm/v3 has no local replaces, so `go install`-style works;
# built with go build in a wrapper for the same flags and output dir.
# --------------------------------------------------------------------------
build_helm() {
  if have helm && [ "$(cat "$BIN/.helm-version" 2>/dev/null)" = "$HELM_VERSION" ]; then log "helm $HELM_VERSION: cached"; return; fi
  local w=$SRC/helm-wrapper
  rm -rf "$w"; mkdir -p "$w"
  ( cd "$w"
    "${NICE[@]}" go mod init eddy.dev/e2e/helm-build >&2 2>&1
    timed "helm-$HELM_VERSION-resolve" "${NICE[@]}" go get "helm.sh/helm/v3@$HELM_VERSION" >&2
    timed "helm-$HELM_VERSION-build" "${NICE[@]}" go build -trimpath \
      -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
      -o "$BIN/helm" helm.sh/helm/v3/cmd/helm >&2
  )
  echo "$HELM_VERSION" > "$BIN/.helm-version"
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    all)  build_etcd; build_k8s; build_helm ;;
    k8s)  build_k8s ;;
    etcd) build_etcd ;;
    helm) build_helm ;;
    *) die "usage: $0 [all|k8s|etcd|helm]..." ;;
  esac
done

log "bin dir: $BIN ($(du -sh "$BIN" | cut -f1))"
echo "$BIN"
