# The base image from a registry, for machines that can pull debian:bookworm-slim (a laptop with
# Docker): the same contract as scripts/image/build-base.sh, which debootstraps it where no
# registry is reachable. Build it under the name the Dockerfile and skaffold.yaml default to:
#
#   docker build -t localhost/chatcluster-base:bookworm -f scripts/image/base.Dockerfile scripts/image
ARG DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates tini netbase \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
ENV LANG=C.UTF-8
CMD ["/bin/bash"]
