/*
 * amount.h - signed 128-bit amounts in a currency's minor unit.
 *
 * Every balance and amount in ledgerd is an i128. All arithmetic on them goes
 * through the checked helpers below (cf. SQLite's sqlite3AddInt64): on
 * overflow they return non-zero and leave the target unchanged, so a caller
 * can validate a whole transfer before mutating anything.
 */
#ifndef LEDGER_CORE_AMOUNT_H
#define LEDGER_CORE_AMOUNT_H

#include <stdbool.h>
#include <stddef.h>

typedef __int128 i128;

#define AMOUNT_MAX ((i128)(((unsigned __int128)1 << 127) - 1))
#define AMOUNT_MIN (-AMOUNT_MAX - 1)

/* Longest decimal text of an i128: sign + 39 digits + NUL. */
#define AMOUNT_TEXT_MAX 41

enum amount_parse_result {
    AMOUNT_PARSE_OK = 0,
    AMOUNT_PARSE_SYNTAX = 1, /* not an optional '-' followed by 1..n decimal digits */
    AMOUNT_PARSE_RANGE = 2,  /* a valid integer outside the signed 128-bit range */
};

/* *a += b. Returns 0, or 1 on overflow with *a unchanged. */
int amount_add(i128 *a, i128 b);
/* *a -= b. Returns 0, or 1 on overflow with *a unchanged. */
int amount_sub(i128 *a, i128 b);

/* Parses exactly len bytes of s; *out is written only on AMOUNT_PARSE_OK. */
enum amount_parse_result amount_parse(const char *s, size_t len, i128 *out);

/* Writes the decimal text of v into buf (at least AMOUNT_TEXT_MAX bytes);
 * returns its length. */
size_t amount_format(i128 v, char *buf);

#endif
