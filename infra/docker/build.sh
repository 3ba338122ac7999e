#!/bin/sh
# Build the otlp-gateway image offline: the base from Debian packages
# (build-base.sh, once), then the Dockerfile with buildah.
#   infra/docker/build.sh [TAG]            (default localhost/otlp-gateway:dev)
# BASE=<image> uses another Debian 12 base (e.g. debian:bookworm-slim).
# buildah runs with --isolation chroot, which works where the OCI runtime
# cannot set rlimits or cgroups (containers inside containers, CI sandboxes).
set -eu
cd "$(dirname "$0")/../.."
tag="${1:-localhost/otlp-gateway:dev}"
base="${BASE:-localhost/otlp-gateway-base:bookworm}"
if ! podman image exists "$base"; then
    infra/docker/build-base.sh "$base"
fi
buildah bud --isolation chroot --network host --layers --format docker \
    --ignorefile infra/docker/Dockerfile.dockerignore \
    --build-arg BASE="$base" -f infra/docker/Dockerfile -t "$tag" .
echo "image: $tag"
