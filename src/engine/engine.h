/*
 * engine.h - the write path: a bounded queue and committer threads.
 *
 * Request threads submit parsed transfer requests; a committer takes what
 * is queued (up to a limit), runs core on it inside one database
 * transaction, commits, and only then hands the requests to the answerer
 * thread, which calls each one's done callback.
 * A 2xx answer therefore always follows a durable COMMIT.
 */
#ifndef LEDGER_ENGINE_ENGINE_H
#define LEDGER_ENGINE_ENGINE_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "account_cache.h"
#include "core/types.h"

/* One transfer of a request as the HTTP layer parsed it. For post, void
 * and expire, id names the pending transfer and the committer fills from
 * and to with its accounts. */
struct engine_op {
    char id[ID_LEN_MAX + 1];
    char from[ID_LEN_MAX + 1]; /* settlements: filled in by the committer */
    char to[ID_LEN_MAX + 1];
    char *metadata_json; /* owned by the request's creator; NULL for none */
    /* The op as core judges it: the HTTP layer fills its inputs (its
     * unit_cost is owned by the request's creator); its results (status,
     * replayed, *result) are valid once done is called with STATUS_OK.
     * The committer sets the slots, id pointers and result. */
    struct core_op core;
};

struct engine_request {
    struct engine_op *ops;
    int n_ops;
    bool atomic;
    /* Called once from the answerer thread: status is STATUS_OK (see each
     * op) or STATUS_UNAVAILABLE (nothing applied, or outcome unknown). */
    void (*done)(struct engine_request *r);
    void *done_arg;
    enum status status;
    /* One per op, allocated by the committer that takes the request (ops
     * wait in the queue without them); the request's creator frees it. */
    struct core_transfer *results;
    struct engine_request *next;
};

#define COMMITTERS_MAX 8

struct engine;

/* The block a committer carves each batch's arrays from (committer.c). */
struct batch_mem {
    char *block;
    size_t cap, used;
};

/* A committer's database connection, and the block its batches' arrays
 * are carved from. */
struct committer_link {
    PGconn *conn;       /* no other thread touches it */
    bool prepared;      /* conn has the write path's statements prepared */
    int64_t planned_ns; /* store_refresh_plans */
    struct batch_mem mem;
    char server[64]; /* store_server_incarnation of conn's server; "" unknown */
};

/* One committer thread and its two links: while one batch commits on one,
 * the next is sent on the other (committer.c). */
struct committer {
    struct engine *e;
    pthread_t thread;
    struct committer_link links[2];
    int tickets; /* the last store_baton ticket it gave a batch */
    /* The accounts of the batches it is running, so that the other
     * committers take only requests on other accounts (engine->lock):
     * sorted ids of its transfers' from and to, or all of them for a
     * batch that runs alone anyway. */
    const char **busy_ids;
    int n_busy, busy_cap;
    bool busy_all;
};

struct engine {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct engine_request *head, *tail;
    int queued_ops;
    int queued_ops_max; /* back-pressure: submit refuses beyond this */
    int batch_ops_max;  /* requests are combined up to this many transfers */
    bool stopping;
    const char *conninfo;
    /* Each committer takes, in queue order, the requests that share no
     * account with another committer's batch: batches on disjoint accounts
     * commit side by side, and the requests on a busy account wait and
     * become one batch instead of two that queue for each other's lock.
     * The database's locks, not this choice, keep batches of different
     * processes apart. */
    struct committer committers[COMMITTERS_MAX];
    int n_committers;
    /* The states the committers last committed, so that a batch on them
     * can skip loading (account_cache.h). */
    struct account_cache cache;

    /* Batches done wait here for the answerer thread, which calls their
     * requests' done callbacks: a committer takes its next batch at once
     * instead of first resuming every connection of the last one. */
    pthread_t answerer;
    pthread_mutex_t answer_lock;
    pthread_cond_t answer_wake;
    struct engine_request *answers, *answers_tail;
    bool answerer_stopping;

    /* The expiry sweeper: its own thread, connection and arrays. */
    pthread_t sweeper;
    char (*sweep_ids)[ID_LEN_MAX + 1];
    struct engine_op *sweep_ops;
    pthread_cond_t sweeper_wake;
    bool sweeper_stopping;
};

int engine_start(struct engine *e, const char *conninfo, int queued_ops_max, int batch_ops_max,
                 int n_committers);
/* Transfers queued now (for /metrics). */
int engine_queued_ops(struct engine *e);
enum engine_submit_result { ENGINE_QUEUED, ENGINE_FULL, ENGINE_STOPPING };
/* Queues r; r is untouched unless ENGINE_QUEUED. */
enum engine_submit_result engine_submit(struct engine *e, struct engine_request *r);
/* Stops the sweeper, stops taking requests, finishes what is queued,
 * joins the committers, then the answerer once it has answered all. */
void engine_stop(struct engine *e);

/* The expiry sweeper (sweeper.c), started and stopped by the engine. */
int engine_sweeper_start(struct engine *e);
void engine_sweeper_stop(struct engine *e);

#endif
