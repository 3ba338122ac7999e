/* es_bulk: reading Elasticsearch's _bulk responses into one outcome per
 * document, and the error reason of a refused request.
 *
 * The body is untrusted (a proxy, a wrong endpoint, a truncated read: the
 * exporter keeps at most 64 KiB of a response) and is read item by item, so
 * a body cut short still yields the outcomes of the items before the cut;
 * the documents after it are reported as ES_BULK_RETRY (unknown: sending
 * them again is the at-least-once choice). Items correspond to documents by
 * position. Item statuses, as Elastic's exporter reads them by default:
 * 2xx is delivered; 429 is retried; anything else is refused for good,
 * 409 included (a `create` whose document is there: in a time series data
 * stream another document with the same dimensions and time, not this
 * one, so never "delivered"); 409s are also counted apart. */
#ifndef GW_ES_BULK_H
#define GW_ES_BULK_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ES_BULK_OK = 0, ES_BULK_RETRY = 1, ES_BULK_REJECT = 2 } es_bulk_outcome;

typedef struct es_bulk_summary {
    int errors;        /* the response's "errors": 1, 0, or -1 when absent */
    size_t items;      /* items read */
    int truncated;     /* the body ended before the response did */
    size_t ok, retry, reject;
    size_t conflicts;  /* of reject: items refused with 409 (version conflict) */
    char reason[256];  /* first refused item: "<status> <error.type>: <error.reason>" */
    char retry_reason[256]; /* first retried item, the same way */
} es_bulk_summary;

/* outcomes[0..n_docs) for a 2xx response body. 0, or -1 with err when the
 * body is not a bulk response or its items cannot be matched with the
 * documents (more items than documents; a complete response with fewer;
 * malformed JSON before the end of the body). */
int es_bulk_parse(const uint8_t *body, size_t len, size_t n_docs, uint8_t *outcomes, es_bulk_summary *s,
                  char *err, size_t errlen);

/* What an item's HTTP status means. */
es_bulk_outcome es_bulk_item_outcome(long status);

/* The reason of an error response ({"error":{"type","reason"}} or
 * {"error":"text"}) as "type: reason"; "" when the body has none. */
void es_bulk_error_reason(const uint8_t *body, size_t len, char *out, size_t outlen);

#endif
