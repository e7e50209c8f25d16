/*
 * queue.c - the committers' queue: requests go in at the tail, and each
 * committer takes, in order, the requests that share no account with the
 * batch another committer is running.
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "engine.h"
#include "queue.h"
#include "store/store.h"

int engine_ids_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int engine_ids_sort_unique(const char **ids, int n)
{
    qsort(ids, (size_t)n, sizeof *ids, engine_ids_cmp);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || strcmp(ids[k - 1], ids[i]) != 0)
            ids[k++] = ids[i];
    return k;
}

int engine_queued_ops(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    int n = e->queued_ops;
    pthread_mutex_unlock(&e->lock);
    return n;
}

enum engine_submit_result engine_submit(struct engine *e, struct engine_request *r)
{
    pthread_mutex_lock(&e->lock);
    enum engine_submit_result result = e->stopping ? ENGINE_STOPPING
                                       : e->queued_ops + r->n_ops > e->queued_ops_max
                                           ? ENGINE_FULL
                                           : ENGINE_QUEUED;
    if (result == ENGINE_QUEUED) {
        r->next = NULL;
        if (e->tail)
            e->tail->next = r;
        else
            e->head = r;
        e->tail = r;
        e->queued_ops += r->n_ops;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->lock);
    return result;
}

/* A skipped request holds back the later requests on its accounts, so
 * that it goes as soon as the batch it waits for is done, and a request on
 * two busy accounts is not overtaken forever by requests on each. The
 * scan stops when the accounts held back outgrow this, or at a request
 * that will run alone: behind such a request nothing is taken. */
#define HELD_IDS_MAX 64
/* And the scan stops after this many requests, so that a long queue on a
 * few accounts costs a bounded look under the engine lock. */
#define TAKE_SCAN_MAX 1024

static bool id_in(const char *id, const char *const *ids, int n)
{
    return id[0] != '\0' && bsearch(&id, ids, (size_t)n, sizeof *ids, engine_ids_cmp) != NULL;
}

static bool id_held(const char *id, const char *const *held, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(id, held[i]) == 0)
            return true;
    return false;
}

/* Would r wait for another committer's batch, or for a request skipped
 * before it (engine lock held)? Only a guess for speed: settlements name
 * their accounts only once resolved, and the database's locks serialise
 * whatever the guess lets through. */
static bool request_conflicts(const struct engine *e, const struct committer *self,
                              const struct engine_request *r, const char *const *held, int n_held)
{
    for (int i = 0; i < r->n_ops; i++)
        if (id_held(r->ops[i].from, held, n_held) || id_held(r->ops[i].to, held, n_held))
            return true;
    for (int k = 0; k < e->n_committers; k++) {
        const struct committer *o = &e->committers[k];
        if (o == self || (!o->busy_all && o->n_busy == 0))
            continue;
        if (o->busy_all || r->n_ops > STORE_LOCKED_ACCOUNTS_MAX / 2)
            return true;
        for (int i = 0; i < r->n_ops; i++)
            if (id_in(r->ops[i].from, o->busy_ids, o->n_busy) ||
                id_in(r->ops[i].to, o->busy_ids, o->n_busy))
                return true;
    }
    return false;
}

/* Holds back r's accounts; false when the scan must stop here. */
static bool hold(const struct engine_request *r, const char **held, int *n_held)
{
    if (r->n_ops > STORE_LOCKED_ACCOUNTS_MAX / 2)
        return false;
    for (int i = 0; i < r->n_ops; i++) {
        const char *ids[2] = {r->ops[i].from, r->ops[i].to};
        for (int j = 0; j < 2; j++) {
            if (ids[j][0] == '\0' || id_held(ids[j], held, *n_held))
                continue;
            if (*n_held == HELD_IDS_MAX)
                return false;
            held[(*n_held)++] = ids[j];
        }
    }
    return true;
}

/* Small requests are merged up to two transfers per lockable account, so
 * that the batch still locks accounts one by one and runs beside batches
 * on other accounts, of this process or another. A batch that runs alone
 * anyway (its first request names too many accounts) takes more while it
 * stays within batch_ops_max. The first request is taken whole, however
 * large: a request is never split across transactions. Requests skipped
 * are all still pending, so taking a later one first is an order their
 * clients could have seen anyway. */
struct engine_request *engine_take(struct engine *e, struct committer *c)
{
    struct engine_request *list = NULL, *last = NULL, *kept = NULL;
    struct engine_request **link = &e->head;
    const char *held[HELD_IDS_MAX];
    int ops = 0, limit = 0, n_held = 0, scanned = 0;
    while (*link && scanned++ < TAKE_SCAN_MAX) {
        struct engine_request *r = *link;
        if (request_conflicts(e, c, r, held, n_held)) {
            if (!hold(r, held, &n_held))
                break;
            kept = r;
            link = &r->next;
            continue;
        }
        if (list == NULL)
            limit = r->n_ops > STORE_LOCKED_ACCOUNTS_MAX / 2 ? e->batch_ops_max
                                                             : STORE_LOCKED_ACCOUNTS_MAX / 2;
        else if (ops + r->n_ops > limit)
            break;
        *link = r->next;
        if (e->tail == r)
            e->tail = kept;
        r->next = NULL;
        if (last)
            last->next = r;
        else
            list = r;
        last = r;
        ops += r->n_ops;
    }
    e->queued_ops -= ops;
    return list;
}

void engine_mark_busy(struct committer *c, struct engine_request *a, struct engine_request *b)
{
    struct engine_request *lists[2] = {a, b};
    int n = 0;
    c->n_busy = 0;
    c->busy_all = false;
    for (int l = 0; l < 2; l++) {
        int ops = 0;
        for (struct engine_request *r = lists[l]; r; r = r->next)
            ops += r->n_ops;
        c->busy_all |= ops > STORE_LOCKED_ACCOUNTS_MAX / 2;
        n += ops;
    }
    if (n == 0 || c->busy_all || c->e->n_committers == 1)
        return;
    if (2 * n > c->busy_cap) {
        c->busy_cap = 2 * n;
        c->busy_ids = realloc(c->busy_ids, (size_t)c->busy_cap * sizeof *c->busy_ids);
        LEDGER_ASSERT(c->busy_ids != NULL);
    }
    for (int l = 0; l < 2; l++)
        for (struct engine_request *r = lists[l]; r; r = r->next)
            for (int i = 0; i < r->n_ops; i++)
                if (r->ops[i].core.kind == OP_TRANSFER) {
                    c->busy_ids[c->n_busy++] = r->ops[i].from;
                    c->busy_ids[c->n_busy++] = r->ops[i].to;
                }
    c->n_busy = engine_ids_sort_unique(c->busy_ids, c->n_busy);
}
