/* SPDX-License-Identifier: MIT */
/* The signal state of keel's children before execve (see proc.h). */
#include "core/proc.h"

#include <signal.h>
#include <stddef.h>

void proc_signals_reset(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            (void)sigaction(sig, &dfl, NULL); /* EINVAL for the few that cannot change */
        }
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}
