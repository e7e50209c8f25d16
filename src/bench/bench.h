/*
 * bench.h - ledger-bench: ledgerd against the SQL patterns applications
 * hand-roll, on one PostgreSQL, in one run.
 *
 * The tool knows ledgerd only by its HTTP/JSON wire format; the baselines
 * and the ceiling talk to PostgreSQL directly through libpq.
 */
#ifndef LEDGER_BENCH_BENCH_H
#define LEDGER_BENCH_BENCH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable text (buf.c); data is always NUL-terminated once used ---- */

struct buf {
    char *data;
    size_t len, cap;
};

void buf_append(struct buf *b, const char *s, size_t n);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- workloads (workload.c) ---- */

enum workload_kind { WL_UNIFORM, WL_HOT, WL_HOT_SPEND, WL_ZIPF, WL_COUNT };

struct workload {
    enum workload_kind kind;
    const char *name;
    int n_accounts;   /* accounts besides the bank */
    double *zipf_cdf; /* WL_ZIPF only */
};

struct rng {
    uint64_t s;
};

uint64_t rng_next(struct rng *r);
/* Uniform in [0, n). */
uint64_t rng_below(struct rng *r, uint64_t n);

void workload_init(struct workload *w, enum workload_kind kind);
void workload_free(struct workload *w);
/* A transfer of the workload: account indexes (0..n_accounts-1) and an
 * amount in 1..100. */
void workload_next(const struct workload *w, struct rng *r, int *from, int *to, int *amount);
/* The account name of index i in ledgerd ("uniform-00042"). */
void workload_account(const struct workload *w, int i, char *buf, size_t len);

/* ---- latency samples (stats.c) ---- */

struct samples {
    uint32_t *us;
    size_t n, cap;
};

void samples_add(struct samples *s, uint64_t us);
/* Sorts in place; p in [0, 100]. */
double samples_percentile_ms(struct samples *s, double p);
void samples_free(struct samples *s);

uint64_t now_ns(void);

/* The outcome of one measured run. */
struct result {
    const char *system;
    int clients;
    double seconds;
    uint64_t transfers; /* accepted */
    uint64_t rejects;   /* refused by a ledger rule (e.g. insufficient funds) */
    uint64_t errors;    /* transport errors or unexpected statuses */
    uint64_t retries;   /* baselines: transactions run again */
    double p50_ms, p99_ms, p999_ms;
    /* READS_LEDGER: the kinds of read apart, as issue #4 names both:
     * balance?at= a recent time, balance?at= a time in the journal's
     * past, a page of entries */
    double balance_p50_ms, balance_p99_ms, past_p50_ms, past_p99_ms, entries_p50_ms, entries_p99_ms;
    long rss_kb_max; /* ledgerd only */
};

/* ---- ledgerd over HTTP (http_load.c) ---- */

enum read_kind {
    READS_NONE,    /* transfers */
    READS_LEDGER,  /* balance?at= and entries pages of random accounts */
    READS_HEALTHZ, /* GET /healthz: one trivial query by the same path */
};

struct http_load {
    const char *base_url; /* "http://127.0.0.1:PORT" */
    const struct workload *w;
    uint64_t seed;
    const char *id_prefix; /* unique per run */
    int clients;           /* connections (closed loop) */
    int batch;             /* transfers per request; 1 = POST /v1/transfers */
    double seconds;
    double rate; /* > 0: open loop at this many requests/s */
    enum read_kind reads;
    /* READS_LEDGER: when the journal's first and last transfers took
     * effect (Unix seconds); past_to <= past_from: no past to ask about */
    int64_t past_from, past_to;
    bool zero_amounts;     /* amount 0: refused with 400 before the database */
    uint64_t max_requests; /* > 0: stop after sending this many (closed loop) */
    int rss_pid;           /* sampled for RSS while running; 0 none */
};

int http_load_run(const struct http_load *cfg, struct result *out);
/* One request on a connection of its own (body NULL: none); returns the
 * HTTP status, or -1 when no answer came. *response, if asked for, is the
 * answer's body (malloc'd) or NULL. */
int http_request(const char *base_url, const char *method, const char *path, const char *body,
                 char **response);

/* ---- baselines and ceiling (baselines.c) ---- */

enum baseline_kind { BASE_LOCK, BASE_SERIALIZABLE, BASE_OPTIMISTIC, BASE_COUNT };

int baseline_setup(const char *conninfo, const struct workload *w, int64_t funds);
int baseline_run(const char *conninfo, enum baseline_kind kind, const struct workload *w,
                 uint64_t seed, int clients, double seconds, struct result *out);
/* Checks the baseline's own invariants (no overspend, conservation);
 * prints any violation and returns its count. */
int baseline_check(const char *conninfo, enum baseline_kind kind, long long expected_total);
const char *baseline_name(enum baseline_kind kind);
/* The same journal rows ledgerd writes, by one connection, 1,000 transfers
 * per transaction, no HTTP: by one multi-row INSERT (unnest of array
 * parameters, ledgerd's way for small batches), or by binary COPY (its way
 * for large ones). */
enum ceiling_kind { CEIL_INSERT, CEIL_COPY, CEIL_COUNT };
const char *ceiling_name(enum ceiling_kind kind);
int ceiling_run(const char *conninfo, const struct workload *w, enum ceiling_kind kind,
                uint64_t seed, double seconds, struct result *out);

#endif
