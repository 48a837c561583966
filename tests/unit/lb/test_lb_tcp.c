/* SPDX-License-Identifier: MIT */
/* Unit tests of src/lb/lb_tcp.c (included, to reach its statics): the TCP session's one
 * transition function. connecting -> relay -> closed is the path (connecting may close at
 * once); going back from relay, or leaving closed, is refused as core/fsm.h says: the state
 * stays, keel_fsm_illegal_transitions_total{machine="tcp"} counts it and an error line names
 * the connection, the move and the reason. KEEL_FSM_STRICT=0 for these tests: the suites
 * (and an ASan build) would abort instead, by design. */
#include <criterion/criterion.h>

#include "lb/lb_tcp.c"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FSM_LOG_NAME "lb-tcp"
#include "../fsm_log.h"

TestSuite(lb_tcp, .init = fsm_log_setup, .fini = fsm_log_teardown);

static struct tcp_conn conn_in(enum tcp_state state, int fd)
{
    struct tcp_conn t;
    memset(&t, 0, sizeof(t));
    t.cx.fd = fd;
    t.state = state;
    return t;
}

Test(lb_tcp, the_path_is_legal)
{
    struct tcp_conn t = conn_in(TCP_STATE_CONNECTING, 5);
    tcp_set_state(&t, TCP_STATE_RELAY, "connected");
    cr_assert_eq(t.state, TCP_STATE_RELAY);
    tcp_set_state(&t, TCP_STATE_CLOSED, "client closed");
    cr_assert_eq(t.state, TCP_STATE_CLOSED);
    t = conn_in(TCP_STATE_CONNECTING, 5);
    tcp_set_state(&t, TCP_STATE_CLOSED, "no server");
    cr_assert_eq(t.state, TCP_STATE_CLOSED);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_TCP), 0);
    cr_assert(strstr(fsm_log_text(), "illegal") == NULL, "%s", fsm_log_text());
}

Test(lb_tcp, back_from_relay_is_refused_counted_and_logged)
{
    cr_assert_not(fsm_is_strict());
    struct tcp_conn t = conn_in(TCP_STATE_RELAY, 9);
    tcp_set_state(&t, TCP_STATE_CONNECTING, "retry");
    cr_assert_eq(t.state, TCP_STATE_RELAY, "the state stays");
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_TCP), 1);
    cr_assert(strstr(fsm_log_text(), "[error] ") != NULL, "%s", fsm_log_text());
    cr_assert(strstr(fsm_log_text(), "tcp: conn 9: illegal transition relay -> connecting (retry), "
                                     "refused: the state stays") != NULL,
              "%s", fsm_log_text());
    tcp_set_state(&t, TCP_STATE_RELAY, "relay twice");
    cr_assert_eq(t.state, TCP_STATE_RELAY);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_TCP), 2);
}

Test(lb_tcp, leaving_closed_is_refused_counted_and_logged)
{
    struct tcp_conn t = conn_in(TCP_STATE_CLOSED, 11);
    tcp_set_state(&t, TCP_STATE_RELAY, "late connect");
    cr_assert_eq(t.state, TCP_STATE_CLOSED, "the state stays");
    tcp_set_state(&t, TCP_STATE_CONNECTING, "late retry");
    tcp_set_state(&t, TCP_STATE_CLOSED, "closed twice");
    cr_assert_eq(t.state, TCP_STATE_CLOSED);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_TCP), 3);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_HTTP), 0, "counted under its own machine");
    cr_assert(strstr(fsm_log_text(),
                     "tcp: conn 11: illegal transition closed -> relay (late connect)") != NULL,
              "%s", fsm_log_text());
    cr_assert(strstr(fsm_log_text(), "closed -> closed (closed twice)") != NULL, "%s",
              fsm_log_text());
}
