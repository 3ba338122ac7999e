#!/bin/bash
# Every check of infra/ (run by scripts/test.sh; needs build/otlp-gateway and
# the packages in scripts/deps.sh). Each step fails the run; nothing is skipped.
#   infra/check.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-build/otlp-gateway}")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
need() { for t in "$@"; do command -v "$t" >/dev/null || { echo "infra: $t is not installed" >&2; exit 1; }; done; }
need shellcheck promtool docker-compose systemd-analyze node npm openssl podman buildah mmdebstrap meson python3 unshare nsenter curl ip setpriv

echo "== infra: shellcheck"
mapfile -t scripts < <(find scripts infra -name node_modules -prune -o -name '*.sh' -print | sort)
shellcheck "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"

echo "== infra: terraform parses, references declared"
if [ ! -f infra/node_modules/.package-lock.json ] || [ infra/package-lock.json -nt infra/node_modules/.package-lock.json ]; then
    (cd infra && npm ci --no-audit --no-fund >/dev/null)
fi
node infra/tools/tf-check.mjs

echo "== infra: prometheus rules"
promtool check rules infra/prometheus/alerts.yml
(cd infra/prometheus && promtool test rules alerts.test.yml)

echo "== infra: compose"
# config validates the schema; it does not look at bind-mount sources.
(cd infra/compose && docker-compose config) | sed -n 's#^ *- \(/[^:]*\):/.*#\1#p' >"$tmp/mounts"
[ -s "$tmp/mounts" ] || { echo "compose: no bind mounts found in docker-compose config" >&2; exit 1; }
while read -r src; do
    [ -e "$src" ] || { echo "compose: bind mount source $src does not exist" >&2; exit 1; }
done <"$tmp/mounts"
echo "docker-compose config: ok, $(wc -l <"$tmp/mounts") bind mount sources exist"

echo "== infra: gateway configs"
mkdir -p "$tmp/cfg/secrets"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/cfg/secrets/tls_key" -out "$tmp/cfg/secrets/tls_crt" \
    -days 1 -subj /CN=otlp-gateway >/dev/null 2>&1
for s in honeycomb_api_key elastic_api_key; do echo placeholder >"$tmp/cfg/secrets/$s"; done
echo check-config-cluster-secret >"$tmp/cfg/secrets/cluster_secret"
"$bin" keys create --keys-file "$tmp/cfg/secrets/api_keys" --tenant shop --name check >/dev/null 2>&1
for c in infra/config/*.yaml infra/compose/gateway.yaml; do
    (cd "$tmp/cfg" && OIDC_ISSUER=https://sso.example.com/realms/telemetry AWS_REGION=eu-west-1 \
        ELASTIC_ENDPOINT=https://elastic.example.com CW_LOG_GROUP=/otlp/g CW_LOG_STREAM=gateway \
        AMP_REMOTE_WRITE_URL=https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write \
        CLUSTER_DNS=peers.otlp-gateway.internal:4319 POD_IP=10.0.0.10 \
        "$bin" --check-config "$OLDPWD/$c" 2>&1 | grep -v 'level=warn')
done

echo "== infra: meson install, systemd unit"
meson install -C build --destdir "$tmp/root" >/dev/null
unit="$tmp/root/usr/local/lib/systemd/system/otlp-gateway.service"
for f in usr/local/bin/otlp-gateway usr/local/lib/systemd/system/otlp-gateway.service usr/local/etc/otlp-gateway/gateway.yaml; do
    [ -f "$tmp/root/$f" ] || { echo "meson install: $f missing" >&2; exit 1; }
done
# The installed unit must start the installed binary on the installed config.
grep -qx 'ExecStart=/usr/local/bin/otlp-gateway --config /usr/local/etc/otlp-gateway/gateway.yaml' "$unit" \
    || { echo "meson install: the unit does not run the installed binary and config:" >&2; grep '^Exec' "$unit" >&2; exit 1; }
echo "meson install --destdir: binary, unit (naming them) and config installed"
# verify wants the ExecStart binary to exist: check a copy naming the built one.
sed "s#/usr/local/bin/otlp-gateway#$bin#g" "$unit" >"$tmp/otlp-gateway.service"
systemd-analyze verify "$tmp/otlp-gateway.service"
echo "systemd-analyze verify: ok"
# What the unit's DynamicUser meets: an unknown uid in no group, the
# configuration directory root-owned with ConfigurationDirectoryMode (systemd
# does not chown it). It must still read the installed config.
mode=$(sed -n 's/^ConfigurationDirectoryMode=//p' "$unit")
chmod 0755 "$tmp" "$tmp/root"
chmod "${mode:-0755}" "$tmp/root/usr/local/etc/otlp-gateway"
setpriv --reuid=61234 --regid=61234 --clear-groups "$bin" --check-config "$tmp/root/usr/local/etc/otlp-gateway/gateway.yaml" \
    || { echo "systemd unit: its dynamic user cannot read the installed config" >&2; exit 1; }

echo "== infra: grafana dashboard"
node infra/grafana/build-dashboard.mjs --check
node infra/tools/dashboard-check.mjs "$bin"

echo "== infra: container image"
infra/tools/runtime-libs.sh "$bin"
infra/docker/build.sh localhost/otlp-gateway:check >"$tmp/image.log" 2>&1 || { tail -40 "$tmp/image.log"; exit 1; }
infra/tools/image-smoke.sh localhost/otlp-gateway:check
infra/tools/image-readonly.sh localhost/otlp-gateway:check
echo "infra: all checks passed"
