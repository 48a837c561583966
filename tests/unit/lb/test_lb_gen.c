/* SPDX-License-Identifier: MIT */
/* Unit tests for src/lb/lb_gen.c: snapshots (normal and backup sets), picking with an
 * excluded server, maxconn, and state inherited across generations. */
#include <criterion/criterion.h>

#include "lb/lb_gen.c"

static struct lb_gen *make_gen(const char *text, const struct lb_gen *prev)
{
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    int rc = conf_load_string("t.conf", text, strlen(text), &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text != NULL ? errs.text : "");
    conf_errors_fini(&errs);
    struct errbuf eb;
    struct gen *core = gen_new(conf);
    cr_assert_not_null(core);
    struct lb_gen *gen = lb_gen_new(core, prev, 1, &eb);
    cr_assert_not_null(gen, "%s", eb.msg);
    return gen;
}

/* The lb part, then the generation it belongs to (and its conf). */
static void free_gen(struct lb_gen *gen)
{
    struct gen *core = gen->gen;
    lb_gen_free(gen);
    gen_free(core);
}

static const char *conf_text =
    "frontend f { bind 127.0.0.1:1; backend b; }\n"
    "backend b { balance roundrobin;\n"
    "  server a 127.0.0.1:2; server c 127.0.0.1:3 maxconn 1;\n"
    "  server spare 127.0.0.1:4 backup; server off 127.0.0.1:5 disabled; }\n";

static struct lb_server *pick(struct lb_backend *be, struct lb_server *exclude, int *rc)
{
    uint64_t rng = 42;
    struct lb_pick_ctx ctx = {.client_hash = 7, .rng = &rng};
    struct lb_server *s = NULL;
    *rc = lb_backend_pick(be, &ctx, exclude, &s);
    return s;
}

Test(lb_gen, snapshot_has_normal_up_servers_only)
{
    struct lb_gen *gen = make_gen(conf_text, NULL);
    struct lb_backend *be = &gen->backends[0];
    struct lb_snap *snap = atomic_load(&be->snap);
    cr_assert_not_null(snap);
    cr_assert_eq(snap->n, 2);
    cr_assert(!snap->is_backup_set);
    cr_assert(!atomic_load(&be->servers[3].is_up), "disabled server starts down");
    free_gen(gen);
    qsbr_drain_all();
}

Test(lb_gen, backups_only_when_every_normal_server_is_down)
{
    struct lb_gen *gen = make_gen(conf_text, NULL);
    struct lb_backend *be = &gen->backends[0];
    atomic_store(&be->servers[0].is_up, false);
    lb_backend_publish(be);
    cr_assert(!atomic_load(&be->snap)->is_backup_set);
    atomic_store(&be->servers[1].is_up, false);
    lb_backend_publish(be);
    struct lb_snap *snap = atomic_load(&be->snap);
    cr_assert(snap->is_backup_set);
    int rc;
    struct lb_server *s = pick(be, NULL, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(s->conf->name, "spare");
    atomic_store(&be->servers[2].is_up, false);
    lb_backend_publish(be);
    cr_assert_null(atomic_load(&be->snap));
    pick(be, NULL, &rc);
    cr_assert_eq(rc, -KEEL_ENOSERVER);
    free_gen(gen);
    qsbr_drain_all();
}

Test(lb_gen, pick_avoids_the_excluded_server)
{
    struct lb_gen *gen = make_gen(conf_text, NULL);
    struct lb_backend *be = &gen->backends[0];
    struct lb_server *a = &be->servers[0];
    for (int i = 0; i < 10; i++) {
        int rc;
        struct lb_server *s = pick(be, a, &rc);
        cr_assert_eq(rc, 0);
        cr_assert_neq(s, a);
        lb_server_release(s);
    }
    free_gen(gen);
    qsbr_drain_all();
}

Test(lb_gen, maxconn_makes_pick_busy)
{
    struct lb_gen *gen = make_gen(conf_text, NULL);
    struct lb_backend *be = &gen->backends[0];
    atomic_store(&be->servers[0].is_up, false); /* only c (maxconn 1) left */
    lb_backend_publish(be);
    int rc;
    struct lb_server *s = pick(be, NULL, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(atomic_load(&s->active), 1);
    pick(be, NULL, &rc);
    cr_assert_eq(rc, -EBUSY);
    cr_assert_eq(atomic_load(&s->active), 1, "a refused pick takes no slot");
    lb_server_release(s);
    pick(be, NULL, &rc);
    cr_assert_eq(rc, 0);
    free_gen(gen);
    qsbr_drain_all();
}

Test(lb_gen, reload_inherits_server_state_by_name_and_address)
{
    struct lb_gen *g1 = make_gen(conf_text, NULL);
    atomic_store(&g1->backends[0].servers[0].is_up, false);
    const char *next = "frontend f { bind 127.0.0.1:1; backend b; }\n"
                       "backend b { server a 127.0.0.1:2; server c 127.0.0.1:9;\n"
                       "  server n 127.0.0.1:6; }\n";
    struct lb_gen *g2 = make_gen(next, g1);
    cr_assert(!atomic_load(&g2->backends[0].servers[0].is_up), "a: same name+address");
    cr_assert(atomic_load(&g2->backends[0].servers[1].is_up), "c moved: starts fresh");
    cr_assert(atomic_load(&g2->backends[0].servers[2].is_up), "new server starts up");
    cr_assert_gt(g2->id, g1->id);
    free_gen(g2);
    free_gen(g1);
    qsbr_drain_all();
}
