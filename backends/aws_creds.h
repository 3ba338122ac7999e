/* aws_creds: where the AWS backends get their credentials, refreshed before
 * they expire. Sources, as `credentials.source` in a backend's config:
 *   static        access_key_id / secret_access_key [/ session_token] from
 *                 the config (typically via ${file:...} or ${VAR})
 *   env           AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   profile       a profile of the shared config and credentials files
 *                 (aws_ini.h): `profile` key, else AWS_PROFILE, else
 *                 "default". It resolves to role_arn (AssumeRole on top of
 *                 its source_profile or credential_source, or web identity
 *                 with web_identity_token_file), else credential_process
 *                 (aws_process.h, JSON Version 1), else static keys
 *   web_identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *                 [+ AWS_ROLE_SESSION_NAME] exchanged at STS
 *                 (AssumeRoleWithWebIdentity; the token file is re-read on
 *                 every refresh because Kubernetes rotates it)
 *   ecs           AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2)
 *                 or _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]
 *   imds          EC2 instance metadata, IMDSv2 (session token first)
 *   auto          (default) the first of static (when keys are configured),
 *                 env, profile (when named, or when the default profile
 *                 holds credentials), web_identity, ecs, imds whose inputs
 *                 are present; imds last, unless AWS_EC2_METADATA_DISABLED=true
 * `assume_role: {role_arn, external_id, role_session_name, duration}` on
 * top of any source: STS AssumeRole, SigV4-signed with the source's
 * credentials, for writing into another account.
 * Endpoint overrides (config keys, else the SDKs' environment variables):
 * sts_endpoint (AWS_ENDPOINT_URL_STS), imds_endpoint
 * (AWS_EC2_METADATA_SERVICE_ENDPOINT), ecs_endpoint (replaces
 * http://169.254.170.2 for a relative URI).
 *
 * Temporary credentials are refreshed when less than 5 minutes remain; if a
 * refresh fails while the old ones are still valid they stay in use (and the
 * refresh is tried again at most every 10 s); once expired, aws_creds_get
 * fails and the caller retries its request later. An assumed role's base
 * credentials are refreshed the same way, by their own provider.
 *
 * Not thread-safe: each backend owns one provider and uses it from its
 * exporter thread only. Secrets never appear in errors or logs. */
#ifndef GW_AWS_CREDS_H
#define GW_AWS_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws_sigv4.h"
#include "config_node.h"

typedef struct aws_creds aws_creds;

/* Reads the optional `credentials:` map of `backend_node` (keys: source,
 * access_key_id, secret_access_key, session_token, profile, role_arn,
 * role_session_name, web_identity_token_file, sts_endpoint, imds_endpoint,
 * ecs_endpoint, timeout, assume_role) and the environment; an explicit
 * source (profile included) reads its inputs now. `region` selects the
 * regional STS endpoint and signs STS calls. Fetches nothing from the
 * network yet. NULL with a located error. */
aws_creds *aws_creds_from_config(const config_node *backend_node, const char *region, char *err, size_t errlen);

/* Credentials valid now (fetching or refreshing them, blocking for at most
 * the configured timeout per call). The strings stay valid until the next
 * call or aws_creds_free. 0, or -1 with err. */
int aws_creds_get(aws_creds *p, aws_credentials *out, char *err, size_t errlen);

/* Which source is in use ("static", "env", "process", "assume_role", ...), for logs. */
const char *aws_creds_source(const aws_creds *p);

void aws_creds_free(aws_creds *p);

/* ---- parsers, exposed for unit tests and the fuzzer ---- */

typedef struct aws_creds_value {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096];  /* "" when none */
    time_t expiration;         /* 0: does not expire */
} aws_creds_value;

/* The JSON the ECS endpoint and IMDS return ({"AccessKeyId", "SecretAccessKey",
 * "Token", "Expiration": ISO-8601}). 0 or -1 with err. */
int aws_creds_parse_json(const char *body, size_t len, aws_creds_value *out, char *err, size_t errlen);
/* credential_process's output: {"Version": 1, "AccessKeyId",
 * "SecretAccessKey", "SessionToken"?, "Expiration"?}. 0 or -1 with err. */
int aws_creds_parse_process(const char *body, size_t len, aws_creds_value *out, char *err, size_t errlen);
/* STS AssumeRole's or AssumeRoleWithWebIdentity's XML reply (Credentials/AccessKeyId, ...);
 * an <Error> reply fails with its Code and Message. 0 or -1 with err. */
int aws_creds_parse_sts(const char *body, size_t len, aws_creds_value *out, char *err, size_t errlen);
/* "2024-01-02T03:04:05Z" (fractional seconds and offsets accepted) -> time_t, -1 if invalid. */
time_t aws_creds_parse_time(const char *s);

#endif
