/* SPDX-License-Identifier: MIT */
/* What a forked child of keel does before execve(2), whoever forks it (the app supervisor,
 * the VRRP notify hook). Async-signal-safe: callable between fork() and execve() in a child
 * of a multi-threaded process. */
#ifndef KEEL_CORE_PROC_H
#define KEEL_CORE_PROC_H

/* Give the child the signal state of a fresh process: every disposition back to SIG_DFL and
 * an empty signal mask. keel's threads block SIGHUP/SIGTERM/SIGINT and ignore SIGPIPE (and
 * whoever started keel may have ignored others), and blocked and ignored signals survive
 * execve: a child that inherited them could not be stopped with SIGTERM and would not die
 * of a broken pipe. Never fails (the few signals that cannot change are skipped). */
void proc_signals_reset(void);

#endif
