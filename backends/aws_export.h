/* aws_export: SigV4 request signing for exporter types that talk to AWS,
 * and the OTLP-over-SigV4 types aws_xray and aws_cloudwatch_logs.
 *
 * An aws_signer reads `region` (else AWS_REGION, else AWS_DEFAULT_REGION)
 * and `credentials` (aws_creds.h) from a config map, and signs every
 * attempt's final bytes (after compression) with the service's name,
 * adding Host, X-Amz-Date, X-Amz-Content-Sha256, X-Amz-Security-Token and
 * Authorization. Used from one exporter thread only. */
#ifndef GW_AWS_EXPORT_H
#define GW_AWS_EXPORT_H

#include <stddef.h>

#include "config_node.h"
#include "exporter.h"

typedef struct aws_signer aws_signer;

/* The keys aws_signer_from_config reads (NULL-terminated). */
extern const char *const aws_signer_keys[];

/* Reads `region` and `credentials` from `node` (a backend map, or a
 * `sigv4:` map inside one). NULL with a located error. */
aws_signer *aws_signer_from_config(const config_node *node, const char *service, char *err, size_t errlen);
const char *aws_signer_region(const aws_signer *s);
/* Appends the signing headers for `req` to *extra. -1 with err when no
 * credentials are available (the exporter retries later). */
int aws_signer_sign(aws_signer *s, const export_signing *req, struct curl_slist **extra, char *err, size_t errlen);
void aws_signer_free(aws_signer *s);

#endif
