/*
 * test_validate.c - ids, currency codes and RFC 3339 timestamps (SPEC 2).
 */
#include <string.h>

#include "tests.h"

static bool id_of(const char *s)
{
    return valid_id(s, strlen(s));
}

static bool currency_of(const char *s)
{
    return valid_currency(s, strlen(s));
}

static void test_valid_id(void **state)
{
    char buf[80];
    assert_true(id_of("a"));
    assert_true(id_of("Z"));
    assert_true(id_of("0"));
    assert_true(id_of("-"));
    assert_true(id_of("user:42@shop.example_1-b"));
    assert_true(id_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-"));
    assert_true(id_of("abcdefghijklmnopqrstuvwxyz-@:_."));

    /* Length: 1..64. */
    assert_false(valid_id("", 0));
    assert_false(valid_id("abc", 0));
    memset(buf, 'x', sizeof buf);
    assert_true(valid_id(buf, 1));
    assert_true(valid_id(buf, 63));
    assert_true(valid_id(buf, 64));
    assert_false(valid_id(buf, 65));
    assert_false(valid_id(buf, 80));

    /* Characters outside the set. */
    static const char *const bad[] = {
        "a b",  "a/b",  "a#b",         "a+b",          "a,b", "a*b", "a!b",  "a~b", "a%b",
        "a?b",  "a\\b", "a\"b",        "a'b",          "a;b", "a=b", "a(b",  "a[b", "a{b",
        "a\tb", "a\nb", "caf\xc3\xa9", "\xe2\x82\xac", " a",  "a ",  "\x7f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (id_of(bad[i]))
            fail_msg("valid_id accepted \"%s\"", bad[i]);
    /* An embedded NUL counts as a character. */
    assert_false(valid_id("ab\0cd", 5));
    /* Exactly len bytes are judged. */
    assert_true(valid_id("abc def", 3));
    assert_false(valid_id("abc def", 4));
}

static void test_valid_id_every_byte(void **state)
{
    static const char allowed[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-";
    for (int c = 0; c < 256; c++) {
        char s[2] = {(char)c, 'a'};
        bool want = c != 0 && memchr(allowed, c, sizeof allowed - 1) != NULL;
        if (valid_id(s, 1) != want || valid_id(s, 2) != want)
            fail_msg("valid_id byte 0x%02x: want %d", c, want);
    }
}

static void test_valid_currency(void **state)
{
    char buf[20];
    assert_true(currency_of("USD"));
    assert_true(currency_of("A"));
    assert_true(currency_of("BTC_2"));
    assert_true(currency_of("_"));
    assert_true(currency_of("0123456789"));
    memset(buf, 'Q', sizeof buf);
    assert_true(valid_currency(buf, 16));
    assert_false(valid_currency(buf, 17));
    assert_false(valid_currency(buf, 0));
    assert_false(currency_of(""));
    assert_false(currency_of("usd"));
    assert_false(currency_of("Usd"));
    assert_false(currency_of("US-D"));
    assert_false(currency_of("US D"));
    assert_false(currency_of("US.D"));
    assert_false(currency_of("\xc3\x84"));
    assert_false(valid_currency("US\0", 3));
    assert_true(valid_currency("USDx", 3));

    static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    for (int c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        bool want = c != 0 && memchr(allowed, c, sizeof allowed - 1) != NULL;
        if (valid_currency(s, 1) != want)
            fail_msg("valid_currency byte 0x%02x: want %d", c, want);
    }
}

struct time_case {
    const char *text;
    bool ok;
    int64_t us; /* when ok */
};

static void check_time_parse(const char *s, size_t len, bool ok, int64_t want)
{
    const int64_t sentinel = INT64_C(0x1234567890);
    int64_t us = sentinel;
    bool got = time_parse_rfc3339(s, len, &us);
    if (got != ok)
        fail_msg("time_parse_rfc3339(\"%.*s\") = %d, want %d", (int)len, s, got, ok);
    if (ok && us != want)
        fail_msg("time_parse_rfc3339(\"%.*s\") = %lld us, want %lld", (int)len, s, (long long)us,
                 (long long)want);
    if (!ok && us != sentinel)
        fail_msg("time_parse_rfc3339(\"%.*s\") wrote *us_out on failure", (int)len, s);
}

#define JAN1_2024 INT64_C(1704067200000000)
#define HOUR_US   INT64_C(3600000000)
#define MIN_US    INT64_C(60000000)

static void test_time_parse_table(void **state)
{
    static const struct time_case cases[] = {
        {"1970-01-01T00:00:00Z", true, 0},
        {"1970-01-01T00:00:00z", true, 0},
        {"1970-01-01t00:00:00Z", true, 0},
        {"1970-01-01T00:00:01Z", true, 1000000},
        {"2023-11-14T22:13:20Z", true, NOW_US},
        {"2026-11-22T10:00:00.123456Z", true, INT64_C(1795341600123456)},
        {"2024-02-29T12:34:56.789012Z", true, INT64_C(1709210096789012)},
        /* Fractions: 0..6 digits, scaled to microseconds. */
        {"2024-01-01T00:00:00.1Z", true, JAN1_2024 + 100000},
        {"2024-01-01T00:00:00.12Z", true, JAN1_2024 + 120000},
        {"2024-01-01T00:00:00.123Z", true, JAN1_2024 + 123000},
        {"2024-01-01T00:00:00.1234Z", true, JAN1_2024 + 123400},
        {"2024-01-01T00:00:00.12345Z", true, JAN1_2024 + 123450},
        {"2024-01-01T00:00:00.123456Z", true, JAN1_2024 + 123456},
        {"2024-01-01T00:00:00.000001Z", true, JAN1_2024 + 1},
        {"2024-01-01T00:00:00.999999Z", true, JAN1_2024 + 999999},
        {"2024-01-01T00:00:00.000000Z", true, JAN1_2024},
        {"2024-01-01T00:00:00.1234567Z", false, 0},
        {"2024-01-01T00:00:00.0000000Z", false, 0},
        {"2024-01-01T00:00:00.Z", false, 0},
        {"2024-01-01T00:00:00.", false, 0},
        /* Offsets. */
        {"2024-01-01T01:00:00+01:00", true, JAN1_2024},
        {"2023-12-31T23:00:00-01:00", true, JAN1_2024},
        {"2024-01-01T00:00:00-05:30", true, JAN1_2024 + 5 * HOUR_US + 30 * MIN_US},
        {"2024-01-01T00:00:00+05:45", true, JAN1_2024 - 5 * HOUR_US - 45 * MIN_US},
        {"2024-01-01T00:00:00+00:00", true, JAN1_2024},
        {"2024-01-01T00:00:00-00:00", true, JAN1_2024},
        {"2024-01-01T00:00:00+23:59", true, JAN1_2024 - 23 * HOUR_US - 59 * MIN_US},
        {"2024-01-01T00:00:00-23:59", true, JAN1_2024 + 23 * HOUR_US + 59 * MIN_US},
        {"2024-01-01T00:00:00.5+01:00", true, JAN1_2024 - HOUR_US + 500000},
        {"2024-01-01T00:00:00.123456-00:01", true, JAN1_2024 + MIN_US + 123456},
        {"2024-01-01T00:00:00+24:00", false, 0},
        {"2024-01-01T00:00:00+01:60", false, 0},
        {"2024-01-01T00:00:00+0100", false, 0},
        {"2024-01-01T00:00:00+01", false, 0},
        {"2024-01-01T00:00:00+1:00", false, 0},
        {"2024-01-01T00:00:00+01:0", false, 0},
        {"2024-01-01T00:00:00+01-00", false, 0},
        {"2024-01-01T00:00:00*01:00", false, 0},
        {"2024-01-01T00:00:00+aa:00", false, 0},
        /* Calendar. */
        {"2023-02-28T00:00:00Z", true, INT64_C(1677542400000000)},
        {"2023-02-29T00:00:00Z", false, 0},
        {"2024-02-29T00:00:00Z", true, INT64_C(1709164800000000)},
        {"2024-02-30T00:00:00Z", false, 0},
        {"2000-02-29T00:00:00Z", true, INT64_C(951782400000000)},
        {"2100-02-29T00:00:00Z", false, 0},
        {"1900-02-29T00:00:00Z", false, 0},
        {"2023-04-30T00:00:00Z", true, INT64_C(1682812800000000)},
        {"2023-04-31T00:00:00Z", false, 0},
        {"2023-06-31T00:00:00Z", false, 0},
        {"2023-09-31T00:00:00Z", false, 0},
        {"2023-11-31T00:00:00Z", false, 0},
        {"2023-12-31T00:00:00Z", true, INT64_C(1703980800000000)},
        {"2023-12-32T00:00:00Z", false, 0},
        /* Every month of 31 days ends there. */
        {"2023-01-31T00:00:00Z", true, INT64_C(1675123200000000)},
        {"2023-01-32T00:00:00Z", false, 0},
        {"2023-03-31T00:00:00Z", true, INT64_C(1680220800000000)},
        {"2023-03-32T00:00:00Z", false, 0},
        {"2023-05-31T00:00:00Z", true, INT64_C(1685491200000000)},
        {"2023-05-32T00:00:00Z", false, 0},
        {"2023-07-31T00:00:00Z", true, INT64_C(1690761600000000)},
        {"2023-07-32T00:00:00Z", false, 0},
        {"2023-08-31T00:00:00Z", true, INT64_C(1693440000000000)},
        {"2023-08-32T00:00:00Z", false, 0},
        {"2023-10-31T00:00:00Z", true, INT64_C(1698710400000000)},
        {"2023-10-32T00:00:00Z", false, 0},
        {"2023-13-01T00:00:00Z", false, 0},
        {"2023-00-10T00:00:00Z", false, 0},
        {"2023-01-00T00:00:00Z", false, 0},
        {"0000-01-01T00:00:00Z", false, 0},
        /* Clock. */
        {"2024-01-01T23:59:59Z", true, JAN1_2024 + 24 * HOUR_US - 1000000},
        {"2024-01-01T24:00:00Z", false, 0},
        {"2024-01-01T25:00:00Z", false, 0},
        {"2024-01-01T00:60:00Z", false, 0},
        {"2024-01-01T00:00:61Z", false, 0},
        /* Second 60: the last second of a UTC month only. */
        {"2016-12-31T23:59:60Z", true, INT64_C(1483228800000000)},
        {"2016-12-31T23:59:60.5Z", true, INT64_C(1483228800500000)},
        {"2015-06-30T23:59:60Z", true, INT64_C(1435708800000000)},
        /* Far from 1970, where the day of the instant must be exact. */
        {"2300-06-30T23:59:60Z", true, INT64_C(10429430400000000)},
        {"2017-01-01T00:59:60+01:00", true, INT64_C(1483228800000000)},
        {"2016-12-31T18:59:60-05:00", true, INT64_C(1483228800000000)},
        {"2020-01-01T00:00:60Z", false, 0},
        {"2016-12-31T23:58:60Z", false, 0},
        {"2016-12-30T23:59:60Z", false, 0},
        {"2016-12-31T23:59:60+01:00", false, 0},
        /* Shape. */
        {"2024-01-01T00:00:00", false, 0},
        {"2024-01-01T00:00:00.5", false, 0},
        {"2024-01-01", false, 0},
        {"", false, 0},
        {"2024-01-01T00:00:00Zx", false, 0},
        {"2024-01-01T00:00:00Z ", false, 0},
        {"2024-01-01T00:00:00ZZ", false, 0},
        {"2024-01-01T00:00:00+01:00x", false, 0},
        {"2024-01-01T00:00:00+01:00Z", false, 0},
        {"2024-01-01T00:00:00.5x", false, 0},
        {" 2024-01-01T00:00:00Z", false, 0},
        {"2024-01-01X00:00:00Z", false, 0},
        /* One separator wrong at a time. */
        {"2024x01-01T00:00:00Z", false, 0},
        {"2024-01x01T00:00:00Z", false, 0},
        {"2024-01-01x00:00:00Z", false, 0},
        {"2024-01-01T00x00:00Z", false, 0},
        {"2024-01-01T00:00x00Z", false, 0},
        {"2024-01-01T00:00:00x000Z", false, 0},
        {"2024-01-01T00:00:00+01x00", false, 0},
        {"2024/01/01T00:00:00Z", false, 0},
        {"2024-01-01T00-00-00Z", false, 0},
        {"2024-1-01T00:00:00Z", false, 0},
        {"2024-01-01T0:00:00Z", false, 0},
        {"+024-01-01T00:00:00Z", false, 0},
        {"2024-0a-01T00:00:00Z", false, 0},
        {"2024-01-01T00:0a:00Z", false, 0},
        {"20240101T000000Z", false, 0},
        /* Before 1970. */
        {"1969-12-31T23:59:59.999999Z", true, -1},
        {"1969-12-31T23:59:59Z", true, -1000000},
        {"1969-07-20T20:17:40Z", true, INT64_C(-14182940000000)},
        {"1900-01-01T00:00:00Z", true, INT64_C(-2208988800000000)},
        {"1600-03-01T00:00:00Z", true, INT64_C(-11670912000000000)},
        {"0001-01-01T00:00:00Z", true, INT64_C(-62135596800000000)},
        {"1970-01-01T00:00:00+00:01", true, -MIN_US},
        {"9999-12-31T23:59:59.999999Z", true, INT64_C(253402300799999999)},
        /* An offset that carries the instant out of years 1..9999. */
        {"0001-01-01T00:00:00+00:01", false, 0},
        {"0001-01-01T00:30:00+01:00", false, 0},
        {"9999-12-31T23:59:59-00:01", false, 0},
        {"9999-12-31T23:30:00-01:00", false, 0},
        {"0001-01-01T00:01:00+00:01", true, INT64_C(-62135596800000000)},
        {"0001-01-01T00:00:00-00:01", true, INT64_C(-62135596800000000) + MIN_US},
        {"9999-12-31T23:58:59-00:01", true, INT64_C(253402300799000000)},
        {"9999-12-31T23:59:59+00:01", true, INT64_C(253402300799000000) - MIN_US},
        /* Pinned: the date as written is checked before the offset
         * applies, so year 0000 is refused even where the offset brings
         * the instant (here 0001-01-01T00:00:00Z) into range. */
        {"0000-12-31T23:00:00-01:00", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_time_parse(cases[i].text, strlen(cases[i].text), cases[i].ok, cases[i].us);
}

static void test_time_parse_exact_len(void **state)
{
    /* Only len bytes are read. */
    const char *s = "2024-01-01T00:00:00Zjunk";
    check_time_parse(s, 20, true, JAN1_2024);
    check_time_parse(s, 21, false, 0);
    check_time_parse(s, 19, false, 0);
    check_time_parse("2024-01-01T00:00:00+01:00", 24, false, 0);
    check_time_parse("2024-01-01T00:00:00.25Z", 23, true, JAN1_2024 + 250000);
    check_time_parse("2024-01-01T00:00:00Z\0", 21, false, 0);
}

static void check_format_text(int64_t us, const char *want)
{
    char buf[TIME_TEXT_MAX + 8];
    memset(buf, 'X', sizeof buf);
    size_t len = time_format_rfc3339(us, buf);
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
    assert_int_equal(len + 1, TIME_TEXT_MAX);
    assert_int_equal(buf[TIME_TEXT_MAX], 'X');
}

static void check_format(int64_t us, const char *want)
{
    check_format_text(us, want);
    char buf[TIME_TEXT_MAX];
    size_t len = time_format_rfc3339(us, buf);
    int64_t back = 0;
    assert_true(time_parse_rfc3339(buf, len, &back));
    assert_int_equal(back, us);
}

static void test_time_format(void **state)
{
    check_format(0, "1970-01-01T00:00:00.000000Z");
    check_format(1, "1970-01-01T00:00:00.000001Z");
    check_format(999999, "1970-01-01T00:00:00.999999Z");
    check_format(1000000, "1970-01-01T00:00:01.000000Z");
    check_format(NOW_US, "2023-11-14T22:13:20.000000Z");
    check_format(INT64_C(1795341600123456), "2026-11-22T10:00:00.123456Z");
    check_format(INT64_C(1709210096789012), "2024-02-29T12:34:56.789012Z");
    check_format(INT64_C(1709251199999999), "2024-02-29T23:59:59.999999Z");
    check_format(INT64_C(1709251200000000), "2024-03-01T00:00:00.000000Z");
    check_format(INT64_C(951782400000000), "2000-02-29T00:00:00.000000Z");
    /* A century year that is not a leap year. */
    check_format(INT64_C(4107542399999999), "2100-02-28T23:59:59.999999Z");
    check_format(INT64_C(4107542400000000), "2100-03-01T00:00:00.000000Z");
    check_format(JAN1_2024 - 1, "2023-12-31T23:59:59.999999Z");
    check_format(INT64_C(253402300799999999), "9999-12-31T23:59:59.999999Z");
    /* Before 1970: the fraction still counts forward within the second. */
    check_format(-1, "1969-12-31T23:59:59.999999Z");
    check_format(-999999, "1969-12-31T23:59:59.000001Z");
    check_format(-1000000, "1969-12-31T23:59:59.000000Z");
    check_format(-1000001, "1969-12-31T23:59:58.999999Z");
    check_format(-1500000, "1969-12-31T23:59:58.500000Z");
    check_format(INT64_C(-86400000000), "1969-12-31T00:00:00.000000Z");
    check_format(INT64_C(-86400000001), "1969-12-30T23:59:59.999999Z");
    check_format(INT64_C(-14182940000000), "1969-07-20T20:17:40.000000Z");
    check_format(INT64_C(-2208988800000000), "1900-01-01T00:00:00.000000Z");
    check_format(INT64_C(-11670912000000000), "1600-03-01T00:00:00.000000Z");
    check_format(INT64_C(-11670912000000001), "1600-02-29T23:59:59.999999Z");
    check_format(INT64_C(-62135596800000000), "0001-01-01T00:00:00.000000Z");
}

/* No accepted time lies outside years 1..9999, but the formatter must
 * still write its fixed 27 characters for any int64: the year is clamped
 * to 0000..9999 (only the year, so the rest is the instant's own month,
 * day and time), and year 0 of the proleptic calendar is written as is. */
static void test_time_format_outside_years_1_9999(void **state)
{
    /* 10000-01-01T00:00:00Z. */
    check_format_text(INT64_C(253402300800000000), "9999-01-01T00:00:00.000000Z");
    check_format_text(INT64_C(253402300800000001), "9999-01-01T00:00:00.000001Z");
    /* Year 0: its last second, its first, and either side of 0000-03-01,
     * below which the era of the calendar arithmetic is negative. */
    check_format_text(INT64_C(-62135596801000000), "0000-12-31T23:59:59.000000Z");
    check_format_text(INT64_C(-62167219200000000), "0000-01-01T00:00:00.000000Z");
    check_format_text(INT64_C(-62162035200000000), "0000-03-01T00:00:00.000000Z");
    check_format_text(INT64_C(-62162035200000001), "0000-02-29T23:59:59.999999Z");
    /* Either side of -0400-03-01, where era -1 begins: under the clamped
     * year, month and day must still be the instant's own. */
    check_format_text(INT64_C(-74784816000000000), "0000-03-01T00:00:00.000000Z");
    check_format_text(INT64_C(-74784816000000001), "0000-02-29T23:59:59.999999Z");
    /* Year -1 is clamped to 0000: it formats like a time of year 0. */
    check_format_text(INT64_C(-62167219200000001), "0000-12-31T23:59:59.999999Z");

    /* The extremes: digits where digits go. */
    const int64_t extremes[] = {INT64_MIN, INT64_MIN + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) {
        char buf[TIME_TEXT_MAX];
        assert_int_equal(time_format_rfc3339(extremes[i], buf), 27);
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
        for (int k = 0; k < 27; k++) {
            bool ok = shape[k] == 'd' ? buf[k] >= '0' && buf[k] <= '9' : buf[k] == shape[k];
            if (!ok)
                fail_msg("time_format_rfc3339(%lld) = \"%s\": bad character at %d",
                         (long long)extremes[i], buf, k);
        }
        assert_int_equal(buf[27], '\0');
    }
    char buf[TIME_TEXT_MAX];
    time_format_rfc3339(INT64_MAX, buf);
    assert_memory_equal(buf, "9999", 4);
    time_format_rfc3339(INT64_MIN, buf);
    assert_memory_equal(buf, "0000", 4);
}

static void test_time_parse_normalises_to_utc(void **state)
{
    /* A time with an offset formats as the same instant in UTC. */
    int64_t us = 0;
    char buf[TIME_TEXT_MAX];
    assert_true(time_parse_rfc3339("2024-03-01T01:30:00.5+02:00", 27, &us));
    time_format_rfc3339(us, buf);
    assert_string_equal(buf, "2024-02-29T23:30:00.500000Z");
    assert_true(time_parse_rfc3339("2023-12-31T22:00:00-03:00", 25, &us));
    time_format_rfc3339(us, buf);
    assert_string_equal(buf, "2024-01-01T01:00:00.000000Z");
}

static void test_time_round_trip(void **state)
{
    /* format(parse(format(x))) over the years 0001..9999, both directions. */
    const int64_t lo = INT64_C(-62135596800000000), hi = INT64_C(253402300799999999);
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 50000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t us = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        if (i % 4 == 0) /* whole seconds too */
            us -= ((us % 1000000) + 1000000) % 1000000;
        char buf[TIME_TEXT_MAX];
        size_t len = time_format_rfc3339(us, buf);
        assert_int_equal(len, 27);
        int64_t back = 0;
        if (!time_parse_rfc3339(buf, len, &back) || back != us)
            fail_msg("round trip of %lld via %s gave %lld", (long long)us, buf, (long long)back);
    }
}

int run_validate_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_valid_id_every_byte),
        cmocka_unit_test(test_valid_currency),
        cmocka_unit_test(test_time_parse_table),
        cmocka_unit_test(test_time_parse_exact_len),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_format_outside_years_1_9999),
        cmocka_unit_test(test_time_parse_normalises_to_utc),
        cmocka_unit_test(test_time_round_trip),
    };
    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
