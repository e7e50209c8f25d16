/*
 * verify.c - the auditor: trusts nothing the server wrote.
 *
 * It streams the whole journal in (account, seq) order and re-derives
 * every account's balance, pending figures and seq from the entries alone,
 * then compares them with the accounts' stored state and checks SPEC
 * section 6:
 *   1. per currency, sum(balance) = 0 and sum(pending_out) = sum(pending_in);
 *   2. available >= min_balance after every entry that lowers available,
 *      of every bounded account; available within the 128-bit range;
 *   3. seq 1..n without gaps; balance and pending chains; state = last entry
 *      (and last_effective_at = its effective_at);
 *      effective_at never decreasing along seq;
 *   4. every posted transfer has exactly its two entries; no orphan entry;
 *      an entry's copy of its transfer's client id is that id;
 *   5. the insert-only triggers are present and fire always (also under
 *      session_replication_role = replica).
 * Each violation is printed on its own line; the exit code says whether any
 * was found.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/types.h"
#include "pg_embedded.h"
#include "store/store.h"
#include "util/log.h"
#include "verify.h"

#define REPORT_MAX 50 /* violations printed per check */

struct audit {
    PGconn *conn;
    long violations;
};

static void violation(struct audit *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(struct audit *a, const char *fmt, ...)
{
    if (a->violations++ >= REPORT_MAX * 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("violation: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static i128 amount_of(PGresult *res, int row, int col)
{
    const char *s = PQgetvalue(res, row, col);
    i128 v = 0;
    amount_parse(s, strlen(s), &v);
    return v;
}

static PGresult *query(struct audit *a, const char *sql)
{
    PGresult *res = PQexec(a->conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "verify: query failed: %s", PQerrorMessage(a->conn));
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Rows of a query that must return nothing: each row is a violation. */
static int expect_empty(struct audit *a, const char *what, const char *sql)
{
    PGresult *res = query(a, sql);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res) && i < REPORT_MAX; i++)
        violation(a, "%s: %s", what, PQgetvalue(res, i, 0));
    if (PQntuples(res) > REPORT_MAX)
        violation(a, "%s: ... and %d more", what, PQntuples(res) - REPORT_MAX);
    PQclear(res);
    return 0;
}

struct chain {
    int64_t account_id;
    char ext_id[128];
    bool bounded;
    i128 min_balance;
    int64_t seq;
    int64_t effective_us; /* of the last entry */
    i128 balance, pending_out, pending_in;
    struct core_cost cost; /* re-derived means of the tracked currencies */
    bool broken;
};

/* Parses an aligned text[] of decimals into values; NULL elements are
 * reported through *missing. */
static void parse_decimals(const char *array, int n, i128 *values, bool *missing)
{
    char tok[64];
    *missing = false;
    const char *p = array;
    for (int i = 0; i < n; i++) {
        values[i] = 0;
        if (*p == '{' || *p == ',')
            p++;
        size_t len = strcspn(p, ",}");
        snprintf(tok, sizeof tok, "%.*s", (int)len, p);
        p += len;
        if (len == 0 || strcmp(tok, "NULL") == 0 || !cost_parse(tok, strlen(tok), &values[i]))
            *missing = true;
    }
}

static void chain_start(struct chain *c, PGresult *acct, int row)
{
    memset(c, 0, sizeof *c);
    c->account_id = atoll(PQgetvalue(acct, row, 0));
    snprintf(c->ext_id, sizeof c->ext_id, "%s", PQgetvalue(acct, row, 1));
    c->bounded = !PQgetisnull(acct, row, 6);
    c->min_balance = c->bounded ? amount_of(acct, row, 6) : 0;
    /* "{BRL,USD}": codes need no quoting. */
    const char *p = PQgetvalue(acct, row, 7);
    while (*p && *p != '}' && c->cost.n < COST_CURRENCIES_MAX) {
        if (*p == '{' || *p == ',')
            p++;
        size_t len = strcspn(p, ",}");
        if (len == 0)
            break;
        snprintf(c->cost.currency[c->cost.n++], CURRENCY_LEN_MAX + 1, "%.*s", (int)len, p);
        p += len;
    }
}

static void chain_finish(struct audit *a, struct chain *c, PGresult *acct, int row)
{
    if (c->broken)
        return;
    if (amount_of(acct, row, 2) != c->balance || amount_of(acct, row, 3) != c->pending_out ||
        amount_of(acct, row, 4) != c->pending_in || atoll(PQgetvalue(acct, row, 5)) != c->seq)
        violation(a, "account %s: stored state differs from its last entry (seq %lld)", c->ext_id,
                  (long long)c->seq);
    i128 stored[COST_CURRENCIES_MAX];
    bool missing;
    parse_decimals(PQgetvalue(acct, row, 8), c->cost.n, stored, &missing);
    for (int i = 0; i < c->cost.n; i++)
        if (missing || stored[i] != c->cost.value[i])
            violation(a, "account %s: stored avg_cost %s differs from the journal's", c->ext_id,
                      c->cost.currency[i]);
    /* balance?at= answers a time at or after it without searching. */
    bool none = PQgetisnull(acct, row, 9);
    if (c->seq == 0 ? !none : (none || atoll(PQgetvalue(acct, row, 9)) != c->effective_us))
        violation(a, "account %s: stored last_effective_at differs from its last entry's",
                  c->ext_id);
}

/* One entry of the chain: figures, floor, and the mean acquisition cost. */
static void chain_step(struct audit *a, struct chain *c, PGresult *res)
{
    int64_t seq = atoll(PQgetvalue(res, 0, 1));
    i128 amount = amount_of(res, 0, 2), pchange = amount_of(res, 0, 3);
    bool debit = PQgetvalue(res, 0, 7)[0] == 't';
    i128 before = c->balance, available_before = c->balance;
    /* Out of range only if a violation was reported at the entry before. */
    if (amount_sub(&available_before, c->pending_out))
        available_before = AMOUNT_MIN;
    if (seq != c->seq + 1) {
        violation(a, "account %s: seq %lld follows seq %lld", c->ext_id, (long long)seq,
                  (long long)c->seq);
        c->broken = true;
        return;
    }
    if (amount_add(&c->balance, amount) ||
        amount_add(debit ? &c->pending_out : &c->pending_in, pchange)) {
        violation(a, "account %s seq %lld: figures leave the 128-bit range", c->ext_id,
                  (long long)seq);
        c->broken = true;
        return;
    }
    if (c->balance != amount_of(res, 0, 4) || c->pending_out != amount_of(res, 0, 5) ||
        c->pending_in != amount_of(res, 0, 6)) {
        violation(a, "account %s seq %lld: figures differ from previous entry + change", c->ext_id,
                  (long long)seq);
        c->broken = true;
        return;
    }
    c->seq = seq;
    /* balance?at= searches entries by seq and relies on this order. */
    int64_t effective_us = atoll(PQgetvalue(res, 0, 10));
    if (seq > 1 && effective_us < c->effective_us)
        violation(a, "account %s seq %lld: effective_at earlier than the entry before", c->ext_id,
                  (long long)seq);
    c->effective_us = effective_us;
    /* Only a debit or a reservation lowers available, and only those are
     * held to the floor: a credit to an account below a positive
     * min_balance leaves it below, but higher than it was. */
    i128 available = c->balance;
    if (amount_sub(&available, c->pending_out))
        violation(a, "account %s seq %lld: available leaves the 128-bit range", c->ext_id,
                  (long long)seq);
    else if (c->bounded && available < c->min_balance && available < available_before)
        violation(a, "account %s seq %lld: available below min_balance", c->ext_id, (long long)seq);
    if (c->cost.n == 0)
        return;

    i128 unit[COST_CURRENCIES_MAX], stated[COST_CURRENCIES_MAX];
    bool unit_missing, stated_missing;
    parse_decimals(PQgetvalue(res, 0, 9), c->cost.n, unit, &unit_missing);
    parse_decimals(PQgetvalue(res, 0, 8), c->cost.n, stated, &stated_missing);
    if (amount > 0 && c->balance != 0 && unit_missing) {
        violation(a, "account %s seq %lld: credit without a unit_cost for every cost currency",
                  c->ext_id, (long long)seq);
        c->broken = true;
        return;
    }
    for (int i = 0; i < c->cost.n; i++) {
        if (c->balance == 0)
            c->cost.value[i] = 0;
        else if (amount > 0)
            cost_mean_after_credit(before, c->cost.value[i], amount, unit[i], &c->cost.value[i]);
        if (stated_missing || stated[i] != c->cost.value[i])
            violation(a, "account %s seq %lld: avg_cost %s differs from the re-derived mean",
                      c->ext_id, (long long)seq, c->cost.currency[i]);
    }
}

/* Invariants 2 and 3 and the means of section 5, from the entries alone. */
static int check_chains(struct audit *a, long *n_entries)
{
    PGresult *acct = query(a, "SELECT id, ext_id, balance, pending_out, pending_in, seq,"
                              " min_balance, cost_currencies,"
                              " ARRAY(SELECT avg_cost ->> c FROM unnest(cost_currencies) c),"
                              " (extract(epoch FROM last_effective_at) * 1000000)::bigint"
                              " FROM ledger.accounts ORDER BY id");
    if (acct == NULL)
        return -1;
    if (!PQsendQuery(a->conn,
                     "SELECT e.account_id, e.seq, e.amount, e.pending_change, e.balance,"
                     " e.pending_out, e.pending_in, (t.from_account_id = e.account_id) AS debit,"
                     " ARRAY(SELECT e.avg_cost ->> c FROM unnest(a.cost_currencies) c),"
                     " ARRAY(SELECT t.unit_cost ->> c FROM unnest(a.cost_currencies) c),"
                     " (extract(epoch FROM e.effective_at) * 1000000)::bigint"
                     " FROM ledger.entries e JOIN ledger.accounts a ON a.id = e.account_id"
                     " LEFT JOIN ledger.transfers t ON t.id = e.transfer_id"
                     " ORDER BY e.account_id, e.seq") ||
        !PQsetSingleRowMode(a->conn)) {
        PQclear(acct);
        return -1;
    }
    /* Merge: accounts by id, entries by (account_id, seq). */
    int n_acct = PQntuples(acct), ai = -1;
    struct chain c = {.account_id = -1, .broken = true};
    PGresult *res;
    int rc = 0;
    while ((res = PQgetResult(a->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_SINGLE_TUPLE) {
            if (st != PGRES_TUPLES_OK) {
                fprintf(stderr, "verify: query failed: %s", PQresultErrorMessage(res));
                rc = -1;
            }
            PQclear(res);
            continue;
        }
        (*n_entries)++;
        int64_t account_id = atoll(PQgetvalue(res, 0, 0));
        while (c.account_id != account_id && ai + 1 < n_acct) {
            if (ai >= 0)
                chain_finish(a, &c, acct, ai);
            chain_start(&c, acct, ++ai);
        }
        if (c.account_id != account_id) {
            violation(a, "entries of unknown account id %lld", (long long)account_id);
        } else if (!c.broken) {
            chain_step(a, &c, res);
        }
        PQclear(res);
    }
    if (rc != 0) {
        /* The stream ended early: what was not read is not a violation. */
        PQclear(acct);
        return rc;
    }
    if (ai >= 0)
        chain_finish(a, &c, acct, ai);
    while (ai + 1 < n_acct) {
        chain_start(&c, acct, ++ai);
        chain_finish(a, &c, acct, ai);
    }
    PQclear(acct);
    return rc;
}

static int run_checks(struct audit *a)
{
    long n_entries = 0;
    if (check_chains(a, &n_entries) != 0)
        return -1;
    int rc = 0;
    rc |= expect_empty(a, "currency does not balance (currency, sum of balances)",
                       "SELECT currency || ' ' || sum(balance) FROM ledger.accounts"
                       " GROUP BY currency HAVING sum(balance) <> 0");
    rc |= expect_empty(a, "pending figures do not balance (currency, out - in)",
                       "SELECT currency || ' ' || (sum(pending_out) - sum(pending_in))"
                       " FROM ledger.accounts GROUP BY currency"
                       " HAVING sum(pending_out) <> sum(pending_in)");
    rc |= expect_empty(a, "posted transfer without exactly its two entries",
                       "WITH n AS (SELECT transfer_id, count(*) AS n FROM ledger.entries"
                       " GROUP BY transfer_id)"
                       " SELECT t.ext_id FROM ledger.transfers t"
                       " LEFT JOIN n ON n.transfer_id = t.id WHERE NOT t.pending AND ("
                       " coalesce(n.n, 0) <> 2"
                       " OR NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.transfer_id = t.id"
                       "  AND e.account_id = t.from_account_id AND e.seq = t.from_seq"
                       "  AND e.amount = -t.amount AND e.kind = 'posted')"
                       " OR NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.transfer_id = t.id"
                       "  AND e.account_id = t.to_account_id AND e.seq = t.to_seq"
                       "  AND e.amount = t.amount AND e.kind = 'posted'))");
    rc |= expect_empty(a, "pending transfer without its two pending entries",
                       "SELECT t.ext_id FROM ledger.transfers t WHERE t.pending AND ("
                       " NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.transfer_id = t.id"
                       "  AND e.account_id = t.from_account_id AND e.seq = t.from_seq"
                       "  AND e.kind = 'pending' AND e.amount = 0 AND e.pending_change = t.amount)"
                       " OR NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.transfer_id = t.id"
                       "  AND e.account_id = t.to_account_id AND e.seq = t.to_seq"
                       "  AND e.kind = 'pending' AND e.amount = 0"
                       "  AND e.pending_change = t.amount))");
    rc |= expect_empty(a, "pending transfer whose state disagrees with its entries",
                       "WITH n AS (SELECT transfer_id, count(*) AS n FROM ledger.entries"
                       " GROUP BY transfer_id)"
                       " SELECT t.ext_id || ' (' || coalesce(p.state, 'no state') || ')'"
                       " FROM ledger.transfers t"
                       " LEFT JOIN ledger.pending_transfers p ON p.transfer_id = t.id"
                       " LEFT JOIN n ON n.transfer_id = t.id"
                       " WHERE t.pending AND (p.state IS NULL"
                       " OR coalesce(n.n, 0)"
                       "  <> CASE WHEN p.state = 'pending' THEN 2 ELSE 4 END"
                       " OR (p.state <> 'pending' AND (p.posted_amount > t.amount"
                       "  OR (p.state <> 'posted' AND p.posted_amount <> 0)"
                       "  OR NOT EXISTS (SELECT 1 FROM ledger.entries e"
                       "   WHERE e.transfer_id = t.id AND e.account_id = t.from_account_id"
                       "   AND e.seq = p.settle_from_seq AND e.amount = -p.posted_amount"
                       "   AND e.pending_change = -t.amount AND e.kind = CASE p.state"
                       "   WHEN 'posted' THEN 'post_pending' WHEN 'voided' THEN 'void_pending'"
                       "   ELSE 'expire_pending' END::ledger.entry_kind)"
                       "  OR NOT EXISTS (SELECT 1 FROM ledger.entries e"
                       "   WHERE e.transfer_id = t.id AND e.account_id = t.to_account_id"
                       "   AND e.seq = p.settle_to_seq AND e.amount = p.posted_amount"
                       "   AND e.pending_change = -t.amount AND e.kind = CASE p.state"
                       "   WHEN 'posted' THEN 'post_pending' WHEN 'voided' THEN 'void_pending'"
                       "   ELSE 'expire_pending' END::ledger.entry_kind))))");
    rc |= expect_empty(a, "entry without a transfer (account id, seq)",
                       "SELECT e.account_id || ' ' || e.seq FROM ledger.entries e"
                       " LEFT JOIN ledger.transfers t ON t.id = e.transfer_id WHERE t.id IS NULL");
    rc |= expect_empty(a, "entry naming another transfer's id (account id, seq)",
                       "SELECT e.account_id || ' ' || e.seq FROM ledger.entries e"
                       " JOIN ledger.transfers t ON t.id = e.transfer_id"
                       " WHERE e.transfer_ext_id <> t.ext_id");
    rc |= expect_empty(a, "entry of an unknown account (account id, seq)",
                       "SELECT e.account_id || ' ' || e.seq FROM ledger.entries e"
                       " LEFT JOIN ledger.accounts a ON a.id = e.account_id WHERE a.id IS NULL");
    rc |= expect_empty(a, "transfer in a currency other than its accounts'",
                       "SELECT t.ext_id FROM ledger.transfers t"
                       " JOIN ledger.accounts f ON f.id = t.from_account_id"
                       " JOIN ledger.accounts d ON d.id = t.to_account_id"
                       " WHERE t.currency <> f.currency OR t.currency <> d.currency");
    rc |= expect_empty(a, "insert-only trigger missing or not firing always",
                       "SELECT name FROM (VALUES ('transfers_insert_only'),"
                       " ('transfers_no_truncate'), ('entries_insert_only'),"
                       " ('entries_no_truncate')) AS w(name) WHERE NOT EXISTS ("
                       " SELECT 1 FROM pg_trigger WHERE tgname = w.name AND tgenabled = 'A'"
                       " AND tgrelid IN ('ledger.transfers'::regclass,"
                       " 'ledger.entries'::regclass))");
    if (rc != 0)
        return -1;
    PGresult *res = query(a, "SELECT (SELECT count(*) FROM ledger.accounts),"
                             " (SELECT count(*) FROM ledger.transfers)");
    if (res == NULL)
        return -1;
    printf("checked %s accounts, %s transfers, %ld entries\n", PQgetvalue(res, 0, 0),
           PQgetvalue(res, 0, 1), n_entries);
    PQclear(res);
    return 0;
}

int verify_main(const char *db, const char *data_dir)
{
    struct pg_embedded pg;
    memset(&pg, 0, sizeof pg);
    if (db == NULL) {
        /* Nothing to audit is an error, not a reason to create a cluster. */
        char version_file[4200];
        snprintf(version_file, sizeof version_file, "%s/PG_VERSION", data_dir);
        if (access(version_file, F_OK) != 0) {
            if (errno == ENOENT)
                fprintf(stderr, "verify: no ledger in \"%s\": it holds no PostgreSQL cluster\n",
                        data_dir);
            else
                fprintf(stderr, "verify: cannot look into \"%s\": %s\n", data_dir, strerror(errno));
            return 2;
        }
        if (pg_embedded_start(&pg, data_dir) != 0)
            return 2;
        db = pg.conninfo;
    }
    int rc = 2;
    char err[512];
    struct audit a = {.conn = store_connect(db, err, sizeof err)};
    if (a.conn == NULL) {
        fprintf(stderr, "verify: could not connect to the database: %s", err);
        goto out;
    }
    /* One snapshot for every check, so concurrent writers cannot make a
     * consistent ledger look broken. */
    /* A full audit of a large journal takes minutes: no statement timeout. */
    PQclear(PQexec(a.conn, "SET statement_timeout = 0"));
    PQclear(PQexec(a.conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    PGresult *schema = PQexec(a.conn, "SELECT to_regclass('ledger.entries') IS NOT NULL"
                                      " AND to_regclass('ledger.accounts') IS NOT NULL");
    bool looked = PQresultStatus(schema) == PGRES_TUPLES_OK;
    bool has_ledger = looked && strcmp(PQgetvalue(schema, 0, 0), "t") == 0;
    if (!looked)
        fprintf(stderr, "verify: %s", PQerrorMessage(a.conn));
    else if (!has_ledger)
        fprintf(stderr, "verify: this database holds no ledger (no ledger schema)\n");
    PQclear(schema);
    if (has_ledger && run_checks(&a) == 0) {
        if (a.violations == 0) {
            printf("verify: OK\n");
            rc = 0;
        } else {
            printf("verify: %ld violation(s)\n", a.violations);
            rc = 1;
        }
    }
    PQfinish(a.conn);
out:
    pg_embedded_stop(&pg);
    return rc;
}
