#!/usr/bin/env bash
# Builds the Kubernetes test control plane (etcd, kube-apiserver, kube-controller-manager,
# kubectl) and helm from their Go modules, pinned by the wrapper modules in scripts/k8s/.
# Binaries are cached outside the repo in $CHATCLUSTER_CACHE/<tool>-<version>/bin, keyed by the
# pinned version, so only the first run pays (~several minutes of a 2-core machine for
# kube-apiserver). tests/k8s/ reads the same go.mod files to find them.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"

# version_of MODDIR MODULE: the version a wrapper go.mod pins for MODULE.
version_of() {
  awk -v m="$2" '$1 == "require" && $2 == m { print $3 } $1 == m && $2 ~ /^v/ { print $2 }' \
    "scripts/k8s/$1/go.mod" | head -n1
}

# build NAME VERSION MODDIR PACKAGES...: one `go build` per wrapper so packages are shared.
build() {
  local name="$1" version="$2" moddir="$3"
  shift 3
  local dest="$CACHE/$name-$version/bin"
  local stamp="$dest/.complete"
  if [[ -f "$stamp" ]]; then
    echo "$name $version: cached in $dest"
    return
  fi
  local tmp
  tmp="$(mktemp -d "$CACHE/.build-$name-XXXXXX")"
  chmod 755 "$tmp"
  local start=$SECONDS
  echo "$name $version: building $* ..."
  (cd "scripts/k8s/$moddir" && go build -ldflags='-s -w' -o "$tmp/" "$@")
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp" "$dest"
  touch "$stamp"
  echo "$name $version: built in $((SECONDS - start))s into $dest"
}

mkdir -p "$CACHE"
# The wrapper module is named chatcluster.local/etcd, so its main package builds as `etcd`.
build etcd "$(version_of etcd go.etcd.io/etcd/server/v3)" etcd .
build helm "$(version_of helm helm.sh/helm/v3)" helm helm.sh/helm/v3/cmd/helm
build k8s "$(version_of kubernetes k8s.io/kubernetes)" kubernetes \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl
