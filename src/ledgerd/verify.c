/*
 * verify.c - the auditor: trusts nothing the server wrote.
 *
 * It streams the whole journal in (account, seq) order and re-derives
 * every account's balance, pending figures and seq from the entries alone,
 * then compares them with the accounts' stored state and checks SPEC
 * section 6:
 *   1. per currency, sum(balance) = 0 and sum(pending_out) = sum(pending_in);
 *   2. available >= min_balance at every entry of a bounded account;
 *   3. seq 1..n without gaps; balance and pending chains; state = last entry;
 *   4. every posted transfer has exactly its two entries; no orphan entry;
 *   5. the insert-only triggers are present and enabled.
 * Each violation is printed on its own line; the exit code says whether any
 * was found.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/amount.h"
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
    i128 balance, pending_out, pending_in;
    bool broken;
};

static void chain_finish(struct audit *a, struct chain *c, PGresult *acct, int row)
{
    if (c->broken)
        return;
    if (amount_of(acct, row, 2) != c->balance || amount_of(acct, row, 3) != c->pending_out ||
        amount_of(acct, row, 4) != c->pending_in || atoll(PQgetvalue(acct, row, 5)) != c->seq)
        violation(a, "account %s: stored state differs from its last entry (seq %lld)", c->ext_id,
                  (long long)c->seq);
}

/* Invariants 2 and 3, from the entries alone. */
static int check_chains(struct audit *a, long *n_entries)
{
    PGresult *acct = query(a, "SELECT id, ext_id, balance, pending_out, pending_in, seq,"
                              " min_balance FROM ledger.accounts ORDER BY id");
    if (acct == NULL)
        return -1;
    if (!PQsendQuery(a->conn,
                     "SELECT e.account_id, e.seq, e.amount, e.pending_change, e.balance,"
                     " e.pending_out, e.pending_in, (t.from_account_id = e.account_id) AS debit"
                     " FROM ledger.entries e LEFT JOIN ledger.transfers t ON t.id = e.transfer_id"
                     " ORDER BY e.account_id, e.seq") ||
        !PQsetSingleRowMode(a->conn)) {
        PQclear(acct);
        return -1;
    }
    int n_acct = PQntuples(acct), ai = -1;
    struct chain c = {.account_id = -1};
    PGresult *res;
    int rc = 0;
    while ((res = PQgetResult(a->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK) {
            PQclear(res);
            continue;
        }
        if (st != PGRES_SINGLE_TUPLE) {
            fprintf(stderr, "verify: query failed: %s", PQresultErrorMessage(res));
            rc = -1;
            PQclear(res);
            continue;
        }
        (*n_entries)++;
        int64_t account_id = atoll(PQgetvalue(res, 0, 0));
        if (account_id != c.account_id) {
            /* Accounts without entries in between must be all zeros. */
            if (ai >= 0)
                chain_finish(a, &c, acct, ai);
            for (ai++; ai < n_acct && atoll(PQgetvalue(acct, ai, 0)) < account_id; ai++) {
                struct chain empty = {0};
                snprintf(empty.ext_id, sizeof empty.ext_id, "%s", PQgetvalue(acct, ai, 1));
                chain_finish(a, &empty, acct, ai);
            }
            memset(&c, 0, sizeof c);
            c.account_id = account_id;
            if (ai >= n_acct || atoll(PQgetvalue(acct, ai, 0)) != account_id) {
                violation(a, "entries of unknown account id %lld", (long long)account_id);
                c.broken = true;
                ai--;
            } else {
                snprintf(c.ext_id, sizeof c.ext_id, "%s", PQgetvalue(acct, ai, 1));
                c.bounded = !PQgetisnull(acct, ai, 6);
                c.min_balance = c.bounded ? amount_of(acct, ai, 6) : 0;
            }
        }
        if (c.broken) {
            PQclear(res);
            continue;
        }
        int64_t seq = atoll(PQgetvalue(res, 0, 1));
        i128 amount = amount_of(res, 0, 2), pchange = amount_of(res, 0, 3);
        bool debit = PQgetvalue(res, 0, 7)[0] == 't';
        if (seq != c.seq + 1) {
            violation(a, "account %s: seq %lld follows seq %lld", c.ext_id, (long long)seq,
                      (long long)c.seq);
            c.broken = true;
        } else if (amount_add(&c.balance, amount) ||
                   amount_add(debit ? &c.pending_out : &c.pending_in, pchange)) {
            violation(a, "account %s seq %lld: figures leave the 128-bit range", c.ext_id,
                      (long long)seq);
            c.broken = true;
        } else if (c.balance != amount_of(res, 0, 4) || c.pending_out != amount_of(res, 0, 5) ||
                   c.pending_in != amount_of(res, 0, 6)) {
            violation(a, "account %s seq %lld: figures differ from previous entry + change",
                      c.ext_id, (long long)seq);
            c.broken = true;
        } else {
            c.seq = seq;
            i128 available = c.balance;
            if (c.bounded &&
                (amount_sub(&available, c.pending_out) || available < c.min_balance))
                violation(a, "account %s seq %lld: available below min_balance", c.ext_id,
                          (long long)seq);
        }
        PQclear(res);
    }
    if (ai >= 0 && ai < n_acct)
        chain_finish(a, &c, acct, ai);
    for (ai++; ai < n_acct; ai++) {
        struct chain empty = {0};
        snprintf(empty.ext_id, sizeof empty.ext_id, "%s", PQgetvalue(acct, ai, 1));
        chain_finish(a, &empty, acct, ai);
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
                       "SELECT t.ext_id FROM ledger.transfers t WHERE NOT t.pending AND ("
                       " (SELECT count(*) FROM ledger.entries e WHERE e.transfer_id = t.id) <> 2"
                       " OR NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.transfer_id = t.id"
                       "  AND e.account_id = t.from_account_id AND e.seq = t.from_seq"
                       "  AND e.amount = -t.amount AND e.kind = 'posted')"
                       " OR NOT EXISTS (SELECT 1 FROM ledger.entries e WHERE e.transfer_id = t.id"
                       "  AND e.account_id = t.to_account_id AND e.seq = t.to_seq"
                       "  AND e.amount = t.amount AND e.kind = 'posted'))");
    rc |= expect_empty(a, "entry without a transfer (account id, seq)",
                       "SELECT e.account_id || ' ' || e.seq FROM ledger.entries e"
                       " WHERE NOT EXISTS (SELECT 1 FROM ledger.transfers t"
                       " WHERE t.id = e.transfer_id)");
    rc |= expect_empty(a, "transfer in a currency other than its accounts'",
                       "SELECT t.ext_id FROM ledger.transfers t"
                       " JOIN ledger.accounts f ON f.id = t.from_account_id"
                       " JOIN ledger.accounts d ON d.id = t.to_account_id"
                       " WHERE t.currency <> f.currency OR t.currency <> d.currency");
    rc |= expect_empty(a, "insert-only trigger missing or disabled",
                       "SELECT name FROM (VALUES ('transfers_insert_only'),"
                       " ('transfers_no_truncate'), ('entries_insert_only'),"
                       " ('entries_no_truncate')) AS w(name) WHERE NOT EXISTS ("
                       " SELECT 1 FROM pg_trigger WHERE tgname = w.name AND tgenabled <> 'D'"
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
    PQclear(PQexec(a.conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    if (run_checks(&a) == 0) {
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
