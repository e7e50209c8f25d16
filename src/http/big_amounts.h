/*
 * big_amounts.h - lets requests carry amounts beyond 64 bits as JSON
 * integers, which jansson cannot hold (its integers are int64).
 *
 * SPEC: amounts are signed 128-bit and "requests accept a JSON integer or
 * a string of decimal digits". When jansson refuses a body for a number it
 * cannot hold, the http layer asks this pass to put quotes around the
 * numbers where figures are, and parses again:
 *   - the value of "amount" or "min_balance" in the request object or in
 *     an item of a batch's "transfers": any number but an int64 integer
 *     (a string of the same text is judged the same by the amount parser,
 *     so 2^100 is read exactly and 1e400 is invalid_amount);
 *   - a member of such an object's "unit_cost": integers beyond int64.
 * Numbers anywhere else (metadata, timeout_s) are left as they are, and
 * jansson refuses them as before.
 */
#ifndef LEDGER_HTTP_BIG_AMOUNTS_H
#define LEDGER_HTTP_BIG_AMOUNTS_H

#include <stdbool.h>
#include <stddef.h>

/* Returns a NUL-terminated copy of body with those literals quoted (its
 * length in *out_len), to be freed; NULL if there is none to quote (or no
 * memory). */
char *big_amounts_quote(const char *body, size_t len, size_t *out_len);

#endif
