/* SPDX-License-Identifier: MIT */
/* Unit tests of monitor/metrics.c: families and samples written from descriptors (HELP and
 * TYPE lines, label order, escaping of label values, numbers, histograms), and the
 * registry's counters rendered with every family's header exactly once. */
#include <criterion/criterion.h>

#include "monitor/metrics.c"

static const struct metric_desc test_metrics[] = {
    {"keel_test_total", METRIC_COUNTER, "Things counted.", METRIC_LABELS("backend", "server")},
    {"keel_test_level", METRIC_GAUGE, "A level.", NULL},
    {"keel_test_seconds", METRIC_HISTOGRAM, "How long.", METRIC_LABELS("backend")},
};

static void expect(struct metrics_out *out, const char *want)
{
    cr_assert(!out->failed);
    cr_assert_str_eq(out->data != NULL ? out->data : "", want);
    metrics_out_fini(out);
}

Test(metrics, family_and_samples)
{
    struct metrics_out out = {0};
    metrics_family(&out, &test_metrics[0]);
    metrics_sample_u64(&out, &test_metrics[0], (const char *const[]){"web", "a"}, UINT64_MAX);
    expect(&out, "# HELP keel_test_total Things counted.\n# TYPE keel_test_total counter\n"
                 "keel_test_total{backend=\"web\",server=\"a\"} 18446744073709551615\n");
    metrics_family(&out, &test_metrics[1]);
    metrics_sample_i64(&out, &test_metrics[1], NULL, -3);
    metrics_sample_f(&out, &test_metrics[1], NULL, 0.1);
    metrics_sample_f(&out, &test_metrics[1], NULL, 0);
    metrics_sample_f(&out, &test_metrics[1], NULL, 1.0 / 0.0);
    metrics_sample_f(&out, &test_metrics[1], NULL, 0.0 / 0.0);
    expect(&out, "# HELP keel_test_level A level.\n# TYPE keel_test_level gauge\n"
                 "keel_test_level -3\nkeel_test_level 0.1\nkeel_test_level 0\n"
                 "keel_test_level +Inf\nkeel_test_level NaN\n");
}

Test(metrics, label_values_are_escaped)
{
    struct metrics_out out = {0};
    metrics_sample_u64(&out, &test_metrics[0], (const char *const[]){"a\"b\\c\nd", "é"}, 1);
    expect(&out, "keel_test_total{backend=\"a\\\"b\\\\c\\nd\",server=\"é\"} 1\n");
}

Test(metrics, histogram)
{
    struct metrics_out out = {0};
    static const double bounds[] = {0.005, 1};
    static const uint64_t cum[] = {2, 5};
    metrics_histogram(&out, &test_metrics[2], (const char *const[]){"web"}, bounds, cum, 2, 7,
                      1.25);
    expect(&out, "keel_test_seconds_bucket{backend=\"web\",le=\"0.005\"} 2\n"
                 "keel_test_seconds_bucket{backend=\"web\",le=\"1\"} 5\n"
                 "keel_test_seconds_bucket{backend=\"web\",le=\"+Inf\"} 7\n"
                 "keel_test_seconds_sum{backend=\"web\"} 1.25\n"
                 "keel_test_seconds_count{backend=\"web\"} 7\n");
}

/* The count of lines in text that start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t k = strlen(prefix);
    for (const char *p = text; p != NULL && *p != '\0';) {
        n += strncmp(p, prefix, k) == 0 ? 1 : 0;
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return n;
}

Test(metrics, render_writes_every_family_of_the_registry_once)
{
    struct metrics_server *s = metrics_server_get("web", "a");
    cr_assert_not_null(metrics_frontend_get("www"));
    cr_assert_not_null(metrics_backend_get("web"));
    cr_assert_not_null(s);
    metrics_add(&metrics_local(s)->checks_fail, 2);
    struct metrics_out out = {0};
    metrics_render(&out, NULL, NULL);
    cr_assert(!out.failed);
    const struct metric_table *tables[] = {&metrics_frontend_table, &metrics_backend_table,
                                           &metrics_server_table};
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < tables[t]->n_descs; i++) {
            char help[128], type[128];
            const struct metric_desc *d = &tables[t]->descs[i];
            (void)snprintf(help, sizeof(help), "# HELP %s %s\n", d->name, d->help);
            (void)snprintf(type, sizeof(type), "# TYPE %s ", d->name);
            cr_assert_eq(count_lines(out.data, help), 1, "%s", help);
            cr_assert_eq(count_lines(out.data, type), 1, "%s", type);
        }
    }
    cr_assert(strstr(out.data, "keel_server_check_total{backend=\"web\",server=\"a\","
                               "result=\"fail\"} 2\n") != NULL,
              "%s", out.data);
    cr_assert(strstr(out.data, "keel_frontend_requests_total{frontend=\"www\",code=\"2xx\"} 0\n") !=
              NULL);
    cr_assert(strstr(out.data, "keel_backend_request_duration_seconds_bucket{backend=\"web\","
                               "le=\"+Inf\"} 0\n") != NULL);
    metrics_out_fini(&out);
}
