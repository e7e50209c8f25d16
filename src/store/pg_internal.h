/*
 * pg_internal.h - helpers shared by the store's files; not part of store.h.
 */
#ifndef LEDGER_STORE_PG_INTERNAL_H
#define LEDGER_STORE_PG_INTERNAL_H

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
void sbuf_put_i64(struct sbuf *b, int64_t v);
void sbuf_put_amount(struct sbuf *b, i128 v);
/* Appends s as a double-quoted array element, escaping '"' and '\'. */
void sbuf_put_quoted(struct sbuf *b, const char *s);

/* Parses a numeric(39,0) column; aborts through LEDGER_ASSERT if the
 * database holds something that is not an i128 (a bug, not input). */
i128 pg_get_amount(const PGresult *res, int row, int col);
int64_t pg_get_i64(const PGresult *res, int row, int col);

/* Fills err from a failed result and classifies it by SQLSTATE. */
enum store_result pg_classify(PGconn *conn, const PGresult *res, struct store_error *err);

#endif
