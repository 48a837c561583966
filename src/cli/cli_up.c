/* SPDX-License-Identifier: MIT */
/* `keel up [FILE]`: the whole stack on this machine. Without FILE it writes the built-in
 * demo topology (a load balancer in front of three built-in backends, on loopback) to a
 * temporary directory, starts every component as a child process, shows progress, prints
 * the URLs, restarts a component that dies, and on Ctrl-C stops them all by PID. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"

#define UP_MAX_CHILDREN 8
#define UP_STOP_GRACE_MS 5000
#define UP_RESTART_DELAY_MS 1000

struct up_child {
    char label[64];
    char *argv[12];
    char args[12][256];
    pid_t pid;
    uint16_t port; /* the port that shows it is ready */
    uint64_t started_ms;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A loopback port nobody listens on now: bind port 0 (or the preferred one) and release. */
static uint16_t free_port(uint16_t preferred)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            return 0;
        }
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port = htons(attempt == 0 ? preferred : 0),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sin, &len) == 0) {
            close(fd);
            return ntohs(sin.sin_port);
        }
        close(fd);
    }
    return 0;
}

static bool port_accepts(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return false;
    }
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

static void child_set_args(struct up_child *c, const char *const *args)
{
    int i = 0;
    for (; args[i] != NULL && i < 11; i++) {
        snprintf(c->args[i], sizeof(c->args[i]), "%s", args[i]);
        c->argv[i] = c->args[i];
    }
    c->argv[i] = NULL;
}

static int child_start(struct up_child *c, const char *self)
{
    pid_t pid = fork();
    if (pid == -1) {
        return -errno;
    }
    if (pid == 0) {
        /* Own process group: a terminal's Ctrl-C reaches keel up only, which stops the
         * children in order. If keel up dies, the kernel stops them. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(self, c->argv);
        fprintf(stderr, "keel up: cannot run %s: %s\n", self, strerror(errno));
        _exit(127);
    }
    c->pid = pid;
    c->started_ms = now_ms();
    return 0;
}

static bool wait_ready(struct up_child *c, uint64_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline && !stop_requested) {
        if (port_accepts(c->port)) {
            return true;
        }
        int status;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = 0;
            return false;
        }
        poll(NULL, 0, 20);
    }
    return false;
}

static void stop_all(struct up_child *children, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        if (children[i].pid > 0) {
            kill(children[i].pid, SIGTERM);
        }
    }
    uint64_t deadline = now_ms() + UP_STOP_GRACE_MS;
    for (;;) {
        bool any = false;
        for (int i = 0; i < n; i++) {
            if (children[i].pid > 0) {
                int status;
                pid_t r = waitpid(children[i].pid, &status, WNOHANG);
                if (r == children[i].pid || (r == -1 && errno == ECHILD)) {
                    printf("  stopped %s (pid %d)\n", children[i].label, (int)children[i].pid);
                    children[i].pid = 0;
                } else {
                    any = true;
                }
            }
        }
        if (!any) {
            return;
        }
        if (now_ms() >= deadline) {
            for (int i = 0; i < n; i++) {
                if (children[i].pid > 0) {
                    kill(children[i].pid, SIGKILL);
                    waitpid(children[i].pid, NULL, 0);
                    printf("  killed %s (pid %d) after %d ms\n", children[i].label,
                           (int)children[i].pid, UP_STOP_GRACE_MS);
                    children[i].pid = 0;
                }
            }
            return;
        }
        poll(NULL, 0, 20);
    }
}

static int write_demo_config(const char *path, uint16_t lb_port, uint16_t admin_port,
                             const uint16_t *web_ports)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -errno;
    }
    fprintf(f,
            "# keel up: the built-in demo topology (generated)\n"
            "cluster demo { }\n"
            "global { log_level notice; admin 127.0.0.1:%u; }\n"
            "frontend www {\n    bind 127.0.0.1:%u;\n    backend web;\n"
            "    access_log off;\n}\n"
            "backend web {\n    balance roundrobin;\n"
            "    check http path /healthz interval 1s timeout 500ms rise 2 fall 2;\n",
            admin_port, lb_port);
    for (int i = 0; i < 3; i++) {
        fprintf(f, "    server web%d 127.0.0.1:%u;\n", i + 1, web_ports[i]);
    }
    fprintf(f, "}\n");
    return fclose(f) == 0 ? 0 : -errno;
}

/* Supervise until asked to stop: report and restart children that die. */
static void supervise(struct up_child *children, int n, const char *self)
{
    while (!stop_requested) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int i = 0; i < n; i++) {
                if (children[i].pid != pid) {
                    continue;
                }
                if (WIFSIGNALED(status)) {
                    printf("keel up: %s (pid %d) was killed by signal %d; restarting\n",
                           children[i].label, (int)pid, WTERMSIG(status));
                } else {
                    printf("keel up: %s (pid %d) exited with status %d; restarting\n",
                           children[i].label, (int)pid, WEXITSTATUS(status));
                }
                fflush(stdout);
                children[i].pid = 0;
                if (now_ms() - children[i].started_ms < UP_RESTART_DELAY_MS) {
                    poll(NULL, 0, UP_RESTART_DELAY_MS); /* a crash loop must not spin */
                }
                if (!stop_requested && child_start(&children[i], self) == 0) {
                    printf("keel up: %s restarted as pid %d\n", children[i].label,
                           (int)children[i].pid);
                    fflush(stdout);
                }
            }
            continue;
        }
        poll(NULL, 0, 100);
    }
}

static int run_stack(struct up_child *children, int n, const char *self, const char *url,
                     const char *admin_url)
{
    for (int i = 0; i < n; i++) {
        if (child_start(&children[i], self) != 0) {
            fprintf(stderr, "keel up: cannot start %s: %s\n", children[i].label, strerror(errno));
            stop_all(children, n);
            return KEEL_EXIT_RUNTIME;
        }
        if (!wait_ready(&children[i], 10000)) {
            fprintf(stderr, "keel up: %s did not come up on 127.0.0.1:%u\n", children[i].label,
                    children[i].port);
            stop_all(children, n);
            return KEEL_EXIT_RUNTIME;
        }
        printf("  up  %-28s pid %-7d 127.0.0.1:%u\n", children[i].label, (int)children[i].pid,
               children[i].port);
        fflush(stdout);
    }
    printf("\nkeel up: %s\n", url);
    if (admin_url != NULL) {
        printf("metrics: %s\n", admin_url);
    }
    printf("press Ctrl-C to stop\n");
    fflush(stdout);
    supervise(children, n, self);
    printf("\nkeel up: stopping\n");
    stop_all(children, n);
    printf("keel up: everything stopped\n");
    return KEEL_EXIT_OK;
}

static int install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        return -errno;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int cli_up(int argc, char **argv)
{
    static struct up_child children[UP_MAX_CHILDREN];
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0) {
        fprintf(stderr, "keel up: cannot find my own binary\n");
        return KEEL_EXIT_RUNTIME;
    }
    self[sl] = '\0';
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: keel up [FILE]\n");
        return KEEL_EXIT_USAGE;
    }
    if (install_signals() != 0) {
        return KEEL_EXIT_RUNTIME;
    }
    if (argc == 2) {
        /* The user's cluster: one node process runs every role of the file. */
        struct up_child *c = &children[0];
        snprintf(c->label, sizeof(c->label), "node (%s)", argv[1]);
        const char *args[] = {"keel", "run", "-c", argv[1], NULL};
        child_set_args(c, args);
        if (child_start(c, self) != 0) {
            return KEEL_EXIT_RUNTIME;
        }
        supervise(children, 1, self);
        stop_all(children, 1);
        return KEEL_EXIT_OK;
    }
    char dir[] = "/tmp/keel-up-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "keel up: cannot create a temporary directory: %s\n", strerror(errno));
        return KEEL_EXIT_RUNTIME;
    }
    uint16_t lb_port = free_port(8080), admin_port = free_port(9100), web_ports[3];
    char conf_path[256], url[64], admin_url[96], ports[3][16];
    for (int i = 0; i < 3; i++) {
        web_ports[i] = free_port(0);
        snprintf(ports[i], sizeof(ports[i]), "127.0.0.1:%u", web_ports[i]);
        struct up_child *c = &children[i];
        snprintf(c->label, sizeof(c->label), "backend web%d", i + 1);
        char name[16];
        snprintf(name, sizeof(name), "web%d", i + 1);
        const char *args[] = {"keel",     "backend", "--name",  name,
                              "--listen", ports[i],  "--quiet", NULL};
        child_set_args(c, args);
        c->port = web_ports[i];
    }
    snprintf(conf_path, sizeof(conf_path), "%s/keel.conf", dir);
    if (lb_port == 0 || admin_port == 0 ||
        write_demo_config(conf_path, lb_port, admin_port, web_ports) != 0) {
        fprintf(stderr, "keel up: cannot write %s\n", conf_path);
        rmdir(dir);
        return KEEL_EXIT_RUNTIME;
    }
    struct up_child *lb = &children[3];
    snprintf(lb->label, sizeof(lb->label), "load balancer lb1");
    const char *args[] = {"keel", "run", "-c", conf_path, NULL};
    child_set_args(lb, args);
    lb->port = lb_port;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", lb_port);
    snprintf(admin_url, sizeof(admin_url), "http://127.0.0.1:%u/metrics", admin_port);
    printf("keel up: demo topology (1 load balancer, 3 backends), config %s\n", conf_path);
    fflush(stdout);
    int rc = run_stack(children, 4, self, url, admin_url);
    unlink(conf_path);
    rmdir(dir);
    return rc;
}
