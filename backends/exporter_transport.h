/* exporter_transport: one request on the wire and what its answer says.
 * HTTP goes over the consumer's own libcurl handle (kept, so its connection
 * is reused); gRPC over the backend's shared HTTP/2 client (h2_client.h),
 * made at the first call. The reply's status, content type, body (up to
 * 64 KiB: only status messages and partial success are read from it),
 * grpc-status and grpc-message, and a retry delay from Retry-After or a
 * google.rpc.RetryInfo in grpc-status-details-bin, are collected into the
 * consumer's exporter_reply and handed over as an export_response.
 *
 * For exporter.c only (the state is exporter_internal.h's). */
#ifndef GW_EXPORTER_TRANSPORT_H
#define GW_EXPORTER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <curl/curl.h>

#include "exporter_internal.h"

/* The options every POST of ours sets on a consumer's curl handle. */
void exporter_easy_defaults(CURL *c, long timeout_ms, char *errbuf, exporter_reply *reply);
/* One attempt of request h by consumer c, its body (already compressed)
 * the n pieces of `body` one after another, sent without joining them;
 * *r points into c's reply until the next attempt. 0 with the outcome in
 * *r (http_status 0: transport error), -1 when shutdown interrupted it. */
int exporter_perform(exporter_consumer *c, const export_http *h, const struct iovec *body, size_t n,
                     export_response *r);

#endif
