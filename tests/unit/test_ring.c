/* ring: rendezvous hashing spreads traces evenly and moves only the share
 * of the member that left or joined. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ring.h"

#define N_TRACES 30000

static void trace_id(uint8_t id[16], uint32_t n)
{
    /* Random-looking ids, like an SDK's: a fixed LCG stream. */
    static uint64_t x;
    if (n == 0)
        x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 16; i += 8) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        memcpy(id + i, &x, 8);
    }
}

static void keys_of(uint64_t *keys, const char *const *addrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        keys[i] = ring_member_key(addrs[i]);
}

static void test_even_spread(void **state)
{
    (void)state;
    static const char *const addrs[] = {"10.0.1.5:4319", "10.0.2.7:4319", "10.0.3.9:4319"};
    uint64_t keys[3];
    keys_of(keys, addrs, 3);
    size_t count[3] = {0};
    uint8_t id[16];
    for (uint32_t i = 0; i < N_TRACES; i++) {
        trace_id(id, i);
        count[ring_owner(keys, 3, id)]++;
    }
    /* 10000 expected each; +-4% is over 7 standard deviations. */
    for (int m = 0; m < 3; m++)
        assert_in_range(count[m], 9600, 10400);
}

static void test_leave_moves_only_its_share(void **state)
{
    (void)state;
    static const char *const addrs[] = {"a:1", "b:1", "c:1", "d:1"};
    uint64_t all[4], without_c[3];
    keys_of(all, addrs, 4);
    without_c[0] = all[0], without_c[1] = all[1], without_c[2] = all[3];
    static const size_t map[3] = {0, 1, 3};
    size_t moved = 0, owned_by_c = 0;
    uint8_t id[16];
    for (uint32_t i = 0; i < N_TRACES; i++) {
        trace_id(id, i);
        size_t before = ring_owner(all, 4, id), after = map[ring_owner(without_c, 3, id)];
        owned_by_c += before == 2;
        if (before != after) {
            moved++;
            assert_int_equal(before, 2); /* only c's traces move */
        }
    }
    assert_int_equal(moved, owned_by_c);
    assert_in_range(owned_by_c, N_TRACES / 4 - 600, N_TRACES / 4 + 600);
}

static void test_join_takes_only_its_share(void **state)
{
    (void)state;
    static const char *const addrs[] = {"gw1:4319", "gw2:4319", "gw3:4319"};
    uint64_t three[3], two[2];
    keys_of(three, addrs, 3);
    two[0] = three[0], two[1] = three[1];
    size_t moved = 0;
    uint8_t id[16];
    for (uint32_t i = 0; i < N_TRACES; i++) {
        trace_id(id, i);
        size_t before = ring_owner(two, 2, id), after = ring_owner(three, 3, id);
        if (before != after) {
            moved++;
            assert_int_equal(after, 2); /* a moved trace goes to the newcomer */
        }
    }
    assert_in_range(moved, N_TRACES / 3 - 600, N_TRACES / 3 + 600);
}

static void test_order_and_agreement(void **state)
{
    (void)state;
    /* The owner does not depend on the order members are listed in, and is
     * a fixed function of (addresses, trace id): these values are what every
     * build must compute (a change here is a wire change between members). */
    static const char *const ab[] = {"127.0.0.1:4319", "127.0.0.2:4319"}, *const ba[] = {"127.0.0.2:4319", "127.0.0.1:4319"};
    uint64_t k1[2], k2[2];
    keys_of(k1, ab, 2);
    keys_of(k2, ba, 2);
    uint8_t id[16];
    for (uint32_t i = 0; i < 1000; i++) {
        trace_id(id, i);
        assert_string_equal(ab[ring_owner(k1, 2, id)], ba[ring_owner(k2, 2, id)]);
    }
    assert_int_equal(ring_owner(k1, 1, id), 0);
    static const size_t expect[8] = {0, 0, 1, 0, 0, 0, 1, 1};
    for (uint8_t b = 0; b < 8; b++) {
        uint8_t fixed[16] = {0};
        fixed[15] = b;
        assert_int_equal(ring_owner(k1, 2, fixed), expect[b]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even_spread),
        cmocka_unit_test(test_leave_moves_only_its_share),
        cmocka_unit_test(test_join_takes_only_its_share),
        cmocka_unit_test(test_order_and_agreement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
