# Redis, PostgreSQL 15 and FerretDB (the MongoDB-protocol server) in one small image on the
# project's debootstrapped base, for the backing-service pods of the real-node tests
# (tests/realnode). Production points a ChatCluster at managed or operator-run Redis,
# PostgreSQL and MongoDB instead; this image exists because no registry is reachable here.
#
#   podman build --build-arg BASE_IMAGE=localhost/chatcluster-base:bookworm \
#     -f scripts/image/services.Dockerfile -t chatcluster-services CONTEXT
#
# CONTEXT holds only the FerretDB binary that scripts/setup.d/30-ferretdb.sh built.
ARG BASE_IMAGE=localhost/chatcluster-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      redis-server postgresql-15 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY ferretdb /usr/local/bin/ferretdb
