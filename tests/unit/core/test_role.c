/* SPDX-License-Identifier: MIT */
/* Unit tests of core/role.c: the role table keeps the contract every walk relies on (each
 * role has a name and the required operations, names are unique, build comes with discard,
 * the lb is first), the number of workers a configuration asks for, and, on a table of
 * stand-in roles, which generation each role runs after a reload it applied or refused. */
#include <criterion/criterion.h>

#include "core/role.c"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"

Test(role, every_role_keeps_the_contract)
{
    size_t n = 0;
    const struct role_ops *const *t = role_table(&n);
    cr_assert_gt(n, 0);
    cr_assert_leq(n, ROLE_MAX);
    cr_assert_str_eq(t[0]->name, "lb", "the lb ticks first and builds first");
    for (size_t i = 0; i < n; i++) {
        const struct role_ops *r = t[i];
        cr_assert_not_null(r->name);
        cr_assert(r->start != NULL && r->reload != NULL && r->stop != NULL && r->drained != NULL &&
                      r->metrics != NULL && r->status != NULL && r->free != NULL,
                  "role %s lacks a required operation", r->name);
        cr_assert((r->build == NULL) == (r->discard == NULL), "role %s: build without discard",
                  r->name);
        for (size_t k = 0; k < i; k++) {
            cr_assert_str_neq(t[k]->name, r->name);
        }
    }
}

static uint32_t workers_of(const char *text)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    cr_assert_eq(conf_load_string("t.conf", text, strlen(text), &conf, &errs), 0);
    conf_errors_fini(&errs);
    uint32_t n = role_node_workers(conf);
    conf_free(conf);
    return n;
}

Test(role, workers_as_configured_or_one_per_core_bounded)
{
    cr_assert_eq(workers_of("global { workers 3; }\n"), 3);
    cr_assert_eq(workers_of("global { workers 1000; }\n"), ROLE_MAX_WORKERS);
    uint32_t cores = workers_of("global { workers auto; }\n");
    cr_assert(cores >= 1 && cores <= ROLE_MAX_WORKERS);
}

/* ------------------------------------------------------------------------------------------
 * Stand-in roles: "yes" applies every reload, "no" refuses every one (as the lb refuses a
 * new `workers`).
 * ------------------------------------------------------------------------------------------ */

static int t_start(struct role_node *node, struct gen *gen, void **state, struct errbuf *eb)
{
    (void)node;
    (void)gen;
    (void)eb;
    *state = NULL;
    return 0;
}

static enum role_reload t_apply(struct role_node *node, void *state, struct gen *gen)
{
    (void)node;
    (void)state;
    (void)gen;
    return ROLE_RELOAD_APPLIED;
}

static enum role_reload t_refuse(struct role_node *node, void *state, struct gen *gen)
{
    (void)node;
    (void)state;
    (void)gen;
    return ROLE_RELOAD_REFUSED;
}

static void t_status(void *state, struct json_w *w)
{
    (void)state;
    (void)w;
}

static const struct role_ops role_yes = {
    .name = "yes", .start = t_start, .reload = t_apply, .status = t_status};
static const struct role_ops role_no = {
    .name = "no", .start = t_start, .reload = t_refuse, .status = t_status};
static const struct role_ops *const test_roles[] = {&role_yes, &role_no};

static const char *status_text(const struct role_node *node, char *buf, size_t size)
{
    struct json_w w;
    json_w_init_fixed(&w, buf, size);
    json_w_begin_object(&w);
    json_w_key_uint(&w, "generation", 0); /* the node's member, as cli_run writes it */
    status_in(test_roles, 2, node, &w);
    json_w_end_object(&w);
    cr_assert_eq(json_w_finish(&w), 0);
    buf[w.len] = '\0';
    return buf;
}

/* A role that refused a reload keeps running its generation, and /status says so: its
 * "generations" member stays at the one it runs, the others' follow the node's. */
Test(role, a_role_that_refuses_keeps_its_generation)
{
    struct role_node node = {.name = "n1"};
    struct conf *c1 = calloc(1, sizeof(*c1)), *c2 = calloc(1, sizeof(*c2));
    cr_assert(c1 != NULL && c2 != NULL);
    struct gen *g1 = gen_new(c1), *g2 = gen_new(c2);
    cr_assert(g1 != NULL && g2 != NULL);
    struct errbuf eb = {{0}};
    cr_assert_eq(start_in(test_roles, 2, &node, g1, &eb), 0, "%s", eb.msg);
    cr_assert_eq(node.gen_ids[0], g1->id);
    cr_assert_eq(node.gen_ids[1], g1->id);
    cr_assert_eq(reload_in(test_roles, 2, &node, g2, &eb), 0, "%s", eb.msg);
    cr_assert_eq(node.gen_ids[0], g2->id, "applied: runs the new generation");
    cr_assert_eq(node.gen_ids[1], g1->id, "refused: still runs the old one");
    cr_assert_eq(node.reload_refused[1], 1);
    char buf[256], want[256];
    (void)snprintf(want, sizeof(want),
                   "{\"generation\":0,\"generations\":{\"yes\":%lu,\"no\":%lu}}",
                   (unsigned long)g2->id, (unsigned long)g1->id);
    cr_assert_str_eq(status_text(&node, buf, sizeof(buf)), want);
    gen_free(g1);
    gen_free(g2);
}
