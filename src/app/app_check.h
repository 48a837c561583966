/* SPDX-License-Identifier: MIT */
/* The health check of one supervised application process: every interval, a non-blocking
 * TCP connect to the process's address or, for HTTP, one request of the asynchronous HTTP
 * client (http/http_client.h) whose status counts, all bounded by the check's timeout. It
 * reports each probe's result; rise/fall counting and what health means are the
 * supervisor's (app_supervisor.c). Runs on the control thread's loop and never blocks. The
 * load balancer's checks (lb/lb_check.c) use the same client for servers of a
 * configuration generation. */
#ifndef KEEL_APP_APP_CHECK_H
#define KEEL_APP_APP_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/conf-t.h"
#include "core/ev.h"

struct app_check;

/* A probe's result: ok, or not with a short reason ("connect: Connection refused",
 * "status 500", "timeout"). reason is valid during the call only. */
typedef void (*app_check_result_fn)(void *data, bool is_ok, const char *reason);

/* A checker for the process at sa (a wildcard address is probed on loopback), following
 * conf (type, method, path, host, status range, interval, timeout; borrowed for the
 * checker's life). host is the Host header when conf->host is empty. Idle until
 * app_check_start. NULL on OOM. */
struct app_check *app_check_new(struct ev_loop *loop, const struct conf_check *conf,
                                const struct sockaddr *sa, socklen_t salen, const char *host,
                                app_check_result_fn on_result, void *data);

/* Probe first after first_ms, then every interval, each probe reported through on_result
 * (never from inside this call). Restarting a started checker re-arms it. */
void app_check_start(struct app_check *c, uint64_t first_ms);

/* Stop probing (a probe in flight is abandoned, nothing is reported). Safe on NULL. */
void app_check_stop(struct app_check *c);

/* Stop and free (the memory goes at the end of the loop iteration). NULL allowed. */
void app_check_free(struct app_check *c);

#endif
