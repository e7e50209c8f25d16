/*
 * test_amount.c - checked i128 arithmetic, parsing and formatting.
 */
#include <string.h>

#include "tests.h"

#define MAX_TEXT "170141183460469231731687303715884105727"
#define MIN_TEXT "-170141183460469231731687303715884105728"

/* 10^k as an i128 (k <= 38). */
static i128 pow10_i128(int k)
{
    i128 v = 1;
    while (k-- > 0)
        v *= 10;
    return v;
}

struct arith_case {
    i128 a, b;
    int overflow;
    i128 result; /* when !overflow */
};

static void run_arith(const struct arith_case *cases, size_t n, int (*op)(i128 *, i128))
{
    for (size_t i = 0; i < n; i++) {
        i128 a = cases[i].a;
        int rc = op(&a, cases[i].b);
        if (rc != cases[i].overflow)
            fail_msg("case %zu: returned %d, want %d", i, rc, cases[i].overflow);
        if (cases[i].overflow)
            assert_i128_equal(a, cases[i].a); /* target unchanged */
        else
            assert_i128_equal(a, cases[i].result);
    }
}

static void test_add(void **state)
{
    static const struct arith_case cases[] = {
        {0, 0, 0, 0},
        {0, 1, 0, 1},
        {1, -1, 0, 0},
        {AMOUNT_MAX, 0, 0, AMOUNT_MAX},
        {AMOUNT_MAX, 1, 1, 0},
        {AMOUNT_MAX, -1, 0, AMOUNT_MAX - 1},
        {AMOUNT_MAX - 1, 1, 0, AMOUNT_MAX},
        {AMOUNT_MAX, AMOUNT_MAX, 1, 0},
        {AMOUNT_MAX, AMOUNT_MIN, 0, -1},
        {AMOUNT_MIN, 0, 0, AMOUNT_MIN},
        {AMOUNT_MIN, -1, 1, 0},
        {AMOUNT_MIN, 1, 0, AMOUNT_MIN + 1},
        {AMOUNT_MIN, AMOUNT_MIN, 1, 0},
        {AMOUNT_MIN, AMOUNT_MAX, 0, -1},
        {-AMOUNT_MAX, -1, 0, AMOUNT_MIN},
        {-AMOUNT_MAX, -2, 1, 0},
        {0, AMOUNT_MIN, 0, AMOUNT_MIN},
        {0, AMOUNT_MAX, 0, AMOUNT_MAX},
        {1, AMOUNT_MAX, 1, 0},
        {-1, AMOUNT_MIN, 1, 0},
    };
    run_arith(cases, sizeof cases / sizeof cases[0], amount_add);
}

static void test_sub(void **state)
{
    static const struct arith_case cases[] = {
        {0, 0, 0, 0},
        {1, 1, 0, 0},
        {0, 1, 0, -1},
        {AMOUNT_MIN, 0, 0, AMOUNT_MIN},
        {AMOUNT_MIN, 1, 1, 0},
        {AMOUNT_MIN, -1, 0, AMOUNT_MIN + 1},
        {AMOUNT_MIN + 1, 1, 0, AMOUNT_MIN},
        {AMOUNT_MIN, AMOUNT_MIN, 0, 0},
        {AMOUNT_MIN, AMOUNT_MAX, 1, 0},
        {AMOUNT_MAX, 0, 0, AMOUNT_MAX},
        {AMOUNT_MAX, -1, 1, 0},
        {AMOUNT_MAX, 1, 0, AMOUNT_MAX - 1},
        {AMOUNT_MAX, AMOUNT_MAX, 0, 0},
        {AMOUNT_MAX, AMOUNT_MIN, 1, 0},
        {0, AMOUNT_MAX, 0, -AMOUNT_MAX},
        {-1, AMOUNT_MAX, 0, AMOUNT_MIN},
        {-2, AMOUNT_MAX, 1, 0},
        {0, AMOUNT_MIN, 1, 0}, /* -AMOUNT_MIN does not exist */
        {-1, AMOUNT_MIN, 0, AMOUNT_MAX},
        {1, -AMOUNT_MAX, 1, 0},
    };
    run_arith(cases, sizeof cases / sizeof cases[0], amount_sub);
}

struct parse_case {
    const char *text;
    enum amount_parse_result result;
    i128 value; /* when OK */
};

static void check_parse(const char *s, size_t len, enum amount_parse_result want, i128 want_value)
{
    const i128 sentinel = (i128)0x5a5a5a5a;
    i128 out = sentinel;
    enum amount_parse_result r = amount_parse(s, len, &out);
    if (r != want)
        fail_msg("amount_parse(\"%.*s\", %zu) = %d, want %d", (int)len, s, len, (int)r, (int)want);
    if (want == AMOUNT_PARSE_OK)
        assert_i128_equal(out, want_value);
    else
        assert_i128_equal(out, sentinel); /* written only on OK */
}

static void test_parse_table(void **state)
{
    static const struct parse_case cases[] = {
        {"0", AMOUNT_PARSE_OK, 0},
        {"-0", AMOUNT_PARSE_OK, 0},
        {"1", AMOUNT_PARSE_OK, 1},
        {"-1", AMOUNT_PARSE_OK, -1},
        {"42", AMOUNT_PARSE_OK, 42},
        {"007", AMOUNT_PARSE_OK, 7},
        {"-000", AMOUNT_PARSE_OK, 0},
        {"9223372036854775807", AMOUNT_PARSE_OK, INT64_MAX},
        {"9223372036854775808", AMOUNT_PARSE_OK, (i128)INT64_MAX + 1},
        {"18446744073709551616", AMOUNT_PARSE_OK, (i128)UINT64_MAX + 1},
        {MAX_TEXT, AMOUNT_PARSE_OK, AMOUNT_MAX},
        {"-" MAX_TEXT, AMOUNT_PARSE_OK, -AMOUNT_MAX},
        {"170141183460469231731687303715884105728", AMOUNT_PARSE_RANGE, 0},
        {MIN_TEXT, AMOUNT_PARSE_OK, AMOUNT_MIN},
        {"-170141183460469231731687303715884105729", AMOUNT_PARSE_RANGE, 0},
        {"340282366920938463463374607431768211456", AMOUNT_PARSE_RANGE, 0},  /* 2^128 */
        {"1000000000000000000000000000000000000000", AMOUNT_PARSE_RANGE, 0}, /* 10^39 */
        {"9999999999999999999999999999999999999999", AMOUNT_PARSE_RANGE, 0},
        {"-9999999999999999999999999999999999999999", AMOUNT_PARSE_RANGE, 0},
        {"00000000000000000000000000000000000000000000000000000000001", AMOUNT_PARSE_OK, 1},
        {"", AMOUNT_PARSE_SYNTAX, 0},
        {"-", AMOUNT_PARSE_SYNTAX, 0},
        {"+1", AMOUNT_PARSE_SYNTAX, 0},
        {" 1", AMOUNT_PARSE_SYNTAX, 0},
        {"1 ", AMOUNT_PARSE_SYNTAX, 0},
        {"1.5", AMOUNT_PARSE_SYNTAX, 0},
        {"1.0", AMOUNT_PARSE_SYNTAX, 0},
        {"1e3", AMOUNT_PARSE_SYNTAX, 0},
        {"abc", AMOUNT_PARSE_SYNTAX, 0},
        {"--1", AMOUNT_PARSE_SYNTAX, 0},
        {"1-", AMOUNT_PARSE_SYNTAX, 0},
        {"0x10", AMOUNT_PARSE_SYNTAX, 0},
        {"1,000", AMOUNT_PARSE_SYNTAX, 0},
        {"\xd9\xa3", AMOUNT_PARSE_SYNTAX, 0}, /* ARABIC-INDIC DIGIT THREE */
        {"/", AMOUNT_PARSE_SYNTAX, 0},        /* '0' - 1 */
        {":", AMOUNT_PARSE_SYNTAX, 0},        /* '9' + 1 */
        /* Junk after an overflowing prefix is still junk. */
        {"99999999999999999999999999999999999999999x", AMOUNT_PARSE_SYNTAX, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_parse(cases[i].text, strlen(cases[i].text), cases[i].result, cases[i].value);
    }
}

static void test_parse_long_strings(void **state)
{
    char buf[1001];
    /* Every length from 40 to 1000 digits of '9' is out of range; so is
     * '1' followed by zeros from 10^39 up. */
    for (size_t len = 40; len <= 1000; len++) {
        memset(buf, '9', len);
        check_parse(buf, len, AMOUNT_PARSE_RANGE, 0);
        buf[0] = '-';
        check_parse(buf, len, AMOUNT_PARSE_RANGE, 0);
        buf[0] = '1';
        memset(buf + 1, '0', len - 1);
        check_parse(buf, len, AMOUNT_PARSE_RANGE, 0);
    }
    /* 39 nines: 10^39 - 1 > 2^127 - 1. */
    memset(buf, '9', 39);
    check_parse(buf, 39, AMOUNT_PARSE_RANGE, 0);
    /* 38 nines fit. */
    check_parse(buf, 38, AMOUNT_PARSE_OK, pow10_i128(38) - 1);
    /* A thousand leading zeros do not change the value. */
    memset(buf, '0', 1000);
    buf[999] = '5';
    check_parse(buf, 1000, AMOUNT_PARSE_OK, 5);
}

static void test_parse_exact_len(void **state)
{
    /* Exactly len bytes are read: no NUL terminator needed, none honoured. */
    check_parse("12345", 3, AMOUNT_PARSE_OK, 123);
    check_parse("-12x", 3, AMOUNT_PARSE_OK, -12);
    check_parse("1\0"
                "2",
                3, AMOUNT_PARSE_SYNTAX, 0);
    check_parse("5", 0, AMOUNT_PARSE_SYNTAX, 0);
    /* A '-' past len is not a sign: empty text is still no number. */
    check_parse("-1", 0, AMOUNT_PARSE_SYNTAX, 0);
    check_parse(MAX_TEXT "0", strlen(MAX_TEXT), AMOUNT_PARSE_OK, AMOUNT_MAX);
}

static void check_format(i128 v, const char *want)
{
    char buf[AMOUNT_TEXT_MAX + 8];
    memset(buf, 'X', sizeof buf);
    size_t len = amount_format(v, buf);
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
    /* Nothing written past the terminator. */
    assert_int_equal(buf[len + 1], 'X');
    i128 back = 0;
    assert_int_equal(amount_parse(buf, len, &back), AMOUNT_PARSE_OK);
    assert_i128_equal(back, v);
}

static void test_format_exact(void **state)
{
    check_format(0, "0");
    check_format(1, "1");
    check_format(-1, "-1");
    check_format(9, "9");
    check_format(10, "10");
    check_format(-10, "-10");
    check_format(1000000, "1000000");
    check_format(INT64_MIN, "-9223372036854775808");
    check_format((i128)UINT64_MAX, "18446744073709551615");
    check_format(AMOUNT_MAX, MAX_TEXT);
    check_format(-AMOUNT_MAX, "-" MAX_TEXT);
    check_format(AMOUNT_MIN, MIN_TEXT);
    check_format(AMOUNT_MIN + 1, "-" MAX_TEXT);
    /* The longest text fits AMOUNT_TEXT_MAX exactly. */
    assert_int_equal(strlen(MIN_TEXT) + 1, AMOUNT_TEXT_MAX);
}

static void test_format_round_trip(void **state)
{
    /* Powers of ten, their neighbours and their negations. */
    for (int k = 0; k <= 38; k++) {
        i128 p = pow10_i128(k);
        const i128 values[] = {p, p - 1, p + 1, -p, -p + 1, -p - 1};
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            char buf[AMOUNT_TEXT_MAX];
            size_t len = amount_format(values[i], buf);
            assert_int_equal(len, strlen(buf));
            i128 back = 0;
            assert_int_equal(amount_parse(buf, len, &back), AMOUNT_PARSE_OK);
            assert_i128_equal(back, values[i]);
        }
    }
    /* Pseudo-random bit patterns over the whole range. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t y = x * 0x2545f4914f6cdd1du;
        i128 v = (i128)(((unsigned __int128)x << 64) | y);
        v >>= (i % 127); /* all magnitudes, both signs */
        char buf[AMOUNT_TEXT_MAX];
        size_t len = amount_format(v, buf);
        i128 back = 0;
        assert_int_equal(amount_parse(buf, len, &back), AMOUNT_PARSE_OK);
        assert_i128_equal(back, v);
        char again[AMOUNT_TEXT_MAX];
        assert_int_equal(amount_format(back, again), len);
        assert_string_equal(again, buf);
    }
}

int run_amount_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_long_strings),
        cmocka_unit_test(test_parse_exact_len),
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests_name("amount", tests, NULL, NULL);
}
