/* libFuzzer: a disk queue segment file, read as recovery reads it. The
 * first input byte picks the segment's number (1..256), the rest is the
 * file. Besides not crashing, the reader must keep what recovery relies on:
 * a record read whole ends after it starts and within the file, its tenant
 * and payload lie inside it; a resync moves forward and lands on a record
 * that reads whole; a record of another segment (STALE) ends the walk. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queue_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int seg_fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (seg_fd < 0 && (seg_fd = memfd_create("segment", MFD_CLOEXEC)) < 0)
        abort();
    uint64_t seg = (uint64_t)data[0] + 1;
    size_t flen = size - 1;
    if (ftruncate(seg_fd, 0) != 0 || (flen > 0 && pwrite(seg_fd, data + 1, flen, 0) != (ssize_t)flen))
        abort();
    uint64_t off = 0;
    while (off < flen) {
        queue_node *n = NULL;
        queue_rec_status rs = queue_read_record(seg_fd, seg, off, flen, &n);
        if (rs == QUEUE_REC_OK) {
            if (n->end <= off || n->end > flen || n->len > flen || strlen(n->tenant) > 255 ||
                n->signal >= OTLP_SIGNAL_COUNT)
                abort();
            off = n->end;
            free(n);
            continue;
        }
        if (rs == QUEUE_REC_STALE || rs == QUEUE_REC_IOERR)
            break;
        int ioerr = 0;
        uint64_t next = queue_resync(seg_fd, seg, off, flen, &ioerr);
        if (ioerr || next <= off || next > flen)
            abort();
        if (next < flen) {
            if (queue_read_record(seg_fd, seg, next, flen, &n) != QUEUE_REC_OK)
                abort();
            free(n);
        }
        off = next;
    }
    return 0;
}
