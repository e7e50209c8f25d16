/*
 * validate.h - the syntax rules of SPEC section 2: ids, currency codes and
 * RFC 3339 timestamps. Pure functions.
 */
#ifndef LEDGER_CORE_VALIDATE_H
#define LEDGER_CORE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_LEN_MAX       64
#define CURRENCY_LEN_MAX 16
#define METADATA_MAX     4096
/* "2026-11-22T10:00:00.123456Z" plus NUL. */
#define TIME_TEXT_MAX 28

/* 1..64 characters of A-Za-z0-9._:@- */
bool valid_id(const char *s, size_t len);
/* 1..16 characters of A-Z0-9_ */
bool valid_currency(const char *s, size_t len);

/* Parses an RFC 3339 date-time with any offset and 0..6 fraction digits into
 * microseconds since 1970-01-01T00:00:00Z. Returns false, leaving *us_out
 * unchanged, on anything else. */
bool time_parse_rfc3339(const char *s, size_t len, int64_t *us_out);
/* Formats as UTC with exactly six fraction digits; returns the length. */
size_t time_format_rfc3339(int64_t us, char *buf);

#endif
