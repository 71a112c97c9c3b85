#!/usr/bin/env bash
# Container image tooling for tests/image and the kind + skaffold dev loop:
#  1. podman configuration that works in this sandbox (runc, cgroupfs, file events, and no
#     default ulimits: podman otherwise raises RLIMIT_NOFILE past the hard limit, which needs
#     CAP_SYS_RESOURCE that the machine does not grant, and every container fails to start);
#  2. the debootstrapped Debian base image, imported into podman and cached by recipe hash;
#  3. skaffold built from its Go module at a pinned version, cached outside the repo.
# podman, runc and debootstrap come from 10-apt.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CHATCLUSTER_CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"

for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "50-image: $tool is missing (10-apt.sh installs it)" >&2; exit 1; }
done

conf=/etc/containers/containers.conf
marker="# Managed by chatcluster scripts/setup.d/50-image.sh"
if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
  cp "$conf" "$conf.before-chatcluster"
  echo "50-image: saved the existing $conf as $conf.before-chatcluster"
fi
mkdir -p /etc/containers
cat >"$conf.tmp" <<CONF
$marker
[containers]
# Keep the ulimits the engine inherits; see the header of 50-image.sh.
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
mv "$conf.tmp" "$conf"

bash scripts/image/build-base.sh
bash scripts/image/build-skaffold.sh
