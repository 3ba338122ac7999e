#!/bin/sh
# Proves the image's runtime stage is complete: every shared library `ldd`
# resolves for BINARY must belong (dpkg -S) to a package in
# infra/docker/runtime-packages.txt or in its dependency closure.
#   infra/tools/runtime-libs.sh build/otlp-gateway
set -eu
bin="$1"
here="$(cd "$(dirname "$0")" && pwd)"
pkgs=$(grep -v '^#' "$here/../docker/runtime-packages.txt")
# The runtime list plus everything it pulls in (Depends and Pre-Depends).
# shellcheck disable=SC2086 # $pkgs is a list of package names
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $pkgs | grep -v '^ ' | sed 's/:.*//' | sort -u)
libs=$(ldd "$bin" | awk '/=> \//{print $3} /^\t\/lib/{print $1}')
[ -n "$libs" ] || { echo "runtime-libs: ldd found no libraries in $bin" >&2; exit 1; }
bad=0; n=0
for lib in $libs; do
    n=$((n + 1))
    real=$(readlink -f "$lib")
    owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || true)
    pkg=$(printf '%s\n' "$owner" | head -n1 | cut -d: -f1)
    if [ -z "$pkg" ]; then
        echo "runtime-libs: $lib belongs to no Debian package" >&2; bad=1
    elif ! printf '%s\n' "$closure" | grep -qx "$pkg"; then
        echo "runtime-libs: $lib comes from $pkg, which the runtime stage does not install" >&2; bad=1
    fi
done
[ "$bad" -eq 0 ] || exit 1
echo "runtime-libs: all $n shared libraries of $bin come from the runtime stage's packages"
