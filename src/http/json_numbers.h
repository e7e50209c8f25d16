/*
 * json_numbers.h - the numbers of a request body that jansson cannot hold
 * exactly: its integers are int64 and its other numbers doubles.
 *
 * SPEC: amounts are signed 128-bit and "requests accept a JSON integer or
 * a string of decimal digits". When jansson refuses a body for a number it
 * cannot hold, the http layer asks json_numbers_quote_amounts to put
 * quotes around the numbers where figures are, and parses again:
 *   - the value of "amount" or "min_balance" in the request object or in
 *     an item of a batch's "transfers": any number but an int64 integer
 *     (a string of the same text is judged the same by the amount parser,
 *     so 2^100 is read exactly and 1e400 is invalid_amount);
 *   - a member of such an object's "unit_cost": integers beyond int64.
 * Numbers anywhere else (metadata, timeout_s) are left as they are, and
 * jansson refuses them as before.
 *
 * Metadata is stored as PostgreSQL jsonb, which keeps any number exactly;
 * a number jansson read as a double it would keep as that double, not as
 * sent. json_numbers_metadata_inexact finds such a number, so that the
 * request is refused rather than stored changed.
 *
 * Both are lexical passes over the text, which jansson has already judged
 * (or judges next): they find where numbers are by keys as written, so a
 * key spelt with escapes ("\u0061mount") is not recognised.
 */
#ifndef LEDGER_HTTP_JSON_NUMBERS_H
#define LEDGER_HTTP_JSON_NUMBERS_H

#include <stdbool.h>
#include <stddef.h>

/* Returns a NUL-terminated copy of body with those literals quoted (its
 * length in *out_len), to be freed; NULL if there is none to quote (or no
 * memory). */
char *json_numbers_quote_amounts(const char *body, size_t len, size_t *out_len);

/* Whether a number in the "metadata" of the request object or of a batch
 * item has a value that no double has (more significant digits than a
 * double holds, or a magnitude it cannot reach); if so, *at and *at_len
 * give the first such literal in body. */
bool json_numbers_metadata_inexact(const char *body, size_t len, const char **at, size_t *at_len);

#endif
