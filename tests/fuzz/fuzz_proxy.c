/* libFuzzer: the first bytes of a connection on a proxy_protocol listener.
 * Besides not crashing, proxy_parse must keep the promises proxy_accept
 * relies on: a header never claims more bytes than it was given, an accepted
 * header is accepted identically from exactly its own bytes and refused as
 * incomplete one byte short, and "need more" is only said of bytes whose
 * prefixes were also incomplete. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proxy_header h, again;
    proxy_status st = proxy_parse(data, size, &h);
    if (st == PROXY_OK) {
        if (h.consumed == 0 || h.consumed > size || h.consumed > PROXY_MAX_HEADER)
            abort();
        if (proxy_parse(data, h.consumed, &again) != PROXY_OK || again.consumed != h.consumed ||
            again.local != h.local || memcmp(&again.src, &h.src, sizeof(h.src)) != 0)
            abort();
        if (proxy_parse(data, h.consumed - 1, &again) != PROXY_NEED_MORE)
            abort();
        if (!h.local && h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6)
            abort();
    } else if (st == PROXY_NEED_MORE) {
        if (size >= PROXY_MAX_HEADER)
            abort();
        if (size > 0 && proxy_parse(data, size - 1, &again) != PROXY_NEED_MORE)
            abort();
    } else if (st != PROXY_INVALID) {
        abort();
    }
    return 0;
}
