/*
 * account_cache.h - the state of accounts as this process last committed
 * it, so that a batch can skip loading them.
 *
 * The cache is a hint, never the truth: a batch judged on cached states
 * is written under the same locks as any other, and the journal refuses it
 * if another process changed one of its accounts since (store.h,
 * store_batch_locks); the batch then runs again on loaded states. Bounded:
 * a fixed number of entries, the least recently used of a set replaced.
 *
 * Thread-safe; shared by the committers of one process.
 */
#ifndef LEDGER_ENGINE_ACCOUNT_CACHE_H
#define LEDGER_ENGINE_ACCOUNT_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/types.h"

/* Accounts one ledgerd process keeps: about 470 bytes each, so up to
 * 30 MB, touched only as accounts are cached. A batch skips loading only
 * if all its accounts are cached, so this is well above the number a
 * busy ledger's batches name within minutes (set-associative caches lose
 * entries before they are full). */
#define ACCOUNT_CACHE_CAPACITY 65536

struct account_cache_entry;

struct account_cache {
    pthread_mutex_t lock;
    struct account_cache_entry *entries; /* n_sets * ACCOUNT_CACHE_WAYS */
    unsigned n_sets;                     /* a power of two */
    uint64_t clock;                      /* use counter, for replacement */
    uint64_t generation;                 /* entries of older ones are unused */
    char server[64];                     /* the server whose states these are */
};

/* Room for at least `capacity` accounts; 0 on success. */
int account_cache_init(struct account_cache *c, unsigned capacity);
void account_cache_destroy(struct account_cache *c);

/* A committer's new session is on `server` (store_server_incarnation):
 * if that is not the server the cache holds states of, it forgets them
 * all (a restored database or a promoted standby can differ from them at
 * the same seq) and holds that server's from now on. Sessions still on
 * the other server then neither get nor put states: their commits are
 * not this server's. */
void account_cache_use_server(struct account_cache *c, const char *server);

/* Copies the cached state of every one of ids[0..n) into out[] (touched
 * cleared) and returns true; false, leaving out[] unspecified, if server
 * is not the cache's (or empty), or any of them is missing or held off
 * until after now_us. */
bool account_cache_get_all(struct account_cache *c, const char *server, const char *const *ids,
                           int n, struct core_account *out, int64_t now_us);

/* Records the states of ids[i] with found[i], as committed on server
 * (ignored if that is not the cache's, or if a state with a higher seq is
 * cached: another committer's later commit). */
void account_cache_put(struct account_cache *c, const char *server, const char *const *ids, int n,
                       const struct core_account *states, const bool *found);

/* Forgets ids' states; with hold_until_us > 0, also refuses them to
 * account_cache_get_all until then (a time of the caller's clock), states
 * put meanwhile included: another process is writing them, and checking a
 * cached state that is likely stale costs a wasted round trip. */
void account_cache_drop(struct account_cache *c, const char *const *ids, int n,
                        int64_t hold_until_us);

#endif
