#!/bin/sh
# Container entrypoint of otlp-gateway (infra/docker/Dockerfile).
#
# 1. Every environment variable SECRET_FILE_<name>=<value> (ECS injects them
#    from Secrets Manager through the task definition's `secrets`) is written
#    to $OTLP_GATEWAY_STATE/secrets/<name> with mode 0600 and removed from the
#    environment, so the config reads it with ${file:...} and the value is
#    never in the process environment of the gateway.
# 2. OTLP_GATEWAY_CONFIG_YAML, when set, is written to
#    $OTLP_GATEWAY_STATE/gateway.yaml and used as --config (config from SSM).
# 3. POD_IP defaults to this task's address, for `cluster.advertise`.
# Then it execs otlp-gateway with the arguments given.
set -eu

state="${OTLP_GATEWAY_STATE:-/var/lib/otlp-gateway}"
umask 077

names=$(env | sed -n 's/^SECRET_FILE_\([A-Za-z0-9_]*\)=.*/\1/p')
if [ -n "$names" ]; then
    mkdir -p "$state/secrets"
    for n in $names; do
        eval "printf '%s\n' \"\$SECRET_FILE_$n\"" >"$state/secrets/$n"
        unset "SECRET_FILE_$n"
    done
fi

if [ -n "${OTLP_GATEWAY_CONFIG_YAML:-}" ]; then
    printf '%s\n' "$OTLP_GATEWAY_CONFIG_YAML" >"$state/gateway.yaml"
    unset OTLP_GATEWAY_CONFIG_YAML
    set -- --config "$state/gateway.yaml" "$@"
fi

if [ -z "${POD_IP:-}" ]; then
    POD_IP=$(hostname -i 2>/dev/null | awk '{print $1}')
    export POD_IP
fi

exec /usr/bin/otlp-gateway "$@"
