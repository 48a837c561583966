/* SPDX-License-Identifier: MIT */
/* Unit tests of core/child_output.c: splitting a process's output into log lines (bounds,
 * carriage returns, control characters, a last line without a newline) and reading a
 * real pipe. */
#include <criterion/criterion.h>

#include "core/child_output.c"

#include <fcntl.h>

#define MAX_LINES 16

struct seen {
    char line[MAX_LINES][CHILD_LINE_MAX + 1];
    bool is_cut[MAX_LINES];
    int n;
};

static void on_line(void *data, const char *line, size_t len, bool is_cut)
{
    struct seen *s = data;
    cr_assert_lt(s->n, MAX_LINES);
    cr_assert_leq(len, CHILD_LINE_MAX);
    memcpy(s->line[s->n], line, len);
    s->line[s->n][len] = '\0';
    s->is_cut[s->n] = is_cut;
    s->n++;
}

static void feed_str(struct child_output *o, const char *s)
{
    child_output_feed(o, s, strlen(s));
}

Test(child_output, lines_in_pieces)
{
    struct seen s = {0};
    struct child_output o;
    child_output_init(&o, NULL, on_line, &s);
    feed_str(&o, "hel");
    feed_str(&o, "lo\nwor");
    cr_assert_eq(s.n, 1);
    feed_str(&o, "ld\r\n\n\tx\n");
    cr_assert_eq(s.n, 4);
    cr_assert_str_eq(s.line[0], "hello");
    cr_assert_str_eq(s.line[1], "world");
    cr_assert_str_eq(s.line[2], "");
    cr_assert_str_eq(s.line[3], "\tx");
    cr_assert_not(s.is_cut[0]);
}

Test(child_output, control_characters_are_replaced)
{
    struct seen s = {0};
    struct child_output o;
    child_output_init(&o, NULL, on_line, &s);
    child_output_feed(&o, "a\0b\x1b[31mc\rd\x7f\n", 13);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.line[0], "a?b?[31mc?d?");
}

Test(child_output, long_lines_are_cut_and_the_rest_dropped)
{
    struct seen s = {0};
    struct child_output o;
    child_output_init(&o, NULL, on_line, &s);
    static char big[CHILD_LINE_MAX * 3];
    memset(big, 'x', sizeof(big));
    child_output_feed(&o, big, sizeof(big));
    feed_str(&o, "tail\nnext\n");
    cr_assert_eq(s.n, 2);
    cr_assert_eq(strlen(s.line[0]), CHILD_LINE_MAX);
    cr_assert(s.is_cut[0]);
    cr_assert_str_eq(s.line[1], "next");
    cr_assert_not(s.is_cut[1]);
    /* Exactly CHILD_LINE_MAX bytes then a newline: one cut line, nothing else. */
    struct seen t = {0};
    child_output_init(&o, NULL, on_line, &t);
    child_output_feed(&o, big, CHILD_LINE_MAX);
    feed_str(&o, "\nok\n");
    cr_assert_eq(t.n, 2);
    cr_assert(t.is_cut[0]);
    cr_assert_str_eq(t.line[1], "ok");
}

Test(child_output, reading_a_pipe_and_the_last_line)
{
    struct ev_loop *loop = ev_loop_new();
    struct seen s = {0};
    struct child_output o;
    child_output_init(&o, loop, on_line, &s);
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    cr_assert_eq(child_output_open(&o, fds[0]), 0);
    cr_assert(child_output_is_open(&o));
    cr_assert_eq(write(fds[1], "one\ntwo\nthr", 11), 11);
    child_output_read(&o, 4);
    cr_assert_eq(s.n, 2);
    cr_assert(child_output_is_open(&o));
    cr_assert_eq(write(fds[1], "ee", 2), 2);
    close(fds[1]);
    child_output_read(&o, 4); /* EOF: the last line comes out and the pipe is closed */
    cr_assert_not(child_output_is_open(&o));
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.line[2], "three");
    child_output_close(&o); /* closed already: nothing */
    cr_assert_eq(s.n, 3);
    ev_loop_free(loop);
}
