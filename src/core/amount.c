/*
 * amount.c - checked i128 arithmetic and its decimal text form.
 *
 * Pure functions: no I/O, no allocation.
 */
#include "amount.h"

int amount_add(i128 *a, i128 b)
{
    i128 r;
    if (__builtin_add_overflow(*a, b, &r))
        return 1;
    *a = r;
    return 0;
}

int amount_sub(i128 *a, i128 b)
{
    i128 r;
    if (__builtin_sub_overflow(*a, b, &r))
        return 1;
    *a = r;
    return 0;
}

enum amount_parse_result amount_parse(const char *s, size_t len, i128 *out)
{
    size_t i = 0;
    bool negative = false;
    if (len > 0 && s[0] == '-') {
        negative = true;
        i = 1;
    }
    if (i == len)
        return AMOUNT_PARSE_SYNTAX;
    bool overflow = false;
    i128 v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return AMOUNT_PARSE_SYNTAX;
        int digit = s[i] - '0';
        /* Accumulate negatively: AMOUNT_MIN has no positive counterpart. */
        if (!overflow &&
            (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, digit, &v)))
            overflow = true;
    }
    if (overflow)
        return AMOUNT_PARSE_RANGE;
    if (!negative) {
        if (v == AMOUNT_MIN)
            return AMOUNT_PARSE_RANGE;
        v = -v;
    }
    *out = v;
    return AMOUNT_PARSE_OK;
}

size_t amount_format(i128 v, char *buf)
{
    char tmp[AMOUNT_TEXT_MAX];
    size_t n = 0;
    bool negative = v < 0;
    /* Work on the non-positive value so AMOUNT_MIN formats correctly. */
    if (!negative)
        v = -v;
    do {
        tmp[n++] = (char)('0' - (int)(v % 10));
        v /= 10;
    } while (v != 0);
    size_t len = 0;
    if (negative)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}
