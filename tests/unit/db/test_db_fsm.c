/* SPDX-License-Identifier: MIT */
/* The db node's state machine (src/db/db_fsm.c): every one of the 18 x 18 moves is legal or
 * illegal as this file says (written out here, apart from the table), an illegal one changes
 * nothing, the fence memory, the roles and busy flags, and the diagram in
 * docs/internals/db_fsm.md is the table's. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "db/db_fsm.c"

/* The legal moves, "from>to", by state name. */
static const char *const legal[] = {
    /* a turn's decision: any settled state to any other (INIT only leaves) */
    "init>idle",
    "init>candidate",
    "init>primary",
    "init>replica",
    "init>fenced",
    "idle>candidate",
    "idle>primary",
    "idle>replica",
    "idle>fenced",
    "candidate>idle",
    "candidate>primary",
    "candidate>replica",
    "candidate>fenced",
    "primary>idle",
    "primary>candidate",
    "primary>replica",
    "primary>fenced",
    "replica>idle",
    "replica>candidate",
    "replica>primary",
    "replica>fenced",
    "fenced>idle",
    "fenced>candidate",
    "fenced>primary",
    "fenced>replica",
    /* operations */
    "idle>bootstrapping",
    "idle>cloning",
    "idle>starting",
    "idle>following",
    "replica>following",
    "fenced>following",
    "idle>unfollowing",
    "candidate>unfollowing",
    "replica>unfollowing",
    "fenced>unfollowing",
    "candidate>promoting",
    "idle>fencing",
    "candidate>fencing",
    "primary>fencing",
    "replica>fencing",
    "fenced>fencing",
    "bootstrapping>idle",
    "cloning>idle",
    "starting>idle",
    "following>idle",
    "unfollowing>idle",
    "promoting>candidate",
    "fencing>fenced",
    /* switchover */
    "primary>switch_stopping",
    "switch_stopping>switch_waiting",
    "switch_stopping>idle",
    "switch_waiting>switch_handed",
    "switch_waiting>starting",
    "switch_waiting>idle",
    "switch_handed>idle",
    /* stop */
    "init>stopping",
    "idle>stopping",
    "bootstrapping>stopping",
    "cloning>stopping",
    "starting>stopping",
    "candidate>stopping",
    "promoting>stopping",
    "primary>stopping",
    "replica>stopping",
    "following>stopping",
    "unfollowing>stopping",
    "fencing>stopping",
    "fenced>stopping",
    "switch_stopping>stopping",
    "switch_waiting>stopping",
    "switch_handed>stopping",
    "stopping>stopped",
};

static bool expected_legal(enum db_node_state from, enum db_node_state to)
{
    char key[64];
    snprintf(key, sizeof(key), "%s>%s", db_node_state_name(from), db_node_state_name(to));
    for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
        if (strcmp(legal[i], key) == 0) {
            return true;
        }
    }
    return false;
}

Test(db_fsm, names_are_unique_and_complete)
{
    for (unsigned s = 0; s < DB_NODE_STATE_COUNT; s++) {
        const char *name = db_node_state_name((enum db_node_state)s);
        cr_assert_not_null(name);
        cr_assert_str_neq(name, "?");
        for (unsigned t = s + 1; t < DB_NODE_STATE_COUNT; t++) {
            cr_assert_str_neq(name, db_node_state_name((enum db_node_state)t));
        }
        /* the log and the diagram use the names as words: no space, no colon, no dash */
        cr_assert_eq(strpbrk(name, " :-"), NULL, "%s", name);
    }
    cr_assert_str_eq(db_node_state_name((enum db_node_state)DB_NODE_STATE_COUNT), "?");
}

Test(db_fsm, every_move_is_legal_or_illegal_as_written)
{
    size_t n_legal = 0;
    for (unsigned f = 0; f < DB_NODE_STATE_COUNT; f++) {
        for (unsigned t = 0; t < DB_NODE_STATE_COUNT; t++) {
            enum db_node_state from = (enum db_node_state)f, to = (enum db_node_state)t;
            struct db_fsm fsm;
            db_fsm_init(&fsm, 1);
            fsm.state = from;
            bool want = expected_legal(from, to);
            cr_assert_eq(db_fsm_is_legal(from, to), want, "%s -> %s", db_node_state_name(from),
                         db_node_state_name(to));
            int rc = db_fsm_set_state(&fsm, to, 42);
            if (want) {
                n_legal++;
                cr_assert_eq(rc, 0);
                cr_assert_eq(fsm.state, to);
                cr_assert_eq(fsm.state_since_ms, 42);
                cr_assert_eq(fsm.n_transitions, 1);
                cr_assert_eq(fsm.n_entered[to], 1 + (to == DB_NODE_INIT));
                cr_assert_not_null(db_fsm_comment(from, to));
            } else {
                cr_assert_eq(rc, -EPERM, "%s -> %s", db_node_state_name(from),
                             db_node_state_name(to));
                cr_assert_eq(fsm.state, from, "refused: the state stays");
                cr_assert_eq(fsm.state_since_ms, 1);
                cr_assert_eq(fsm.n_transitions, 0);
                cr_assert_null(db_fsm_comment(from, to));
            }
        }
    }
    cr_assert_eq(n_legal, sizeof(legal) / sizeof(legal[0]), "a legal move listed twice?");
}

Test(db_fsm, stopped_is_final_and_stopping_reachable_from_every_other_state)
{
    for (unsigned t = 0; t < DB_NODE_STATE_COUNT; t++) {
        cr_assert_not(db_fsm_is_legal(DB_NODE_STOPPED, (enum db_node_state)t));
    }
    for (unsigned f = 0; f < DB_NODE_STATE_COUNT; f++) {
        bool is_stop = f == DB_NODE_STOPPING || f == DB_NODE_STOPPED;
        cr_assert_eq(db_fsm_is_legal((enum db_node_state)f, DB_NODE_STOPPING), !is_stop);
    }
}

Test(db_fsm, every_operation_has_an_end_that_the_table_allows)
{
    for (unsigned s = 0; s < DB_NODE_STATE_COUNT; s++) {
        enum db_node_state st = (enum db_node_state)s;
        enum db_node_state after = db_node_state_after_op(st);
        if (db_node_state_is_busy(st)) {
            cr_assert(db_fsm_is_legal(st, after), "%s -> %s", db_node_state_name(st),
                      db_node_state_name(after));
            cr_assert_not(db_node_state_is_busy(after));
        } else {
            cr_assert_eq(after, st);
        }
    }
    cr_assert_eq(db_node_state_after_op(DB_NODE_PROMOTING), DB_NODE_CANDIDATE);
    cr_assert_eq(db_node_state_after_op(DB_NODE_FENCING), DB_NODE_FENCED);
    cr_assert_eq(db_node_state_after_op(DB_NODE_STOPPING), DB_NODE_STOPPED);
    cr_assert_eq(db_node_state_after_op(DB_NODE_STARTING), DB_NODE_IDLE);
}

Test(db_fsm, roles_and_busy_flags)
{
    cr_assert_eq(db_node_state_role(DB_NODE_PRIMARY), DB_ROLE_PRIMARY);
    cr_assert_eq(db_node_state_role(DB_NODE_REPLICA), DB_ROLE_REPLICA);
    cr_assert_eq(db_node_state_role(DB_NODE_CANDIDATE), DB_ROLE_CANDIDATE);
    cr_assert_eq(db_node_state_role(DB_NODE_PROMOTING), DB_ROLE_CANDIDATE);
    cr_assert_eq(db_node_state_role(DB_NODE_FENCED), DB_ROLE_FENCED);
    cr_assert_eq(db_node_state_role(DB_NODE_FENCING), DB_ROLE_FENCED);
    /* only PRIMARY shows the role that takes writes */
    for (unsigned s = 0; s < DB_NODE_STATE_COUNT; s++) {
        cr_assert_eq(db_node_state_role((enum db_node_state)s) == DB_ROLE_PRIMARY,
                     s == DB_NODE_PRIMARY);
    }
    const enum db_node_state busy[] = {
        DB_NODE_BOOTSTRAPPING, DB_NODE_CLONING,     DB_NODE_STARTING,
        DB_NODE_PROMOTING,     DB_NODE_FOLLOWING,   DB_NODE_UNFOLLOWING,
        DB_NODE_FENCING,       DB_NODE_SW_STOPPING, DB_NODE_STOPPING};
    size_t n_busy = 0;
    for (unsigned s = 0; s < DB_NODE_STATE_COUNT; s++) {
        n_busy += db_node_state_is_busy((enum db_node_state)s);
    }
    cr_assert_eq(n_busy, sizeof(busy) / sizeof(busy[0]));
    for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++) {
        cr_assert(db_node_state_is_busy(busy[i]));
    }
}

Test(db_fsm, state_of_role)
{
    cr_assert_eq(db_node_state_of_role(DB_ROLE_UNKNOWN, false), DB_NODE_IDLE);
    cr_assert_eq(db_node_state_of_role(DB_ROLE_PRIMARY, true), DB_NODE_PRIMARY);
    cr_assert_eq(db_node_state_of_role(DB_ROLE_CANDIDATE, true), DB_NODE_CANDIDATE);
    cr_assert_eq(db_node_state_of_role(DB_ROLE_FENCED, false), DB_NODE_FENCED);
    cr_assert_eq(db_node_state_of_role(DB_ROLE_REPLICA, false), DB_NODE_REPLICA);
    cr_assert_eq(db_node_state_of_role(DB_ROLE_REPLICA, true), DB_NODE_FENCED,
                 "a fenced replica stays fenced");
    for (int r = DB_ROLE_UNKNOWN; r <= DB_ROLE_FENCED; r++) {
        cr_assert_eq(db_node_state_role(db_node_state_of_role((enum db_role)r, false)), r);
    }
}

static void go(struct db_fsm *fsm, enum db_node_state to, uint64_t now)
{
    cr_assert_eq(db_fsm_set_state(fsm, to, now), 0, "-> %s", db_node_state_name(to));
}

Test(db_fsm, the_fence_is_remembered_until_a_promotion_or_a_leader_to_follow)
{
    struct db_fsm f;
    db_fsm_init(&f, 0);
    go(&f, DB_NODE_PRIMARY, 1);
    cr_assert_not(f.is_fenced);
    go(&f, DB_NODE_FENCING, 5);
    cr_assert(f.is_fenced);
    cr_assert_eq(f.fenced_at_ms, 5);
    go(&f, DB_NODE_FENCED, 6);
    /* PostgreSQL crashes and restarts: still fenced */
    go(&f, DB_NODE_IDLE, 7);
    go(&f, DB_NODE_STARTING, 8);
    go(&f, DB_NODE_IDLE, 9);
    cr_assert(f.is_fenced);
    cr_assert_eq(db_node_state_of_role(DB_ROLE_REPLICA, f.is_fenced), DB_NODE_FENCED);
    go(&f, DB_NODE_FENCED, 10);
    go(&f, DB_NODE_CANDIDATE, 11);
    cr_assert(f.is_fenced, "competing is not being promoted");
    go(&f, DB_NODE_PROMOTING, 12);
    cr_assert_not(f.is_fenced);
    cr_assert_eq(f.fenced_at_ms, 5);
    go(&f, DB_NODE_CANDIDATE, 13);
    go(&f, DB_NODE_PRIMARY, 14);
    /* fenced again, then a leader to follow lifts it */
    go(&f, DB_NODE_FENCING, 20);
    go(&f, DB_NODE_FENCED, 21);
    go(&f, DB_NODE_FOLLOWING, 22);
    cr_assert_not(f.is_fenced);
    go(&f, DB_NODE_IDLE, 23);
    go(&f, DB_NODE_FENCING, 30);
    go(&f, DB_NODE_FENCED, 31);
    go(&f, DB_NODE_IDLE, 32);
    go(&f, DB_NODE_CLONING, 33);
    cr_assert_not(f.is_fenced);
    cr_assert_eq(f.n_entered[DB_NODE_FENCING], 3);
    cr_assert_eq(f.n_transitions, 19);
}

Test(db_fsm, a_switchover_and_a_stop)
{
    struct db_fsm f;
    db_fsm_init(&f, 0);
    go(&f, DB_NODE_IDLE, 1);
    go(&f, DB_NODE_BOOTSTRAPPING, 2);
    go(&f, DB_NODE_IDLE, 3);
    go(&f, DB_NODE_PRIMARY, 4);
    go(&f, DB_NODE_SW_STOPPING, 5);
    go(&f, DB_NODE_SW_WAITING, 6);
    go(&f, DB_NODE_SW_HANDED, 7);
    go(&f, DB_NODE_IDLE, 8);
    go(&f, DB_NODE_FOLLOWING, 9);
    go(&f, DB_NODE_IDLE, 10);
    go(&f, DB_NODE_REPLICA, 11);
    go(&f, DB_NODE_STOPPING, 12);
    go(&f, DB_NODE_STOPPED, 13);
    cr_assert_eq(db_node_state_role(f.state), DB_ROLE_UNKNOWN);
}

/* ------------------------------------------------------------------------------------------
 * The diagram in the docs is db_fsm_mermaid's output
 * ------------------------------------------------------------------------------------------ */

Test(db_fsm, docs_diagram_is_the_tables)
{
    static char want[32768];
    size_t n = db_fsm_mermaid(want, sizeof(want));
    cr_assert_lt(n, sizeof(want));
    FILE *f = fopen("docs/internals/db_fsm.md", "r");
    cr_assert_not_null(f, "run from the repository root");
    static char doc[65536];
    size_t len = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[len] = '\0';
    const char *open = strstr(doc, "```mermaid\n");
    cr_assert_not_null(open, "docs/internals/db_fsm.md has no mermaid block");
    open += strlen("```mermaid\n");
    const char *close = strstr(open, "```");
    cr_assert_not_null(close);
    bool is_same = (size_t)(close - open) == n && memcmp(open, want, n) == 0;
    if (!is_same) {
        /* Print the block to paste in, so a table change is one copy away from its docs. */
        fprintf(stderr, "docs/internals/db_fsm.md: the mermaid block should be:\n%s", want);
    }
    cr_assert(is_same, "the diagram in docs/internals/db_fsm.md is not the table's");
}

Test(db_fsm, mermaid_reports_a_cut)
{
    char small[64];
    size_t n = db_fsm_mermaid(small, sizeof(small));
    cr_assert_gt(n, sizeof(small));
    cr_assert_eq(strlen(small), sizeof(small) - 1);
}
