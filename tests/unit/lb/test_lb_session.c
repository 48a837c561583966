/* SPDX-License-Identifier: MIT */
/* Unit tests for the session path, src/lb/lb_session.c (included, to reach its statics).
 * Its pure parts: what follows a pick (connect, queue, queue full, no server), the
 * transition table and its refusal of an illegal move, how each way of giving up is
 * answered. Then the path itself on a real event loop and loopback sockets: queueing at
 * maxconn until a slot is freed or timeout_queue runs out, a full queue, and a refused
 * connect retried on another server. */
#include <criterion/criterion.h>

#include "lb/lb_session.c"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define FSM_LOG_NAME "lb-session"
#include "../fsm_log.h"

#include "core/conf.h"
#include "core/err.h"
#include "core/gen.h"
#include "core/qsbr.h"

Test(lb_session, a_taken_slot_connects)
{
    cr_assert_eq(lb_session_after_pick(0, 0, 16), LB_SESSION_GO_CONNECT);
    /* others waiting do not matter once this one got a slot (a kick found room) */
    cr_assert_eq(lb_session_after_pick(0, 16, 16), LB_SESSION_GO_CONNECT);
}

Test(lb_session, every_server_at_maxconn_queues_while_there_is_room)
{
    cr_assert_eq(lb_session_after_pick(-EBUSY, 0, 16), LB_SESSION_GO_QUEUE);
    cr_assert_eq(lb_session_after_pick(-EBUSY, 15, 16), LB_SESSION_GO_QUEUE);
    cr_assert_eq(lb_session_after_pick(-EBUSY, 16, 16), LB_SESSION_GO_QUEUE_FULL);
    cr_assert_eq(lb_session_after_pick(-EBUSY, 17, 16), LB_SESSION_GO_QUEUE_FULL);
}

Test(lb_session, queue_max_0_means_no_queue)
{
    cr_assert_eq(lb_session_after_pick(-EBUSY, 0, 0), LB_SESSION_GO_QUEUE_FULL);
}

Test(lb_session, no_server_up_is_not_queued)
{
    cr_assert_eq(lb_session_after_pick(-KEEL_ENOSERVER, 0, 16), LB_SESSION_GO_NO_SERVER);
    cr_assert_eq(lb_session_after_pick(-ENOMEM, 0, 16), LB_SESSION_GO_NO_SERVER);
}

Test(lb_session, transition_table)
{
    /* the path: idle -> queued -> connecting -> connected -> idle */
    cr_assert(lb_session_transition_ok(LB_SESSION_IDLE, LB_SESSION_QUEUED));
    cr_assert(lb_session_transition_ok(LB_SESSION_QUEUED, LB_SESSION_CONNECTING));
    cr_assert(lb_session_transition_ok(LB_SESSION_CONNECTING, LB_SESSION_CONNECTED));
    cr_assert(lb_session_transition_ok(LB_SESSION_CONNECTED, LB_SESSION_IDLE));
    /* a pooled connection: connected without connecting, from idle or the queue */
    cr_assert(lb_session_transition_ok(LB_SESSION_IDLE, LB_SESSION_CONNECTED));
    cr_assert(lb_session_transition_ok(LB_SESSION_QUEUED, LB_SESSION_CONNECTED));
    /* a stale pooled connection: connect again to the same server */
    cr_assert(lb_session_transition_ok(LB_SESSION_CONNECTED, LB_SESSION_CONNECTING));
    /* every state may give up */
    for (int s = 0; s < LB_SESSION_STATE_COUNT; s++) {
        cr_assert_eq(lb_session_transition_ok(s, LB_SESSION_IDLE), s != LB_SESSION_IDLE, "%d", s);
    }
    /* never back into the queue while holding a slot, never twice the same state */
    cr_assert_not(lb_session_transition_ok(LB_SESSION_CONNECTING, LB_SESSION_QUEUED));
    cr_assert_not(lb_session_transition_ok(LB_SESSION_CONNECTED, LB_SESSION_QUEUED));
    cr_assert_not(lb_session_transition_ok(LB_SESSION_QUEUED, LB_SESSION_QUEUED));
    cr_assert_not(lb_session_transition_ok(LB_SESSION_CONNECTING, LB_SESSION_CONNECTING));
    cr_assert_not(lb_session_transition_ok(LB_SESSION_CONNECTED, LB_SESSION_CONNECTED));
    cr_assert_not(lb_session_transition_ok(LB_SESSION_STATE_COUNT, LB_SESSION_IDLE));
}

Test(lb_session, state_names)
{
    cr_assert_str_eq(lb_session_state_name(LB_SESSION_IDLE), "idle");
    cr_assert_str_eq(lb_session_state_name(LB_SESSION_QUEUED), "queued");
    cr_assert_str_eq(lb_session_state_name(LB_SESSION_CONNECTING), "connecting");
    cr_assert_str_eq(lb_session_state_name(LB_SESSION_CONNECTED), "connected");
    cr_assert_str_eq(lb_session_state_name(LB_SESSION_STATE_COUNT), "?");
}

Test(lb_session, how_each_failure_is_answered)
{
    cr_assert_eq(lb_session_err_status(LB_SESSION_ENOSERVER), 503);
    cr_assert_eq(lb_session_err_status(LB_SESSION_EQUEUE_FULL), 503);
    cr_assert_eq(lb_session_err_status(LB_SESSION_EQUEUE_TIMEOUT), 503);
    cr_assert_eq(lb_session_err_status(LB_SESSION_ENOFD), 503);
    cr_assert_eq(lb_session_err_status(LB_SESSION_ENOMEM), 503);
    cr_assert_eq(lb_session_err_status(LB_SESSION_ECONNECT), 502);
    cr_assert_eq(lb_session_err_status(LB_SESSION_ECONNECT_TIMEOUT), 504);
    /* the words the HTTP tests and the health docs rely on */
    cr_assert_str_eq(lb_session_err_str(LB_SESSION_ENOSERVER), "no server available");
    cr_assert(strstr(lb_session_err_str(LB_SESSION_EQUEUE_TIMEOUT), "queue timeout") != NULL);
    for (int e = LB_SESSION_ENOSERVER; e <= LB_SESSION_ECONNECT_TIMEOUT; e++) {
        cr_assert_str_neq(lb_session_err_str(e), "?", "%d", e);
    }
}

/* core/fsm.h: refused (the state stays), counted under "session", logged at error level
 * with the session, the move and the reason. KEEL_FSM_STRICT=0: the suites (and an ASan
 * build) would abort instead, by design. */
Test(lb_session, an_illegal_move_is_refused_counted_and_logged)
{
    fsm_log_setup();
    struct conf_backend cb = {.name = "web"};
    struct lb_backend be = {.conf = &cb};
    static const struct lb_session_ops ops = {.log_name = "tcp"};
    struct lb_session s = {.state = LB_SESSION_CONNECTING, .be = &be, .ops = &ops};
    uint64_t before = fsm_illegal_count(FSM_MACHINE_SESSION);
    session_set_state(&s, LB_SESSION_QUEUED, "test");
    cr_assert_eq(s.state, LB_SESSION_CONNECTING, "the state stays");
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_SESSION), before + 1);
    const char *text = fsm_log_text();
    cr_assert(strstr(text, "[error] ") != NULL, "%s", text);
    cr_assert(strstr(text, "session: tcp session of web: illegal transition connecting -> "
                           "queued (test), refused: the state stays") != NULL,
              "%s", text);
    session_set_state(&s, LB_SESSION_CONNECTED, "test");
    cr_assert_eq(s.state, LB_SESSION_CONNECTED);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_SESSION), before + 1);
    /* idle -> idle: nothing to give up */
    s.state = LB_SESSION_IDLE;
    session_set_state(&s, LB_SESSION_IDLE, "released twice");
    cr_assert_eq(s.state, LB_SESSION_IDLE);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_SESSION), before + 2);
    cr_assert(strstr(fsm_log_text(), "idle -> idle (released twice)") != NULL, "%s",
              fsm_log_text());
    fsm_log_teardown();
}

/* ---------------------------------------------------------------- on a real loop */

/* An owner of a session, as the TCP relay is: the server socket and its watcher. */
struct owner {
    struct lb_session s;
    struct http_xprt xp;
    struct ev_io io;
    struct ev_loop *loop;
    int slots, queued, connected, drops, errors;
    enum lb_session_err err;
};

static int t_on_slot(struct lb_session *s)
{
    struct owner *o = s->owner;
    o->slots++;
    s->xp = &o->xp;
    s->io = &o->io;
    return 0;
}

static void t_on_queued(struct lb_session *s)
{
    ((struct owner *)s->owner)->queued++;
}

static void t_on_connected(struct lb_session *s)
{
    struct owner *o = s->owner;
    o->connected++;
    ev_loop_stop(o->loop);
}

static void t_on_drop(struct lb_session *s)
{
    struct owner *o = s->owner;
    o->drops++;
    ev_io_stop(o->loop, &o->io);
    http_xprt_close(&o->xp);
}

static void t_on_error(struct lb_session *s, enum lb_session_err err, const char *detail)
{
    (void)detail;
    struct owner *o = s->owner;
    o->errors++;
    o->err = err;
    ev_loop_stop(o->loop);
}

static const struct lb_session_ops t_ops = {
    .log_name = "test",
    .on_slot = t_on_slot,
    .on_queued = t_on_queued,
    .on_connected = t_on_connected,
    .on_drop = t_on_drop,
    .on_error = t_on_error,
};

struct rig {
    struct lb_gen *gen;
    struct lb_backend *be;
    struct lb_worker w;
    struct sockaddr_storage peer;
    struct ev_timer guard;
    int listen_fd;
};

static void on_guard(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    ev_loop_stop(loop);
}

static void on_worker_queue_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    lb_worker_kick_queue(t->data);
}

/* A port on 127.0.0.1: listening when do_listen, else closed again (connects refused). */
static int loopback_port(bool do_listen, int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_neq(fd, -1);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (do_listen) {
        cr_assert_eq(listen(fd, 16), 0);
        *fd_out = fd;
    } else {
        close(fd);
    }
    return ntohs(a.sin_port);
}

static void rig_init(struct rig *r, const char *servers, const char *extra)
{
    memset(r, 0, sizeof(*r));
    r->listen_fd = -1;
    char text[1024];
    snprintf(text, sizeof(text),
             "frontend f { bind 127.0.0.1:1; mode tcp; backend b; }\n"
             "backend b { mode tcp; %s %s }\n",
             servers, extra);
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    int rc = conf_load_string("t.conf", text, strlen(text), &conf, &errs);
    cr_assert_eq(rc, 0, "%s", errs.text != NULL ? errs.text : "");
    conf_errors_fini(&errs);
    struct errbuf eb;
    struct gen *core = gen_new(conf);
    cr_assert_not_null(core);
    r->gen = lb_gen_new(core, NULL, 1, &eb);
    cr_assert_not_null(r->gen, "%s", eb.msg);
    r->be = &r->gen->backends[0];
    r->w.loop = ev_loop_new();
    cr_assert_not_null(r->w.loop);
    r->w.rng = 42;
    ev_timer_init(&r->w.queue_timer, on_worker_queue_timer, &r->w, "queue-retry");
    struct sockaddr_in *sin = (struct sockaddr_in *)&r->peer;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x7f000001);
    ev_timer_init(&r->guard, on_guard, NULL, "guard");
}

static void rig_run(struct rig *r)
{
    ev_timer_start(r->w.loop, &r->guard, 3000);
    (void)ev_run(r->w.loop);
    ev_timer_stop(r->w.loop, &r->guard);
}

static void rig_fini(struct rig *r)
{
    ev_timer_stop(r->w.loop, &r->w.queue_timer);
    ev_loop_free(r->w.loop);
    if (r->listen_fd != -1) {
        close(r->listen_fd);
    }
    struct gen *core = r->gen->gen;
    lb_gen_free(r->gen);
    gen_free(core);
    qsbr_drain_all();
}

static void owner_init(struct owner *o, struct rig *r)
{
    memset(o, 0, sizeof(*o));
    o->loop = r->w.loop;
    http_xprt_tcp_init(&o->xp, -1);
    lb_session_init(&o->s, &r->w, r->be, (const struct sockaddr *)&r->peer, &t_ops, o);
}

static uint64_t backend_counter(struct rig *r, size_t offset)
{
    return atomic_load((_Atomic uint64_t *)((char *)metrics_local(r->be->metrics) + offset));
}

Test(lb_session, queues_at_maxconn_and_gets_the_freed_slot)
{
    struct rig r;
    char servers[128];
    int lfd = -1;
    snprintf(servers, sizeof(servers), "server a 127.0.0.1:%d maxconn 1;",
             loopback_port(true, &lfd));
    rig_init(&r, servers, "timeout_queue 2s;");
    r.listen_fd = lfd; /* the server: connects complete in its backlog */
    struct owner first, second;
    owner_init(&first, &r);
    owner_init(&second, &r);
    lb_session_start(&first.s);
    cr_assert_eq(first.s.state, LB_SESSION_CONNECTING);
    cr_assert_eq(first.slots, 1);
    rig_run(&r);
    cr_assert_eq(first.connected, 1);
    cr_assert_eq(first.s.state, LB_SESSION_CONNECTED);

    uint64_t queued_before = backend_counter(&r, offsetof(struct metrics_backend_c, queued_total));
    lb_session_start(&second.s);
    cr_assert_eq(second.s.state, LB_SESSION_QUEUED, "every server at maxconn: wait");
    cr_assert_eq(second.queued, 1);
    cr_assert_eq(second.slots, 0);
    cr_assert_eq(atomic_load(&r.be->queued), 1);
    cr_assert_eq(backend_counter(&r, offsetof(struct metrics_backend_c, queued_total)),
                 queued_before + 1);

    /* the first one ends: its slot goes to the one waiting */
    t_on_drop(&first.s);
    lb_session_release(&first.s);
    cr_assert_eq(second.s.state, LB_SESSION_CONNECTING);
    cr_assert_eq(atomic_load(&r.be->queued), 0);
    rig_run(&r);
    cr_assert_eq(second.connected, 1);
    cr_assert_eq(second.errors, 0);
    t_on_drop(&second.s);
    lb_session_release(&second.s);
    cr_assert_eq(atomic_load(&r.be->servers[0].active), 0);
    rig_fini(&r);
}

Test(lb_session, queue_timeout_and_queue_full)
{
    struct rig r;
    rig_init(&r, "server a 127.0.0.1:9 maxconn 1;", "timeout_queue 100ms; queue_max 1;");
    struct lb_server *held = NULL;
    uint64_t rng = 1;
    struct lb_pick_ctx ctx = {.rng = &rng};
    cr_assert_eq(lb_backend_pick(r.be, &ctx, NULL, &held), 0); /* someone holds the slot */
    struct owner waits, refused;
    owner_init(&waits, &r);
    owner_init(&refused, &r);
    lb_session_start(&waits.s);
    cr_assert_eq(waits.s.state, LB_SESSION_QUEUED);
    lb_session_start(&refused.s);
    cr_assert_eq(refused.errors, 1, "queue_max 1: the second is refused at once");
    cr_assert_eq(refused.err, LB_SESSION_EQUEUE_FULL);
    cr_assert_eq(refused.s.state, LB_SESSION_IDLE);

    uint64_t before = backend_counter(&r, offsetof(struct metrics_backend_c, queue_timeouts));
    uint64_t t0 = ev_now_ms(r.w.loop);
    rig_run(&r);
    ev_update_time(r.w.loop);
    cr_assert_eq(waits.errors, 1);
    cr_assert_eq(waits.err, LB_SESSION_EQUEUE_TIMEOUT);
    cr_assert_geq(ev_now_ms(r.w.loop) - t0, 100);
    cr_assert_eq(waits.s.state, LB_SESSION_IDLE);
    cr_assert_eq(waits.slots, 0, "never connected");
    cr_assert_eq(atomic_load(&r.be->queued), 0);
    cr_assert_eq(backend_counter(&r, offsetof(struct metrics_backend_c, queue_timeouts)),
                 before + 1);
    lb_server_release(held);
    rig_fini(&r);
}

Test(lb_session, refused_connect_is_retried_on_another_server)
{
    struct rig r;
    char servers[160];
    int dead1 = loopback_port(false, NULL), dead2 = loopback_port(false, NULL);
    snprintf(servers, sizeof(servers), "server a 127.0.0.1:%d; server b 127.0.0.1:%d;", dead1,
             dead2);
    rig_init(&r, servers, "retries 1;");
    uint64_t retries = backend_counter(&r, offsetof(struct metrics_backend_c, retries));
    struct owner o;
    owner_init(&o, &r);
    lb_session_start(&o.s);
    if (o.errors == 0) {
        rig_run(&r);
    }
    cr_assert_eq(o.errors, 1);
    cr_assert_eq(o.err, LB_SESSION_ECONNECT);
    cr_assert_eq(o.slots, 2, "one retry, on the other server");
    cr_assert_eq(o.drops, 2);
    cr_assert_neq(o.s.failed_srv, NULL);
    cr_assert_eq(backend_counter(&r, offsetof(struct metrics_backend_c, retries)), retries + 1);
    uint64_t failures = 0;
    for (uint32_t i = 0; i < 2; i++) {
        failures += atomic_load(&metrics_local(r.be->servers[i].metrics)->connect_failures);
        cr_assert_eq(atomic_load(&r.be->servers[i].active), 0, "slots given back");
    }
    cr_assert_geq(failures, 2);
    cr_assert_eq(o.s.state, LB_SESSION_IDLE);
    rig_fini(&r);
}
