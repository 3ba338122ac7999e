#!/bin/sh
# Runs the built image's entrypoint on its embedded default config (buildah,
# chroot isolation, host network: works where `podman run` cannot set rlimits
# or cgroups), as its non-root user, and runs the image's HEALTHCHECK command.
#   infra/tools/image-smoke.sh IMAGE
set -eu
image="$1"
ctr=$(buildah from "$image")
pid=""
log=$(mktemp)
# The gateway is a descendant of our `buildah run` (no pid namespace with
# chroot isolation): SIGTERM exactly those processes, nothing by name, and
# let `buildah run` end on its own once the gateway has stopped. The run's
# output is shown only when something failed.
descendants() { for c in $(ps -o pid= --ppid "$1"); do descendants "$c"; echo "$c"; done; }
cleanup() {
    rc=$?
    if [ -n "$pid" ]; then
        # shellcheck disable=SC2046 # one pid per word
        kill -TERM $(descendants "$pid") 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    [ "$rc" -eq 0 ] || cat "$log" >&2
    rm -f "$log"
    buildah rm "$ctr" >/dev/null
}
trap cleanup EXIT
[ "$(buildah run --isolation chroot "$ctr" -- id -u)" = 10001 ] || { echo "image-smoke: not running as uid 10001" >&2; exit 1; }
# An admin port of our own, so that a gateway already on 8888 does not answer.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cfg="admin: 127.0.0.1:$port
listeners: [{name: default, http: 127.0.0.1:0}]
backends: {local: {type: file}}
pipelines: [{name: default, signals: [traces, metrics, logs], backends: [local]}]"
buildah run --isolation chroot --env OTLP_GATEWAY_CONFIG_YAML="$cfg" --env SECRET_FILE_demo=s3cret "$ctr" -- /usr/bin/otlp-gateway-entrypoint >"$log" 2>&1 &
pid=$!
health=$(buildah inspect --type image --format '{{.Docker.Config.Healthcheck}}' "$image")
case "$health" in *readyz*) ;; *) echo "image-smoke: no HEALTHCHECK on /readyz: $health" >&2; exit 1 ;; esac
i=0
until buildah run --isolation chroot --env ADMIN_PORT="$port" "$ctr" -- bash -c "exec 3<>/dev/tcp/127.0.0.1/\$ADMIN_PORT && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200 '" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 50 ] || { echo "image-smoke: /readyz never 200" >&2; exit 1; }
    sleep 0.2
done
[ "$(buildah run --isolation chroot "$ctr" -- cat /var/lib/otlp-gateway/secrets/demo)" = s3cret ] || { echo "image-smoke: secret file not written" >&2; exit 1; }
echo "image-smoke: $image runs as uid 10001, its HEALTHCHECK (/readyz) passes, secrets land in the state volume"
