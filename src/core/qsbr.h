/* SPDX-License-Identifier: MIT */
/* Quiescent-state-based reclamation. Workers read published snapshots (atomic pointers)
 * without locks; the control thread swaps a snapshot and retires the old one, which is
 * freed once every worker has passed a quiescent state (the end of a loop iteration) or
 * is offline (blocked in epoll_wait). Workers never hold a snapshot pointer across
 * iterations. */
#ifndef KEEL_CORE_QSBR_H
#define KEEL_CORE_QSBR_H

#include <stdint.h>

#define QSBR_MAX_THREADS 64

typedef void (*qsbr_free_fn)(void *ptr);

/* Claim a reader slot for the calling worker thread; returns the slot (< 0 when full). */
int qsbr_register(void);
void qsbr_unregister(int slot);
/* Reader side: end of an iteration / going to block / back from blocking. */
void qsbr_quiescent(int slot);
void qsbr_offline(int slot);
void qsbr_online(int slot);

/* Writer side (one writer thread: the control thread). Retire ptr after it was unpublished;
 * fn(ptr) runs later from qsbr_reclaim. */
void qsbr_retire(void *ptr, qsbr_free_fn fn);
/* Free what no reader can still see. Returns the number of objects still waiting. */
unsigned qsbr_reclaim(void);
/* Free everything (at exit, once readers are gone). */
void qsbr_drain_all(void);

#endif
