/*
 * pg_internal.h - helpers shared by the store's files; not part of store.h.
 */
#ifndef LEDGER_STORE_PG_INTERNAL_H
#define LEDGER_STORE_PG_INTERNAL_H

#include "pg_binary.h"
#include "store.h"

/* Timestamps travel as int64 microseconds since the Unix epoch. */
#define SQL_US_TO_TS(x) "('epoch'::timestamptz + (" x ") * interval '1 microsecond')"
#define SQL_TS_TO_US(x) "(extract(epoch FROM " x ") * 1000000)::bigint"

/* A growable text buffer for array literals; aborts on out-of-memory. */
struct sbuf {
    char *data;
    size_t len, cap;
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_puts(struct sbuf *b, const char *s);
/* Appends s as a double-quoted array element, escaping '"' and '\'. */
void sbuf_put_quoted(struct sbuf *b, const char *s);

/* Writes c into b as {"USD":"1.500000000000000000",...} by put (pgb_text
 * or pgb_jsonb), or a NULL when it tracks nothing; false for the NULL.
 * Codes and decimals need no JSON escaping. */
bool pg_put_cost(struct pg_binary *b, const struct core_cost *c,
                 void (*put)(struct pg_binary *, const char *));
/* Fills c from a text[] of currency codes and an aligned text[] of
 * decimals, as array literals ("{BRL,USD}", "{1.5,2}"). */
void pg_parse_cost(const char *currencies, const char *values, struct core_cost *c);

/* The columns and joins that load a transfer (table alias t) with its
 * balances after it and its pending state; pg_get_transfer reads them
 * starting at column col. */
/* clang-format off */
#define PG_TRANSFER_COLUMNS                                                    \
    "t.id, t.from_account_id, t.to_account_id, t.amount, t.currency,"          \
    " t.pending, t.from_seq, t.to_seq, fe.balance, te.balance, "               \
    SQL_TS_TO_US("t.created_at") ", " SQL_TS_TO_US("t.effective_at") ","       \
    " p.state, " SQL_TS_TO_US("p.deadline") ", p.posted_amount,"               \
    " p.settle_from_seq, p.settle_to_seq, sfe.balance, ste.balance, "          \
    SQL_TS_TO_US("p.settled_at") ", t.timeout_s,"                              \
    " (SELECT array_agg(k ORDER BY k)"                                         \
    "   FROM jsonb_object_keys(t.unit_cost) k),"                               \
    " (SELECT array_agg(t.unit_cost ->> k ORDER BY k)"                         \
    "   FROM jsonb_object_keys(t.unit_cost) k)"
#define PG_TRANSFER_JOINS                                                      \
    " JOIN ledger.entries fe"                                                  \
    "  ON fe.account_id = t.from_account_id AND fe.seq = t.from_seq"           \
    " JOIN ledger.entries te"                                                  \
    "  ON te.account_id = t.to_account_id AND te.seq = t.to_seq"               \
    " LEFT JOIN ledger.pending_transfers p ON p.transfer_id = t.id"            \
    " LEFT JOIN ledger.entries sfe"                                            \
    "  ON sfe.account_id = t.from_account_id AND sfe.seq = p.settle_from_seq"  \
    " LEFT JOIN ledger.entries ste"                                            \
    "  ON ste.account_id = t.to_account_id AND ste.seq = p.settle_to_seq"
/* clang-format on */
void pg_get_transfer(const PGresult *res, int row, int col, struct core_transfer *t);

/* Parses a numeric(39,0) column; aborts through LEDGER_ASSERT if the
 * database holds something that is not an i128 (a bug, not input). */
i128 pg_get_amount(const PGresult *res, int row, int col);
int64_t pg_get_i64(const PGresult *res, int row, int col);

/* Reserves w->n_transfers ids for the transfers the batch creates (ids[i]
 * for w->transfers[i]) and COPYs their rows and the batch's entries, in
 * the transaction open on conn (which must not be in pipeline mode). */
enum store_result pg_copy_journal(PGconn *conn, const struct store_batch_writes *w, int64_t *ids,
                                  struct store_error *err);
/* The id reserved for created transfer ext_id (w->transfers is sorted by
 * ext_id). */
int64_t pg_created_id(const struct store_batch_writes *w, const int64_t *ids, const char *ext_id);

/* Fills err from a failed result and classifies it by SQLSTATE. */
enum store_result pg_classify(PGconn *conn, const PGresult *res, struct store_error *err);

#endif
