/*
 * metrics.h - process-wide counters and histograms for /metrics.
 *
 * Lock-free: every field is updated with relaxed atomics from any thread
 * and read without a lock when rendering (a scrape may mix values from
 * neighbouring instants, which Prometheus tolerates).
 */
#ifndef LEDGER_ENGINE_METRICS_H
#define LEDGER_ENGINE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum metrics_route {
    ROUTE_ACCOUNTS_CREATE,
    ROUTE_ACCOUNT_GET,
    ROUTE_ACCOUNT_BALANCE,
    ROUTE_ACCOUNT_ENTRIES,
    ROUTE_TRANSFER_CREATE,
    ROUTE_TRANSFER_BATCH,
    ROUTE_TRANSFER_GET,
    ROUTE_TRANSFER_POST,
    ROUTE_TRANSFER_VOID,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_OTHER,
    ROUTE_COUNT
};

#define METRICS_STATUS_SLOTS 600
#define LATENCY_BUCKETS      14
#define BATCH_BUCKETS        12

struct histogram {
    uint64_t buckets[16]; /* cumulative counts are computed when rendering */
    uint64_t count;
    uint64_t sum_scaled; /* sum of observations times the histogram's scale */
};

struct metrics {
    uint64_t requests[ROUTE_COUNT][METRICS_STATUS_SLOTS];
    struct histogram latency; /* seconds */
    struct histogram batch;   /* transfers per committed batch */
    uint64_t commits;
    uint64_t transfers_committed;
    uint64_t db_errors;
    uint64_t batch_retries;
    uint64_t cached_batches;    /* committed on cached account states */
    uint64_t cache_stale;       /* judged on cached states another process had changed */
    uint64_t ahead_batches;     /* of those, sent while the batch before was committing */
    uint64_t ahead_rolled_back; /* sent ahead of a batch that then did not commit */
    uint64_t ahead_refused;     /* sent ahead, refused (checks, retryable errors), judged again */
};

extern struct metrics g_metrics;

void metrics_request(enum metrics_route route, int http_status, double seconds);
void metrics_batch(int n_transfers);
void metrics_db_error(void);
void metrics_retry(void);
void metrics_cached_batch(bool ahead);
void metrics_cache_stale(void);
void metrics_ahead_rolled_back(void);
void metrics_ahead_refused(void);
/* Renders the Prometheus text format into a malloc'd string. */
/* queued_transfers, queued_max: the write queue's depth and its bound,
 * rendered as gauges. */
char *metrics_render(size_t *len_out, int queued_transfers, int queued_max);

#endif
