/* SPDX-License-Identifier: MIT */
/* The guestbook of the built-in demo application (`keel demo-app`): GET /guestbook (an HTML
 * page: a form and the latest posts) and POST /guestbook (a urlencoded form: name, message),
 * with JSON variants (GET /guestbook.json; POST with Accept: application/json). Posts are
 * written through the database's write port and read through its read port (the lb nodes
 * route them to the primary and to a replica), and every answer says which database node
 * served it. The database comes from the environment:
 *
 *   KEEL_DB_WRITE     IP:PORT[,IP:PORT...]  where writes go (libpq tries them in turn)
 *   KEEL_DB_READ      IP:PORT[,IP:PORT...]  where reads go
 *   KEEL_DB_NAME      the database
 *   KEEL_DB_USER      the role
 *   KEEL_DB_PASSWORD  its password
 *
 * Without them the guestbook answers 503. Queries run on two connections of db/pg_query.h
 * (one for writes, one for reads), opened on demand and again after a failure; nothing
 * here blocks the loop. This file owns the guestbook's SQL, pages and errors, not the HTTP
 * connection (demo_app.c). */
#ifndef KEEL_DEMO_DEMO_GUESTBOOK_H
#define KEEL_DEMO_DEMO_GUESTBOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/ev.h"
#include "http/http_parse.h"

#define GUESTBOOK_BODY_MAX 16384 /* a larger POST body gets 413 (demo_app.c checks it) */
#define GUESTBOOK_NAME_MAX 64    /* characters */
#define GUESTBOOK_MESSAGE_MAX 1000
#define GUESTBOOK_LIST_MAX 20 /* posts on a page */

struct guestbook;
struct gb_call;

/* One request for the guestbook, as the HTTP side parsed it. Every pointer is borrowed for
 * the duration of demo_guestbook_serve only (it copies what it keeps). */
struct gb_request {
    enum http_method method;
    bool is_json_path;        /* /guestbook.json rather than /guestbook */
    bool accepts_json;        /* the Accept header names application/json */
    const char *query;        /* after the '?', without it; NULL: none */
    size_t query_len;         /* bytes at query */
    const char *content_type; /* the Content-Type value; NULL: none */
    size_t content_type_len;  /* bytes at content_type */
    const char *body;         /* the whole request body (POST) */
    size_t body_len;          /* bytes at body */
    const char *web;          /* the web node that forwarded it (X-Served-By), "" if none */
};

/* The answer. Valid during the callback only. */
struct gb_reply {
    int status;
    const char *content_type;
    const char *headers; /* extra header lines, each ending in CRLF ("" when none) */
    const char *body;
    size_t len;
};

/* Receives the answer of a request. Called exactly once per demo_guestbook_serve that returned
 * 0 and was not cancelled, from the loop, never from within demo_guestbook_serve. */
typedef void (*gb_reply_fn)(void *data, const struct gb_reply *reply);

/* The guestbook of app node node (copied), configured from the environment (see above);
 * prints one line on stderr saying which database it uses or why it is off. NULL on OOM.
 * No I/O until the first request. */
struct guestbook *demo_guestbook_new(struct ev_loop *loop, const char *node);

/* Free g and its connections; calls still pending get no callback. NULL allowed. */
void demo_guestbook_free(struct guestbook *g);

/* Start answering rq. On 0, cb(data, reply) follows later and *call identifies the request
 * until then (for demo_guestbook_cancel); on -ENOMEM nothing was started (the caller answers
 * 503). Never blocks. */
int demo_guestbook_serve(struct guestbook *g, const struct gb_request *rq, gb_reply_fn cb,
                         void *data, struct gb_call **call) KEEL_MUST_CHECK;

/* The caller is gone (its connection closed): cb will not be called; the call's memory is
 * released once its query finishes. */
void demo_guestbook_cancel(struct gb_call *call);

#endif
