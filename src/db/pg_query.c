/* SPDX-License-Identifier: MIT */
/* One libpq connection driven by the event loop (see pg_query.h). The connection is an
 * explicit state machine (enum pg_conn_state, changed only by conn_set_state); queries wait
 * in a FIFO and the head is the one in flight. Callbacks are never called from within an API
 * call that can be reached from a callback's caller (pg_query defers its work to the end of
 * the loop iteration), except pg_conn_close and pg_conn_free, whose contract says so. */
#include "db/pg_query.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* The life of the connection. */
enum pg_conn_state {
    PG_CONN_CLOSED = 0, /* no connection; the next query opens one */
    PG_CONN_CONNECTING, /* PQconnectPoll in progress (TCP, TLS/auth handshake) */
    PG_CONN_IDLE,       /* established, no query in flight */
    PG_CONN_BUSY        /* the queue's head was sent; its results are being read */
};

static const char *const pg_conn_state_names[] = {
    [PG_CONN_CLOSED] = "closed",
    [PG_CONN_CONNECTING] = "connecting",
    [PG_CONN_IDLE] = "idle",
    [PG_CONN_BUSY] = "busy",
};

#define BIT(s) (1u << (s))
static const uint32_t legal_next[] = {
    [PG_CONN_CLOSED] = BIT(PG_CONN_CONNECTING),
    [PG_CONN_CONNECTING] = BIT(PG_CONN_IDLE) | BIT(PG_CONN_CLOSED),
    [PG_CONN_IDLE] = BIT(PG_CONN_BUSY) | BIT(PG_CONN_CLOSED),
    [PG_CONN_BUSY] = BIT(PG_CONN_IDLE) | BIT(PG_CONN_CLOSED),
};

struct pg_req {
    struct pg_req *next;
    pg_query_fn cb;
    void *data;
    uint64_t deadline_ms;
    uint32_t timeout_ms;
    char sql[];
};

struct pg_conn {
    struct ev_loop *loop;
    char *name;
    char *conninfo;
    uint32_t timeout_ms;
    enum pg_conn_state state;
    PGconn *pg;
    struct ev_io io;
    struct ev_timer timer; /* the earliest deadline of the queue */
    struct ev_defer kick;  /* runs the queue at the end of the iteration */
    struct pg_req *head;   /* in flight when BUSY */
    struct pg_req *tail;
    uint32_t n_pending;
    PGresult *result; /* the last good result of the query in flight */
    PGresult *error;  /* its first error */
    bool is_freed;
    pg_conn_check_fn check; /* before every connection attempt */
    void *check_data;
    char errmsg[512];
};

static void conn_step(struct pg_conn *c);

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------ */

static void conn_set_state(struct pg_conn *c, enum pg_conn_state to, const char *reason)
{
    enum pg_conn_state from = c->state;
    if ((legal_next[from] & BIT(to)) == 0) {
        log_error(c->name, "BUG: illegal transition %s -> %s (%s)", pg_conn_state_names[from],
                  pg_conn_state_names[to], reason);
    }
    /* Every query goes idle -> busy -> idle: those are debug; the connection's own life
     * (opened, lost) is info. */
    if (from == PG_CONN_BUSY || to == PG_CONN_BUSY) {
        log_debug(c->name, "%s -> %s (%s)", pg_conn_state_names[from], pg_conn_state_names[to],
                  reason);
    } else {
        log_info(c->name, "%s -> %s (%s)", pg_conn_state_names[from], pg_conn_state_names[to],
                 reason);
    }
    c->state = to;
}

/* libpq's messages end with a newline and may span lines: make one line of msg. */
static const char *one_line(struct pg_conn *c, const char *msg)
{
    size_t k = 0;
    bool is_sep = false;
    for (const char *p = msg != NULL ? msg : ""; *p != '\0' && k + 3 < sizeof(c->errmsg); p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            is_sep = true;
            continue;
        }
        if (is_sep && k > 0) {
            c->errmsg[k++] = ';';
            c->errmsg[k++] = ' ';
        }
        is_sep = false;
        c->errmsg[k++] = *p;
    }
    c->errmsg[k] = '\0';
    return c->errmsg;
}

static void on_notice(void *arg, const char *message)
{
    struct pg_conn *c = arg;
    log_debug(c->name, "server notice: %s", one_line(c, message));
}

/* Call req's callback and free req. */
static void deliver(struct pg_req *req, struct pg_result *r)
{
    req->cb(req->data, r);
    free(req);
}

static void deliver_err(struct pg_req *req, int err, const char *msg)
{
    struct pg_result r = {.err = err, .msg = msg, .sqlstate = "", .cmd_status = ""};
    deliver(req, &r);
}

/* Take the whole queue out of c (callbacks may queue again meanwhile). */
static struct pg_req *detach_all(struct pg_conn *c)
{
    struct pg_req *list = c->head;
    c->head = NULL;
    c->tail = NULL;
    c->n_pending = 0;
    return list;
}

static struct pg_req *pop_head(struct pg_conn *c)
{
    struct pg_req *req = c->head;
    c->head = req->next;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    c->n_pending--;
    req->next = NULL;
    return req;
}

/* Fail every request of list with err (the list is already out of the queue). */
static void fail_list(struct pg_req *list, int err, const char *msg)
{
    while (list != NULL) {
        struct pg_req *next = list->next;
        deliver_err(list, err, msg);
        list = next;
    }
}

static void clear_results(struct pg_conn *c)
{
    PQclear(c->result);
    PQclear(c->error);
    c->result = NULL;
    c->error = NULL;
}

/* Close the libpq connection (nothing is delivered). */
static void conn_drop(struct pg_conn *c, const char *reason)
{
    ev_io_stop(c->loop, &c->io);
    if (c->pg != NULL) {
        PQfinish(c->pg); /* a 5-byte Terminate at most, on a non-blocking socket */
        c->pg = NULL;
    }
    clear_results(c);
    if (c->state != PG_CONN_CLOSED) {
        conn_set_state(c, PG_CONN_CLOSED, reason);
    }
}

static void on_kick(struct ev_loop *loop, void *data)
{
    (void)loop;
    struct pg_conn *c = data;
    if (!c->is_freed) {
        conn_step(c);
    }
}

static void kick(struct pg_conn *c)
{
    ev_defer(c->loop, &c->kick, on_kick, c);
}

/* ------------------------------------------------------------------------------------------
 * Deadlines
 * ------------------------------------------------------------------------------------------ */

static void arm_timer(struct pg_conn *c)
{
    uint64_t first = UINT64_MAX;
    for (struct pg_req *r = c->head; r != NULL; r = r->next) {
        first = r->deadline_ms < first ? r->deadline_ms : first;
    }
    if (first == UINT64_MAX) {
        ev_timer_stop(c->loop, &c->timer);
        return;
    }
    uint64_t now = ev_now_ms(c->loop);
    ev_timer_stop(c->loop, &c->timer); /* ev_timer_start only moves a timer earlier */
    ev_timer_start(c->loop, &c->timer, first > now ? first - now : 0);
}

static void on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct pg_conn *c = t->data;
    uint64_t now = ev_now_ms(loop);
    struct pg_req *expired = NULL, **tail = &expired;
    /* The query in flight: its connection can only be closed (see pg_query.h). */
    if (c->state == PG_CONN_BUSY && c->head != NULL && c->head->deadline_ms <= now) {
        *tail = pop_head(c);
        tail = &(*tail)->next;
        conn_drop(c, "query timed out");
    }
    for (struct pg_req **pp = &c->head; *pp != NULL;) {
        struct pg_req *r = *pp;
        if (r->deadline_ms > now || (c->state == PG_CONN_BUSY && r == c->head)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        c->n_pending--;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
    }
    c->tail = NULL;
    for (struct pg_req *r = c->head; r != NULL; r = r->next) {
        c->tail = r;
    }
    while (expired != NULL) {
        struct pg_req *next = expired->next;
        char msg[96];
        (void)snprintf(msg, sizeof(msg), "no result within %u ms", expired->timeout_ms);
        deliver_err(expired, -KEEL_ETIMEDOUT, msg);
        expired = next;
    }
    if (!c->is_freed) {
        conn_step(c);
    }
}

/* ------------------------------------------------------------------------------------------
 * Socket interest
 * ------------------------------------------------------------------------------------------ */

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* Watch libpq's socket for events. While connecting, libpq may close its socket and open
 * another (next address, SSL refused): start afresh each time, so that a new socket that got
 * the old number is registered again. */
static int watch(struct pg_conn *c, uint32_t events, bool is_fresh)
{
    int fd = PQsocket(c->pg);
    if (fd < 0) {
        return -EBADF;
    }
    if (!is_fresh && c->io.is_active && c->io.fd == fd) {
        return ev_io_set(c->loop, &c->io, events);
    }
    ev_io_stop(c->loop, &c->io);
    return ev_io_start(c->loop, &c->io, fd, events, on_io, c, "pg conn");
}

/* ------------------------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------------------------ */

/* Connecting failed: every query queued fails (they would only wait for the next try). */
static void connect_failed(struct pg_conn *c, const char *why)
{
    const char *msg = one_line(c, why);
    char copy[sizeof(c->errmsg)];
    (void)snprintf(copy, sizeof(copy), "%s", msg);
    conn_drop(c, copy);
    fail_list(detach_all(c), -ENOTCONN, copy);
    if (!c->is_freed) {
        arm_timer(c);
    }
}

static void connect_continue(struct pg_conn *c)
{
    int rc = 0;
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        rc = watch(c, EV_READ, true);
        break;
    case PGRES_POLLING_WRITING:
        rc = watch(c, EV_WRITE, true);
        break;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->pg, 1) != 0) {
            connect_failed(c, PQerrorMessage(c->pg));
            return;
        }
        conn_set_state(c, PG_CONN_IDLE, "connected");
        rc = watch(c, EV_READ, true);
        if (rc == 0) {
            conn_step(c);
            return;
        }
        break;
    case PGRES_POLLING_FAILED:
    default:
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    if (rc != 0) {
        char why[128];
        (void)snprintf(why, sizeof(why), "cannot watch the socket: %s", strerror(-rc));
        connect_failed(c, why);
    }
}

static void connect_start(struct pg_conn *c)
{
    conn_set_state(c, PG_CONN_CONNECTING, "a query is waiting");
    struct errbuf eb = {.msg = ""};
    if (c->check != NULL && c->check(c->check_data, &eb) != 0) {
        connect_failed(c, eb.msg);
        return;
    }
    c->pg = PQconnectStart(c->conninfo);
    if (c->pg == NULL) {
        connect_failed(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    (void)PQsetNoticeProcessor(c->pg, on_notice, c);
    /* libpq: just after PQconnectStart, behave as if PQconnectPoll returned WRITING. */
    int rc = watch(c, EV_WRITE, true);
    if (rc != 0) {
        char why[128];
        (void)snprintf(why, sizeof(why), "cannot watch the socket: %s", strerror(-rc));
        connect_failed(c, why);
    }
}

/* ------------------------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------------------------ */

/* The query in flight cannot go on (connection lost, protocol): fail it, reconnect for the
 * rest. */
static void busy_failed(struct pg_conn *c, int err, const char *why)
{
    char msg[sizeof(c->errmsg)];
    (void)snprintf(msg, sizeof(msg), "%s", one_line(c, why));
    struct pg_req *req = pop_head(c);
    conn_drop(c, msg);
    deliver_err(req, err, msg);
    if (!c->is_freed) {
        kick(c);
    }
}

static void send_head(struct pg_conn *c)
{
    if (PQsendQuery(c->pg, c->head->sql) == 0) {
        busy_failed(c, -ENOTCONN, PQerrorMessage(c->pg));
        return;
    }
    conn_set_state(c, PG_CONN_BUSY, "query sent");
    int f = PQflush(c->pg);
    int rc = f == -1 ? -EIO : watch(c, f == 1 ? EV_READ | EV_WRITE : EV_READ, false);
    if (rc != 0) {
        busy_failed(c, -ENOTCONN, f == -1 ? PQerrorMessage(c->pg) : "cannot watch the socket");
    }
}

/* Every result of the query in flight was read: deliver it. */
static void complete(struct pg_conn *c)
{
    struct pg_req *req = pop_head(c);
    PGresult *res = c->error != NULL ? c->error : c->result;
    PGresult *other = c->error != NULL ? c->result : NULL;
    c->error = NULL;
    c->result = NULL;
    PQclear(other);
    conn_set_state(c, PG_CONN_IDLE, "results read");
    struct pg_result r = {.err = 0, .msg = "", .sqlstate = "", .cmd_status = "", ._res = res};
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_EMPTY_QUERY;
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        r.err = -EREMOTEIO;
        r.msg = one_line(c, primary != NULL ? primary : PQresultErrorMessage(res));
        r.sqlstate = state != NULL ? state : "";
        r._res = NULL;
    } else if (res != NULL) {
        r.cmd_status = PQcmdStatus(res);
        if (st == PGRES_TUPLES_OK) {
            r.n_rows = (uint32_t)PQntuples(res);
            r.n_cols = (uint32_t)PQnfields(res);
        }
    }
    deliver(req, &r);
    PQclear(res);
    if (!c->is_freed) {
        conn_step(c);
    }
}

/* Keep one result of the query in flight. False if it cannot be handled. */
static bool collect(struct pg_conn *c, PGresult *res)
{
    switch (PQresultStatus(res)) {
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        PQclear(res);
        return false;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_BAD_RESPONSE:
        if (c->error == NULL) {
            c->error = res;
        } else {
            PQclear(res);
        }
        return true;
    default:
        PQclear(c->result);
        c->result = res;
        return true;
    }
}

static void busy_io(struct pg_conn *c, uint32_t events)
{
    if ((events & EV_WRITE) != 0) {
        int f = PQflush(c->pg);
        if (f == -1 || (f == 0 && watch(c, EV_READ, false) != 0)) {
            busy_failed(c, -ENOTCONN, PQerrorMessage(c->pg));
            return;
        }
    }
    if (PQconsumeInput(c->pg) == 0) {
        busy_failed(c, -ENOTCONN, PQerrorMessage(c->pg));
        return;
    }
    while (PQisBusy(c->pg) == 0) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) {
            complete(c);
            return;
        }
        if (!collect(c, res)) {
            busy_failed(c, -EPROTO, "COPY is not supported");
            return;
        }
    }
}

static void idle_io(struct pg_conn *c)
{
    if (PQconsumeInput(c->pg) == 0 || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_drop(c, one_line(c, PQerrorMessage(c->pg)));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        PQfreemem(n); /* keel does not LISTEN */
    }
}

static void on_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
    (void)loop;
    struct pg_conn *c = io->data;
    switch (c->state) {
    case PG_CONN_CONNECTING:
        connect_continue(c);
        break;
    case PG_CONN_BUSY:
        busy_io(c, events);
        break;
    case PG_CONN_IDLE:
        idle_io(c);
        break;
    case PG_CONN_CLOSED:
        ev_io_stop(c->loop, &c->io);
        break;
    }
}

/* Run the queue: connect if needed, send the head when idle; keep the timer right. */
static void conn_step(struct pg_conn *c)
{
    if (c->head != NULL && c->state == PG_CONN_CLOSED) {
        connect_start(c);
    } else if (c->head != NULL && c->state == PG_CONN_IDLE) {
        send_head(c);
    }
    if (!c->is_freed) {
        arm_timer(c);
    }
}

/* ------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------ */

struct pg_conn *pg_conn_new(struct ev_loop *loop, const char *name, const char *conninfo,
                            uint32_t timeout_ms)
{
    struct pg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->loop = loop;
    c->name = strdup(name);
    c->conninfo = strdup(conninfo);
    if (c->name == NULL || c->conninfo == NULL) {
        free(c->name);
        free(c->conninfo);
        free(c);
        return NULL;
    }
    c->timeout_ms = timeout_ms;
    c->state = PG_CONN_CLOSED;
    ev_timer_init(&c->timer, on_timer, c, "pg query timeout");
    return c;
}

void pg_conn_set_check(struct pg_conn *c, pg_conn_check_fn check, void *data)
{
    c->check = check;
    c->check_data = data;
}

int pg_query_ms(struct pg_conn *c, const char *sql, uint32_t timeout_ms, pg_query_fn cb, void *data)
{
    if (c->is_freed) {
        return -ECANCELED;
    }
    size_t len = strlen(sql);
    struct pg_req *req = malloc(sizeof(*req) + len + 1);
    if (req == NULL) {
        return -ENOMEM;
    }
    req->next = NULL;
    req->cb = cb;
    req->data = data;
    req->timeout_ms = timeout_ms != 0 ? timeout_ms : c->timeout_ms;
    req->deadline_ms = ev_now_ms(c->loop) + req->timeout_ms;
    memcpy(req->sql, sql, len + 1);
    if (c->tail != NULL) {
        c->tail->next = req;
    } else {
        c->head = req;
    }
    c->tail = req;
    c->n_pending++;
    kick(c);
    return 0;
}

int pg_query(struct pg_conn *c, const char *sql, pg_query_fn cb, void *data)
{
    return pg_query_ms(c, sql, 0, cb, data);
}

const char *pg_result_value(const struct pg_result *r, uint32_t row, uint32_t col)
{
    const PGresult *res = r->_res;
    if (res == NULL || row >= r->n_rows || col >= r->n_cols ||
        PQgetisnull(res, (int)row, (int)col)) {
        return NULL;
    }
    return PQgetvalue(res, (int)row, (int)col);
}

int pg_result_col(const struct pg_result *r, const char *name)
{
    if (r->_res == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < r->n_cols; i++) {
        if (strcmp(PQfname(r->_res, (int)i), name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

void pg_conn_close(struct pg_conn *c)
{
    if (c == NULL || c->is_freed) {
        return;
    }
    ev_timer_stop(c->loop, &c->timer);
    conn_drop(c, "closed by keel");
    fail_list(detach_all(c), -ECANCELED, "connection closed");
}

void pg_conn_free(struct pg_conn *c)
{
    if (c == NULL || c->is_freed) {
        return;
    }
    c->is_freed = true;
    ev_timer_stop(c->loop, &c->timer);
    conn_drop(c, "freed");
    fail_list(detach_all(c), -ECANCELED, "connection freed");
    free(c->name);
    free(c->conninfo);
    c->name = NULL;
    c->conninfo = NULL;
    ev_free_later(c->loop, c); /* a pending event or the kick may still point here */
}

bool pg_conn_is_connected(const struct pg_conn *c)
{
    return c->state == PG_CONN_IDLE || c->state == PG_CONN_BUSY;
}

uint32_t pg_conn_pending(const struct pg_conn *c)
{
    return c->n_pending;
}

char *pg_conn_encrypt_password(struct pg_conn *c, const char *password, const char *user)
{
    if (!pg_conn_is_connected(c)) {
        return NULL;
    }
    /* With the algorithm given, libpq computes locally and sends nothing. */
    char *v = PQencryptPasswordConn(c->pg, password, user, "scram-sha-256");
    if (v == NULL) {
        return NULL;
    }
    char *copy = strdup(v);
    PQfreemem(v);
    return copy;
}
