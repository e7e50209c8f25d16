/*
 * test_cost.c - mean acquisition cost arithmetic (SPEC section 5): the
 * decimal text of a unit cost (cost_parse, cost_format) and the half-even
 * weighted mean (cost_mean_after_credit), at its edges and against GMP.
 *
 * The randomized cross-check takes its seed from LEDGER_SEED, else from the
 * clock, and prints it first ("seed=N") so that a failure can be replayed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmp.h>

#include "tests.h"

#include "core/cost.h"

typedef unsigned __int128 u128;

#define E18 ((i128)1000000000000000000LL)
/* 10^38 - 1: the largest scaled unit cost "99999999999999999999.999999999999999999". */
#define COST_MAX (E18 * E18 * 100 - 1)
#define P2(n)    ((i128)((u128)1 << (n)))

/* ---- cost_parse ---- */

static bool parse(const char *s, i128 *out)
{
    return cost_parse(s, strlen(s), out);
}

static void test_cost_parse_valid(void **state)
{
    static const struct {
        const char *text;
        i128 want;
    } rows[] = {
        {"0", 0},
        {"1", E18},
        {"1.5", E18 + E18 / 2},
        {"0.5", E18 / 2},
        {"12.50", 12 * E18 + E18 / 2},
        {"007", 7 * E18},
        {"0.0", 0},
        {"0.000000000000000000", 0},
        {"0.000000000000000001", 1},
        {"1.123456789012345678", (i128)1123456789012345678LL},
        {"123.45", 123 * E18 + 45 * E18 / 100},
        {"18446744073709551616", P2(64) * E18}, /* 2^64 */
        {"10000000000000000000", E18 * E18 * 10},
        {"99999999999999999999", (E18 * 100 - 1) * E18},
        {"99999999999999999999.999999999999999999", COST_MAX},
        {"00000000000000000000.5", E18 / 2}, /* 20 integer digits, leading zeros */
        {"00000000000000000001.000000000000000001", E18 + 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        i128 v = -12345;
        if (!parse(rows[i].text, &v))
            fail_msg("\"%s\" refused", rows[i].text);
        if (v != rows[i].want) {
            char got[AMOUNT_TEXT_MAX], want[AMOUNT_TEXT_MAX];
            amount_format(v, got);
            amount_format(rows[i].want, want);
            fail_msg("\"%s\": got %s, want %s", rows[i].text, got, want);
        }
    }
}

static void test_cost_parse_invalid(void **state)
{
    static const char *const rows[] = {
        "",
        ".",
        "1.",
        ".5",
        "-1",
        "-0",
        "+1",
        "1e3",
        "1E3",
        "1.0000000000000000000",                    /* 19 fraction digits */
        "0.0000000000000000001",                    /* 19 fraction digits, tiny */
        "99999999999999999999.9999999999999999999", /* 20 + 19 digits: must not overflow */
        "100000000000000000000",                    /* 21 integer digits */
        "000000000000000000001",                    /* 21 integer digits, leading zeros */
        "999999999999999999999.5",
        " 1",
        "1 ",
        " ",
        "1 .5",
        "1. 5",
        "1 5",
        "1,5",
        "1..5",
        "1.5.",
        "1.2.3",
        "0x10",
        "abc",
        "1a",
        "NaN",
        "inf",
        "\t1",
        "1\n",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        i128 v = 0;
        if (parse(rows[i], &v))
            fail_msg("\"%s\" accepted", rows[i]);
    }
}

/* Exactly len bytes are read: no NUL needed, none allowed inside. */
static void test_cost_parse_len(void **state)
{
    i128 v = 0;
    assert_true(cost_parse("1.5xyz", 3, &v));
    assert_i128_equal(v, E18 + E18 / 2);
    assert_true(cost_parse("12", 1, &v));
    assert_i128_equal(v, E18);
    /* A '.' just past len is not looked at. */
    assert_true(cost_parse("1.5", 1, &v));
    assert_i128_equal(v, E18);
    assert_false(cost_parse("1.5", 2, &v)); /* "1." */
    assert_false(cost_parse("1\0", 2, &v));
    assert_false(cost_parse("7", 0, &v));
    /* A buffer with no NUL at all (ASan would catch a read past it). */
    char *buf = malloc(3);
    assert_non_null(buf);
    memcpy(buf, "4.2", 3);
    assert_true(cost_parse(buf, 3, &v));
    assert_i128_equal(v, 4 * E18 + E18 / 5);
    free(buf);
}

/* ---- cost_format ---- */

static void test_cost_format(void **state)
{
    static const struct {
        i128 value;
        const char *want;
    } rows[] = {
        {0, "0.000000000000000000"},
        {1, "0.000000000000000001"},
        {10, "0.000000000000000010"},
        {E18 - 1, "0.999999999999999999"},
        {E18, "1.000000000000000000"},
        {E18 + 1, "1.000000000000000001"},
        {E18 + E18 / 2, "1.500000000000000000"},
        {123 * E18 + 45 * E18 / 100, "123.450000000000000000"},
        {(E18 * 100 - 1) * E18, "99999999999999999999.000000000000000000"},
        {COST_MAX, "99999999999999999999.999999999999999999"},
        {COST_MAX + 1, "100000000000000000000.000000000000000000"},
        {AMOUNT_MAX, "170141183460469231731.687303715884105727"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[COST_TEXT_MAX + 8];
        memset(buf, 'x', sizeof buf);
        size_t n = cost_format(rows[i].value, buf);
        assert_string_equal(buf, rows[i].want);
        assert_int_equal(n, strlen(rows[i].want));
    }
    /* The longest unit cost fits COST_TEXT_MAX with its NUL. */
    char buf[COST_TEXT_MAX];
    assert_true(cost_format(COST_MAX, buf) + 1 <= COST_TEXT_MAX);
}

/* ---- deterministic PRNG (splitmix64) for the randomized tests ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static u128 rnd128(void)
{
    return ((u128)rnd() << 64) | rnd();
}

/* A value in [0, 2^bits), bits in 0..127. */
static i128 rnd_bits(int bits)
{
    if (bits == 0)
        return 0;
    return (i128)(rnd128() >> (128 - bits));
}

/* A value in [lo, hi], lo <= hi, both >= 0. */
static i128 rnd_range(i128 lo, i128 hi)
{
    u128 span = (u128)(hi - lo) + 1;
    return lo + (i128)(rnd128() % span);
}

/* A unit cost or mean in [0, 10^38): often small, often near the top,
 * often with few digits, sometimes the edges. */
static i128 rnd_cost(void)
{
    switch (rnd() % 6) {
    case 0:
        return rnd_range(0, 20);
    case 1:
        return COST_MAX - rnd_range(0, 20);
    case 2:
        return rnd_range(0, COST_MAX);
    case 3:
        return rnd_range(0, 1000000) * E18 / 100; /* cents */
    default: {
        i128 v = rnd_bits((int)(rnd() % 127));
        return v > COST_MAX ? v % (COST_MAX + 1) : v;
    }
    }
}

static unsigned pick_seed(void)
{
    const char *env = getenv("LEDGER_SEED");
    if (env != NULL && *env != '\0')
        return (unsigned)strtoul(env, NULL, 10);
    return (unsigned)time(NULL);
}

static void test_cost_round_trip(void **state)
{
    /* Text -> value -> canonical text. */
    static const struct {
        const char *text, *canonical;
    } rows[] = {
        {"0", "0.000000000000000000"},
        {"1.5", "1.500000000000000000"},
        {"007.010", "7.010000000000000000"},
        {"00000000000000000000.5", "0.500000000000000000"},
        {"99999999999999999999.999999999999999999", "99999999999999999999.999999999999999999"},
        {"0.000000000000000001", "0.000000000000000001"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        i128 v;
        assert_true(parse(rows[i].text, &v));
        char buf[COST_TEXT_MAX];
        cost_format(v, buf);
        assert_string_equal(buf, rows[i].canonical);
    }
    /* Value -> text -> the same value, over [0, 10^38). */
    rng_state = 12345;
    for (int i = 0; i < 20000; i++) {
        i128 v = i < 3 ? (i128[]){0, 1, COST_MAX}[i] : rnd_cost();
        char buf[COST_TEXT_MAX];
        size_t n = cost_format(v, buf);
        assert_int_equal(n, strlen(buf));
        assert_int_equal(buf[n - 19], '.');
        i128 back = -1;
        if (!cost_parse(buf, n, &back))
            fail_msg("cost_format gave \"%s\", which cost_parse refuses", buf);
        assert_i128_equal(back, v);
    }
}

/* ---- cost_mean_after_credit ---- */

/* Calls cost_mean_after_credit with a sentinel in *out and checks the
 * result; on overflow (want_rc 1) *out must keep the sentinel. */
static void check_mean(i128 b, i128 m, i128 q, i128 u, int want_rc, i128 want, const char *file,
                       int line)
{
    const i128 sentinel = -777;
    i128 out = sentinel;
    int rc = cost_mean_after_credit(b, m, q, u, &out);
    if (rc != want_rc) {
        print_error("cost_mean_after_credit returned %d, want %d\n", rc, want_rc);
        _fail(file, line);
    }
    check_i128_equal(out, want_rc == 0 ? want : sentinel, "mean", "want", file, line);
}
#define assert_mean(b, m, q, u, want)    check_mean((b), (m), (q), (u), 0, (want), __FILE__, __LINE__)
#define assert_mean_overflow(b, m, q, u) check_mean((b), (m), (q), (u), 1, 0, __FILE__, __LINE__)

static void test_mean_no_prior_position(void **state)
{
    /* b <= 0: the mean is u, whatever m and q, even where b + q would
     * overflow or b * m would be huge. */
    const i128 bs[] = {0, -1, -1000, AMOUNT_MIN};
    const i128 qs[] = {1, 7, AMOUNT_MAX};
    const i128 ms[] = {0, 5, COST_MAX};
    const i128 us[] = {0, 1, 3 * E18, COST_MAX};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
        for (size_t j = 0; j < sizeof qs / sizeof qs[0]; j++)
            for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++)
                for (size_t l = 0; l < sizeof us / sizeof us[0]; l++)
                    assert_mean(bs[i], ms[k], qs[j], us[l], us[l]);
}

static void test_mean_exact(void **state)
{
    /* SPEC section 5's formula where it divides exactly. */
    assert_mean(10, 2 * E18, 30, 4 * E18, 3 * E18 + E18 / 2); /* 140/40 = 3.5 */
    assert_mean(1, 0, 1, 2 * E18, E18);
    assert_mean(3, E18, 1, E18, E18);
    assert_mean(5, 7, 5, 7, 7);
    assert_mean(1, COST_MAX, 1, COST_MAX, COST_MAX);
    assert_mean(AMOUNT_MAX - 1, COST_MAX, 1, COST_MAX, COST_MAX);
    assert_mean(1, COST_MAX, AMOUNT_MAX - 1, COST_MAX, COST_MAX);
    assert_mean(AMOUNT_MAX - 1, 0, 1, 0, 0);
    assert_mean(1, 0, 1, 0, 0);
    /* m = u: always exactly m, whatever the weights. */
    assert_mean(P2(126), 123456789, P2(126) - 1, 123456789, 123456789);
    assert_mean(3, 4 * E18 + 1, 1000000007, 4 * E18 + 1, 4 * E18 + 1);
}

static void test_mean_half_even_ties(void **state)
{
    /* Values are raw (scaled) units; every row is an exact .5 tie.
     * Round down to an even quotient: */
    assert_mean(1, 0, 1, 1, 0); /* 1/2 = 0.5 -> 0 */
    assert_mean(1, 0, 1, 5, 2); /* 5/2 = 2.5 -> 2 */
    assert_mean(1, 1, 1, 4, 2); /* 5/2 = 2.5 -> 2 */
    assert_mean(3, 1, 1, 7, 2); /* (3+7)/4 = 2.5 -> 2 */
    assert_mean(3, 0, 1, 2, 0); /* 2/4 = 0.5 -> 0 */
    assert_mean(1, 4, 1, 5, 4); /* 9/2 = 4.5 -> 4 */
    assert_mean(2, 0, 2, 9, 4); /* 18/4 = 4.5 -> 4 */
    /* ... and up to an even quotient: */
    assert_mean(1, 0, 1, 3, 2);  /* 3/2 = 1.5 -> 2 */
    assert_mean(1, 0, 1, 7, 4);  /* 7/2 = 3.5 -> 4 */
    assert_mean(3, 1, 1, 3, 2);  /* (3+3)/4 = 1.5 -> 2 */
    assert_mean(3, 0, 1, 6, 2);  /* 6/4 = 1.5 -> 2 */
    assert_mean(1, 5, 1, 6, 6);  /* 11/2 = 5.5 -> 6 */
    assert_mean(2, 0, 2, 11, 6); /* 22/4 = 5.5 -> 6 */
    /* Just off a tie: rounds to nearest, never to even. */
    assert_mean(1, 0, 2, 1, 1);      /* 2/3 = 0.67 -> 1 */
    assert_mean(1, 0, 2, 2, 1);      /* 4/3 = 1.33 -> 1 */
    assert_mean(1, 1, 2, 3, 2);      /* 7/3 = 2.33 -> 2 */
    assert_mean(1, 2, 2, 3, 3);      /* 8/3 = 2.67 -> 3 */
    assert_mean(5, 1, 1, 0, 1);      /* 5/6 = 0.83 -> 1 */
    assert_mean(999, 0, 1, 499, 0);  /* 499/1000 -> 0 */
    assert_mean(999, 0, 1, 501, 1);  /* 501/1000 -> 1 */
    assert_mean(999, 0, 1, 500, 0);  /* 500/1000 tie -> 0 */
    assert_mean(999, 0, 1, 1500, 2); /* 1500/1000 tie -> 2 */
    assert_mean(999, 0, 1, 2500, 2); /* 2500/1000 tie -> 2 */
    /* Decimal: 1 unit at 0.000000000000000001 and 1 at 0.000000000000000002
     * -> 0.0000000000000000015 -> 0.000000000000000002. */
    assert_mean(1, 1, 1, 2, 2);

    /* Ties at the largest figures. Equal weights: the mean is (m + u) / 2. */
    /* (10^38 - 1) / 2 = 49999999999999999999999999999999999999.5 -> 5 * 10^37 */
    assert_mean(P2(125), 0, P2(125), COST_MAX, COST_MAX / 2 + 1);
    /* (10^38 - 3) / 2 = 49999999999999999999999999999999999998.5 -> ...998 */
    assert_mean(P2(125), 0, P2(125), COST_MAX - 2, COST_MAX / 2 - 1);
    /* (2 * 10^38 - 3) / 2 = 10^38 - 1.5 -> 10^38 - 2 (even) */
    assert_mean(P2(126) - 1, COST_MAX, P2(126) - 1, COST_MAX - 1, COST_MAX - 1);
    /* (2 * 10^38 - 5) / 2 = 10^38 - 2.5 -> 10^38 - 2 (even) */
    assert_mean(P2(126) - 1, COST_MAX - 1, P2(126) - 1, COST_MAX - 2, COST_MAX - 1);
    /* (2 * 10^38 - 7) / 2 = 10^38 - 3.5 -> 10^38 - 4 (even) */
    assert_mean(P2(126) - 1, COST_MAX - 2, P2(126) - 1, COST_MAX - 3, COST_MAX - 3);
    /* b = 3q with b + q = 2^127 - 4: (3m + u) / 4 with 3m + u = 4k + 2. */
    i128 q = (AMOUNT_MAX - 3) / 4; /* 2^125 - 1 */
    /* 3(10^38 - 2) + (10^38 - 4) = 4 * 10^38 - 10: 10^38 - 2.5 -> 10^38 - 2 */
    assert_mean(3 * q, COST_MAX - 1, q, COST_MAX - 3, COST_MAX - 1);
    /* 3(10^38 - 2) + (10^38 - 8) = 4 * 10^38 - 14: 10^38 - 3.5 -> 10^38 - 4 */
    assert_mean(3 * q, COST_MAX - 1, q, COST_MAX - 7, COST_MAX - 3);
}

static void test_mean_large(void **state)
{
    /* b + q = 2^127 - 1, the largest allowed. */
    i128 b = P2(126), q = P2(126) - 1;
    /* (2^126 * (10^38 - 1)) / (2^127 - 1): just above (10^38 - 1) / 2 =
     * 49999999999999999999999999999999999999.5; the excess is
     * (10^38 - 1) / (2 * (2^127 - 1)) ~ 0.29, so it rounds up. */
    assert_mean(b, COST_MAX, q, 0, COST_MAX / 2 + 1);
    /* The other way round: just below ...999.5, ~ ...999.21 -> ...999. */
    assert_mean(b, 0, q, COST_MAX, COST_MAX / 2);
    /* A single unit against 2^127 - 2 of them at another price. */
    assert_mean(AMOUNT_MAX - 1, 0, 1, COST_MAX, 1); /* (10^38 - 1) / (2^127 - 1) ~ 0.59 */
    assert_mean(AMOUNT_MAX - 1, COST_MAX, 1, 0, COST_MAX - 1);
    assert_mean(1, 0, AMOUNT_MAX - 1, COST_MAX, COST_MAX - 1);
    assert_mean(1, COST_MAX, AMOUNT_MAX - 1, 0, 1);
    /* 2^126 units at 10^38 - 1 plus 2^126 - 1 at 10^38 - 2: the mean is
     * 10^38 - 2 + 2^126 / (2^127 - 1), just above 10^38 - 1.5 -> 10^38 - 1;
     * with the weights swapped, 10^38 - 2 + (2^126 - 1) / (2^127 - 1), just
     * below 10^38 - 1.5 -> 10^38 - 2. */
    assert_mean(b, COST_MAX, q, COST_MAX - 1, COST_MAX);
    assert_mean(q, COST_MAX, b, COST_MAX - 1, COST_MAX - 1);
}

static void test_mean_overflow(void **state)
{
    /* b + q leaves the i128 range: returns 1 and leaves *out alone. */
    assert_mean_overflow(P2(126), E18, P2(126), E18);
    assert_mean_overflow(AMOUNT_MAX, 0, 1, 0);
    assert_mean_overflow(1, COST_MAX, AMOUNT_MAX, COST_MAX);
    assert_mean_overflow(AMOUNT_MAX, COST_MAX, AMOUNT_MAX, COST_MAX);
    assert_mean_overflow(AMOUNT_MAX - 5, 3, 6, 4);
    /* One below the limit is fine. */
    assert_mean(AMOUNT_MAX - 5, 3, 5, 3, 3);
}

/* ---- cross-check against GMP ---- */

static void mpz_set_i128(mpz_t z, i128 v)
{
    u128 mag = v < 0 ? -(u128)v : (u128)v;
    mpz_set_ui(z, (unsigned long)(uint64_t)(mag >> 64));
    mpz_mul_2exp(z, z, 64);
    mpz_add_ui(z, z, (unsigned long)(uint64_t)mag);
    if (v < 0)
        mpz_neg(z, z);
}

static i128 mpz_get_i128(const mpz_t z)
{
    mpz_t t;
    mpz_init(t);
    mpz_abs(t, z);
    mpz_t lo;
    mpz_init(lo);
    mpz_fdiv_r_2exp(lo, t, 64);
    mpz_fdiv_q_2exp(t, t, 64);
    u128 mag = ((u128)mpz_get_ui(t) << 64) | mpz_get_ui(lo);
    i128 v = mpz_sgn(z) < 0 ? -(i128)mag : (i128)mag;
    mpz_clear(t);
    mpz_clear(lo);
    return v;
}

/* The reference: returns 1 when b + q leaves the i128 range, else 0 with
 * the half-even mean in *out. */
static int ref_mean(i128 b, i128 m, i128 q, i128 u, i128 *out)
{
    if (b <= 0) {
        *out = u;
        return 0;
    }
    mpz_t zb, zm, zq, zu, num, den, quo, rem, lim;
    mpz_inits(zb, zm, zq, zu, num, den, quo, rem, lim, NULL);
    mpz_set_i128(zb, b);
    mpz_set_i128(zm, m);
    mpz_set_i128(zq, q);
    mpz_set_i128(zu, u);
    mpz_add(den, zb, zq);
    mpz_set_i128(lim, AMOUNT_MAX);
    int rc = 1;
    if (mpz_cmp(den, lim) <= 0) {
        mpz_mul(num, zb, zm);
        mpz_addmul(num, zq, zu);
        mpz_fdiv_qr(quo, rem, num, den);
        mpz_mul_2exp(rem, rem, 1); /* compare 2 * rem with den */
        int c = mpz_cmp(rem, den);
        if (c > 0 || (c == 0 && mpz_odd_p(quo)))
            mpz_add_ui(quo, quo, 1);
        *out = mpz_get_i128(quo);
        rc = 0;
    }
    mpz_clears(zb, zm, zq, zu, num, den, quo, rem, lim, NULL);
    return rc;
}

/* A position or credit quantity: any magnitude from 1 to 2^127 - 1. */
static i128 rnd_quantity(void)
{
    switch (rnd() % 5) {
    case 0:
        return rnd_range(1, 10);
    case 1:
        return P2(126) - rnd_range(-3, 3);
    case 2:
        return AMOUNT_MAX - rnd_range(0, 10);
    default: {
        i128 v = rnd_bits(1 + (int)(rnd() % 127));
        return v == 0 ? 1 : v;
    }
    }
}

/* Means with b > 0 computed and compared; the cases with b <= 0 and with
 * b + q out of range come on top. */
#define MEAN_CASES 200000

static void test_mean_matches_gmp(void **state)
{
    unsigned seed = pick_seed();
    printf("seed=%u\n", seed);
    fflush(stdout);
    rng_state = seed;

    int overflows = 0, ties = 0, non_positive = 0, means = 0, i;
    for (i = 0; means < MEAN_CASES; i++) {
        i128 b = rnd() % 16 == 0 ? -rnd_bits((int)(rnd() % 128)) : rnd_quantity();
        i128 q = rnd_quantity();
        i128 m = rnd_cost(), u = rnd_cost();
        if (rnd() % 8 == 0) {
            /* Force an exact tie: equal weights and an odd m + u. */
            q = b > 0 ? b : q;
            if (((m ^ u) & 1) == 0)
                u = u > 0 ? u - 1 : u + 1;
        }
        i128 want = 0, got = -777;
        int want_rc = ref_mean(b, m, q, u, &want);
        int rc = cost_mean_after_credit(b, m, q, u, &got);
        char bs[AMOUNT_TEXT_MAX], ms[AMOUNT_TEXT_MAX], qs[AMOUNT_TEXT_MAX], us[AMOUNT_TEXT_MAX];
        if (rc != want_rc || (rc == 0 && got != want) || (rc != 0 && got != -777)) {
            char gs[AMOUNT_TEXT_MAX], ws[AMOUNT_TEXT_MAX];
            amount_format(b, bs);
            amount_format(m, ms);
            amount_format(q, qs);
            amount_format(u, us);
            amount_format(got, gs);
            amount_format(want, ws);
            fail_msg("seed=%u case %d: b=%s m=%s q=%s u=%s: rc %d mean %s, want rc %d mean %s",
                     seed, i, bs, ms, qs, us, rc, gs, want_rc, ws);
        }
        if (rc != 0) {
            overflows++;
            continue;
        }
        if (b <= 0) {
            non_positive++;
        } else {
            means++;
            if (q == b && ((m ^ u) & 1) != 0)
                ties++;
        }
        /* A mean lies between the two prices. */
        i128 lo = m < u ? m : u, hi = m < u ? u : m;
        if (got < lo || got > hi) {
            amount_format(b, bs);
            amount_format(m, ms);
            amount_format(q, qs);
            amount_format(u, us);
            fail_msg("seed=%u case %d: b=%s m=%s q=%s u=%s: mean outside [m, u]", seed, i, bs, ms,
                     qs, us);
        }
    }
    /* The generator must have reached every branch, or it proves little. */
    if (overflows < 100 || ties < 1000 || non_positive < 1000)
        fail_msg("seed=%u: %d overflows, %d ties, %d with b <= 0", seed, overflows, ties,
                 non_positive);
    print_message("cost: %d cases checked against GMP: %d means (%d exact ties), %d overflows, "
                  "%d with b <= 0\n",
                  i, means, ties, overflows, non_positive);
}

int run_cost_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_parse_valid), cmocka_unit_test(test_cost_parse_invalid),
        cmocka_unit_test(test_cost_parse_len),   cmocka_unit_test(test_cost_format),
        cmocka_unit_test(test_cost_round_trip),  cmocka_unit_test(test_mean_no_prior_position),
        cmocka_unit_test(test_mean_exact),       cmocka_unit_test(test_mean_half_even_ties),
        cmocka_unit_test(test_mean_large),       cmocka_unit_test(test_mean_overflow),
        cmocka_unit_test(test_mean_matches_gmp),
    };
    return cmocka_run_group_tests_name("cost", tests, NULL, NULL);
}
