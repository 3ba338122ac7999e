/* iov: a body in pieces read through a cursor (libcurl's reader and
 * h2_client's DATA frames). iov_read must yield the bytes in order whatever
 * the room per call, pass over empty pieces, and leave the cursor at the
 * end once everything is out; iov_seek puts it anywhere (libcurl rewinds
 * an upload it sends again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "iov.h"

/* "abc", "", "defgh", "", "", "ij": 10 bytes, empty pieces in between and
 * at the end of runs, so every boundary case is crossed. */
static const char *const PIECES[] = {"abc", "", "defgh", "", "", "ij"};
#define N_PIECES (sizeof(PIECES) / sizeof(PIECES[0]))

static void body(struct iovec *v)
{
    for (size_t i = 0; i < N_PIECES; i++)
        v[i] = (struct iovec){(void *)PIECES[i], strlen(PIECES[i])};
}

/* Reads the body in calls of room bytes at most; the cursor ends at the
 * end, past the trailing empty pieces too. */
static void test_read_every_room(void **state)
{
    (void)state;
    struct iovec v[N_PIECES];
    body(v);
    for (size_t room = 1; room <= 12; room++) {
        iov_cursor c = {0, 0};
        char out[16] = {0};
        size_t done = 0, got;
        while ((got = iov_read(v, N_PIECES, &c, (uint8_t *)out + done, room)) > 0) {
            assert_true(got <= room);
            done += got;
        }
        assert_int_equal(done, 10);
        assert_memory_equal(out, "abcdefghij", 10);
        assert_int_equal(c.piece, N_PIECES);
    }
}

/* Many pieces, one byte or empty each. */
static void test_read_many_pieces(void **state)
{
    (void)state;
    struct iovec v[40];
    char src[40], out[48];
    for (int i = 0; i < 40; i++) {
        src[i] = (char)('A' + i);
        v[i] = (struct iovec){&src[i], i % 3 == 1 ? 0 : 1}; /* every third piece empty */
    }
    char want[40];
    size_t nwant = 0;
    for (int i = 0; i < 40; i++)
        if (v[i].iov_len > 0)
            want[nwant++] = src[i];
    for (size_t room = 1; room <= nwant + 2; room++) {
        iov_cursor c = {0, 0};
        size_t done = 0, got;
        while ((got = iov_read(v, 40, &c, (uint8_t *)out + done, room)) > 0)
            done += got;
        assert_int_equal(done, nwant);
        assert_memory_equal(out, want, nwant);
        assert_int_equal(c.piece, 40);
    }
}

static void test_seek(void **state)
{
    (void)state;
    struct iovec v[N_PIECES];
    body(v);
    iov_cursor c;
    char out[16];
    assert_int_equal(iov_seek(v, N_PIECES, &c, 5), 0);
    assert_int_equal(iov_read(v, N_PIECES, &c, (uint8_t *)out, sizeof(out)), 5);
    assert_memory_equal(out, "fghij", 5);
    assert_int_equal(iov_seek(v, N_PIECES, &c, 10), 0);
    assert_int_equal(iov_read(v, N_PIECES, &c, (uint8_t *)out, sizeof(out)), 0);
    assert_int_equal(iov_seek(v, N_PIECES, &c, 11), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_every_room),
        cmocka_unit_test(test_read_many_pieces),
        cmocka_unit_test(test_seek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
