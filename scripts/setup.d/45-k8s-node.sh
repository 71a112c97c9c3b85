#!/usr/bin/env bash
# The parts of a real one-node Kubernetes that tests/realnode/ starts next to the control plane
# of 40-k8s.sh: kubelet, kube-scheduler and kube-proxy (same wrapper module and version as the
# apiserver), crictl, CoreDNS, the Traefik ingress controller, metrics-server, and the pod
# sandbox ("pause") image. containerd, conntrack and the CNI plugins come from Debian
# (10-apt.sh). See docs/deploy.md "A real node on this machine" and ../shared/k8s-real-node.md.
#
# Every binary is built from its Go module at a pinned version and cached outside the repo in
# $CHATCLUSTER_CACHE/<name>-<version>/, so only the first run pays (cold: ~12 min on 2 cores,
# most of it Traefik and the kubelet). tests/realnode/binaries.py reads the versions from here.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"

CRICTL_VERSION=v1.34.0
COREDNS_VERSION=v1.12.4
TRAEFIK_VERSION=v3.6.12   # v3.7.x replaces a nested module its zip lacks; it does not build here
METRICS_SERVER_VERSION=v0.9.0
PAUSE_TAG=3.10            # the tag containerd's CRI plugin asks for (sandbox_image)

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2 }' scripts/k8s/kubernetes/go.mod | head -n1)"
[[ -n "$k8s_version" ]] || { echo "45-k8s-node: k8s.io/kubernetes is not pinned" >&2; exit 1; }

# cached NAME VERSION: true when $CACHE/NAME-VERSION was completely built before.
cached() { [[ -f "$CACHE/$1-$2/.complete" ]]; }

# install_built NAME VERSION DIR: move a finished build into the cache, stamped complete.
install_built() {
  chmod 755 "$3"
  rm -rf "${CACHE:?}/$1-$2"
  mv "$3" "$CACHE/$1-$2"
  touch "$CACHE/$1-$2/.complete"
}

# build_from_module NAME MODULE VERSION PACKAGE [LDFLAGS]: `go install` refuses modules whose
# go.mod has replace directives (Traefik's does), so the module is copied out of the module
# cache and built inside with its own go.mod and go.sum, the way 30-ferretdb.sh builds FerretDB.
build_from_module() {
  local name="$1" module="$2" version="$3" package="$4" ldflags="${5:-}"
  if cached "$name" "$version"; then
    echo "$name $version: cached"
    return
  fi
  local start=$SECONDS tmp src
  tmp="$(mktemp -d "$CACHE/.build-$name-XXXXXX")"
  src="$(GOFLAGS=-mod=mod go mod download -json "$module@$version" |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$src" ]] || { echo "$name: go mod download found no module directory" >&2; exit 1; }
  cp -r "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  mkdir "$tmp/bin"
  echo "$name $version: building $package ..."
  (cd "$tmp/src" && GOWORK=off go build -ldflags="-s -w $ldflags" -o "$tmp/bin/$name" "$package")
  rm -rf "$tmp/src"
  install_built "$name" "$version" "$tmp/bin"
  echo "$name $version: built in $((SECONDS - start))s"
}

mkdir -p "$CACHE"

build_from_module crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" ./cmd/crictl
build_from_module coredns github.com/coredns/coredns "$COREDNS_VERSION" .
build_from_module metrics-server sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" ./cmd/metrics-server
build_from_module traefik github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" ./cmd/traefik

# The sandbox image: no registry is reachable, so it is a static Go program imported as an
# image and saved as a docker-archive tarball that the harness imports into containerd.
if cached pause "$PAUSE_TAG"; then
  echo "pause $PAUSE_TAG: cached"
else
  tmp="$(mktemp -d "$CACHE/.build-pause-XXXXXX")"
  (cd scripts/k8s/pause && CGO_ENABLED=0 go build -ldflags='-s -w' -o "$tmp/rootfs/pause" .)
  tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" pause
  ref="registry.k8s.io/pause:$PAUSE_TAG"
  podman import --quiet --change 'ENTRYPOINT ["/pause"]' "$tmp/rootfs.tar" "$ref" >/dev/null
  podman save --quiet --format docker-archive -o "$tmp/pause.tar" "$ref"
  rm -rf "$tmp/rootfs" "$tmp/rootfs.tar"
  install_built pause "$PAUSE_TAG" "$tmp"
  echo "pause $PAUSE_TAG: image saved"
fi

# kubelet, kube-scheduler, kube-proxy: the wrapper module of the apiserver, so one version.
if cached k8s-node "$k8s_version"; then
  echo "k8s-node $k8s_version: cached"
else
  start=$SECONDS
  tmp="$(mktemp -d "$CACHE/.build-k8s-node-XXXXXX")"
  echo "k8s-node $k8s_version: building kubelet, kube-scheduler, kube-proxy ..."
  # Without the version stamp the binaries call themselves v0.0.0-master and the kubelet
  # reports that as the node's version.
  stamp="-X k8s.io/component-base/version.gitVersion=$k8s_version"
  stamp+=" -X k8s.io/component-base/version.gitMajor=1"
  stamp+=" -X k8s.io/component-base/version.gitMinor=$(echo "$k8s_version" | cut -d. -f2)"
  (cd scripts/k8s/kubernetes && go build -ldflags="-s -w $stamp" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy)
  install_built k8s-node "$k8s_version" "$tmp"
  echo "k8s-node $k8s_version: built in $((SECONDS - start))s"
fi
