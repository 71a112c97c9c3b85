#!/usr/bin/env bash
# Builds the minimal Debian base image that the Dockerfile builds on (ARG BASE_IMAGE), because no
# container registry is reachable here: debootstrap bookworm from the Debian mirror this machine's
# apt uses, add Python 3.11 and the few runtime packages, strip documentation, `podman import`.
#
# Cached twice, keyed by a hash of this recipe (this file): the rootfs tarball under
# $CHATCLUSTER_CACHE/base-<hash>/ survives a wiped podman store, and the imported image is
# reused as is. Prints the image reference (localhost/chatcluster-base:bookworm-<hash>) and
# also tags it localhost/chatcluster-base:bookworm, the Dockerfile's default BASE_IMAGE.
# Bump BASE_REVISION to pick up new Debian point releases and security updates.
set -euo pipefail
BASE_REVISION=1
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,tini,netbase
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
self="${BASH_SOURCE[0]}"
hash="$(sha256sum "$self" | cut -c1-12)"
image="localhost/chatcluster-base:$SUITE-$hash"
dest="$CACHE/base-$hash"
tarball="$dest/rootfs.tar"

log() { echo "build-base: $*" >&2; }

alias_tag="localhost/chatcluster-base:$SUITE"
if podman image exists "$image"; then
  podman tag "$image" "$alias_tag"
  echo "$image"
  exit 0
fi

# The mirror apt uses here, unless BASE_MIRROR says otherwise: the first deb822 or one-line
# source that serves $SUITE (not -security, not -updates).
mirror_for() {
  local suite="$1" files
  files="$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true)"
  # shellcheck disable=SC2086
  awk -v suite="$suite" '
    FNR == 1 { uri = "" }
    /^[[:space:]]*#/ { next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "") { print uri; exit } }
    /^deb / { for (i = 2; i < NF; i++) if ($(i + 1) == suite && $i ~ /^https?:/) { print $i; exit } }
  ' $files | head -n1
}

if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
  mirror="${BASE_MIRROR:-$(mirror_for "$SUITE")}"
  security="${BASE_SECURITY_MIRROR:-$(mirror_for "$SUITE-security")}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${security:-http://deb.debian.org/debian-security}"
  mkdir -p "$dest"
  work="$(mktemp -d "$dest/build.XXXXXX")"
  root="$work/rootfs"
  cleanup() {
    for m in proc dev; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
    rm -rf "$work"
  }
  trap cleanup EXIT
  start=$(date +%s)
  log "debootstrap $SUITE from $mirror (revision $BASE_REVISION, recipe $hash)"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
SOURCES
  # Debian's security and point updates on top of the release that debootstrap installed.
  mount -t proc proc "$root/proc"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -y -qq upgrade && apt-get clean' >"$work/upgrade.log" 2>&1 \
    || { tail -n 30 "$work/upgrade.log" >&2; exit 1; }
  umount -l "$root/proc"
  # Nothing a container reads: docs, man pages, translations, package lists, logs.
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
  find "$root/usr/lib/python3" "$root/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
  : >"$root/etc/machine-id"
  tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$tarball"
  log "rootfs built in $(( $(date +%s) - start ))s, $(du -m "$tarball" | cut -f1) MiB"
fi

podman import --quiet \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "chatcluster base: debootstrap $SUITE minbase + $PACKAGES (recipe $hash)" \
  "$tarball" "$image" >/dev/null
podman tag "$image" "$alias_tag"
log "imported $image"
echo "$image"
