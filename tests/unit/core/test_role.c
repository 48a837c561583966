/* SPDX-License-Identifier: MIT */
/* Unit tests of core/role.c: the role table keeps the contract every walk relies on (each
 * role has a name and the required operations, names are unique, build comes with discard,
 * the lb is first), and the number of workers a configuration asks for. */
#include <criterion/criterion.h>

#include "core/role.c"

#include <string.h>

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
        cr_assert(r->start != NULL && r->reload != NULL && r->stop != NULL &&
                      r->drained != NULL && r->metrics != NULL && r->status != NULL &&
                      r->free != NULL,
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
