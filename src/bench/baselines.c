/*
 * baselines.c - the patterns applications hand-roll, one database
 * transaction per transfer, as libpq clients do them, plus the ceiling.
 *
 *   lock          SELECT ... FOR NO KEY UPDATE on both wallets in id order,
 *                 check funds, update both balances, insert a journal row
 *   serializable  SERIALIZABLE; balance = sum of an insert-only journal;
 *                 retry on 40001
 *   optimistic    insert-only balance rows, UNIQUE (account, version);
 *                 retry on 23505
 *   ceiling       ledgerd's own journal rows (transfers + entries) written
 *                 by one connection, 1,000 transfers per transaction, by
 *                 multi-row INSERT or by binary COPY
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "store/pg_binary.h"

const char *baseline_name(enum baseline_kind kind)
{
    static const char *const names[BASE_COUNT] = {"lock", "serializable", "optimistic"};
    return names[kind];
}

static bool exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "ledger-bench: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

int baseline_setup(const char *conninfo, const struct workload *w, int64_t funds)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "ledger-bench: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    char sql[4096];
    snprintf(sql, sizeof sql,
             "SET client_min_messages = warning;"
             "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench;"
             "CREATE TABLE bench.wallets (id bigint PRIMARY KEY, balance bigint NOT NULL);"
             "CREATE TABLE bench.lock_journal (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
             " ext_id text NOT NULL UNIQUE, from_id bigint NOT NULL, to_id bigint NOT NULL,"
             " amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
             "CREATE TABLE bench.ser_journal (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
             " ext_id text NOT NULL, account bigint NOT NULL, amount bigint NOT NULL,"
             " created_at timestamptz NOT NULL DEFAULT now());"
             "CREATE INDEX ON bench.ser_journal (account);"
             "CREATE TABLE bench.opt_balances (account bigint NOT NULL, version bigint NOT NULL,"
             " balance bigint NOT NULL, ext_id text NOT NULL,"
             " created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (account, version));"
             "INSERT INTO bench.wallets SELECT g, %lld FROM generate_series(0, %d) g;"
             "INSERT INTO bench.ser_journal (ext_id, account, amount)"
             " SELECT 'fund-' || g, g, %lld FROM generate_series(0, %d) g;"
             "INSERT INTO bench.opt_balances SELECT g, 1, %lld, 'fund-' || g"
             " FROM generate_series(0, %d) g;"
             "CREATE TABLE bench.ceil_transfers (LIKE ledger.transfers INCLUDING ALL);"
             "CREATE TABLE bench.ceil_entries (LIKE ledger.entries INCLUDING ALL);"
             "ANALYZE;",
             (long long)funds, w->n_accounts - 1, (long long)funds, w->n_accounts - 1,
             (long long)funds, w->n_accounts - 1);
    bool ok = exec_ok(c, sql);
    PQfinish(c);
    return ok ? 0 : -1;
}

struct worker {
    const char *conninfo;
    enum baseline_kind kind;
    const struct workload *w;
    uint64_t seed;
    int index;
    uint64_t end_ns;
    struct samples lat;
    uint64_t transfers, rejects, errors, retries;
};

static const char *state_of(PGresult *r)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s ? s : "";
}

/* Runs sql with params; returns the result (caller clears) or NULL after
 * setting *retry when the SQLSTATE says "run the transaction again". */
static PGresult *run(PGconn *c, const char *name, int n, const char *const *params, bool *retry,
                     bool *failed)
{
    PGresult *r = PQexecPrepared(c, name, n, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *s = state_of(r);
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "23505") == 0)
        *retry = true;
    else
        *failed = true;
    PQclear(r);
    return NULL;
}

static void prepare_all(PGconn *c, enum baseline_kind kind)
{
    switch (kind) {
    case BASE_LOCK:
        PQclear(PQprepare(c, "lock",
                          "SELECT id, balance FROM bench.wallets WHERE id IN ($1, $2)"
                          " ORDER BY id FOR NO KEY UPDATE",
                          2, NULL));
        PQclear(PQprepare(c, "debit",
                          "UPDATE bench.wallets SET balance = balance - $2"
                          " WHERE id = $1",
                          2, NULL));
        PQclear(PQprepare(c, "credit",
                          "UPDATE bench.wallets SET balance = balance + $2"
                          " WHERE id = $1",
                          2, NULL));
        PQclear(PQprepare(c, "journal",
                          "INSERT INTO bench.lock_journal (ext_id, from_id, to_id,"
                          " amount) VALUES ($1, $2, $3, $4)",
                          4, NULL));
        break;
    case BASE_SERIALIZABLE:
        PQclear(PQprepare(c, "sum",
                          "SELECT coalesce(sum(amount), 0) FROM bench.ser_journal"
                          " WHERE account = $1",
                          1, NULL));
        PQclear(PQprepare(c, "journal",
                          "INSERT INTO bench.ser_journal (ext_id, account, amount)"
                          " VALUES ($1, $2, -$4::bigint), ($1, $3, $4)",
                          4, NULL));
        break;
    case BASE_OPTIMISTIC:
        PQclear(PQprepare(c, "latest",
                          "SELECT version, balance FROM bench.opt_balances"
                          " WHERE account = $1 ORDER BY version DESC LIMIT 1",
                          1, NULL));
        PQclear(PQprepare(c, "insert",
                          "INSERT INTO bench.opt_balances (account, version,"
                          " balance, ext_id) VALUES ($1, $2, $3, $7),"
                          " ($4, $5, $6, $7)",
                          7, NULL));
        break;
    case BASE_COUNT:
        break;
    }
}

/* One attempt of one transfer: 1 done, 0 rejected (funds), -1 retry, -2 error. */
static int attempt(PGconn *c, enum baseline_kind kind, int from, int to, int amount,
                   const char *ext)
{
    char f[24], t[24], a[24];
    snprintf(f, sizeof f, "%d", from);
    snprintf(t, sizeof t, "%d", to);
    snprintf(a, sizeof a, "%d", amount);
    bool retry = false, failed = false;
    PGresult *r;
    if (!exec_ok(c, kind == BASE_SERIALIZABLE ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN"))
        return -2;
    int outcome = 1;
    if (kind == BASE_LOCK) {
        const char *p2[] = {f, t};
        if ((r = run(c, "lock", 2, p2, &retry, &failed)) == NULL)
            goto abort;
        long long bal = 0;
        for (int i = 0; i < PQntuples(r); i++)
            if (atoi(PQgetvalue(r, i, 0)) == from)
                bal = atoll(PQgetvalue(r, i, 1));
        PQclear(r);
        if (bal < amount) {
            outcome = 0;
            goto abort;
        }
        const char *pd[] = {f, a}, *pc[] = {t, a}, *pj[] = {ext, f, t, a};
        if ((r = run(c, "debit", 2, pd, &retry, &failed)) == NULL)
            goto abort;
        PQclear(r);
        if ((r = run(c, "credit", 2, pc, &retry, &failed)) == NULL)
            goto abort;
        PQclear(r);
        if ((r = run(c, "journal", 4, pj, &retry, &failed)) == NULL)
            goto abort;
        PQclear(r);
    } else if (kind == BASE_SERIALIZABLE) {
        const char *ps[] = {f};
        if ((r = run(c, "sum", 1, ps, &retry, &failed)) == NULL)
            goto abort;
        long long bal = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (bal < amount) {
            outcome = 0;
            goto abort;
        }
        const char *pj[] = {ext, f, t, a};
        if ((r = run(c, "journal", 4, pj, &retry, &failed)) == NULL)
            goto abort;
        PQclear(r);
    } else {
        const char *pf[] = {f}, *pt[] = {t};
        if ((r = run(c, "latest", 1, pf, &retry, &failed)) == NULL)
            goto abort;
        long long fv = atoll(PQgetvalue(r, 0, 0)), fb = atoll(PQgetvalue(r, 0, 1));
        PQclear(r);
        if ((r = run(c, "latest", 1, pt, &retry, &failed)) == NULL)
            goto abort;
        long long tv = atoll(PQgetvalue(r, 0, 0)), tb = atoll(PQgetvalue(r, 0, 1));
        PQclear(r);
        if (fb < amount) {
            outcome = 0;
            goto abort;
        }
        char s[6][24];
        snprintf(s[0], 24, "%lld", fv + 1);
        snprintf(s[1], 24, "%lld", fb - amount);
        snprintf(s[2], 24, "%lld", tv + 1);
        snprintf(s[3], 24, "%lld", tb + amount);
        const char *pi[] = {f, s[0], s[1], t, s[2], s[3], ext};
        if ((r = run(c, "insert", 7, pi, &retry, &failed)) == NULL)
            goto abort;
        PQclear(r);
    }
    r = PQexec(c, "COMMIT");
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        return 1;
    }
    retry = strcmp(state_of(r), "40001") == 0;
    PQclear(r);
    return retry ? -1 : -2;
abort:
    PQclear(PQexec(c, "ROLLBACK"));
    if (outcome == 0)
        return 0;
    return retry ? -1 : -2;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    PGconn *c = PQconnectdb(wk->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        wk->errors++;
        PQfinish(c);
        return NULL;
    }
    prepare_all(c, wk->kind);
    struct rng rng = {wk->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)wk->index + 1};
    uint64_t n = 0;
    while (now_ns() < wk->end_ns) {
        int from, to, amount;
        workload_next(wk->w, &rng, &from, &to, &amount);
        char ext[64];
        snprintf(ext, sizeof ext, "%s-%d-%llu", baseline_name(wk->kind), wk->index,
                 (unsigned long long)n++);
        uint64_t t0 = now_ns();
        int rc;
        while ((rc = attempt(c, wk->kind, from, to, amount, ext)) == -1) {
            wk->retries++;
            if (now_ns() >= wk->end_ns + 5000000000ULL)
                break;
        }
        if (rc == 1)
            wk->transfers++;
        else if (rc == 0)
            wk->rejects++;
        else
            wk->errors++;
        samples_add(&wk->lat, (now_ns() - t0) / 1000);
    }
    PQfinish(c);
    return NULL;
}

int baseline_run(const char *conninfo, enum baseline_kind kind, const struct workload *w,
                 uint64_t seed, int clients, double seconds, struct result *out)
{
    memset(out, 0, sizeof *out);
    struct worker *wk = calloc((size_t)clients, sizeof *wk);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < clients; i++) {
        wk[i] = (struct worker){conninfo, kind, w, seed, i, end, {0}, 0, 0, 0, 0};
        pthread_create(&th[i], NULL, worker_main, &wk[i]);
    }
    struct samples all = {0};
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        out->transfers += wk[i].transfers;
        out->rejects += wk[i].rejects;
        out->errors += wk[i].errors;
        out->retries += wk[i].retries;
        for (size_t k = 0; k < wk[i].lat.n; k++)
            samples_add(&all, wk[i].lat.us[k]);
        samples_free(&wk[i].lat);
    }
    out->seconds = (double)(now_ns() - start) / 1e9;
    out->clients = clients;
    out->system = baseline_name(kind);
    out->p50_ms = samples_percentile_ms(&all, 50);
    out->p99_ms = samples_percentile_ms(&all, 99);
    out->p999_ms = samples_percentile_ms(&all, 99.9);
    samples_free(&all);
    free(wk);
    free(th);
    return 0;
}

static long long scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long long v =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

int baseline_check(const char *conninfo, enum baseline_kind kind, long long expected_total)
{
    static const char *const negative[BASE_COUNT] = {
        "SELECT count(*) FROM bench.wallets WHERE balance < 0",
        "SELECT count(*) FROM (SELECT account FROM bench.ser_journal GROUP BY account"
        " HAVING sum(amount) < 0) n",
        "SELECT count(*) FROM (SELECT DISTINCT ON (account) balance FROM bench.opt_balances"
        " ORDER BY account, version DESC) l WHERE balance < 0"};
    static const char *const total[BASE_COUNT] = {
        "SELECT sum(balance) FROM bench.wallets", "SELECT sum(amount) FROM bench.ser_journal",
        "SELECT sum(balance) FROM (SELECT DISTINCT ON (account) balance FROM bench.opt_balances"
        " ORDER BY account, version DESC) l"};
    PGconn *c = PQconnectdb(conninfo);
    int violations = 0;
    long long bad = scalar(c, negative[kind]);
    if (bad != 0) {
        printf("  violation: %s: %lld accounts overspent (below 0)\n", baseline_name(kind), bad);
        violations++;
    }
    long long sum = scalar(c, total[kind]);
    if (sum != expected_total) {
        printf("  violation: %s: balances sum to %lld, not %lld\n", baseline_name(kind), sum,
               expected_total);
        violations++;
    }
    PQfinish(c);
    return violations;
}

/* Appends an element to an array literal "{a,b,c}" being built. */
static void arr_put(struct buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arr_put(struct buf *a, const char *fmt, ...)
{
    buf_append(a, a->len == 0 ? "{" : ",", 1);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(a, fmt, ap);
    va_end(ap);
}

static const char *arr_done(struct buf *a)
{
    if (a->len == 0)
        buf_append(a, "{", 1);
    buf_append(a, "}", 1);
    return a->data;
}

/* One transfer of a ceiling transaction, with both accounts' state after it. */
struct ceil_row {
    int from, to, amount;
    long long from_seq, to_seq, from_balance, to_balance;
};

static bool ceiling_insert(PGconn *c, const char *prefix, unsigned long long first,
                           const struct ceil_row *rows, int n, long long us)
{
    struct buf col[13];
    memset(col, 0, sizeof col);
    for (int i = 0; i < n; i++) {
        const struct ceil_row *r = &rows[i];
        arr_put(&col[0], "%s-%llu", prefix, first + (unsigned long long)i);
        arr_put(&col[1], "%d", r->from);
        arr_put(&col[2], "%d", r->to);
        arr_put(&col[3], "%d", r->amount);
        arr_put(&col[4], "%lld", r->from_seq);
        arr_put(&col[5], "%lld", r->to_seq);
        arr_put(&col[6], "%lld", us);
        for (int side = 0; side < 2; side++) {
            arr_put(&col[7], "%d", side ? r->to : r->from);
            arr_put(&col[8], "%lld", side ? r->to_seq : r->from_seq);
            arr_put(&col[9], "%s-%llu", prefix, first + (unsigned long long)i);
            arr_put(&col[10], "%d", side ? r->amount : -r->amount);
            arr_put(&col[11], "%lld", side ? r->to_balance : r->from_balance);
            arr_put(&col[12], "%lld", us);
        }
    }
    const char *p[13];
    for (int k = 0; k < 13; k++)
        p[k] = arr_done(&col[k]);
    PGresult *res = PQexecParams(
        c,
        "WITH t AS (INSERT INTO bench.ceil_transfers (ext_id, from_account_id, to_account_id,"
        " amount, currency, pending, from_seq, to_seq, effective_at, created_at)"
        " SELECT x, f, tt, a, 'USD', false, fs, ts,"
        " 'epoch'::timestamptz + us * interval '1 microsecond',"
        " 'epoch'::timestamptz + us * interval '1 microsecond'"
        " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::numeric[], $5::bigint[],"
        " $6::bigint[], $7::bigint[]) AS u(x, f, tt, a, fs, ts, us) RETURNING id, ext_id)"
        " INSERT INTO bench.ceil_entries (account_id, seq, transfer_id, kind, amount,"
        " pending_change, balance, pending_out, pending_in, effective_at, created_at,"
        " transfer_ext_id)"
        " SELECT e.acc, e.seq, t.id, 'posted', e.a, 0, e.b, 0, 0,"
        " 'epoch'::timestamptz + e.us * interval '1 microsecond',"
        " 'epoch'::timestamptz + e.us * interval '1 microsecond', e.x"
        " FROM unnest($8::bigint[], $9::bigint[], $10::text[], $11::numeric[],"
        " $12::numeric[], $13::bigint[]) AS e(acc, seq, x, a, b, us)"
        " JOIN t ON t.ext_id = e.x",
        13, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "ledger-bench: ceiling: %s", PQerrorMessage(c));
    PQclear(res);
    for (int k = 0; k < 13; k++)
        free(col[k].data);
    return ok;
}

static bool copy_in(PGconn *c, const char *sql, const struct pg_binary *rows)
{
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    bool sent =
        ok && PQputCopyData(c, rows->data, (int)rows->len) == 1 && PQputCopyEnd(c, NULL) == 1;
    if (ok && !sent && PQstatus(c) == CONNECTION_OK)
        PQputCopyEnd(c, "ledger-bench could not send the rows");
    ok = sent;
    while ((res = PQgetResult(c)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        ok = ok && st == PGRES_COMMAND_OK;
        PQclear(res);
        if (st == PGRES_COPY_IN)
            break;
    }
    if (!ok)
        fprintf(stderr, "ledger-bench: ceiling: %s", PQerrorMessage(c));
    return ok;
}

/* The same rows by binary COPY, as ledgerd writes large batches; the ids
 * are the ceiling's own, as the only writer of its tables. */
static bool ceiling_copy(PGconn *c, const char *prefix, unsigned long long first,
                         const struct ceil_row *rows, int n, long long us)
{
    struct pg_binary b = {0};
    char id[96];
    pgb_begin(&b);
    for (int i = 0; i < n; i++) {
        const struct ceil_row *r = &rows[i];
        snprintf(id, sizeof id, "%s-%llu", prefix, first + (unsigned long long)i);
        pgb_row(&b, 11);
        pgb_int8(&b, (int64_t)(first + (unsigned long long)i + 1));
        pgb_text(&b, id);
        pgb_int8(&b, r->from);
        pgb_int8(&b, r->to);
        pgb_numeric(&b, r->amount);
        pgb_text(&b, "USD");
        pgb_bool(&b, false);
        pgb_int8(&b, r->from_seq);
        pgb_int8(&b, r->to_seq);
        pgb_timestamptz(&b, us);
        pgb_timestamptz(&b, us);
    }
    pgb_end(&b);
    bool ok = copy_in(c,
                      "COPY bench.ceil_transfers (id, ext_id, from_account_id, to_account_id,"
                      " amount, currency, pending, from_seq, to_seq, effective_at, created_at)"
                      " FROM STDIN (FORMAT binary)",
                      &b);
    pgb_begin(&b);
    for (int i = 0; i < n && ok; i++) {
        const struct ceil_row *r = &rows[i];
        snprintf(id, sizeof id, "%s-%llu", prefix, first + (unsigned long long)i);
        for (int side = 0; side < 2; side++) {
            pgb_row(&b, 12);
            pgb_int8(&b, side ? r->to : r->from);
            pgb_int8(&b, side ? r->to_seq : r->from_seq);
            pgb_int8(&b, (int64_t)(first + (unsigned long long)i + 1));
            pgb_text(&b, "posted");
            pgb_numeric(&b, side ? r->amount : -r->amount);
            pgb_numeric(&b, 0);
            pgb_numeric(&b, side ? r->to_balance : r->from_balance);
            pgb_numeric(&b, 0);
            pgb_numeric(&b, 0);
            pgb_timestamptz(&b, us);
            pgb_timestamptz(&b, us);
            pgb_text(&b, id);
        }
    }
    pgb_end(&b);
    ok = ok && copy_in(c,
                       "COPY bench.ceil_entries (account_id, seq, transfer_id, kind, amount,"
                       " pending_change, balance, pending_out, pending_in, effective_at,"
                       " created_at, transfer_ext_id) FROM STDIN (FORMAT binary)",
                       &b);
    pgb_free(&b);
    return ok;
}

const char *ceiling_name(enum ceiling_kind kind)
{
    return kind == CEIL_COPY ? "ceiling (COPY)" : "ceiling (INSERT)";
}

int ceiling_run(const char *conninfo, const struct workload *w, enum ceiling_kind kind,
                uint64_t seed, double seconds, struct result *out)
{
    enum { PER_TX = 1000 };
    memset(out, 0, sizeof *out);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        return -1;
    PQclear(PQexec(c, "SET jit = off"));
    /* Each ceiling starts from empty tables and numbers its rows from 1. */
    PQclear(PQexec(c, "TRUNCATE bench.ceil_transfers, bench.ceil_entries"));
    long long *balance = calloc((size_t)w->n_accounts, sizeof *balance);
    long long *seq = calloc((size_t)w->n_accounts, sizeof *seq);
    struct ceil_row *rows = calloc(PER_TX, sizeof *rows);
    /* Ids as long as those of ledgerd's batch requests ("uniform-b-SEED-N"). */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s-c-%llu", w->name, (unsigned long long)seed);
    struct rng rng = {seed * 31 + 7};
    struct samples lat = {0};
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), n = 0;
    while (now_ns() < end) {
        long long us = (long long)(now_ns() / 1000);
        for (int i = 0; i < PER_TX; i++) {
            struct ceil_row *r = &rows[i];
            workload_next(w, &rng, &r->from, &r->to, &r->amount);
            balance[r->from] -= r->amount;
            balance[r->to] += r->amount;
            r->from_seq = ++seq[r->from];
            r->to_seq = ++seq[r->to];
            r->from_balance = balance[r->from];
            r->to_balance = balance[r->to];
        }
        uint64_t t0 = now_ns();
        PQclear(PQexec(c, "BEGIN"));
        bool ok = kind == CEIL_COPY ? ceiling_copy(c, prefix, n, rows, PER_TX, us)
                                    : ceiling_insert(c, prefix, n, rows, PER_TX, us);
        PGresult *r = PQexec(c, ok ? "COMMIT" : "ROLLBACK");
        ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            out->errors += PER_TX;
            break;
        }
        n += PER_TX;
        out->transfers += PER_TX;
        samples_add(&lat, (now_ns() - t0) / 1000);
    }
    free(rows);
    out->seconds = (double)(now_ns() - start) / 1e9;
    out->clients = 1;
    out->system = ceiling_name(kind);
    out->p50_ms = samples_percentile_ms(&lat, 50);
    out->p99_ms = samples_percentile_ms(&lat, 99);
    out->p999_ms = samples_percentile_ms(&lat, 99.9);
    samples_free(&lat);
    free(balance);
    free(seq);
    PQfinish(c);
    return 0;
}
