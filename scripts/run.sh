#!/bin/sh
# First command: install build dependencies, build, and run the gateway.
# With no arguments it runs the embedded default config; any arguments are
# passed to otlp-gateway (e.g. --config FILE).
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086 # the package lists are meant to split into names
ensure_packages $build_packages
build build
exec ./build/otlp-gateway "$@"
