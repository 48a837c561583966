/* SPDX-License-Identifier: MIT */
/* Unit tests of db/pg_datadir.c without a server: the texts of postgresql.conf, pg_hba.conf
 * and pg_ident.conf; the data directory's creation, owner and mode; the files written in
 * it (owner postgres, mode 0600), the standby settings and their quoting, emptying them
 * after a promotion, postmaster.pid, and the conninfo of a primary. */
#include <criterion/criterion.h>

#include "db/pg_datadir.c"

#include "core/child.h"

#include <ftw.h>
#include <pwd.h>

static char tmp[64];
static char datadir[128];
static struct child_ids ids;

static const char *const cidrs[] = {"10.0.0.0/24", "fd00::/64"};
static const char *const settings[] = {"work_mem = '8MB'"};

static struct pg_datadir dd(void)
{
    return (struct pg_datadir){.path = datadir,
                               .name = "db1",
                               .user = "postgres",
                               .ids = &ids,
                               .keel_user = "root",
                               .listen_addr = "10.0.0.31",
                               .port = 5432,
                               .socket_dir = "/run/keel pg",
                               .repl_user = "replicator",
                               .cidrs = cidrs,
                               .n_cidrs = 2,
                               .settings = settings,
                               .n_settings = 1};
}

static void setup(void)
{
    (void)snprintf(tmp, sizeof(tmp), "/tmp/keel-pgdd-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    (void)snprintf(datadir, sizeof(datadir), "%s/data", tmp);
    bool is_ignored;
    struct errbuf eb;
    cr_assert_eq(child_ids_resolve("postgres", &ids, &is_ignored, &eb), 0, "%s", eb.msg);
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

TestSuite(pg_datadir, .init = setup, .fini = teardown, .timeout = 10);

static char *slurp(const char *rel, struct stat *st)
{
    static char text[8192];
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/%s", datadir, rel);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    cr_assert_eq(fstat(fileno(f), st), 0);
    fclose(f);
    return text;
}

Test(pg_datadir, postgresql_conf_text)
{
    struct pg_datadir d = dd();
    char out[8192];
    cr_assert_eq(pg_datadir_postgresql_conf(&d, out, sizeof(out)), 0);
    const char *want[] = {"include_if_exists = 'postgresql.base.conf'\n",
                          "listen_addresses = '10.0.0.31'\n",
                          "port = 5432\n",
                          "unix_socket_directories = '/run/keel pg'\n",
                          "cluster_name = 'db1'\n",
                          "wal_level = replica\n",
                          "hot_standby = on\n",
                          "wal_log_hints = on\n",
                          "synchronous_commit = on\n",
                          "recovery_init_sync_method = syncfs\n",
                          "log_line_prefix = '[%p] '\n",
                          "work_mem = '8MB'\n",
                          "include_if_exists = 'keel_standby.conf'\n"};
    const char *at = out;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *found = strstr(at, want[i]);
        cr_assert_not_null(found, "missing or out of order: %s", want[i]);
        at = found; /* the order matters: later settings win */
    }
    cr_assert_null(strstr(out, "fsync = off"));
    d.is_nosync = true;
    d.name = "it's";
    cr_assert_eq(pg_datadir_postgresql_conf(&d, out, sizeof(out)), 0);
    cr_assert_not_null(strstr(out, "fsync = off\n"));
    cr_assert_not_null(strstr(out, "cluster_name = 'it\\'s'\n"));
    cr_assert_eq(pg_datadir_postgresql_conf(&d, out, 100), -E2BIG);
}

Test(pg_datadir, hba_and_ident_text)
{
    struct pg_datadir d = dd();
    char out[4096];
    cr_assert_eq(pg_datadir_hba_conf(&d, out, sizeof(out)), 0);
    cr_assert_not_null(strstr(out, "\nlocal   all          \"postgres\"  peer map=keel\n"));
    cr_assert_not_null(strstr(out, "host    replication  \"replicator\"  10.0.0.0/24  "
                                   "scram-sha-256\n"));
    cr_assert_not_null(strstr(out, "host    replication  \"replicator\"  fd00::/64  "
                                   "scram-sha-256\n"));
    cr_assert_not_null(strstr(out, "host    all          all  fd00::/64  scram-sha-256\n"));
    cr_assert_null(strstr(out, "trust"));
    cr_assert_null(strstr(out, "md5"));
    cr_assert_eq(pg_datadir_ident_conf(&d, out, sizeof(out)), 0);
    cr_assert_not_null(strstr(out, "keel       root  postgres\n"));
    cr_assert_not_null(strstr(out, "keel       postgres  postgres\n"));
    d.keel_user = "postgres"; /* keel runs as postgres itself: one line */
    cr_assert_eq(pg_datadir_ident_conf(&d, out, sizeof(out)), 0);
    cr_assert_null(strstr(out, "root"));
}

Test(pg_datadir, prepare_owner_mode_and_emptiness)
{
    struct pg_datadir d = dd();
    struct errbuf eb;
    cr_assert_eq(pg_datadir_prepare(&d, &eb), 0, "%s", eb.msg);
    struct stat st;
    cr_assert_eq(stat(datadir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(st.st_uid, ids.uid);
    cr_assert_eq(pg_datadir_prepare(&d, &eb), 0, "empty: accepted again");
    cr_assert_not(pg_datadir_is_initialized(&d));
    cr_assert_eq(pg_datadir_write_config(&d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(pg_datadir_prepare(&d, &eb), -EEXIST);
    cr_assert_not_null(strstr(eb.msg, "not empty"));
    struct pg_datadir nowhere = dd();
    nowhere.path = "/nonexistent-keel/x/data";
    cr_assert_eq(pg_datadir_prepare(&nowhere, &eb), -ENOENT);
}

Test(pg_datadir, config_files_are_the_users_and_private)
{
    struct pg_datadir d = dd();
    struct errbuf eb;
    cr_assert_eq(pg_datadir_prepare(&d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(pg_datadir_write_config(&d, &eb), 0, "%s", eb.msg);
    const char *files[] = {"postgresql.conf", "pg_hba.conf", "pg_ident.conf"};
    for (size_t i = 0; i < 3; i++) {
        struct stat st;
        const char *text = slurp(files[i], &st);
        cr_assert_eq(st.st_uid, ids.uid, "%s", files[i]);
        cr_assert_eq(st.st_mode & 0777, 0600, "%s", files[i]);
        cr_assert(strncmp(text, "# Written by keel", 17) == 0, "%s", files[i]);
    }
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/postgresql.conf.keel-tmp", datadir);
    cr_assert_neq(access(path, F_OK), 0, "no temporary file left");
    /* initdb's file becomes the base. */
    cr_assert_eq(pg_datadir_adopt_initdb_conf(&d, &eb), 0, "%s", eb.msg);
    struct stat st;
    cr_assert_not_null(strstr(slurp("postgresql.base.conf", &st), "listen_addresses"));
    cr_assert_eq(pg_datadir_adopt_initdb_conf(&d, &eb), -ENOENT);
}

Test(pg_datadir, standby_settings_and_promotion)
{
    struct pg_datadir d = dd();
    struct errbuf eb;
    cr_assert_eq(pg_datadir_prepare(&d, &eb), 0, "%s", eb.msg);
    cr_assert_not(pg_datadir_is_standby(&d));
    cr_assert_eq(pg_datadir_clear_standby(&d, false), 0);
    struct stat st;
    cr_assert_not_null(strstr(slurp(PG_DATADIR_STANDBY_CONF, &st), "is no standby"));
    struct pg_primary pr = {.host = "10.0.0.32",
                            .port = 5433,
                            .user = "replicator",
                            .password = "p'w\\x",
                            .slot = "db1"};
    cr_assert_eq(pg_datadir_write_standby(&d, &pr, "db1", &eb), 0, "%s", eb.msg);
    cr_assert(pg_datadir_is_standby(&d));
    const char *text = slurp(PG_DATADIR_STANDBY_CONF, &st);
    cr_assert_eq(st.st_mode & 0777, 0600, "it holds a password");
    cr_assert_eq(st.st_uid, ids.uid);
    /* Two levels of quoting: the conninfo value, then the postgresql.conf string. */
    cr_assert_not_null(strstr(text, "primary_conninfo = 'host=\\'10.0.0.32\\' port=\\'5433\\' "
                                    "user=\\'replicator\\' password=\\'p\\\\\\'w\\\\\\\\x\\' "
                                    "application_name=\\'db1\\' gssencmode=\\'disable\\' "
                                    "connect_timeout=\\'5\\''\n"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "primary_slot_name = 'db1'\n"));
    /* A start does not touch it; a promotion empties it. */
    cr_assert_eq(pg_datadir_clear_standby(&d, false), 0);
    cr_assert_not_null(strstr(slurp(PG_DATADIR_STANDBY_CONF, &st), "primary_conninfo"));
    cr_assert_eq(pg_datadir_clear_standby(&d, true), 0);
    cr_assert_null(strstr(slurp(PG_DATADIR_STANDBY_CONF, &st), "primary_conninfo"));
    pr.slot = NULL;
    cr_assert_eq(pg_datadir_write_standby(&d, &pr, "db1", &eb), 0, "%s", eb.msg);
    cr_assert_null(strstr(slurp(PG_DATADIR_STANDBY_CONF, &st), "primary_slot_name"));
}

Test(pg_datadir, pidfile_and_conninfo)
{
    struct pg_datadir d = dd();
    struct errbuf eb;
    struct pg_pidfile pf;
    cr_assert_eq(pg_datadir_prepare(&d, &eb), 0, "%s", eb.msg);
    cr_assert_eq(pg_datadir_read_pidfile(&d, &pf), -ENOENT);
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("123\n/d\n1\n5432\n/s\n*\n 1 2\nready   \n", f);
    fclose(f);
    cr_assert_eq(pg_datadir_read_pidfile(&d, &pf), 0);
    cr_assert_eq(pf.pid, 123);
    cr_assert_eq(pf.status, PG_PM_READY);
    struct pg_primary pr = {.host = "10.0.0.32", .port = 5432, .user = "r", .password = "x"};
    char ci[512];
    cr_assert_eq(pg_primary_conninfo(&pr, "keel_rewind", "postgres", false, ci, sizeof(ci)), 0);
    cr_assert_str_eq(ci, "host='10.0.0.32' port='5432' user='r' application_name='keel_rewind' "
                         "dbname='postgres' gssencmode='disable' connect_timeout='5'");
    cr_assert_eq(pg_primary_conninfo(&pr, "a", NULL, true, ci, 40), -ENOSPC);
}

static void write_control(uint32_t version, uint32_t state, uint64_t lsn, size_t len)
{
    uint8_t head[64] = {0};
    memcpy(head + 8, &version, sizeof(version));
    memcpy(head + 16, &state, sizeof(state));
    memcpy(head + 32, &lsn, sizeof(lsn));
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/global", datadir);
    cr_assert(mkdir(datadir, 0700) == 0 || errno == EEXIST);
    cr_assert(mkdir(path, 0700) == 0 || errno == EEXIST);
    (void)snprintf(path, sizeof(path), "%s/global/pg_control", datadir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(head, 1, len, f), len);
    fclose(f);
}

Test(pg_datadir, control_file_state_and_checkpoint)
{
    struct pg_datadir d = dd();
    struct pg_control ctl;
    cr_assert_eq(pg_datadir_read_control(&d, &ctl), -ENOENT);
    write_control(1300, 1, 0x3000128ull, 64);
    cr_assert_eq(pg_datadir_read_control(&d, &ctl), 0);
    cr_assert_eq(ctl.state, PG_CONTROL_SHUT_DOWN);
    cr_assert_eq(ctl.checkpoint_lsn, 0x3000128ull);
    write_control(1201, 1, 0x3000128ull, 64); /* PostgreSQL 14's layout: refused */
    cr_assert_eq(pg_datadir_read_control(&d, &ctl), -EPROTO);
    write_control(1300, 6, 1, 20); /* short */
    cr_assert_eq(pg_datadir_read_control(&d, &ctl), -EPROTO);
}
