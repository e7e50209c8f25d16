/*
 * workload.c - seeded transfer streams: uniform, hot (credit hot spot),
 * hot-spend (debit hot spot) and zipf.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

uint64_t rng_next(struct rng *r)
{
    /* xorshift64*: fast, and the same sequence for the same seed. */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

void workload_init(struct workload *w, enum workload_kind kind)
{
    static const char *const names[WL_COUNT] = {"uniform", "hot", "hot-spend", "zipf"};
    w->kind = kind;
    w->name = names[kind];
    w->n_accounts = kind == WL_ZIPF ? 100000 : 10000;
    w->zipf_cdf = NULL;
    if (kind == WL_ZIPF) {
        /* Zipf(1.0): P(rank k) proportional to 1/k. */
        w->zipf_cdf = malloc((size_t)w->n_accounts * sizeof *w->zipf_cdf);
        double sum = 0;
        for (int k = 0; k < w->n_accounts; k++) {
            sum += 1.0 / (k + 1);
            w->zipf_cdf[k] = sum;
        }
        for (int k = 0; k < w->n_accounts; k++)
            w->zipf_cdf[k] /= sum;
    }
}

void workload_free(struct workload *w)
{
    free(w->zipf_cdf);
    w->zipf_cdf = NULL;
}

static int zipf_draw(const struct workload *w, struct rng *r)
{
    double u = (double)(rng_next(r) >> 11) / (double)(1ULL << 53);
    int lo = 0, hi = w->n_accounts - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (w->zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void workload_next(const struct workload *w, struct rng *r, int *from, int *to, int *amount)
{
    *amount = 1 + (int)rng_below(r, 100);
    int n = w->n_accounts;
    switch (w->kind) {
    case WL_UNIFORM:
        *from = (int)rng_below(r, (uint64_t)n);
        do
            *to = (int)rng_below(r, (uint64_t)n);
        while (*to == *from);
        return;
    case WL_HOT: /* everyone pays account 0, the merchant */
        *to = 0;
        *from = 1 + (int)rng_below(r, (uint64_t)(n - 1));
        return;
    case WL_HOT_SPEND: /* account 0, one wallet, pays everyone */
        *from = 0;
        *to = 1 + (int)rng_below(r, (uint64_t)(n - 1));
        return;
    case WL_ZIPF:
        *from = zipf_draw(w, r);
        do
            *to = zipf_draw(w, r);
        while (*to == *from);
        return;
    case WL_COUNT:
        break;
    }
    abort();
}

void workload_account(const struct workload *w, int i, char *buf, size_t len)
{
    snprintf(buf, len, "%s-%06d", w->name, i);
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void samples_add(struct samples *s, uint64_t us)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->us = realloc(s->us, s->cap * sizeof *s->us);
        if (s->us == NULL)
            abort();
    }
    s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

double samples_percentile_ms(struct samples *s, double p)
{
    if (s->n == 0)
        return 0;
    qsort(s->us, s->n, sizeof *s->us, cmp_u32);
    size_t i = (size_t)ceil(p / 100.0 * (double)s->n);
    if (i > 0)
        i--;
    if (i >= s->n)
        i = s->n - 1;
    return s->us[i] / 1000.0;
}

void samples_free(struct samples *s)
{
    free(s->us);
    s->us = NULL;
    s->n = s->cap = 0;
}
