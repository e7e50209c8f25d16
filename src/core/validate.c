/*
 * validate.c - ids, currency codes and timestamps (SPEC section 2).
 *
 * Pure functions: no I/O, no clock, no allocation. Calendar arithmetic uses
 * Howard Hinnant's days-from-civil algorithm, so no libc time zone state is
 * involved.
 */
#include "validate.h"

bool valid_id(const char *s, size_t len)
{
    if (len < 1 || len > ID_LEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool valid_currency(const char *s, size_t len)
{
    if (len < 1 || len > CURRENCY_LEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

bool time_parse_rfc3339(const char *s, size_t len, int64_t *us_out)
{
    unsigned y, mo, d, h, mi, sec;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return false;
    size_t i = 19;
    int64_t frac_us = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        size_t n = i - start;
        if (n < 1 || n > 6)
            return false;
        unsigned f;
        digits(s + start, n, &f);
        frac_us = f;
        for (size_t k = n; k < 6; k++)
            frac_us *= 10;
    }
    int64_t offset_s = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        unsigned oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_s = (int64_t)(oh * 3600 + om * 60);
        if (s[i] == '-')
            offset_s = -offset_s;
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    /* RFC 3339 allows second 60 only where a leap second is inserted: the
     * last second of a UTC month (all so far ended June or December). It
     * is read as the first instant of the next month, as PostgreSQL reads
     * it; anywhere else :60 names no instant and is refused. */
    if (sec == 60) {
        int64_t utc_y;
        unsigned utc_m, utc_d;
        civil_from_days(secs / 86400, &utc_y, &utc_m, &utc_d);
        if (secs % 86400 != 0 || utc_d != 1)
            return false;
    }
    /* An offset can carry the instant out of years 1..9999, which the
     * response format cannot write back. */
    static const int64_t first = -62135596800LL; /* 0001-01-01T00:00:00Z */
    static const int64_t last = 253402300799LL;  /* 9999-12-31T23:59:59Z */
    if (secs < first || secs > last)
        return false;
    *us_out = secs * 1000000 + frac_us;
    return true;
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t time_format_rfc3339(int64_t us, char *buf)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    /* Parsing takes years 1 to 9999 only and the clock stays in them; an
     * instant from elsewhere (a row written by hand) outside them still
     * prints as four digits, wrong but within the buffer. */
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    buf[0] = (char)('0' + y / 1000);
    buf[1] = (char)('0' + y / 100 % 10);
    buf[2] = (char)('0' + y / 10 % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, (unsigned)(rem / 3600));
    buf[13] = ':';
    put2(buf + 14, (unsigned)(rem / 60 % 60));
    buf[16] = ':';
    put2(buf + 17, (unsigned)(rem % 60));
    buf[19] = '.';
    for (int k = 25; k >= 20; k--) {
        buf[k] = (char)('0' + frac % 10);
        frac /= 10;
    }
    buf[26] = 'Z';
    buf[27] = '\0';
    return 27;
}
