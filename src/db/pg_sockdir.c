/* SPDX-License-Identifier: MIT */
/* PostgreSQL's socket directory (see pg_sockdir.h): its name, the ownership checks done with
 * O_NOFOLLOW and fstat, its creation for the instance's user, and the removal of what a
 * killed postmaster left in it. */
#include "db/pg_sockdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_PREFIX ".s.PGSQL."

int pg_sockdir_path(const char *parent, const char *data_dir, char *out, size_t size)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *c = data_dir; *c != '\0'; c++) {
        h = (h ^ (uint8_t)*c) * 1099511628211ull;
    }
    int n = snprintf(out, size, "%s/pg-%016llx", parent, (unsigned long long)h);
    return n > 0 && (size_t)n < size ? 0 : -ENOSPC;
}

/* Split path into its parent and its last component (both copied). */
static int split(const char *path, char *parent, size_t psize, const char **base, struct errbuf *eb)
{
    const char *slash = strrchr(path, '/');
    if (path[0] != '/' || slash == NULL || slash[1] == '\0' || (size_t)(slash - path) >= psize) {
        errbuf_set(eb, "socket directory %s: not an absolute path to a directory", path);
        return -EINVAL;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(parent, path, n);
    parent[n] = '\0';
    *base = slash + 1;
    return 0;
}

/* Open dir (relative to at, or absolute) without following a symlink in its last
 * component. Returns the fd or -errno, with the reason in eb. */
static int open_dir(int at, const char *dir, const char *shown, struct errbuf *eb)
{
    int fd;
    do {
        fd = openat(at, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    if (fd != -1) {
        return fd;
    }
    int err = errno;
    struct stat st;
    if ((err == ELOOP || err == ENOTDIR) && fstatat(at, dir, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
            errbuf_set(eb, "%s is a symbolic link: refused (it must be a directory keel made)",
                       shown);
            return -ELOOP;
        }
        errbuf_set(eb, "%s is not a directory: refused", shown);
        return -ENOTDIR;
    }
    errbuf_set(eb, "cannot open %s: %s", shown, strerror(err));
    return -err;
}

/* The parent: only keel's user (or root) may create or rename things in it. */
static int check_parent(int fd, const char *shown, struct errbuf *eb)
{
    struct stat st;
    if (fstat(fd, &st) == -1) {
        int err = errno;
        errbuf_set(eb, "cannot stat %s: %s", shown, strerror(err));
        return -err;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        errbuf_set(eb, "%s is owned by uid %u, not by keel's user (uid %u) or root: refused", shown,
                   (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        errbuf_set(eb, "%s has mode %04o: others may write in it: refused", shown,
                   (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* The directory itself: the user's, 0700. */
static int check_dir(int fd, const char *shown, uid_t uid, struct errbuf *eb)
{
    struct stat st;
    if (fstat(fd, &st) == -1) {
        int err = errno;
        errbuf_set(eb, "cannot stat %s: %s", shown, strerror(err));
        return -err;
    }
    if (st.st_uid != uid) {
        errbuf_set(eb, "%s is owned by uid %u, not by PostgreSQL's user (uid %u): refused", shown,
                   (unsigned)st.st_uid, (unsigned)uid);
        return -EPERM;
    }
    if ((st.st_mode & 07777) != 0700) {
        errbuf_set(eb, "%s has mode %04o, not 0700: refused", shown,
                   (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* Open and check the parent, then path; returns the fd of path (and of its parent in *pfd),
 * or a negative code. */
static int open_checked(const char *path, uid_t uid, int *pfd, struct errbuf *eb)
{
    char parent[PATH_MAX];
    const char *base;
    int rc = split(path, parent, sizeof(parent), &base, eb);
    if (rc != 0) {
        return rc;
    }
    int p = open_dir(AT_FDCWD, parent, parent, eb);
    if (p < 0) {
        return p;
    }
    rc = check_parent(p, parent, eb);
    int fd = rc == 0 ? open_dir(p, base, path, eb) : rc;
    if (fd >= 0) {
        rc = check_dir(fd, path, uid, eb);
        if (rc != 0) {
            (void)close(fd);
            fd = rc;
        }
    }
    if (fd < 0 || pfd == NULL) {
        (void)close(p);
    } else {
        *pfd = p;
    }
    return fd;
}

int pg_sockdir_check(const char *path, uid_t uid, struct errbuf *eb)
{
    int fd = open_checked(path, uid, NULL, eb);
    if (fd < 0) {
        return fd;
    }
    (void)close(fd);
    return 0;
}

/* The pid in a lock file (its first line), 0 if unreadable. */
static long lock_pid(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        return 0;
    }
    char buf[32];
    ssize_t n;
    do {
        n = read(fd, buf, sizeof(buf) - 1);
    } while (n == -1 && errno == EINTR);
    (void)close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

/* Whether pid runs: it exists and is no zombie (a postmaster whose keel was killed is
 * reparented, and stays a zombie until its new parent reaps it: it is dead all the same). */
static bool pid_alive(long pid)
{
    if (pid <= 0 || (kill((pid_t)pid, 0) == -1 && errno != EPERM)) {
        return false;
    }
    char path[64], buf[512];
    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return true; /* no /proc: trust kill() */
    }
    ssize_t n;
    do {
        n = read(fd, buf, sizeof(buf) - 1);
    } while (n == -1 && errno == EINTR);
    (void)close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may hold anything but ends at ')' */
    return paren == NULL || paren[1] == '\0' || (paren[2] != 'Z' && paren[2] != 'X');
}

/* Remove the files of dead postmasters from the directory open as dfd: -EBUSY (nothing
 * removed) if a lock file names a live process. *removed counts the files removed. */
static int clean(int dfd, const char *shown, size_t *removed, struct errbuf *eb)
{
    *removed = 0;
    int dup_fd = dup(dfd);
    DIR *d = dup_fd == -1 ? NULL : fdopendir(dup_fd);
    if (d == NULL) {
        int err = errno;
        if (dup_fd != -1) {
            (void)close(dup_fd);
        }
        errbuf_set(eb, "cannot list %s: %s", shown, strerror(err));
        return -err;
    }
    long live = 0;
    for (struct dirent *e = readdir(d); e != NULL && live == 0; e = readdir(d)) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, LOCK_PREFIX, strlen(LOCK_PREFIX)) == 0 && n > 5 &&
            strcmp(e->d_name + n - 5, ".lock") == 0 && pid_alive(lock_pid(dfd, e->d_name))) {
            live = lock_pid(dfd, e->d_name);
        }
    }
    rewinddir(d);
    int rc = 0;
    for (struct dirent *e = live != 0 ? NULL : readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (unlinkat(dfd, e->d_name, 0) == -1) {
            int err = errno;
            errbuf_set(eb, "cannot remove %s/%s: %s", shown, e->d_name, strerror(err));
            rc = -err;
            break;
        }
        (*removed)++;
    }
    (void)closedir(d);
    if (live != 0) {
        errbuf_set(eb, "%s is in use by postmaster pid %ld", shown, live);
        return -EBUSY;
    }
    return rc;
}

int pg_sockdir_prepare(const char *path, uid_t uid, gid_t gid, bool *cleaned, struct errbuf *eb)
{
    char parent[PATH_MAX];
    const char *base;
    if (cleaned != NULL) {
        *cleaned = false;
    }
    int rc = split(path, parent, sizeof(parent), &base, eb);
    if (rc != 0) {
        return rc;
    }
    if (mkdir(parent, 0755) == -1 && errno != EEXIST) {
        int err = errno;
        errbuf_set(eb, "cannot create %s: %s", parent, strerror(err));
        return -err;
    }
    int pfd = open_dir(AT_FDCWD, parent, parent, eb);
    if (pfd < 0) {
        return pfd;
    }
    rc = check_parent(pfd, parent, eb);
    if (rc == 0 && mkdirat(pfd, base, 0700) == 0) {
        /* Ours now, 0700 and root's: nobody else can reach it while it changes owner. */
        int fd = open_dir(pfd, base, path, eb);
        if (fd < 0) {
            rc = fd;
        } else {
            if (fchown(fd, uid, gid) == -1 || fchmod(fd, 0700) == -1) {
                rc = -errno;
                errbuf_set(eb, "cannot give %s to uid %u: %s", path, (unsigned)uid, strerror(-rc));
            }
            (void)close(fd);
        }
    } else if (rc == 0 && errno != EEXIST) {
        rc = -errno;
        errbuf_set(eb, "cannot create %s: %s", path, strerror(-rc));
    } else if (rc == 0) {
        int fd = open_dir(pfd, base, path, eb);
        rc = fd < 0 ? fd : check_dir(fd, path, uid, eb);
        size_t removed = 0;
        if (rc == 0) {
            struct errbuf busy;
            rc = clean(fd, path, &removed, &busy);
            rc = rc == -EBUSY ? 0 : rc; /* that postmaster's start will say so */
            if (rc != 0) {
                *eb = busy;
            }
        }
        if (cleaned != NULL) {
            *cleaned = removed > 0;
        }
        if (fd >= 0) {
            (void)close(fd);
        }
    }
    (void)close(pfd);
    return rc;
}

int pg_sockdir_remove(const char *path, uid_t uid, struct errbuf *eb)
{
    int pfd = -1;
    int fd = open_checked(path, uid, &pfd, eb);
    if (fd < 0) {
        return fd;
    }
    size_t removed;
    int rc = clean(fd, path, &removed, eb);
    (void)close(fd);
    const char *base = strrchr(path, '/') + 1;
    if (rc == 0 && unlinkat(pfd, base, AT_REMOVEDIR) == -1) {
        rc = -errno;
        errbuf_set(eb, "cannot remove %s: %s", path, strerror(-rc));
    }
    (void)close(pfd);
    return rc;
}
