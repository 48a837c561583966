/* SPDX-License-Identifier: MIT */
/* The registry of metric tables: one explicit list of every subsystem's struct metric_table
 * (no constructor magic, like core/conf_registry.c for directives), and the metrics
 * reference (docs/metrics.md) generated from it. */
#ifndef KEEL_MONITOR_METRICS_REGISTRY_H
#define KEEL_MONITOR_METRICS_REGISTRY_H

#include <stddef.h>

#include "monitor/metrics-t.h"

struct metrics_out;

/* Every table, in the order /metrics writes their families; *n gets the count. The array
 * and the tables are static and immutable. */
const struct metric_table *const *metrics_registry_tables(size_t *n);

/* The metrics reference in Markdown, as docs/metrics.md holds it: one section per table,
 * one row per family (name, type, labels, help). Appended to out; OOM marks out failed. */
void metrics_registry_doc(struct metrics_out *out);

#endif
