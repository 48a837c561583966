/* SPDX-License-Identifier: MIT */
/* The data directory and the files keel generates in it (see pg_datadir.h). Why each
 * PostgreSQL setting is chosen is in docs/internals/pg_inst.md. */
#include "db/pg_datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_TEXT_MAX 65536 /* a generated file */

/* ------------------------------------------------------------------------------------------
 * Texts
 * ------------------------------------------------------------------------------------------ */

/* A bounded text being built; is_full sticks. */
struct text {
    char *s;
    size_t size;
    size_t len;
    bool is_full;
};

static void __attribute__((format(printf, 2, 3))) text_add(struct text *t, const char *fmt, ...)
{
    if (t->is_full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->size - t->len) {
        t->is_full = true;
        return;
    }
    t->len += (size_t)n;
}

/* `key = 'value'`, quoted for postgresql.conf. */
static void conf_str(struct text *t, const char *key, const char *value)
{
    char q[2048];
    if (pg_quote_conf(value, q, sizeof(q)) != 0) {
        t->is_full = true; /* a control character: pg_inst_new refuses them */
        return;
    }
    text_add(t, "%s = %s\n", key, q);
}

static void build_postgresql_conf(const struct pg_datadir *d, struct text *t)
{
    text_add(t,
             "# Written by keel before every start of \"%s\": edits here are lost.\n"
             "# initdb's settings are in postgresql.base.conf; ALTER SYSTEM's (such as\n"
             "# synchronous_standby_names) in postgresql.auto.conf, read after this file.\n"
             "include_if_exists = 'postgresql.base.conf'\n\n",
             d->name);
    conf_str(t, "listen_addresses", d->listen_addr);
    text_add(t, "port = %u\n", d->port);
    conf_str(t, "unix_socket_directories", d->socket_dir);
    conf_str(t, "cluster_name", d->name);
    text_add(t, "password_encryption = 'scram-sha-256'\n\n"
                "wal_level = replica\n"
                "hot_standby = on\n"
                "max_wal_senders = 10\n"
                "max_replication_slots = 10\n"
                "wal_keep_size = '128MB'\n"
                "wal_log_hints = on\n"
                "full_page_writes = on\n"
                "synchronous_commit = on\n"
                "hot_standby_feedback = on\n"
                "wal_receiver_status_interval = '1s'\n"
                "recovery_target_timeline = 'latest'\n"
                "recovery_init_sync_method = syncfs\n\n"
                "logging_collector = off\n"
                "log_destination = 'stderr'\n"
                "log_line_prefix = '[%%p] '\n");
    if (d->is_nosync) {
        text_add(t, "fsync = off\n");
    }
    if (d->n_settings > 0) {
        text_add(t, "\n# from keel's configuration\n");
    }
    for (size_t i = 0; i < d->n_settings; i++) {
        text_add(t, "%s\n", d->settings[i]);
    }
    text_add(t, "\n# written by keel when this instance became a standby\n"
                "include_if_exists = '" PG_DATADIR_STANDBY_CONF "'\n");
}

static void build_hba(const struct pg_datadir *d, struct text *t)
{
    text_add(t,
             "# Written by keel before every start of \"%s\": edits here are lost.\n"
             "# TYPE  DATABASE     USER  ADDRESS  METHOD\n"
             "local   all          \"%s\"  peer map=keel\n",
             d->name, d->user);
    for (size_t i = 0; i < d->n_cidrs; i++) {
        text_add(t, "host    replication  \"%s\"  %s  scram-sha-256\n", d->repl_user, d->cidrs[i]);
    }
    for (size_t i = 0; i < d->n_cidrs; i++) {
        text_add(t, "host    all          all  %s  scram-sha-256\n", d->cidrs[i]);
    }
}

static void build_ident(const struct pg_datadir *d, struct text *t)
{
    text_add(t,
             "# Written by keel before every start of \"%s\": edits here are lost.\n"
             "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n",
             d->name);
    if (strcmp(d->keel_user, d->user) != 0) {
        text_add(t, "keel       %s  %s\n", d->keel_user, d->user);
    }
    text_add(t, "keel       %s  %s\n", d->user, d->user);
}

typedef void (*build_fn)(const struct pg_datadir *d, struct text *t);

static int build(const struct pg_datadir *d, build_fn fn, char *out, size_t size)
{
    struct text t = {.s = out, .size = size};
    if (size == 0) {
        return -E2BIG;
    }
    out[0] = '\0';
    fn(d, &t);
    return t.is_full ? -E2BIG : 0;
}

int pg_datadir_postgresql_conf(const struct pg_datadir *d, char *out, size_t size)
{
    return build(d, build_postgresql_conf, out, size);
}

int pg_datadir_hba_conf(const struct pg_datadir *d, char *out, size_t size)
{
    return build(d, build_hba, out, size);
}

int pg_datadir_ident_conf(const struct pg_datadir *d, char *out, size_t size)
{
    return build(d, build_ident, out, size);
}

int pg_primary_conninfo(const struct pg_primary *pr, const char *app_name, const char *dbname,
                        bool with_password, char *buf, size_t size)
{
    char port[8];
    (void)snprintf(port, sizeof(port), "%u", pr->port);
    if (size == 0) {
        return -ENOSPC;
    }
    buf[0] = '\0';
    int rc = pg_conninfo_add(buf, size, "host", pr->host);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "port", port);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "user", pr->user);
    rc = rc != 0 || !with_password ? rc : pg_conninfo_add(buf, size, "password", pr->password);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "application_name", app_name);
    rc = rc != 0 || dbname == NULL ? rc : pg_conninfo_add(buf, size, "dbname", dbname);
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "gssencmode", "disable");
    rc = rc != 0 ? rc : pg_conninfo_add(buf, size, "connect_timeout", "5");
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------ */

static int path_of(const struct pg_datadir *d, const char *rel, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", d->path, rel);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Replace path/rel with len bytes of data: mode 0600, the user's, via a temporary file
 * renamed over the old one so that PostgreSQL never reads half a file. */
static int write_file(const struct pg_datadir *d, const char *rel, const char *data, size_t len)
{
    char path[4096], tmp[4200];
    if (path_of(d, rel, path, sizeof(path)) != 0) {
        return -ENAMETOOLONG;
    }
    (void)snprintf(tmp, sizeof(tmp), "%s.keel-tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        return -errno;
    }
    int rc = 0;
    if (d->ids != NULL && d->ids->is_set && fchown(fd, d->ids->uid, d->ids->gid) == -1) {
        rc = -errno;
    }
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w == -1 && errno == EINTR) {
            continue;
        }
        if (w == -1) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) == -1 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) == -1) {
        rc = -errno;
    }
    if (rc != 0) {
        (void)unlink(tmp); /* best effort: the error is what matters */
    }
    return rc;
}

/* Build with fn and write to rel; a reason in eb on failure. */
static int write_built(const struct pg_datadir *d, const char *rel, build_fn fn, struct errbuf *eb)
{
    char *s = malloc(PG_TEXT_MAX);
    int rc = s == NULL ? -ENOMEM : build(d, fn, s, PG_TEXT_MAX);
    rc = rc != 0 ? rc : write_file(d, rel, s, strlen(s));
    free(s);
    if (rc != 0) {
        errbuf_set(eb, "cannot write %s/%s: %s", d->path, rel, strerror(-rc));
    }
    return rc;
}

int pg_datadir_write_config(const struct pg_datadir *d, struct errbuf *eb)
{
    int rc = write_built(d, "postgresql.conf", build_postgresql_conf, eb);
    rc = rc != 0 ? rc : write_built(d, "pg_hba.conf", build_hba, eb);
    return rc != 0 ? rc : write_built(d, "pg_ident.conf", build_ident, eb);
}

int pg_datadir_write_standby(const struct pg_datadir *d, const struct pg_primary *pr,
                             const char *app_name, struct errbuf *eb)
{
    char ci[2048], *s = malloc(PG_TEXT_MAX);
    struct text t = {.s = s, .size = PG_TEXT_MAX};
    bool is_upstream = pr->host != NULL && pr->host[0] != '\0';
    int rc = s == NULL     ? -ENOMEM
             : is_upstream ? pg_primary_conninfo(pr, app_name, NULL, true, ci, sizeof(ci))
                           : 0;
    if (rc == 0 && !is_upstream) {
        text_add(&t, "# Written by keel: \"%s\" is read-only and follows nobody (fenced).\n",
                 d->name);
        rc = t.is_full ? -E2BIG : write_file(d, PG_DATADIR_STANDBY_CONF, t.s, t.len);
    } else if (rc == 0) {
        text_add(&t, "# Written by keel: \"%s\" streams from %s:%u.\n", d->name, pr->host,
                 pr->port);
        conf_str(&t, "primary_conninfo", ci);
        if (pr->slot != NULL && pr->slot[0] != '\0') {
            conf_str(&t, "primary_slot_name", pr->slot);
        }
        rc = t.is_full ? -E2BIG : write_file(d, PG_DATADIR_STANDBY_CONF, t.s, t.len);
    }
    rc = rc != 0 ? rc : write_file(d, "standby.signal", "", 0);
    explicit_bzero(ci, sizeof(ci));
    if (s != NULL) {
        explicit_bzero(s, PG_TEXT_MAX);
    }
    free(s);
    if (rc != 0) {
        errbuf_set(eb, "cannot write the standby settings in %s: %s", d->path, strerror(-rc));
    }
    return rc;
}

int pg_datadir_clear_standby(const struct pg_datadir *d, bool is_promoted)
{
    char path[4096], text[256];
    if (path_of(d, PG_DATADIR_STANDBY_CONF, path, sizeof(path)) != 0) {
        return -ENAMETOOLONG;
    }
    if (!is_promoted && access(path, F_OK) == 0) {
        return 0;
    }
    int n = snprintf(text, sizeof(text), "# Written by keel: \"%s\" %s.\n", d->name,
                     is_promoted ? "was promoted: it streams from no one" : "is no standby");
    return write_file(d, PG_DATADIR_STANDBY_CONF, text, (size_t)n);
}

int pg_datadir_prepare(const struct pg_datadir *d, struct errbuf *eb)
{
    if (mkdir(d->path, 0700) == -1 && errno != EEXIST) {
        int err = errno;
        errbuf_set(eb, "mkdir(%s) failed: %s", d->path, strerror(err));
        return -err;
    }
    DIR *dir = opendir(d->path);
    if (dir == NULL) {
        int err = errno;
        errbuf_set(eb, "opendir(%s) failed: %s", d->path, strerror(err));
        return -err;
    }
    struct dirent *e;
    bool is_empty = true;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            is_empty = false;
        }
    }
    int rc = is_empty ? 0 : -EEXIST;
    if (rc == 0 && d->ids != NULL && d->ids->is_set &&
        fchown(dirfd(dir), d->ids->uid, d->ids->gid) == -1) {
        rc = -errno;
    }
    if (rc == 0 && fchmod(dirfd(dir), 0700) == -1) {
        rc = -errno;
    }
    (void)closedir(dir); /* a directory: nothing to lose */
    if (rc == -EEXIST) {
        errbuf_set(eb, "data directory %s is not empty", d->path);
    } else if (rc != 0) {
        errbuf_set(eb, "cannot give %s to user %s: %s", d->path, d->user, strerror(-rc));
    }
    return rc;
}

bool pg_datadir_is_initialized(const struct pg_datadir *d)
{
    char path[4096];
    return path_of(d, "PG_VERSION", path, sizeof(path)) == 0 && access(path, F_OK) == 0;
}

bool pg_datadir_is_standby(const struct pg_datadir *d)
{
    char path[4096];
    return path_of(d, "standby.signal", path, sizeof(path)) == 0 && access(path, F_OK) == 0;
}

int pg_datadir_set_signals(const struct pg_datadir *d, bool is_standby)
{
    char path[4096];
    if (path_of(d, "recovery.signal", path, sizeof(path)) != 0) {
        return -ENAMETOOLONG;
    }
    if (unlink(path) == -1 && errno != ENOENT) {
        return -errno;
    }
    if (is_standby) {
        return write_file(d, "standby.signal", "", 0);
    }
    if (path_of(d, "standby.signal", path, sizeof(path)) != 0) {
        return -ENAMETOOLONG;
    }
    return unlink(path) == -1 && errno != ENOENT ? -errno : 0;
}

int pg_datadir_adopt_initdb_conf(const struct pg_datadir *d, struct errbuf *eb)
{
    char from[4096], to[4096];
    if (path_of(d, "postgresql.conf", from, sizeof(from)) != 0 ||
        path_of(d, "postgresql.base.conf", to, sizeof(to)) != 0) {
        errbuf_set(eb, "data directory path too long");
        return -ENAMETOOLONG;
    }
    if (rename(from, to) == -1) {
        int err = errno;
        errbuf_set(eb, "cannot rename postgresql.conf in %s: %s", d->path, strerror(err));
        return -err;
    }
    return 0;
}

int pg_datadir_read_pidfile(const struct pg_datadir *d, struct pg_pidfile *pf)
{
    char path[4096], text[1024];
    if (path_of(d, "postmaster.pid", path, sizeof(path)) != 0) {
        return -ENAMETOOLONG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -errno;
    }
    ssize_t n;
    do {
        n = read(fd, text, sizeof(text));
    } while (n == -1 && errno == EINTR);
    int err = n == -1 ? -errno : 0;
    (void)close(fd); /* read only */
    if (err != 0) {
        return err;
    }
    return pg_pidfile_parse(text, (size_t)n, pf);
}

/* The head of PostgreSQL 15's ControlFileData (src/include/catalog/pg_control.h):
 * system_identifier u64 @0, pg_control_version u32 @8, catalog_version_no u32 @12, state
 * (an enum, 4 bytes) @16, time (int64) @24, checkPoint (XLogRecPtr) @32. Native byte order:
 * the file is written by the server on this machine. */
#define PG_CONTROL_VERSION_15 1300u

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

int pg_datadir_read_control(const struct pg_datadir *d, struct pg_control *out)
{
    char path[4096];
    if (path_of(d, "global/pg_control", path, sizeof(path)) != 0) {
        return -ENAMETOOLONG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -errno;
    }
    uint8_t head[40];
    ssize_t n;
    do {
        n = read(fd, head, sizeof(head));
    } while (n == -1 && errno == EINTR);
    int err = errno;
    close(fd);
    if (n == -1) {
        return -err;
    }
    uint32_t version, state;
    memcpy(&version, head + 8, sizeof(version));
    memcpy(&state, head + 16, sizeof(state));
    if (n != (ssize_t)sizeof(head) || version != PG_CONTROL_VERSION_15) {
        return -EPROTO;
    }
    out->state = (enum pg_control_state)state;
    out->checkpoint_lsn = get_u64(head + 32);
    return 0;
}
