/*
 * pg_read.c - queries for the read endpoints, and account creation.
 *
 * Called from request threads with a connection of the store_pool. Every
 * query is parameterised and answered through an index: accounts by
 * ext_id, entries by (account_id, seq).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/apply.h"
#include "core/assert.h"
#include "pg_internal.h"

static char *dup_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

/* The read statements, prepared on each new connection of the pool and
 * of the sweeper (store_ensure_reads). */
enum read_stmt { READ_ACCOUNT, READ_BALANCE_AT, READ_ENTRIES, READ_TRANSFER, READ_DUE_PENDING };
static PGresult *exec_read(PGconn *conn, enum read_stmt which, const char *const *params);

void store_account_free(struct store_account *a)
{
    free(a->metadata_json);
    free(a->avg_cost_json);
    a->metadata_json = a->avg_cost_json = NULL;
}

#define ACCOUNT_COLUMNS                                                                            \
    "ext_id, currency, min_balance, cost_currencies, metadata, balance, pending_out,"              \
    " pending_in, seq, avg_cost, " SQL_TS_TO_US("created_at")

/* Parses a text[] of currency codes ("{USD,BRL}"); codes need no quoting. */
static void parse_currency_array(const char *s, struct store_account *a)
{
    a->n_cost_currencies = 0;
    if (*s == '{')
        s++;
    while (*s && *s != '}' && a->n_cost_currencies < COST_CURRENCIES_MAX) {
        size_t n = strcspn(s, ",}");
        char *dst = a->cost_currencies[a->n_cost_currencies++];
        snprintf(dst, CURRENCY_LEN_MAX + 1, "%.*s", (int)n, s);
        s += n;
        if (*s == ',')
            s++;
    }
}

static void account_from_row(const PGresult *res, int row, struct store_account *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->ext_id, sizeof a->ext_id, "%s", PQgetvalue(res, row, 0));
    snprintf(a->currency, sizeof a->currency, "%s", PQgetvalue(res, row, 1));
    a->min_unbounded = PQgetisnull(res, row, 2);
    a->min_balance = a->min_unbounded ? 0 : pg_get_amount(res, row, 2);
    parse_currency_array(PQgetvalue(res, row, 3), a);
    a->metadata_json = dup_or_null(res, row, 4);
    a->balance = pg_get_amount(res, row, 5);
    a->pending_out = pg_get_amount(res, row, 6);
    a->pending_in = pg_get_amount(res, row, 7);
    a->seq = pg_get_i64(res, row, 8);
    a->avg_cost_json = dup_or_null(res, row, 9);
    a->created_us = pg_get_i64(res, row, 10);
}

static void currency_array(struct sbuf *b, const struct store_account *a)
{
    sbuf_reset(b);
    sbuf_putc(b, '{');
    for (int i = 0; i < a->n_cost_currencies; i++) {
        if (i)
            sbuf_putc(b, ',');
        sbuf_put_quoted(b, a->cost_currencies[i]);
    }
    sbuf_putc(b, '}');
}

static void account_spec_of(const struct store_account *a, const char **codes,
                            struct core_account_spec *spec)
{
    for (int i = 0; i < a->n_cost_currencies; i++)
        codes[i] = a->cost_currencies[i];
    spec->currency = a->currency;
    spec->min_unbounded = a->min_unbounded;
    spec->min_balance = a->min_balance;
    spec->cost_currencies = codes;
    spec->n_cost_currencies = a->n_cost_currencies;
}

enum store_create_outcome store_create_account(PGconn *conn, const struct store_account *in,
                                               struct store_account *out)
{
    char min_text[AMOUNT_TEXT_MAX];
    amount_format(in->min_balance, min_text);
    struct sbuf costs;
    sbuf_init(&costs);
    currency_array(&costs, in);
    const char *params[] = {in->ext_id, in->currency, in->min_unbounded ? NULL : min_text,
                            costs.data, in->metadata_json};
    /* A tracked position starts at a mean of 0 in each cost currency. */
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO ledger.accounts (ext_id, currency, min_balance,"
                                 " cost_currencies, metadata, avg_cost)"
                                 " VALUES ($1, $2, $3, $4, $5::jsonb, (SELECT jsonb_object_agg(c,"
                                 " '0.000000000000000000') FROM unnest($4::text[]) c))"
                                 " ON CONFLICT (ext_id) DO NOTHING RETURNING " ACCOUNT_COLUMNS,
                                 5, NULL, params, NULL, NULL, 0);
    enum store_create_outcome outcome = STORE_CREATE_FAILED;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto done;
    if (PQntuples(res) == 1) {
        account_from_row(res, 0, out);
        outcome = STORE_CREATED;
        goto done;
    }
    PQclear(res);
    const char *params2[] = {in->ext_id, in->metadata_json};
    res = PQexecParams(conn,
                       "SELECT " ACCOUNT_COLUMNS ", metadata IS NOT DISTINCT FROM $2::jsonb"
                       " FROM ledger.accounts WHERE ext_id = $1",
                       2, NULL, params2, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        goto done;
    account_from_row(res, 0, out);
    bool metadata_equal = PQgetvalue(res, 0, 11)[0] == 't';
    const char *codes_a[COST_CURRENCIES_MAX], *codes_b[COST_CURRENCIES_MAX];
    struct core_account_spec a, b;
    account_spec_of(in, codes_a, &a);
    account_spec_of(out, codes_b, &b);
    outcome = core_account_spec_equal(&a, &b, metadata_equal) ? STORE_EXISTS_SAME
                                                              : STORE_EXISTS_DIFFERENT;
done:
    PQclear(res);
    sbuf_free(&costs);
    return outcome;
}

int store_get_account(PGconn *conn, const char *ext_id, struct store_account *out)
{
    const char *params[] = {ext_id};
    PGresult *res = exec_read(conn, READ_ACCOUNT, params);
    int r = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        r = PQntuples(res) == 1;
        if (r)
            account_from_row(res, 0, out);
    }
    PQclear(res);
    return r;
}

/* clang-format off */

/* A binary search over the account's seq, one primary-key probe per step:
 * effective_at never decreases along an account's entries (core sets it to
 * at least the last one; verify checks it), so the answer is the last
 * entry with effective_at <= $2, and (lo, hi) brackets its seq; lo = 0 is
 * "no entry yet". A time at or after the account's last entry (its
 * last_effective_at, which verify checks too) is the common question and
 * starts the search already done: one probe instead of about log2(seq),
 * each on its own heap page of a large journal. The account's seq is read
 * in the same snapshot as its entries. The last column, lo, is NULL only if
 * a step found no entry, a gap in seq that verify reports as corruption.
 * The LEFT JOINs keep "no entry yet" apart from "no such account". */
#define SQL_BALANCE_AT                                                         \
    "WITH RECURSIVE a AS ("                                                    \
    "  SELECT id, seq, cost_currencies, last_effective_at"                     \
    "  FROM ledger.accounts WHERE ext_id = $1),"                               \
    " s(lo, hi) AS ("                                                          \
    "  SELECT CASE WHEN a.last_effective_at <= " SQL_US_TO_TS("$2::bigint")    \
    "    THEN seq ELSE 0 END, seq FROM a"                                      \
    "  UNION ALL"                                                              \
    "  SELECT CASE WHEN e.effective_at <= " SQL_US_TO_TS("$2::bigint")         \
    "    THEN e.seq ELSE s.lo END,"                                            \
    "   CASE WHEN e.effective_at <= " SQL_US_TO_TS("$2::bigint")               \
    "    THEN s.hi ELSE e.seq - 1 END"                                         \
    "  FROM s CROSS JOIN a JOIN ledger.entries e"                              \
    "   ON e.account_id = a.id AND e.seq = (s.lo + s.hi + 1) / 2"              \
    "  WHERE s.lo < s.hi)"                                                     \
    " SELECT e.balance, e.seq, coalesce(e.avg_cost,"                           \
    "  (SELECT jsonb_object_agg(c, '0.000000000000000000')"                    \
    "   FROM unnest(a.cost_currencies) c)), f.lo"                              \
    " FROM a LEFT JOIN (SELECT lo FROM s WHERE lo = hi) f ON true"             \
    " LEFT JOIN ledger.entries e ON e.account_id = a.id AND e.seq = f.lo"

#define SQL_LIST_ENTRIES                                                       \
    "SELECT a.id, e.seq, coalesce(e.transfer_ext_id,"                         \
    "  (SELECT ext_id FROM ledger.transfers WHERE id = e.transfer_id)),"       \
    " e.kind, e.amount, e.pending_change,"                                     \
    " e.balance, e.pending_out, e.pending_in, e.avg_cost, "                    \
    SQL_TS_TO_US("e.effective_at") ", " SQL_TS_TO_US("e.created_at")           \
    " FROM ledger.accounts a"                                                  \
    " LEFT JOIN LATERAL (SELECT * FROM ledger.entries"                         \
    "  WHERE account_id = a.id AND seq > $2::bigint"                           \
    "  ORDER BY seq LIMIT $3::int) e ON true"                                  \
    " WHERE a.ext_id = $1 ORDER BY e.seq"

#define SQL_GET_ACCOUNT "SELECT " ACCOUNT_COLUMNS " FROM ledger.accounts WHERE ext_id = $1"

#define SQL_GET_TRANSFER                                                       \
    "SELECT t.ext_id, fa.ext_id, ta.ext_id, t.metadata, " PG_TRANSFER_COLUMNS  \
    " FROM ledger.transfers t JOIN ledger.accounts fa ON fa.id = t.from_account_id"\
    " JOIN ledger.accounts ta ON ta.id = t.to_account_id" PG_TRANSFER_JOINS     \
    " WHERE t.ext_id = $1"

#define SQL_DUE_PENDING                                                        \
    "SELECT t.ext_id FROM ledger.pending_transfers p"                          \
    " JOIN ledger.transfers t ON t.id = p.transfer_id"                         \
    " WHERE p.state = 'pending' AND p.deadline <= now()"                       \
    " ORDER BY p.deadline LIMIT $1::int"

/* clang-format on */

static const struct {
    const char *name, *sql;
    int n_params;
} reads[] = {
    [READ_ACCOUNT] = {"ledger_get_account", SQL_GET_ACCOUNT, 1},
    [READ_BALANCE_AT] = {"ledger_balance_at", SQL_BALANCE_AT, 2},
    [READ_ENTRIES] = {"ledger_list_entries", SQL_LIST_ENTRIES, 3},
    [READ_TRANSFER] = {"ledger_get_transfer", SQL_GET_TRANSFER, 1},
    [READ_DUE_PENDING] = {"ledger_due_pending", SQL_DUE_PENDING, 1},
};

enum store_ensure_result store_ensure_reads(PGconn **conn, const char *conninfo)
{
    enum store_ensure_result got = store_ensure(conn, conninfo);
    for (size_t i = 0; got == STORE_CONN_NEW && i < sizeof reads / sizeof reads[0]; i++)
        PQclear(PQprepare(*conn, reads[i].name, reads[i].sql, reads[i].n_params, NULL));
    return got;
}

/* Runs a read statement, preparing it on this connection if it is not yet
 * (SQLSTATE 26000): preparing them failed, or the connection was
 * made elsewhere. */
static PGresult *exec_read(PGconn *conn, enum read_stmt which, const char *const *params)
{
    const char *name = reads[which].name;
    int n = reads[which].n_params;
    PGresult *res = PQexecPrepared(conn, name, n, params, NULL, NULL, 0);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQresultStatus(res) != PGRES_FATAL_ERROR || state == NULL || strcmp(state, "26000") != 0)
        return res;
    PQclear(res);
    res = PQprepare(conn, name, reads[which].sql, n, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return res;
    PQclear(res);
    return PQexecPrepared(conn, name, n, params, NULL, NULL, 0);
}

int store_balance_at(PGconn *conn, const char *ext_id, int64_t at_us, struct store_balance_at *out)
{
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)at_us);
    const char *params[] = {ext_id, at};
    PGresult *res = exec_read(conn, READ_BALANCE_AT, params);
    int r = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        r = PQntuples(res) == 1;
        if (r) {
            LEDGER_ASSERT(!PQgetisnull(res, 0, 3));
            bool none = PQgetisnull(res, 0, 1);
            out->balance = none ? 0 : pg_get_amount(res, 0, 0);
            out->seq = none ? 0 : pg_get_i64(res, 0, 1);
            out->avg_cost_json = dup_or_null(res, 0, 2);
        }
    }
    PQclear(res);
    return r;
}

void store_entries_free(struct store_entry *e, int n)
{
    for (int i = 0; i < n; i++)
        free(e[i].avg_cost_json);
    free(e);
}

int store_list_entries(PGconn *conn, const char *ext_id, int64_t after_seq, int limit,
                       struct store_entry **out, int *n_out)
{
    char after[24], lim[24];
    snprintf(after, sizeof after, "%lld", (long long)after_seq);
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {ext_id, after, lim};
    PGresult *res = exec_read(conn, READ_ENTRIES, params);
    int r = -1;
    *out = NULL;
    *n_out = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto done;
    int rows = PQntuples(res);
    r = rows > 0;
    if (rows == 0 || PQgetisnull(res, 0, 1))
        goto done;
    *out = calloc((size_t)rows, sizeof **out);
    if (*out == NULL) {
        r = -1;
        goto done;
    }
    for (int i = 0; i < rows; i++) {
        struct store_entry *e = &(*out)[i];
        e->seq = pg_get_i64(res, i, 1);
        snprintf(e->transfer_id, sizeof e->transfer_id, "%s", PQgetvalue(res, i, 2));
        snprintf(e->kind, sizeof e->kind, "%s", PQgetvalue(res, i, 3));
        e->amount = pg_get_amount(res, i, 4);
        e->pending_change = pg_get_amount(res, i, 5);
        e->balance = pg_get_amount(res, i, 6);
        e->pending_out = pg_get_amount(res, i, 7);
        e->pending_in = pg_get_amount(res, i, 8);
        e->avg_cost_json = dup_or_null(res, i, 9);
        e->effective_us = pg_get_i64(res, i, 10);
        e->created_us = pg_get_i64(res, i, 11);
    }
    *n_out = rows;
done:
    PQclear(res);
    return r;
}

int store_get_transfer(PGconn *conn, const char *ext_id, struct store_transfer *out)
{
    const char *params[] = {ext_id};
    PGresult *res = exec_read(conn, READ_TRANSFER, params);
    int r = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        r = PQntuples(res) == 1;
        if (r) {
            memset(out, 0, sizeof *out);
            snprintf(out->ext_id, sizeof out->ext_id, "%s", PQgetvalue(res, 0, 0));
            snprintf(out->from, sizeof out->from, "%s", PQgetvalue(res, 0, 1));
            snprintf(out->to, sizeof out->to, "%s", PQgetvalue(res, 0, 2));
            out->metadata_json = dup_or_null(res, 0, 3);
            pg_get_transfer(res, 0, 4, &out->t);
        }
    }
    PQclear(res);
    return r;
}

int store_transfer_accounts(PGconn *conn, const char *const *ids, int n,
                            char (*from)[ID_LEN_MAX + 1], char (*to)[ID_LEN_MAX + 1], bool *found)
{
    struct sbuf arr;
    sbuf_init(&arr);
    sbuf_putc(&arr, '{');
    for (int i = 0; i < n; i++) {
        if (i)
            sbuf_putc(&arr, ',');
        sbuf_put_quoted(&arr, ids[i]);
    }
    sbuf_putc(&arr, '}');
    const char *params[] = {arr.data};
    PGresult *res = PQexecParams(conn,
                                 "SELECT t.ext_id, fa.ext_id, ta.ext_id FROM ledger.transfers t"
                                 " JOIN ledger.accounts fa ON fa.id = t.from_account_id"
                                 " JOIN ledger.accounts ta ON ta.id = t.to_account_id"
                                 " WHERE t.ext_id = ANY($1::text[])",
                                 1, NULL, params, NULL, NULL, 0);
    sbuf_free(&arr);
    int r = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (int i = 0; i < n; i++)
            found[i] = false;
        for (int row = 0; row < PQntuples(res); row++)
            for (int i = 0; i < n; i++)
                if (!found[i] && strcmp(ids[i], PQgetvalue(res, row, 0)) == 0) {
                    snprintf(from[i], ID_LEN_MAX + 1, "%s", PQgetvalue(res, row, 1));
                    snprintf(to[i], ID_LEN_MAX + 1, "%s", PQgetvalue(res, row, 2));
                    found[i] = true;
                }
        r = 0;
    }
    PQclear(res);
    return r;
}

int store_due_pending(PGconn *conn, int limit, char (*ids)[ID_LEN_MAX + 1])
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {lim};
    PGresult *res = exec_read(conn, READ_DUE_PENDING, params);
    int n = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        n = PQntuples(res);
        for (int i = 0; i < n; i++)
            snprintf(ids[i], ID_LEN_MAX + 1, "%s", PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return n;
}
