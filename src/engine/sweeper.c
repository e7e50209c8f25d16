/*
 * sweeper.c - expires pending transfers whose deadline has passed.
 *
 * Every process runs one. It finds due transfers on its own connection
 * and submits OP_EXPIRE requests through the normal write path, so expiry
 * takes the account locks and core releases a reservation only while the
 * transfer is still pending: with several processes sweeping, exactly one
 * expire_pending entry pair is written per transfer. Deadlines that passed
 * while no ledgerd ran are found on the first sweep after start.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "metrics.h"
#include "store/store.h"
#include "util/log.h"

#define SWEEP_INTERVAL_MS 200
#define SWEEP_LIMIT       1000

struct sweep_wait {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    bool done;
};

static void sweep_done(struct engine_request *r)
{
    struct sweep_wait *w = r->done_arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->done_cond);
    pthread_mutex_unlock(&w->lock);
}

/* Expires up to SWEEP_LIMIT due transfers; returns how many were due. */
static int sweep_once(struct engine *e, PGconn **conn, int64_t *planned_ns,
                      char (*ids)[ID_LEN_MAX + 1], struct engine_op *ops)
{
    if (store_ensure_reads(conn, e->conninfo) == STORE_CONN_DOWN)
        return 0;
    store_refresh_plans(*conn, planned_ns);
    int n = store_due_pending(*conn, SWEEP_LIMIT, ids);
    if (n <= 0)
        return 0;
    memset(ops, 0, (size_t)n * sizeof *ops);
    for (int i = 0; i < n; i++) {
        ops[i].core.kind = OP_EXPIRE;
        memcpy(ops[i].id, ids[i], sizeof ops[i].id);
    }
    struct sweep_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct engine_request r = {
        .ops = ops, .n_ops = n, .atomic = false, .done = sweep_done, .done_arg = &w};
    if (engine_submit(e, &r) != ENGINE_QUEUED)
        return 0; /* queue full or stopping: the next sweep tries again */
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.done_cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    int expired = 0;
    for (int i = 0; r.status == STATUS_OK && i < n; i++)
        expired += ops[i].core.status == STATUS_OK;
    free(r.results);
    if (expired > 0)
        log_info("expired %d pending transfer(s)", expired);
    return n;
}

static void *sweeper_main(void *arg)
{
    struct engine *e = arg;
    PGconn *conn = NULL;
    int64_t planned_ns = 0;
    pthread_mutex_lock(&e->lock);
    while (!e->sweeper_stopping) {
        pthread_mutex_unlock(&e->lock);
        int due = sweep_once(e, &conn, &planned_ns, e->sweep_ids, e->sweep_ops);
        pthread_mutex_lock(&e->lock);
        if (due == SWEEP_LIMIT)
            continue; /* more are due right now */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SWEEP_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (!e->sweeper_stopping)
            pthread_cond_timedwait(&e->sweeper_wake, &e->lock, &until);
    }
    pthread_mutex_unlock(&e->lock);
    PQfinish(conn);
    return NULL;
}

/* Fails rather than start a sweeper that could not sweep: a ledgerd
 * whose pending transfers never expire must not come up. */
int engine_sweeper_start(struct engine *e)
{
    pthread_cond_init(&e->sweeper_wake, NULL);
    e->sweep_ids = calloc(SWEEP_LIMIT, sizeof *e->sweep_ids);
    e->sweep_ops = calloc(SWEEP_LIMIT, sizeof *e->sweep_ops);
    if (e->sweep_ids && e->sweep_ops && pthread_create(&e->sweeper, NULL, sweeper_main, e) == 0)
        return 0;
    free(e->sweep_ids);
    free(e->sweep_ops);
    e->sweep_ids = NULL;
    e->sweep_ops = NULL;
    return -1;
}

void engine_sweeper_stop(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->sweeper_stopping = true;
    pthread_cond_signal(&e->sweeper_wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->sweeper, NULL);
    free(e->sweep_ids);
    free(e->sweep_ops);
}
