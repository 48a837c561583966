/* SPDX-License-Identifier: MIT */
/* Unit tests of demo/demo_form.c: finding and decoding form fields (+, %XX, bad escapes,
 * sizes, names compared after decoding), UTF-8 sequences, and the checks of user text
 * (trimming, newlines, control characters, length in characters). */
#include <criterion/criterion.h>

#include "demo/demo_form.c"

static int get(const char *form, const char *name, char *out, size_t size)
{
    return demo_form_get(form, strlen(form), name, out, size);
}

Test(demo_form, fields_are_found_and_decoded)
{
    char v[64];
    cr_assert_eq(get("name=alice&message=hello+world%21", "name", v, sizeof(v)), 5);
    cr_assert_str_eq(v, "alice");
    cr_assert_eq(get("name=alice&message=hello+world%21", "message", v, sizeof(v)), 12);
    cr_assert_str_eq(v, "hello world!");
    cr_assert_eq(get("a=1&name=%3Cb%3E&name=second", "name", v, sizeof(v)), 3);
    cr_assert_str_eq(v, "<b>");                             /* the first one */
    cr_assert_eq(get("na%6De=x", "name", v, sizeof(v)), 1); /* names are decoded too */
    cr_assert_str_eq(v, "x");
    cr_assert_eq(get("name=&x=1", "name", v, sizeof(v)), 0);
    cr_assert_str_eq(v, "");
    cr_assert_eq(get("name", "name", v, sizeof(v)), 0); /* no '=': an empty value */
    cr_assert_eq(get("&&name=y&", "name", v, sizeof(v)), 1);
    cr_assert_eq(get("x=%00y", "x", v, sizeof(v)), 2); /* a NUL byte is a byte */
    cr_assert_eq(v[0], '\0');
    cr_assert_eq(v[1], 'y');
}

Test(demo_form, missing_bad_and_too_long)
{
    char v[8];
    cr_assert_eq(get("", "name", v, sizeof(v)), -ENOENT);
    cr_assert_eq(get("names=x&nam=y", "name", v, sizeof(v)), -ENOENT);
    cr_assert_eq(get("name=%zz", "name", v, sizeof(v)), -EINVAL);
    cr_assert_eq(get("name=%4", "name", v, sizeof(v)), -EINVAL);
    cr_assert_eq(get("name=%", "name", v, sizeof(v)), -EINVAL);
    cr_assert_eq(get("name=1234567", "name", v, sizeof(v)), 7);
    cr_assert_eq(get("name=12345678", "name", v, sizeof(v)), -ENOSPC);
    cr_assert_str_eq(v, "");
    cr_assert_eq(get("other=%zz&name=ok", "name", v, sizeof(v)), 2); /* only its own value */
}

Test(demo_form, utf8_sequences)
{
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"a", 1), 1);
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xC3\xA9", 2), 2);
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xE2\x82\xAC", 3), 3);
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 4), 4);
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xC3", 1), 0);             /* cut */
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xC0\xAF", 2), 0);         /* overlong */
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xE0\x80\xAF", 3), 0);     /* overlong */
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xED\xA0\x80", 3), 0);     /* surrogate */
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xF4\x90\x80\x80", 4), 0); /* > 10FFFF */
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\xFF", 1), 0);
    cr_assert_eq(demo_utf8_seq((const unsigned char *)"\x80", 1), 0);
}

static int text(const char *in, size_t max, bool multi, char *out, const char **why)
{
    size_t len = strlen(in);
    memcpy(out, in, len + 1);
    int rc = demo_form_text(out, &len, max, multi, why);
    if (rc == 0) {
        cr_assert_eq(len, strlen(out));
    }
    return rc;
}

Test(demo_form, text_checks)
{
    char t[64];
    const char *why = NULL;
    cr_assert_eq(text("  alice \r\n", 10, false, t, &why), 0);
    cr_assert_str_eq(t, "alice");
    cr_assert_eq(text("a\r\nb\rc\nd\te", 10, true, t, &why), 0);
    cr_assert_str_eq(t, "a\nb\nc\nd\te");
    cr_assert_eq(text("a\nb", 10, false, t, &why), -EINVAL);
    cr_assert_str_eq(why, "contains control characters");
    cr_assert_eq(text("a\x07", 10, true, t, &why), -EINVAL);
    cr_assert_eq(text("a\x7f", 10, true, t, &why), -EINVAL);
    cr_assert_eq(text("a\xC2\x85", 10, true, t, &why), -EINVAL); /* C1: NEL */
    cr_assert_eq(text("   ", 10, true, t, &why), -EINVAL);
    cr_assert_str_eq(why, "is empty");
    cr_assert_eq(text("\xC3\xA9\xC3\xA9\xC3\xA9", 3, false, t, &why), 0); /* 3 characters */
    cr_assert_eq(text("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3, false, t, &why), -EINVAL);
    cr_assert_str_eq(why, "is too long");
    cr_assert_eq(text("ab\xFF", 10, false, t, &why), -EINVAL);
    cr_assert_str_eq(why, "is not valid UTF-8");
    cr_assert_eq(text("<script>", 10, false, t, &why), 0); /* escaping is the page's job */
}
