/* aws_sigv4: AWS Signature Version 4 request signing (header form) for the
 * AWS backends (X-Ray, CloudWatch Logs, Amazon Managed Prometheus).
 *
 * Canonicalization follows AWS's rules for non-S3 services: the path is
 * normalized ('//' collapsed, '.' and '..' resolved) and every byte outside
 * the RFC 3986 unreserved set (ALPHA DIGIT - . _ ~) is percent-encoded,
 * '%' included, so an already-encoded path is encoded a second time as AWS
 * expects. The query is percent-decoded, re-encoded and sorted by key then
 * value. Header names are lowercased, values trimmed with inner runs of
 * whitespace collapsed, duplicates joined with ','. Hop-by-hop and
 * proxy-controlled headers (Authorization, User-Agent, Connection, Expect,
 * Transfer-Encoding, Proxy-*, Sec-*, ...) and Date are never signed; a
 * caller's X-Amz-Date (and X-Amz-Security-Token / X-Amz-Content-Sha256 when
 * this signer adds them) is replaced by the signer's own. The
 * payload hash is the SHA-256 of the bytes actually sent. */
#ifndef GW_AWS_SIGV4_H
#define GW_AWS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

typedef struct aws_credentials {
    const char *access_key_id, *secret_access_key, *session_token /* NULL if none */;
} aws_credentials;

typedef struct aws_sigv4_request {
    const char *method;
    const char *path;                /* raw, already URI-encoded as it will be sent */
    const char *query;               /* raw, without '?', may be NULL */
    const char *const *headers;      /* "Name: value" lines, NULL-terminated; must include Host */
    const uint8_t *body;
    size_t body_len;
} aws_sigv4_request;

/* Signs at `amz_date` ("YYYYMMDDTHHMMSSZ"). Appends to out_headers, one
 * "Name: value\n" line each: X-Amz-Date, X-Amz-Content-Sha256 (hex SHA-256
 * of the body, when add_content_sha256), X-Amz-Security-Token (when
 * c->session_token is set; it is signed), then Authorization. The headers
 * added are part of the signature, so the caller must send all of them.
 * When canonical / string_to_sign are non-NULL the canonical request and
 * string-to-sign are appended to them (for tests and debugging).
 * Returns 0, or -1 on invalid input or out-of-memory. */
int aws_sigv4_sign(const aws_sigv4_request *r, const aws_credentials *c, const char *region,
                   const char *service, const char *amz_date, int add_content_sha256,
                   buf *out_headers, buf *canonical /* NULL ok */, buf *string_to_sign /* NULL ok */);

/* t as X-Amz-Date wants it, "YYYYMMDDTHHMMSSZ" (UTC). */
void aws_sigv4_amz_date(time_t t, char out[17]);

/* Splits an absolute URL (scheme://authority/path?query#frag) into the
 * Host header value curl sends (the authority as written, minus the
 * scheme's default port), the path (pointer into url, *pathlen bytes, "/"
 * when empty) and the query (pointer after '?', NULL when none; it runs
 * to '#' or the end). -1 on a URL without "://", an empty or overlong
 * authority, or userinfo. */
int aws_sigv4_url_parts(const char *url, char *host, size_t hostcap, const char **path, size_t *pathlen,
                        const char **query);

#endif
