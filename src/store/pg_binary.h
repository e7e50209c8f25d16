/*
 * pg_binary.h - rows in PostgreSQL's binary COPY format.
 *
 * Used by the store for large batches (pg_copy.c) and by ledger-bench's
 * ceiling, so that both write rows the same way. Values are appended as
 * PostgreSQL's binary send functions produce them: network byte order,
 * timestamps in microseconds since 2000-01-01 UTC.
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

void pgb_null(struct pg_binary *b);
void pgb_int8(struct pg_binary *b, int64_t v);
void pgb_bool(struct pg_binary *b, bool v);
void pgb_text(struct pg_binary *b, const char *s); /* text, and enum labels */
void pgb_jsonb(struct pg_binary *b, const char *json);
void pgb_timestamptz(struct pg_binary *b, int64_t unix_us);
void pgb_numeric(struct pg_binary *b, i128 v);

#endif
