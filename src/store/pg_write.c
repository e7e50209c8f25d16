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
        SQL_TS_TO_US("last_effective_at") " FROM ledger.accounts"
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
        SQL_TS_TO_US("t.effective_at") " FROM ledger.transfers t"
        " JOIN ledger.entries fe ON fe.account_id = t.from_account_id AND fe.seq = t.from_seq"
        " JOIN ledger.entries te ON te.account_id = t.to_account_id AND te.seq = t.to_seq"
        " WHERE t.ext_id = ANY($1::text[]) ORDER BY t.ext_id",
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
        t->state = t->pending ? TRANSFER_PENDING : TRANSFER_POSTED;
        t->from_seq = pg_get_i64(res, row, 6);
        t->to_seq = pg_get_i64(res, row, 7);
        t->from_balance = pg_get_amount(res, row, 8);
        t->to_balance = pg_get_amount(res, row, 9);
        t->created_us = pg_get_i64(res, row, 10);
        t->effective_us = pg_get_i64(res, row, 11);
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

/* Column arrays for one multi-row statement, as array literals. */
#define XFER_COLS  11
#define ENTRY_COLS 11
#define ACCT_COLS  6

enum store_result store_batch_write(PGconn *conn, const struct store_new_transfer *xfers,
                                    int n_xfers, const struct core_entry *entries,
                                    const int64_t *entry_account_id,
                                    const char *const *entry_transfer_ext, int n_entries,
                                    const struct core_account *accounts, int n_accounts,
                                    struct store_error *err)
{
    enum store_result r = STORE_OK;
    struct sbuf col[XFER_COLS + ENTRY_COLS];
    for (int c = 0; c < XFER_COLS + ENTRY_COLS; c++) {
        sbuf_init(&col[c]);
        sbuf_putc(&col[c], '{');
    }
    for (int i = 0; i < n_xfers; i++) {
        const struct core_transfer *t = xfers[i].t;
        if (i)
            for (int c = 0; c < XFER_COLS; c++)
                sbuf_putc(&col[c], ',');
        sbuf_put_quoted(&col[0], xfers[i].ext_id);
        sbuf_put_i64(&col[1], t->from_account);
        sbuf_put_i64(&col[2], t->to_account);
        sbuf_put_amount(&col[3], t->amount);
        sbuf_put_quoted(&col[4], t->currency);
        sbuf_puts(&col[5], t->pending ? "t" : "f");
        sbuf_put_i64(&col[6], t->from_seq);
        sbuf_put_i64(&col[7], t->to_seq);
        if (xfers[i].metadata_json)
            sbuf_put_quoted(&col[8], xfers[i].metadata_json);
        else
            sbuf_puts(&col[8], "NULL");
        sbuf_put_i64(&col[9], t->effective_us);
        sbuf_put_i64(&col[10], t->created_us);
    }
    for (int i = 0; i < n_entries; i++) {
        const struct core_entry *e = &entries[i];
        struct sbuf *ec = &col[XFER_COLS];
        if (i)
            for (int c = 0; c < ENTRY_COLS; c++)
                sbuf_putc(&ec[c], ',');
        sbuf_put_i64(&ec[0], entry_account_id[i]);
        sbuf_put_i64(&ec[1], e->seq);
        sbuf_put_quoted(&ec[2], entry_transfer_ext[i]);
        sbuf_puts(&ec[3], entry_kind_name(e->kind));
        sbuf_put_amount(&ec[4], e->amount);
        sbuf_put_amount(&ec[5], e->pending_change);
        sbuf_put_amount(&ec[6], e->balance);
        sbuf_put_amount(&ec[7], e->pending_out);
        sbuf_put_amount(&ec[8], e->pending_in);
        sbuf_put_i64(&ec[9], e->effective_us);
        sbuf_put_i64(&ec[10], e->created_us);
    }
    const char *params[XFER_COLS + ENTRY_COLS];
    for (int c = 0; c < XFER_COLS + ENTRY_COLS; c++) {
        sbuf_putc(&col[c], '}');
        params[c] = col[c].data;
    }
    /* Entries find their transfer's new internal id by ext_id; entries of
     * transfers created earlier (post, void) find it in the table. */
    PGresult *res = PQexecParams(
        conn,
        "WITH t AS (INSERT INTO ledger.transfers (ext_id, from_account_id, to_account_id,"
        " amount, currency, pending, from_seq, to_seq, metadata, effective_at, created_at)"
        " SELECT x, f, tt, a, cur, p, fs, ts, m::jsonb, " SQL_US_TO_TS("eff") ", "
        SQL_US_TO_TS("cre") " FROM unnest($1::text[], $2::bigint[], $3::bigint[],"
        " $4::numeric[], $5::text[], $6::bool[], $7::bigint[], $8::bigint[], $9::text[],"
        " $10::bigint[], $11::bigint[]) AS u(x, f, tt, a, cur, p, fs, ts, m, eff, cre)"
        " RETURNING id, ext_id)"
        " INSERT INTO ledger.entries (account_id, seq, transfer_id, kind, amount,"
        " pending_change, balance, pending_out, pending_in, effective_at, created_at)"
        " SELECT e.acc, e.seq, coalesce(t.id, old.id), e.kind::ledger.entry_kind, e.a, e.pc,"
        " e.b, e.po, e.pi, " SQL_US_TO_TS("e.eff") ", " SQL_US_TO_TS("e.cre")
        " FROM unnest($12::bigint[], $13::bigint[], $14::text[], $15::text[], $16::numeric[],"
        " $17::numeric[], $18::numeric[], $19::numeric[], $20::numeric[], $21::bigint[],"
        " $22::bigint[]) AS e(acc, seq, x, kind, a, pc, b, po, pi, eff, cre)"
        " LEFT JOIN t ON t.ext_id = e.x"
        " LEFT JOIN ledger.transfers old ON t.id IS NULL AND old.ext_id = e.x",
        XFER_COLS + ENTRY_COLS, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = pg_classify(conn, res, err);
    PQclear(res);
    for (int c = 0; c < XFER_COLS + ENTRY_COLS; c++)
        sbuf_free(&col[c]);
    if (r != STORE_OK || n_accounts == 0)
        return r;

    struct sbuf acol[ACCT_COLS];
    for (int c = 0; c < ACCT_COLS; c++) {
        sbuf_init(&acol[c]);
        sbuf_putc(&acol[c], '{');
    }
    int n_touched = 0;
    for (int i = 0; i < n_accounts; i++) {
        const struct core_account *a = &accounts[i];
        if (!a->touched)
            continue;
        if (n_touched++)
            for (int c = 0; c < ACCT_COLS; c++)
                sbuf_putc(&acol[c], ',');
        sbuf_put_i64(&acol[0], a->id);
        sbuf_put_amount(&acol[1], a->balance);
        sbuf_put_amount(&acol[2], a->pending_out);
        sbuf_put_amount(&acol[3], a->pending_in);
        sbuf_put_i64(&acol[4], a->seq);
        sbuf_put_i64(&acol[5], a->last_effective_us);
    }
    const char *aparams[ACCT_COLS];
    for (int c = 0; c < ACCT_COLS; c++) {
        sbuf_putc(&acol[c], '}');
        aparams[c] = acol[c].data;
    }
    if (n_touched > 0) {
        res = PQexecParams(conn,
                           "UPDATE ledger.accounts a SET balance = u.b, pending_out = u.po,"
                           " pending_in = u.pi, seq = u.seq, last_effective_at = "
                           SQL_US_TO_TS("u.eff") " FROM unnest($1::bigint[], $2::numeric[],"
                           " $3::numeric[], $4::numeric[], $5::bigint[], $6::bigint[])"
                           " AS u(id, b, po, pi, seq, eff) WHERE a.id = u.id",
                           ACCT_COLS, NULL, aparams, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            r = pg_classify(conn, res, err);
        else
            LEDGER_ASSERT(atoi(PQcmdTuples(res)) == n_touched);
        PQclear(res);
    }
    for (int c = 0; c < ACCT_COLS; c++)
        sbuf_free(&acol[c]);
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
