# The one chatcluster image: every subcommand (dev, api, ws, worker, migrate, operator) runs from
# it, e.g. `podman run IMAGE api`. Build (see docs/deploy.md):
#
#   podman build --build-arg BASE_IMAGE=localhost/chatcluster-base:bookworm -t chatcluster .
#
# BASE_IMAGE is any Debian bookworm root filesystem with /usr/bin/python3 (3.11), python3-venv,
# ca-certificates and tini; scripts/image/build-base.sh makes one with debootstrap. All
# stages start from the same base, so the virtualenv built in one runs unchanged in another.
ARG BASE_IMAGE=localhost/chatcluster-base:bookworm

# --- deps: every locked dependency installed into the runtime venv ---------------------------
# Its own stage and layer, rebuilt only when image-requirements.txt changes, never on a source
# edit: that keeps `skaffold dev` rebuilds to seconds. image-requirements.txt is uv.lock
# exported for the product and its `operator` extra (no test or lint tools), every package
# pinned with its hashes; pip checks each hash (--require-hashes) and resolves nothing
# (--no-deps: the export is the whole set). Binary wheels only, so no compiler is needed
# anywhere; a dependency without a wheel fails the build loudly.
FROM ${BASE_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY image-requirements.txt ./
RUN python3 -m venv /opt/chatcluster \
 && /opt/chatcluster/bin/pip install --quiet --only-binary=:all: --require-hashes --no-deps \
      -r image-requirements.txt \
 && /opt/chatcluster/bin/pip uninstall --quiet --yes pip setuptools \
 && /opt/chatcluster/bin/python -m compileall -q /opt/chatcluster/lib \
 && echo /opt/chatcluster-app > /opt/chatcluster/lib/python3.11/site-packages/chatcluster-app.pth

# --- app: the project's own wheel, installed beside the venv ---------------------------------
# /opt/chatcluster-app (on the venv's path through the .pth above) holds only chat/,
# chat_operator/, their metadata and the console script, so a source edit changes one small layer.
FROM ${BASE_IMAGE} AS app
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml ./
# The build backend pinned in pyproject.toml, installed once so the wheel builds offline.
RUN python3 -m venv /opt/build \
 && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' > build-requires.txt \
 && /opt/build/bin/pip install --quiet --only-binary=:all: -r build-requires.txt
COPY . .
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/build/bin/pip install --quiet --no-deps --no-compile --target /opt/chatcluster-app /wheels/chatcluster-*.whl \
 && sed -i '1s|^#!.*|#!/opt/chatcluster/bin/python|' /opt/chatcluster-app/bin/* \
 && python3 -m compileall -q /opt/chatcluster-app

# --- runtime: the base, the venv, a fixed non-root user; no compiler, no pip ------------------
FROM ${BASE_IMAGE} AS runtime
# UID/GID 10001 are fixed so Kubernetes can run with runAsNonRoot/runAsUser and volumes can be
# chowned to a known id; no login shell, no password.
RUN groupadd --system --gid 10001 chat \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin chat \
 && install -d -o 10001 -g 10001 -m 0750 /data

# Owned by root and read-only to the app user: the code cannot be changed at run time.
COPY --from=deps /opt/chatcluster /opt/chatcluster
COPY --from=app /opt/chatcluster-app /opt/chatcluster-app

# The root filesystem can be mounted read-only: bytecode is precompiled above, nothing writes
# .pyc files, and the only writable paths a process needs are /data (embedded-mode storage) and
# /tmp; mount a volume or tmpfs on each (podman --read-only adds the /tmp tmpfs by itself).
# In a container the servers listen on every interface (the CLI's default is 127.0.0.1), and
# `dev` keeps its SQLite files in /data.
ENV PATH=/opt/chatcluster-app/bin:/opt/chatcluster/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CHAT_HOST=0.0.0.0 \
    CHAT_DATA_DIR=/data \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    TMPDIR=/tmp
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
# dev (embedded, web client) 8000, api 8080, ws 8081; 9191 is the internal Prometheus
# /metrics listener of api, ws and worker (never routed by an Ingress).
EXPOSE 8000 8080 8081 9191
# tini is PID 1: it forwards SIGTERM to the process (so WebSocket pods can drain) and reaps the
# worker's child processes.
ENTRYPOINT ["/usr/bin/tini", "--", "chatcluster"]
CMD ["dev"]

# Labels last: a new revision then rebuilds only this metadata, never the layers above.
# BASE_IMAGE is re-declared: an ARG before the first FROM is visible only to FROM lines.
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="chatcluster" \
      org.opencontainers.image.description="Self-hosted real-time chat that runs itself on Kubernetes: API, WebSocket gateway, workers, operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
