/* SPDX-License-Identifier: MIT */
/* Unit tests of core/json.c: values and accessors, string decoding, numbers and json_int,
 * every error message with its exact position, and the limits. The writer is
 * tested in test_json_write.c. */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "core/json.c"

/* Parse text[0, len) and require success. */
static struct json_doc *parse_ok_n(const char *text, size_t len)
{
    struct errbuf eb = {{0}};
    struct json_doc *doc = json_parse(text, len, &eb);
    cr_assert_not_null(doc, "parse of \"%.60s\" failed: %s", text, eb.msg);
    cr_assert_not_null(json_root(doc));
    return doc;
}

static struct json_doc *parse_ok(const char *text)
{
    return parse_ok_n(text, strlen(text));
}

/* Parse text[0, len) and require the exact error message. */
static void parse_err_n(const char *text, size_t len, const char *want)
{
    struct errbuf eb = {{0}};
    struct json_doc *doc = json_parse(text, len, &eb);
    cr_assert_null(doc, "parse of \"%.60s\" succeeded, want %s", text, want);
    cr_assert_str_eq(eb.msg, want, "input \"%.60s\": got \"%s\", want \"%s\"", text, eb.msg, want);
    /* A NULL errbuf is allowed and gives the same result. */
    cr_assert_null(json_parse(text, len, NULL));
}

static void parse_err(const char *text, const char *want)
{
    parse_err_n(text, strlen(text), want);
}

/* ------------------------------------------------------------------------------------- */

Test(json, scalars)
{
    struct json_doc *doc = parse_ok("null");
    cr_assert_eq(json_type(json_root(doc)), JSON_NULL);
    json_free(doc);

    doc = parse_ok(" \t\r\ntrue\n ");
    cr_assert_eq(json_type(json_root(doc)), JSON_BOOL);
    cr_assert(json_bool(json_root(doc), false));
    json_free(doc);

    doc = parse_ok("false");
    cr_assert_eq(json_type(json_root(doc)), JSON_BOOL);
    cr_assert_not(json_bool(json_root(doc), true));
    json_free(doc);

    doc = parse_ok("-12.5");
    cr_assert_eq(json_type(json_root(doc)), JSON_NUMBER);
    cr_assert_eq(json_num(json_root(doc), 0), -12.5);
    json_free(doc);

    doc = parse_ok("\"hi\"");
    cr_assert_eq(json_type(json_root(doc)), JSON_STRING);
    cr_assert_str_eq(json_str(json_root(doc)), "hi");
    cr_assert_eq(json_str_len(json_root(doc)), 2);
    json_free(doc);
}

Test(json, wrong_types_and_null_give_defaults)
{
    struct json_doc *doc = parse_ok("[1, \"s\", true, null, {}, []]");
    const struct json_value *root = json_root(doc);
    const struct json_value *num = json_at(root, 0), *str = json_at(root, 1);
    const struct json_value *b = json_at(root, 2), *nul = json_at(root, 3);
    int64_t i = 77;

    cr_assert_eq(json_type(nul), JSON_NULL);
    cr_assert_eq(json_bool(num, true), true);
    cr_assert_eq(json_bool(str, false), false);
    cr_assert_eq(json_num(str, 4.5), 4.5);
    cr_assert_eq(json_num(b, -1), -1);
    cr_assert_null(json_str(num));
    cr_assert_eq(json_str_len(num), 0);
    cr_assert_eq(json_len(num), 0);
    cr_assert_eq(json_len(str), 0);
    cr_assert_null(json_at(str, 0));
    cr_assert_null(json_get(root, "a"));
    cr_assert_null(json_get(num, "a"));
    cr_assert_null(json_key_at(root, 0));
    cr_assert_not(json_int(b, &i));
    cr_assert_not(json_int(nul, &i));
    cr_assert_not(json_int(json_at(root, 4), &i));
    cr_assert_eq(i, 77);
    json_free(doc);

    /* NULL is an absent value. */
    cr_assert_eq(json_type(NULL), JSON_NULL);
    cr_assert_null(json_get(NULL, "a"));
    cr_assert_eq(json_len(NULL), 0);
    cr_assert_null(json_at(NULL, 0));
    cr_assert_null(json_key_at(NULL, 0));
    cr_assert_null(json_str(NULL));
    cr_assert_eq(json_str_len(NULL), 0);
    cr_assert_eq(json_bool(NULL, true), true);
    cr_assert_eq(json_num(NULL, 2.5), 2.5);
    cr_assert_not(json_int(NULL, &i));
    cr_assert_null(json_root(NULL));
    json_free(NULL);
    /* Lookups chain without checks. */
    cr_assert_null(json_get(json_get(NULL, "a"), "b"));
}

Test(json, arrays_and_objects)
{
    struct json_doc *doc = parse_ok("{\"a\": [1, [2, 3], {\"x\": null}], \"b\": {}, \"c\": [],"
                                    " \"\": \"empty key\"}");
    const struct json_value *root = json_root(doc);
    cr_assert_eq(json_type(root), JSON_OBJECT);
    cr_assert_eq(json_len(root), 4);
    cr_assert_str_eq(json_key_at(root, 0), "a");
    cr_assert_str_eq(json_key_at(root, 1), "b");
    cr_assert_str_eq(json_key_at(root, 2), "c");
    cr_assert_str_eq(json_key_at(root, 3), "");
    cr_assert_null(json_key_at(root, 4));
    cr_assert_null(json_at(root, 4));
    cr_assert_eq(json_at(root, 0), json_get(root, "a"));
    cr_assert_str_eq(json_str(json_get(root, "")), "empty key");
    cr_assert_null(json_get(root, "d"));
    cr_assert_null(json_get(root, "aa"));
    cr_assert_null(json_get(root, NULL));

    const struct json_value *a = json_get(root, "a");
    cr_assert_eq(json_type(a), JSON_ARRAY);
    cr_assert_eq(json_len(a), 3);
    cr_assert_eq(json_num(json_at(a, 0), 0), 1);
    cr_assert_eq(json_len(json_at(a, 1)), 2);
    cr_assert_eq(json_num(json_at(json_at(a, 1), 1), 0), 3);
    cr_assert_null(json_at(json_at(a, 1), 2));
    cr_assert_eq(json_type(json_get(json_at(a, 2), "x")), JSON_NULL);
    cr_assert_not_null(json_get(json_at(a, 2), "x"), "present null is not absent");
    cr_assert_eq(json_type(json_get(root, "b")), JSON_OBJECT);
    cr_assert_eq(json_len(json_get(root, "b")), 0);
    cr_assert_eq(json_type(json_get(root, "c")), JSON_ARRAY);
    cr_assert_eq(json_len(json_get(root, "c")), 0);
    json_free(doc);

    doc = parse_ok("[[[]],{},[{}]]");
    cr_assert_eq(json_len(json_root(doc)), 3);
    cr_assert_eq(json_len(json_at(json_root(doc), 0)), 1);
    json_free(doc);

    doc = parse_ok(" { } ");
    cr_assert_eq(json_type(json_root(doc)), JSON_OBJECT);
    json_free(doc);
}

Test(json, duplicate_keys_last_wins)
{
    struct json_doc *doc = parse_ok("{\"k\": 1, \"other\": true, \"k\": 2, \"k\": 3, \"z\": 0}");
    const struct json_value *root = json_root(doc);
    cr_assert_eq(json_num(json_get(root, "k"), 0), 3);
    /* Every member stays visible by index, in document order. */
    cr_assert_eq(json_len(root), 5);
    cr_assert_str_eq(json_key_at(root, 0), "k");
    cr_assert_eq(json_num(json_at(root, 0), 0), 1);
    cr_assert_str_eq(json_key_at(root, 2), "k");
    cr_assert_eq(json_num(json_at(root, 2), 0), 2);
    json_free(doc);

    /* Keys compare after decoding. */
    doc = parse_ok("{\"ab\": 1, \"a\\u0062\": 2}");
    cr_assert_eq(json_num(json_get(json_root(doc), "ab"), 0), 2);
    json_free(doc);
}

Test(json, string_escapes)
{
    struct json_doc *doc =
        parse_ok("[\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\", \"\\u0041\\u00e9\\u20AC\","
                 " \"\\uD83D\\uDE00\\ud83d\\ude00\", \"\\u007f\\u0001\"]");
    const struct json_value *root = json_root(doc);
    cr_assert_str_eq(json_str(json_at(root, 0)), "q\"b\\s/n\nt\tr\rb\bf\f");
    cr_assert_str_eq(json_str(json_at(root, 1)), "A\xc3\xa9\xe2\x82\xac");
    cr_assert_eq(json_str_len(json_at(root, 1)), 6);
    cr_assert_str_eq(json_str(json_at(root, 2)), "\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
    cr_assert_str_eq(json_str(json_at(root, 3)), "\x7f\x01");
    for (size_t i = 0; i < json_len(root); i++) {
        cr_assert_eq(strlen(json_str(json_at(root, i))), json_str_len(json_at(root, i)));
    }
    json_free(doc);

    /* Highest code points of each UTF-8 length. */
    doc = parse_ok("\"\\u07FF\\uFFFF\\uDBFF\\uDFFF\"");
    cr_assert_str_eq(json_str(json_root(doc)), "\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf");
    json_free(doc);
}

Test(json, raw_utf8_passes_through)
{
    const char *s = "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xee\x80\x80\"";
    struct json_doc *doc = parse_ok(s);
    cr_assert_str_eq(json_str(json_root(doc)),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xee\x80\x80");
    json_free(doc);
}

Test(json, reads_only_len_bytes)
{
    /* The bytes after len would make each of these fail, or parse differently. */
    struct json_doc *doc = parse_ok_n("[1,2]xxx", 5);
    cr_assert_eq(json_len(json_root(doc)), 2);
    json_free(doc);
    doc = parse_ok_n("12", 1);
    cr_assert_eq(json_num(json_root(doc), 0), 1);
    json_free(doc);
    doc = parse_ok_n("1.5e3", 3);
    cr_assert_eq(json_num(json_root(doc), 0), 1.5);
    json_free(doc);
    doc = parse_ok_n("true\0garbage", 4);
    json_free(doc);
    parse_err_n("\"ab\"", 3, "1:4: unterminated string (opened at 1:1)");
    parse_err_n("\"\\u00e9\"", 6, "1:2: invalid \\u escape (expected 4 hex digits)");
    parse_err_n("\"\xc3\xa9\"", 2, "1:2: invalid UTF-8 in string");
    parse_err_n("tru"
                "e",
                3, "1:1: invalid literal (expected true)");
    parse_err_n("{\"a\":1}", 6, "1:7: expected ',' or '}', found end of input");
}

/* ------------------------------------------------------------------------------------- */

Test(json, numbers)
{
    static const struct {
        const char *text;
        double want;
    } cases[] = {
        {"0", 0},
        {"-0", -0.0},
        {"7", 7},
        {"-7", -7},
        {"1.5", 1.5},
        {"-2.5e3", -2500},
        {"1E2", 100},
        {"1e+2", 100},
        {"1e-2", 0.01},
        {"0.1", 0.1},
        {"123456789012345678901234567890", 123456789012345678901234567890.0},
        {"1.7976931348623157e308", 1.7976931348623157e308},
        {"4.9e-324", 4.9e-324},
        {"1e-400", 0}, /* underflow rounds to zero: accepted */
        {"9007199254740993", 9007199254740992.0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_doc *doc = parse_ok(cases[i].text);
        cr_assert_eq(json_type(json_root(doc)), JSON_NUMBER, "%s", cases[i].text);
        cr_assert_eq(json_num(json_root(doc), 99), cases[i].want, "%s", cases[i].text);
        json_free(doc);
    }
    struct json_doc *doc = parse_ok("-0");
    cr_assert(signbit(json_num(json_root(doc), 1)));
    json_free(doc);
}

static void expect_int(const char *text, bool ok, int64_t want)
{
    struct json_doc *doc = parse_ok(text);
    int64_t got = 12345;
    cr_assert_eq(json_int(json_root(doc), &got), ok, "%s", text);
    cr_assert_eq(got, ok ? want : 12345, "%s: got %" PRId64, text, got);
    json_free(doc);
}

Test(json, int_from_numbers)
{
    expect_int("0", true, 0);
    expect_int("-0", true, 0);
    expect_int("42", true, 42);
    expect_int("-42", true, -42);
    expect_int("9223372036854775807", true, INT64_MAX);
    expect_int("-9223372036854775808", true, INT64_MIN);
    expect_int("9223372036854775808", false, 0);
    expect_int("-9223372036854775809", false, 0);
    expect_int("18446744073709551616", false, 0);
    expect_int("100000000000000000000", false, 0);
    /* Exact decimal value, not the double: 2^53 + 1 is not a double but is an int64. */
    expect_int("9007199254740993", true, 9007199254740993);
    expect_int("1.0", true, 1);
    expect_int("1e3", true, 1000);
    expect_int("1E+3", true, 1000);
    expect_int("2.50e1", true, 25);
    expect_int("25e-1", false, 0);
    expect_int("1.5", false, 0);
    expect_int("0.000e-5", true, 0);
    expect_int("0e99999999999", true, 0);
    expect_int("100000000000000000000e-2", true, 1000000000000000000);
    expect_int("9.223372036854775807e18", true, INT64_MAX);
    expect_int("-9.223372036854775808e18", true, INT64_MIN);
    expect_int("9.223372036854775808e18", false, 0);
    expect_int("1e19", false, 0);
    expect_int("1e18", true, 1000000000000000000);
    expect_int("1e-400", false, 0);
}

/* etcd's gateway sends int64 fields ("revision", "version", ...) as JSON strings. */
Test(json, int_from_strings)
{
    expect_int("\"0\"", true, 0);
    expect_int("\"-0\"", true, 0);
    expect_int("\"123\"", true, 123);
    expect_int("\"-5\"", true, -5);
    expect_int("\"9223372036854775807\"", true, INT64_MAX);
    expect_int("\"-9223372036854775808\"", true, INT64_MIN);
    expect_int("\"9223372036854775808\"", false, 0);
    expect_int("\"-9223372036854775809\"", false, 0);
    expect_int("\"14841639068965178418\"", false, 0); /* a uint64 cluster_id */
    expect_int("\"\"", false, 0);
    expect_int("\"-\"", false, 0);
    expect_int("\"007\"", false, 0);
    expect_int("\"+1\"", false, 0);
    expect_int("\" 1\"", false, 0);
    expect_int("\"1 \"", false, 0);
    expect_int("\"1.0\"", false, 0);
    expect_int("\"1e3\"", false, 0);
    expect_int("\"12a\"", false, 0);
    expect_int("\"0x10\"", false, 0);
}

/* ------------------------------------------------------------------------------------- */

Test(json, errors_structure)
{
    parse_err("", "1:1: expected a value, found end of input");
    parse_err("   \n  ", "2:3: expected a value, found end of input");
    parse_err("[1,]", "1:4: expected a value, found ']'");
    parse_err("[,1]", "1:2: expected a value, found ','");
    parse_err("[1 2]", "1:4: expected ',' or ']', found '2'");
    parse_err("[1", "1:3: expected ',' or ']', found end of input");
    parse_err("[", "1:2: expected a value, found end of input");
    parse_err("]", "1:1: expected a value, found ']'");
    parse_err("{\"a\":1,}", "1:8: expected a string key, found '}'");
    parse_err("{a:1}", "1:2: expected a string key, found 'a'");
    parse_err("{'a':1}", "1:2: expected a string key, found byte 0x27");
    parse_err("{1:1}", "1:2: expected a string key, found '1'");
    parse_err("{\"a\" 1}", "1:6: expected ':' after the key, found '1'");
    parse_err("{\"a\"}", "1:5: expected ':' after the key, found '}'");
    parse_err("{\"a\":}", "1:6: expected a value, found '}'");
    parse_err("{\"a\":1 \"b\":2}", "1:8: expected ',' or '}', found '\"'");
    parse_err("{\"a\":1", "1:7: expected ',' or '}', found end of input");
    parse_err("{\"a\":1]", "1:7: expected ',' or '}', found ']'");
    parse_err("[1}", "1:3: expected ',' or ']', found '}'");
}

Test(json, errors_trailing_garbage)
{
    parse_err("1 2", "1:3: expected end of input after the value, found '2'");
    parse_err("{}x", "1:3: expected end of input after the value, found 'x'");
    parse_err("[] []", "1:4: expected end of input after the value, found '['");
    parse_err("truex", "1:5: expected end of input after the value, found 'x'");
    parse_err("\"a\"\"b\"", "1:4: expected end of input after the value, found '\"'");
    parse_err("0\n\n}", "3:1: expected end of input after the value, found '}'");
    parse_err_n("null\0", 5, "1:5: expected end of input after the value, found byte 0x00");
    /* Only the four RFC whitespace bytes are whitespace. */
    parse_err("1\f", "1:2: expected end of input after the value, found byte 0x0c");
    parse_err("\v1", "1:1: expected a value, found byte 0x0b");
    parse_err("\xef\xbb\xbf{}", "1:1: expected a value, found byte 0xef"); /* no BOM */
}

Test(json, errors_literals)
{
    parse_err("tru", "1:1: invalid literal (expected true)");
    parse_err("True", "1:1: expected a value, found 'T'");
    parse_err("[nul]", "1:2: invalid literal (expected null)");
    parse_err("falsy", "1:1: invalid literal (expected false)");
    parse_err("[1, fals", "1:5: invalid literal (expected false)");
    parse_err("NaN", "1:1: expected a value, found 'N'");
    parse_err("Infinity", "1:1: expected a value, found 'I'");
    parse_err("undefined", "1:1: expected a value, found 'u'");
}

Test(json, errors_numbers)
{
    parse_err("01", "1:2: leading zeros are not allowed in numbers");
    parse_err("[-00]", "1:4: leading zeros are not allowed in numbers");
    parse_err("-", "1:2: expected a digit after '-', found end of input");
    parse_err("-a", "1:2: expected a digit after '-', found 'a'");
    parse_err("-Infinity", "1:2: expected a digit after '-', found 'I'");
    parse_err("+1", "1:1: expected a value, found '+'");
    parse_err(".5", "1:1: expected a value, found '.'");
    parse_err("1.", "1:3: expected a digit after '.', found end of input");
    parse_err("1.e5", "1:3: expected a digit after '.', found 'e'");
    parse_err("1e", "1:3: expected a digit in the exponent, found end of input");
    parse_err("1e+", "1:4: expected a digit in the exponent, found end of input");
    parse_err("[1E-x]", "1:5: expected a digit in the exponent, found 'x'");
    parse_err("0x10", "1:2: expected end of input after the value, found 'x'");
    parse_err("1e400", "1:1: number out of range");
    parse_err("[2, -1e309]", "1:5: number out of range");
    parse_err("1e99999999999999999999", "1:1: number out of range");
}

Test(json, number_length_limit)
{
    char text[JSON_MAX_NUMBER_LEN + 2];
    memset(text, '1', JSON_MAX_NUMBER_LEN);
    text[JSON_MAX_NUMBER_LEN] = '\0';
    text[1] = '.';
    struct json_doc *doc = parse_ok(text); /* 1.111...: exactly at the limit */
    cr_assert_float_eq(json_num(json_root(doc), 0), 1.0 + 1.0 / 9, 1e-12);
    json_free(doc);
    text[JSON_MAX_NUMBER_LEN] = '1';
    text[JSON_MAX_NUMBER_LEN + 1] = '\0';
    parse_err(text, "1:1: number too long (513 bytes, max 512)");
}

Test(json, errors_strings)
{
    parse_err("\"abc", "1:5: unterminated string (opened at 1:1)");
    parse_err("[\"a\", \"b", "1:9: unterminated string (opened at 1:7)");
    parse_err("\"abc\\\"", "1:7: unterminated string (opened at 1:1)");
    parse_err("[\n  \"abc\n\"]", "2:7: unescaped control character 0x0a in string");
    parse_err("\"a\tb\"", "1:3: unescaped control character 0x09 in string");
    parse_err_n("\"a\0b\"", 5, "1:3: unescaped control character 0x00 in string");
    parse_err("\"a\x1f\"", "1:3: unescaped control character 0x1f in string");
    parse_err("\"a\\qb\"", "1:3: invalid escape: 'q' after '\\'");
    parse_err("\"\\x41\"", "1:2: invalid escape: 'x' after '\\'");
    parse_err("\"\\'\"", "1:2: invalid escape: byte 0x27 after '\\'");
    parse_err("\"\\", "1:2: invalid escape: end of input after '\\'");
    parse_err("\"\\U0041\"", "1:2: invalid escape: 'U' after '\\'");
}

Test(json, errors_unicode_escapes)
{
    parse_err("\"\\u12G4\"", "1:2: invalid \\u escape (expected 4 hex digits)");
    parse_err("\"\\u12\"", "1:2: invalid \\u escape (expected 4 hex digits)");
    parse_err("\"ab\\u", "1:4: invalid \\u escape (expected 4 hex digits)");
    parse_err("\"\\u0000\"", "1:2: \\u0000 is not allowed in strings");
    parse_err("{\"k\\u0000\":1}", "1:4: \\u0000 is not allowed in strings");
    parse_err("\"\\uD800\"", "1:2: lone high surrogate \\uD800");
    parse_err("\"x\\udbff\"", "1:3: lone high surrogate \\uDBFF");
    parse_err("\"\\uD800\\u0041\"", "1:2: lone high surrogate \\uD800");
    parse_err("\"\\uD800\\uD800\"", "1:2: lone high surrogate \\uD800");
    parse_err("\"\\uD800\\n\"", "1:2: lone high surrogate \\uD800");
    parse_err("\"\\uD800x\"", "1:2: lone high surrogate \\uD800");
    parse_err("\"\\uD800\\", "1:2: lone high surrogate \\uD800");
    parse_err("\"\\uDC00\"", "1:2: lone low surrogate \\uDC00");
    parse_err("\"\\uDFFF\\uD800\"", "1:2: lone low surrogate \\uDFFF");
    parse_err("\"ab\\uD83D\\uZZZZ\"", "1:10: invalid \\u escape (expected 4 hex digits)");
}

Test(json, errors_invalid_utf8)
{
    static const char *const bad[] = {
        "\"\xff\"",             /* never valid */
        "\"\x80\"",             /* lone continuation byte */
        "\"\xc0\xaf\"",         /* overlong '/' */
        "\"\xc1\xbf\"",         /* overlong */
        "\"\xe0\x80\xaf\"",     /* overlong, 3 bytes */
        "\"\xf0\x80\x80\xaf\"", /* overlong, 4 bytes */
        "\"\xed\xa0\x80\"",     /* UTF-16 surrogate D800 */
        "\"\xed\xbf\xbf\"",     /* surrogate DFFF */
        "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\xf5\x80\x80\x80\"", /* lead byte beyond F4 */
        "\"\xe2\x82\"",         /* truncated by the quote */
        "\"\xe2\x82",           /* truncated by the end of input */
        "\"\xc3\"",             /* truncated */
        "\"\xc3\xc3\xa9\"",     /* second byte not a continuation */
        "\"\xf0\x9f\x98\"",     /* truncated 4-byte sequence */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_err(bad[i], "1:2: invalid UTF-8 in string");
    }
    /* The position is the byte where the bad sequence starts, in byte columns. */
    parse_err("{\"caf\xc3\xa9\": \"ok\xe9\"}", "1:14: invalid UTF-8 in string");
    /* Outside strings a non-ASCII byte is just unexpected. */
    parse_err("[\xc3\xa9]", "1:2: expected a value, found byte 0xc3");
}

Test(json, error_positions_across_lines)
{
    parse_err("{\n  \"a\": [1,\n    2,,\n  ]\n}", "3:7: expected a value, found ','");
    /* CR is whitespace but only LF starts a line. */
    parse_err("[\r\n1,\r\n]", "3:1: expected a value, found ']'");
    parse_err("[\r1,\r]", "1:6: expected a value, found ']'");
    /* Columns count bytes: the UTF-8 'é' takes two. */
    parse_err("[\"\xc3\xa9\" x]", "1:7: expected ',' or ']', found 'x'");
    parse_err("\n\n\n   \"abc\n", "4:8: unescaped control character 0x0a in string");
    parse_err("\"a\nb", "1:3: unescaped control character 0x0a in string");
    parse_err("[1,\n\"abc", "2:5: unterminated string (opened at 2:1)");
}

/* ------------------------------------------------------------------------------------- */

/* n opening brackets (alternating [ and {"k": ) and the matching closers. */
static char *nested(int n, bool with_objects)
{
    char *s = malloc((size_t)n * 6 + 8);
    size_t o = 0;
    cr_assert_not_null(s);
    for (int i = 0; i < n; i++) {
        if (with_objects && i % 2 == 1) {
            memcpy(s + o, "{\"k\":", 5);
            o += 5;
        } else {
            s[o++] = '[';
        }
    }
    s[o++] = '0';
    for (int i = n - 1; i >= 0; i--) {
        s[o++] = with_objects && i % 2 == 1 ? '}' : ']';
    }
    s[o] = '\0';
    return s;
}

Test(json, depth_limit)
{
    char *s = nested(JSON_MAX_DEPTH, false);
    struct json_doc *doc = parse_ok(s);
    const struct json_value *v = json_root(doc);
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        cr_assert_eq(json_type(v), JSON_ARRAY);
        v = json_at(v, 0);
    }
    cr_assert_eq(json_num(v, -1), 0);
    json_free(doc);
    free(s);

    s = nested(JSON_MAX_DEPTH + 1, false);
    parse_err(s, "1:65: nesting deeper than 64");
    free(s);

    s = nested(JSON_MAX_DEPTH, true);
    doc = parse_ok(s);
    json_free(doc);
    free(s);

    /* 32 arrays and 32 objects (5 bytes each), then the 65th opener at column 193. */
    s = nested(JSON_MAX_DEPTH + 1, true);
    parse_err(s, "1:193: nesting deeper than 64");
    free(s);

    /* Far too deep: fails at the same place, without deep recursion. */
    s = nested(100000, false);
    parse_err(s, "1:65: nesting deeper than 64");
    free(s);

    /* Depth is nesting, not the number of containers. */
    doc = parse_ok("[[[]],[[]],[[]],{\"a\":{\"b\":[]}}]");
    json_free(doc);
}

Test(json, size_limit)
{
    char *s = malloc(JSON_MAX_LEN + 1);
    cr_assert_not_null(s);
    memset(s, ' ', JSON_MAX_LEN + 1);
    s[JSON_MAX_LEN / 2] = '7';
    struct json_doc *doc = parse_ok_n(s, JSON_MAX_LEN);
    cr_assert_eq(json_num(json_root(doc), 0), 7);
    json_free(doc);
    parse_err_n(s, JSON_MAX_LEN + 1, "1:1: input too large (16777217 bytes, max 16777216)");
    free(s);
}

Test(json, big_array_of_numbers)
{
    size_t n = 1000000, o = 0;
    char *s = malloc(n * 8 + 2);
    cr_assert_not_null(s);
    s[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(s + o, 16, "%zu,", i % 1000);
    }
    s[o - 1] = ']';
    struct json_doc *doc = parse_ok_n(s, o);
    const struct json_value *root = json_root(doc);
    cr_assert_eq(json_len(root), n);
    int64_t sum = 0, v;
    for (size_t i = 0; i < n; i++) {
        cr_assert(json_int(json_at(root, i), &v));
        sum += v;
    }
    cr_assert_eq(sum, (int64_t)(n / 1000) * (999 * 1000 / 2));
    json_free(doc);
    free(s);
}

Test(json, big_string_and_object)
{
    size_t n = 4 * 1024 * 1024;
    char *s = malloc(n + 3);
    cr_assert_not_null(s);
    s[0] = '"';
    for (size_t i = 1; i <= n; i++) {
        s[i] = (char)('a' + i % 26);
    }
    s[n + 1] = '"';
    struct json_doc *doc = parse_ok_n(s, n + 2);
    cr_assert_eq(json_str_len(json_root(doc)), n);
    cr_assert_eq(memcmp(json_str(json_root(doc)), s + 1, n), 0);
    cr_assert_eq(json_str(json_root(doc))[n], '\0');
    json_free(doc);
    free(s);

    /* 100000 members; lookups find the right ones. */
    size_t members = 100000, o = 0;
    s = malloc(members * 32 + 2);
    cr_assert_not_null(s);
    s[o++] = '{';
    for (size_t i = 0; i < members; i++) {
        o += (size_t)snprintf(s + o, 32, "\"key%zu\":%zu,", i, i * 2);
    }
    s[o - 1] = '}';
    doc = parse_ok_n(s, o);
    cr_assert_eq(json_len(json_root(doc)), members);
    cr_assert_eq(json_num(json_get(json_root(doc), "key0"), -1), 0);
    cr_assert_eq(json_num(json_get(json_root(doc), "key99999"), -1), 199998);
    cr_assert_str_eq(json_key_at(json_root(doc), 12345), "key12345");
    json_free(doc);
    free(s);
}

/* ------------------------------------------------------------------------------------- */

/* What keel's /status endpoint serves (the shape `keel status` reads from other nodes). */
Test(json, keel_status_document)
{
    const char *text = "{\n"
                       "  \"node\": \"lb1\",\n"
                       "  \"version\": \"0.1.0\",\n"
                       "  \"uptime_s\": 86400.25,\n"
                       "  \"roles\": [\"lb\", \"vrrp\"],\n"
                       "  \"vrrp\": [{\"vip\": \"10.0.0.100\", \"state\": \"master\","
                       " \"priority\": 150}],\n"
                       "  \"backends\": {\n"
                       "    \"web\": {\"servers\": [\n"
                       "      {\"name\": \"web1:8080\", \"up\": true, \"active\": 3},\n"
                       "      {\"name\": \"web2:8080\", \"up\": false, \"active\": 0,"
                       " \"last_error\": \"connect() refused\"}\n"
                       "    ]}\n"
                       "  },\n"
                       "  \"generation\": 7\n"
                       "}\n";
    struct json_doc *doc = parse_ok(text);
    const struct json_value *root = json_root(doc);
    int64_t i;
    cr_assert_str_eq(json_str(json_get(root, "node")), "lb1");
    cr_assert_eq(json_num(json_get(root, "uptime_s"), 0), 86400.25);
    cr_assert_not(json_int(json_get(root, "uptime_s"), &i));
    cr_assert_eq(json_len(json_get(root, "roles")), 2);
    cr_assert_str_eq(json_str(json_at(json_get(root, "roles"), 1)), "vrrp");
    const struct json_value *vrrp0 = json_at(json_get(root, "vrrp"), 0);
    cr_assert_str_eq(json_str(json_get(vrrp0, "state")), "master");
    cr_assert(json_int(json_get(vrrp0, "priority"), &i));
    cr_assert_eq(i, 150);
    const struct json_value *servers =
        json_get(json_get(json_get(root, "backends"), "web"), "servers");
    cr_assert_eq(json_len(servers), 2);
    cr_assert(json_bool(json_get(json_at(servers, 0), "up"), false));
    cr_assert_not(json_bool(json_get(json_at(servers, 1), "up"), true));
    cr_assert_str_eq(json_str(json_get(json_at(servers, 1), "last_error")), "connect() refused");
    /* Absent members chain to defaults. */
    cr_assert_eq(json_num(json_get(json_get(root, "db"), "lag"), -1), -1);
    cr_assert(json_int(json_get(root, "generation"), &i));
    cr_assert_eq(i, 7);
    json_free(doc);
}

/* A range response from etcd's v3 gateway: int64 as strings, keys and values in base64. */
Test(json, etcd_range_response)
{
    const char *text =
        "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
        "\"10276657743932975437\",\"revision\":\"42\",\"raft_term\":\"3\"},\"kvs\":[{\"key\":"
        "\"L2tlZWwvbGVhZGVy\",\"create_revision\":\"40\",\"mod_revision\":\"42\",\"version\":"
        "\"3\",\"value\":\"ZGIx\",\"lease\":\"7587869116188391172\"}],\"count\":\"1\"}";
    struct json_doc *doc = parse_ok(text);
    const struct json_value *root = json_root(doc);
    int64_t rev = 0, lease = 0, count = 0;
    cr_assert(json_int(json_get(json_get(root, "header"), "revision"), &rev));
    cr_assert_eq(rev, 42);
    const struct json_value *kv = json_at(json_get(root, "kvs"), 0);
    cr_assert(json_int(json_get(kv, "lease"), &lease));
    cr_assert_eq(lease, 7587869116188391172);
    cr_assert(json_int(json_get(root, "count"), &count));
    cr_assert_eq(count, 1);
    cr_assert_str_eq(json_str(json_get(kv, "key")), "L2tlZWwvbGVhZGVy");
    cr_assert_eq(json_str_len(json_get(kv, "value")), 4);
    json_free(doc);
}
