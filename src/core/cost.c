/*
 * cost.c - exact mean acquisition cost.
 *
 * The weighted mean needs b*m + q*u, up to about 2^254: it is computed in
 * a 256-bit unsigned integer made of two unsigned __int128 halves, divided
 * by b + q (< 2^128) with shift-subtract long division, and rounded half
 * to even. No floating point, no allocation. tests/unit checks it against
 * GMP.
 */
#include <stdint.h>

#include "cost.h"
#include "assert.h"

typedef unsigned __int128 u128;

struct u256 {
    u128 hi, lo;
};

static const i128 SCALE = (i128)1000000000000000000LL; /* 10^18 */

bool cost_parse(const char *s, size_t len, i128 *scaled_out)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    i128 v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (s[i] - '0');
        i++;
        if (++int_digits > COST_INT_DIGITS_MAX)
            return false;
    }
    if (int_digits == 0)
        return false;
    if (i < len && s[i] == '.') {
        i++;
        /* A 19th fraction digit stops the loop, before v could overflow, and
         * then fails the i != len check below. */
        while (i < len && s[i] >= '0' && s[i] <= '9' && frac_digits < COST_SCALE_DIGITS) {
            v = v * 10 + (s[i] - '0');
            i++;
            frac_digits++;
        }
        if (frac_digits == 0)
            return false;
    }
    if (i != len)
        return false;
    for (size_t k = frac_digits; k < COST_SCALE_DIGITS; k++)
        v *= 10;
    *scaled_out = v;
    return true;
}

size_t cost_format(i128 scaled, char *buf)
{
    LEDGER_ASSERT(scaled >= 0);
    char int_part[AMOUNT_TEXT_MAX];
    size_t n = amount_format(scaled / SCALE, int_part);
    i128 frac = scaled % SCALE;
    size_t len = 0;
    for (size_t k = 0; k < n; k++)
        buf[len++] = int_part[k];
    buf[len++] = '.';
    for (int k = COST_SCALE_DIGITS - 1; k >= 0; k--) {
        buf[len + (size_t)k] = (char)('0' + (int)(frac % 10));
        frac /= 10;
    }
    len += COST_SCALE_DIGITS;
    buf[len] = '\0';
    return len;
}

static struct u256 mul_128(u128 a, u128 b)
{
    uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64);
    uint64_t b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
    u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1;
    u128 p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
    u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;
    struct u256 r;
    r.lo = (p00 & (u128)UINT64_MAX) | (mid << 64);
    r.hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    return r;
}

static struct u256 add_256(struct u256 a, struct u256 b)
{
    struct u256 r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo);
    return r;
}

/* n / d with d > 0 and the quotient known to fit in 128 bits. */
static u128 divmod_256(struct u256 n, u128 d, u128 *rem)
{
    u128 r = 0, q = 0;
    for (int bit = 255; bit >= 0; bit--) {
        u128 top = r >> 127; /* r << 1 would lose this bit */
        r = (r << 1) | (bit >= 128 ? (n.hi >> (bit - 128)) & 1 : (n.lo >> bit) & 1);
        q <<= 1;
        if (top || r >= d) {
            r -= d;
            q |= 1;
        }
    }
    *rem = r;
    return q;
}

int cost_mean_after_credit(i128 b, i128 m, i128 q, i128 u, i128 *out)
{
    LEDGER_ASSERT(q > 0 && m >= 0 && u >= 0);
    if (b <= 0) {
        *out = u;
        return 0;
    }
    i128 total = b;
    if (amount_add(&total, q))
        return 1;
    struct u256 num = add_256(mul_128((u128)b, (u128)m), mul_128((u128)q, (u128)u));
    u128 rem;
    u128 quot = divmod_256(num, (u128)total, &rem);
    /* Half-even: compare the remainder with half the divisor, exactly. */
    u128 half_floor = (u128)total / 2;
    bool odd_divisor = ((u128)total & 1) != 0;
    /* With an odd divisor rem == (d-1)/2 is below the half: no tie. */
    if (rem > half_floor || (rem == half_floor && !odd_divisor && (quot & 1)))
        quot += 1;
    /* The mean lies between m and u, so it fits an i128. */
    LEDGER_ASSERT(quot <= (u128)AMOUNT_MAX);
    *out = (i128)quot;
    return 0;
}
