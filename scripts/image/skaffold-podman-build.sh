#!/usr/bin/env bash
# skaffold's custom builder for the `podman` profile: `podman build` with the same arguments as
# docs/deploy.md and tests/image use. Skaffold sets IMAGE (the full tag to produce),
# BUILD_CONTEXT and PUSH_IMAGE. Where the host's CA bundle is needed to reach PyPI (a TLS-
# inspecting proxy, as on the CI machines), it is mounted read-only into the build steps.
set -euo pipefail
: "${IMAGE:?skaffold sets IMAGE}"
context="${BUILD_CONTEXT:-.}"
base="${CHATCLUSTER_BASE_IMAGE:-localhost/chatcluster-base:bookworm}"
args=(build --build-arg "BASE_IMAGE=$base" --build-arg "REVISION=${CHATCLUSTER_REVISION:-dev}")
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  args+=(--volume /etc/ssl/certs:/etc/ssl/certs:ro)
fi
podman "${args[@]}" --file "$context/Dockerfile" --tag "$IMAGE" "$context"
if [ "${PUSH_IMAGE:-false}" = "true" ]; then
  podman push "$IMAGE"
fi
