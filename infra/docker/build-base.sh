#!/bin/sh
# Make the Debian 12 base image from Debian's own packages with mmdebstrap,
# for machines that reach a Debian mirror but no image registry:
#   infra/docker/build-base.sh [IMAGE]     (default localhost/otlp-gateway-base:bookworm)
# The image holds the `minbase` variant plus ca-certificates, with the same
# apt sources as this machine, so the Dockerfile's apt-get works inside it.
set -eu
image="${1:-localhost/otlp-gateway-base:bookworm}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
mmdebstrap --variant=minbase --include=ca-certificates bookworm "$tmp/base.tar" "$sources"
podman import --change 'CMD ["/bin/bash"]' "$tmp/base.tar" "$image"
echo "base image: $image"
