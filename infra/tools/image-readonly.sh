#!/bin/sh
# Runs the built image as `docker run --read-only -v state:/var/lib/otlp-gateway
# IMAGE` would, without a container runtime: the image's root filesystem
# mounted read-only in a private mount and network namespace (unshare), a
# scratch directory as the state volume, the image's WorkingDir, and its
# ENTRYPOINT with no arguments, i.e. the embedded default config, as uid 10001.
# Then: the image's own HEALTHCHECK command (read from the image, not retyped)
# must pass in the same namespaces, an OTLP/HTTP request to the default
# listener must be accepted and land in the volume, the root must refuse a
# write, and SIGTERM must stop the gateway cleanly. Needs root (unshare).
#   infra/tools/image-readonly.sh IMAGE
set -eu
image="$1"
ctr=$(buildah from "$image")
root=$(buildah mount "$ctr")
vol=$(mktemp -d)
log=$(mktemp)
chown 10001:10001 "$vol"
ush=""
fail() { echo "image-readonly: $*" >&2; exit 1; }
cleanup() {
    rc=$?
    # unshare ignores SIGTERM while it waits: signal its one child (the
    # exec chain that becomes the gateway), then reap unshare.
    if [ -n "$ush" ]; then
        # shellcheck disable=SC2046 # one pid per word
        kill -TERM $(ps -o pid= --ppid "$ush") 2>/dev/null || true
        wait "$ush" 2>/dev/null || true
    fi
    [ "$rc" -eq 0 ] || cat "$log" >&2
    buildah umount "$ctr" >/dev/null
    buildah rm "$ctr" >/dev/null
    rm -rf "$vol" "$log"
}
trap cleanup EXIT

# The image's config as a runtime reads it: User, WorkingDir, Env's PATH,
# Entrypoint, Cmd and the HEALTHCHECK command (exec form), as shell words.
conf=$(buildah inspect --type image "$image" | python3 -c '
import json, shlex, sys
c = json.load(sys.stdin)["Docker"]["config"]
t = (c.get("Healthcheck") or {}).get("Test") or ["NONE"]
if c.get("User") != "10001:10001": sys.exit("image User is %r, not 10001:10001" % c.get("User"))
if c.get("Cmd"): sys.exit("image Cmd is %r: not the embedded default" % c["Cmd"])
if t[0] != "CMD" or not any("/readyz" in a for a in t): sys.exit("HEALTHCHECK is not a CMD on /readyz: %r" % t)
path = [e[5:] for e in c.get("Env", []) if e.startswith("PATH=")][0]
q = lambda a: shlex.quote(" ".join(shlex.quote(x) for x in a))
print("workdir=%s path=%s entry=%s health=%s" % (shlex.quote(c["WorkingDir"]), shlex.quote(path), q(c["Entrypoint"]), q(t[1:])))
') || fail "image config"
workdir="" path="" entry="" health=""
eval "$conf"

# unshare's child: loopback up, the image root read-only, the volume and the
# kernel file systems a runtime provides, then exec the entrypoint as the
# image's user; every step execs, so the child's pid ends as the gateway's.
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --net --mount --fork --kill-child=TERM sh -c '
    set -e
    ip link set lo up
    mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"
    mount --bind "$2" "$1/var/lib/otlp-gateway"
    mount -t proc proc "$1/proc"
    mount --rbind /dev "$1/dev"
    exec chroot --userspec=10001:10001 "$1" /usr/bin/env -i PATH="$3" HOME=/var/lib/otlp-gateway \
        /bin/sh -c "cd \"\$0\" && exec $4" "$5"
' sh "$root" "$vol" "$path" "$entry" "$workdir" >"$log" 2>&1 &
ush=$!
i=0
while :; do
    gw=$(ps -o pid= --ppid "$ush" | tr -d ' ')
    [ -n "$gw" ] && [ "$(readlink "/proc/$gw/exe" 2>/dev/null)" = "$root/usr/bin/otlp-gateway" ] && break
    i=$((i + 1)); [ "$i" -lt 100 ] || fail "the gateway did not start (its output follows)"
    sleep 0.1
done
in_ctr() { nsenter --target "$gw" --net --mount --root --wd "$@"; }

i=0
# shellcheck disable=SC2086 # $health is the quoted HEALTHCHECK argv
until in_ctr --setuid 10001 --setgid 10001 env -i PATH="$path" sh -c "exec $health" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 50 ] || fail "the image's HEALTHCHECK never passed"
    sleep 0.2
done
body='{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"ro","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
code=$(nsenter --target "$gw" --net curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    --data "$body" http://127.0.0.1:4318/v1/traces)
[ "$code" = 200 ] || fail "OTLP/HTTP on the default listener answered $code"
if in_ctr touch /probe 2>/dev/null; then fail "the root filesystem accepted a write"; fi
kill -TERM "$gw"
rc=0; wait "$ush" || rc=$?
ush=""
[ "$rc" -eq 0 ] || fail "the gateway exited with status $rc after SIGTERM"
grep -rqs 5b8efff798038103d269b633813fc60c "$vol" || fail "the span is not in the state volume ($(find "$vol" | head -5))"
grep -q 'level=error' "$log" && fail "the gateway logged an error"
echo "image-readonly: $image with a read-only root and one state volume: embedded default config, HEALTHCHECK passes, OTLP accepted and written under the volume, clean stop"
