/* SPDX-License-Identifier: MIT */
/* Asynchronous PostgreSQL queries on the event loop: one libpq connection, queries run one
 * at a time in the order given, each result delivered to a callback. Only libpq's
 * non-blocking API is used (PQconnectStart/PQconnectPoll, PQsendQuery, PQflush,
 * PQconsumeInput, PQisBusy, PQgetResult) with PQsocket watched by an ev_io, so nothing here
 * ever blocks the loop. The connection is opened on demand (by the first query, and again
 * after it was lost) and every query has a deadline. What the queries mean is the caller's;
 * the status queries keel needs are in pg_status.h. */
#ifndef KEEL_DB_PG_QUERY_H
#define KEEL_DB_PG_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/ev.h"

struct pg_conn;

/* What became of a query. err is one of:
 *   0                the query ran (rows, possibly none, and cmd_status);
 *   -EREMOTEIO       the server reported an error: msg and sqlstate say which;
 *   -ENOTCONN        no connection: connecting failed, or the connection was lost while
 *                    the query was in flight (msg is libpq's reason);
 *   -KEEL_ETIMEDOUT  the deadline passed (the connection was closed if the query was in
 *                    flight: with the libpq of PostgreSQL 15 a cancel request would
 *                    block; the server finishes or abandons the statement on its own);
 *   -ECANCELED       pg_conn_free was called before the query ran or finished;
 *   -EPROTO          a result keel does not handle (COPY): the connection was closed.
 * For a string of several statements, the result is the last one's, or the first error. */
struct pg_result {
    int err;
    const char *msg;        /* "" on success; one line */
    const char *sqlstate;   /* five characters for a server error, else "" */
    const char *cmd_status; /* "INSERT 0 1", "SELECT 2", ... ("" on error) */
    uint32_t n_rows;
    uint32_t n_cols;
    void *_res; /* the PGresult (private) */
};

/* The value at row, col as text, NULL for an SQL NULL or out of range. Valid during the
 * callback only. */
const char *pg_result_value(const struct pg_result *r, uint32_t row, uint32_t col);
/* The index of the column named name, or -1. */
int pg_result_col(const struct pg_result *r, const char *name);

/* A query's callback. r and everything it points to are valid during the call only. It
 * may call pg_query (the new query runs after those already queued) and pg_conn_free. */
typedef void (*pg_query_fn)(void *data, const struct pg_result *r);

/* Completion of a multi-step operation (pg_status.h, pg_inst.h): rc is 0 or a negative
 * code, reason a human-readable one-line explanation ("" on success), valid during the
 * call. */
typedef void (*pg_done_fn)(void *data, int rc, const char *reason);

/* A connection described by conninfo (libpq's "key=value ..." or URI; copied), named name
 * in logs ("pg main/admin"; copied). Queries that give no timeout get timeout_ms, counted
 * from the call to pg_query and covering the connection too. Nothing happens until the
 * first query. host must be an IP address or a socket directory: a host name would make
 * libpq resolve it with a blocking getaddrinfo. NULL on OOM. */
struct pg_conn *pg_conn_new(struct ev_loop *loop, const char *name, const char *conninfo,
                            uint32_t timeout_ms);

/* A check run before every connection attempt (the socket directory's, pg_sockdir.h): a
 * negative return fails that attempt with eb's reason, and the queries waiting for it. */
typedef int (*pg_conn_check_fn)(void *data, struct errbuf *eb);
void pg_conn_set_check(struct pg_conn *c, pg_conn_check_fn check, void *data);

/* Queue sql (copied; it may hold several statements) with the connection's timeout. cb
 * gets exactly one call, always from the loop and never from within pg_query. Returns 0,
 * -ENOMEM, or -ECANCELED once pg_conn_free was called (then cb is never called). Does not
 * block. */
int pg_query(struct pg_conn *c, const char *sql, pg_query_fn cb, void *data) KEEL_MUST_CHECK;
/* The same with its own timeout (0: the connection's). */
int pg_query_ms(struct pg_conn *c, const char *sql, uint32_t timeout_ms, pg_query_fn cb,
                void *data) KEEL_MUST_CHECK;

/* Close the connection now (queries queued or in flight fail with -ECANCELED, from this
 * call); the next query opens a new one. For callers that know the server went away. */
void pg_conn_close(struct pg_conn *c);

/* Free c. Queries still queued or in flight get their callback now, from within this call,
 * with -ECANCELED: a caller freeing c from its own destructor must expect that. Safe from
 * within a callback of c. NULL allowed. */
void pg_conn_free(struct pg_conn *c);

/* Whether a connection is established (no query needs to wait for one). */
bool pg_conn_is_connected(const struct pg_conn *c);

/* Queries queued or in flight. */
uint32_t pg_conn_pending(const struct pg_conn *c);

/* The SCRAM-SHA-256 verifier of password for role user ("SCRAM-SHA-256$4096:..."), computed
 * by libpq on this side (so that the password never travels nor reaches a server log).
 * Needs an established connection (for libpq's encoding); returns a malloc'd string, or
 * NULL when not connected or on failure. CPU only (a few ms), no I/O. */
char *pg_conn_encrypt_password(struct pg_conn *c, const char *password, const char *user);

#endif
