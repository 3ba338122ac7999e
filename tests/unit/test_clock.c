/* clock: a condition variable from clock_cond_init times out on the
 * monotonic clock at clock_deadline, not before. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"

static void test_cond_deadline(void **state)
{
    (void)state;
    pthread_cond_t cv;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    assert_int_equal(clock_cond_init(&cv), 0);
    uint64_t start = clock_now_ms();
    struct timespec until = clock_deadline(40);
    pthread_mutex_lock(&mu);
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &until)) == 0)
        ; /* a spurious wakeup */
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    /* The deadline is on the clock the wait used: it did not end early. */
    assert_true(clock_now_ms() >= start + 40);
    pthread_cond_destroy(&cv);
}

static void test_units(void **state)
{
    (void)state;
    uint64_t ns = clock_now_ns(), ms = clock_now_ms();
    assert_true(ms >= ns / 1000000u);
    assert_true(ms - ns / 1000000u < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cond_deadline),
        cmocka_unit_test(test_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
