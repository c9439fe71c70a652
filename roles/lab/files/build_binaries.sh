#!/usr/bin/env bash
# Build the lab's Kubernetes, etcd and CoreDNS binaries from the Go module proxy.
#
# usage: build_binaries.sh OUT_DIR K8S_VERSION ETCD_VERSION COREDNS_VERSION
#
# OUT_DIR is a version-keyed cache directory; when OUT_DIR/.complete exists the
# build is skipped, so a second bring-up costs nothing.
#
# `go install k8s.io/kubernetes/cmd/...@vX` refuses because k8s.io/kubernetes
# replaces its staging modules with local paths. A wrapper module requires
# k8s.io/kubernetes and replaces each staging module with its published v0.x
# twin; the list is read from the downloaded go.mod, never hard-coded.
set -euo pipefail

out=$1 k8s_version=$2 etcd_version=$3 coredns_version=$4
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
jobs=${OPSDRILL_BUILD_JOBS:-2}

if [[ -f "$out/.complete" ]]; then
  echo "opsdrill-lab: binaries cached in $out"
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d "${out}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf '%s opsdrill-lab: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# ---- Kubernetes -----------------------------------------------------------
staging_version="v0.${k8s_version#v1.}"
log "downloading k8s.io/kubernetes@$k8s_version"
k8s_gomod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')

mkdir -p "$work/k8s" && cd "$work/k8s"
{
  echo "module opsdrill.local/labbuild/k8s"
  echo
  echo "go 1.24"
  echo
  echo "require k8s.io/kubernetes $k8s_version"
  echo
  # "k8s.io/api => ./staging/src/k8s.io/api" becomes "k8s.io/api => k8s.io/api v0.34.N"
  sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._/-]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$k8s_gomod"
} > go.mod
replaces=$(grep -c '^replace' go.mod)
log "wrapper module replaces $replaces staging modules with $staging_version"
[[ $replaces -gt 10 ]] || { echo "opsdrill-lab: parsed only $replaces staging replaces from $k8s_gomod" >&2; exit 1; }

minor=${k8s_version#v1.}; minor=${minor%%.*}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

log "building Kubernetes $k8s_version (go build -p $jobs; a cold build takes tens of minutes)"
go build -p "$jobs" -trimpath -ldflags "$ldflags" -o "$work/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubectl
log "Kubernetes built"

# ---- etcd -------------------------------------------------------------------
mkdir -p "$work/etcd" && cd "$work/etcd"
cat > go.mod <<EOF
module opsdrill.local/labbuild/etcd

go 1.23

require go.etcd.io/etcd/server/v3 $etcd_version
EOF
cat > main.go <<'EOF'
// Command etcd is the upstream etcd server entry point, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
log "building etcd $etcd_version"
go build -p "$jobs" -trimpath -ldflags "-s -w" -o "$work/bin/etcd" .
log "etcd built"

# ---- CoreDNS ----------------------------------------------------------------
mkdir -p "$work/coredns" && cd "$work/coredns"
cat > go.mod <<EOF
module opsdrill.local/labbuild/coredns

go 1.24

require github.com/coredns/coredns $coredns_version
EOF
log "building CoreDNS $coredns_version"
go build -p "$jobs" -trimpath -ldflags "-s -w" -o "$work/bin/coredns" github.com/coredns/coredns
log "CoreDNS built"

install -m 0755 "$work"/bin/* "$out/"
"$out/kubectl" version --client
touch "$out/.complete"
log "binaries ready in $out"
