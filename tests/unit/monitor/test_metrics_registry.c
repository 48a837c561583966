/* SPDX-License-Identifier: MIT */
/* The metric tables and docs/metrics.md must agree (STYLE §9, like test_conf_docs.c for the
 * directive tables): the committed page is exactly what `keel metrics-doc` generates. And
 * every descriptor follows the Prometheus naming rules keel keeps: a valid, unique name
 * starting with keel_, counters ending in _total, one-sentence help, valid label names.
 * Runs from the repository root, like every unit test. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/metrics.h"
#include "monitor/metrics_registry.c"

#define DOC_PATH "docs/metrics.md"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run the tests from the repository root)", path);
    char *data = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap * 2 + 4096;
            data = realloc(data, cap + 1);
            cr_assert_not_null(data);
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    data[n] = '\0';
    *len = n;
    return data;
}

Test(metrics_registry, doc_is_generated_from_the_tables)
{
    struct metrics_out out = {0};
    metrics_registry_doc(&out);
    cr_assert(!out.failed);
    size_t len;
    char *doc = read_file(DOC_PATH, &len);
    if (len != out.len || memcmp(doc, out.data, len) != 0) {
        size_t i = 0;
        while (i < len && i < out.len && doc[i] == out.data[i]) {
            i++;
        }
        cr_assert_fail(DOC_PATH " differs from the metric tables at byte %zu: regenerate it "
                                "with `build/keel metrics-doc > " DOC_PATH "`",
                       i);
    }
    free(doc);
    metrics_out_fini(&out);
}

static bool is_name(const char *s, bool allow_colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (; *s != '\0'; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                  (*s >= '0' && *s <= '9') || *s == '_' || (allow_colon && *s == ':');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

Test(metrics_registry, descriptors_follow_the_naming_rules)
{
    size_t n_tables;
    const struct metric_table *const *ts = metrics_registry_tables(&n_tables);
    cr_assert_gt(n_tables, 0);
    const char *seen[512];
    size_t n_seen = 0;
    for (size_t t = 0; t < n_tables; t++) {
        cr_assert_not_null(ts[t]->title);
        cr_assert_not_null(ts[t]->source);
        cr_assert_gt(ts[t]->n_descs, 0, "table %s is empty", ts[t]->title);
        for (size_t i = 0; i < ts[t]->n_descs; i++) {
            const struct metric_desc *d = &ts[t]->descs[i];
            cr_assert(is_name(d->name, true) && strncmp(d->name, "keel_", 5) == 0,
                      "table %s, row %zu: bad name", ts[t]->title, i);
            cr_assert(d->type <= METRIC_HISTOGRAM, "%s: bad type", d->name);
            cr_assert_eq(d->type == METRIC_COUNTER, ends_with(d->name, "_total"),
                         "%s: counters, and only counters, end in _total", d->name);
            cr_assert(d->help != NULL && strlen(d->help) > 1 && ends_with(d->help, ".") &&
                          strchr(d->help, '\n') == NULL && strchr(d->help, '\\') == NULL &&
                          strchr(d->help, '|') == NULL,
                      "%s: help must be one line ending with a period (no \\, no |)", d->name);
            for (size_t l = 0; d->labels != NULL && d->labels[l] != NULL; l++) {
                cr_assert(is_name(d->labels[l], false) && strncmp(d->labels[l], "__", 2) != 0 &&
                              strcmp(d->labels[l], "le") != 0,
                          "%s: bad label name %s", d->name, d->labels[l]);
            }
            for (size_t k = 0; k < n_seen; k++) {
                cr_assert_str_neq(seen[k], d->name, "%s is described twice", d->name);
            }
            cr_assert_lt(n_seen, sizeof(seen) / sizeof(seen[0]));
            seen[n_seen++] = d->name;
        }
    }
}
