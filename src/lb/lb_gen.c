/* SPDX-License-Identifier: MIT */
/* The lb part of a generation: building the runtime objects of one configuration (numbering,
 * holds and retiring are core/gen.c), publishing server selection snapshots, and picking
 * servers. The control thread builds and publishes; workers pick. */
#include "lb/lb.h"
#include "lb/lb_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/qsbr.h"
#include "core/sock.h"
#include "tls/cert_mgr.h"
#include "tls/tls_client.h"
#include "tls/tls_ctx.h"
#include "tls/tls_transport.h"

static const struct lb_server *find_prev_server(const struct lb_gen *prev,
                                                const struct conf_backend *cb,
                                                const struct conf_server *cs)
{
    if (prev == NULL) {
        return NULL;
    }
    for (uint32_t b = 0; b < prev->n_backends; b++) {
        const struct lb_backend *pb = &prev->backends[b];
        if (strcmp(pb->conf->name, cb->name) != 0) {
            continue;
        }
        for (uint32_t i = 0; i < pb->n_servers; i++) {
            const struct conf_server *ps = pb->servers[i].conf;
            if (strcmp(ps->name, cs->name) == 0 && strcmp(ps->addr.text, cs->addr.text) == 0) {
                return &pb->servers[i];
            }
        }
    }
    return NULL;
}

/* A tls server's client context (its settings were completed and checked when the
 * configuration loaded; the CA file is read again, so a reload uses what it holds now). */
static int open_server_tls(const struct conf_backend *cb, struct lb_server *s, struct errbuf *eb)
{
    const struct conf_server_tls *t = &s->conf->tls;
    if (!t->is_on) {
        return 0;
    }
    struct tls_client_conf cc = {
        .ca_file = t->ca_file[0] != '\0' ? t->ca_file : NULL,
        .name = t->name[0] != '\0' ? t->name : NULL,
        .is_verify_off = t->verify == CONF_TLS_VERIFY_NONE,
    };
    struct errbuf why;
    s->tls = tls_client_new(&cc, &why);
    if (s->tls == NULL) {
        errbuf_set(eb, "backend \"%s\" server \"%s\": %s", cb->name, s->conf->name, why.msg);
        return -EINVAL;
    }
    s->xprt = (struct http_xprt_conf){.ops = &tls_xprt_ops, .data = s->tls};
    return 0;
}

static int build_backend(struct lb_gen *gen, uint32_t id, const struct lb_gen *prev,
                         struct errbuf *eb)
{
    const struct conf_backend *cb = &gen->conf->backends[id];
    struct lb_backend *be = &gen->backends[id];
    be->conf = cb;
    be->gen = gen;
    be->id = id;
    be->n_servers = cb->n_servers;
    be->metrics = metrics_backend_get(cb->name);
    be->servers = calloc(cb->n_servers, sizeof(*be->servers));
    be->health = calloc(cb->n_servers, sizeof(*be->health));
    if (be->metrics == NULL || be->servers == NULL || be->health == NULL) {
        errbuf_set(eb, "out of memory building the configuration");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < cb->n_servers; i++) {
        const struct conf_server *cs = &cb->servers[i];
        struct lb_server *s = &be->servers[i];
        s->conf = cs;
        s->id = i;
        s->weight = cs->weight == 0 ? 1 : cs->weight;
        s->maxconn = cs->maxconn;
        s->is_backup = cs->is_backup;
        s->metrics = metrics_server_get(cb->name, cs->name);
        if (s->metrics == NULL) {
            errbuf_set(eb, "out of memory building the configuration");
            return -ENOMEM;
        }
        int rc = open_server_tls(cb, s, eb);
        if (rc != 0) {
            return rc;
        }
        const struct lb_server *old = find_prev_server(prev, cb, cs);
        bool up = !cs->is_disabled;
        if (up && old != NULL) {
            up = atomic_load(&old->is_up);
        }
        atomic_store(&s->is_up, up);
        if (!up && old == NULL && !cs->is_disabled) {
            be->health[i].consecutive_fail = 0;
        }
        snprintf(be->health[i].last_reason, sizeof(be->health[i].last_reason), "%s",
                 cs->is_disabled ? "disabled" : (old != NULL ? "inherited" : "initial"));
    }
    lb_backend_publish(be);
    return 0;
}

static int open_access_log(struct lb_frontend *fe, struct errbuf *eb)
{
    const char *path = fe->conf->access_log;
    fe->access_log_fd = -1;
    if (path[0] == '\0' || strcmp(path, "off") == 0) {
        return 0;
    }
    int fd = strcmp(path, "stderr") == 0 ? dup(2) : log_file_open(path);
    if (fd == -1) {
        fd = -errno;
    }
    if (fd < 0) {
        errbuf_set(eb, "cannot open access log %s: %s", path, log_file_strerror(fd));
        return fd;
    }
    fe->access_log_fd = fd;
    return 0;
}

/* The contexts of the binds that say tls: the certificate files are read again (they were
 * checked when the configuration loaded), so a reload serves what the files hold now. A
 * managed certificate (acme) is read from state_dir, issued first when there is none. */
static int open_tls(struct lb_frontend *fe, struct errbuf *eb)
{
    if (!fe->conf->tls.has_bind) {
        return 0;
    }
    struct errbuf why;
    if (fe->conf->tls.acme.issuer != CONF_ACME_NONE &&
        cert_mgr_prepare(fe->conf, time(NULL), &why) != 0) {
        errbuf_set(eb, "%s \"%s\": managed certificate: %s",
                   fe->conf->role == CONF_ROLE_WEB ? "site" : "frontend", fe->conf->name, why.msg);
        return -EINVAL;
    }
    fe->tls = tls_ctx_new(fe->conf, &why);
    if (fe->tls == NULL) {
        errbuf_set(eb, "%s \"%s\": %s", fe->conf->role == CONF_ROLE_WEB ? "site" : "frontend",
                   fe->conf->name, why.msg);
        return -EINVAL;
    }
    fe->tls_xprt = (struct http_xprt_conf){.ops = &tls_xprt_ops, .data = fe->tls};
    return 0;
}

/* Resolve the frontend's locations: backends, and root directories opened once (O_PATH)
 * so that every file is opened beneath them. A missing root is logged, not fatal: like
 * nginx, keel serves 404 until it appears (and a reload picks it up). */
static int open_locations(struct lb_frontend *fe)
{
    uint32_t n = fe->conf->n_locations;
    fe->loc_backends = calloc(n + 1, sizeof(*fe->loc_backends));
    fe->loc_root_fds = malloc((n + 1) * sizeof(*fe->loc_root_fds));
    if (fe->loc_backends == NULL || fe->loc_root_fds == NULL) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        fe->loc_root_fds[i] = -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct conf_location *loc = &fe->conf->locations[i];
        if (loc->action == CONF_LOC_PROXY) {
            fe->loc_backends[i] = &fe->gen->backends[loc->backend_index];
        } else if (loc->action == CONF_LOC_STATIC) {
            fe->loc_root_fds[i] = open(loc->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fe->loc_root_fds[i] == -1) {
                log_warn("frontend",
                         "%s: location %s: cannot open root %s: %s; its requests "
                         "get 404",
                         fe->conf->name, loc->path, loc->root, strerror(errno));
            }
        }
    }
    return 0;
}

static void wgen_free(struct lb_wgen *w)
{
    free(w->idle);
    free(w->idle_count);
}

static int wgen_init(struct lb_gen *gen)
{
    for (uint32_t i = 0; i < gen->n_workers; i++) {
        struct lb_wgen *w = &gen->wgen[i];
        uint32_t ns = gen->n_servers_total == 0 ? 1 : gen->n_servers_total;
        w->idle = calloc(ns, sizeof(*w->idle));
        w->idle_count = calloc(ns, sizeof(*w->idle_count));
        if (w->idle == NULL || w->idle_count == NULL) {
            return -ENOMEM;
        }
    }
    return 0;
}

struct lb_gen *lb_gen_new(struct gen *core, const struct lb_gen *prev, uint32_t n_workers,
                          struct errbuf *eb)
{
    struct lb_gen *gen = calloc(1, sizeof(*gen));
    if (gen == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    const struct conf *conf = core->conf;
    gen->gen = core;
    gen->conf = conf;
    gen->id = core->id;
    gen->n_workers = n_workers;
    gen->n_backends = conf->n_backends;
    gen->n_frontends = conf->n_frontends;
    gen->backends = calloc(conf->n_backends + 1, sizeof(*gen->backends));
    gen->frontends = calloc(conf->n_frontends + 1, sizeof(*gen->frontends));
    gen->server_base = calloc(conf->n_backends + 1, sizeof(*gen->server_base));
    if (gen->backends == NULL || gen->frontends == NULL || gen->server_base == NULL) {
        goto oom;
    }
    for (uint32_t b = 0; b < conf->n_backends; b++) {
        gen->server_base[b] = gen->n_servers_total;
        gen->n_servers_total += conf->backends[b].n_servers;
        if (build_backend(gen, b, prev, eb) != 0) {
            lb_gen_free(gen);
            return NULL;
        }
    }
    for (uint32_t f = 0; f < conf->n_frontends; f++) {
        struct lb_frontend *fe = &gen->frontends[f];
        fe->conf = &conf->frontends[f];
        fe->gen = gen;
        fe->id = f;
        fe->backend = fe->conf->has_backend ? &gen->backends[fe->conf->backend_index] : NULL;
        if (open_locations(fe) != 0) {
            goto oom;
        }
        fe->metrics = metrics_frontend_get(fe->conf->name);
        fe->access_log_fd = -1;
        if (fe->metrics == NULL) {
            goto oom;
        }
        if (open_access_log(fe, eb) != 0 || open_tls(fe, eb) != 0) {
            lb_gen_free(gen);
            return NULL;
        }
    }
    if (wgen_init(gen) != 0) {
        goto oom;
    }
    return gen;
oom:
    errbuf_set(eb, "out of memory building the configuration");
    lb_gen_free(gen);
    return NULL;
}

static void snap_free(void *p)
{
    struct lb_snap *snap = p;
    if (snap == NULL) {
        return;
    }
    snap->algo->free(snap->state);
    free(snap->servers);
    free(snap);
}

void lb_gen_free(struct lb_gen *gen)
{
    if (gen == NULL) {
        return;
    }
    for (uint32_t b = 0; b < gen->n_backends; b++) {
        struct lb_backend *be = &gen->backends[b];
        /* Readers may still hold the snapshot within their current iteration. */
        qsbr_retire(atomic_exchange(&be->snap, NULL), snap_free);
        for (uint32_t i = 0; be->servers != NULL && i < be->n_servers; i++) {
            tls_client_free(be->servers[i].tls); /* no connection holds the generation */
        }
        free(be->servers);
        free(be->health);
    }
    for (uint32_t f = 0; f < gen->n_frontends; f++) {
        struct lb_frontend *fe = &gen->frontends[f];
        if (fe->access_log_fd != -1) {
            close(fe->access_log_fd);
        }
        for (uint32_t i = 0; fe->loc_root_fds != NULL && i < fe->conf->n_locations; i++) {
            if (fe->loc_root_fds[i] != -1) {
                close(fe->loc_root_fds[i]);
            }
        }
        free(fe->loc_root_fds);
        free(fe->loc_backends);
        tls_ctx_free(fe->tls); /* every connection held the generation: none uses it now */
    }
    for (uint32_t i = 0; i < gen->n_workers; i++) {
        wgen_free(&gen->wgen[i]);
    }
    for (uint32_t i = 0; gen->listen_fds != NULL && i < gen->n_binds_total * gen->n_workers; i++) {
        if (gen->listen_fds[i] != -1) {
            close(gen->listen_fds[i]);
        }
    }
    free(gen->listen_fds);
    free(gen->bind_base);
    free(gen->backends);
    free(gen->frontends);
    free(gen->server_base);
    free(gen);
}

void lb_gen_part_free(void *lb_gen)
{
    lb_gen_free(lb_gen);
}

/* ---------------------------------------------------------------- snapshots */

static struct lb_snap *snap_build(struct lb_backend *be, bool backups)
{
    struct lb_snap *snap = calloc(1, sizeof(*snap));
    if (snap == NULL) {
        return NULL;
    }
    snap->servers = calloc(be->n_servers, sizeof(*snap->servers));
    if (snap->servers == NULL) {
        free(snap);
        return NULL;
    }
    for (uint32_t i = 0; i < be->n_servers; i++) {
        struct lb_server *s = &be->servers[i];
        if (s->is_backup == backups && atomic_load(&s->is_up)) {
            snap->servers[snap->n++] = s;
        }
    }
    if (snap->n == 0) {
        free(snap->servers);
        free(snap);
        return NULL;
    }
    snap->is_backup_set = backups;
    snap->algo = lb_algo_of(be->conf);
    snap->state = snap->algo->build(snap->servers, snap->n);
    if (snap->state == NULL) {
        free(snap->servers);
        free(snap);
        return NULL;
    }
    return snap;
}

void lb_backend_publish(struct lb_backend *be)
{
    struct lb_snap *snap = snap_build(be, false);
    if (snap == NULL) {
        snap = snap_build(be, true);
    }
    struct lb_snap *old = atomic_exchange(&be->snap, snap);
    qsbr_retire(old, snap_free);
}

int lb_backend_pick(struct lb_backend *be, const struct lb_pick_ctx *ctx, struct lb_server *exclude,
                    struct lb_server **out)
{
    struct lb_snap *snap = atomic_load_explicit(&be->snap, memory_order_acquire);
    if (snap == NULL) {
        return -KEEL_ENOSERVER;
    }
    int idx = snap->algo->pick(snap->state, ctx);
    if (idx < 0) {
        return -EBUSY;
    }
    struct lb_server *s = snap->servers[idx];
    if (s == exclude && snap->n > 1) {
        /* A retry must go elsewhere: try the algorithm again, then walk the set. */
        int again = snap->algo->pick(snap->state, ctx);
        if (again >= 0 && snap->servers[again] != exclude) {
            s = snap->servers[again];
        } else {
            for (uint32_t k = 1; k < snap->n; k++) {
                struct lb_server *c = snap->servers[((uint32_t)idx + k) % snap->n];
                if (c != exclude && lb_server_has_room(c)) {
                    s = c;
                    break;
                }
            }
        }
    }
    uint32_t before = atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
    if (s->maxconn != 0 && before >= s->maxconn) {
        /* Another worker took the last slot between the check and the increment. */
        atomic_fetch_sub_explicit(&s->active, 1, memory_order_relaxed);
        return -EBUSY;
    }
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- listening sockets */

static int *find_prev_fds(struct lb_gen *prev, const struct conf_addr *addr)
{
    if (prev == NULL || prev->listen_fds == NULL) {
        return NULL;
    }
    for (uint32_t f = 0; f < prev->n_frontends; f++) {
        const struct conf_frontend *cf = prev->frontends[f].conf;
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            int *fds = &prev->listen_fds[(prev->bind_base[f] + b) * prev->n_workers];
            if (strcmp(cf->binds[b].text, addr->text) == 0 && fds[0] != -1) {
                return fds;
            }
        }
    }
    return NULL;
}

int lb_gen_listen(struct lb_gen *gen, struct lb_gen *prev, struct errbuf *eb)
{
    uint32_t nw = gen->n_workers;
    gen->bind_base = calloc(gen->n_frontends + 1, sizeof(*gen->bind_base));
    if (gen->bind_base == NULL) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    for (uint32_t f = 0; f < gen->n_frontends; f++) {
        gen->bind_base[f] = gen->n_binds_total;
        gen->n_binds_total += gen->frontends[f].conf->n_binds;
    }
    gen->listen_fds = malloc(((size_t)gen->n_binds_total * nw + 1) * sizeof(int));
    if (gen->listen_fds == NULL) {
        errbuf_set(eb, "out of memory");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < gen->n_binds_total * nw; i++) {
        gen->listen_fds[i] = -1;
    }
    /* Open the new sockets; prev keeps its own (lb_gen_take_listeners moves them). */
    for (uint32_t f = 0; f < gen->n_frontends; f++) {
        const struct conf_frontend *cf = gen->frontends[f].conf;
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            uint32_t slot = gen->bind_base[f] + b;
            int *prev_fds = find_prev_fds(prev, &cf->binds[b]);
            if (prev_fds != NULL && prev->n_workers == nw) {
                continue;
            }
            for (uint32_t w = 0; w < nw; w++) {
                const struct sockaddr *sa = (const struct sockaddr *)&cf->binds[b].sa;
                const struct lb_gate *gate = lb_gate_find(sa);
                unsigned flags = SOCK_F_REUSEPORT;
                if (gate != NULL) {
                    flags |= SOCK_F_FREEBIND | (atomic_load(&gate->is_open) ? 0 : SOCK_F_NO_LISTEN);
                }
                int fd = sock_listen_ex(sa, cf->binds[b].salen, flags, 1024, eb);
                if (fd < 0) {
                    return fd;
                }
                gen->listen_fds[slot * nw + w] = fd;
            }
        }
    }
    return 0;
}

void lb_gen_take_listeners(struct lb_gen *gen, struct lb_gen *prev)
{
    uint32_t nw = gen->n_workers;
    for (uint32_t f = 0; prev != NULL && f < gen->n_frontends; f++) {
        const struct conf_frontend *cf = gen->frontends[f].conf;
        for (uint32_t b = 0; b < cf->n_binds; b++) {
            uint32_t slot = gen->bind_base[f] + b;
            int *prev_fds = find_prev_fds(prev, &cf->binds[b]);
            if (gen->listen_fds[slot * nw] != -1 || prev_fds == NULL || prev->n_workers != nw) {
                continue; /* opened by lb_gen_listen */
            }
            for (uint32_t w = 0; w < nw; w++) {
                gen->listen_fds[slot * nw + w] = prev_fds[w];
                prev_fds[w] = -1;
            }
        }
    }
}
