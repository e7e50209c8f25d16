/*
 * test_pg_binary.c - the binary COPY encoding of store/pg_binary.c: the
 * stream's framing, each type's bytes, and numeric, whose base-10000 form
 * is checked against known encodings and decoded back over the whole i128
 * range; and one-dimensional arrays as array_send writes them.
 */
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#include "store/pg_binary.h"

static void assert_bytes(const struct pg_binary *b, const char *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

static void test_framing(void **state)
{
    struct pg_binary b = {0};
    pgb_begin(&b);
    assert_bytes(&b, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
    pgb_row(&b, 3);
    pgb_null(&b);
    pgb_end(&b);
    assert_bytes(&b, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\3\377\377\377\377\377\377", 27);
    pgb_begin(&b); /* starts over */
    assert_int_equal(b.len, 19);
    pgb_free(&b);
}

static void test_scalars(void **state)
{
    struct pg_binary b = {0};
    pgb_int8(&b, -2);
    assert_bytes(&b, "\0\0\0\10\377\377\377\377\377\377\377\376", 12);
    b.len = 0;
    pgb_bool(&b, true);
    pgb_bool(&b, false);
    assert_bytes(&b, "\0\0\0\1\1\0\0\0\1\0", 10);
    b.len = 0;
    pgb_text(&b, "ab\tc");
    assert_bytes(&b, "\0\0\0\4ab\tc", 8);
    b.len = 0;
    pgb_jsonb(&b, "{}");
    assert_bytes(&b, "\0\0\0\3\1{}", 7);
    b.len = 0;
    /* PostgreSQL counts from 2000-01-01 UTC. */
    pgb_timestamptz(&b, 946684800000000LL + 1);
    assert_bytes(&b, "\0\0\0\10\0\0\0\0\0\0\0\1", 12);
    b.len = 0;
    pgb_timestamptz(&b, 0);
    assert_bytes(&b, "\0\0\0\10\377\374\242\376\304\310\40\0", 12);
    pgb_free(&b);
}

static unsigned u16_at(const char *p)
{
    return (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}

/* Decodes one numeric field, checking that it is in PostgreSQL's
 * normalised form: no leading or trailing zero digit, digits < 10000,
 * scale 0. */
static i128 decode_numeric(const struct pg_binary *b)
{
    const char *p = b->data;
    unsigned len = (unsigned)u16_at(p) << 16 | u16_at(p + 2);
    unsigned ndigits = u16_at(p + 4), weight = u16_at(p + 6), sign = u16_at(p + 8);
    assert_int_equal(len, 8 + 2 * ndigits);
    assert_int_equal(b->len, 4 + len);
    assert_int_equal(u16_at(p + 10), 0);
    assert_true(sign == 0 || sign == 0x4000);
    if (ndigits == 0) {
        assert_int_equal(weight, 0);
        assert_int_equal(sign, 0);
        return 0;
    }
    assert_true(ndigits <= weight + 1);
    unsigned __int128 u = 0;
    for (unsigned i = 0; i <= weight; i++) {
        unsigned d = i < ndigits ? u16_at(p + 12 + 2 * i) : 0;
        assert_true(d < 10000);
        if (i == 0)
            assert_true(d != 0);
        if (i == ndigits - 1)
            assert_true(d != 0);
        u = u * 10000 + d;
    }
    return sign ? (i128)-u : (i128)u;
}

static void test_numeric_known(void **state)
{
    struct pg_binary b = {0};
    pgb_numeric(&b, 0);
    assert_bytes(&b, "\0\0\0\10\0\0\0\0\0\0\0\0", 12);
    b.len = 0;
    pgb_numeric(&b, 10000); /* one digit, 1, of weight 1 */
    assert_bytes(&b, "\0\0\0\12\0\1\0\1\0\0\0\0\0\1", 14);
    b.len = 0;
    pgb_numeric(&b, -123456789); /* 1 2345 6789 */
    assert_bytes(&b, "\0\0\0\16\0\3\0\2\100\0\0\0\0\1\11\51\32\205", 18);
    pgb_free(&b);
}

static void test_numeric_round_trip(void **state)
{
    const i128 edges[] = {1,          -1,          9999,           10000, 10001, (i128)1 << 64,
                          AMOUNT_MAX, -AMOUNT_MAX, -AMOUNT_MAX - 1};
    struct pg_binary b = {0};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        b.len = 0;
        pgb_numeric(&b, edges[i]);
        assert_i128_equal(decode_numeric(&b), edges[i]);
    }
    i128 p10 = 1; /* 10^0 .. 10^38, the largest power of ten in an i128 */
    for (int e = 0;; e++) {
        b.len = 0;
        pgb_numeric(&b, p10);
        assert_i128_equal(decode_numeric(&b), p10);
        b.len = 0;
        pgb_numeric(&b, -p10 + 1);
        assert_i128_equal(decode_numeric(&b), -p10 + 1);
        if (e == 38)
            break;
        p10 *= 10;
    }
    unsigned long long s = 12345;
    for (int i = 0; i < 100000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned long long hi = s;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        i128 v = (i128)((unsigned __int128)hi << 64 | s) >> (hi % 127);
        b.len = 0;
        pgb_numeric(&b, v);
        assert_i128_equal(decode_numeric(&b), v);
    }
    pgb_free(&b);
}

static void test_arrays(void **state)
{
    struct pg_binary b = {0};
    pgb_array_begin(&b, PGB_OID_INT8);
    pgb_int8(&b, 7);
    pgb_null(&b);
    pgb_array_end(&b, 2, true);
    /* ndim 1, has NULL, int8 (20); 2 values from index 1; 7 and NULL */
    assert_bytes(&b,
                 "\0\0\0\1\0\0\0\1\0\0\0\24\0\0\0\2\0\0\0\1"
                 "\0\0\0\10\0\0\0\0\0\0\0\7\377\377\377\377",
                 36);
    pgb_array_begin(&b, PGB_OID_TEXT); /* starts over */
    pgb_text(&b, "ab");
    pgb_array_end(&b, 1, false);
    assert_bytes(&b, "\0\0\0\1\0\0\0\0\0\0\0\31\0\0\0\1\0\0\0\1\0\0\0\2ab", 26);
    /* empty: no dimensions, the element type kept (numeric, 1700) */
    pgb_array_begin(&b, PGB_OID_NUMERIC);
    pgb_array_end(&b, 0, false);
    assert_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\6\244", 12);
    pgb_free(&b);
}

int run_pg_binary_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing),       cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_numeric_known), cmocka_unit_test(test_numeric_round_trip),
        cmocka_unit_test(test_arrays),
    };
    return cmocka_run_group_tests_name("pg_binary", tests, NULL, NULL);
}
