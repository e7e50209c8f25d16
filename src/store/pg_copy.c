/*
 * pg_copy.c - the journal rows of a large batch, by binary COPY.
 *
 * The one-statement write (pg_write.c) passes each column as an array
 * literal that PostgreSQL parses at bind and unnests at execution; for a
 * batch of 1,000 transfers that was about a third of the statement's time.
 * COPY in binary format hands PostgreSQL the values as it stores them, so
 * a large batch writes its transfers and entries with COPY and then runs
 * the same statement with no journal rows, for its pending states and
 * accounts. COPY costs two round trips per table (libpq allows no COPY in
 * pipeline mode), so small batches keep the single statement.
 *
 * COPY cannot answer the ids of the rows it inserts, so the batch first
 * takes them from the transfers' identity sequence; COPY writes the given
 * ids into an identity column, as INSERT ... OVERRIDING SYSTEM VALUE does.
 * Like ids taken by an insert that rolls back, ids of a batch that does
 * not commit are never used.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "pg_binary.h"
#include "pg_internal.h"

static int ref_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct store_transfer_ref *)elem)->ext_id);
}

int64_t pg_created_id(const struct store_batch_writes *w, const int64_t *ids, const char *ext_id)
{
    const struct store_transfer_ref *r =
        bsearch(ext_id, w->transfers, (size_t)w->n_transfers, sizeof *w->transfers, ref_cmp);
    LEDGER_ASSERT(r != NULL);
    return ids[r - w->transfers];
}

static void transfer_rows(const struct store_batch_writes *w, const int64_t *ids,
                          struct pg_binary *b)
{
    pgb_begin(b);
    for (int i = 0; i < w->n_transfers; i++) {
        const struct core_transfer *t = w->transfers[i].t;
        pgb_row(b, 14);
        pgb_int8(b, ids[i]);
        pgb_text(b, w->transfers[i].ext_id);
        pgb_int8(b, t->from_account);
        pgb_int8(b, t->to_account);
        pgb_numeric(b, t->amount);
        pgb_text(b, t->currency);
        pgb_bool(b, t->pending);
        pgb_int8(b, t->from_seq);
        pgb_int8(b, t->to_seq);
        if (w->transfers[i].metadata_json)
            pgb_jsonb(b, w->transfers[i].metadata_json);
        else
            pgb_null(b);
        pgb_timestamptz(b, t->effective_us);
        pgb_timestamptz(b, t->created_us);
        if (t->timeout_s == 0)
            pgb_null(b);
        else
            pgb_int8(b, t->timeout_s);
        pg_put_cost(b, &t->unit_cost, pgb_jsonb);
    }
    pgb_end(b);
}

static void entry_rows(const struct store_batch_writes *w, const int64_t *ids, struct pg_binary *b)
{
    pgb_begin(b);
    for (int i = 0; i < w->n_entries; i++) {
        const struct core_entry *e = &w->entries[i];
        int64_t tid = w->entry_transfer_id[i];
        pgb_row(b, 13);
        pgb_int8(b, w->entry_account_id[i]);
        pgb_int8(b, e->seq);
        pgb_int8(b, tid != 0 ? tid : pg_created_id(w, ids, w->entry_transfer_ext[i]));
        pgb_text(b, entry_kind_name(e->kind));
        pgb_numeric(b, e->amount);
        pgb_numeric(b, e->pending_change);
        pgb_numeric(b, e->balance);
        pgb_numeric(b, e->pending_out);
        pgb_numeric(b, e->pending_in);
        pg_put_cost(b, &e->avg_cost, pgb_jsonb);
        pgb_timestamptz(b, e->effective_us);
        pgb_timestamptz(b, e->created_us);
        pgb_text(b, w->entry_transfer_ext[i]);
    }
    pgb_end(b);
}

static enum store_result failed(PGconn *conn, const PGresult *res, struct store_error *err)
{
    enum store_result r = pg_classify(conn, res, err);
    return r == STORE_OK ? STORE_FAILED : r;
}

static enum store_result copy_rows(PGconn *conn, const char *sql, const struct pg_binary *rows,
                                   struct store_error *err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        enum store_result r = failed(conn, res, err);
        PQclear(res);
        return r;
    }
    PQclear(res);
    LEDGER_ASSERT(rows->len <= INT_MAX);
    bool sent =
        PQputCopyData(conn, rows->data, (int)rows->len) == 1 && PQputCopyEnd(conn, NULL) == 1;
    /* A send that failed on a live connection leaves libpq in COPY state,
     * where results never end: end the COPY as failed instead. */
    if (!sent && PQstatus(conn) == CONNECTION_OK)
        PQputCopyEnd(conn, "ledgerd could not send the rows");
    enum store_result r = STORE_OK;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (r == STORE_OK && st != PGRES_COMMAND_OK)
            r = failed(conn, res, err);
        PQclear(res);
        if (st == PGRES_COPY_IN)
            break;
    }
    if (r == STORE_OK && !sent)
        r = failed(conn, NULL, err);
    return r;
}

static enum store_result reserve_ids(PGconn *conn, int n, int64_t *ids, struct store_error *err)
{
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    const char *params[] = {count};
    PGresult *res = PQexecParams(conn,
                                 "SELECT nextval('ledger.transfers_id_seq')"
                                 " FROM generate_series(1, $1::int)",
                                 1, NULL, params, NULL, NULL, 0);
    enum store_result r = STORE_OK;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == n) {
        for (int i = 0; i < n; i++)
            ids[i] = pg_get_i64(res, i, 0);
    } else {
        r = failed(conn, res, err);
    }
    PQclear(res);
    return r;
}

enum store_result pg_copy_journal(PGconn *conn, const struct store_batch_writes *w, int64_t *ids,
                                  struct store_error *err)
{
    enum store_result r = reserve_ids(conn, w->n_transfers, ids, err);
    if (r != STORE_OK)
        return r;
    struct pg_binary rows = {0};
    transfer_rows(w, ids, &rows);
    r = copy_rows(conn,
                  "COPY ledger.transfers (id, ext_id, from_account_id, to_account_id, amount,"
                  " currency, pending, from_seq, to_seq, metadata, effective_at, created_at,"
                  " timeout_s, unit_cost) FROM STDIN (FORMAT binary)",
                  &rows, err);
    if (r == STORE_OK) {
        entry_rows(w, ids, &rows);
        r = copy_rows(conn,
                      "COPY ledger.entries (account_id, seq, transfer_id, kind, amount,"
                      " pending_change, balance, pending_out, pending_in, avg_cost,"
                      " effective_at, created_at, transfer_ext_id) FROM STDIN (FORMAT binary)",
                      &rows, err);
    }
    pgb_free(&rows);
    return r;
}
