/*
 * test_big_amounts.c - the pass that quotes JSON integers beyond 64 bits
 * where an amount is: exactly there, nowhere else, and the result is the
 * same JSON with strings in their place.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http/big_amounts.h"
#include "tests.h"

#define BIG  "170141183460469231731687303715884105727" /* 2^127 - 1 */
#define BIG2 "123456789012345678901"

/* The quoted text of body, or NULL if nothing was quoted. */
static char *quote(const char *body)
{
    size_t len = 0;
    char *out = big_amounts_quote(body, strlen(body), &len);
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
        "{\"amount\":1e40}",
        "{\"amount\":" BIG ".5}",
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
            free(big_amounts_quote(copy, len, &out_len));
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
        free(big_amounts_quote(copy, len, &out_len));
        free(copy);
    }
}

int run_big_amounts_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoted_where_an_amount_is),
        cmocka_unit_test(test_left_alone_elsewhere),
        cmocka_unit_test(test_jansson_reads_the_digits),
        cmocka_unit_test(test_any_bytes),
    };
    return cmocka_run_group_tests_name("big_amounts", tests, NULL, NULL);
}
