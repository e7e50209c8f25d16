/*
 * store.h - everything ledgerd asks of PostgreSQL, through libpq.
 *
 * The store knows SQL and the schema; it knows nothing of HTTP or JSON and
 * applies no ledger rule. It reads and writes the shapes of core/types.h.
 *
 * Write path (engine's committer only, one connection per committer):
 *   store_batch_load -> core -> store_batch_write_commit
 * two pipelined round trips inside one transaction; or, on cached account
 * states, core -> store_batch_write_commit with lock_first: one.
 * Accounts are locked in one fixed order (ext_id, bytewise) by every
 * process, so batches never deadlock each other.
 */
#ifndef LEDGER_STORE_STORE_H
#define LEDGER_STORE_STORE_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

/* How a store call ended; decided by SQLSTATE, never by message text. */
enum store_result {
    STORE_OK = 0,
    STORE_RETRY = 1,   /* 40001, 40P01, 23505 on a transfer id, or the connection broke
                          before COMMIT was sent: run the batch again */
    STORE_FAILED = 2,  /* nothing was committed: a hard error */
    STORE_UNKNOWN = 3, /* the connection broke after COMMIT was sent */
    /* 53200, the shared lock table is full: run the batch again with
     * store_batch_reads.lock_all, whose one lock needs one slot. */
    STORE_RETRY_LOCK_ALL = 4,
};

/* ---- connections ---- */

/* Opens a connection; NULL with err filled on failure. */
PGconn *store_connect(const char *conninfo, char *err, size_t errlen);
enum store_ensure_result { STORE_CONN_DOWN, STORE_CONN_SAME, STORE_CONN_NEW };
/* Makes *conn usable, replacing it if it broke or the server is closing
 * it. STORE_CONN_NEW: a new session, which has no prepared statements. */
enum store_ensure_result store_ensure(PGconn **conn, const char *conninfo);
/* store_ensure for a connection that runs the read queries: a new one
 * gets them prepared (a failure is left to their first use), so that no
 * first use makes PostgreSQL log a missing statement. */
enum store_ensure_result store_ensure_reads(PGconn **conn, const char *conninfo);

/* Names the running server: its postmaster's start time, which differs
 * after a restart, a restore or a failover, that is whenever the journal
 * may no longer be the one a session saw before. 0, or -1. */
int store_server_incarnation(PGconn *conn, char *out, size_t len);

/* Connections use generic plans, made from the table sizes of the moment
 * and kept until something (usually autovacuum's ANALYZE) invalidates
 * them: a plan made while a table was nearly empty may scan it where an
 * index is now right. Callers call this before using a connection; every
 * PLAN_REFRESH_NS it drops the plans, to be made again on their next use.
 * *planned_ns starts at 0. */
#define PLAN_REFRESH_NS (10 * 1000000000LL)
void store_refresh_plans(PGconn *conn, int64_t *planned_ns);
/* Whether store_ensure and store_refresh_plans would both do nothing: the
 * connection can be used without a round trip of its own first. */
bool store_ready_now(PGconn *conn, int64_t planned_ns);

/* A fixed set of connections for the request threads (reads, account
 * creation, health checks). */
struct store_pool {
    pthread_mutex_t lock;
    pthread_cond_t free_cond;
    const char *conninfo;
    PGconn **conns;
    bool *busy;
    int64_t *planned_ns; /* store_refresh_plans, per slot */
    int size;
};

int store_pool_init(struct store_pool *p, const char *conninfo, int size);
void store_pool_destroy(struct store_pool *p);
/* Returns a connected connection, or NULL when the database is unreachable
 * (the slot stays free). */
PGconn *store_pool_get(struct store_pool *p);
void store_pool_put(struct store_pool *p, PGconn *conn);

/* ---- schema ---- */

/* Creates or upgrades the ledger schema; safe when processes start at once. */
int store_migrate(PGconn *conn, int *version_out, char *err, size_t errlen);

/* ---- write path ---- */

/* The last error of the write path, for logs. */
struct store_error {
    char sqlstate[6];
    char message[256];
    bool id_exists; /* 23505 on a transfer id: run again, the id is then a replay */
};

/* Prepares the write path's statements; once per (re)connection, before
 * the first batch. 0, or -1 with err filled. */
int store_prepare_write_path(PGconn *conn, char *err, size_t errlen);

/* A batch that names more accounts than this takes one exclusive
 * batch-wide lock instead of one lock per account: it then runs alone,
 * excluding every other batch of every process (pg_write.c). */
#define STORE_LOCKED_ACCOUNTS_MAX 1024

/* A batch that creates this many transfers sends its journal rows by
 * COPY (binary, pg_copy.c), in a round trip of their own. */
#define STORE_COPY_MIN_TRANSFERS 200

/* What a batch reads in its first round trip. */
struct store_batch_reads {
    const char *const *account_ids; /* sorted by strcmp, unique */
    int n_accounts;
    struct core_account *accounts;   /* [n_accounts], filled where found */
    bool *found;                     /* [n_accounts] */
    const char *const *transfer_ids; /* sorted by strcmp, unique */
    int n_transfers;
    struct core_transfer *transfers; /* [n_transfers]: loaded, or zeroed */
    bool lock_all;                   /* take the exclusive batch-wide lock whatever the size */
};

/* BEGIN; lock and load the accounts; then, in a new statement after the
 * locks are held, the transfers that already exist. On STORE_OK the
 * transaction stays open for store_batch_write_commit. */
enum store_result store_batch_load(PGconn *conn, const struct store_batch_reads *rd,
                                   struct store_error *err);

/* A transfer the batch created or whose pending state it changed. */
struct store_transfer_ref {
    const char *ext_id;
    const struct core_transfer *t;
    const char *metadata_json; /* created transfers only; NULL for none */
};

/* A batch judged on cached account states (engine/account_cache.h)
 * skips store_batch_load: store_batch_write_commit then opens the
 * transaction and takes the same locks itself, in the round trip of the
 * write. Nothing checks the cached states but the journal: each account
 * is given an entry numbered from its cached seq + 1, and seq grows with
 * every change of an account's state, without gaps (SPEC section 2), so
 * if another process changed the account since, that (account, seq)
 * exists and the insert fails (23505, entries_pkey) before COMMIT. For a
 * journal behind the cache, the write also refuses an account whose seq
 * is not seq_before (23502), or whose row is missing (P0001). */
struct store_batch_locks {
    const char *const *account_ids; /* sorted by strcmp, unique */
    int n_accounts;
    bool lock_all;
};

/* A lock a batch that goes by COPY takes right after BEGIN and holds
 * until it ends; a batch sent ahead of it waits for it before locking
 * accounts (pg_write.c). pid: the PQbackendPID of the batch's
 * connection; ticket: differs between consecutive batches on it. */
struct store_baton {
    int pid;
    int ticket;
};

/* Everything a batch writes besides COMMIT. */
struct store_batch_writes {
    const struct store_batch_locks *lock_first; /* NULL: store_batch_load opened the transaction */
    /* Judged on the states that another batch, still committing on another
     * connection, leaves (with lock_first, and at least
     * STORE_COPY_MIN_TRANSFERS transfers): sent as BEGIN and its baton,
     * the journal rows by COPY, then, after the other batch's baton, the
     * locks and the write, and nothing more until store_batch_ahead_commit.
     * PostgreSQL copies the journal while the other batch still holds the
     * locks. It holds none of its own locks while copying, so it may wait
     * on another session's rows that way (a deadlock PostgreSQL detects). */
    bool ahead;
    struct store_baton baton;                   /* its own, if it goes by COPY with lock_first */
    struct store_baton after;                   /* ahead: the other batch's */
    const struct store_transfer_ref *transfers; /* created */
    int n_transfers;
    const struct store_transfer_ref *pending; /* pending state created or changed */
    int n_pending;
    const struct core_entry *entries;
    const int64_t *entry_account_id;       /* internal account id of entries[i] */
    const int64_t *entry_transfer_id;      /* internal transfer id, 0 if created now */
    const char *const *entry_transfer_ext; /* transfer ext_id of entries[i] */
    int n_entries;
    const struct core_account *accounts; /* written back where touched */
    const int64_t *seq_before;           /* [n_accounts] the seq each was judged on */
    int n_accounts;
};

/* Inserts the journal rows, records pending states, writes back the
 * touched accounts, and COMMITs (a batch without entries only commits).
 * STORE_UNKNOWN: the connection broke after COMMIT was sent. */
enum store_result store_batch_write_commit(PGconn *conn, const struct store_batch_writes *w,
                                           struct store_error *err);

/* store_batch_write_commit in halves, so that the caller can work while
 * the server writes and flushes: send returns once the pipeline is sent
 * (COMMIT included, unless ahead), receive reads how it ended. Nothing
 * else may use conn in between. */
struct store_write_sent {
    bool ahead, locks, one_by_one, write;
    int n_touched;
    bool baton;  /* it took its baton in a round trip of its own: a batch may go ahead of it */
    bool synced; /* the pipeline is complete: receive may read it */
};
/* STORE_OK: sent; else how it ended, with nothing to receive. */
enum store_result store_batch_write_send(PGconn *conn, const struct store_batch_writes *w,
                                         struct store_write_sent *s, struct store_error *err);
/* Ends a batch sent ahead with COMMIT, once the batch it was judged after
 * has committed; then receive. (One that must not commit is abandoned by
 * closing its connection: it may be waiting for locks.) */
void store_batch_ahead_commit(PGconn *conn, struct store_write_sent *s);
enum store_result store_batch_write_receive(PGconn *conn, const struct store_write_sent *s,
                                            struct store_error *err);
/* Rolls back whatever transaction is open on conn. */
void store_batch_rollback(PGconn *conn);

/* After STORE_UNKNOWN: on a fresh connection, did the transfer ext_id
 * commit? old_pid: the PQbackendPID of the session that sent COMMIT,
 * whose end it waits for first. Returns 1 yes, 0 no, -1 could not tell. */
int store_transfer_committed(PGconn *conn, int old_pid, const char *ext_id);

/* ---- reads and account creation ---- */

struct store_account {
    char ext_id[ID_LEN_MAX + 1];
    char currency[CURRENCY_LEN_MAX + 1];
    bool min_unbounded;
    i128 min_balance;
    int n_cost_currencies;
    char cost_currencies[COST_CURRENCIES_MAX][CURRENCY_LEN_MAX + 1];
    char *metadata_json; /* malloc'd, NULL for none */
    i128 balance, pending_out, pending_in;
    int64_t seq;
    char *avg_cost_json; /* malloc'd, NULL for none */
    int64_t created_us;
};

void store_account_free(struct store_account *a);

enum store_create_outcome {
    STORE_CREATED,
    STORE_EXISTS_SAME,
    STORE_EXISTS_DIFFERENT,
    STORE_CREATE_FAILED,
};

/* Inserts the account, or loads the existing one into *out. metadata
 * equality is judged by PostgreSQL's jsonb equality; the rest by core. */
enum store_create_outcome store_create_account(PGconn *conn, const struct store_account *in,
                                               struct store_account *out);

/* 1 found, 0 not found, -1 database error. */
int store_get_account(PGconn *conn, const char *ext_id, struct store_account *out);

struct store_balance_at {
    i128 balance;
    int64_t seq;
    char *avg_cost_json; /* malloc'd, NULL for none */
};

/* State after the last entry with effective_at <= at_us. 1, 0 no account, -1 error. */
int store_balance_at(PGconn *conn, const char *ext_id, int64_t at_us, struct store_balance_at *out);

struct store_entry {
    int64_t seq;
    char transfer_id[ID_LEN_MAX + 1];
    char kind[16];
    i128 amount, pending_change, balance, pending_out, pending_in;
    char *avg_cost_json;
    int64_t effective_us, created_us;
};

/* Entries with seq > after_seq, at most limit + 1 of them (so the caller
 * can tell whether more follow). *out is malloc'd. 1, 0 no account, -1. */
int store_list_entries(PGconn *conn, const char *ext_id, int64_t after_seq, int limit,
                       struct store_entry **out, int *n_out);
void store_entries_free(struct store_entry *e, int n);

struct store_transfer {
    char ext_id[ID_LEN_MAX + 1];
    char from[ID_LEN_MAX + 1], to[ID_LEN_MAX + 1];
    struct core_transfer t;
    char *metadata_json;
};

/* 1 found, 0 not found, -1 error. */
int store_get_transfer(PGconn *conn, const char *ext_id, struct store_transfer *out);

/* The accounts of existing transfers (immutable, so no lock is needed):
 * found[i] tells whether ids[i] exists. 0, or -1 on a database error. */
int store_transfer_accounts(PGconn *conn, const char *const *ids, int n,
                            char (*from)[ID_LEN_MAX + 1], char (*to)[ID_LEN_MAX + 1], bool *found);

/* Up to limit pending transfers whose deadline has passed, oldest first.
 * Returns how many, or -1 on a database error. */
int store_due_pending(PGconn *conn, int limit, char (*ids)[ID_LEN_MAX + 1]);

/* true when a trivial query succeeds. */
bool store_ping(PGconn *conn);

#endif
