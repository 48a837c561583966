/* SPDX-License-Identifier: MIT */
/* Unit tests for src/http/http_filecache.c: hits, expiry, never closing a file in use, and
 * small files kept in memory. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <unistd.h>

#include "http/http_filecache.c"

static int open_null(struct stat *st)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(fstat(fd, st), 0);
    return fd;
}

Test(filecache, hit_until_expiry)
{
    struct http_filecache *fc = http_filecache_new();
    char key[HTTP_FILECACHE_KEY_MAX];
    cr_assert(http_filecache_key(key, 1, 0, 0, "/a.txt"));
    cr_assert_null(http_filecache_get(fc, key, 0));
    struct stat st;
    int fd = open_null(&st);
    struct http_filecache_entry *e = http_filecache_put(fc, key, fd, &st, 1000);
    cr_assert_not_null(e);
    http_filecache_release(e);
    struct http_filecache_entry *hit =
        http_filecache_get(fc, key, 1000 + HTTP_FILECACHE_VALID_MS - 1);
    cr_assert_eq(hit, e);
    cr_assert_eq(hit->fd, fd);
    http_filecache_release(hit);
    cr_assert_null(http_filecache_get(fc, key, 1000 + HTTP_FILECACHE_VALID_MS));
    char other[HTTP_FILECACHE_KEY_MAX];
    cr_assert(http_filecache_key(other, 2, 0, 0, "/a.txt")); /* another generation */
    cr_assert_null(http_filecache_get(fc, other, 1000));
    http_filecache_free(fc);
}

Test(filecache, busy_slot_is_not_replaced)
{
    struct http_filecache *fc = http_filecache_new();
    char key[HTTP_FILECACHE_KEY_MAX];
    cr_assert(http_filecache_key(key, 1, 0, 0, "/x"));
    struct stat st;
    int fd1 = open_null(&st), fd2 = open_null(&st);
    struct http_filecache_entry *e = http_filecache_put(fc, key, fd1, &st, 0);
    cr_assert_not_null(e); /* held by a connection */
    cr_assert_null(http_filecache_put(fc, key, fd2, &st, 5000), "in use: caller keeps fd2");
    cr_assert_neq(fcntl(fd1, F_GETFD), -1, "fd1 still open");
    http_filecache_release(e);
    e = http_filecache_put(fc, key, fd2, &st, 5000);
    cr_assert_not_null(e);
    cr_assert_eq(fcntl(fd1, F_GETFD), -1, "the old file was closed on replacement");
    http_filecache_release(e);
    http_filecache_free(fc);
}

Test(filecache, long_keys_are_not_cached)
{
    char path[400], key[HTTP_FILECACHE_KEY_MAX];
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    cr_assert(!http_filecache_key(key, 1, 0, 0, path));
}

/* A temporary file of size bytes (a repeating pattern), opened for reading. */
static int temp_file(size_t size, struct stat *st)
{
    char path[] = "/tmp/keel-fc-XXXXXX";
    int wfd = mkstemp(path);
    cr_assert(wfd >= 0);
    for (size_t i = 0; i < size; i++) {
        char ch = (char)('a' + i % 26);
        cr_assert_eq(write(wfd, &ch, 1), 1);
    }
    close(wfd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    unlink(path);
    cr_assert_eq(fstat(fd, st), 0);
    return fd;
}

/* Small files are kept in memory (read whole at put), larger and empty ones are not, and a
 * replaced entry frees its bytes (valgrind/ASan check). */
Test(filecache, small_files_are_kept_in_memory)
{
    struct http_filecache *fc = http_filecache_new();
    char key[HTTP_FILECACHE_KEY_MAX];
    cr_assert(http_filecache_key(key, 1, 0, 0, "/small"));
    struct stat st;
    int fd = temp_file(1000, &st);
    struct http_filecache_entry *e = http_filecache_put(fc, key, fd, &st, 0);
    cr_assert_not_null(e);
    cr_assert_not_null(e->body);
    cr_assert(e->body[0] == 'a' && e->body[999] == (char)('a' + 999 % 26));
    cr_assert_eq(e->headers_len, 0, "header lines are made by their first user");
    http_filecache_release(e);

    cr_assert(http_filecache_key(key, 1, 0, 0, "/edge"));
    fd = temp_file(HTTP_FILECACHE_BODY_MAX, &st);
    e = http_filecache_put(fc, key, fd, &st, 0);
    cr_assert_not_null(e);
    cr_assert_not_null(e->body, "exactly the limit is kept");
    http_filecache_release(e);
    fd = temp_file(HTTP_FILECACHE_BODY_MAX + 1, &st);
    e = http_filecache_put(fc, key, fd, &st, HTTP_FILECACHE_VALID_MS); /* replaces /edge */
    cr_assert_not_null(e);
    cr_assert_null(e->body, "beyond the limit: sendfile");
    http_filecache_release(e);

    int empty = open_null(&st);
    cr_assert(http_filecache_key(key, 1, 0, 0, "/empty"));
    e = http_filecache_put(fc, key, empty, &st, 0);
    cr_assert_not_null(e);
    cr_assert_null(e->body);
    http_filecache_release(e);
    http_filecache_free(fc);
}
