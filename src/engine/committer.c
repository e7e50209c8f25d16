/*
 * committer.c - group commit: many requests, one database transaction.
 *
 * Rules kept here:
 *  - Each committer thread has its own connection; no other thread uses it.
 *  - A request's done callback runs only after COMMIT returned (or after
 *    the batch definitely did not commit): durability comes before any
 *    reply, in this one place.
 *  - Accounts are locked in ext_id order (store); transfer ids are read
 *    after the locks are held, in a new statement. A batch judged on
 *    cached account states reads nothing: it is written only if its
 *    inserts would fail on any state or transfer id it did not see
 *    (batch_judge_cached), and a refusal runs it again the loaded way.
 *  - Retryable failures (store_result: deadlock, serialization, a transfer
 *    id inserted concurrently, a full lock table) roll back and run the
 *    whole batch again from fresh state.
 *  - If the connection breaks after COMMIT was sent, the outcome is looked
 *    up on a new connection before anyone is answered.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/apply.h"
#include "core/assert.h"
#include "engine.h"
#include "util/log.h"
#include "util/mem.h"
#include "metrics.h"
#include "queue.h"
#include "store/store.h"

#define BATCH_ATTEMPTS_MAX 20

/* Everything one batch needs, sized from its op count. */
struct batch {
    struct engine_request *requests;
    int n_requests;
    int n_ops;
    struct engine_op **ops; /* flattened, request order */

    const char **account_ids; /* sorted, unique */
    int n_accounts;
    const char **transfer_ids; /* sorted, unique */
    int n_transfers;

    struct core_account *accounts;
    bool *found;
    struct core_transfer *transfers;
    struct core_op *core_ops;
    struct core_request *core_requests;
    struct core_entry *entries;
    struct core_undo *undo;

    struct store_transfer_ref *new_transfers;
    struct store_transfer_ref *pending_refs;
    int64_t *entry_account_id;
    int64_t *entry_transfer_id;
    const char **entry_transfer_ext;
    const char **transfer_metadata; /* by transfer slot: metadata of its creating op */
    int64_t *seq_before;            /* by account slot: the seq of the state judged on */
    bool lock_all;                  /* the lock table was full: retry under the exclusive lock */
    bool loaded_only; /* a judgement on cached states was refused, or could not be written */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int slot_of(const char **ids, int n, const char *id)
{
    const char **p = bsearch(&id, ids, (size_t)n, sizeof *ids, engine_ids_cmp);
    LEDGER_ASSERT(p != NULL);
    return (int)(p - ids);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    LEDGER_ASSERT(p != NULL);
    return p;
}

/* Carves the next array out of m's block, zeroed; with no block it only
 * counts the bytes (batch_carve's first pass). */
static void *mem_take(struct batch_mem *m, size_t n, size_t size)
{
    size_t bytes = ((n ? n : 1) * size + 15) & ~(size_t)15;
    void *p = m->block ? m->block + m->used : NULL;
    m->used += bytes;
    if (p != NULL) {
        LEDGER_ASSERT(m->used <= m->cap);
        memset(p, 0, bytes);
    }
    return p;
}

/* Sizes by op count alone (a batch of n ops names at most 2n accounts and
 * n transfer ids), so that one pass can measure and the next carve. */
static void batch_carve(struct batch *b, struct batch_mem *m)
{
    size_t n = (size_t)b->n_ops;
    m->used = 0;
    b->ops = mem_take(m, n, sizeof *b->ops);
    b->account_ids = mem_take(m, 2 * n, sizeof *b->account_ids);
    b->transfer_ids = mem_take(m, n, sizeof *b->transfer_ids);
    b->accounts = mem_take(m, 2 * n, sizeof *b->accounts);
    b->found = mem_take(m, 2 * n, sizeof *b->found);
    b->transfers = mem_take(m, n, sizeof *b->transfers);
    b->transfer_metadata = mem_take(m, n, sizeof *b->transfer_metadata);
    b->core_ops = mem_take(m, n, sizeof *b->core_ops);
    b->core_requests = mem_take(m, (size_t)b->n_requests, sizeof *b->core_requests);
    b->entries = mem_take(m, 2 * n, sizeof *b->entries);
    b->undo = mem_take(m, 3 * n, sizeof *b->undo);
    b->new_transfers = mem_take(m, n, sizeof *b->new_transfers);
    b->pending_refs = mem_take(m, n, sizeof *b->pending_refs);
    b->entry_account_id = mem_take(m, 2 * n, sizeof *b->entry_account_id);
    b->entry_transfer_id = mem_take(m, 2 * n, sizeof *b->entry_transfer_id);
    b->entry_transfer_ext = mem_take(m, 2 * n, sizeof *b->entry_transfer_ext);
    b->seq_before = mem_take(m, 2 * n, sizeof *b->seq_before);
}

static void batch_mem_release(struct batch_mem *m)
{
    free(m->block);
    memset(m, 0, sizeof *m);
    mem_trim();
}

static void batch_init(struct batch *b, struct engine_request *list, struct batch_mem *m)
{
    memset(b, 0, sizeof *b);
    b->requests = list;
    for (struct engine_request *r = list; r; r = r->next) {
        b->n_requests++;
        b->n_ops += r->n_ops;
    }
    struct batch_mem count = {0};
    batch_carve(b, &count);
    if (count.used > m->cap) {
        free(m->block);
        m->block = malloc(count.used);
        LEDGER_ASSERT(m->block != NULL);
        m->cap = count.used;
    }
    batch_carve(b, m);
    int k = 0;
    for (struct engine_request *r = list; r; r = r->next) {
        LEDGER_ASSERT(r->results == NULL);
        r->results = malloc((size_t)r->n_ops * sizeof *r->results);
        LEDGER_ASSERT(r->results != NULL);
        for (int i = 0; i < r->n_ops; i++) {
            struct engine_op *op = &r->ops[i];
            b->account_ids[2 * k] = op->from;
            b->account_ids[2 * k + 1] = op->to;
            b->transfer_ids[k] = op->id;
            b->ops[k++] = op;
        }
    }
    b->n_accounts = engine_ids_sort_unique(b->account_ids, 2 * b->n_ops);
    b->n_transfers = engine_ids_sort_unique(b->transfer_ids, b->n_ops);
}

/* Fills core's view from the freshly loaded state and runs the rules;
 * returns the number of entries produced. */
static int batch_apply(struct batch *b)
{
    int k = 0, q = 0;
    for (struct engine_request *r = b->requests; r; r = r->next) {
        b->core_requests[q].first_op = k;
        b->core_requests[q].n_ops = r->n_ops;
        b->core_requests[q].atomic = r->atomic;
        q++;
        for (int i = 0; i < r->n_ops; i++, k++) {
            const struct engine_op *op = b->ops[k];
            struct core_op *c = &b->core_ops[k];
            *c = op->core;
            c->transfer = slot_of(b->transfer_ids, b->n_transfers, op->id);
            c->from_id = op->from;
            c->to_id = op->to;
            int from = slot_of(b->account_ids, b->n_accounts, op->from);
            int to = slot_of(b->account_ids, b->n_accounts, op->to);
            c->from = b->found[from] ? from : -1;
            c->to = b->found[to] ? to : -1;
            c->status = STATUS_OK;
            c->replayed = false;
            c->result = &r->results[i];
        }
    }
    struct core_batch cb = {
        .accounts = b->accounts,
        .n_accounts = b->n_accounts,
        .transfers = b->transfers,
        .n_transfers = b->n_transfers,
        .ops = b->core_ops,
        .n_ops = b->n_ops,
        .requests = b->core_requests,
        .n_requests = b->n_requests,
        .entries = b->entries,
        .undo = b->undo,
        .now_us = now_us(),
    };
    core_apply_batch(&cb);

    /* The metadata of a created transfer is that of the op that created it. */
    for (k = 0; k < b->n_ops; k++) {
        const struct core_op *c = &b->core_ops[k];
        if (c->kind == OP_TRANSFER && c->status == STATUS_OK && !c->replayed)
            b->transfer_metadata[c->transfer] = b->ops[k]->metadata_json;
    }
    return cb.n_entries;
}

/* How long a batch's accounts are judged on loaded states only, after a
 * judgement on their cached states was refused: while another process
 * writes them, most cached states would be stale, and each refusal costs
 * a round trip. */
#define CACHE_HOLD_US (1000 * 1000)

static int slot_or_none(const char *const *ids, int n, const char *id)
{
    const char *const *p = bsearch(&id, ids, (size_t)n, sizeof *ids, engine_ids_cmp);
    return p ? (int)(p - ids) : -1;
}

/* Judges the batch on cached states, if the cache has all its accounts;
 * with ahead_of, on the states that batch leaves where they share
 * accounts (it is still committing: this one then commits only if that
 * one's first attempt does, store_batch_ahead_commit). True if that
 * judgement may be written without loading (store.h, store_batch_locks):
 * every account gets an entry, so a changed one fails its insert, and
 * every transfer id of the batch is inserted, so one that exists already
 * fails too (and the batch, judged again on loaded state, replays it)
 * instead of being judged as new. */
static bool batch_judge_cached(struct committer *c, const struct committer_link *l, struct batch *b,
                               const struct batch *ahead_of, int *n_entries)
{
    if (!account_cache_get_all(&c->e->cache, l->server, b->account_ids, b->n_accounts, b->accounts,
                               (int64_t)mono_us()))
        return false;
    for (int i = 0; i < b->n_accounts; i++) {
        int j = ahead_of
                    ? slot_or_none(ahead_of->account_ids, ahead_of->n_accounts, b->account_ids[i])
                    : -1;
        if (j >= 0 && ahead_of->found[j]) {
            b->accounts[i] = ahead_of->accounts[j];
            b->accounts[i].touched = false;
        }
        b->found[i] = true;
        b->seq_before[i] = b->accounts[i].seq;
    }
    memset(b->transfers, 0, (size_t)b->n_transfers * sizeof *b->transfers);
    *n_entries = batch_apply(b);
    for (int i = 0; i < b->n_transfers; i++)
        if (!b->transfers[i].created)
            return false;
    for (int i = 0; i < b->n_accounts; i++)
        if (!b->accounts[i].touched)
            return false;
    return true;
}

/* Locks and loads the batch's accounts and transfers (the transaction
 * stays open) and judges it on them. */
static enum store_result batch_judge_loaded(const struct committer_link *l, struct batch *b,
                                            int *n_entries, struct store_error *err)
{
    struct store_batch_reads rd = {
        .account_ids = b->account_ids,
        .n_accounts = b->n_accounts,
        .accounts = b->accounts,
        .found = b->found,
        .transfer_ids = b->transfer_ids,
        .n_transfers = b->n_transfers,
        .transfers = b->transfers,
        .lock_all = b->lock_all,
    };
    enum store_result r = store_batch_load(l->conn, &rd, err);
    if (r != STORE_OK)
        return r;
    for (int i = 0; i < b->n_accounts; i++)
        b->seq_before[i] = b->found[i] ? b->accounts[i].seq : 0;
    *n_entries = batch_apply(b);
    return STORE_OK;
}

/* One attempt at a batch, from judging it to sending its write. */
struct attempt {
    enum store_result r;          /* how sending it ended */
    bool on_cache;                /* judged on cached states (or ahead) */
    struct store_write_sent sent; /* to receive, if r is STORE_OK */
    int n_new;                    /* transfers it creates (for the unknown-outcome lookup) */
    struct store_error err;
    struct store_baton baton; /* the lock it holds if it goes by COPY (store.h) */
    uint64_t started_us;
};

/* Sends what batch_apply produced, without waiting for COMMIT; on_cache:
 * the batch was judged on cached states, and its transaction is not open
 * yet; ahead_of: the attempt of the batch it was judged after, if it was
 * sent ahead of that one, which is still committing. */
static void attempt_write(struct committer *c, const struct committer_link *l, struct batch *b,
                          int n_entries, const struct attempt *ahead_of, struct attempt *a)
{
    int n = 0, n_pending = 0;
    for (int i = 0; i < b->n_transfers; i++) {
        struct core_transfer *t = &b->transfers[i];
        struct store_transfer_ref ref = {b->transfer_ids[i], t, b->transfer_metadata[i]};
        if (t->created)
            b->new_transfers[n++] = ref;
        if (t->pending_dirty)
            b->pending_refs[n_pending++] = ref;
    }
    for (int i = 0; i < n_entries; i++) {
        b->entry_account_id[i] = b->accounts[b->entries[i].account].id;
        b->entry_transfer_id[i] = b->transfers[b->entries[i].transfer].id;
        b->entry_transfer_ext[i] = b->transfer_ids[b->entries[i].transfer];
    }
    a->n_new = n;
    c->tickets = c->tickets == INT_MAX ? 1 : c->tickets + 1;
    a->baton = (struct store_baton){PQbackendPID(l->conn), c->tickets};
    struct store_batch_locks locks = {b->account_ids, b->n_accounts, b->lock_all};
    struct store_batch_writes w = {
        .lock_first = a->on_cache ? &locks : NULL,
        .ahead = ahead_of != NULL,
        .baton = a->baton,
        .after = ahead_of ? ahead_of->baton : (struct store_baton){0, 0},
        .transfers = b->new_transfers,
        .n_transfers = n,
        .pending = b->pending_refs,
        .n_pending = n_pending,
        .entries = b->entries,
        .entry_account_id = b->entry_account_id,
        .entry_transfer_id = b->entry_transfer_id,
        .entry_transfer_ext = b->entry_transfer_ext,
        .n_entries = n_entries,
        .accounts = b->accounts,
        .seq_before = b->seq_before,
        .n_accounts = b->n_accounts,
    };
    a->r = store_batch_write_send(l->conn, &w, &a->sent, &a->err);
}

/* Judges the batch, on cached states if it can (unless a judgement on
 * them was refused before), else locked and loaded, and sends its write
 * with COMMIT. cached_only: never lock and load, which waits on the
 * database; false if the batch was then left unsent. */
static bool attempt_send(struct committer *c, const struct committer_link *l, struct batch *b,
                         struct attempt *a, bool cached_only)
{
    memset(a, 0, sizeof *a);
    a->started_us = mono_us();
    int n_entries = 0;
    a->on_cache = !b->loaded_only && batch_judge_cached(c, l, b, NULL, &n_entries);
    if (!a->on_cache && cached_only) {
        b->loaded_only = true; /* the same judgement would come out of the same cache */
        return false;
    }
    if (!a->on_cache && (a->r = batch_judge_loaded(l, b, &n_entries, &a->err)) != STORE_OK)
        return true;
    attempt_write(c, l, b, n_entries, NULL, a);
    return true;
}

/* A batch from when it is taken until it is answered. */
struct flight {
    struct engine_request *list;
    struct batch b;
    int link;             /* the index of the committer_link that runs it */
    bool sent;            /* first is under way */
    struct attempt first; /* its first attempt */
};

/* Sends f ahead of prev, whose write is committing on the other link
 * and which took its baton in a round trip of its own (so that f's wait
 * for it is one PostgreSQL sees): judged on the states prev leaves, its
 * journal rows copied at once, COMMIT only when prev's has succeeded
 * (ahead_end). Only a batch large enough to go by COPY goes ahead: it
 * then waits for prev's COMMIT beside its own, which pays only when
 * copying its rows takes a while. (Small batches come from single
 * requests whose clients wait for their answer: there, the time a request
 * waits counts more than how many batches are in flight, and sending it
 * ahead adds prev's commit to it.) Sets f->sent; if f cannot go ahead, it
 * runs after prev. */
static void flight_send_ahead(struct committer *c, struct flight *f, const struct flight *prev)
{
    const struct committer_link *l = &c->links[f->link], *prev_l = &c->links[prev->link];
    struct attempt *a = &f->first;
    memset(a, 0, sizeof *a);
    a->started_us = mono_us();
    int n_entries;
    f->sent = false;
    if (!prev->sent || prev->first.r != STORE_OK || !prev->first.sent.baton ||
        f->b.n_transfers < STORE_COPY_MIN_TRANSFERS || l->server[0] == '\0' ||
        strcmp(l->server, prev_l->server) != 0 ||
        !batch_judge_cached(c, l, &f->b, &prev->b, &n_entries))
        return;
    a->on_cache = true;
    attempt_write(c, l, &f->b, n_entries, &prev->first, a);
    if (a->r == STORE_OK) {
        f->sent = true;
        return;
    }
    log_debug("batch of %d transfers could not go ahead: %s", f->b.n_ops, a->err.message);
    store_batch_rollback(l->conn);
}

/* How the attempt's write ended. */
static enum store_result attempt_receive(const struct committer_link *l, const struct batch *b,
                                         struct attempt *a)
{
    if (a->r == STORE_OK)
        a->r = store_batch_write_receive(l->conn, &a->sent, &a->err);
    if (a->r == STORE_OK && a->on_cache)
        metrics_cached_batch(a->sent.ahead);
    log_debug("batch of %d transfers (%s): %llu us from judging to COMMIT", b->n_ops,
              a->sent.ahead ? "ahead"
              : a->on_cache ? "cached"
                            : "loaded",
              (unsigned long long)(mono_us() - a->started_us));
    return a->r;
}

/* An attempt judged on cached states that was refused on a live
 * connection is rolled back, to be judged again. An (account, seq) that
 * exists, a seq that is not the cached one, a missing account row: the
 * cache was wrong, most likely because another process writes these
 * accounts, so the batch is judged on loaded states, which also reports
 * any error that does not come from the cache, and replays a transfer id
 * that exists. A batch sent ahead may also have reached the account locks
 * before the batch it was judged after (pg_write.c): it is judged again
 * the usual way, now that the other batch is done. */
static bool attempt_refused(struct committer *c, const struct committer_link *l, struct batch *b,
                            const struct attempt *a)
{
    if (!a->on_cache || a->r == STORE_OK || a->r == STORE_UNKNOWN || a->r == STORE_RETRY_LOCK_ALL ||
        PQstatus(l->conn) != CONNECTION_OK)
        return false;
    store_batch_rollback(l->conn);
    log_debug("%s judgement of %d transfers refused: %s", a->sent.ahead ? "ahead" : "cached",
              b->n_ops, a->err.message);
    if (a->sent.ahead) {
        metrics_ahead_refused();
        return true;
    }
    /* A transfer id that exists is most often a client's retry, which the
     * loaded judgement replays: the accounts stay cached, and that
     * judgement's commit refreshes their states. (A batch that goes by
     * COPY inserts its ids before its states are checked, so a stale state
     * behind an existing id goes uncounted, and is refreshed the same
     * way.) */
    const char *st = a->err.sqlstate;
    if (!a->err.id_exists &&
        (strcmp(st, "23505") == 0 || strcmp(st, "23502") == 0 || strcmp(st, "P0001") == 0)) {
        account_cache_drop(&c->e->cache, b->account_ids, b->n_accounts,
                           (int64_t)(mono_us() + CACHE_HOLD_US));
        metrics_cache_stale();
    }
    b->loaded_only = true;
    return true;
}

/* A usable connection with the write path prepared, reconnecting if the
 * old one broke. */
static bool committer_connect(struct committer *c, struct committer_link *l)
{
    enum store_ensure_result ensured = store_ensure(&l->conn, c->e->conninfo);
    if (ensured == STORE_CONN_DOWN)
        return false;
    /* A new session may be on another server (a failover, a restore),
     * whose states may differ from the cached ones. */
    if (ensured == STORE_CONN_NEW) {
        l->prepared = false;
        if (store_server_incarnation(l->conn, l->server, sizeof l->server) == 0)
            account_cache_use_server(&c->e->cache, l->server);
        else
            l->server[0] = '\0';
    }
    if (!l->prepared) {
        char err[256];
        if (store_prepare_write_path(l->conn, err, sizeof err) != 0) {
            log_error("could not prepare the write path: %s", err);
            PQfinish(l->conn);
            l->conn = NULL;
            return false;
        }
        l->prepared = true;
    }
    store_refresh_plans(l->conn, &l->planned_ns);
    return true;
}

/* After the connection broke during COMMIT: did the batch land? Asks on a
 * new connection for a while, once the old session has ended; 1 yes, 0
 * no, -1 could not tell. */
static int batch_outcome(struct committer *c, struct committer_link *l, const struct batch *b)
{
    int old_pid = l->conn ? PQbackendPID(l->conn) : 0;
    for (int attempt = 0; attempt < 10; attempt++) {
        if (committer_connect(c, l)) {
            int r = store_transfer_committed(l->conn, old_pid, b->new_transfers[0].ext_id);
            if (r >= 0)
                return r;
        }
        usleep(500 * 1000);
    }
    return -1;
}

/* Post, void and expire name only the pending transfer: fill in its
 * accounts, from the journal (a transfer's accounts never change, so no
 * lock is needed) or from a transfer created in the same batch. Returns -1
 * when the database cannot be asked. */
static int resolve_settlements(PGconn *conn, struct engine_request *list)
{
    int n = 0;
    for (struct engine_request *r = list; r; r = r->next)
        for (int i = 0; i < r->n_ops; i++)
            n += r->ops[i].core.kind != OP_TRANSFER;
    if (n == 0)
        return 0;
    const char **ids = xcalloc((size_t)n, sizeof *ids);
    struct engine_op **ops = xcalloc((size_t)n, sizeof *ops);
    char(*from)[ID_LEN_MAX + 1] = xcalloc((size_t)n, sizeof *from);
    char(*to)[ID_LEN_MAX + 1] = xcalloc((size_t)n, sizeof *to);
    bool *found = xcalloc((size_t)n, sizeof *found);
    int k = 0;
    for (struct engine_request *r = list; r; r = r->next)
        for (int i = 0; i < r->n_ops; i++)
            if (r->ops[i].core.kind != OP_TRANSFER) {
                ops[k] = &r->ops[i];
                ids[k++] = r->ops[i].id;
            }
    int rc = store_transfer_accounts(conn, ids, n, from, to, found);
    for (k = 0; rc == 0 && k < n; k++) {
        struct engine_op *op = ops[k];
        op->from[0] = op->to[0] = '\0';
        if (found[k]) {
            memcpy(op->from, from[k], sizeof op->from);
            memcpy(op->to, to[k], sizeof op->to);
            continue;
        }
        for (struct engine_request *r = list; r && !op->from[0]; r = r->next)
            for (int i = 0; i < r->n_ops; i++)
                if (r->ops[i].core.kind == OP_TRANSFER && strcmp(r->ops[i].id, op->id) == 0) {
                    memcpy(op->from, r->ops[i].from, sizeof op->from);
                    memcpy(op->to, r->ops[i].to, sizeof op->to);
                    break;
                }
    }
    free(ids);
    free(ops);
    free(from);
    free(to);
    free(found);
    return rc;
}

/* Ends the batch sent ahead of the one whose first attempt just ended:
 * commits it if that one committed, on the states it was judged after.
 * Otherwise it must not commit, and may be waiting for locks that the
 * other batch's session, lost or not, still holds: its connection is
 * closed, which rolls it back, and it runs again once that one is done. */
static void ahead_end(struct committer *c, struct flight *next, bool commit)
{
    if (next == NULL || !next->sent || !next->first.sent.ahead || next->first.sent.synced)
        return;
    struct committer_link *l = &c->links[next->link];
    if (commit) {
        store_batch_ahead_commit(l->conn, &next->first.sent);
        return;
    }
    metrics_ahead_rolled_back();
    PQfinish(l->conn);
    l->conn = NULL;
    next->sent = false;
}

/* Runs the batch to a definite end and sets every request's status; its
 * first attempt may be under way already. next: the batch sent ahead of
 * it, if any, which this ends as soon as the first attempt has. */
static void batch_run(struct committer *c, struct flight *f, struct flight *next)
{
    struct batch *b = &f->b;
    struct committer_link *l = &c->links[f->link];
    struct attempt *a = &f->first;
    enum status outcome = STATUS_UNAVAILABLE;
    bool acknowledged = false; /* COMMIT answered on this session */
    for (int attempt = 0; attempt < BATCH_ATTEMPTS_MAX; attempt++) {
        if (attempt > 0 || !f->sent) {
            if (!committer_connect(c, l)) {
                metrics_db_error();
                log_warn("could not connect to the database for a batch of %d transfers", b->n_ops);
                break;
            }
            attempt_send(c, l, b, a, false);
        }
        enum store_result r = attempt_receive(l, b, a);
        if (attempt == 0)
            ahead_end(c, next, r == STORE_OK);
        /* At most twice: after ahead, after cached; loaded is final. */
        while (attempt_refused(c, l, b, a)) {
            attempt_send(c, l, b, a, false);
            r = attempt_receive(l, b, a);
        }
        if (r == STORE_OK) {
            outcome = STATUS_OK;
            acknowledged = true;
            break;
        }
        metrics_db_error();
        if (r == STORE_UNKNOWN) {
            int landed = a->n_new > 0 ? batch_outcome(c, l, b) : 0;
            log_warn("connection lost during COMMIT of %d transfers; committed: %s", b->n_ops,
                     landed == 1   ? "yes"
                     : landed == 0 ? "no"
                                   : "unknown");
            if (landed == 1) {
                outcome = STATUS_OK;
                break;
            }
            if (landed == 0)
                continue;
            break;
        }
        store_batch_rollback(l->conn);
        if (r == STORE_RETRY || r == STORE_RETRY_LOCK_ALL) {
            metrics_retry();
            log_debug("retrying batch of %d transfers after SQLSTATE %s", b->n_ops,
                      a->err.sqlstate);
            if (r == STORE_RETRY_LOCK_ALL)
                b->lock_all = true;
            /* What made it retryable (a deadlock, locks held by others) is
             * mostly other sessions' doing: give them time to finish. */
            if (attempt > 0)
                usleep((useconds_t)attempt * 2000);
            continue;
        }
        log_error("could not commit batch of %d transfers: %s%s%s", b->n_ops, a->err.message,
                  a->err.sqlstate[0] ? " SQLSTATE " : "", a->err.sqlstate);
        break;
    }
    ahead_end(c, next, false);

    /* After an acknowledged COMMIT, every found account's state in b is
     * what committed. An outcome found by looking a transfer id up is not
     * that sure (another process may have committed that id). */
    if (outcome == STATUS_OK)
        metrics_batch(b->n_ops);
    if (acknowledged)
        account_cache_put(&c->e->cache, l->server, b->account_ids, b->n_accounts, b->accounts,
                          b->found);
    else
        account_cache_drop(&c->e->cache, b->account_ids, b->n_accounts, 0);
    int k = 0;
    for (struct engine_request *r = b->requests; r; r = r->next) {
        r->status = outcome;
        for (int i = 0; i < r->n_ops; i++, k++) {
            struct engine_op *op = &r->ops[i];
            if (outcome != STATUS_OK)
                continue;
            op->core = b->core_ops[k];
        }
    }
}

/* A batch of 1,000 transfers needs about 5 MB of arrays. Allocating them
 * afresh for each batch, and giving them back after, cost page faults and
 * zeroing on the committer's critical path; so the block is kept from one
 * batch to the next, up to this size, and given back (with whatever else
 * the process has freed) once the committer has been idle for a second:
 * RSS follows the load, not its peak. */
#define BATCH_MEM_KEEP_MAX (16u << 20)
#define IDLE_RELEASE_S     1

static void answer_later(struct engine *e, struct engine_request *list)
{
    struct engine_request *last = list;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&e->answer_lock);
    if (e->answers_tail)
        e->answers_tail->next = list;
    else
        e->answers = list;
    e->answers_tail = last;
    pthread_cond_signal(&e->answer_wake);
    pthread_mutex_unlock(&e->answer_lock);
}

/* Answers until stopped and nothing is left to answer. */
static void *answerer_main(void *arg)
{
    struct engine *e = arg;
    pthread_mutex_lock(&e->answer_lock);
    for (;;) {
        while (e->answers == NULL && !e->answerer_stopping)
            pthread_cond_wait(&e->answer_wake, &e->answer_lock);
        struct engine_request *list = e->answers;
        if (list == NULL)
            break;
        e->answers = e->answers_tail = NULL;
        pthread_mutex_unlock(&e->answer_lock);
        for (struct engine_request *r = list, *next; r; r = next) {
            next = r->next;
            r->done(r);
        }
        pthread_mutex_lock(&e->answer_lock);
    }
    pthread_mutex_unlock(&e->answer_lock);
    return NULL;
}

enum take {
    TAKE_WAIT,  /* nothing in flight: wait for work */
    TAKE_AHEAD, /* cur in flight: only what may go ahead of it */
    TAKE_NOW,   /* cur has ended, not yet answered: whatever waits */
};

/* What the queue has for c, as engine_take. With a batch in flight (cur),
 * it takes only a request that may go ahead of it (flight_send_ahead):
 * anything else waits for cur's end, and then goes with whatever arrived
 * meanwhile (TAKE_NOW). Publishes the accounts of what it takes, beside
 * cur's. */
static struct engine_request *committer_take(struct committer *c, const struct flight *cur,
                                             enum take how)
{
    struct engine *e = c->e;
    pthread_mutex_lock(&e->lock);
    struct engine_request *list = NULL;
    if (how == TAKE_NOW) {
        list = engine_take(e, c);
    } else if (how == TAKE_AHEAD) {
        if (e->head != NULL && e->head->n_ops >= STORE_COPY_MIN_TRANSFERS)
            list = engine_take(e, c);
    } else {
        /* Counted from when the committer found nothing to take, not from
         * each wake-up: the others wake it after every batch. */
        struct timespec until = {0, 0};
        while ((list = engine_take(e, c)) == NULL && !(e->stopping && e->head == NULL)) {
            if (c->links[0].mem.block == NULL && c->links[1].mem.block == NULL) {
                pthread_cond_wait(&e->wake, &e->lock);
                continue;
            }
            if (until.tv_sec == 0) {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += IDLE_RELEASE_S;
            }
            if (pthread_cond_timedwait(&e->wake, &e->lock, &until) == ETIMEDOUT) {
                pthread_mutex_unlock(&e->lock); /* trimming takes a while */
                batch_mem_release(&c->links[0].mem);
                batch_mem_release(&c->links[1].mem);
                pthread_mutex_lock(&e->lock);
            }
        }
    }
    if (list != NULL)
        engine_mark_busy(c, cur ? cur->list : NULL, list);
    pthread_mutex_unlock(&e->lock);
    return list;
}

/* Readies a batch taken on link; false if the database cannot be asked
 * (its requests are then answered as unavailable). */
static bool flight_init(struct committer *c, struct flight *f, struct engine_request *list,
                        int link)
{
    struct committer_link *l = &c->links[link];
    f->list = list;
    f->link = link;
    f->sent = false;
    if (!committer_connect(c, l) || resolve_settlements(l->conn, list) != 0) {
        metrics_db_error();
        log_warn("could not reach the database for a batch");
        for (struct engine_request *r = list; r; r = r->next)
            r->status = STATUS_UNAVAILABLE;
        return false;
    }
    batch_init(&f->b, list, &l->mem);
    return true;
}

/* list is done; running, if any, is the batch c still runs. */
static void batch_done(struct committer *c, struct engine_request *list,
                       struct engine_request *running)
{
    /* The busy ids point into list's requests, which done may free:
     * unpublish them first, and let the others look at what waited. */
    struct engine *e = c->e;
    pthread_mutex_lock(&e->lock);
    engine_mark_busy(c, running, NULL);
    pthread_cond_broadcast(&e->wake);
    pthread_mutex_unlock(&e->lock);
    answer_later(e, list);
}

/* Takes the next batch into *next (NULL if none), on the link cur does not
 * use: cur is in flight, or there is none. False when the engine stops and
 * nothing is left to take. */
static bool flight_take(struct committer *c, struct flight flights[2], const struct flight *cur,
                        enum take how, struct flight **next)
{
    *next = NULL;
    struct engine_request *list = committer_take(c, cur, how);
    if (list == NULL)
        return how != TAKE_WAIT;
    int link = cur ? 1 - cur->link : 0;
    if (flight_init(c, &flights[link], list, link))
        *next = &flights[link];
    else
        batch_done(c, list, cur ? cur->list : NULL);
    return true;
}

/* Sends f's first attempt, unless it went ahead. */
static void flight_send(struct committer *c, struct flight *f)
{
    if (f == NULL || f->sent || !committer_connect(c, &c->links[f->link]))
        return;
    f->sent = attempt_send(c, &c->links[f->link], &f->b, &f->first, false);
}

/* Whether list can be readied and sent on link without waiting on the
 * database: single transfers (no settlement to look up), few enough for
 * the pipelined write (no COPY), on a connection that needs no round trip
 * of its own first (committer_connect). Whether the states it needs are
 * cached is known only once it is judged. */
static bool flight_quick(const struct committer *c, int link, const struct engine_request *list)
{
    const struct committer_link *l = &c->links[link];
    if (!l->prepared || !store_ready_now(l->conn, l->planned_ns))
        return false;
    int n = 0;
    for (const struct engine_request *r = list; r; r = r->next)
        for (int i = 0; i < r->n_ops; i++, n++)
            if (r->ops[i].core.kind != OP_TRANSFER)
                return false;
    return n < STORE_COPY_MIN_TRANSFERS;
}

/* After cur has ended, with nothing sent ahead of it: answers its
 * requests, and returns the batch that follows it, on its link (idle
 * now). If what waits can be sent without waiting on the database, it is
 * sent before cur's requests are handed to the answerer, so that a hot
 * account's batches follow each other that much sooner; anything else
 * would hold up answers already committed. */
static struct flight *flight_follow(struct committer *c, struct flight flights[2],
                                    const struct flight *cur)
{
    struct engine_request *done = cur->list;
    int link = cur->link;
    struct engine_request *list = committer_take(c, cur, TAKE_NOW);
    if (list == NULL) {
        batch_done(c, done, NULL);
        return NULL;
    }
    struct flight *f = &flights[link]; /* cur's, which is no longer needed */
    bool quick = flight_quick(c, link, list);
    bool ready = quick && flight_init(c, f, list, link);
    if (ready) /* judged on cached states, it waits on nothing; else later */
        f->sent = attempt_send(c, &c->links[link], &f->b, &f->first, true);
    batch_done(c, done, list);
    if (!quick)
        ready = flight_init(c, f, list, link);
    if (ready)
        return f;
    batch_done(c, list, NULL);
    return NULL;
}

/* Two batches at a time: while the write of one (cur) commits on one
 * link, the next is taken, judged on the states cur leaves, and sent on
 * the other link without its COMMIT, which follows once cur's has
 * succeeded (flight_send_ahead). PostgreSQL copies the second one's
 * journal rows while the first one writes its accounts and flushes. A
 * batch that cannot go ahead waits for cur and then goes the usual way
 * (flight_follow). */
static void *committer_main(void *arg)
{
    struct committer *c = arg;
    struct flight flights[2];
    struct flight *cur = NULL; /* its first attempt sent */
    struct flight *next;
    while (flight_take(c, flights, cur, cur ? TAKE_AHEAD : TAKE_WAIT, &next)) {
        if (next && cur)
            flight_send_ahead(c, next, cur);
        if (cur != NULL) {
            batch_run(c, cur, next);
            if (c->links[cur->link].mem.cap > BATCH_MEM_KEEP_MAX)
                batch_mem_release(&c->links[cur->link].mem);
            if (next != NULL)
                batch_done(c, cur->list, next->list);
            else
                next = flight_follow(c, flights, cur);
        }
        flight_send(c, next);
        cur = next;
    }
    batch_mem_release(&c->links[0].mem); /* the blocks are this thread's own */
    batch_mem_release(&c->links[1].mem);
    return NULL;
}

/* Finishes what is queued, then joins the first n committers. */
static void committers_stop(struct engine *e, int n)
{
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_broadcast(&e->wake);
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < n; i++) {
        pthread_join(e->committers[i].thread, NULL);
        for (int k = 0; k < 2; k++) {
            PQfinish(e->committers[i].links[k].conn);
            e->committers[i].links[k].conn = NULL;
        }
        free(e->committers[i].busy_ids);
        e->committers[i].busy_ids = NULL;
    }
}

/* Joins the answerer once it has answered all, and frees what
 * engine_start set up before any thread. */
static void answerer_stop(struct engine *e)
{
    pthread_mutex_lock(&e->answer_lock);
    e->answerer_stopping = true;
    pthread_cond_signal(&e->answer_wake);
    pthread_mutex_unlock(&e->answer_lock);
    pthread_join(e->answerer, NULL);
    account_cache_destroy(&e->cache);
}

int engine_start(struct engine *e, const char *conninfo, int queued_ops_max, int batch_ops_max,
                 int n_committers)
{
    memset(e, 0, sizeof *e);
    if (account_cache_init(&e->cache, ACCOUNT_CACHE_CAPACITY) != 0)
        return -1;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_mutex_init(&e->answer_lock, NULL);
    pthread_cond_init(&e->answer_wake, NULL);
    if (pthread_create(&e->answerer, NULL, answerer_main, e) != 0) {
        account_cache_destroy(&e->cache);
        return -1;
    }
    e->conninfo = conninfo;
    e->queued_ops_max = queued_ops_max;
    e->batch_ops_max = batch_ops_max;
    e->n_committers = n_committers < 1                ? 1
                      : n_committers > COMMITTERS_MAX ? COMMITTERS_MAX
                                                      : n_committers;
    /* A start that fails part-way stops what it started, so that the
     * caller may simply report it. */
    int started = 0;
    while (started < e->n_committers) {
        struct committer *c = &e->committers[started];
        c->e = e;
        if (pthread_create(&c->thread, NULL, committer_main, c) != 0)
            break;
        started++;
    }
    if (started == e->n_committers && engine_sweeper_start(e) == 0)
        return 0;
    committers_stop(e, started);
    answerer_stop(e);
    return -1;
}

void engine_stop(struct engine *e)
{
    engine_sweeper_stop(e);
    committers_stop(e, e->n_committers);
    answerer_stop(e);
}
