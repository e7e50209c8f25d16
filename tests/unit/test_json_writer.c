/*
 * test_json_writer.c - the response writer of the http module: its text
 * must be JSON that a real parser (jansson) reads back as what was written.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/json_writer.h"
#include "tests.h"

static char *take(struct json_writer *w)
{
    size_t len;
    char *text = json_writer_take(w, &len);
    assert_int_equal(len, strlen(text));
    return text;
}

static void test_commas_between_values_and_members(void **state)
{
    struct json_writer w;
    json_writer_init(&w);
    jw_object_begin(&w);
    jw_key(&w, "a");
    jw_array_begin(&w);
    jw_int(&w, 1);
    jw_object_begin(&w);
    jw_object_end(&w);
    jw_array_begin(&w);
    jw_array_end(&w);
    jw_null(&w);
    jw_bool(&w, true);
    jw_bool(&w, false);
    jw_array_end(&w);
    jw_key(&w, "b");
    jw_int(&w, INT64_MIN);
    jw_key(&w, "c");
    jw_json(&w, "{\"USD\": \"1.5\"}");
    jw_object_end(&w);
    char *text = take(&w);
    assert_string_equal(
        text,
        "{\"a\":[1,{},[],null,true,false],\"b\":-9223372036854775808,\"c\":{\"USD\": \"1.5\"}}");
    free(text);
}

/* Every byte from 1 to 255 in a string: what jansson reads back is the
 * same bytes (the input is valid UTF-8 only where it is ASCII, so the high
 * bytes are checked separately with a real UTF-8 string). */
static void test_strings_escape_what_json_requires(void **state)
{
    char ascii[128];
    for (int i = 1; i < 128; i++)
        ascii[i - 1] = (char)i;
    ascii[127] = '\0';
    const char *utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb0";
    const char *cases[] = {ascii, utf8, "", "\"\\\"", "a\nb\tc\x1f"};
    /* The short forms, as jansson writes them. */
    struct json_writer sw;
    json_writer_init(&sw);
    jw_string(&sw, "\b\f\n\r\t\x01\"\\");
    char *short_text = take(&sw);
    assert_string_equal(short_text, "\"\\b\\f\\n\\r\\t\\u0001\\\"\\\\\"");
    free(short_text);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_writer w;
        json_writer_init(&w);
        jw_array_begin(&w);
        jw_string(&w, cases[i]);
        jw_array_end(&w);
        char *text = take(&w);
        for (const char *p = text; *p; p++)
            assert_true((unsigned char)*p >= 0x20);
        json_error_t err;
        json_t *v = json_loads(text, 0, &err);
        assert_non_null(v);
        assert_string_equal(json_string_value(json_array_get(v, 0)), cases[i]);
        json_decref(v);
        free(text);
    }
}

/* Keys of any text are escaped like strings; jansson reads them back. */
static void test_quoted_keys(void **state)
{
    struct json_writer w;
    json_writer_init(&w);
    jw_object_begin(&w);
    jw_key_quoted(&w, "a\"b\\c\n");
    jw_int(&w, 1);
    jw_key_quoted(&w, "plain");
    jw_int(&w, 2);
    jw_object_end(&w);
    char *text = take(&w);
    assert_string_equal(text, "{\"a\\\"b\\\\c\\n\":1,\"plain\":2}");
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "a\"b\\c\n")), 1);
    json_decref(v);
    free(text);
}

/* The fewest digits by a plain search from one digit up. */
static void shortest_by_scan(double v, char *buf, size_t size)
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* jw_real_text's binary search gives what the scan gives, over doubles of
 * every magnitude and subnormals. */
static void test_real_text_matches_scan(void **state)
{
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 50000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0)
            continue;
        char want[400], got[JW_REAL_TEXT_MAX];
        shortest_by_scan(v, want, sizeof want);
        size_t n = jw_real_text(v, got);
        if (n != strlen(got) || strcmp(got, want) != 0)
            fail_msg("%a: %s, want %s", v, got, want);
    }
}

/* Doubles in the fewest digits that read back as the same double. */
static void test_reals_shortest_round_trip(void **state)
{
    const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e300, "1e+300"},
        {-2.5, "-2.5"},
        {123.0, "123"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {1.0 / 3.0, "0.3333333333333333"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_writer w;
        json_writer_init(&w);
        jw_real(&w, cases[i].v);
        char *text = take(&w);
        assert_string_equal(text, cases[i].text);
        assert_true(strtod(text, NULL) == cases[i].v);
        free(text);
    }
}

/* Growth past the first buffer keeps every byte, in order. */
static void test_large_output(void **state)
{
    struct json_writer w;
    json_writer_init(&w);
    jw_array_begin(&w);
    for (int i = 0; i < 100000; i++)
        jw_int(&w, i);
    jw_array_end(&w);
    char *text = take(&w);
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_array_size(v), 100000);
    for (int i = 0; i < 100000; i += 997)
        assert_int_equal(json_integer_value(json_array_get(v, (size_t)i)), i);
    json_decref(v);
    free(text);
}

int run_json_writer_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commas_between_values_and_members),
        cmocka_unit_test(test_strings_escape_what_json_requires),
        cmocka_unit_test(test_quoted_keys),
        cmocka_unit_test(test_reals_shortest_round_trip),
        cmocka_unit_test(test_real_text_matches_scan),
        cmocka_unit_test(test_large_output),
    };
    return cmocka_run_group_tests_name("json_writer", tests, NULL, NULL);
}
