/* SPDX-License-Identifier: MIT */
/* Unit tests of db/pg_sockdir.c: the socket directory's name (short, whatever the data
 * directory), and its checks, which refuse a symlink, a wrong owner, a wrong mode, a parent
 * others may write in, each with its reason; its creation for postgres, the cleaning of a
 * killed postmaster's files (and not of a live one's), its removal. Runs as root. */
#include <criterion/criterion.h>

#include "db/pg_sockdir.c"

#include <ftw.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static char tmp[64];  /* the parent: root's, 0755 */
static char dir[128]; /* tmp/pg-x */
static uid_t pg_uid;
static gid_t pg_gid;

static void setup(void)
{
    (void)snprintf(tmp, sizeof(tmp), "/tmp/keel-sockdir-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    cr_assert_eq(chmod(tmp, 0755), 0);
    (void)snprintf(dir, sizeof(dir), "%s/pg-x", tmp);
    const struct passwd *pw = getpwnam("postgres");
    cr_assert_not_null(pw, "needs the postgres user");
    pg_uid = pw->pw_uid;
    pg_gid = pw->pw_gid;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    (void)(flag == FTW_DP ? rmdir(path) : unlink(path)); /* best effort */
    return 0;
}

static void teardown(void)
{
    (void)nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(pg_sockdir, .init = setup, .fini = teardown, .timeout = 10);

Test(pg_sockdir, path_is_short_whatever_the_data_dir)
{
    char long_dir[2048], out[PG_SOCKDIR_PATH_MAX], other[PG_SOCKDIR_PATH_MAX];
    memset(long_dir, 'a', sizeof(long_dir) - 1);
    long_dir[0] = '/';
    long_dir[sizeof(long_dir) - 1] = '\0';
    cr_assert_eq(pg_sockdir_path(PG_SOCKDIR_PARENT, long_dir, out, sizeof(out)), 0);
    cr_assert_eq(strlen(out), strlen("/run/keel/pg-") + 16, "%s", out);
    /* with PostgreSQL's "/.s.PGSQL.65535", far below sun_path */
    struct sockaddr_un sun;
    cr_assert_lt(strlen(out) + strlen("/.s.PGSQL.65535"), sizeof(sun.sun_path));
    cr_assert_eq(
        pg_sockdir_path(PG_SOCKDIR_PARENT, "/var/lib/keel/db/main/db1", other, sizeof(other)), 0);
    cr_assert_str_neq(out, other);
    volatile size_t small = 10; /* not a constant: gcc would warn of the truncation tested */
    cr_assert_eq(pg_sockdir_path(PG_SOCKDIR_PARENT, long_dir, out, small), -ENOSPC);
}

Test(pg_sockdir, prepare_creates_0700_for_postgres_and_check_passes)
{
    struct errbuf eb = {.msg = ""};
    bool cleaned = true;
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, &cleaned, &eb), 0, "%s", eb.msg);
    cr_assert_not(cleaned);
    struct stat st;
    cr_assert_eq(lstat(dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_uid, pg_uid);
    cr_assert_eq(st.st_mode & 07777, 0700);
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), 0, "%s", eb.msg);
    /* again: accepted as it is */
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, &cleaned, &eb), 0, "%s", eb.msg);
}

Test(pg_sockdir, symlink_is_refused_with_reason)
{
    char target[128];
    (void)snprintf(target, sizeof(target), "%s/elsewhere", tmp);
    cr_assert_eq(mkdir(target, 0700), 0);
    cr_assert_eq(chown(target, pg_uid, pg_gid), 0);
    cr_assert_eq(symlink(target, dir), 0);
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), -ELOOP);
    cr_assert(strstr(eb.msg, "symbolic link") != NULL, "%s", eb.msg);
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), -ELOOP);
    cr_assert(strstr(eb.msg, "symbolic link") != NULL, "%s", eb.msg);
    struct stat st;
    cr_assert_eq(lstat(dir, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the symlink was replaced: refused means left alone");
}

Test(pg_sockdir, wrong_owner_is_refused_with_reason)
{
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(chown(dir, 65534, 65534), 0); /* nobody */
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), -EPERM);
    cr_assert(strstr(eb.msg, "owned by uid 65534") != NULL, "%s", eb.msg);
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), -EPERM);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_uid, 65534, "prepare must not take over a foreign directory");
}

Test(pg_sockdir, wrong_mode_is_refused_with_reason)
{
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(chown(dir, pg_uid, pg_gid), 0);
    cr_assert_eq(chmod(dir, 0777), 0);
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), -EPERM);
    cr_assert(strstr(eb.msg, "mode 0777, not 0700") != NULL, "%s", eb.msg);
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), -EPERM);
}

Test(pg_sockdir, not_a_directory_is_refused)
{
    int fd = open(dir, O_CREAT | O_WRONLY, 0600);
    cr_assert_neq(fd, -1);
    (void)close(fd);
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), -ENOTDIR);
    cr_assert(strstr(eb.msg, "not a directory") != NULL, "%s", eb.msg);
}

Test(pg_sockdir, parent_writable_by_others_is_refused)
{
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), 0, "%s", eb.msg);
    cr_assert_eq(chmod(tmp, 01777), 0); /* like /tmp */
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), -EPERM);
    cr_assert(strstr(eb.msg, "others may write") != NULL, "%s", eb.msg);
}

Test(pg_sockdir, parent_of_another_user_is_refused)
{
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), 0, "%s", eb.msg);
    cr_assert_eq(chown(tmp, 65534, 65534), 0);
    cr_assert_eq(pg_sockdir_check(dir, pg_uid, &eb), -EPERM);
    cr_assert(strstr(eb.msg, "not by keel's user") != NULL, "%s", eb.msg);
}

static void write_lock(const char *name, long pid)
{
    char path[256], text[32];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    cr_assert_neq(fd, -1);
    int n = snprintf(text, sizeof(text), "%ld\n/data\n", pid);
    cr_assert_eq(write(fd, text, (size_t)n), n);
    (void)close(fd);
}

/* A pid that no longer runs. */
static long dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    (void)waitpid(pid, NULL, 0);
    return pid;
}

Test(pg_sockdir, prepare_cleans_a_killed_postmasters_files)
{
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), 0, "%s", eb.msg);
    write_lock(".s.PGSQL.5432.lock", dead_pid());
    write_lock(".s.PGSQL.5432", 0); /* stands for the socket */
    bool cleaned = false;
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, &cleaned, &eb), 0, "%s", eb.msg);
    cr_assert(cleaned);
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/.s.PGSQL.5432.lock", dir);
    cr_assert_eq(access(path, F_OK), -1);
    (void)snprintf(path, sizeof(path), "%s/.s.PGSQL.5432", dir);
    cr_assert_eq(access(path, F_OK), -1);
}

Test(pg_sockdir, a_live_postmasters_files_stay)
{
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), 0, "%s", eb.msg);
    write_lock(".s.PGSQL.5432.lock", (long)getpid());
    bool cleaned = true;
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, &cleaned, &eb), 0, "%s", eb.msg);
    cr_assert_not(cleaned);
    cr_assert_eq(pg_sockdir_remove(dir, pg_uid, &eb), -EBUSY);
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/.s.PGSQL.5432.lock", dir);
    cr_assert_eq(access(path, F_OK), 0);
}

Test(pg_sockdir, remove_takes_the_directory_away)
{
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), 0, "%s", eb.msg);
    write_lock(".s.PGSQL.5432.lock", dead_pid());
    cr_assert_eq(pg_sockdir_remove(dir, pg_uid, &eb), 0, "%s", eb.msg);
    cr_assert_eq(access(dir, F_OK), -1);
}

Test(pg_sockdir, remove_leaves_a_hostile_directory_alone)
{
    cr_assert_eq(mkdir(dir, 0777), 0);
    cr_assert_eq(chmod(dir, 0777), 0);
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_remove(dir, pg_uid, &eb), -EPERM);
    cr_assert_eq(access(dir, F_OK), 0);
}

Test(pg_sockdir, a_zombie_postmasters_files_are_stale)
{
    /* keel killed: its postmaster is reparented and may stay a zombie for a while */
    pid_t pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    cr_assert_gt(pid, 0);
    siginfo_t si;
    cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0); /* exited, not reaped */
    struct errbuf eb = {.msg = ""};
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, NULL, &eb), 0, "%s", eb.msg);
    write_lock(".s.PGSQL.5432.lock", pid);
    bool cleaned = false;
    cr_assert_eq(pg_sockdir_prepare(dir, pg_uid, pg_gid, &cleaned, &eb), 0, "%s", eb.msg);
    cr_assert(cleaned);
    (void)waitpid(pid, NULL, 0);
}
