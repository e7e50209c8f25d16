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
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/apply.h"
#include "core/assert.h"
#include "engine.h"
#include "util/log.h"
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
    malloc_trim(0);
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

/* Judges the batch on cached states, if the cache has all its accounts.
 * True if that judgement may be written without loading (store.h,
 * store_batch_locks): every account gets an entry, so a changed one fails
 * its insert, and every transfer id of the batch is inserted, so one that
 * exists already fails too (and the batch, judged again on loaded state,
 * replays it) instead of being judged as new. */
static bool batch_judge_cached(struct committer *c, struct batch *b, int *n_entries)
{
    if (!account_cache_get_all(&c->e->cache, c->server, b->account_ids, b->n_accounts, b->accounts,
                               (int64_t)mono_us()))
        return false;
    for (int i = 0; i < b->n_accounts; i++) {
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

/* Writes what batch_apply produced and commits; lock_first: the batch was
 * judged on cached states, and its transaction is not open yet. */
static enum store_result batch_write(struct committer *c, struct batch *b, int n_entries,
                                     const struct store_batch_locks *lock_first, int *n_new,
                                     struct store_error *err)
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
    *n_new = n;
    struct store_batch_writes w = {
        .lock_first = lock_first,
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
    return store_batch_write_commit(c->conn, &w, err);
}

/* One attempt: on cached states if it can, else (or if another process
 * changed them) lock and load, apply, write and commit. *n_new counts the
 * transfers it created (for the unknown-outcome lookup). */
static enum store_result batch_attempt(struct committer *c, struct batch *b, int *n_new,
                                       struct store_error *err)
{
    *n_new = 0;
    int n_entries;
    uint64_t t0 = mono_us();
    if (batch_judge_cached(c, b, &n_entries)) {
        struct store_batch_locks locks = {b->account_ids, b->n_accounts, b->lock_all};
        uint64_t t1 = mono_us();
        enum store_result r = batch_write(c, b, n_entries, &locks, n_new, err);
        log_debug("batch of %d transfers: cached, rules %llu us, lock+write+commit %llu us",
                  b->n_ops, (unsigned long long)(t1 - t0), (unsigned long long)(mono_us() - t1));
        if (r == STORE_OK)
            metrics_cached_batch();
        if (r == STORE_OK || r == STORE_UNKNOWN || r == STORE_RETRY_LOCK_ALL ||
            PQstatus(c->conn) != CONNECTION_OK)
            return r;
        /* Refused on a live connection: judge again on loaded states,
         * which also reports any error that does not come from the cache.
         * An (account, seq) or a transfer id that exists, a seq that is
         * not the cached one, a missing account row: the cache was
         * wrong, most likely because another process writes these. */
        store_batch_rollback(c->conn);
        if (strcmp(err->sqlstate, "23505") == 0 || strcmp(err->sqlstate, "23502") == 0 ||
            strcmp(err->sqlstate, "P0001") == 0) {
            account_cache_drop(&c->e->cache, b->account_ids, b->n_accounts,
                               (int64_t)(mono_us() + CACHE_HOLD_US));
            metrics_cache_stale();
        }
        log_debug("cached judgement of %d transfers refused: %s", b->n_ops, err->message);
        *n_new = 0;
        t0 = mono_us();
    }
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
    enum store_result r = store_batch_load(c->conn, &rd, err);
    if (r != STORE_OK)
        return r;
    for (int i = 0; i < b->n_accounts; i++)
        b->seq_before[i] = b->found[i] ? b->accounts[i].seq : 0;
    uint64_t t1 = mono_us();
    n_entries = batch_apply(b);
    uint64_t t2 = mono_us();
    r = batch_write(c, b, n_entries, NULL, n_new, err);
    log_debug("batch of %d transfers: lock+load %llu us, rules %llu us, write+commit %llu us",
              b->n_ops, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
              (unsigned long long)(mono_us() - t2));
    return r;
}

/* A usable connection with the write path prepared, reconnecting if the
 * old one broke. */
static bool committer_connect(struct committer *c)
{
    enum store_ensure_result ensured = store_ensure(&c->conn, c->e->conninfo);
    if (ensured == STORE_CONN_DOWN)
        return false;
    /* A new session may be on another server (a failover, a restore),
     * whose states may differ from the cached ones. */
    if (ensured == STORE_CONN_NEW) {
        c->prepared = false;
        if (store_server_incarnation(c->conn, c->server, sizeof c->server) == 0)
            account_cache_use_server(&c->e->cache, c->server);
        else
            c->server[0] = '\0';
    }
    if (!c->prepared) {
        char err[256];
        if (store_prepare_write_path(c->conn, err, sizeof err) != 0) {
            log_error("could not prepare the write path: %s", err);
            PQfinish(c->conn);
            c->conn = NULL;
            return false;
        }
        c->prepared = true;
    }
    store_refresh_plans(c->conn, &c->planned_ns);
    return true;
}

/* After the connection broke during COMMIT: did the batch land? Asks on a
 * new connection for a while; 1 yes, 0 no, -1 could not tell. */
static int batch_outcome(struct committer *c, const struct batch *b)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        if (committer_connect(c)) {
            int r = store_transfer_committed(c->conn, b->new_transfers[0].ext_id);
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
static int resolve_settlements(struct committer *c, struct engine_request *list)
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
    int rc = store_transfer_accounts(c->conn, ids, n, from, to, found);
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

/* Runs the batch to a definite end and sets every request's status. */
static void batch_run(struct committer *c, struct batch *b)
{
    enum status outcome = STATUS_UNAVAILABLE;
    bool acknowledged = false; /* COMMIT answered on this session */
    for (int attempt = 0; attempt < BATCH_ATTEMPTS_MAX; attempt++) {
        if (!committer_connect(c)) {
            metrics_db_error();
            log_warn("could not connect to the database for a batch of %d transfers", b->n_ops);
            break;
        }
        struct store_error err = {{0}, {0}};
        int n_new = 0;
        enum store_result r = batch_attempt(c, b, &n_new, &err);
        if (r == STORE_OK) {
            outcome = STATUS_OK;
            acknowledged = true;
            break;
        }
        metrics_db_error();
        if (r == STORE_UNKNOWN) {
            int landed = n_new > 0 ? batch_outcome(c, b) : 0;
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
        store_batch_rollback(c->conn);
        if (r == STORE_RETRY || r == STORE_RETRY_LOCK_ALL) {
            metrics_retry();
            log_debug("retrying batch of %d transfers after SQLSTATE %s", b->n_ops, err.sqlstate);
            if (r == STORE_RETRY_LOCK_ALL)
                b->lock_all = true;
            /* What made it retryable (a deadlock, locks held by others) is
             * mostly other sessions' doing: give them time to finish. */
            if (attempt > 0)
                usleep((useconds_t)attempt * 2000);
            continue;
        }
        log_error("could not commit batch of %d transfers: %s%s%s", b->n_ops, err.message,
                  err.sqlstate[0] ? " SQLSTATE " : "", err.sqlstate);
        break;
    }

    /* After an acknowledged COMMIT, every found account's state in b is
     * what committed. An outcome found by looking a transfer id up is not
     * that sure (another process may have committed that id). */
    if (outcome == STATUS_OK)
        metrics_batch(b->n_ops);
    if (acknowledged)
        account_cache_put(&c->e->cache, c->server, b->account_ids, b->n_accounts, b->accounts,
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

static void *committer_main(void *arg)
{
    struct committer *c = arg;
    struct engine *e = c->e;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        struct engine_request *list;
        /* Counted from when the committer found nothing to take, not from
         * each wake-up: the others wake it after every batch. */
        struct timespec until = {0, 0};
        while ((list = engine_take(e, c)) == NULL && !(e->stopping && e->head == NULL)) {
            if (c->mem.block == NULL) {
                pthread_cond_wait(&e->wake, &e->lock);
                continue;
            }
            if (until.tv_sec == 0) {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += IDLE_RELEASE_S;
            }
            if (pthread_cond_timedwait(&e->wake, &e->lock, &until) == ETIMEDOUT) {
                pthread_mutex_unlock(&e->lock); /* trimming takes a while */
                batch_mem_release(&c->mem);
                pthread_mutex_lock(&e->lock);
            }
        }
        if (list == NULL) {
            pthread_mutex_unlock(&e->lock);
            break;
        }
        engine_mark_busy(c, list);
        pthread_mutex_unlock(&e->lock);

        struct batch b;
        if (committer_connect(c) && resolve_settlements(c, list) == 0) {
            batch_init(&b, list, &c->mem);
            batch_run(c, &b);
            if (c->mem.cap > BATCH_MEM_KEEP_MAX)
                batch_mem_release(&c->mem);
        } else {
            metrics_db_error();
            log_warn("could not reach the database for a batch");
            for (struct engine_request *r = list; r; r = r->next)
                r->status = STATUS_UNAVAILABLE;
        }
        /* The busy ids point into these requests, which done may free:
         * unpublish them first, and let the others look at what waited. */
        pthread_mutex_lock(&e->lock);
        engine_clear_busy(c);
        pthread_cond_broadcast(&e->wake);
        pthread_mutex_unlock(&e->lock);
        answer_later(e, list);
    }
    batch_mem_release(&c->mem); /* the block is this thread's own */
    return NULL;
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
    if (pthread_create(&e->answerer, NULL, answerer_main, e) != 0)
        return -1;
    e->conninfo = conninfo;
    e->queued_ops_max = queued_ops_max;
    e->batch_ops_max = batch_ops_max;
    e->n_committers = n_committers < 1                ? 1
                      : n_committers > COMMITTERS_MAX ? COMMITTERS_MAX
                                                      : n_committers;
    for (int i = 0; i < e->n_committers; i++) {
        e->committers[i].e = e;
        if (pthread_create(&e->committers[i].thread, NULL, committer_main, &e->committers[i]) != 0)
            return -1;
    }
    return engine_sweeper_start(e);
}

void engine_stop(struct engine *e)
{
    engine_sweeper_stop(e);
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_broadcast(&e->wake);
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < e->n_committers; i++) {
        pthread_join(e->committers[i].thread, NULL);
        PQfinish(e->committers[i].conn);
        e->committers[i].conn = NULL;
        free(e->committers[i].busy_ids);
        e->committers[i].busy_ids = NULL;
    }
    pthread_mutex_lock(&e->answer_lock);
    e->answerer_stopping = true;
    pthread_cond_signal(&e->answer_wake);
    pthread_mutex_unlock(&e->answer_lock);
    pthread_join(e->answerer, NULL);
    account_cache_destroy(&e->cache);
}
