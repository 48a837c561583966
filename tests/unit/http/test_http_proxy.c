/* SPDX-License-Identifier: MIT */
/* Unit tests of src/http/http_proxy.c (included, to reach its statics): the client
 * connection's one transition function refuses to leave closed, the one final state, as
 * core/fsm.h says: the state stays, keel_fsm_illegal_transitions_total{machine="http"} counts
 * it and an error line names the connection, the move and the reason. KEEL_FSM_STRICT=0 for
 * these tests: the suites (and an ASan build) would abort instead, by design. */
#include <criterion/criterion.h>

#include "http/http_proxy.c"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FSM_LOG_NAME "http-proxy"
#include "../fsm_log.h"

TestSuite(http_proxy, .init = fsm_log_setup, .fini = fsm_log_teardown);

Test(http_proxy, state_names_cover_every_state)
{
    cr_assert_eq(sizeof(hp_state_names) / sizeof(hp_state_names[0]), HP_STATE_CLOSED + 1);
    cr_assert_str_eq(hp_state_names[HP_STATE_CLOSED], "closed");
}

Test(http_proxy, leaving_closed_is_refused_counted_and_logged)
{
    cr_assert_not(fsm_is_strict());
    struct hp_conn c;
    memset(&c, 0, sizeof(c));
    c.xp.fd = 7;
    c.state = HP_STATE_CLOSED;
    uint64_t before = fsm_illegal_count(FSM_MACHINE_HTTP);
    hp_conn_set_state(&c, HP_STATE_IDLE, "keep-alive");
    cr_assert_eq(c.state, HP_STATE_CLOSED, "the state stays");
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_HTTP), before + 1);
    cr_assert(strstr(fsm_log_text(), "[error] ") != NULL, "%s", fsm_log_text());
    cr_assert(strstr(fsm_log_text(),
                     "http: conn 7: illegal transition closed -> idle (keep-alive), "
                     "refused: the state stays") != NULL,
              "%s", fsm_log_text());
    /* closed -> closed (a second close) is refused as well */
    hp_conn_set_state(&c, HP_STATE_CLOSED, "closed twice");
    cr_assert_eq(c.state, HP_STATE_CLOSED);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_HTTP), before + 2);
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_TCP), 0, "counted under its own machine");
}

Test(http_proxy, every_other_state_may_move)
{
    uint64_t before = fsm_illegal_count(FSM_MACHINE_HTTP);
    struct hp_conn c;
    memset(&c, 0, sizeof(c));
    c.xp.fd = 8;
    for (int from = HP_STATE_IDLE; from < HP_STATE_CLOSED; from++) {
        c.state = (enum hp_state)from;
        hp_conn_set_state(&c, HP_STATE_CLOSED, "test");
        cr_assert_eq(c.state, HP_STATE_CLOSED, "%s -> closed", hp_state_names[from]);
    }
    cr_assert_eq(fsm_illegal_count(FSM_MACHINE_HTTP), before);
    cr_assert(strstr(fsm_log_text(), "illegal") == NULL, "%s", fsm_log_text());
}
