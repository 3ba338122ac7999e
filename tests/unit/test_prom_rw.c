/* prom_rw (OTLP metrics -> remote-write WriteRequest): requests are built
 * as protoc-c structs (prom_rw_testlib.h), converted, and the output
 * unpacked with the generated remote_write code, so every assertion is on
 * what a receiver would decode. Names, labels, samples and metadata here;
 * native histograms and exemplars in test_prom_rw_native.c, the exporter
 * type in test_prom_rw_export.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prom_rw.h"
#include "prom_rw_names.h"
#include "prom_rw_testlib.h"

/* ---- conversion tests ---- */

static void test_gauge_and_sums(void **state)
{
    (void)state;
    size_t na;
    kv_t **pa = attrs(&na, kvs("method", "GET"), NULL);
    number_t **g = alloc(2 * sizeof(*g));
    g[0] = num_point(MS(1700000000123), 0.25, pa, na);
    g[1] = int_point(MS(1700000001000), 7);
    number_t **c = alloc(sizeof(*c));
    c[0] = int_point(MS(1700000002000), 42);
    number_t **u = alloc(sizeof(*u));
    u[0] = num_point(MS(1700000003000), -3, NULL, 0);
    metric_t **ms = alloc(3 * sizeof(*ms));
    ms[0] = gauge("temperature", "", g, 2);
    ms[1] = sum("requests", "", 1, CUMULATIVE, c, 1);
    ms[2] = sum("queue.depth", "", 0, CUMULATIVE, u, 1);
    result r = convert(one_resource(ms, 3), NULL);

    char all[512];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "temperature temperature requests_total queue_depth target_info");
    const Prometheus__TimeSeries *ts = r.wr->timeseries[0];
    assert_int_equal(ts->n_labels, 4);
    assert_string_equal(ts->labels[0]->name, "__name__");
    assert_string_equal(label(ts, "job"), "shop/cart");
    assert_string_equal(label(ts, "instance"), "i-1");
    assert_string_equal(label(ts, "method"), "GET");
    assert_null(label(ts, "host_name")); /* only in target_info unless resource_to_labels */
    assert_true(value(ts) == 0.25);
    assert_int_equal(ts->samples[0]->timestamp, 1700000000123);
    assert_true(value(r.wr->timeseries[1]) == 7);
    assert_int_equal(r.wr->timeseries[1]->samples[0]->timestamp, 1700000001000);
    assert_true(value(find(&r, "requests_total", NULL, NULL)) == 42);
    assert_true(value(find(&r, "queue_depth", NULL, NULL)) == -3);
    assert_int_equal(r.st.converted, 4);
    assert_int_equal(r.st.series, 5);
    result_free(&r);
}

static void test_histogram(void **state)
{
    (void)state;
    static const double bounds[] = {0.005, 1, 250000, 1e6};
    static const uint64_t counts[] = {1, 2, 3, 4, 5};
    static const double s = 12.5;
    size_t na;
    kv_t **pa = attrs(&na, kvs("route", "/a"), kvs("le", "bogus"), NULL);
    hist_t **pts = alloc(3 * sizeof(*pts));
    pts[0] = hist_point(MS(5000), bounds, 4, counts, 5, 15, &s);
    pts[0]->attributes = pa;
    pts[0]->n_attributes = na;
    pts[1] = hist_point(MS(6000), bounds, 4, NULL, 0, 9, NULL); /* no buckets, no sum */
    pts[2] = hist_point(MS(7000), bounds, 4, counts, 3, 15, &s); /* counts do not match bounds */
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = histogram("http.server.duration", "s", CUMULATIVE, pts, 3);
    result r = convert(one_resource(ms, 1), NULL);

    static const struct {
        const char *le;
        double v;
    } want[] = {{"0.005", 1}, {"1", 3}, {"250000", 6}, {"1000000", 10}, {"+Inf", 15}};
    for (size_t i = 0; i < 5; i++) {
        const Prometheus__TimeSeries *ts = r.wr->timeseries[i];
        assert_string_equal(label(ts, "__name__"), "http_server_duration_seconds_bucket");
        assert_string_equal(label(ts, "le"), want[i].le); /* the point's own "le" is replaced */
        assert_string_equal(label(ts, "route"), "/a");
        assert_true(value(ts) == want[i].v);
        assert_int_equal(ts->samples[0]->timestamp, 5000);
    }
    assert_true(value(find(&r, "http_server_duration_seconds_sum", NULL, NULL)) == 12.5);
    assert_true(value(find(&r, "http_server_duration_seconds_count", NULL, NULL)) == 15);
    /* second point: +Inf and _count only */
    const Prometheus__TimeSeries *inf = find_nth(&r, "http_server_duration_seconds_bucket", "le", "+Inf", 1);
    assert_non_null(inf);
    assert_true(value(inf) == 9);
    assert_int_equal(inf->samples[0]->timestamp, 6000);
    assert_null(find_nth(&r, "http_server_duration_seconds_bucket", "le", "1", 1));
    assert_null(find_nth(&r, "http_server_duration_seconds_sum", NULL, NULL, 1));
    assert_non_null(find_nth(&r, "http_server_duration_seconds_count", NULL, NULL, 1));
    assert_int_equal(r.st.converted, 2);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 1);
    result_free(&r);
}

static void test_summary(void **state)
{
    (void)state;
    summary_t *p = alloc(sizeof(*p));
    opentelemetry__proto__metrics__v1__summary_data_point__init(p);
    p->time_unix_nano = MS(9000);
    p->count = 10;
    p->sum = 55;
    p->quantile_values = alloc(2 * sizeof(*p->quantile_values));
    p->n_quantile_values = 2;
    static const double q[2][2] = {{0.5, 4}, {0.99, 9.5}};
    for (size_t i = 0; i < 2; i++) {
        p->quantile_values[i] = alloc(sizeof(*p->quantile_values[i]));
        opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(p->quantile_values[i]);
        p->quantile_values[i]->quantile = q[i][0];
        p->quantile_values[i]->value = q[i][1];
    }
    summary_t **pts = alloc(sizeof(*pts));
    pts[0] = p;
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = summary("rpc.latency", "ms", pts, 1);
    result r = convert(one_resource(ms, 1), NULL);
    assert_true(value(find(&r, "rpc_latency_milliseconds", "quantile", "0.5")) == 4);
    assert_true(value(find(&r, "rpc_latency_milliseconds", "quantile", "0.99")) == 9.5);
    assert_true(value(find(&r, "rpc_latency_milliseconds_sum", NULL, NULL)) == 55);
    assert_true(value(find(&r, "rpc_latency_milliseconds_count", NULL, NULL)) == 10);
    assert_int_equal(find(&r, "rpc_latency_milliseconds_count", NULL, NULL)->samples[0]->timestamp, 9000);
    result_free(&r);
}

/* Metric names as prometheus/otlptranslator builds them with
 * UnderscoreEscapingWithSuffixes: every case of its metric_namer_test.go
 * for that strategy without a namespace, and collector-contrib's older
 * normalize_name_test.go cases whose answer did not change. */
enum { G = PROM_RW_KIND_GAUGE, C = PROM_RW_KIND_COUNTER, U = PROM_RW_KIND_UPDOWN, H = PROM_RW_KIND_HISTOGRAM,
       S = PROM_RW_KIND_SUMMARY };
static const struct {
    const char *name, *unit;
    int kind;
    const char *want;
} NAME_CASES[] = {
    /* otlptranslator metric_namer_test.go */
    {"requests", "", C, "requests_total"},
    {"cpu_usage", "1", G, "cpu_usage_ratio"},
    {"items", "1", C, "items_total"},
    {"response_time", "ms", G, "response_time_milliseconds"},
    {"memory_usage", "By", G, "memory_usage_bytes"},
    {"requests", "1/s", G, "requests_per_second"},
    {"throughput", "By/s", G, "throughput_bytes_per_second"},
    {"custom_metric", "custom_unit", G, "custom_metric_custom_unit"},
    {"custom_metric", "{custom}", G, "custom_metric"},
    {"custom_metric", "By/{custom}", G, "custom_metric_bytes"},
    {"requests_total", "", C, "requests_total"},
    {"cpu_usage_ratio", "1", G, "cpu_usage_ratio"},
    {"response_time_seconds", "s", G, "response_time_seconds"},
    {"metric__with__multiple__underscores", "unit__multiple__underscores", G, "metric_with_multiple_underscores_unit_multiple_underscores"},
    {"custom_metric", "unit@with#special/chars", G, "custom_metric_unit_with_special_per_chars"},
    {"request_duration", "s", H, "request_duration_seconds"},
    {"request_size", "By", H, "request_size_bytes"},
    {"response_time", "ms", S, "response_time_milliseconds"},
    {"active_connections", "", U, "active_connections"},
    {"unknown_metric", "", U, "unknown_metric"},
    {"uptime", "d", G, "uptime_days"},
    {"duration", "h", G, "duration_hours"},
    {"timeout", "min", G, "timeout_minutes"},
    {"latency", "us", G, "latency_microseconds"},
    {"precision_time", "ns", G, "precision_time_nanoseconds"},
    {"cache_size", "KiBy", G, "cache_size_kibibytes"},
    {"memory", "MiBy", G, "memory_mebibytes"},
    {"storage", "GiBy", G, "storage_gibibytes"},
    {"capacity", "TiBy", G, "capacity_tibibytes"},
    {"transfer", "KBy", G, "transfer_kilobytes"},
    {"download", "MBy", G, "download_megabytes"},
    {"backup", "GBy", G, "backup_gigabytes"},
    {"archive", "TBy", G, "archive_terabytes"},
    {"distance", "m", G, "distance_meters"},
    {"voltage", "V", G, "voltage_volts"},
    {"current", "A", G, "current_amperes"},
    {"energy", "J", G, "energy_joules"},
    {"power", "W", G, "power_watts"},
    {"weight", "g", G, "weight_grams"},
    {"temperature", "Cel", G, "temperature_celsius"},
    {"frequency", "Hz", G, "frequency_hertz"},
    {"cpu_usage", "%", G, "cpu_usage_percent"},
    {"requests", "1/m", G, "requests_per_minute"},
    {"events", "1/h", G, "events_per_hour"},
    {"transactions", "1/d", G, "transactions_per_day"},
    {"reports", "1/w", G, "reports_per_week"},
    {"invoices", "1/mo", G, "invoices_per_month"},
    {"renewals", "1/y", G, "renewals_per_year"},
    {"custom", "1/custom_unit", G, "custom_per_custom_unit"},
    {"metric", "By/", G, "metric_bytes"},
    {"metric", " By / s ", G, "metric_bytes_per_second"},
    {"metric", "/", G, "metric"},
    {"http.request.duration", "ms", H, "http_request_duration_milliseconds"},
    {"http.requests", "1", C, "http_requests_total"},
    /* collector-contrib pkg/translator/prometheus normalize_name_test.go
     * (the cases otlptranslator still gives the same answer for) */
    {"system.filesystem.usage", "By", G, "system_filesystem_usage_bytes"},
    {"system.io", "By", C, "system_io_bytes_total"},
    {"network_transmitted_bytes_total", "By", C, "network_transmitted_bytes_total"},
    {"\t system.filesystem.usage       ", "  By\t", G, "system_filesystem_usage_bytes"},
    {"system.network.dropped", "{packets}", G, "system_network_dropped"},
    {"system.network.dropped", "{packets}", C, "system_network_dropped_total"},
    {"system.network.dropped", "packets", G, "system_network_dropped_packets"},
    {"system.network.packets.dropped", "packets", G, "system_network_packets_dropped"},
    {"system.network.packets", "packets", G, "system_network_packets"},
    {"system.network.dropped", "packets", C, "system_network_dropped_packets_total"},
    {"system.network.packets.dropped", "packets", C, "system_network_packets_dropped_total"},
    {"system.network.packets", "packets", C, "system_network_packets_total"},
    {"hw.gpu.memory.utilization", "1", G, "hw_gpu_memory_utilization_ratio"},
    {"hw.fan.speed_ratio", "1", G, "hw_fan_speed_ratio"},
    {"objects", "1", C, "objects_total"},
    {"hw.cpu.speed_limit", "Hz", G, "hw_cpu_speed_limit_hertz"},
    {"broken.metric.speed", "km/h", G, "broken_metric_speed_km_per_hour"},
    {"astro.light.speed_limit", "m/s", G, "astro_light_speed_limit_meters_per_second"},
    {"broken.metric.success_ratio", "%", G, "broken_metric_success_ratio_percent"},
    {"broken.metric.success_percent", "%", G, "broken_metric_success_percent"},
    {"test.metric.no_unit", "", G, "test_metric_no_unit"},
    {"test.metric.spaces", "   \t  ", G, "test_metric_spaces"},
    {"unsupported.metric.temperature", "\xc2\xb0" "F", G, "unsupported_metric_temperature_F"},
    {"unsupported.metric.redundant", "__test $/\xc2\xb0" "C", G, "unsupported_metric_redundant_test_per_C"},
    {"active_directory.ds.replication.network.io", "By", C, "active_directory_ds_replication_network_io_bytes_total"},
    {"active_directory.ds.replication.sync.object.pending", "{objects}", C,
     "active_directory_ds_replication_sync_object_pending_total"},
    {"active_directory.ds.replication.object.rate", "{objects}/s", G,
     "active_directory_ds_replication_object_rate_per_second"},
    {"active_directory.ds.name_cache.hit_rate", "%", G, "active_directory_ds_name_cache_hit_rate_percent"},
    {"active_directory.ds.ldap.bind.last_successful.time", "ms", G,
     "active_directory_ds_ldap_bind_last_successful_time_milliseconds"},
    {"apache.current_connections", "connections", G, "apache_current_connections"},
    {"apache.workers", "connections", G, "apache_workers_connections"},
    {"apache.requests", "1", C, "apache_requests_total"},
    {"bigip.virtual_server.request.count", "{requests}", C, "bigip_virtual_server_request_count_total"},
    {"system.cpu.utilization", "1", G, "system_cpu_utilization_ratio"},
    {"system.disk.operation_time", "s", C, "system_disk_operation_time_seconds_total"},
    {"system.cpu.load_average.15m", "1", G, "system_cpu_load_average_15m_ratio"},
    {"memcached.operation_hit_ratio", "%", G, "memcached_operation_hit_ratio_percent"},
    {"mongodbatlas.process.asserts", "{assertions}/s", G, "mongodbatlas_process_asserts_per_second"},
    {"mongodbatlas.process.journaling.data_files", "MiBy", G, "mongodbatlas_process_journaling_data_files_mebibytes"},
    {"mongodbatlas.process.network.io", "By/s", G, "mongodbatlas_process_network_io_bytes_per_second"},
    {"mongodbatlas.process.oplog.rate", "GiBy/h", G, "mongodbatlas_process_oplog_rate_gibibytes_per_hour"},
    {"mongodbatlas.process.db.query_targeting.scanned_per_returned", "{scanned}/{returned}", G,
     "mongodbatlas_process_db_query_targeting_scanned_per_returned"},
    {"nginx.requests", "requests", G, "nginx_requests"},
    {"nginx.connections_accepted", "connections", G, "nginx_connections_accepted"},
    {"nsxt.node.memory.usage", "KBy", G, "nsxt_node_memory_usage_kilobytes"},
    {"redis.latest_fork", "us", G, "redis_latest_fork_microseconds"},
    {"3.14 digits", "", G, "_3_14_digits"},
    {"envoy__rule_engine_zlib_buf_error", "", G, "envoy_rule_engine_zlib_buf_error"},
};

/* otlptranslator's UnitNamer answers for the same units (metadata's unit). */
static const struct {
    const char *unit, *want;
} UNIT_CASES[] = {
    {"", ""},
    {"1", ""},
    {"ms", "milliseconds"},
    {"By", "bytes"},
    {"1/s", "per_second"},
    {"By/s", "bytes_per_second"},
    {"custom_unit", "custom_unit"},
    {"{custom}", ""},
    {"By/{custom}", "bytes"},
    {"s", "seconds"},
    {"unit__multiple__underscores", "unit_multiple_underscores"},
    {"unit@with#special/chars", "unit_with_special_per_chars"},
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"%", "percent"},
    {"1/m", "per_minute"},
    {"1/h", "per_hour"},
    {"1/d", "per_day"},
    {"1/w", "per_week"},
    {"1/mo", "per_month"},
    {"1/y", "per_year"},
    {"1/custom_unit", "per_custom_unit"},
    {"By/", "bytes"},
    {" By / s ", "bytes_per_second"},
    {"/", ""},
};

static void test_metric_name_table(void **state)
{
    (void)state;
    size_t n = sizeof(NAME_CASES) / sizeof(NAME_CASES[0]), failed = 0;
    assert_true(n >= 40);
    buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_metric_name(&b, NAME_CASES[i].name, NAME_CASES[i].unit, NAME_CASES[i].kind, 1), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        if (strcmp(b.data, NAME_CASES[i].want) != 0) {
            print_error("%s [%s] kind %d: got %s, want %s\n", NAME_CASES[i].name, NAME_CASES[i].unit,
                        NAME_CASES[i].kind, b.data, NAME_CASES[i].want);
            failed++;
        }
    }
    for (size_t i = 0; i < sizeof(UNIT_CASES) / sizeof(UNIT_CASES[0]); i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_unit_name(&b, UNIT_CASES[i].unit), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        if (strcmp(b.data, UNIT_CASES[i].want) != 0) {
            print_error("unit [%s]: got %s, want %s\n", UNIT_CASES[i].unit, b.data, UNIT_CASES[i].want);
            failed++;
        }
    }
    /* names with nothing valid are refused (upstream: an error) */
    buf_clear(&b);
    assert_int_equal(prom_rw_metric_name(&b, "@#$%", "", PROM_RW_KIND_GAUGE, 1), 1);
    assert_int_equal(prom_rw_metric_name(&b, "", "{x}", PROM_RW_KIND_GAUGE, 1), 1);
    assert_int_equal(prom_rw_metric_name(&b, "@_#_$_%", "", PROM_RW_KIND_GAUGE, 0), 1);
    assert_int_equal(b.len, 0);
    /* without suffixes (UnderscoreEscapingWithoutSuffixes): underscores stay */
    static const struct {
        const char *name, *want;
    } plain[] = {{"simple_metric", "simple_metric"}, {"metric@with#special$chars", "metric_with_special_chars"},
                 {"123metric", "_123metric"}, {"metric@@##$$name", "metric_name"},
                 {"metric__with__underscores", "metric__with__underscores"}};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_metric_name(&b, plain[i].name, "s", PROM_RW_KIND_COUNTER, 0), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, plain[i].want);
    }
    buf_free(&b);
    assert_int_equal(failed, 0);
}

/* Name of the single metric's first series: the table's rules reach the
 * converted series. */
static void check_name(const char *name, const char *unit, int kind, int suffixes, const char *want)
{
    number_t **p = alloc(sizeof(*p));
    p[0] = num_point(MS(1000), 1, NULL, 0);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = kind == 0 ? gauge(name, unit, p, 1) : sum(name, unit, kind == 1, CUMULATIVE, p, 1);
    prom_rw_options opt = {.add_metric_suffixes = suffixes, .target_info = 0};
    result r = convert(one_resource(ms, 1), &opt);
    const char *got = label(r.wr->timeseries[0], "__name__");
    if (strcmp(got, want) != 0)
        fail_msg("%s [%s]: got %s, want %s", name, unit, got, want);
    result_free(&r);
}

static void test_metric_names(void **state)
{
    (void)state;
    enum { GAUGE = 0, COUNTER = 1, UPDOWN = 2 };
    check_name("http.server.duration", "s", GAUGE, 1, "http_server_duration_seconds");
    check_name("io_total", "By", COUNTER, 1, "io_bytes_total");
    check_name("total.io.total", "By", COUNTER, 1, "io_bytes_total");       /* `total` anywhere moves last */
    check_name("ratio.of.cpu", "1", GAUGE, 1, "of_cpu_ratio");              /* so does `ratio` */
    check_name("bytes.sent", "By", GAUGE, 1, "bytes_sent");                 /* a unit word anywhere: not again */
    check_name("items", "1", UPDOWN, 1, "items");
    check_name("speed", "m/min", GAUGE, 1, "speed_meters_per_min");         /* "min" is no per unit upstream */
    check_name("caf\xc3\xa9", "", GAUGE, 1, "caf");
    check_name("__a__b__", "", GAUGE, 1, "a_b");
    check_name("ns:sub.metric", "", GAUGE, 1, "ns:sub_metric");
    check_name("io", "By", COUNTER, 0, "io");
    check_name("a__b.c", "", GAUGE, 0, "a__b_c");

    /* a metric without a valid name is dropped, its points counted */
    number_t **p = alloc(2 * sizeof(*p));
    p[0] = num_point(MS(1000), 1, NULL, 0);
    p[1] = num_point(MS(2000), 1, NULL, 0);
    metric_t **ms = alloc(2 * sizeof(*ms));
    ms[0] = gauge("\xe3\x82\x88", "", p, 2);
    ms[1] = gauge("ok", "", p, 1);
    result r = convert(one_resource(ms, 2), NULL);
    char all[64];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "ok target_info");
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 2);
    result_free(&r);
}

/* Label names: otlptranslator's label_namer_test.go cases for the default
 * LabelNamer (NULL: no valid name, upstream's error). */
static void test_label_name_table(void **state)
{
    (void)state;
    static const struct {
        const char *key, *want;
    } cases[] = {{"label:with:colons", "label_with_colons"},
                 {"LabelWithCapitalLetters", "LabelWithCapitalLetters"},
                 {"label!with&special$chars)", "label_with_special_chars_"},
                 {"label_with_foreign_characters_\xe5\xad\x97\xe7\xac\xa6", "label_with_foreign_characters_"},
                 {"label.with.dots", "label_with_dots"},
                 {".foo", "_foo"},
                 {"123label", "key_123label"},
                 {"_label_starting_with_underscore", "_label_starting_with_underscore"},
                 {"__label_starting_with_2underscores", "_label_starting_with_2underscores"},
                 {"\xe3\x82\x88\xe3\x81\x86\xe3\x81\x93\xe3\x81\x9d", NULL},
                 {"label__with__double__underscores", "label_with_double_underscores"},
                 {"label.name__with&&special##chars", "label_name_with_special_chars"},
                 {"__reserved__label__name__", "__reserved_label_name__"},
                 {"trailing_underscores___", "trailing_underscores_"},
                 {"", NULL},
                 {"__", NULL}};
    buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_clear(&b);
        int rc = prom_rw_label_name(&b, cases[i].key);
        assert_int_equal(rc, cases[i].want == NULL ? 1 : 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, cases[i].want != NULL ? cases[i].want : "");
    }
    buf_free(&b);
}

static void test_labels(void **state)
{
    (void)state;
    static const uint8_t raw[] = {0xde, 0xad, 0xbe, 0xef};
    any_t *arr = any(), *map = any(), *bytes = any();
    arr->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    arr->array_value = alloc(sizeof(*arr->array_value));
    opentelemetry__proto__common__v1__array_value__init(arr->array_value);
    arr->array_value->values = alloc(4 * sizeof(any_t *));
    arr->array_value->values[0] = any_int(1);
    arr->array_value->values[1] = any_str("a\"b");
    arr->array_value->values[2] = any_bool(1);
    arr->array_value->values[3] = any_double(0.5);
    arr->array_value->n_values = 4;
    map->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    map->kvlist_value = alloc(sizeof(*map->kvlist_value));
    opentelemetry__proto__common__v1__key_value_list__init(map->kvlist_value);
    map->kvlist_value->values = alloc(sizeof(kv_t *));
    map->kvlist_value->values[0] = kv("k", any_str("v"));
    map->kvlist_value->n_values = 1;
    bytes->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    bytes->bytes_value.data = (uint8_t *)raw;
    bytes->bytes_value.len = sizeof(raw);
    size_t na;
    kv_t **pa = attrs(&na, kvs("http_method", "POST"), kvs("http.method", "GET"), kvs("2fast", "x"),
                      kvs("__reserved", "r"), kvs("a__b", "ab"), kvs("empty", ""), kv("count", any_int(-42)),
                      kv("ratio", any_double(1.5)), kv("ok", any_bool(0)), kv("list", arr), kv("map", map),
                      kv("raw", bytes), kvs("job", "point-job"), kvs("bad.utf8", "x\xff"), kvs("", "no name"),
                      kvs("__", "only underscores"), kvs("__meta__", "kept"), NULL);
    number_t **p = alloc(sizeof(*p));
    p[0] = num_point(MS(1000), 1, pa, na);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = gauge("g", "", p, 1);
    result r = convert(one_resource(ms, 1), NULL);
    const Prometheus__TimeSeries *ts = r.wr->timeseries[0];
    /* "http.method" sorts before "http_method": values in that order */
    assert_string_equal(label(ts, "http_method"), "GET;POST");
    assert_string_equal(label(ts, "key_2fast"), "x");
    assert_string_equal(label(ts, "_reserved"), "r");
    assert_string_equal(label(ts, "a_b"), "ab");
    assert_null(label(ts, "empty"));
    assert_string_equal(label(ts, "count"), "-42");
    assert_string_equal(label(ts, "ratio"), "1.5");
    assert_string_equal(label(ts, "ok"), "false");
    assert_string_equal(label(ts, "list"), "[1,\"a\\\"b\",true,0.5]");
    assert_string_equal(label(ts, "map"), "{\"k\":\"v\"}");
    assert_string_equal(label(ts, "raw"), "3q2+7w==");
    assert_string_equal(label(ts, "job"), "shop/cart"); /* the resource's job wins */
    assert_string_equal(label(ts, "bad_utf8"), "x\xef\xbf\xbd");
    assert_string_equal(label(ts, "__meta__"), "kept"); /* reserved form: kept, as upstream */
    assert_null(label(ts, "_"));
    assert_int_equal(ts->n_labels, 15); /* __name__, instance and the 13 above */
    result_free(&r);
}

static void test_resource_and_target_info(void **state)
{
    (void)state;
    number_t **p1 = alloc(3 * sizeof(*p1));
    p1[0] = num_point(MS(2000), 1, NULL, 0);
    p1[1] = num_point(MS(3000), 2, NULL, 0);
    p1[2] = num_point(MS(1000), 3, NULL, 0);
    metric_t **m1 = alloc(sizeof(*m1));
    m1[0] = gauge("g", "", p1, 3);
    size_t n1, n2, n3;
    kv_t **r1 = std_resource(&n1);
    /* service.name only, plus a non-string attribute */
    kv_t **r2 = attrs(&n2, kvs("service.name", "solo"), kv("process.pid", any_int(77)), NULL);
    number_t **p2 = alloc(sizeof(*p2));
    p2[0] = num_point(MS(1000), 5, NULL, 0);
    metric_t **m2 = alloc(sizeof(*m2));
    m2[0] = gauge("g", "", p2, 1);
    /* nothing beyond job and instance: no target_info */
    kv_t **r3 = attrs(&n3, kvs("service.name", "bare"), kvs("service.instance.id", "b-1"), NULL);
    number_t **p3 = alloc(sizeof(*p3));
    p3[0] = num_point(MS(1000), 6, NULL, 0);
    metric_t **m3 = alloc(sizeof(*m3));
    m3[0] = gauge("g", "", p3, 1);
    rm_t **rms = alloc(4 * sizeof(*rms));
    rms[0] = resource(r1, n1, m1, 1);
    rms[1] = resource(r2, n2, m2, 1);
    rms[2] = resource(r3, n3, m3, 1);
    metric_t **m4 = alloc(sizeof(*m4));
    m4[0] = too_coarse("e", 1);
    rms[3] = resource(r1, n1, m4, 1); /* no converted point: no target_info */
    req_t *req = request(rms, 4);

    result r = convert(req, NULL);
    char all[256];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g g g target_info g target_info g");
    const Prometheus__TimeSeries *ti = find(&r, "target_info", "job", "shop/cart");
    assert_int_equal(ti->n_labels, 4);
    assert_string_equal(label(ti, "host_name"), "h1");
    assert_string_equal(label(ti, "instance"), "i-1");
    assert_true(value(ti) == 1);
    assert_int_equal(ti->samples[0]->timestamp, 3000); /* the resource's latest point */
    const Prometheus__TimeSeries *solo = find(&r, "target_info", "job", "solo");
    assert_string_equal(label(solo, "process_pid"), "77");
    assert_null(label(solo, "instance"));
    assert_null(label(solo, "service_name"));
    assert_null(label(find(&r, "g", "job", "solo"), "instance"));
    assert_string_equal(label(find(&r, "g", "job", "bare"), "instance"), "b-1");
    assert_null(find_nth(&r, "target_info", "job", "bare", 0));
    result_free(&r);

    /* options: no target_info; resource attributes copied onto every series */
    static const char *const copy[] = {"host.name", "process.pid", "missing"};
    prom_rw_options opt = {.add_metric_suffixes = 1, .target_info = 0, .resource_labels = copy,
                           .n_resource_labels = 3};
    r = convert(req, &opt);
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g g g g g");
    assert_string_equal(label(r.wr->timeseries[0], "host_name"), "h1");
    assert_string_equal(label(r.wr->timeseries[3], "process_pid"), "77");
    assert_null(label(r.wr->timeseries[3], "host_name"));
    result_free(&r);
}

static void test_drops_and_staleness(void **state)
{
    (void)state;
    static const double bounds[] = {1};
    static const uint64_t counts[] = {1, 1};
    static const double s = 3;
    number_t **d = alloc(2 * sizeof(*d));
    d[0] = num_point(MS(1000), 1, NULL, 0);
    d[1] = num_point(MS(2000), 1, NULL, 0);
    hist_t **dh = alloc(sizeof(*dh));
    dh[0] = hist_point(MS(1000), bounds, 1, counts, 2, 2, &s);
    number_t **un = alloc(sizeof(*un));
    un[0] = num_point(MS(1000), 1, NULL, 0);
    number_t **bad = alloc(3 * sizeof(*bad));
    bad[0] = num_point(MS(1000), 1, NULL, 0);
    bad[0]->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET; /* no value */
    bad[1] = num_point(0, 1, NULL, 0);                                                        /* no timestamp */
    bad[2] = num_point(MS(4000), 0, NULL, 0);
    bad[2]->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET;
    bad[2]->flags = 1; /* no recorded value: stale marker */
    hist_t **sh = alloc(sizeof(*sh));
    sh[0] = hist_point(MS(5000), bounds, 1, counts, 2, 2, &s);
    sh[0]->flags = 1;
    metric_t **ms = alloc(7 * sizeof(*ms));
    ms[0] = sum("delta.sum", "", 1, DELTA, d, 2);
    ms[1] = histogram("delta.hist", "", DELTA, dh, 1);
    ms[2] = too_coarse("exp", 3);
    ms[3] = sum("unspecified", "", 1, 0, un, 1);
    ms[4] = gauge("g", "", bad, 3);
    ms[5] = histogram("stale.hist", "", CUMULATIVE, sh, 1);
    ms[6] = sum("delta.updown", "", 0, DELTA, d, 2);
    result r = convert(one_resource(ms, 7), NULL);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_DELTA], 5);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_SCALE], 3);
    assert_int_equal(r.st.dropped[PROM_RW_DROP_INVALID], 3);
    assert_int_equal(r.st.converted, 2);
    char all[256];
    names(&r, all, sizeof(all));
    assert_string_equal(all, "g stale_hist_bucket stale_hist_bucket stale_hist_sum stale_hist_count target_info");
    for (size_t i = 0; i < 5; i++)
        assert_true(bits(value(r.wr->timeseries[i])) == 0x7ff0000000000002ull);
    assert_int_equal(r.wr->timeseries[0]->samples[0]->timestamp, 4000);
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_DELTA), "delta_temporality");
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_SCALE), "exponential_scale");
    assert_string_equal(prom_rw_drop_name(PROM_RW_DROP_INVALID), "invalid");
    result_free(&r);
}

static void test_metadata(void **state)
{
    (void)state;
    number_t **p = alloc(sizeof(*p));
    p[0] = int_point(MS(1000), 1);
    metric_t **ms = alloc(3 * sizeof(*ms));
    ms[0] = sum("io", "By", 1, CUMULATIVE, p, 1);
    ms[0]->description = "Bytes moved.";
    ms[1] = too_coarse("exp", 1);
    number_t **g = alloc(sizeof(*g));
    g[0] = int_point(MS(1000), 1);
    ms[2] = gauge("bad.help", "", g, 1);
    ms[2]->description = "caf\xe9";
    rm_t **rms = alloc(2 * sizeof(*rms));
    size_t nr;
    kv_t **ra = std_resource(&nr);
    rms[0] = resource(ra, nr, ms, 3);
    rms[1] = resource(ra, nr, ms, 1); /* the same family again */
    result r = convert(request(rms, 2), NULL);
    assert_int_equal(r.wr->n_metadata, 3);
    const Prometheus__MetricMetadata *m = r.wr->metadata[0];
    assert_int_equal(m->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    assert_string_equal(m->metric_family_name, "io_bytes_total");
    assert_string_equal(m->help, "Bytes moved.");
    assert_string_equal(m->unit, "bytes");
    assert_string_equal(r.wr->metadata[1]->metric_family_name, "bad_help");
    assert_int_equal(r.wr->metadata[1]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE);
    assert_string_equal(r.wr->metadata[1]->help, "caf\xef\xbf\xbd"); /* valid UTF-8 */
    assert_string_equal(r.wr->metadata[2]->metric_family_name, "target_info");
    result_free(&r);
}

/* le and quantile values as Go's strconv.FormatFloat(v, 'f', -1, 64),
 * which upstream uses: never an exponent. */
static void test_float_format(void **state)
{
    (void)state;
    static const struct {
        double b;
        const char *want;
    } cases[] = {{0.1, "0.1"},
                 {2.5, "2.5"},
                 {100000, "100000"},
                 {1e6, "1000000"},
                 {1234567, "1234567"},
                 {0.0001, "0.0001"},
                 {0.00001, "0.00001"},
                 {1e-7, "0.0000001"},
                 {-3, "-3"},
                 {0, "0"},
                 {1.0 / 3, "0.3333333333333333"},
                 {123.456, "123.456"},
                 {1e21, "1000000000000000000000"},
                 {2.5e-3, "0.0025"},
                 {9007199254740993.0, "9007199254740992"}};
    size_t n = sizeof(cases) / sizeof(cases[0]);
    double *bounds = alloc(n * sizeof(double));
    uint64_t *counts = alloc((n + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        bounds[i] = cases[i].b;
    hist_t **pts = alloc(sizeof(*pts));
    pts[0] = hist_point(MS(1000), bounds, n, counts, n + 1, 0, NULL);
    metric_t **ms = alloc(sizeof(*ms));
    ms[0] = histogram("h", "", CUMULATIVE, pts, 1);
    result r = convert(one_resource(ms, 1), NULL);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(label(r.wr->timeseries[i], "le"), cases[i].want);
    result_free(&r);

    buf b = BUF_INIT;
    static const struct {
        double v;
        const char *le, *attr;
    } more[] = {{INFINITY, "+Inf", "+Inf"},      {-INFINITY, "-Inf", "-Inf"},   {NAN, "NaN", "NaN"},
                {-0.0, "-0", "-0"},             {1e21, "1000000000000000000000", "1e+21"},
                {1e-7, "0.0000001", "1e-7"},    {1.5e-7, "0.00000015", "1.5e-7"}, {1e6, "1000000", "1000000"},
                {0.000001, "0.000001", "0.000001"}};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        buf_clear(&b);
        assert_int_equal(prom_rw_put_float(&b, more[i].v), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, more[i].le);
        buf_clear(&b);
        assert_int_equal(prom_rw_put_float_attr(&b, more[i].v), 0);
        assert_int_equal(buf_putc(&b, '\0'), 0);
        assert_string_equal(b.data, more[i].attr);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gauge_and_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_name_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_name_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_and_target_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_and_staleness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_float_format, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
