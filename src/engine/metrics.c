/*
 * metrics.c - Prometheus text rendering of struct metrics.
 */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

struct metrics g_metrics;

static const double latency_bounds[LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
static const double batch_bounds[BATCH_BUCKETS] = {1,  2,   4,   8,    16,   32,
                                                   64, 128, 256, 1024, 4096, 16384};

static const char *const route_names[ROUTE_COUNT] = {
    "POST /v1/accounts",
    "GET /v1/accounts/{id}",
    "GET /v1/accounts/{id}/balance",
    "GET /v1/accounts/{id}/entries",
    "POST /v1/transfers",
    "POST /v1/transfers/batch",
    "GET /v1/transfers/{id}",
    "POST /v1/transfers/{id}/post",
    "POST /v1/transfers/{id}/void",
    "GET /healthz",
    "GET /metrics",
    "other",
};

static void observe(struct histogram *h, const double *bounds, int n, double v, double scale)
{
    int i = 0;
    while (i < n && v > bounds[i])
        i++;
    __atomic_fetch_add(&h->buckets[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum_scaled, (uint64_t)(v * scale), __ATOMIC_RELAXED);
}

void metrics_request(enum metrics_route route, int http_status, double seconds)
{
    if (http_status < 0 || http_status >= METRICS_STATUS_SLOTS)
        http_status = 0;
    __atomic_fetch_add(&g_metrics.requests[route][http_status], 1, __ATOMIC_RELAXED);
    observe(&g_metrics.latency, latency_bounds, LATENCY_BUCKETS, seconds, 1e9);
}

void metrics_batch(int n_transfers)
{
    __atomic_fetch_add(&g_metrics.commits, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&g_metrics.transfers_committed, (uint64_t)n_transfers, __ATOMIC_RELAXED);
    observe(&g_metrics.batch, batch_bounds, BATCH_BUCKETS, n_transfers, 1);
}

void metrics_db_error(void)
{
    __atomic_fetch_add(&g_metrics.db_errors, 1, __ATOMIC_RELAXED);
}

void metrics_retry(void)
{
    __atomic_fetch_add(&g_metrics.batch_retries, 1, __ATOMIC_RELAXED);
}

void metrics_cached_batch(bool ahead)
{
    __atomic_fetch_add(&g_metrics.cached_batches, 1, __ATOMIC_RELAXED);
    if (ahead)
        __atomic_fetch_add(&g_metrics.ahead_batches, 1, __ATOMIC_RELAXED);
}

void metrics_ahead_rolled_back(void)
{
    __atomic_fetch_add(&g_metrics.ahead_rolled_back, 1, __ATOMIC_RELAXED);
}

void metrics_ahead_refused(void)
{
    __atomic_fetch_add(&g_metrics.ahead_refused, 1, __ATOMIC_RELAXED);
}

void metrics_cache_stale(void)
{
    __atomic_fetch_add(&g_metrics.cache_stale, 1, __ATOMIC_RELAXED);
}

static void render_histogram(FILE *f, const char *name, const char *help, const struct histogram *h,
                             const double *bounds, int n, double scale)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (int i = 0; i < n; i++) {
        cumulative += __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cumulative);
    }
    cumulative += __atomic_load_n(&h->buckets[n], __ATOMIC_RELAXED);
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    double sum = (double)__atomic_load_n(&h->sum_scaled, __ATOMIC_RELAXED) / scale;
    fprintf(f, "%s_sum %.9g\n%s_count %llu\n", name, sum, name, (unsigned long long)cumulative);
}

char *metrics_render(size_t *len_out, int queued_transfers, int queued_max)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    fputs("# HELP ledgerd_http_requests_total HTTP requests by route and status.\n"
          "# TYPE ledgerd_http_requests_total counter\n",
          f);
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (int s = 0; s < METRICS_STATUS_SLOTS; s++) {
            uint64_t v = __atomic_load_n(&g_metrics.requests[r][s], __ATOMIC_RELAXED);
            if (v)
                fprintf(f, "ledgerd_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        route_names[r], s, (unsigned long long)v);
        }
    render_histogram(f, "ledgerd_http_request_duration_seconds", "HTTP request latency.",
                     &g_metrics.latency, latency_bounds, LATENCY_BUCKETS, 1e9);
    render_histogram(f, "ledgerd_batch_transfers", "Transfers per committed database batch.",
                     &g_metrics.batch, batch_bounds, BATCH_BUCKETS, 1);
    fprintf(f,
            "# HELP ledgerd_commits_total Database transactions committed by the write path.\n"
            "# TYPE ledgerd_commits_total counter\nledgerd_commits_total %llu\n"
            "# HELP ledgerd_transfers_committed_total Transfers judged in committed batches.\n"
            "# TYPE ledgerd_transfers_committed_total counter\n"
            "ledgerd_transfers_committed_total %llu\n"
            "# HELP ledgerd_db_errors_total Database errors seen by any connection.\n"
            "# TYPE ledgerd_db_errors_total counter\nledgerd_db_errors_total %llu\n"
            "# HELP ledgerd_batch_retries_total Batches run again after a retryable SQLSTATE.\n"
            "# TYPE ledgerd_batch_retries_total counter\nledgerd_batch_retries_total %llu\n"
            "# HELP ledgerd_cached_batches_total Batches committed on cached account states,"
            " without loading them.\n"
            "# TYPE ledgerd_cached_batches_total counter\nledgerd_cached_batches_total %llu\n"
            "# HELP ledgerd_cache_stale_total Batches judged on cached account states that"
            " another process had changed, judged again on loaded states.\n"
            "# TYPE ledgerd_cache_stale_total counter\nledgerd_cache_stale_total %llu\n"
            "# HELP ledgerd_ahead_batches_total Batches committed on cached account states that"
            " were sent while the batch before them was still committing.\n"
            "# TYPE ledgerd_ahead_batches_total counter\nledgerd_ahead_batches_total %llu\n"
            "# HELP ledgerd_ahead_rolled_back_total Batches sent ahead of one that then did not"
            " commit, rolled back and run again.\n"
            "# TYPE ledgerd_ahead_rolled_back_total counter\nledgerd_ahead_rolled_back_total"
            " %llu\n"
            "# HELP ledgerd_ahead_refused_total Batches sent ahead whose write was refused (a"
            " state not as judged, or a retryable error), rolled back and judged again.\n"
            "# TYPE ledgerd_ahead_refused_total counter\nledgerd_ahead_refused_total %llu\n",
            (unsigned long long)__atomic_load_n(&g_metrics.commits, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.transfers_committed, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.db_errors, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.batch_retries, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.cached_batches, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.cache_stale, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.ahead_batches, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.ahead_rolled_back, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&g_metrics.ahead_refused, __ATOMIC_RELAXED));
    fprintf(f,
            "# HELP ledgerd_queued_transfers Transfers waiting for a committer; at"
            " ledgerd_queued_transfers_max, requests are refused with 503.\n"
            "# TYPE ledgerd_queued_transfers gauge\nledgerd_queued_transfers %d\n"
            "# HELP ledgerd_queued_transfers_max The bound of the write queue.\n"
            "# TYPE ledgerd_queued_transfers_max gauge\nledgerd_queued_transfers_max %d\n",
            queued_transfers, queued_max);
    fclose(f);
    *len_out = len;
    return buf;
}
