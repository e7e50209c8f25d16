/*
 * pg_binary.h - rows in PostgreSQL's binary COPY format.
 *
 * Used by the store for large batches (pg_copy.c) and by ledger-bench's
 * ceiling, so that both write rows the same way, and for the batch write's
 * array parameters (pg_write.c). Values are appended as PostgreSQL's
 * binary send functions produce them: network byte order, timestamps in
 * microseconds since 2000-01-01 UTC; each after its length, which is how
 * both a COPY row and an array hold their values.
 */
#ifndef LEDGER_STORE_PG_BINARY_H
#define LEDGER_STORE_PG_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/amount.h"

/* A growable byte buffer; aborts on out-of-memory. */
struct pg_binary {
    char *data;
    size_t len, cap;
};

void pgb_free(struct pg_binary *b);
/* Empties b and starts a COPY stream: the signature and header. */
void pgb_begin(struct pg_binary *b);
/* Ends the COPY stream. */
void pgb_end(struct pg_binary *b);
/* Starts a row of n fields; the next n calls below fill it. */
void pgb_row(struct pg_binary *b, int n);

/* One-dimensional arrays in array_send's format: pgb_array_begin empties b
 * for an array of elem_oid, the calls below append its values, and
 * pgb_array_end writes how many there are and whether any is NULL. */
#define PGB_OID_BOOL        16
#define PGB_OID_INT8        20
#define PGB_OID_TEXT        25
#define PGB_OID_TIMESTAMPTZ 1184
#define PGB_OID_NUMERIC     1700
void pgb_array_begin(struct pg_binary *b, uint32_t elem_oid);
void pgb_array_end(struct pg_binary *b, int n, bool has_null);

void pgb_null(struct pg_binary *b);
void pgb_int8(struct pg_binary *b, int64_t v);
void pgb_bool(struct pg_binary *b, bool v);
void pgb_text(struct pg_binary *b, const char *s); /* text, and enum labels */
void pgb_jsonb(struct pg_binary *b, const char *json);
void pgb_timestamptz(struct pg_binary *b, int64_t unix_us);
void pgb_numeric(struct pg_binary *b, i128 v);

#endif
