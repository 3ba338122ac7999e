#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static int reset(void **state)
{
    (void)state;
    metrics_reset_for_tests();
    return 0;
}

static char *render(buf *b)
{
    buf_clear(b);
    assert_int_equal(metrics_render(b), 0);
    buf_putc(b, '\0');
    return b->data;
}

static void test_counter_and_labels(void **state)
{
    (void)state;
    metric_family *f = metrics_family("t_requests_total", METRIC_COUNTER, "Requests.");
    metric_series *a = metrics_series(f, "code=\"ok\"");
    metric_series *b = metrics_series(f, "code=\"bad\"");
    assert_ptr_equal(metrics_series(f, "code=\"ok\""), a); /* same labels, same series */
    metrics_add(a, 3);
    metrics_add(a, 4);
    metrics_add(b, 1);
    assert_int_equal(metrics_value(a), 7);
    buf out = BUF_INIT;
    char *text = render(&out);
    assert_non_null(strstr(text, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n"));
    assert_non_null(strstr(text, "t_requests_total{code=\"ok\"} 7\n"));
    assert_non_null(strstr(text, "t_requests_total{code=\"bad\"} 1\n"));
    buf_free(&out);
}

static void test_gauge_without_labels(void **state)
{
    (void)state;
    metric_series *g = metrics_series(metrics_family("t_depth", METRIC_GAUGE, "Depth."), "");
    metrics_set(g, 10);
    metrics_gauge_add(g, -12);
    buf out = BUF_INIT;
    assert_non_null(strstr(render(&out), "# TYPE t_depth gauge\nt_depth -2\n"));
    buf_free(&out);
}

static void test_histogram_cumulative_buckets(void **state)
{
    (void)state;
    const double bounds[] = {0.1, 1, 10};
    metric_series *h = metrics_series(metrics_histogram_family("t_seconds", "Latency.", bounds, 3), "op=\"x\"");
    metrics_observe(h, 0.05);
    metrics_observe(h, 0.1); /* le is inclusive */
    metrics_observe(h, 5);
    metrics_observe(h, 50);
    buf out = BUF_INIT;
    char *text = render(&out);
    assert_non_null(strstr(text, "t_seconds_bucket{op=\"x\",le=\"0.1\"} 2\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{op=\"x\",le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{op=\"x\",le=\"10\"} 3\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{op=\"x\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text, "t_seconds_sum{op=\"x\"} 55.149999999999999\n"));
    assert_non_null(strstr(text, "t_seconds_count{op=\"x\"} 4\n"));
    buf_free(&out);
}

static void collect(buf *out, void *data)
{
    buf_printf(out, "t_extra %d\n", *(int *)data);
}

static void test_collector_and_unused_family(void **state)
{
    (void)state;
    static int value = 42;
    metrics_family("t_never_used", METRIC_COUNTER, "No series, so not rendered.");
    metrics_register_collector(collect, &value);
    buf out = BUF_INIT;
    char *text = render(&out);
    assert_null(strstr(text, "t_never_used"));
    assert_non_null(strstr(text, "t_extra 42\n"));
    buf_free(&out);
}

static void test_null_series_is_ignored(void **state)
{
    (void)state;
    metrics_add(NULL, 1);
    metrics_set(NULL, 1);
    metrics_observe(NULL, 1);
    assert_int_equal(metrics_value(NULL), 0);
    assert_null(metrics_series(NULL, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter_and_labels, reset),
        cmocka_unit_test_setup(test_gauge_without_labels, reset),
        cmocka_unit_test_setup(test_histogram_cumulative_buckets, reset),
        cmocka_unit_test_setup(test_collector_and_unused_family, reset),
        cmocka_unit_test_setup(test_null_series_is_ignored, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    metrics_reset_for_tests();
    return rc;
}
