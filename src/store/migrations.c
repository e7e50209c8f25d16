/*
 * migrations.c - the ledger schema, as numbered migrations.
 *
 * Every ledgerd applies missing migrations on start. A session-level
 * advisory lock serialises processes that start at once; each migration
 * runs in its own transaction together with its row in
 * ledger.schema_migrations, so a crash leaves either all of it or none.
 *
 * The database holds structural invariants only (unique ids, unique
 * (account, seq), insert-only journal) as a last line of defence; the
 * ledger rules themselves live in src/core and nowhere else. The journal
 * has no foreign keys: each would run a lookup per row inside the write
 * path (six per transfer, measured at about half of a batch's insert
 * time); `ledgerd verify` checks the references instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Any constant unique to ledgerd: "ledgerd" in ASCII. */
#define MIGRATION_LOCK_KEY 0x6c6564676572640LL

static const char *const migrations[] = {
    /* 1: accounts, the journal, and the insert-only triggers. */
    "CREATE TYPE ledger.entry_kind AS ENUM"
    " ('posted', 'pending', 'post_pending', 'void_pending', 'expire_pending');"

    /* Mutable current state, one row per account. ext_id sorts bytewise so
     * that every process locks accounts in the same order as strcmp(). */
    "CREATE TABLE ledger.accounts ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " ext_id text COLLATE \"C\" NOT NULL UNIQUE,"
    " currency text NOT NULL,"
    " min_balance numeric(39,0),"
    " cost_currencies text[] NOT NULL DEFAULT '{}',"
    " metadata jsonb,"
    " balance numeric(39,0) NOT NULL DEFAULT 0,"
    " pending_out numeric(39,0) NOT NULL DEFAULT 0,"
    " pending_in numeric(39,0) NOT NULL DEFAULT 0,"
    " seq bigint NOT NULL DEFAULT 0,"
    " last_effective_at timestamptz,"
    " avg_cost jsonb,"
    " created_at timestamptz NOT NULL DEFAULT now());"

    "CREATE TABLE ledger.transfers ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " ext_id text COLLATE \"C\" NOT NULL UNIQUE,"
    " from_account_id bigint NOT NULL,"
    " to_account_id bigint NOT NULL,"
    " amount numeric(39,0) NOT NULL,"
    " currency text NOT NULL,"
    " pending boolean NOT NULL,"
    " timeout_s bigint,"
    " from_seq bigint NOT NULL,"
    " to_seq bigint NOT NULL,"
    " metadata jsonb,"
    " unit_cost jsonb,"
    " effective_at timestamptz NOT NULL,"
    " created_at timestamptz NOT NULL);"

    "CREATE TABLE ledger.entries ("
    " account_id bigint NOT NULL,"
    " seq bigint NOT NULL,"
    " transfer_id bigint NOT NULL,"
    " kind ledger.entry_kind NOT NULL,"
    " amount numeric(39,0) NOT NULL,"
    " pending_change numeric(39,0) NOT NULL,"
    " balance numeric(39,0) NOT NULL,"
    " pending_out numeric(39,0) NOT NULL,"
    " pending_in numeric(39,0) NOT NULL,"
    " avg_cost jsonb,"
    " effective_at timestamptz NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " PRIMARY KEY (account_id, seq));"

    /* balance?at= is one probe of this index (effective_at never decreases
     * per account, so time order and seq order agree). */
    "CREATE INDEX entries_as_of ON ledger.entries (account_id, effective_at, seq);"

    "CREATE FUNCTION ledger.refuse_journal_change() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " RAISE EXCEPTION 'ledger journal is insert-only: % on %.% refused',"
    " TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';"
    " END $$;"
    "CREATE TRIGGER transfers_insert_only BEFORE UPDATE OR DELETE ON ledger.transfers"
    " FOR EACH ROW EXECUTE FUNCTION ledger.refuse_journal_change();"
    "CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON ledger.transfers"
    " FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_journal_change();"
    "CREATE TRIGGER entries_insert_only BEFORE UPDATE OR DELETE ON ledger.entries"
    " FOR EACH ROW EXECUTE FUNCTION ledger.refuse_journal_change();"
    "CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledger.entries"
    " FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_journal_change();",

    /* 2: the mutable state of pending transfers and the expiry queue. The
     * journal keeps the facts (the pending entries, then the settling
     * entries); this table only says where each pending transfer stands. */
    "CREATE TABLE ledger.pending_transfers ("
    " transfer_id bigint PRIMARY KEY,"
    " state text NOT NULL CHECK (state IN ('pending', 'posted', 'voided', 'expired')),"
    " deadline timestamptz,"
    " posted_amount numeric(39,0),"
    " settle_from_seq bigint,"
    " settle_to_seq bigint,"
    " settled_at timestamptz);"
    "CREATE INDEX pending_transfers_due ON ledger.pending_transfers (deadline)"
    " WHERE state = 'pending' AND deadline IS NOT NULL;",

    /* 3: every batch rewrites the state of the accounts it touches. Room
     * on each page lets those be HOT updates: no new index entries for
     * accounts whose indexed columns never change. */
    "ALTER TABLE ledger.accounts SET (fillfactor = 50);"
    "ALTER TABLE ledger.pending_transfers SET (fillfactor = 70);",

    /* 4: each entry carries its transfer's client id, so that an entries
     * page reads entries only, not one transfers row per entry. Entries
     * written before this have NULL here and are read through transfers.
     * No default: adding the column rewrites nothing. */
    "ALTER TABLE ledger.entries ADD COLUMN transfer_ext_id text COLLATE \"C\";",

    /* 5: balance?at= binary-searches the primary key instead (pg_read.c):
     * keeping this second index up to date cost about 40 % of inserting
     * an entry. */
    "DROP INDEX ledger.entries_as_of;",

    /* 6: triggers fire only in session_replication_role = origin unless
     * enabled ALWAYS, and any superuser may switch a session to replica:
     * the journal must refuse changes in every session. */
    "ALTER TABLE ledger.transfers ENABLE ALWAYS TRIGGER transfers_insert_only;"
    "ALTER TABLE ledger.transfers ENABLE ALWAYS TRIGGER transfers_no_truncate;"
    "ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER entries_insert_only;"
    "ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER entries_no_truncate;",

    /* 7: the batch write's answer (pg_write.c), checked before COMMIT: a
     * batch judged on cached account states (engine/account_cache.h) that
     * names an account row the database does not have must not commit. */
    "CREATE FUNCTION ledger.accounts_updated(n bigint, expected bigint) RETURNS bigint"
    " LANGUAGE plpgsql AS $f$ BEGIN"
    " IF n <> expected THEN"
    "  RAISE EXCEPTION 'the batch updated % of its % accounts', n, expected;"
    " END IF;"
    " RETURN n;"
    " END $f$;",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static bool exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

int store_migrate(PGconn *conn, int *version_out, char *err, size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", MIGRATION_LOCK_KEY);
    if (!exec_ok(conn, sql, err, errlen))
        return -1;
    int rc = -1;
    if (!exec_ok(conn,
                 /* "already exists, skipping" on every start is noise */
                 "SET client_min_messages = warning;"
                 "CREATE SCHEMA IF NOT EXISTS ledger;"
                 "CREATE TABLE IF NOT EXISTS ledger.schema_migrations ("
                 " version integer PRIMARY KEY,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 err, errlen))
        goto unlock;
    PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM ledger.schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        goto unlock;
    }
    int current = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (current > N_MIGRATIONS) {
        snprintf(err, errlen, "database schema version %d is newer than this ledgerd knows (%d)",
                 current, N_MIGRATIONS);
        goto unlock;
    }
    for (int v = current + 1; v <= N_MIGRATIONS; v++) {
        if (!exec_ok(conn, "BEGIN", err, errlen))
            goto unlock;
        char mark[128];
        snprintf(mark, sizeof mark, "INSERT INTO ledger.schema_migrations (version) VALUES (%d)",
                 v);
        if (!exec_ok(conn, migrations[v - 1], err, errlen) || !exec_ok(conn, mark, err, errlen) ||
            !exec_ok(conn, "COMMIT", err, errlen)) {
            PQclear(PQexec(conn, "ROLLBACK"));
            goto unlock;
        }
    }
    *version_out = N_MIGRATIONS;
    rc = 0;
unlock:
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", MIGRATION_LOCK_KEY);
    PQclear(PQexec(conn, sql));
    return rc;
}
