/* SPDX-License-Identifier: MIT */
/* Metric descriptors: what a metric is (name, type, help, label names), apart from its
 * values. Each subsystem declares one table of them next to the code that fills them in;
 * monitor/metrics_registry.c lists every table, and the Prometheus HELP and TYPE lines and
 * docs/metrics.md both come from the tables, never from hand-written text. */
#ifndef KEEL_MONITOR_METRICS_T_H
#define KEEL_MONITOR_METRICS_T_H

#include <stddef.h>

/* The Prometheus metric types keel exposes (text format 0.0.4). */
enum metric_type {
    METRIC_COUNTER = 0, /* only goes up (until the process restarts); the name ends in _total */
    METRIC_GAUGE,       /* a value that goes up and down */
    METRIC_HISTOGRAM    /* _bucket{le=...}, _sum and _count series */
};

struct metric_desc {
    const char *name; /* keel_<subsystem>_<what>[_<unit>][_total] */
    enum metric_type type;
    const char *help;          /* one sentence, ending with a period */
    const char *const *labels; /* label names, NULL-terminated; NULL for none. A histogram's
                                * "le" is implied and not listed. */
};

/* One subsystem's descriptors, as the registry and the docs see them. */
struct metric_table {
    const char *title;  /* section title in docs/metrics.md */
    const char *source; /* the file that declares and fills the table */
    const struct metric_desc *descs;
    size_t n_descs;
};

/* Label names for a descriptor: METRIC_LABELS("backend", "server"). A file-scope compound
 * literal, so it has static storage. */
#define METRIC_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The table of a descriptor array declared in the same file. */
#define METRIC_TABLE(title, source, descs)                                                         \
    {                                                                                              \
        (title), (source), (descs), sizeof(descs) / sizeof((descs)[0])                             \
    }

#endif
