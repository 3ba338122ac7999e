/* libFuzzer: an Elasticsearch _bulk response body (es_bulk.h). The first
 * byte is the number of documents sent (mod 64), the rest the body. Besides
 * not crashing, es_bulk_parse must give every document one outcome, count
 * them consistently, report unread documents as retried, and read a prefix
 * of a body the same way as far as the prefix goes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es_bulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(size_t n, const uint8_t *out, const es_bulk_summary *s)
{
    size_t ok = 0, retry = 0, reject = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i] > ES_BULK_REJECT)
            abort();
        ok += out[i] == ES_BULK_OK;
        retry += out[i] == ES_BULK_RETRY;
        reject += out[i] == ES_BULK_REJECT;
        if (s->errors == 0 && out[i] != ES_BULK_OK)
            abort();
        if (s->errors != 0 && i >= s->items && out[i] != ES_BULK_RETRY)
            abort();
    }
    if (ok != s->ok || retry != s->retry || reject != s->reject || s->items > n || s->truncated > 1 ||
        memchr(s->reason, '\0', sizeof(s->reason)) == NULL ||
        memchr(s->retry_reason, '\0', sizeof(s->retry_reason)) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = data[0] % 64;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    uint8_t out[64], part[64];
    es_bulk_summary s, ps;
    char err[160], reason[200];
    if (es_bulk_parse(body, len, n, out, &s, err, sizeof(err)) == 0) {
        check(n, out, &s);
        /* a cut body reads the same items as far as it goes */
        if (s.errors == 1 && es_bulk_parse(body, len / 2, n, part, &ps, err, sizeof(err)) == 0) {
            check(n, part, &ps);
            for (size_t i = 0; i < ps.items && ps.errors == 1; i++)
                if (i < s.items && part[i] != out[i])
                    abort();
        }
    } else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
        abort(); /* a refusal always says why */
    }
    es_bulk_error_reason(body, len, reason, sizeof(reason));
    if (memchr(reason, '\0', sizeof(reason)) == NULL)
        abort();
    return 0;
}
