/* SPDX-License-Identifier: MIT */
/* Unit tests of core/secret.c: a secret file the group or others can access is refused with
 * its path and mode (issue 10; ssh's rule for private keys); a 0600 or 0400 file is read. */
#include <criterion/criterion.h>

#include "core/secret.c"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static char dir[] = "/tmp/keel-secret-XXXXXX";
static char path[128];

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    (void)snprintf(path, sizeof(path), "%s/cluster.key", dir);
}

static void teardown(void)
{
    (void)unlink(path);
    (void)rmdir(dir);
}

static void write_secret(const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

static int read_it(mode_t mode, struct errbuf *eb, size_t *len)
{
    write_secret("s3cret", mode);
    uint8_t buf[SECRET_MAX];
    return secret_read(path, buf, sizeof(buf), len, eb);
}

Test(secret, owner_only_modes_are_read, .init = setup, .fini = teardown)
{
    static const mode_t ok[] = {0600, 0400, 0700};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct errbuf eb = {{0}};
        size_t len = 0;
        cr_assert_eq(read_it(ok[i], &eb, &len), 0, "mode %04o: %s", (unsigned)ok[i], eb.msg);
        cr_assert_eq(len, 6);
    }
}

Test(secret_file_mode, group_or_others_access_is_refused, .init = setup, .fini = teardown)
{
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0610, 0601, 0666};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct errbuf eb = {{0}};
        size_t len = 7;
        cr_assert_eq(read_it(bad[i], &eb, &len), -EPERM, "mode %04o accepted", (unsigned)bad[i]);
        cr_assert_eq(len, 0);
        char want[64];
        (void)snprintf(want, sizeof(want), "has mode %04o", (unsigned)bad[i]);
        cr_assert_not_null(strstr(eb.msg, want), "%s", eb.msg);
        cr_assert_not_null(strstr(eb.msg, path), "%s", eb.msg);
        cr_assert_not_null(strstr(eb.msg, "chmod 600"), "%s", eb.msg);
    }
}

Test(secret, empty_missing_and_non_regular_files_are_errors, .init = setup, .fini = teardown)
{
    struct errbuf eb = {{0}};
    size_t len = 0;
    write_secret("", 0600);
    uint8_t buf[16];
    cr_assert_eq(secret_read(path, buf, sizeof(buf), &len, &eb), -EINVAL);
    cr_assert_not_null(strstr(eb.msg, "empty"), "%s", eb.msg);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(secret_read(path, buf, sizeof(buf), &len, &eb), -ENOENT);
    cr_assert_not_null(strstr(eb.msg, path), "%s", eb.msg);
    cr_assert_eq(chmod(dir, 0700), 0);
    cr_assert_eq(secret_read(dir, buf, sizeof(buf), &len, &eb), -EPERM);
    cr_assert_not_null(strstr(eb.msg, "not a regular file"), "%s", eb.msg);
}
