/*
 * big_amounts.h - lets requests carry amounts beyond 64 bits as JSON
 * integers, which jansson cannot hold (its integers are int64).
 *
 * SPEC: amounts are signed 128-bit and "requests accept a JSON integer or
 * a string of decimal digits". When jansson refuses a body for a too-big
 * integer, the http layer asks this pass to put quotes around every integer
 * literal beyond int64 that is the value of "amount" or "min_balance", or
 * of a member of "unit_cost", in the request object (or in an item of a
 * batch's "transfers"), and parses again: such a figure is then read
 * exactly like the same digits sent as a string. Big integers anywhere
 * else (metadata, timeout_s) are left as they are, and jansson refuses
 * them as before.
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
