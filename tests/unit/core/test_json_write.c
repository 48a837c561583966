/* SPDX-License-Identifier: MIT */
/* Unit tests of core/json_write.c: escaping (control bytes, quotes, backslash, DEL), UTF-8
 * passed through, the invalid-UTF-8 and NUL policy (U+FFFD), nesting and its misuses, fixed
 * buffers, numbers, and that json_parse reads back whatever the writer writes. */
#include <criterion/criterion.h>
#include <errno.h>

#include "core/json_write.c"

/* The text of a writer that must have finished well; the writer is released by the caller. */
static const char *text_of(struct json_w *w)
{
    cr_assert_eq(json_w_finish(w), 0, "writer error %d", json_w_finish(w));
    cr_assert_eq(strlen(w->data), w->len);
    return w->data;
}

/* s[0, len) as a top-level JSON string. */
static void expect_string(const char *s, size_t len, const char *want)
{
    struct json_w w;
    json_w_init(&w);
    json_w_strn(&w, s, len);
    cr_assert_str_eq(text_of(&w), want);
    json_w_fini(&w);
}

Test(json_write, escapes)
{
    expect_string("", 0, "\"\"");
    expect_string("abc", 3, "\"abc\"");
    expect_string("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    expect_string("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
    expect_string("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    expect_string("abcdef", 3, "\"abc\"");
}

Test(json_write, utf8_passes_through)
{
    expect_string("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    expect_string("\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7, "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
}

Test(json_write, invalid_utf8_and_nul_become_replacement_characters)
{
    expect_string("a\0b", 3, "\"a\\ufffdb\"");
    expect_string("\xff", 1, "\"\\ufffd\"");
    /* A sequence cut by the end: one replacement per byte. */
    expect_string("ab\xe2\x82", 4, "\"ab\\ufffd\\ufffd\"");
    /* An encoded surrogate and an overlong form are not UTF-8 either. */
    expect_string("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    expect_string("\xc0\xafx", 3, "\"\\ufffd\\ufffdx\"");
    /* A stray continuation byte between valid characters. */
    expect_string("\xc3\xa9\x80\xc3\xa9", 5, "\"\xc3\xa9\\ufffd\xc3\xa9\"");
}

Test(json_write, nesting)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key_str(&w, "name", "web1");
    json_w_key(&w, "servers");
    json_w_begin_array(&w);
    json_w_begin_object(&w);
    json_w_key_bool(&w, "up", true);
    json_w_key_int(&w, "n", -3);
    json_w_end_object(&w);
    json_w_begin_object(&w);
    json_w_end_object(&w);
    json_w_begin_array(&w);
    json_w_end_array(&w);
    json_w_null(&w);
    json_w_uint(&w, UINT64_MAX);
    json_w_end_array(&w);
    json_w_key_num(&w, "lag", 1.5, 3);
    json_w_key_str(&w, "none", NULL);
    json_w_key(&w, "k\"ey");
    json_w_bool(&w, false);
    json_w_end_object(&w);
    cr_assert_str_eq(text_of(&w), "{\"name\":\"web1\",\"servers\":[{\"up\":true,\"n\":-3},{},[],"
                                  "null,18446744073709551615],\"lag\":1.500,\"none\":null,"
                                  "\"k\\\"ey\":false}");
    json_w_fini(&w);
}

Test(json_write, scalars_at_top_level)
{
    struct json_w w;
    json_w_init(&w);
    json_w_int(&w, INT64_MIN);
    cr_assert_str_eq(text_of(&w), "-9223372036854775808");
    json_w_fini(&w);
    json_w_init(&w);
    json_w_num(&w, 0.0 / 0.0, 2);
    cr_assert_str_eq(text_of(&w), "null");
    json_w_fini(&w);
    json_w_init(&w);
    json_w_num(&w, 2.25, 0);
    cr_assert_str_eq(text_of(&w), "2");
    json_w_fini(&w);
}

/* Each sequence of calls is a misuse: -EINVAL, and nothing after it is written. */
Test(json_write, misuse_is_an_error)
{
    struct json_w w;

    json_w_init(&w);
    cr_assert_eq(json_w_finish(&w), -EINVAL, "nothing written is incomplete");
    json_w_begin_array(&w);
    cr_assert_eq(json_w_finish(&w), -EINVAL, "an open container is incomplete");
    json_w_key(&w, "k"); /* a key in an array */
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_str(&w, "v"); /* a value where a key is due */
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key(&w, "a");
    json_w_key(&w, "b"); /* two keys */
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key(&w, "a");
    json_w_end_object(&w); /* a key without its value */
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_end_array(&w); /* the wrong end */
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    json_w_end_object(&w); /* nothing to end */
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    json_w_int(&w, 1);
    json_w_int(&w, 2); /* a second top-level value */
    cr_assert_eq(json_w_finish(&w), -EINVAL);
    cr_assert_str_eq(w.data, "1");
    size_t len;
    cr_assert_null(json_w_take(&w, &len));
    cr_assert_null(w.data);
}

Test(json_write, depth_limit)
{
    struct json_w w;
    json_w_init(&w);
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        json_w_begin_array(&w);
    }
    cr_assert_eq(w.err, 0);
    json_w_begin_array(&w);
    cr_assert_eq(w.err, -EINVAL);
    json_w_fini(&w);

    json_w_init(&w);
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        json_w_begin_array(&w);
    }
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        json_w_end_array(&w);
    }
    struct errbuf eb = {{0}};
    struct json_doc *doc = json_parse(text_of(&w), w.len, &eb);
    cr_assert_not_null(doc, "%s", eb.msg);
    json_free(doc);
    json_w_fini(&w);
}

Test(json_write, fixed_buffer)
{
    char buf[16];
    struct json_w w;
    /* ["a\n"] is 7 bytes and its NUL. */
    for (size_t size = 0; size <= 8; size++) {
        memset(buf, 'X', sizeof(buf));
        json_w_init_fixed(&w, buf, size);
        json_w_begin_array(&w);
        json_w_str(&w, "a\n");
        json_w_end_array(&w);
        if (size == 8) {
            cr_assert_eq(json_w_finish(&w), 0);
            cr_assert_str_eq(buf, "[\"a\\n\"]");
        } else {
            cr_assert_eq(json_w_finish(&w), -ENOSPC, "size %zu", size);
        }
        cr_assert_eq(buf[size], 'X', "size %zu: wrote past the buffer", size);
        size_t len;
        cr_assert_null(json_w_take(&w, &len), "a fixed buffer is not handed over");
        json_w_fini(&w); /* does not free the caller's buffer */
    }
}

Test(json_write, take_hands_over_the_text)
{
    struct json_w w;
    json_w_init(&w);
    json_w_begin_array(&w);
    for (int i = 0; i < 1000; i++) {
        json_w_str(&w, "grow past the first allocation");
    }
    json_w_end_array(&w);
    size_t len = 0;
    char *text = json_w_take(&w, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    cr_assert_null(w.data);
    cr_assert_eq(w.len, 0);
    free(text);
    json_w_fini(&w);
}

/* Every byte value, in every string context, reads back: valid UTF-8 as it was, the rest as
 * U+FFFD. */
Test(json_write, output_parses_back)
{
    char in[400];
    size_t n = 0;
    for (int c = 0; c < 0x100; c++) {
        in[n++] = (char)c;
    }
    memcpy(in + n, "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 18);
    n += 18;
    struct json_w w;
    json_w_init(&w);
    json_w_begin_object(&w);
    json_w_key(&w, "\x01key\xff");
    json_w_strn(&w, in, n);
    json_w_key(&w, "list");
    json_w_begin_array(&w);
    json_w_strn(&w, in + 1, 0x7f);
    json_w_end_array(&w);
    json_w_end_object(&w);
    struct errbuf eb = {{0}};
    struct json_doc *doc = json_parse(text_of(&w), w.len, &eb);
    cr_assert_not_null(doc, "%s", eb.msg);
    const struct json_value *root = json_root(doc);
    cr_assert_str_eq(json_key_at(root, 0), "\x01key\xef\xbf\xbd");
    const char *s = json_str(json_at(root, 0));
    /* NUL, then 1..0x7f as they are, then 128 bytes >= 0x80 that are each U+FFFD. */
    cr_assert_eq(memcmp(s, "\xef\xbf\xbd", 3), 0);
    cr_assert_eq(memcmp(s + 3, in + 1, 0x7f), 0);
    for (int i = 0; i < 0x80; i++) {
        cr_assert_eq(memcmp(s + 3 + 0x7f + 3 * i, "\xef\xbf\xbd", 3), 0, "byte %d", 0x80 + i);
    }
    cr_assert_eq(memcmp(s + 3 + 0x7f + 3 * 0x80, in + 0x100, 18), 0);
    cr_assert_eq(memcmp(json_str(json_at(json_get(root, "list"), 0)), in + 1, 0x7f), 0);
    json_free(doc);
    json_w_fini(&w);
}
