# shellcheck shell=sh
# Sourced by run.sh and test.sh: installs missing Debian packages (and, for
# tests, the pinned npm packages). Fast when everything is already there.

# shellcheck disable=SC2034 # both lists are read by the scripts that source this
build_packages="meson ninja-build pkg-config gcc libc6-dev libh2o-evloop-dev libnghttp2-dev
  libprotobuf-c-dev protobuf-c-compiler libssl-dev libcurl4-openssl-dev libjansson-dev
  libyaml-dev zlib1g-dev libzstd-dev libsnappy-dev libcmocka-dev libre2-dev g++"
test_packages="clang libclang-rt-14-dev nghttp2-client nginx-light curl procps iproute2 prometheus haproxy
  shellcheck docker-compose systemd openssl podman buildah mmdebstrap"

# ensure_packages PKG... : apt-get install whatever dpkg does not have yet.
ensure_packages() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "deps: installing$missing" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -q >/dev/null
    # shellcheck disable=SC2086 # $missing is a list of package names
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# ensure_node: Node.js 18+ and npm for the end-to-end tests.
ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        ensure_packages nodejs npm
    fi
}

# build DIR [meson options...]: configure once, then ninja (no-op when clean).
build() {
    dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    fi
    # Quiet when it builds; the compiler's errors when it does not.
    if ! out=$(ninja -C "$dir" 2>&1); then
        printf '%s\n' "$out" | grep -v '^\[' | tail -60
        return 1
    fi
}
