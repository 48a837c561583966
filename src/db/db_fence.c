/* SPDX-License-Identifier: MIT */
/* The fence watcher: a child process with its own tiny loop (a clock read every
 * DB_FENCE_POLL_MS), fed by the agent through one shared page, that ends PostgreSQL when
 * the leader's renewals stop. It owns no part of the election: the agent decides when it is
 * armed and for which postmaster. The child runs after fork() in a multi-threaded process,
 * so it makes only async-signal-safe calls (system calls, atomics, its own formatting):
 * no malloc, no stdio, no log_msg. */
#include "db/db_fence.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/conf-t.h"

/* The page the agent and the watcher share. The agent writes pid then deadline; the watcher
 * takes the deadline back to 0 (compare-and-swap) when it fires, so a renewal that lands at
 * that moment either moves the deadline first (no fence) or comes too late (fence). */
struct fence_page {
    _Atomic uint64_t deadline_ms; /* CLOCK_MONOTONIC ms; 0: disarmed */
    _Atomic int32_t pid;          /* the postmaster; 0: none */
    _Atomic uint32_t fired;       /* fences carried out */
};

struct db_fence {
    struct fence_page *page;
    pid_t pid; /* the watcher */
};

/* ---------------------------------------------------------------- the watcher */

static volatile sig_atomic_t parent_gone;

static void on_parent_death(int sig)
{
    (void)sig;
    parent_gone = 1;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Append s to buf (bounded). */
static size_t put_str(char *buf, size_t at, size_t size, const char *s)
{
    while (*s != '\0' && at + 1 < size) {
        buf[at++] = *s++;
    }
    return at;
}

/* Append v in decimal, zero-padded to width digits. */
static size_t put_num(char *buf, size_t at, size_t size, uint64_t v, int width)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < (int)sizeof(d));
    while (n < width && n < (int)sizeof(d)) {
        d[n++] = '0';
    }
    while (n > 0 && at + 1 < size) {
        buf[at++] = d[--n];
    }
    return at;
}

/* One log line in keel's format ("2026-12-07T14:00:00.123Z [warn] fence db: ..."), written
 * with one write(2) to stderr. The civil date from days since 1970 (H. Hinnant's
 * algorithm): gmtime_r may take a lock another thread of keel held at fork. */
static void say(const char *level, const char *name, const char *what, pid_t pid)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    int64_t days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    char line[512];
    size_t n = put_num(line, 0, sizeof(line), (uint64_t)year, 4);
    n = put_str(line, n, sizeof(line), "-");
    n = put_num(line, n, sizeof(line), (uint64_t)month, 2);
    n = put_str(line, n, sizeof(line), "-");
    n = put_num(line, n, sizeof(line), (uint64_t)day, 2);
    n = put_str(line, n, sizeof(line), "T");
    n = put_num(line, n, sizeof(line), (uint64_t)(secs / 3600), 2);
    n = put_str(line, n, sizeof(line), ":");
    n = put_num(line, n, sizeof(line), (uint64_t)(secs / 60 % 60), 2);
    n = put_str(line, n, sizeof(line), ":");
    n = put_num(line, n, sizeof(line), (uint64_t)(secs % 60), 2);
    n = put_str(line, n, sizeof(line), ".");
    n = put_num(line, n, sizeof(line), (uint64_t)(ts.tv_nsec / 1000000), 3);
    n = put_str(line, n, sizeof(line), "Z [");
    n = put_str(line, n, sizeof(line), level);
    n = put_str(line, n, sizeof(line), "] fence db: ");
    n = put_str(line, n, sizeof(line), name);
    n = put_str(line, n, sizeof(line), ": fence watcher: ");
    n = put_str(line, n, sizeof(line), what);
    if (pid > 0) {
        n = put_str(line, n, sizeof(line), " (postmaster ");
        n = put_num(line, n, sizeof(line), (uint64_t)pid, 1);
        n = put_str(line, n, sizeof(line), ")");
    }
    line[n++] = '\n';
    ssize_t w = write(2, line, n);
    (void)w; /* nowhere else to say it */
}

/* End PostgreSQL now: SIGQUIT is its immediate shutdown (the postmaster SIGQUITs every
 * backend, and none acknowledges another commit); SIGKILL if the postmaster has not exited a
 * second later. The pidfd cannot name a recycled pid. A postmaster whose parent (keel) is
 * stopped exits as a zombie: its pidfd is readable all the same. */
static void fence_now(int pidfd)
{
    (void)syscall(SYS_pidfd_send_signal, pidfd, SIGQUIT, NULL, 0);
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&pfd, 1, 1000);
    } while (rc == -1 && errno == EINTR);
    if (rc == 0) {
        (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    }
}

static void watcher_signals(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            (void)sigaction(sig, &dfl, NULL); /* EINVAL for the few that cannot change */
        }
    }
    /* keel handles the terminal's signals itself and ends the watcher when it stops */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    (void)sigaction(SIGINT, &ign, NULL);
    (void)sigaction(SIGHUP, &ign, NULL);
    (void)sigaction(SIGPIPE, &ign, NULL);
    struct sigaction on_death = {.sa_handler = on_parent_death};
    (void)sigaction(SIGUSR1, &on_death, NULL);
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static _Noreturn void watch(struct fence_page *pg, pid_t parent, const char *name)
{
    (void)close_range(3, ~0u, 0); /* keel's sockets and pipes are not the watcher's */
    watcher_signals();
    (void)setpgid(0, 0); /* a SIGSTOP of keel's process group does not stop the fence */
    (void)prctl(PR_SET_NAME, "keel-fence", 0, 0, 0); /* what ps and top show */
    (void)prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() != parent) {
        parent_gone = 1; /* keel died before the line above */
    }
    int pidfd = -1;
    pid_t watched = 0;
    for (;;) {
        pid_t pid = atomic_load(&pg->pid);
        if (pid != watched) {
            if (pidfd != -1) {
                (void)close(pidfd);
            }
            pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
            watched = pid;
        }
        uint64_t deadline = atomic_load(&pg->deadline_ms);
        bool is_armed = deadline != 0 && pidfd != -1;
        bool is_orphan = parent_gone || getppid() != parent;
        if (is_orphan && !is_armed) {
            _exit(0);
        }
        if (is_armed && mono_ms() >= deadline + DB_FENCE_GRACE_MS &&
            atomic_compare_exchange_strong(&pg->deadline_ms, &deadline, 0)) {
            say("warn", name,
                is_orphan ? "keel died and the lease was not renewed in time: ending PostgreSQL"
                          : "the lease was not renewed in time (the agent is stopped or "
                            "stuck): ending PostgreSQL",
                pid);
            fence_now(pidfd);
            atomic_fetch_add(&pg->fired, 1);
            continue;
        }
        struct timespec nap = {.tv_nsec = DB_FENCE_POLL_MS * 1000000L};
        (void)clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL); /* EINTR: look at once */
    }
}

/* ---------------------------------------------------------------- the agent's side */

struct db_fence *db_fence_start(const char *name, struct errbuf *eb)
{
    static char child_name[CONF_NAME_MAX];
    struct db_fence *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        errbuf_set(eb, "out of memory");
        return NULL;
    }
    void *mem = mmap(NULL, sizeof(struct fence_page), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        errbuf_set(eb, "cannot map the fence watcher's page: %s", strerror(errno));
        free(f);
        return NULL;
    }
    f->page = mem;
    (void)snprintf(child_name, sizeof(child_name), "%s", name);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == -1) {
        errbuf_set(eb, "cannot fork the fence watcher: %s", strerror(errno));
        (void)munmap(mem, sizeof(struct fence_page));
        free(f);
        return NULL;
    }
    if (pid == 0) {
        watch(f->page, parent, child_name);
    }
    f->pid = pid;
    return f;
}

void db_fence_arm(struct db_fence *f, uint64_t deadline_ms, pid_t pid)
{
    if (f == NULL) {
        return;
    }
    atomic_store(&f->page->pid, (int32_t)pid);
    atomic_store(&f->page->deadline_ms, pid > 0 ? (deadline_ms != 0 ? deadline_ms : 1) : 0);
}

void db_fence_disarm(struct db_fence *f)
{
    if (f != NULL) {
        atomic_store(&f->page->deadline_ms, 0);
    }
}

uint32_t db_fence_fired(const struct db_fence *f)
{
    return f != NULL ? atomic_load(&f->page->fired) : 0;
}

pid_t db_fence_pid(const struct db_fence *f)
{
    return f != NULL ? f->pid : 0;
}

void db_fence_free(struct db_fence *f)
{
    if (f == NULL) {
        return;
    }
    db_fence_disarm(f);
    if (f->pid > 0 && kill(f->pid, SIGKILL) == 0) {
        while (waitpid(f->pid, NULL, 0) == -1 && errno == EINTR) {
        }
    }
    (void)munmap(f->page, sizeof(struct fence_page));
    free(f);
}
