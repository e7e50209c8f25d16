/*
 * test_json_numbers.c - the pass that quotes JSON integers beyond 64 bits
 * where an amount is: exactly there, nowhere else, and the result is the
 * same JSON with strings in their place.
 */
#include <gmp.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/json_numbers.h"
#include "http/json_writer.h"
#include "tests.h"

#define BIG  "170141183460469231731687303715884105727" /* 2^127 - 1 */
#define BIG2 "123456789012345678901"

/* The quoted text of body, or NULL if nothing was quoted. */
static char *quote(const char *body)
{
    size_t len = 0;
    char *out = json_numbers_quote_amounts(body, strlen(body), &len);
    if (out)
        assert_int_equal(len, strlen(out));
    return out;
}

static void test_quoted_where_an_amount_is(void **state)
{
    const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"amount\": " BIG "}", "{\"amount\": \"" BIG "\"}"},
        {"{ \"id\" : \"x\" , \"amount\" :\t" BIG2 " }",
         "{ \"id\" : \"x\" , \"amount\" :\t\"" BIG2 "\" }"},
        {"{\"min_balance\":-9223372036854775809}", "{\"min_balance\":\"-9223372036854775809\"}"},
        {"{\"amount\":9223372036854775808}", "{\"amount\":\"9223372036854775808\"}"},
        {"{\"transfers\":[{\"amount\":1},{\"amount\":" BIG2 "}],\"atomic\":true}",
         "{\"transfers\":[{\"amount\":1},{\"amount\":\"" BIG2 "\"}],\"atomic\":true}"},
        {"{\"unit_cost\":{\"USD\":10000000000000000000,\"BRL\":1}}",
         "{\"unit_cost\":{\"USD\":\"10000000000000000000\",\"BRL\":1}}"},
        {"{\"amount\":" BIG2 ",\"metadata\":{\"amount\":" BIG2 "}}",
         "{\"amount\":\"" BIG2 "\",\"metadata\":{\"amount\":" BIG2 "}}"},
        /* Numbers jansson cannot read in an amount's place: as strings the
         * amount parser refuses them as invalid_amount. */
        {"{\"amount\":1e400}", "{\"amount\":\"1e400\"}"},
        {"{\"amount\":1.5}", "{\"amount\":\"1.5\"}"},
        {"{\"amount\":" BIG ".5}", "{\"amount\":\"" BIG ".5\"}"},
        {"{\"transfers\":[{\"unit_cost\":{\"USD\":" BIG2 "}}]}",
         "{\"transfers\":[{\"unit_cost\":{\"USD\":\"" BIG2 "\"}}]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = quote(cases[i].in);
        assert_non_null(out);
        assert_string_equal(out, cases[i].out);
        free(out);
    }
}

static void test_left_alone_elsewhere(void **state)
{
    const char *cases[] = {
        "{\"amount\":9223372036854775807}",
        "{\"amount\":-9223372036854775808}",
        "{\"amount\":\"5\"," BIG2 ":1}", /* a number as a key */
        "{\"unit_cost\":{" BIG2 ":\"1\"}}",
        "{\"unit_cost\":{\"USD\":1e400}}",
        "{\"amount\":1e}",
        "{\"amount\":--" BIG2 "}",
        "{\"amount\":0" BIG2 "}", /* not a JSON number: jansson must refuse it */
        "{\"amount\":1,\"timeout_s\":" BIG2 "}",
        "{\"metadata\":{\"n\":" BIG2 "}}",
        "{\"metadata\":{\"x\":\"\\\"amount\\\": " BIG2 "\"}}",
        "{\"am\\\"ount\":" BIG2 "}",
        "{\"transfers\":[[{\"amount\":" BIG2 "}]]}",
        "{\"metadata\":{\"transfers\":[{\"amount\":" BIG2 "}]}}",
        "{\"transfers\":[{\"metadata\":{\"amount\":" BIG2 "}}]}",
        "[{\"amount\":" BIG2 "}]",
        "{\"expect\":{\"from_seq\":" BIG2 "}}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = quote(cases[i]);
        if (out)
            fail_msg("case %zu quoted: %s", i, out);
    }
}

/* What jansson reads from the quoted text is the same document with the
 * digits as strings. */
static void test_jansson_reads_the_digits(void **state)
{
    const char *in = "{\"transfers\":[{\"id\":\"a\",\"amount\":" BIG "},"
                     "{\"id\":\"b\",\"amount\":-" BIG2 ",\"metadata\":{\"k\":[1,2]}}]}";
    json_error_t e;
    assert_null(json_loads(in, 0, &e));
    assert_int_equal(json_error_code(&e), json_error_numeric_overflow);
    char *out = quote(in);
    assert_non_null(out);
    json_t *v = json_loads(out, 0, &e);
    assert_non_null(v);
    json_t *items = json_object_get(v, "transfers");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "amount")),
                        BIG);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "amount")),
                        "-" BIG2);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(json_array_get(items, 1), "metadata"), "k")),
                     2);
    json_decref(v);
    free(out);
}

/* Random documents of the shape of requests, with numbers of every kind
 * in every place, written twice: as sent, and as the pass must quote them
 * (only in an amount's place, or beyond int64 in a unit_cost). */
struct gen {
    char in[16384], want[16384];
    size_t in_len, want_len;
    unsigned seed;
};

static unsigned pick(struct gen *g, unsigned n)
{
    g->seed = g->seed * 1103515245u + 12345u;
    return (g->seed >> 16) % n;
}

static void put2(struct gen *g, const char *in, const char *want)
{
    size_t a = strlen(in), b = strlen(want);
    assert_true(g->in_len + a < sizeof g->in && g->want_len + b < sizeof g->want);
    memcpy(g->in + g->in_len, in, a);
    memcpy(g->want + g->want_len, want, b);
    g->in_len += a;
    g->want_len += b;
}

static void put(struct gen *g, const char *s)
{
    static const char *const space[] = {"", "", " ", "\n\t "};
    const char *ws = space[pick(g, 4)];
    put2(g, ws, ws);
    put2(g, s, s);
}

enum place { ELSEWHERE, AMOUNT, UNIT_COST };

static void number(struct gen *g, enum place place)
{
    static const struct {
        const char *text;
        bool int64, integer;
    } nums[] = {
        {"0", true, true},
        {"-7", true, true},
        {"9223372036854775807", true, true},
        {"-9223372036854775808", true, true},
        {"9223372036854775808", false, true},
        {BIG2, false, true},
        {"-" BIG2, false, true},
        {"1.5", false, false},
        {"1e400", false, false},
        {"2E+3", false, false},
    };
    int k = (int)pick(g, sizeof nums / sizeof nums[0]);
    bool q = !nums[k].int64 && (place == AMOUNT || (place == UNIT_COST && nums[k].integer));
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", nums[k].text);
    put2(g, " ", " ");
    put2(g, nums[k].text, q ? quoted : nums[k].text);
}

static void string(struct gen *g)
{
    static const char *const strs[] = {"\"x\"",      "\"amount\"",
                                       "\"a\\\"b\"", "\"\\\\\"",
                                       "\"{[\"",     "\"\\\"amount\\\": 12345678901234567890123\""};
    put(g, strs[pick(g, sizeof strs / sizeof strs[0])]);
}

static void other(struct gen *g, int depth);

static void key(struct gen *g, const char *name)
{
    char k[32];
    snprintf(k, sizeof k, "\"%s\"", name);
    put(g, k);
    put(g, ":");
}

/* An object or array where no member is a figure, whatever its keys. */
static void other(struct gen *g, int depth)
{
    static const char *const keys[] = {"amount", "min_balance", "unit_cost", "transfers", "x"};
    unsigned kind = depth > 5 ? pick(g, 2) : pick(g, 4);
    if (kind == 0) {
        number(g, ELSEWHERE);
    } else if (kind == 1) {
        string(g);
    } else if (kind == 2) {
        put(g, "{");
        for (unsigned i = 0, n = pick(g, 4); i < n; i++) {
            if (i)
                put(g, ",");
            key(g, keys[pick(g, 5)]);
            other(g, depth + 1);
        }
        put(g, "}");
    } else {
        put(g, "[");
        for (unsigned i = 0, n = pick(g, 4); i < n; i++) {
            if (i)
                put(g, ",");
            other(g, depth + 1);
        }
        put(g, "]");
    }
}

static void request(struct gen *g, bool top)
{
    put(g, "{");
    for (unsigned i = 0, n = pick(g, 6); i < n; i++) {
        if (i)
            put(g, ",");
        unsigned m = pick(g, top ? 6 : 5);
        if (m == 0 || m == 1) {
            key(g, m == 0 ? "amount" : "min_balance");
            if (pick(g, 4) == 0)
                string(g);
            else
                number(g, AMOUNT);
        } else if (m == 2) {
            key(g, "unit_cost");
            put(g, "{");
            for (unsigned j = 0, c = pick(g, 3); j < c; j++) {
                if (j)
                    put(g, ",");
                key(g, j ? "BRL" : "USD");
                number(g, UNIT_COST);
            }
            put(g, "}");
        } else if (m == 3 || m == 4) {
            key(g, m == 3 ? "metadata" : "id");
            other(g, 2);
        } else {
            key(g, "transfers");
            put(g, "[");
            for (unsigned j = 0, c = pick(g, 4); j < c; j++) {
                if (j)
                    put(g, ",");
                request(g, false);
            }
            put(g, "]");
        }
    }
    put(g, "}");
}

static void test_request_shaped_documents(void **state)
{
    int quoted_docs = 0;
    for (unsigned round = 0; round < 3000; round++) {
        struct gen *g = calloc(1, sizeof *g);
        g->seed = round * 2654435761u + 1;
        request(g, true);
        g->in[g->in_len] = g->want[g->want_len] = '\0';
        size_t len;
        char *out = json_numbers_quote_amounts(g->in, g->in_len, &len);
        if (strcmp(g->in, g->want) == 0) {
            if (out)
                fail_msg("round %u quoted %s\nfrom %s", round, out, g->in);
        } else {
            if (out == NULL)
                fail_msg("round %u quoted nothing of %s\nwant %s", round, g->in, g->want);
            if (strcmp(out, g->want) != 0)
                fail_msg("round %u: %s\nwant %s", round, out, g->want);
            quoted_docs++;
        }
        free(out);
        free(g);
    }
    assert_true(quoted_docs > 300); /* the generator does reach the quoting */
}

/* Truncated and arbitrary bytes: no read past the end (ASan watches). */
static void test_any_bytes(void **state)
{
    const char *prefixes[] = {
        "{\"amount\":" BIG2, "{\"amount\":\"", "{\"a\\",
        "[[[[[[[[[[[[",      "}}}]]]",         "{\"transfers\":[{\"amount\":-"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        for (size_t len = 0; len <= n; len++) {
            char *copy = malloc(len ? len : 1);
            memcpy(copy, prefixes[i], len);
            size_t out_len;
            free(json_numbers_quote_amounts(copy, len, &out_len));
            free(copy);
        }
    }
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        char buf[64];
        size_t len = (size_t)(round % 64);
        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = "{}[]\",:\\-0123456789 amount"[(seed >> 16) % 27];
        }
        char *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        size_t out_len;
        free(json_numbers_quote_amounts(copy, len, &out_len));
        free(copy);
    }
}

/* inexact: the literal expected, or NULL when every metadata number is
 * kept as written. */
static void test_metadata_inexact(void **state)
{
    const struct {
        const char *body, *inexact;
    } cases[] = {
        /* Kept: the fewest digits of the double have the literal's value. */
        {"{\"metadata\":{\"x\":1.5}}", NULL},
        {"{\"metadata\":{\"x\":0.1}}", NULL},
        {"{\"metadata\":{\"x\":1.0,\"y\":1e2,\"z\":1E+2,\"w\":-0.0}}", NULL},
        {"{\"metadata\":{\"x\":0e999999999999999999,\"y\":0.000e-7}}", NULL},
        {"{\"metadata\":{\"x\":1.25e-3,\"y\":-125E-5,\"z\":5e-324}}", NULL},
        {"{\"metadata\":{\"x\":123456789012345.6,\"y\":1.7976931348623157e308}}", NULL},
        {"{\"metadata\":{\"x\":9007199254740993}}", NULL}, /* an int64: jansson's integer */
        {"{\"metadata\":{\"x\":\"12345678901234567.5\"}}", NULL},
        /* Not metadata: judged elsewhere. */
        {"{\"amount\":12345678901234567.5,\"metadata\":{}}", NULL},
        {"{\"metadata\":{\"a\":1},\"amount\":12345678901234567.5}", NULL},
        {"{\"x\":{\"metadata\":{\"a\":1.00000000000000000001}}}", NULL},
        {"{\"transfers\":[{\"metadata\":{}},{\"amount\":0.12345678901234567890}]}", NULL},
        /* Changed by a double. */
        {"{\"metadata\":{\"x\":12345678901234567.5}}", "12345678901234567.5"},
        {"{\"metadata\":{\"x\":1.00000000000000000001}}", "1.00000000000000000001"},
        {"{\"metadata\":{\"x\":1e-400}}", "1e-400"},
        {"{\"metadata\":{\"x\":9007199254740993.0}}", "9007199254740993.0"},
        {"{\"metadata\":{\"ok\":2.5,\"a\":[1,{\"b\":0.12345678901234567890}]}}",
         "0.12345678901234567890"},
        {"{\"transfers\":[{\"metadata\":{\"a\":1}},{\"metadata\":{\"a\":-1.000000000000000000001}}]"
         "}",
         "-1.000000000000000000001"},
        /* Past the depth the frames track. */
        {"{\"metadata\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":[12345678901234567."
         "5]}}}}}}}}}",
         "12345678901234567.5"},
        {"{\"x\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":[12345678901234567.5]}}}}}}}}",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *at = NULL;
        size_t at_len = 0;
        bool found =
            json_numbers_metadata_inexact(cases[i].body, strlen(cases[i].body), &at, &at_len);
        if (found != (cases[i].inexact != NULL))
            fail_msg("%s: found %d", cases[i].body, found);
        if (found &&
            (at_len != strlen(cases[i].inexact) || memcmp(at, cases[i].inexact, at_len) != 0))
            fail_msg("%s: found %.*s", cases[i].body, (int)at_len, at);
    }
}

/* The exact value of a JSON number literal, by GMP: mantissa x 10^scale. */
static void exact_value(const char *s, mpq_t out)
{
    mpz_t m, p;
    mpz_inits(m, p, NULL);
    bool negative = *s == '-', fraction = false;
    long scale = 0;
    s += negative;
    for (; (*s >= '0' && *s <= '9') || *s == '.'; s++) {
        if (*s == '.') {
            fraction = true;
            continue;
        }
        mpz_mul_ui(m, m, 10);
        mpz_add_ui(m, m, (unsigned long)(*s - '0'));
        scale -= fraction;
    }
    if (*s == 'e' || *s == 'E')
        scale += strtol(s + 1, NULL, 10);
    mpz_ui_pow_ui(p, 10, (unsigned long)labs(scale));
    mpq_set_z(out, m);
    if (scale >= 0) {
        mpq_t f;
        mpq_init(f);
        mpq_set_z(f, p);
        mpq_mul(out, out, f);
        mpq_clear(f);
    } else {
        mpz_mul(mpq_denref(out), mpq_denref(out), p);
        mpq_canonicalize(out);
    }
    if (negative)
        mpq_neg(out, out);
    mpz_clears(m, p, NULL);
}

/* Random literals of 1 to 25 digits, any point, trailing zeros, exponents
 * over and past the doubles' range: refused exactly when the value of the
 * shortest text of strtod's double differs from the literal's. */
static void test_metadata_inexact_matches_gmp(void **state)
{
    unsigned seed = 20261207;
    int refused = 0, kept = 0;
    mpq_t a, b;
    mpq_inits(a, b, NULL);
    for (int round = 0; round < 20000; round++) {
        char lit[64];
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 3 == 0)
            lit[n++] = '-';
        seed = seed * 1103515245u + 12345u;
        int digits = 1 + (int)((seed >> 16) % 25);
        seed = seed * 1103515245u + 12345u;
        int point = 1 + (int)((seed >> 16) % (unsigned)digits); /* digits before it */
        for (int k = 0; k < digits; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned d = (seed >> 16) % 10;
            if (k > digits - 4 && (seed >> 20) % 2)
                d = 0; /* trailing zeros, sometimes */
            if (k == 0 && point > 1 && d == 0)
                d = 1; /* JSON: no leading zero before more digits */
            if (k == point)
                lit[n++] = '.';
            lit[n++] = (char)('0' + d);
        }
        seed = seed * 1103515245u + 12345u;
        bool exponent = (seed >> 16) % 2 || point == digits;
        if (exponent)
            n += (size_t)snprintf(lit + n, sizeof lit - n, "e%d",
                                  (int)((seed >> 8) % 700) - 350 - (point - 1));
        lit[n] = '\0';
        double v = strtod(lit, NULL);
        if (v == 1.0 / 0.0 || v == -1.0 / 0.0)
            continue; /* jansson refuses it */
        char shortest[JW_REAL_TEXT_MAX], body[128];
        jw_real_text(v, shortest);
        exact_value(lit, a);
        exact_value(shortest, b);
        bool want_kept = mpq_equal(a, b) != 0;
        snprintf(body, sizeof body, "{\"metadata\":{\"x\":%s}}", lit);
        const char *at;
        size_t at_len;
        bool found = json_numbers_metadata_inexact(body, strlen(body), &at, &at_len);
        if (found == want_kept)
            fail_msg("%s (double %s): refused %d", lit, shortest, found);
        refused += found;
        kept += !found;
    }
    mpq_clears(a, b, NULL);
    assert_true(refused > 1000 && kept > 1000); /* both sides are reached */
}

/* Keys as jansson decodes them: an escaped "metadata" or "amount" is the
 * same key. */
static void test_escaped_keys(void **state)
{
    const char *at;
    size_t at_len;
    const char *meta = "{\"meta\\u0064ata\":{\"x\":12345678901234567.5}}";
    assert_true(json_numbers_metadata_inexact(meta, strlen(meta), &at, &at_len));
    const char *not_meta = "{\"meta\\u0064at\":{\"x\":12345678901234567.5}}";
    assert_false(json_numbers_metadata_inexact(not_meta, strlen(not_meta), &at, &at_len));
    char *out = quote("{\"\\u0061mount\":" BIG "}");
    assert_non_null(out);
    assert_string_equal(out, "{\"\\u0061mount\":\"" BIG "\"}");
    free(out);
    assert_null(quote("{\"amoun\\t\":" BIG "}"));
    assert_null(quote("{\"amount\\u0000\":" BIG "}"));
}

/* Truncated metadata and arbitrary bytes: no read past the end. */
static void test_metadata_any_bytes(void **state)
{
    const char *doc = "{\"metadata\":{\"a\":[1.5e-3,{\"b\":-12345678901234567.5E+2}]}}";
    size_t n = strlen(doc);
    for (size_t len = 0; len <= n; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, doc, len);
        const char *at;
        size_t at_len;
        json_numbers_metadata_inexact(copy, len, &at, &at_len);
        free(copy);
    }
}

int run_json_numbers_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoted_where_an_amount_is),
        cmocka_unit_test(test_left_alone_elsewhere),
        cmocka_unit_test(test_jansson_reads_the_digits),
        cmocka_unit_test(test_request_shaped_documents),
        cmocka_unit_test(test_any_bytes),
        cmocka_unit_test(test_metadata_inexact),
        cmocka_unit_test(test_metadata_inexact_matches_gmp),
        cmocka_unit_test(test_escaped_keys),
        cmocka_unit_test(test_metadata_any_bytes),
    };
    return cmocka_run_group_tests_name("json_numbers", tests, NULL, NULL);
}
