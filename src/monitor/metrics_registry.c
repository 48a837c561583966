/* SPDX-License-Identifier: MIT */
/* The registry of metric tables and the generator of docs/metrics.md. Adding a family means
 * a row in its subsystem's table; adding a table means one line here. */
#include "monitor/metrics_registry.h"

#include "app/app_supervisor.h"
#include "cli/cli.h"
#include "core/role.h"
#include "db/db_agent.h"
#include "db/db_retry.h"
#include "lb/lb_role.h"
#include "monitor/metrics.h"
#include "tls/cert_mgr.h"
#include "vrrp/vrrp.h"

static const struct metric_table *const tables[] = {
    &metrics_frontend_table, /* monitor/metrics.c: the registry's counters */
    &metrics_backend_table,  &metrics_server_table,
    &metrics_fsm_table,      &cli_run_metric_table, /* cli/cli_run.c: the node */
    &role_metric_table,                             /* core/role.c */
    &lb_role_metric_table,  /* lb/lb_role.c: the load balancer's published state */
    &cert_mgr_metric_table, /* tls/cert_mgr.c: managed certificates (the lb runs them) */
    &app_metric_table,      /* app/app_supervisor.c */
    &vrrp_metric_table,     /* vrrp/vrrp.c */
    &db_agent_metric_table, /* db/db_agent.c */
    &db_retry_metric_table, /* db/db_retry.c */
};

const struct metric_table *const *metrics_registry_tables(size_t *n)
{
    *n = sizeof(tables) / sizeof(tables[0]);
    return tables;
}

static const char *const type_names[] = {
    [METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge", [METRIC_HISTOGRAM] = "histogram"};

void metrics_registry_doc(struct metrics_out *out)
{
    metrics_out_printf(
        out,
        "# Metrics reference\n\n"
        "<!-- Generated from the metric tables by `keel metrics-doc > docs/metrics.md`; do not\n"
        "     edit by hand. tests/unit/monitor/test_metrics_registry.c fails when it differs. "
        "-->\n\n"
        "Every node's admin listener (`admin` directive) serves these families at `/metrics`\n"
        "in the Prometheus text format (version 0.0.4); `/status` has the same state as JSON.\n"
        "A family appears when its subsystem runs on the node: the app, VRRP and database\n"
        "families only on nodes with those roles. Counters start at 0 when the process starts\n"
        "and survive reloads. A histogram has `_bucket` series with an `le` label (the upper\n"
        "bound, in seconds, and `+Inf`), `_sum` and `_count`. Request and response counters\n"
        "have a `code` label: the status class, `1xx` to `5xx`, or `other` when no response\n"
        "was sent.\n");
    size_t n;
    const struct metric_table *const *ts = metrics_registry_tables(&n);
    for (size_t t = 0; t < n; t++) {
        metrics_out_printf(out,
                           "\n## %s\n\nFrom `%s`.\n\n| name | type | labels | help |\n"
                           "|---|---|---|---|\n",
                           ts[t]->title, ts[t]->source);
        for (size_t i = 0; i < ts[t]->n_descs; i++) {
            const struct metric_desc *d = &ts[t]->descs[i];
            metrics_out_printf(out, "| `%s` | %s | ", d->name, type_names[d->type]);
            for (size_t l = 0; d->labels != NULL && d->labels[l] != NULL; l++) {
                metrics_out_printf(out, "%s`%s`", l == 0 ? "" : ", ", d->labels[l]);
            }
            metrics_out_printf(out, " | %s |\n", d->help);
        }
    }
}
