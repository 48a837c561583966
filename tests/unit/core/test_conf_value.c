/* SPDX-License-Identifier: MIT */
/* Unit tests of core/conf_value.c: the value parsers (durations, sizes, integers, addresses,
 * names, host names) and formatting. The generic setters are exercised by test_conf.c through
 * loading, where their messages are checked. */
#include <criterion/criterion.h>

#include "core/conf_value.c"

Test(conf_value, durations)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } ok[] = {{"100ms", 100}, {"1s", 1000},     {"2m", 120000}, {"1h", 3600000},
              {"0s", 0},      {"1500ms", 1500}, {"007s", 7000}, {"48h", 172800000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        struct errbuf eb;
        cr_assert_eq(conf_parse_duration_ms(ok[i].text, &v, &eb), 0, "%s", ok[i].text);
        cr_assert_eq(v, ok[i].ms, "%s", ok[i].text);
    }
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"10", "duration needs a unit (ms, s, m, h)"},
        {"0", "duration needs a unit (ms, s, m, h)"},
        {"10x", "unknown duration unit \"x\" (use ms, s, m, h)"},
        {"10 s", "unknown duration unit \" s\" (use ms, s, m, h)"},
        {"1S", "unknown duration unit \"S\" (use ms, s, m, h)"},
        {"1.5s", "unknown duration unit \".5s\" (use ms, s, m, h)"},
        {"", "expected a duration such as 100ms, 5s, 2m or 1h"},
        {"s", "expected a duration such as 100ms, 5s, 2m or 1h"},
        {"-1s", "expected a duration such as 100ms, 5s, 2m or 1h"},
        {"99999999999999999999s", "number too large"},
        {"9999999999999999h", "duration too large"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        struct errbuf eb;
        cr_assert_eq(conf_parse_duration_ms(bad[i].text, &v, &eb), -KEEL_ECONFIG, "%s",
                     bad[i].text);
        cr_assert_str_eq(eb.msg, bad[i].msg, "%s", bad[i].text);
    }
}

Test(conf_value, sizes)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {{"512", 512},    {"0", 0},        {"16k", 16384},     {"16K", 16384},
              {"1m", 1048576}, {"1M", 1048576}, {"1g", 1073741824}, {"3G", 3ull << 30}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        struct errbuf eb;
        cr_assert_eq(conf_parse_size(ok[i].text, &v, &eb), 0, "%s", ok[i].text);
        cr_assert_eq(v, ok[i].bytes, "%s", ok[i].text);
    }
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"1t", "unknown size unit \"t\" (use k, m or g)"},
        {"1kb", "unknown size unit \"kb\" (use k, m or g)"},
        {"k", "expected a size such as 512, 16k, 1m or 1g"},
        {"", "expected a size such as 512, 16k, 1m or 1g"},
        {"99999999999g", "size too large"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        struct errbuf eb;
        cr_assert_eq(conf_parse_size(bad[i].text, &v, &eb), -KEEL_ECONFIG, "%s", bad[i].text);
        cr_assert_str_eq(eb.msg, bad[i].msg, "%s", bad[i].text);
    }
}

Test(conf_value, uints)
{
    uint64_t v;
    struct errbuf eb;
    cr_assert_eq(conf_parse_uint("18446744073709551615", &v, &eb), 0);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(conf_parse_uint("18446744073709551616", &v, &eb), -KEEL_ECONFIG);
    cr_assert_str_eq(eb.msg, "number too large");
    cr_assert_eq(conf_parse_uint("+1", &v, &eb), -KEEL_ECONFIG);
    cr_assert_str_eq(eb.msg, "expected a number");
    cr_assert_eq(conf_parse_uint("1a", &v, &eb), -KEEL_ECONFIG);
    cr_assert_eq(conf_parse_uint("", &v, &eb), -KEEL_ECONFIG);
}

Test(conf_value, format_duration_and_size)
{
    char buf[32];
    conf_format_duration(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "0ms");
    conf_format_duration(1500, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1500ms");
    conf_format_duration(2000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2s");
    conf_format_duration(120000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2m");
    conf_format_duration(86400000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "24h");
    conf_format_size(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "0");
    conf_format_size(1000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1000");
    conf_format_size(16384, buf, sizeof(buf));
    cr_assert_str_eq(buf, "16k");
    conf_format_size(1u << 20, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1m");
    conf_format_size(1ull << 40, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1024g");
}

Test(conf_value, addresses)
{
    static const struct {
        const char *text;
        unsigned flags;
        const char *canon;
    } ok[] = {
        {"127.0.0.1:80", 0, "127.0.0.1:80"},
        {"10.1.2.3:65535", 0, "10.1.2.3:65535"},
        {"[::1]:443", 0, "[::1]:443"},
        {"[2001:DB8:0:0::1]:1", 0, "[2001:db8::1]:1"},
        {":8080", CONF_ADDR_LISTEN, "0.0.0.0:8080"},
        {"*:8080", CONF_ADDR_LISTEN, "0.0.0.0:8080"},
        {"[::]:80", CONF_ADDR_LISTEN, "[::]:80"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct conf_addr a;
        struct errbuf eb;
        cr_assert_eq(conf_parse_addr(ok[i].text, ok[i].flags | CONF_ADDR_NO_RESOLVE, &a, &eb), 0,
                     "%s: %s", ok[i].text, eb.msg);
        cr_assert_str_eq(a.text, ok[i].canon);
    }
    static const struct {
        const char *text;
        unsigned flags;
        const char *msg;
    } bad[] = {
        {"127.0.0.1", 0, "missing port (expected HOST:PORT)"},
        {"127.0.0.1:", 0, "port must be between 1 and 65535"},
        {"127.0.0.1:0", 0, "port must be between 1 and 65535"},
        {"127.0.0.1:65536", 0, "port must be between 1 and 65535"},
        {"127.0.0.1:http", 0, "port must be between 1 and 65535"},
        {":80", 0, "missing host (expected HOST:PORT)"},
        {"::1:80", 0, "an IPv6 address needs brackets, as in [::1]:80"},
        {"[::1]", 0, "missing port (expected HOST:PORT)"},
        {"[::1:80", 0, "missing \"]\" after an IPv6 address"},
        {"[::1]x:80", 0, "expected \":PORT\" after \"]\""},
        {"[1.2.3.4]:80", 0, "invalid IPv6 address \"1.2.3.4\""},
        {"127.1:80", 0, "expected an IP address or a host name"},
        {"300.1.1.1:80", 0, "expected an IP address or a host name"},
        {"bad_host:80", 0, "expected an IP address or a host name"},
        {"-a.com:80", 0, "expected an IP address or a host name"},
        {"a..com:80", 0, "expected an IP address or a host name"},
        {"example.com:80", 0, "host names are not resolved here, use an IP address"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct conf_addr a;
        struct errbuf eb;
        cr_assert_eq(conf_parse_addr(bad[i].text, bad[i].flags | CONF_ADDR_NO_RESOLVE, &a, &eb),
                     -KEEL_ECONFIG, "%s", bad[i].text);
        cr_assert_str_eq(eb.msg, bad[i].msg, "%s", bad[i].text);
    }
}

Test(conf_value, names_and_hosts)
{
    struct errbuf eb;
    cr_assert_eq(conf_check_name("web-1.a_b", &eb), 0);
    cr_assert_eq(conf_check_name("", &eb), -KEEL_ECONFIG);
    cr_assert_eq(conf_check_name("a b", &eb), -KEEL_ECONFIG);
    cr_assert_str_eq(eb.msg, "a name is 1-63 letters, digits, '-', '_' or '.'");
    char long_name[65];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    cr_assert_eq(conf_check_name(long_name, &eb), -KEEL_ECONFIG);
    long_name[63] = '\0';
    cr_assert_eq(conf_check_name(long_name, &eb), 0);
    cr_assert_eq(conf_check_host("10.0.0.1", &eb), 0);
    cr_assert_eq(conf_check_host("fe80::1", &eb), 0);
    cr_assert_eq(conf_check_host("db-1.example.com", &eb), 0);
    cr_assert_eq(conf_check_host("a-", &eb), -KEEL_ECONFIG);
    cr_assert_eq(conf_check_host("a.", &eb), -KEEL_ECONFIG);
    cr_assert_eq(conf_check_host("10.0.0", &eb), -KEEL_ECONFIG);
}

Test(conf_value, resolves_host_names_unless_told_not_to)
{
    struct conf_addr a;
    struct errbuf eb;
    cr_assert_eq(conf_parse_addr("localhost:8080", 0, &a, &eb), 0, "%s", eb.msg);
    cr_assert(strcmp(a.text, "127.0.0.1:8080") == 0 || strcmp(a.text, "[::1]:8080") == 0, "%s",
              a.text);
    cr_assert_eq(conf_parse_addr("localhost:8080", CONF_ADDR_NO_RESOLVE, &a, &eb), -KEEL_ECONFIG);
    cr_assert_eq(conf_parse_addr("no-such-host.invalid:80", 0, &a, &eb), -KEEL_ECONFIG);
    cr_assert(strncmp(eb.msg, "cannot resolve \"no-such-host.invalid\": ", 39) == 0, "%s", eb.msg);
}
