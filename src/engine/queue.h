/*
 * queue.h - what a committer takes next (queue.c). Every function here but
 * the id helpers runs with engine->lock held.
 */
#ifndef LEDGER_ENGINE_QUEUE_H
#define LEDGER_ENGINE_QUEUE_H

#include "engine.h"

/* strcmp order of (const char *) array elements, for qsort and bsearch. */
int engine_ids_cmp(const void *a, const void *b);
/* Sorts and dedups ids in place; returns the new count. */
int engine_ids_sort_unique(const char **ids, int n);

/* Takes whole requests in queue order, skipping those that name an
 * account of another committer's running batch; NULL if none can go now. */
struct engine_request *engine_take(struct engine *e, struct committer *c);
/* Publishes the accounts of the batches c runs (lists a and b, either
 * NULL), for the others' engine_take. A batch done is unpublished before
 * its requests are answered, since the published ids point into them. */
void engine_mark_busy(struct committer *c, struct engine_request *a, struct engine_request *b);

#endif
