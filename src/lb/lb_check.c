/* SPDX-License-Identifier: MIT */
/* Health checks. One struct lb_check per checked server: a timer fires every interval,
 * then a non-blocking connect (TCP: the connect and the handshake of the check's
 * transport, http/http_transport.h) or an exchange of the asynchronous HTTP client
 * (http/http_client.c, whose response parser is http/http_parse.c) follows, bounded by the
 * check timeout. Results go through rise/fall counters into lb_server_set_up.
 *
 * Passive detection: failures workers see on live traffic are collected per server in a
 * window of PASSIVE_WINDOW_MS, with the clients (addresses) they came from. They take a
 * server down only when (a) the window holds `fall` failures from at least two clients, or
 * (b) keel's own check confirms them: every failure asks for an early check, and a failed
 * check adds the window's failures to its own count. A check that passes after the window
 * began clears it. So one client, however many connections or slow requests it makes,
 * cannot take a server down on its own (docs/directives/check.md). */
#include "lb/lb_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/sock.h"
#include "http/http_client.h"
#include "http/http_transport.h"
#include "lb/lb_algo.h"

#define PASSIVE_WINDOW_MS 10000
#define PASSIVE_EARLY_GAP_MS 250 /* at least this long between check starts asked by failures */

enum check_state {
    CHECK_STATE_IDLE = 0,   /* waiting for the next interval */
    CHECK_STATE_CONNECTING, /* TCP: non-blocking connect (then handshake) in progress */
    CHECK_STATE_HTTP        /* HTTP: the client's exchange in flight */
};

struct lb_check {
    struct lb_checks *owner;
    struct lb_backend *be;
    struct lb_server *srv;
    enum check_state state;
    struct http_xprt xp; /* TCP: the probe's transport; xp.fd is -1 when none */
    bool is_connected;   /* TCP: connected, the transport's handshake runs */
    struct ev_io io;
    struct ev_timer interval;
    struct ev_timer timeout;  /* TCP: the connect's deadline */
    struct http_client *http; /* HTTP: the exchange in flight, else NULL */
    /* The transport both kinds of check use toward this server; NULL: plain TCP (a TLS
     * check, with its handshake, plugs in here). */
    const struct http_xprt_conf *xprt;
    uint64_t started_ms; /* when the last check started; 0: never */
    /* failures seen on live traffic since passive_since_ms (0: no window open) */
    uint64_t passive_since_ms;
    uint32_t passive_count;
    uint32_t passive_clients[LB_PASSIVE_CLIENTS]; /* distinct client keys, 0: free */
};

struct lb_checks {
    struct ev_loop *loop;
    struct lb_gen *gen;
    struct lb_check *checks; /* one per server, flattened */
    uint32_t n;
};

void lb_server_set_up(struct lb_backend *be, struct lb_server *s, bool up, const char *reason)
{
    bool was = atomic_load(&s->is_up);
    struct lb_health *h = &be->health[s->id];
    snprintf(h->last_reason, sizeof(h->last_reason), "%s", reason);
    if (was == up) {
        return;
    }
    atomic_store(&s->is_up, up);
    metrics_add(&metrics_local(s->metrics)->transitions, 1);
    if (up) {
        log_notice("check", "backend %s/server %s: server up (%s)", be->conf->name, s->conf->name,
                   reason);
    } else {
        log_notice("check", "backend %s/server %s: server down (%s)", be->conf->name, s->conf->name,
                   reason);
        atomic_fetch_add(&be->gen->downs, 1);
    }
    lb_backend_publish(be);
    if (atomic_load(&be->snap) == NULL) {
        log_error("check", "backend %s has no server available", be->conf->name);
    }
}

/* Feed one check result into the rise/fall counters. */
static void check_result(struct lb_backend *be, struct lb_server *s, bool ok, const char *why)
{
    const struct conf_check *cc = &be->conf->check;
    struct lb_health *h = &be->health[s->id];
    if (s->conf->is_disabled) {
        return;
    }
    metrics_add(
        ok ? &metrics_local(s->metrics)->checks_ok : &metrics_local(s->metrics)->checks_fail, 1);
    if (ok) {
        h->consecutive_fail = 0;
        h->consecutive_ok++;
        if (!atomic_load(&s->is_up) && h->consecutive_ok >= cc->rise) {
            char reason[200];
            snprintf(reason, sizeof(reason), "%u good checks", h->consecutive_ok);
            lb_server_set_up(be, s, true, reason);
        }
    } else {
        h->consecutive_ok = 0;
        h->consecutive_fail++;
        if (atomic_load(&s->is_up) && h->consecutive_fail >= cc->fall) {
            char reason[200];
            snprintf(reason, sizeof(reason), "%u failed checks, last: %s", h->consecutive_fail,
                     why);
            lb_server_set_up(be, s, false, reason);
        } else {
            snprintf(h->last_reason, sizeof(h->last_reason), "%s", why);
        }
    }
}

static void passive_clear(struct lb_check *ck)
{
    ck->passive_count = 0;
    ck->passive_since_ms = 0;
    memset(ck->passive_clients, 0, sizeof(ck->passive_clients));
}

static uint32_t passive_n_clients(const struct lb_check *ck)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < LB_PASSIVE_CLIENTS; i++) {
        n += ck->passive_clients[i] != 0;
    }
    return n;
}

static void passive_mark_down(struct lb_check *ck, const char *reason)
{
    ck->be->health[ck->srv->id].consecutive_ok = 0; /* back up after `rise` good checks */
    passive_clear(ck);
    lb_server_set_up(ck->be, ck->srv, false, reason);
}

/* A check result: the rise/fall counters, then what it says of the passive evidence (a
 * failure confirms it, a pass that started after it began refutes it). */
static void check_done(struct lb_check *ck, bool ok, const char *why)
{
    check_result(ck->be, ck->srv, ok, why);
    if (ck->passive_since_ms == 0 || ck->srv->conf->is_disabled) {
        return;
    }
    if (ev_now_ms(ck->owner->loop) - ck->passive_since_ms > PASSIVE_WINDOW_MS) {
        passive_clear(ck); /* too old to confirm */
        return;
    }
    if (ok) {
        if (ck->started_ms >= ck->passive_since_ms) {
            log_debug("check",
                      "backend %s/server %s: %u errors on live traffic not confirmed "
                      "by the check",
                      ck->be->conf->name, ck->srv->conf->name, ck->passive_count);
            passive_clear(ck);
        }
        return;
    }
    const struct lb_health *h = &ck->be->health[ck->srv->id];
    if (atomic_load(&ck->srv->is_up) &&
        h->consecutive_fail + ck->passive_count >= ck->be->conf->check.fall) {
        char reason[200];
        snprintf(reason, sizeof(reason),
                 "%u errors on live traffic confirmed by a failed check: %s", ck->passive_count,
                 why);
        passive_mark_down(ck, reason);
    }
}

static void check_finish(struct lb_check *ck, bool ok, const char *why)
{
    struct ev_loop *loop = ck->owner->loop;
    if (ck->xp.fd != -1) {
        ev_io_stop(loop, &ck->io);
        http_xprt_close(&ck->xp);
    }
    ck->is_connected = false;
    http_client_cancel(ck->http);
    ck->http = NULL;
    ev_timer_stop(loop, &ck->timeout);
    ck->state = CHECK_STATE_IDLE;
    check_done(ck, ok, why);
    ev_timer_start(loop, &ck->interval, ck->be->conf->check.interval_ms);
}

static void on_http_done(void *data, const struct http_client_response *resp)
{
    struct lb_check *ck = data;
    const struct conf_check *cc = &ck->be->conf->check;
    ck->http = NULL; /* dead once this runs */
    char why[192];
    bool ok = false;
    if (resp->err == 0) {
        ok = resp->status >= cc->status_min && resp->status <= cc->status_max;
        snprintf(why, sizeof(why), "HTTP status %d", resp->status);
    } else if (resp->err == -ETIMEDOUT) {
        snprintf(why, sizeof(why), "%s",
                 resp->is_connect_failure ? "connect timed out" : "response timed out");
    } else if (resp->is_connect_failure) {
        snprintf(why, sizeof(why), "%s", resp->why); /* "connect() failed: ..." */
    } else if (resp->err == -ECONNRESET) {
        snprintf(why, sizeof(why), "connection closed before a response");
    } else if (resp->err == -EPROTO) {
        snprintf(why, sizeof(why), "invalid HTTP response (%s)", resp->why);
    } else {
        snprintf(why, sizeof(why), "%s", resp->why);
    }
    check_finish(ck, ok, why);
}

static void on_check_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct lb_check *ck = io->data;
    int rc = http_xprt_connect_step(&ck->xp, &ck->is_connected); /* TCP: no handshake */
    if (rc == -EAGAIN) {
        uint32_t want = ck->is_connected ? 0 : EV_WRITE;
        if (ev_io_set(ck->owner->loop, &ck->io, http_xprt_events(&ck->xp, want)) != 0) {
            check_finish(ck, false, "epoll failed");
        }
        return;
    }
    if (rc != 0) {
        char why[256];
        if (ck->is_connected) {
            struct http_xprt_info info;
            http_xprt_get_info(&ck->xp, &info); /* the library's reason ("certificate...") */
            snprintf(why, sizeof(why), "%s handshake failed: %s", ck->xp.ops->name,
                     info.error != NULL ? info.error : err_str(rc));
        } else {
            snprintf(why, sizeof(why), "connect() failed: %s", strerror(-rc));
        }
        check_finish(ck, false, why);
        return;
    }
    check_finish(ck, true, "connected");
}

static void on_check_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    check_finish(t->data, false, "connect timed out");
}

/* Start the HTTP exchange of a check (the client has the deadlines). */
static int http_check_start(struct lb_check *ck, const struct sockaddr_storage *sa, socklen_t salen)
{
    const struct conf_check *cc = &ck->be->conf->check;
    struct ev_loop *loop = ck->owner->loop;
    uint64_t deadline = ev_now_ms(loop) + cc->timeout_ms;
    struct http_client_request req = {
        .addr = (const struct sockaddr *)sa,
        .addrlen = salen,
        .method = cc->method[0] != '\0' ? cc->method : "GET",
        .host = cc->host[0] != '\0' ? cc->host : ck->srv->conf->addr.text,
        .path = cc->path[0] != '\0' ? cc->path : "/",
        .connect_deadline_ms = deadline,
        .deadline_ms = deadline,
        .user_agent = "keel-check",
        .is_status_only = true,
        .xprt = ck->xprt,
    };
    ck->state = CHECK_STATE_HTTP;
    return http_client_start(loop, &req, on_http_done, ck, &ck->http);
}

static void on_check_interval(struct ev_loop *loop, struct ev_timer *t)
{
    struct lb_check *ck = t->data;
    const struct conf_addr *addr = &ck->srv->conf->addr;
    struct sockaddr_storage sa = addr->sa;
    if (ck->be->conf->check.port != 0) {
        sock_addr_set_port(&sa, (uint16_t)ck->be->conf->check.port);
    }
    ck->started_ms = ev_now_ms(loop);
    int fd;
    if (ck->be->conf->check.type == CONF_CHECK_HTTP) {
        fd = http_check_start(ck, &sa, addr->salen);
    } else {
        fd = sock_connect_start((const struct sockaddr *)&sa, addr->salen);
    }
    if (fd < 0) {
        char why[128];
        snprintf(why, sizeof(why), "connect() failed: %s", strerror(-fd));
        ck->http = NULL;
        ck->state = CHECK_STATE_IDLE;
        check_done(ck, false, why);
        ev_timer_start(loop, &ck->interval, ck->be->conf->check.interval_ms);
        return;
    }
    if (ck->state == CHECK_STATE_HTTP) {
        return;
    }
    int rc = http_xprt_open(&ck->xp, ck->xprt, fd, HTTP_XPRT_CONNECTING);
    if (rc != 0) {
        (void)close(fd); /* no transport took it */
        ck->xp.fd = -1;
    }
    ck->state = CHECK_STATE_CONNECTING;
    if (rc != 0) {
        check_finish(ck, false, "out of memory for the check's transport");
        return;
    }
    if (ev_io_start(loop, &ck->io, fd, http_xprt_events(&ck->xp, EV_WRITE), on_check_io, ck,
                    "check") != 0) {
        http_xprt_close(&ck->xp); /* not watched: check_finish must not stop the watcher */
        check_finish(ck, false, "epoll failed");
        return;
    }
    ev_timer_start(loop, &ck->timeout, ck->be->conf->check.timeout_ms);
}

struct lb_checks *lb_checks_start(struct ev_loop *loop, struct lb_gen *gen)
{
    struct lb_checks *cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        return NULL;
    }
    cs->loop = loop;
    cs->gen = gen;
    cs->checks = calloc(gen->n_servers_total + 1, sizeof(*cs->checks));
    if (cs->checks == NULL) {
        free(cs);
        return NULL;
    }
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        struct lb_backend *be = &gen->backends[b];
        for (uint32_t i = 0; i < be->n_servers; i++) {
            struct lb_check *ck = &cs->checks[cs->n++];
            ck->owner = cs;
            ck->be = be;
            ck->srv = &be->servers[i];
            ck->xp.fd = -1;
            /* A tls server is checked over TLS, its certificate included. */
            ck->xprt = ck->srv->xprt.ops != NULL ? &ck->srv->xprt : NULL;
            ev_timer_init(&ck->interval, on_check_interval, ck, "check-interval");
            ev_timer_init(&ck->timeout, on_check_timeout, ck, "check-timeout");
            if (be->conf->check.type == CONF_CHECK_NONE || ck->srv->conf->is_disabled) {
                continue;
            }
            /* Spread the first checks over the interval so they do not all fire at once. */
            uint32_t spread = be->conf->check.interval_ms / (be->n_servers + 1) * i;
            ev_timer_start(loop, &ck->interval, spread);
        }
    }
    return cs;
}

void lb_checks_stop(struct lb_checks *cs)
{
    if (cs == NULL) {
        return;
    }
    for (uint32_t i = 0; i < cs->n; i++) {
        struct lb_check *ck = &cs->checks[i];
        ev_timer_stop(cs->loop, &ck->interval);
        ev_timer_stop(cs->loop, &ck->timeout);
        if (ck->xp.fd != -1) {
            ev_io_stop(cs->loop, &ck->io);
            http_xprt_close(&ck->xp);
        }
        http_client_cancel(ck->http);
    }
    /* Events for these sockets may be pending in the current batch. */
    ev_free_later(cs->loop, cs->checks);
    ev_free_later(cs->loop, cs);
}

void lb_server_report_failure(struct lb_server *s, const struct sockaddr *client)
{
    unsigned alen;
    const void *ab = sock_addr_bytes(client, &alen);
    uint32_t key = lb_hash_bytes(ab, alen);
    key = key != 0 ? key : 1;
    /* The client first, then the count (release): the control thread drains the count first
     * (acquire), then the clients, so it never sees a failure without its client. */
    for (uint32_t i = 0; i < LB_PASSIVE_CLIENTS; i++) {
        uint32_t cur = atomic_load_explicit(&s->passive_clients[i], memory_order_relaxed);
        if (cur == 0) {
            (void)atomic_compare_exchange_strong(&s->passive_clients[i], &cur, key);
            if (cur == 0 || cur == key) {
                break; /* stored, or another worker stored the same client */
            }
        } else if (cur == key) {
            break;
        }
    }
    atomic_fetch_add_explicit(&s->passive_failures, 1, memory_order_release);
}

/* Add failures drained from the workers to ck's window. */
static void passive_add(struct lb_check *ck, uint32_t n, const uint32_t *clients, uint64_t now)
{
    if (ck->passive_since_ms != 0 && now - ck->passive_since_ms > PASSIVE_WINDOW_MS) {
        passive_clear(ck); /* old evidence expires */
    }
    if (ck->passive_since_ms == 0) {
        ck->passive_since_ms = now;
    }
    ck->passive_count += n;
    for (uint32_t i = 0; i < LB_PASSIVE_CLIENTS; i++) {
        uint32_t key = clients[i];
        for (uint32_t j = 0; key != 0 && j < LB_PASSIVE_CLIENTS; j++) {
            if (ck->passive_clients[j] == key) {
                break;
            }
            if (ck->passive_clients[j] == 0) {
                ck->passive_clients[j] = key;
                break;
            }
        }
    }
}

void lb_checks_poll_passive(struct lb_checks *cs)
{
    uint64_t now = ev_now_ms(cs->loop);
    for (uint32_t i = 0; i < cs->n; i++) {
        struct lb_check *ck = &cs->checks[i];
        struct lb_server *s = ck->srv;
        uint32_t n = atomic_exchange_explicit(&s->passive_failures, 0, memory_order_acquire);
        uint32_t clients[LB_PASSIVE_CLIENTS], any = 0;
        for (uint32_t k = 0; k < LB_PASSIVE_CLIENTS; k++) {
            clients[k] = atomic_exchange(&s->passive_clients[k], 0);
            any |= clients[k];
        }
        const struct conf_check *cc = &ck->be->conf->check;
        if ((n == 0 && any == 0) || cc->type == CONF_CHECK_NONE || s->conf->is_disabled) {
            continue; /* without active checks, nothing brings a server back: no passive */
        }
        if (!atomic_load(&s->is_up)) {
            passive_clear(ck);
            continue;
        }
        passive_add(ck, n, clients, now);
        if (ck->passive_count >= cc->fall && passive_n_clients(ck) >= 2) {
            char reason[200];
            snprintf(reason, sizeof(reason),
                     "%u errors on live traffic from several clients within %u ms",
                     ck->passive_count, (unsigned)(now - ck->passive_since_ms));
            passive_mark_down(ck, reason);
            continue;
        }
        /* One client so far, or too few failures: ask keel's own check now. */
        if (n != 0 && ck->state == CHECK_STATE_IDLE &&
            (ck->started_ms == 0 || now - ck->started_ms >= PASSIVE_EARLY_GAP_MS)) {
            ev_timer_stop(cs->loop, &ck->interval);
            on_check_interval(cs->loop, &ck->interval);
        }
    }
}
