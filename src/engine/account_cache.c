/*
 * account_cache.c - a set-associative map from account id to its last
 * committed state (account_cache.h). Set-associative rather than a growing
 * table so that its memory is fixed, and rather than a global LRU list so
 * that a lookup touches one set of adjacent entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_cache.h"

#define ACCOUNT_CACHE_WAYS 8

struct account_cache_entry {
    uint64_t generation; /* the slot holds key if this is the cache's */
    bool valid;          /* state is as committed */
    uint64_t last_use;   /* c->clock at the last get or put */
    int64_t hold_until;  /* get_all refuses the entry before this time */
    char key[ID_LEN_MAX + 1];
    struct core_account state;
};

int account_cache_init(struct account_cache *c, unsigned capacity)
{
    memset(c, 0, sizeof *c);
    unsigned sets = 1;
    while (sets * ACCOUNT_CACHE_WAYS < capacity)
        sets <<= 1;
    /* calloc: pages of never-used sets are never touched, so RSS follows
     * the number of accounts actually cached. */
    c->entries = calloc((size_t)sets * ACCOUNT_CACHE_WAYS, sizeof *c->entries);
    if (c->entries == NULL)
        return -1;
    c->n_sets = sets;
    c->generation = 1; /* calloc'd slots hold generation 0: unused */
    pthread_mutex_init(&c->lock, NULL);
    return 0;
}

void account_cache_destroy(struct account_cache *c)
{
    if (c->entries == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->entries);
    c->entries = NULL;
}

/* FNV-1a. */
static struct account_cache_entry *set_of(const struct account_cache *c, const char *id)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return &c->entries[(h & (c->n_sets - 1)) * ACCOUNT_CACHE_WAYS];
}

static bool used(const struct account_cache *c, const struct account_cache_entry *e)
{
    return e->generation == c->generation;
}

static struct account_cache_entry *find(const struct account_cache *c, const char *id)
{
    struct account_cache_entry *set = set_of(c, id);
    for (int w = 0; w < ACCOUNT_CACHE_WAYS; w++)
        if (used(c, &set[w]) && strcmp(set[w].key, id) == 0)
            return &set[w];
    return NULL;
}

static bool server_is(const struct account_cache *c, const char *server)
{
    return server[0] != '\0' && strcmp(server, c->server) == 0;
}

void account_cache_use_server(struct account_cache *c, const char *server)
{
    pthread_mutex_lock(&c->lock);
    if (!server_is(c, server)) {
        c->generation++;
        snprintf(c->server, sizeof c->server, "%s", server);
    }
    pthread_mutex_unlock(&c->lock);
}

bool account_cache_get_all(struct account_cache *c, const char *server, const char *const *ids,
                           int n, struct core_account *out, int64_t now_us)
{
    pthread_mutex_lock(&c->lock);
    bool all = server_is(c, server);
    for (int i = 0; i < n && all; i++) {
        struct account_cache_entry *e = find(c, ids[i]);
        all = e != NULL && e->valid && e->hold_until <= now_us;
        if (all) {
            out[i] = e->state;
            out[i].touched = false;
            e->last_use = ++c->clock;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return all;
}

void account_cache_put(struct account_cache *c, const char *server, const char *const *ids, int n,
                       const struct core_account *states, const bool *found)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < n && server_is(c, server); i++) {
        if (!found[i] || strlen(ids[i]) > ID_LEN_MAX)
            continue;
        struct account_cache_entry *e = find(c, ids[i]);
        if (e != NULL && e->valid && e->state.seq > states[i].seq)
            continue;
        if (e == NULL) {
            struct account_cache_entry *set = set_of(c, ids[i]);
            e = &set[0];
            for (int w = 1; w < ACCOUNT_CACHE_WAYS && used(c, e); w++)
                if (!used(c, &set[w]) || set[w].last_use < e->last_use)
                    e = &set[w];
            memset(e, 0, sizeof *e);
            e->generation = c->generation;
            strcpy(e->key, ids[i]);
        }
        e->state = states[i];
        e->valid = true;
        e->last_use = ++c->clock;
    }
    pthread_mutex_unlock(&c->lock);
}

void account_cache_drop(struct account_cache *c, const char *const *ids, int n,
                        int64_t hold_until_us)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < n; i++) {
        struct account_cache_entry *e = find(c, ids[i]);
        if (e == NULL)
            continue;
        e->valid = false;
        if (hold_until_us > e->hold_until)
            e->hold_until = hold_until_us;
    }
    pthread_mutex_unlock(&c->lock);
}
