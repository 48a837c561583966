/* SPDX-License-Identifier: MIT */
/* The agent's decision. The leader key in etcd, created under the primary's lease, says
 * who may write; everything follows from it:
 *
 * - The key is ours (our name AND our current lease): keep renewing it. If PostgreSQL
 *   died, release the key at once (a replica takes over without waiting for the lease).
 *   If etcd cannot be reached, keep
 *   writing only until db_elect_fence_margin_ms before the lease could lapse, then fence:
 *   by the time a replica can take the key, this node accepts no writes. A replica that
 *   holds the key (it just won it) promotes.
 * - The key has our name under another lease: an earlier run's (kill -9, restart). It is
 *   not ours: no writes (fence a primary) until we replace it by compare-and-swap on its
 *   mod revision (nobody else can have been elected while it exists), or release it if
 *   PostgreSQL is not up.
 * - The key is someone else's: a node that is still primary fences and follows the leader
 *   (pg_rewind first); a replica follows the leader if it does not already.
 * - There is no key: a healthy node competes only if no live member is more advanced
 *   (higher LSN; equal LSNs: the smaller name), so the promoted node is one that has every
 *   acknowledged write when replication is synchronous. During a switchover only its
 *   target competes (the old primary released the key once the target had all its WAL). If etcd
 * cannot be reached either, nobody may write: a primary fences and stays read-only until etcd
 * answers again.
 */
#include "db/db_elect.h"

#include <string.h>

const char *db_role_name(enum db_role role)
{
    static const char *const names[] = {"unknown", "primary", "replica", "candidate", "fenced"};
    return (unsigned)role < sizeof(names) / sizeof(names[0]) ? names[role] : "?";
}

uint32_t db_elect_fence_margin_ms(uint32_t lease_ms)
{
    uint32_t m = lease_ms / 3;
    return m < 1000 ? (lease_ms / 2 < 1000 ? lease_ms / 2 : 1000) : m;
}

bool db_elect_is_own_key(const char *self, const char *leader, int64_t leader_lease, int64_t lease)
{
    return leader != NULL && strcmp(leader, self) == 0 && lease != 0 && leader_lease == lease;
}

/* Whether some live, healthy member is a better candidate than us. */
static bool someone_better(const struct db_elect_in *in)
{
    for (size_t i = 0; i < in->n_members; i++) {
        const struct db_member *m = &in->members[i];
        if (!m->healthy || strcmp(m->name, in->self) == 0) {
            continue;
        }
        if (m->lsn > in->pg_lsn || (m->lsn == in->pg_lsn && strcmp(m->name, in->self) < 0)) {
            return true;
        }
    }
    return false;
}

static void as_leader(const struct db_elect_in *in, struct db_elect_out *out)
{
    if (!in->pg_up) {
        out->release = in->dcs_ok;
        out->role = DB_ROLE_UNKNOWN;
        out->reason = "PostgreSQL is down: handing the leader key over";
        return;
    }
    uint32_t margin = db_elect_fence_margin_ms(in->lease_ms);
    uint64_t fence_at = in->lease_valid_until_ms > margin ? in->lease_valid_until_ms - margin : 0;
    if (in->now_ms >= fence_at) {
        out->fence = in->pg_primary;
        out->renew = true; /* keep trying: when it works, the fence lifts */
        out->role = in->pg_primary ? DB_ROLE_FENCED : DB_ROLE_REPLICA;
        out->reason = "the leader lease could not be renewed in time: no writes";
        return;
    }
    out->renew = true;
    if (!in->pg_primary) {
        out->promote = true;
        out->role = DB_ROLE_CANDIDATE; /* not writable until the promotion is done */
        out->reason = "won the leader key: promoting";
        return;
    }
    out->reason = "leader";
    out->role = DB_ROLE_PRIMARY;
}

/* The key names us under another lease than ours: an earlier run of this agent wrote it
 * (killed, restarted before the lease ran out). Its lease is not ours to renew, so our
 * fence deadline says nothing about it: no writes until the key is under our lease. */
static void as_earlier_run(const struct db_elect_in *in, struct db_elect_out *out)
{
    out->fence = in->pg_primary;
    if (!in->pg_up) {
        out->release = in->dcs_ok;
        out->role = DB_ROLE_UNKNOWN;
        out->reason = "the leader key is left from an earlier run and PostgreSQL is down: "
                      "releasing it";
        return;
    }
    out->take_over = in->dcs_ok && in->lease != 0;
    out->role = in->pg_primary ? DB_ROLE_FENCED : DB_ROLE_CANDIDATE;
    out->reason = "the leader key is left from an earlier run: no writes until it is under "
                  "our lease";
}

static void as_follower(const struct db_elect_in *in, struct db_elect_out *out)
{
    if (in->pg_primary) {
        out->fence = true;
        out->follow = true;
        out->role = DB_ROLE_FENCED;
        out->reason = "another node holds the leader key: demoting to its replica";
        return;
    }
    out->role = in->pg_up ? DB_ROLE_REPLICA : DB_ROLE_UNKNOWN;
    if (!in->pg_up || in->pg_follows == NULL || strcmp(in->pg_follows, in->leader) != 0) {
        out->follow = true;
        out->reason = "following the leader";
    } else {
        out->reason = "replica";
    }
}

static void without_leader(const struct db_elect_in *in, struct db_elect_out *out)
{
    if (!in->dcs_ok) {
        out->fence = in->pg_primary;
        out->role = in->pg_primary ? DB_ROLE_FENCED : in->pg_up ? DB_ROLE_REPLICA : DB_ROLE_UNKNOWN;
        out->reason = "etcd cannot be reached: no node may write";
        return;
    }
    if (!in->pg_up) {
        out->role = DB_ROLE_UNKNOWN;
        out->reason = "no leader, and PostgreSQL is not up here";
        return;
    }
    if (in->switchover_to != NULL && strcmp(in->switchover_to, in->self) != 0) {
        out->fence = in->pg_primary;
        out->role = in->pg_primary ? DB_ROLE_FENCED : DB_ROLE_REPLICA;
        out->reason = "a switchover hands the key to another node";
        return;
    }
    if (in->switchover_to == NULL && someone_better(in)) {
        out->fence = in->pg_primary;
        out->role = in->pg_primary ? DB_ROLE_FENCED : DB_ROLE_REPLICA;
        out->reason = "no leader: a more advanced node should take it";
        return;
    }
    out->acquire = true;
    out->fence = in->pg_primary; /* writable again once the key is ours */
    out->role = DB_ROLE_CANDIDATE;
    out->reason = "no leader: taking the key";
}

void db_elect_decide(const struct db_elect_in *in, struct db_elect_out *out)
{
    memset(out, 0, sizeof(*out));
    if (db_elect_is_own_key(in->self, in->leader, in->leader_lease, in->lease)) {
        as_leader(in, out);
    } else if (in->leader != NULL && strcmp(in->leader, in->self) == 0) {
        as_earlier_run(in, out);
    } else if (in->leader != NULL) {
        as_follower(in, out);
    } else {
        without_leader(in, out);
    }
}
