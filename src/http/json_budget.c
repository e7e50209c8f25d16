/*
 * json_budget.c - counts jansson's allocations (json_budget.h).
 *
 * Sizes are malloc_usable_size's, on the way in and on the way out, so no
 * header is needed and the two always agree.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>

#include "json_budget.h"
#include "util/mem.h"

#define JSON_TRIM_AFTER_BYTES ((size_t)32 << 20)

static size_t live_bytes;

/* The parse running on this thread, if any. */
static __thread struct {
    bool on;
    size_t used;
    enum json_budget_result over;
} parse;

static void *budget_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        return NULL;
    size_t size = malloc_usable_size(p);
    if (parse.on && parse.used + size > JSON_PARSE_BYTES_MAX) {
        free(p);
        parse.over = JSON_BUDGET_REQUEST;
        return NULL;
    }
    if (__atomic_add_fetch(&live_bytes, size, __ATOMIC_RELAXED) > JSON_LIVE_BYTES_MAX && parse.on) {
        __atomic_sub_fetch(&live_bytes, size, __ATOMIC_RELAXED);
        free(p);
        parse.over = JSON_BUDGET_BUSY;
        return NULL;
    }
    if (parse.on)
        parse.used += size;
    return p;
}

static void budget_free(void *p)
{
    if (p == NULL)
        return;
    __atomic_sub_fetch(&live_bytes, malloc_usable_size(p), __ATOMIC_RELAXED);
    free(p);
}

void json_budget_init(void)
{
    json_set_alloc_funcs(budget_malloc, budget_free);
}

json_t *json_budget_loadb(const char *buf, size_t len, size_t flags, json_error_t *error,
                          enum json_budget_result *over)
{
    parse.on = true;
    parse.used = 0;
    parse.over = JSON_BUDGET_OK;
    json_t *root = json_loadb(buf, len, flags, error);
    parse.on = false;
    *over = root == NULL ? parse.over : JSON_BUDGET_OK;
    /* What a refused parse took would otherwise stay with the process. */
    if (root == NULL && parse.used > JSON_TRIM_AFTER_BYTES)
        mem_trim();
    return root;
}
