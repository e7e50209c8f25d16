/*
 * pg_write.c - the write path of one batch: two pipelined round trips, or
 * one for a batch judged on cached account states.
 *
 * Only the engine's committer calls these, on its own connection:
 *
 *   round trip 1: BEGIN; lock the batch's accounts (a batch-wide lock,
 *                 then advisory locks in ext_id order); read them; read
 *                 which transfer ids exist; Sync
 *   (core judges the batch)
 *   round trip 2: one statement inserts transfers + entries, records
 *                 pending states and writes back the touched accounts;
 *                 COMMIT; Sync
 *
 * A batch judged on cached states (store.h, store_batch_locks) sends
 * BEGIN and the locks in round trip 2, ahead of the write.
 *
 * Accounts and transfer ids are read in their own statements, after the
 * locking one has finished, so their snapshots see whatever the previous
 * lock holder committed. Statements are prepared once per connection. The connection
 * is in non-blocking pipeline mode only inside a batch, and every send is
 * flushed while reading, so neither side can block on a full socket
 * (libpq_pipeline.c). Nothing here judges a transfer: that is core's job.
 */
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "pg_binary.h"
#include "pg_internal.h"

/* Transaction-scoped advisory locks, one per account, taken in the order of
 * the array (sorted by strcmp): every process locks in the same order, so
 * batches cannot deadlock each other, and unlike row locks they write no
 * WAL and dirty no page. Only the committers write account state, and they
 * all take these locks. A hash collision only serialises two accounts. */
#define SQL_LOCK_ACCOUNTS                                                                          \
    "SELECT pg_advisory_xact_lock(hashtextextended(x, 0)) FROM unnest($1::text[]) x"

/* Every advisory lock takes a slot in PostgreSQL's shared lock table
 * (max_locks_per_transaction x max_connections slots for all sessions), and
 * a batch request may name 16,380 accounts. So every batch first takes one
 * batch-wide lock: shared when it then locks its accounts one by one,
 * exclusive (and nothing else) when it names more than
 * STORE_LOCKED_ACCOUNTS_MAX accounts. A big batch then holds one slot and
 * still excludes every other batch of every process. A batch that found
 * the lock table full retries with the exclusive lock too
 * (store_batch_reads.lock_all). The two-int key space cannot meet the
 * one-bigint keys of the account locks. */
#define SQL_LOCK_SHARED    "SELECT pg_advisory_xact_lock_shared(1818584167, 1)"
#define SQL_LOCK_EXCLUSIVE "SELECT pg_advisory_xact_lock(1818584167, 1)"

/* clang-format off */

/* A new statement after the locks: its snapshot sees whatever the previous
 * holder of any of these locks committed. */
#define SQL_LOAD_ACCOUNTS                                                      \
    "SELECT id, ext_id, currency, min_balance, balance, pending_out,"          \
    " pending_in, seq, " SQL_TS_TO_US("last_effective_at") ", cost_currencies,"\
    " CASE WHEN cardinality(cost_currencies) > 0"                              \
    "  THEN ARRAY(SELECT avg_cost ->> c FROM unnest(cost_currencies) c) END"   \
    " FROM ledger.accounts WHERE ext_id = ANY($1::text[]) ORDER BY ext_id"

#define SQL_LOAD_TRANSFERS                                                     \
    "SELECT t.ext_id, " PG_TRANSFER_COLUMNS                                    \
    " FROM ledger.transfers t" PG_TRANSFER_JOINS                               \
    " WHERE t.ext_id = ANY($1::text[]) ORDER BY t.ext_id"

/* The whole write of a batch in one statement (each statement costs
 * PostgreSQL about 0.1 ms of its own): new transfers, their entries, the
 * pending states, and the new state of the touched accounts. Rows of
 * transfers created by this batch find their internal id by ext_id among
 * the rows just inserted; older transfers (settlements) come with their
 * id. $1..$13 transfers, $14..$26 entries, $27..$34 pending states,
 * $35..$42 accounts; $43 how many accounts it must update, which it
 * answers (and fails before COMMIT if it updated fewer). An account
 * whose seq is not the one the batch was judged on gets a NULL seq, which
 * its NOT NULL constraint refuses (23502) before COMMIT: the lock protocol
 * makes that impossible, but a batch judged on cached states
 * (store_batch_locks) would otherwise overwrite a state it never saw. */
#define SQL_WRITE_BATCH                                                        \
    "WITH t AS ("                                                              \
    " INSERT INTO ledger.transfers (ext_id, from_account_id, to_account_id,"   \
    "  amount, currency, pending, from_seq, to_seq, metadata, effective_at,"   \
    "  created_at, timeout_s, unit_cost)"                                      \
    " SELECT x, f, tt, a, cur, p, fs, ts, m::jsonb, eff, cre, tmo, uc::jsonb"  \
    " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::numeric[],"      \
    "  $5::text[], $6::bool[], $7::bigint[], $8::bigint[], $9::text[],"        \
    "  $10::timestamptz[], $11::timestamptz[], $12::bigint[], $13::text[])"    \
    "  AS u(x, f, tt, a, cur, p, fs, ts, m, eff, cre, tmo, uc)"                \
    " RETURNING id, ext_id),"                                                  \
    "e AS ("                                                                   \
    " INSERT INTO ledger.entries (account_id, seq, transfer_id, kind, amount," \
    "  pending_change, balance, pending_out, pending_in, effective_at,"        \
    "  created_at, avg_cost, transfer_ext_id)"                                 \
    " SELECT e.acc, e.seq, coalesce(e.tid, t.id), e.kind::ledger.entry_kind,"  \
    "  e.a, e.pc, e.b, e.po, e.pi, e.eff, e.cre, e.ac::jsonb, e.x"             \
    " FROM unnest($14::bigint[], $15::bigint[], $16::bigint[], $17::text[],"   \
    "  $18::text[], $19::numeric[], $20::numeric[], $21::numeric[],"           \
    "  $22::numeric[], $23::numeric[], $24::timestamptz[],"                    \
    "  $25::timestamptz[], $26::text[])"                                       \
    "  AS e(acc, seq, tid, x, kind, a, pc, b, po, pi, eff, cre, ac)"           \
    " LEFT JOIN t ON e.tid IS NULL AND t.ext_id = e.x),"                       \
    "p AS ("                                                                   \
    " INSERT INTO ledger.pending_transfers AS p (transfer_id, state, deadline,"\
    "  posted_amount, settle_from_seq, settle_to_seq, settled_at)"             \
    " SELECT coalesce(u.tid, t.id), u.st, u.dl, u.pa, u.sfs, u.sts, u.sat"     \
    " FROM unnest($27::bigint[], $28::text[], $29::text[],"                    \
    "  $30::timestamptz[], $31::numeric[], $32::bigint[], $33::bigint[],"      \
    "  $34::timestamptz[])"                                                    \
    "  AS u(tid, x, st, dl, pa, sfs, sts, sat)"                                \
    " LEFT JOIN t ON u.tid IS NULL AND t.ext_id = u.x"                         \
    " ON CONFLICT (transfer_id) DO UPDATE SET state = excluded.state,"         \
    "  posted_amount = excluded.posted_amount,"                                \
    "  settle_from_seq = excluded.settle_from_seq,"                            \
    "  settle_to_seq = excluded.settle_to_seq, settled_at = excluded.settled_at),"\
    "a AS ("                                                                   \
    " UPDATE ledger.accounts a SET balance = u.b, pending_out = u.po,"         \
    "  pending_in = u.pi, seq = CASE WHEN a.seq = u.os THEN u.seq END,"        \
    "  last_effective_at = u.eff, avg_cost = u.ac::jsonb"                      \
    " FROM unnest($35::bigint[], $36::numeric[], $37::numeric[],"              \
    "  $38::numeric[], $39::bigint[], $40::timestamptz[], $41::text[],"        \
    "  $42::bigint[])"                                                         \
    "  AS u(id, b, po, pi, seq, eff, ac, os)"                                  \
    " WHERE a.id = u.id RETURNING 1)"                                          \
    "SELECT ledger.accounts_updated(count(*), $43) FROM a"

/* A batch sent ahead (store_batch_writes.ahead) copies its journal rows
 * before it locks, so it must not reach the account locks before the
 * batch it was judged after, and must wait for that batch in a way
 * PostgreSQL can see (so that a cycle through the two is a deadlock it
 * detects, not a stall). So every batch that begins in a round trip of
 * its own (a batch that goes by COPY) first takes a lock of its own, its
 * baton (store_baton), held for its whole transaction; and a batch sent
 * ahead waits for the baton of the batch before it (shared) before it
 * locks the accounts: the account locks are then asked for in the order
 * the batches were judged. Batons are two-int keys (backend pid,
 * ticket), which cannot meet the batch-wide lock's (no pid is
 * 1818584167). */
#define SQL_BATON      "SELECT pg_advisory_xact_lock($1::int, $2::int)"
#define SQL_AHEAD_WAIT "SELECT pg_advisory_xact_lock_shared($1::int, $2::int)"

/* clang-format on */

static const struct {
    const char *name;
    const char *sql;
    int n_params;
} statements[] = {
    {"ledger_lock_shared", SQL_LOCK_SHARED, 0},
    {"ledger_lock_exclusive", SQL_LOCK_EXCLUSIVE, 0},
    {"ledger_lock_accounts", SQL_LOCK_ACCOUNTS, 1},
    {"ledger_load_accounts", SQL_LOAD_ACCOUNTS, 1},
    {"ledger_load_transfers", SQL_LOAD_TRANSFERS, 1},
    {"ledger_write_batch", SQL_WRITE_BATCH, 43},
    {"ledger_baton", SQL_BATON, 2},
    {"ledger_ahead_wait", SQL_AHEAD_WAIT, 2},
};

int store_prepare_write_path(PGconn *conn, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        PGresult *res =
            PQprepare(conn, statements[i].name, statements[i].sql, statements[i].n_params, NULL);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Test-only fault injection, off unless LEDGERD_FAULT names it: the
 * connection of the first batch that writes (commit_lost), or of the
 * first batch sent ahead (ahead_commit_lost), breaks right after its
 * COMMIT was sent, as a network failure would, so tests can check that
 * the outcome is looked up before anyone is answered (cf.
 * sqlite3FaultSim). */
static bool fault_fires(const char *name, int *fired)
{
    const char *f = getenv("LEDGERD_FAULT");
    if (f == NULL || strcmp(f, name) != 0)
        return false;
    return __atomic_exchange_n(fired, 1, __ATOMIC_RELAXED) == 0;
}

static bool fault_commit_lost(bool ahead)
{
    static int fired, fired_ahead;
    return ahead ? fault_fires("ahead_commit_lost", &fired_ahead)
                 : fault_fires("commit_lost", &fired);
}

/* ---- non-blocking pipeline plumbing ---- */

/* Waits until the socket is readable (and writable, if want_write). */
static bool wait_socket(PGconn *conn, bool want_write)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN | (want_write ? POLLOUT : 0)};
    if (p.fd < 0)
        return false;
    return poll(&p, 1, 60000) > 0;
}

/* Sends everything queued, consuming input meanwhile. */
static bool pipeline_flush(PGconn *conn)
{
    for (;;) {
        int r = PQflush(conn);
        if (r == 0)
            return true;
        if (r < 0 || !wait_socket(conn, true) || !PQconsumeInput(conn))
            return false;
    }
}

/* The next result of the pipeline (NULL separates queries), waiting for
 * it without blocking the socket in either direction. */
static PGresult *pipeline_result(PGconn *conn, bool *broken)
{
    while (PQisBusy(conn)) {
        if (PQflush(conn) < 0 || !wait_socket(conn, false) || !PQconsumeInput(conn)) {
            *broken = true;
            return NULL;
        }
    }
    return PQgetResult(conn);
}

static void pipeline_begin(PGconn *conn)
{
    PQsetnonblocking(conn, 1);
    PQenterPipelineMode(conn);
}

/* Reads and drops results up to and including the next sync point. */
static bool pipeline_drain_to_sync(PGconn *conn)
{
    for (;;) {
        bool broken = false;
        PGresult *res = pipeline_result(conn, &broken);
        if (broken)
            return false;
        if (res == NULL)
            continue;
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC)
            return true;
    }
}

/* Leaves pipeline mode. A pipeline left with results unread (a read that
 * timed out on a live connection) cannot be left: the connection is shut
 * down, so that store_ensure replaces it rather than a later batch
 * reading those results as its own. */
static void pipeline_end(PGconn *conn)
{
    if (PQexitPipelineMode(conn) == 0 && PQsocket(conn) >= 0)
        shutdown(PQsocket(conn), SHUT_RDWR);
    PQsetnonblocking(conn, 0);
}

/* Reads one query's result (and its NULL separator). Returns it if its
 * status is `want`, else classifies the error into err and returns NULL.
 * *answered: the server's result was read (an error result included), as
 * opposed to none before the connection broke or the wait timed out. */
static PGresult *pipeline_expect_answered(PGconn *conn, ExecStatusType want, enum store_result *r,
                                          struct store_error *err, bool *answered)
{
    bool broken = false;
    PGresult *res = pipeline_result(conn, &broken);
    if (broken || res == NULL) {
        *r = pg_classify(conn, NULL, err);
        if (*r == STORE_OK)
            *r = STORE_FAILED;
        return NULL;
    }
    /* libpq reports a connection that broke as an error result of its
     * own, on a connection no longer OK. */
    *answered = PQstatus(conn) == CONNECTION_OK;
    PGresult *sep = pipeline_result(conn, &broken);
    PQclear(sep);
    if (PQresultStatus(res) == want)
        return res;
    /* The first failure explains the batch; aborted ones follow it. */
    if (*r == STORE_OK)
        *r = PQresultStatus(res) == PGRES_PIPELINE_ABORTED ? STORE_FAILED
                                                           : pg_classify(conn, res, err);
    PQclear(res);
    return NULL;
}

static PGresult *pipeline_expect(PGconn *conn, ExecStatusType want, enum store_result *r,
                                 struct store_error *err)
{
    bool answered = false;
    return pipeline_expect_answered(conn, want, r, err, &answered);
}

/* A pipeline that could not be sent: why, and out of pipeline mode. */
static enum store_result pipeline_send_failed(PGconn *conn, struct store_error *err)
{
    enum store_result r = pg_classify(conn, NULL, err);
    pipeline_end(conn);
    return r == STORE_OK ? STORE_FAILED : r;
}

static bool send_prepared(PGconn *conn, const char *name, int n, const char *const *params)
{
    return PQsendQueryPrepared(conn, name, n, params, NULL, NULL, 0) == 1;
}

static void ids_array(struct sbuf *b, const char *const *ids, int n)
{
    sbuf_reset(b);
    sbuf_putc(b, '{');
    for (int i = 0; i < n; i++) {
        if (i)
            sbuf_putc(b, ',');
        sbuf_put_quoted(b, ids[i]);
    }
    sbuf_putc(b, '}');
}

/* ---- round trip 1 ---- */

static void accounts_from_rows(const PGresult *res, const char *const *ids, int n,
                               struct core_account *accounts, bool *found)
{
    for (int i = 0; i < n; i++)
        found[i] = false;
    /* Rows come back in ext_id order (COLLATE "C"), which is strcmp order. */
    int row = 0, rows = PQntuples(res);
    for (int i = 0; i < n && row < rows; i++) {
        if (strcmp(ids[i], PQgetvalue(res, row, 1)) != 0)
            continue;
        struct core_account *a = &accounts[i];
        memset(a, 0, sizeof *a);
        a->id = pg_get_i64(res, row, 0);
        snprintf(a->currency, sizeof a->currency, "%s", PQgetvalue(res, row, 2));
        a->min_unbounded = PQgetisnull(res, row, 3);
        a->min_balance = a->min_unbounded ? 0 : pg_get_amount(res, row, 3);
        a->balance = pg_get_amount(res, row, 4);
        a->pending_out = pg_get_amount(res, row, 5);
        a->pending_in = pg_get_amount(res, row, 6);
        a->seq = pg_get_i64(res, row, 7);
        a->last_effective_us = PQgetisnull(res, row, 8) ? TIME_NONE : pg_get_i64(res, row, 8);
        pg_parse_cost(PQgetvalue(res, row, 9), PQgetvalue(res, row, 10), &a->avg_cost);
        found[i] = true;
        row++;
    }
    LEDGER_ASSERT(row == rows);
}

static void transfers_from_rows(const PGresult *res, const char *const *ids, int n,
                                struct core_transfer *transfers)
{
    for (int i = 0; i < n; i++)
        memset(&transfers[i], 0, sizeof transfers[i]);
    int row = 0, rows = PQntuples(res);
    for (int i = 0; i < n && row < rows; i++) {
        if (strcmp(ids[i], PQgetvalue(res, row, 0)) != 0)
            continue;
        pg_get_transfer(res, row, 1, &transfers[i]);
        row++;
    }
    LEDGER_ASSERT(row == rows);
}

static bool locks_one_by_one(int n_accounts, bool lock_all)
{
    return !lock_all && n_accounts <= STORE_LOCKED_ACCOUNTS_MAX;
}

/* The locks; acc_param is the accounts' ids as a text array. */
static bool send_locks(PGconn *conn, const char *acc_param, bool one_by_one)
{
    const char *params[] = {acc_param};
    return one_by_one ? send_prepared(conn, "ledger_lock_shared", 0, NULL) &&
                            send_prepared(conn, "ledger_lock_accounts", 1, params)
                      : send_prepared(conn, "ledger_lock_exclusive", 0, NULL);
}

static bool send_begin(PGconn *conn)
{
    return PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
}

static bool send_begin_locks(PGconn *conn, const char *acc_param, bool one_by_one)
{
    return send_begin(conn) && send_locks(conn, acc_param, one_by_one);
}

static void expect_locks(PGconn *conn, bool one_by_one, enum store_result *r,
                         struct store_error *err)
{
    for (int i = 0; i < (one_by_one ? 2 : 1); i++)
        PQclear(pipeline_expect(conn, PGRES_TUPLES_OK, r, err));
}

static void expect_begin_locks(PGconn *conn, bool one_by_one, enum store_result *r,
                               struct store_error *err)
{
    PQclear(pipeline_expect(conn, PGRES_COMMAND_OK, r, err));
    expect_locks(conn, one_by_one, r, err);
}

enum store_result store_batch_load(PGconn *conn, const struct store_batch_reads *rd,
                                   struct store_error *err)
{
    struct sbuf acc, xfer;
    sbuf_init(&acc);
    sbuf_init(&xfer);
    ids_array(&acc, rd->account_ids, rd->n_accounts);
    ids_array(&xfer, rd->transfer_ids, rd->n_transfers);
    const char *acc_params[] = {acc.data}, *xfer_params[] = {xfer.data};
    bool one_by_one = locks_one_by_one(rd->n_accounts, rd->lock_all);
    pipeline_begin(conn);
    bool sent = send_begin_locks(conn, acc.data, one_by_one) &&
                send_prepared(conn, "ledger_load_accounts", 1, acc_params) &&
                send_prepared(conn, "ledger_load_transfers", 1, xfer_params) &&
                PQpipelineSync(conn) == 1 && pipeline_flush(conn);
    sbuf_free(&acc);
    sbuf_free(&xfer);
    if (!sent)
        return pipeline_send_failed(conn, err);
    enum store_result r = STORE_OK;
    expect_begin_locks(conn, one_by_one, &r, err);
    PGresult *accounts = pipeline_expect(conn, PGRES_TUPLES_OK, &r, err);
    PGresult *transfers = pipeline_expect(conn, PGRES_TUPLES_OK, &r, err);
    if (accounts && transfers) {
        accounts_from_rows(accounts, rd->account_ids, rd->n_accounts, rd->accounts, rd->found);
        transfers_from_rows(transfers, rd->transfer_ids, rd->n_transfers, rd->transfers);
    }
    PQclear(accounts);
    PQclear(transfers);
    if (PQstatus(conn) == CONNECTION_OK && !pipeline_drain_to_sync(conn) && r == STORE_OK)
        r = STORE_FAILED;
    pipeline_end(conn);
    return r;
}

/* ---- round trip 2 ---- */

/* A multi-row statement's parameters: one array per column, in binary,
 * which PostgreSQL reads for a fraction of what parsing array literals
 * and their numbers from text costs it, inside the batch's locks. */
struct columns {
    struct pg_binary col[16];
    bool has_null[16];
    int n;
    int rows;
};

static void columns_init(struct columns *c, const uint32_t *oids, int n)
{
    LEDGER_ASSERT(n <= 16);
    c->n = n;
    c->rows = 0;
    for (int i = 0; i < n; i++) {
        c->col[i] = (struct pg_binary){0};
        c->has_null[i] = false;
        pgb_array_begin(&c->col[i], oids[i]);
    }
}

static void columns_null(struct columns *c, int i)
{
    pgb_null(&c->col[i]);
    c->has_null[i] = true;
}

/* Ends the columns and points params, lengths and formats at them. */
static void columns_params(struct columns *c, const char **params, int *lengths, int *formats)
{
    for (int i = 0; i < c->n; i++) {
        pgb_array_end(&c->col[i], c->rows, c->has_null[i]);
        params[i] = c->col[i].data;
        lengths[i] = (int)c->col[i].len;
        formats[i] = 1;
    }
}

static void columns_free(struct columns *c)
{
    for (int i = 0; i < c->n; i++)
        pgb_free(&c->col[i]);
}

static void put_cost(struct columns *c, int i, const struct core_cost *cost)
{
    if (!pg_put_cost(&c->col[i], cost, pgb_text))
        c->has_null[i] = true;
}

static void put_i64_or_null(struct columns *c, int i, bool null, int64_t v)
{
    if (null)
        columns_null(c, i);
    else
        pgb_int8(&c->col[i], v);
}

enum {
    B = PGB_OID_BOOL,
    I = PGB_OID_INT8,
    T = PGB_OID_TEXT,
    N = PGB_OID_NUMERIC,
    TS = PGB_OID_TIMESTAMPTZ
};

/* The types of SQL_WRITE_BATCH's arrays, $1..$42. */
static const uint32_t transfer_oids[13] = {T, I, I, N, T, B, I, I, T, TS, TS, I, T};
static const uint32_t entry_oids[13] = {I, I, I, T, T, N, N, N, N, N, TS, TS, T};
static const uint32_t pending_oids[8] = {I, T, T, TS, N, I, I, TS};
static const uint32_t account_oids[8] = {I, N, N, N, I, TS, T, I};

static void journal_columns(const struct store_batch_writes *w, struct columns *xc,
                            struct columns *ec)
{
    columns_init(xc, transfer_oids, 13);
    for (int i = 0; i < w->n_transfers; i++) {
        const struct core_transfer *t = w->transfers[i].t;
        struct pg_binary *col = xc->col;
        xc->rows++;
        pgb_text(&col[0], w->transfers[i].ext_id);
        pgb_int8(&col[1], t->from_account);
        pgb_int8(&col[2], t->to_account);
        pgb_numeric(&col[3], t->amount);
        pgb_text(&col[4], t->currency);
        pgb_bool(&col[5], t->pending);
        pgb_int8(&col[6], t->from_seq);
        pgb_int8(&col[7], t->to_seq);
        if (w->transfers[i].metadata_json)
            pgb_text(&col[8], w->transfers[i].metadata_json);
        else
            columns_null(xc, 8);
        pgb_timestamptz(&col[9], t->effective_us);
        pgb_timestamptz(&col[10], t->created_us);
        put_i64_or_null(xc, 11, t->timeout_s == 0, t->timeout_s);
        put_cost(xc, 12, &t->unit_cost);
    }
    columns_init(ec, entry_oids, 13);
    for (int i = 0; i < w->n_entries; i++) {
        const struct core_entry *e = &w->entries[i];
        struct pg_binary *col = ec->col;
        ec->rows++;
        pgb_int8(&col[0], w->entry_account_id[i]);
        pgb_int8(&col[1], e->seq);
        put_i64_or_null(ec, 2, w->entry_transfer_id[i] == 0, w->entry_transfer_id[i]);
        pgb_text(&col[3], w->entry_transfer_ext[i]);
        pgb_text(&col[4], entry_kind_name(e->kind));
        pgb_numeric(&col[5], e->amount);
        pgb_numeric(&col[6], e->pending_change);
        pgb_numeric(&col[7], e->balance);
        pgb_numeric(&col[8], e->pending_out);
        pgb_numeric(&col[9], e->pending_in);
        pgb_timestamptz(&col[10], e->effective_us);
        pgb_timestamptz(&col[11], e->created_us);
        put_cost(ec, 12, &e->avg_cost);
    }
}

/* ids: those reserved for created transfers when the journal went by
 * COPY, which the rows then name; else NULL, and rows of created transfers
 * find them by ext_id among the rows the statement inserts. */
static void pending_columns(const struct store_batch_writes *w, const int64_t *ids,
                            struct columns *c)
{
    columns_init(c, pending_oids, 8);
    for (int i = 0; i < w->n_pending; i++) {
        const struct core_transfer *t = w->pending[i].t;
        int64_t id =
            t->id != 0 || ids == NULL ? t->id : pg_created_id(w, ids, w->pending[i].ext_id);
        c->rows++;
        put_i64_or_null(c, 0, id == 0, id);
        pgb_text(&c->col[1], w->pending[i].ext_id);
        pgb_text(&c->col[2], transfer_state_name(t->state));
        if (t->deadline_us == TIME_NONE)
            columns_null(c, 3);
        else
            pgb_timestamptz(&c->col[3], t->deadline_us);
        if (t->settled)
            pgb_numeric(&c->col[4], t->posted_amount);
        else
            columns_null(c, 4);
        put_i64_or_null(c, 5, !t->settled, t->settle_from_seq);
        put_i64_or_null(c, 6, !t->settled, t->settle_to_seq);
        if (t->settled)
            pgb_timestamptz(&c->col[7], t->settled_us);
        else
            columns_null(c, 7);
    }
}

static int account_columns(const struct store_batch_writes *w, struct columns *c)
{
    columns_init(c, account_oids, 8);
    for (int i = 0; i < w->n_accounts; i++) {
        const struct core_account *a = &w->accounts[i];
        if (!a->touched)
            continue;
        c->rows++;
        pgb_int8(&c->col[0], a->id);
        pgb_numeric(&c->col[1], a->balance);
        pgb_numeric(&c->col[2], a->pending_out);
        pgb_numeric(&c->col[3], a->pending_in);
        pgb_int8(&c->col[4], a->seq);
        pgb_timestamptz(&c->col[5], a->last_effective_us);
        put_cost(c, 6, &a->avg_cost);
        pgb_int8(&c->col[7], w->seq_before[i]);
    }
    return c->rows;
}

/* ---- a batch judged on cached states ---- */

/* BEGIN, the batch's baton and its locks (none for a batch sent ahead,
 * which locks later) as a round trip of their own, for batches whose
 * journal rows go by COPY (which libpq does not allow in a pipeline). */
static enum store_result begin_alone(PGconn *conn, const char *acc_param, bool one_by_one,
                                     const char *const *baton, bool ahead, struct store_error *err)
{
    pipeline_begin(conn);
    bool sent = send_begin(conn) && send_prepared(conn, "ledger_baton", 2, baton) &&
                (ahead || send_locks(conn, acc_param, one_by_one)) && PQpipelineSync(conn) == 1 &&
                pipeline_flush(conn);
    if (!sent)
        return pipeline_send_failed(conn, err);
    enum store_result r = STORE_OK;
    PQclear(pipeline_expect(conn, PGRES_COMMAND_OK, &r, err));
    PQclear(pipeline_expect(conn, PGRES_TUPLES_OK, &r, err));
    if (!ahead)
        expect_locks(conn, one_by_one, &r, err);
    if (PQstatus(conn) == CONNECTION_OK && !pipeline_drain_to_sync(conn) && r == STORE_OK)
        r = STORE_FAILED;
    pipeline_end(conn);
    return r;
}

enum store_result store_batch_write_send(PGconn *conn, const struct store_batch_writes *w,
                                         struct store_write_sent *s, struct store_error *err)
{
    memset(s, 0, sizeof *s);
    bool copy = w->n_transfers >= STORE_COPY_MIN_TRANSFERS;
    const struct store_batch_locks *lf = w->lock_first;
    LEDGER_ASSERT(!w->ahead || (lf != NULL && copy));
    char batons[4][16];
    snprintf(batons[0], sizeof batons[0], "%d", w->baton.pid);
    snprintf(batons[1], sizeof batons[1], "%d", w->baton.ticket);
    snprintf(batons[2], sizeof batons[2], "%d", w->after.pid);
    snprintf(batons[3], sizeof batons[3], "%d", w->after.ticket);
    const char *own[] = {batons[0], batons[1]}, *after[] = {batons[2], batons[3]};
    struct sbuf acc;
    sbuf_init(&acc);
    bool one_by_one = false;
    if (lf) {
        ids_array(&acc, lf->account_ids, lf->n_accounts);
        one_by_one = locks_one_by_one(lf->n_accounts, lf->lock_all);
        if (copy) {
            enum store_result begun = begin_alone(conn, acc.data, one_by_one, own, w->ahead, err);
            if (begun != STORE_OK) {
                sbuf_free(&acc);
                return begun;
            }
        }
    }

    /* A large batch's journal rows go first, by COPY; the statement then
     * inserts none. */
    int64_t *ids = NULL;
    if (copy) {
        ids = malloc((size_t)w->n_transfers * sizeof *ids);
        LEDGER_ASSERT(ids != NULL);
        enum store_result copied = pg_copy_journal(conn, w, ids, err);
        if (copied != STORE_OK) {
            free(ids);
            sbuf_free(&acc);
            return copied;
        }
    }
    struct columns xc, ec, pc, ac;
    if (ids != NULL) {
        columns_init(&xc, transfer_oids, 13);
        columns_init(&ec, entry_oids, 13);
    } else {
        journal_columns(w, &xc, &ec);
    }
    pending_columns(w, ids, &pc);
    free(ids);
    int n_touched = account_columns(w, &ac);
    const char *params[43];
    int lengths[43], formats[43];
    columns_params(&xc, params, lengths, formats);
    columns_params(&ec, params + 13, lengths + 13, formats + 13);
    columns_params(&pc, params + 26, lengths + 26, formats + 26);
    columns_params(&ac, params + 34, lengths + 34, formats + 34);
    char touched[24];
    snprintf(touched, sizeof touched, "%d", n_touched);
    params[42] = touched;
    lengths[42] = 0;
    formats[42] = 0;
    *s = (struct store_write_sent){
        .ahead = w->ahead,
        .locks = lf != NULL && (!copy || w->ahead), /* in the write's own pipeline */
        .baton = lf != NULL && copy,
        .one_by_one = one_by_one,
        .write = w->n_entries > 0,
        .n_touched = n_touched,
    };

    pipeline_begin(conn);
    bool sent =
        (!s->locks || (w->ahead ? send_prepared(conn, "ledger_ahead_wait", 2, after) &&
                                      send_locks(conn, acc.data, one_by_one)
                                : send_begin_locks(conn, acc.data, one_by_one))) &&
        (!s->write ||
         PQsendQueryPrepared(conn, "ledger_write_batch", 43, params, lengths, formats, 0) == 1) &&
        (w->ahead || (PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
                      PQpipelineSync(conn) == 1)) &&
        pipeline_flush(conn);
    columns_free(&xc);
    columns_free(&ec);
    columns_free(&pc);
    columns_free(&ac);
    sbuf_free(&acc);
    if (!sent) {
        /* COMMIT may have reached the server whole. */
        enum store_result r = pipeline_send_failed(conn, err);
        return !w->ahead && PQstatus(conn) != CONNECTION_OK ? STORE_UNKNOWN : r;
    }
    s->synced = !w->ahead;
    if (s->synced && fault_commit_lost(false))
        shutdown(PQsocket(conn), SHUT_RDWR);
    return STORE_OK;
}

void store_batch_ahead_commit(PGconn *conn, struct store_write_sent *s)
{
    LEDGER_ASSERT(s->ahead && !s->synced);
    s->synced = true;
    bool sent = PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
                PQpipelineSync(conn) == 1 && pipeline_flush(conn);
    if (sent && fault_commit_lost(true))
        shutdown(PQsocket(conn), SHUT_RDWR);
}

enum store_result store_batch_write_receive(PGconn *conn, const struct store_write_sent *s,
                                            struct store_error *err)
{
    LEDGER_ASSERT(s->synced);
    enum store_result r = STORE_OK;
    if (s->ahead) {
        PQclear(pipeline_expect(conn, PGRES_TUPLES_OK, &r, err));
        expect_locks(conn, s->one_by_one, &r, err);
    } else if (s->locks) {
        expect_begin_locks(conn, s->one_by_one, &r, err);
    }
    if (s->write) {
        PGresult *res = pipeline_expect(conn, PGRES_TUPLES_OK, &r, err);
        if (res)
            LEDGER_ASSERT(atoi(PQgetvalue(res, 0, 0)) == s->n_touched);
        PQclear(res);
    }
    /* A result from the server, an error result included, is definite. */
    bool commit_answered = false;
    PGresult *commit = pipeline_expect_answered(conn, PGRES_COMMAND_OK, &r, err, &commit_answered);
    /* COMMIT of an aborted transaction answers ROLLBACK. */
    if (commit && strcmp(PQcmdStatus(commit), "COMMIT") != 0 && r == STORE_OK)
        r = STORE_FAILED;
    PQclear(commit);
    if (commit_answered && PQstatus(conn) == CONNECTION_OK)
        pipeline_drain_to_sync(conn);
    /* The connection broke, or the wait for COMMIT's answer timed out,
     * while COMMIT may have reached the server: only a look at the journal
     * can tell, and the caller makes it on a new connection. */
    if (!commit_answered)
        r = STORE_UNKNOWN;
    pipeline_end(conn);
    return r;
}

enum store_result store_batch_write_commit(PGconn *conn, const struct store_batch_writes *w,
                                           struct store_error *err)
{
    LEDGER_ASSERT(!w->ahead);
    struct store_write_sent s;
    enum store_result r = store_batch_write_send(conn, w, &s, err);
    return r == STORE_OK ? store_batch_write_receive(conn, &s, err) : r;
}

void store_batch_rollback(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
}

int store_transfer_committed(PGconn *conn, int old_pid, const char *ext_id)
{
    /* Until the old session has ended, its COMMIT may still be under way,
     * and the transfer not yet visible: wait for it to leave (it does as
     * soon as it finds its connection gone), for at most a minute. */
    char pid[16];
    snprintf(pid, sizeof pid, "%d", old_pid);
    const char *wait_params[] = {pid};
    for (int i = 0; i < 600; i++) {
        PGresult *res = PQexecParams(conn, "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int", 1,
                                     NULL, wait_params, NULL, NULL, 0);
        int alive = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;
        PQclear(res);
        if (alive < 0)
            return -1;
        if (!alive)
            break;
        if (i == 599)
            return -1;
        usleep(100 * 1000);
    }
    const char *params[] = {ext_id};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM ledger.transfers WHERE ext_id = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    int r = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;
    PQclear(res);
    return r;
}
