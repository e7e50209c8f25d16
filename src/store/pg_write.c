/*
 * pg_write.c - the write path of one batch, inside one transaction.
 *
 * Only the engine's committer calls these, on its own connection. The
 * order is fixed: lock accounts (BEGIN + SELECT ... ORDER BY ext_id FOR NO
 * KEY UPDATE), then read the transfer ids in a new statement so its
 * snapshot sees whatever the previous lock holder committed, then write,
 * then COMMIT. Nothing here judges a transfer: that is core's job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "pg_internal.h"

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

static enum store_result exec_command(PGconn *conn, const char *sql, struct store_error *err)
{
    PGresult *res = PQexec(conn, sql);
    enum store_result r =
        PQresultStatus(res) == PGRES_COMMAND_OK ? STORE_OK : pg_classify(conn, res, err);
    PQclear(res);
    return r;
}

enum store_result store_batch_lock_accounts(PGconn *conn, const char *const *ids, int n,
                                            struct core_account *accounts, bool *found,
                                            struct store_error *err)
{
    enum store_result r = exec_command(conn, "BEGIN", err);
    if (r != STORE_OK)
        return r;
    struct sbuf arr;
    sbuf_init(&arr);
    ids_array(&arr, ids, n);
    const char *params[] = {arr.data};
    PGresult *res = PQexecParams(
        conn,
        "SELECT id, ext_id, currency, min_balance, balance, pending_out, pending_in, seq, "
        SQL_TS_TO_US("last_effective_at") ", cost_currencies,"
        " ARRAY(SELECT avg_cost ->> c FROM unnest(cost_currencies) c) FROM ledger.accounts"
        " WHERE ext_id = ANY($1::text[]) ORDER BY ext_id FOR NO KEY UPDATE",
        1, NULL, params, NULL, NULL, 0);
    sbuf_free(&arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = pg_classify(conn, res, err);
        PQclear(res);
        return r;
    }
    for (int i = 0; i < n; i++)
        found[i] = false;
    /* Rows come back in ext_id order, which is strcmp order: merge. */
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
    PQclear(res);
    return STORE_OK;
}

enum store_result store_batch_load_transfers(PGconn *conn, const char *const *ids, int n,
                                             struct core_transfer *transfers,
                                             struct store_error *err)
{
    struct sbuf arr;
    sbuf_init(&arr);
    ids_array(&arr, ids, n);
    const char *params[] = {arr.data};
    PGresult *res = PQexecParams(
        conn,
        "SELECT t.ext_id, t.from_account_id, t.to_account_id, t.amount, t.currency, t.pending,"
        " t.from_seq, t.to_seq, fe.balance, te.balance, " SQL_TS_TO_US("t.created_at") ", "
        SQL_TS_TO_US("t.effective_at") ", " PG_PENDING_COLUMNS " FROM ledger.transfers t"
        " JOIN ledger.entries fe ON fe.account_id = t.from_account_id AND fe.seq = t.from_seq"
        " JOIN ledger.entries te ON te.account_id = t.to_account_id AND te.seq = t.to_seq"
        PG_PENDING_JOINS " WHERE t.ext_id = ANY($1::text[]) ORDER BY t.ext_id",
        1, NULL, params, NULL, NULL, 0);
    sbuf_free(&arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enum store_result r = pg_classify(conn, res, err);
        PQclear(res);
        return r;
    }
    for (int i = 0; i < n; i++)
        memset(&transfers[i], 0, sizeof transfers[i]);
    int row = 0, rows = PQntuples(res);
    for (int i = 0; i < n && row < rows; i++) {
        if (strcmp(ids[i], PQgetvalue(res, row, 0)) != 0)
            continue;
        struct core_transfer *t = &transfers[i];
        t->exists = true;
        t->from_account = pg_get_i64(res, row, 1);
        t->to_account = pg_get_i64(res, row, 2);
        t->amount = pg_get_amount(res, row, 3);
        snprintf(t->currency, sizeof t->currency, "%s", PQgetvalue(res, row, 4));
        t->pending = PQgetvalue(res, row, 5)[0] == 't';
        t->from_seq = pg_get_i64(res, row, 6);
        t->to_seq = pg_get_i64(res, row, 7);
        t->from_balance = pg_get_amount(res, row, 8);
        t->to_balance = pg_get_amount(res, row, 9);
        t->created_us = pg_get_i64(res, row, 10);
        t->effective_us = pg_get_i64(res, row, 11);
        pg_get_pending(res, row, 12, t);
        row++;
    }
    LEDGER_ASSERT(row == rows);
    PQclear(res);
    return STORE_OK;
}

static const char *entry_kind_name(enum entry_kind k)
{
    switch (k) {
    case ENTRY_POSTED:
        return "posted";
    case ENTRY_PENDING:
        return "pending";
    case ENTRY_POST_PENDING:
        return "post_pending";
    case ENTRY_VOID_PENDING:
        return "void_pending";
    case ENTRY_EXPIRE_PENDING:
        return "expire_pending";
    }
    LEDGER_ASSERT(!"unknown entry kind");
}

/* A multi-row statement's parameters: one array literal per column. */
struct columns {
    struct sbuf col[16];
    const char *params[16];
    int n;
    int rows;
};

static void columns_init(struct columns *c, int n)
{
    LEDGER_ASSERT(n <= 16);
    c->n = n;
    c->rows = 0;
    for (int i = 0; i < n; i++) {
        sbuf_init(&c->col[i]);
        sbuf_putc(&c->col[i], '{');
    }
}

static void columns_row(struct columns *c)
{
    if (c->rows++)
        for (int i = 0; i < c->n; i++)
            sbuf_putc(&c->col[i], ',');
}

static const char *const *columns_params(struct columns *c)
{
    for (int i = 0; i < c->n; i++) {
        sbuf_putc(&c->col[i], '}');
        c->params[i] = c->col[i].data;
    }
    return c->params;
}

static void columns_free(struct columns *c)
{
    for (int i = 0; i < c->n; i++)
        sbuf_free(&c->col[i]);
}

static void put_cost(struct sbuf *col, const struct core_cost *cost)
{
    if (cost->n == 0) {
        sbuf_puts(col, "NULL");
        return;
    }
    struct sbuf json;
    sbuf_init(&json);
    sbuf_put_cost_json(&json, cost);
    sbuf_put_quoted(col, json.data);
    sbuf_free(&json);
}

static void put_i64_or_null(struct sbuf *col, bool null, int64_t v)
{
    if (null)
        sbuf_puts(col, "NULL");
    else
        sbuf_put_i64(col, v);
}

static enum store_result exec_columns(PGconn *conn, const char *sql, struct columns *c,
                                      struct store_error *err)
{
    PGresult *res = PQexecParams(conn, sql, c->n, NULL, columns_params(c), NULL, NULL, 0);
    enum store_result r =
        PQresultStatus(res) == PGRES_COMMAND_OK ? STORE_OK : pg_classify(conn, res, err);
    PQclear(res);
    columns_free(c);
    return r;
}

/* New transfers and all entries, in one statement: entries find their
 * transfer's internal id by ext_id, among the rows just inserted or, for
 * settlements of older pending transfers, in the table. */
static enum store_result write_journal(PGconn *conn, const struct store_batch_writes *w,
                                       struct store_error *err)
{
    struct columns xc, ec;
    columns_init(&xc, 13);
    for (int i = 0; i < w->n_transfers; i++) {
        const struct core_transfer *t = w->transfers[i].t;
        struct sbuf *col = xc.col;
        columns_row(&xc);
        sbuf_put_quoted(&col[0], w->transfers[i].ext_id);
        sbuf_put_i64(&col[1], t->from_account);
        sbuf_put_i64(&col[2], t->to_account);
        sbuf_put_amount(&col[3], t->amount);
        sbuf_put_quoted(&col[4], t->currency);
        sbuf_puts(&col[5], t->pending ? "t" : "f");
        sbuf_put_i64(&col[6], t->from_seq);
        sbuf_put_i64(&col[7], t->to_seq);
        if (w->transfers[i].metadata_json)
            sbuf_put_quoted(&col[8], w->transfers[i].metadata_json);
        else
            sbuf_puts(&col[8], "NULL");
        sbuf_put_i64(&col[9], t->effective_us);
        sbuf_put_i64(&col[10], t->created_us);
        put_i64_or_null(&col[11], t->timeout_s == 0, t->timeout_s);
        put_cost(&col[12], &t->unit_cost);
    }
    columns_init(&ec, 12);
    for (int i = 0; i < w->n_entries; i++) {
        const struct core_entry *e = &w->entries[i];
        struct sbuf *col = ec.col;
        columns_row(&ec);
        sbuf_put_i64(&col[0], w->entry_account_id[i]);
        sbuf_put_i64(&col[1], e->seq);
        sbuf_put_quoted(&col[2], w->entry_transfer_ext[i]);
        sbuf_puts(&col[3], entry_kind_name(e->kind));
        sbuf_put_amount(&col[4], e->amount);
        sbuf_put_amount(&col[5], e->pending_change);
        sbuf_put_amount(&col[6], e->balance);
        sbuf_put_amount(&col[7], e->pending_out);
        sbuf_put_amount(&col[8], e->pending_in);
        sbuf_put_i64(&col[9], e->effective_us);
        sbuf_put_i64(&col[10], e->created_us);
        put_cost(&col[11], &e->avg_cost);
    }
    const char *params[25];
    memcpy(params, columns_params(&xc), 13 * sizeof *params);
    memcpy(params + 13, columns_params(&ec), 12 * sizeof *params);
    PGresult *res = PQexecParams(
        conn,
        "WITH t AS (INSERT INTO ledger.transfers (ext_id, from_account_id, to_account_id,"
        " amount, currency, pending, from_seq, to_seq, metadata, effective_at, created_at,"
        " timeout_s, unit_cost)"
        " SELECT x, f, tt, a, cur, p, fs, ts, m::jsonb, " SQL_US_TO_TS("eff") ", "
        SQL_US_TO_TS("cre") ", tmo, uc::jsonb FROM unnest($1::text[], $2::bigint[],"
        " $3::bigint[], $4::numeric[], $5::text[], $6::bool[], $7::bigint[], $8::bigint[],"
        " $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[])"
        " AS u(x, f, tt, a, cur, p, fs, ts, m, eff, cre, tmo, uc)"
        " RETURNING id, ext_id)"
        " INSERT INTO ledger.entries (account_id, seq, transfer_id, kind, amount,"
        " pending_change, balance, pending_out, pending_in, effective_at, created_at, avg_cost)"
        " SELECT e.acc, e.seq, coalesce(t.id, old.id), e.kind::ledger.entry_kind, e.a, e.pc,"
        " e.b, e.po, e.pi, " SQL_US_TO_TS("e.eff") ", " SQL_US_TO_TS("e.cre") ", e.ac::jsonb"
        " FROM unnest($14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::numeric[],"
        " $19::numeric[], $20::numeric[], $21::numeric[], $22::numeric[], $23::bigint[],"
        " $24::bigint[], $25::text[]) AS e(acc, seq, x, kind, a, pc, b, po, pi, eff, cre, ac)"
        " LEFT JOIN t ON t.ext_id = e.x"
        " LEFT JOIN ledger.transfers old ON t.id IS NULL AND old.ext_id = e.x",
        25, NULL, params, NULL, NULL, 0);
    enum store_result r =
        PQresultStatus(res) == PGRES_COMMAND_OK ? STORE_OK : pg_classify(conn, res, err);
    PQclear(res);
    columns_free(&xc);
    columns_free(&ec);
    return r;
}

static const char *state_name(enum transfer_state s)
{
    switch (s) {
    case TRANSFER_PENDING:
        return "pending";
    case TRANSFER_POSTED:
        return "posted";
    case TRANSFER_VOIDED:
        return "voided";
    case TRANSFER_EXPIRED:
        return "expired";
    }
    LEDGER_ASSERT(!"unknown transfer state");
}

/* Where each pending transfer touched by the batch now stands. */
static enum store_result write_pending(PGconn *conn, const struct store_batch_writes *w,
                                       struct store_error *err)
{
    struct columns c;
    columns_init(&c, 7);
    for (int i = 0; i < w->n_pending; i++) {
        const struct core_transfer *t = w->pending[i].t;
        columns_row(&c);
        sbuf_put_quoted(&c.col[0], w->pending[i].ext_id);
        sbuf_puts(&c.col[1], state_name(t->state));
        put_i64_or_null(&c.col[2], t->deadline_us == TIME_NONE, t->deadline_us);
        if (t->settled)
            sbuf_put_amount(&c.col[3], t->posted_amount);
        else
            sbuf_puts(&c.col[3], "NULL");
        put_i64_or_null(&c.col[4], !t->settled, t->settle_from_seq);
        put_i64_or_null(&c.col[5], !t->settled, t->settle_to_seq);
        put_i64_or_null(&c.col[6], !t->settled, t->settled_us);
    }
    return exec_columns(
        conn,
        "INSERT INTO ledger.pending_transfers AS p (transfer_id, state, deadline, posted_amount,"
        " settle_from_seq, settle_to_seq, settled_at)"
        " SELECT t.id, u.st, " SQL_US_TO_TS("u.dl") ", u.pa, u.sfs, u.sts, "
        SQL_US_TO_TS("u.sat") " FROM unnest($1::text[], $2::text[], $3::bigint[],"
        " $4::numeric[], $5::bigint[], $6::bigint[], $7::bigint[])"
        " AS u(x, st, dl, pa, sfs, sts, sat) JOIN ledger.transfers t ON t.ext_id = u.x"
        " ON CONFLICT (transfer_id) DO UPDATE SET state = excluded.state,"
        " posted_amount = excluded.posted_amount, settle_from_seq = excluded.settle_from_seq,"
        " settle_to_seq = excluded.settle_to_seq, settled_at = excluded.settled_at",
        &c, err);
}

static enum store_result write_accounts(PGconn *conn, const struct store_batch_writes *w,
                                        struct store_error *err)
{
    struct columns c;
    columns_init(&c, 7);
    for (int i = 0; i < w->n_accounts; i++) {
        const struct core_account *a = &w->accounts[i];
        if (!a->touched)
            continue;
        columns_row(&c);
        sbuf_put_i64(&c.col[0], a->id);
        sbuf_put_amount(&c.col[1], a->balance);
        sbuf_put_amount(&c.col[2], a->pending_out);
        sbuf_put_amount(&c.col[3], a->pending_in);
        sbuf_put_i64(&c.col[4], a->seq);
        sbuf_put_i64(&c.col[5], a->last_effective_us);
        put_cost(&c.col[6], &a->avg_cost);
    }
    int expected = c.rows;
    const char *sql = "UPDATE ledger.accounts a SET balance = u.b, pending_out = u.po,"
                      " pending_in = u.pi, seq = u.seq, last_effective_at = "
                      SQL_US_TO_TS("u.eff") ", avg_cost = u.ac::jsonb"
                      " FROM unnest($1::bigint[], $2::numeric[], $3::numeric[], $4::numeric[],"
                      " $5::bigint[], $6::bigint[], $7::text[])"
                      " AS u(id, b, po, pi, seq, eff, ac) WHERE a.id = u.id";
    PGresult *res = PQexecParams(conn, sql, c.n, NULL, columns_params(&c), NULL, NULL, 0);
    enum store_result r = STORE_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = pg_classify(conn, res, err);
    else
        LEDGER_ASSERT(atoi(PQcmdTuples(res)) == expected);
    PQclear(res);
    columns_free(&c);
    return r;
}

enum store_result store_batch_write(PGconn *conn, const struct store_batch_writes *w,
                                    struct store_error *err)
{
    if (w->n_entries == 0)
        return STORE_OK;
    enum store_result r = write_journal(conn, w, err);
    if (r == STORE_OK && w->n_pending > 0)
        r = write_pending(conn, w, err);
    if (r == STORE_OK)
        r = write_accounts(conn, w, err);
    return r;
}

enum store_result store_batch_commit(PGconn *conn, struct store_error *err)
{
    PGresult *res = PQexec(conn, "COMMIT");
    enum store_result r = STORE_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        r = pg_classify(conn, res, err);
        /* A broken connection after COMMIT was sent: it may have landed. */
        if (PQstatus(conn) != CONNECTION_OK)
            r = STORE_UNKNOWN;
    }
    PQclear(res);
    return r;
}

void store_batch_rollback(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
}

int store_transfer_committed(PGconn *conn, const char *ext_id)
{
    const char *params[] = {ext_id};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM ledger.transfers WHERE ext_id = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    int r = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;
    PQclear(res);
    return r;
}
