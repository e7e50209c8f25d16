/*
 * cost.h - mean acquisition cost (SPEC section 5): exact decimals with 18
 * fraction digits, held as i128 scaled by 10^18, and the mean formula.
 */
#ifndef LEDGER_CORE_COST_H
#define LEDGER_CORE_COST_H

#include <stdbool.h>
#include <stddef.h>

#include "amount.h"

#define COST_SCALE_DIGITS 18
/* Integer digits of a unit cost: with 18 fraction digits the scaled value
 * stays below 10^38 < 2^127. */
#define COST_INT_DIGITS_MAX 20
/* "99999999999999999999.999999999999999999" plus NUL. */
#define COST_TEXT_MAX 48

/* Parses a non-negative decimal "123", "123.45" (1..18 fraction digits,
 * 1..20 integer digits) into value * 10^18. false on anything else. */
bool cost_parse(const char *s, size_t len, i128 *scaled_out);
/* Writes "I.FFFFFFFFFFFFFFFFFF" (always 18 fraction digits); returns the
 * length. scaled must be >= 0. */
size_t cost_format(i128 scaled, char *buf);

/*
 * The mean after crediting q units at unit cost u to a position of b units
 * at mean m (m, u scaled by 10^18, >= 0, < 10^38; q > 0):
 *   (b*m + q*u) / (b + q) rounded half-even, when b > 0; else u.
 * Exact: intermediate products use 256-bit arithmetic. Returns 0, or 1
 * when b + q leaves the i128 range (*out unchanged).
 */
int cost_mean_after_credit(i128 b, i128 m, i128 q, i128 u, i128 *out);

#endif
