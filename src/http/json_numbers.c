/*
 * json_numbers.c - see json_numbers.h.
 *
 * A lexical pass only: it tells strings, numbers, keys and brackets apart
 * so as to know where an amount or metadata is, and leaves all judging of
 * the JSON to jansson. Quoting a number token turns one valid value into
 * another, so a text jansson refuses stays refused and one it accepts
 * stays accepted, with the same structure.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_writer.h"

#include "json_numbers.h"
#include "util/chars.h"

/* Figures sit in objects at depth 1 to 4 (a batch item's unit_cost is the
 * deepest); past DEPTH_MAX nothing is one. */
#define DEPTH_MAX 8

struct frame {
    bool object;
    bool request;   /* an object whose "amount" is an amount */
    bool unit_cost; /* a request's "unit_cost": every member is a figure */
    bool transfers; /* the top-level "transfers" array */
    bool metadata;  /* a request's "metadata", or inside it */
    const char *key;
    size_t key_len;
    bool want_key;
};

/* Whether the frame's current key, as jansson will decode it, is name (an
 * ASCII name): "\u0061mount" is "amount" too. */
static bool key_is(const struct frame *f, const char *name)
{
    if (f->key == NULL)
        return false;
    const char *k = f->key, *end = f->key + f->key_len;
    for (; *name; name++) {
        if (k >= end)
            return false;
        unsigned c = (unsigned char)*k++;
        if (c == '\\') {
            if (k >= end)
                return false;
            char e = *k++;
            if (e == 'u') {
                c = 0;
                for (int i = 0; i < 4; i++) {
                    int h = k < end ? chars_hex_value(*k++) : -1;
                    if (h < 0)
                        return false;
                    c = c * 16 + (unsigned)h;
                }
            } else {
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                const char *at = strchr(from, e);
                if (e == '\0' || at == NULL)
                    return false;
                c = (unsigned char)to[at - from];
            }
        }
        if (c != (unsigned char)*name)
            return false;
    }
    return k == end;
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether s[0..n) is a JSON number, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?,
 * and whether it is an integer (no fraction, no exponent). */
static bool json_number(const char *s, size_t n, bool *integer)
{
    size_t i = s[0] == '-';
    if (i >= n || !digit(s[i]))
        return false;
    if (s[i++] != '0')
        while (i < n && digit(s[i]))
            i++;
    *integer = i == n;
    if (i < n && s[i] == '.') {
        if (++i >= n || !digit(s[i]))
            return false;
        while (i < n && digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !digit(s[i]))
            return false;
        while (i < n && digit(s[i]))
            i++;
    }
    return i == n;
}

/* An integer literal (as json_number accepted it) that int64 holds. */
static bool fits_int64(const char *s, size_t n)
{
    bool negative = s[0] == '-';
    size_t digits = n - negative;
    const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
    return digits < 19 || (digits == 19 && memcmp(s + negative, limit, 19) <= 0);
}

/* Whether the number token s[0..n) in frame f is quoted: in an amount's
 * place, any number but an integer int64 holds (not an integer, or too big
 * for jansson: as a string it says the same, and the amount parser judges
 * it); in a unit_cost, integers beyond int64 only (a fraction there is
 * refused as a number, and would not be as a string). */
static bool quoted(const struct frame *f, const char *s, size_t n)
{
    bool integer;
    if ((f->object && f->want_key) || !json_number(s, n, &integer)) /* jansson refuses it */
        return false;
    if (integer && fits_int64(s, n))
        return false;
    if (f->request && (key_is(f, "amount") || key_is(f, "min_balance")))
        return true;
    return f->unit_cost && integer;
}

static size_t string_end(const char *s, size_t n, size_t i)
{
    for (i++; i < n && s[i] != '"'; i++)
        if (s[i] == '\\')
            i++;
    return i < n ? i + 1 : n;
}

/* Called for each number token s[0..n), with the innermost frame holding
 * it (NULL at the top or past DEPTH_MAX) and whether it is in metadata;
 * false stops the walk. */
typedef bool (*number_fn)(void *cls, const struct frame *top, bool metadata, const char *s,
                          size_t n);

static void walk_numbers(const char *body, size_t len, number_fn visit, void *cls)
{
    struct frame stack[DEPTH_MAX];
    int depth = 0, deep = 0;    /* deep: levels past DEPTH_MAX */
    bool deep_metadata = false; /* what the levels past DEPTH_MAX are in */
    for (size_t i = 0; i < len;) {
        char c = body[i];
        struct frame *top = depth > 0 && deep == 0 ? &stack[depth - 1] : NULL;
        bool in_metadata = deep > 0 ? deep_metadata
                                    : top && (top->metadata || (top->request && !top->want_key &&
                                                                key_is(top, "metadata")));
        if (c == '"') {
            size_t end = string_end(body, len, i);
            if (top && top->object && top->want_key) {
                top->key = body + i + 1;
                top->key_len = end - i - 2;
                top->want_key = false;
            }
            i = end;
        } else if (c == '{' || c == '[') {
            if (depth == DEPTH_MAX || deep > 0) {
                if (deep++ == 0)
                    deep_metadata = in_metadata;
            } else {
                struct frame f = {.object = c == '{', .want_key = c == '{'};
                f.request = f.object && (depth == 0 || (top && top->transfers));
                f.unit_cost = f.object && top && top->request && key_is(top, "unit_cost");
                f.transfers = !f.object && depth == 1 && top->request && key_is(top, "transfers");
                f.metadata = in_metadata;
                stack[depth++] = f;
            }
            i++;
        } else if (c == '}' || c == ']') {
            if (deep > 0)
                deep--;
            else if (depth > 0)
                depth--;
            i++;
        } else if (c == ',') {
            if (top && top->object)
                top->want_key = true;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t end = i;
            while (end < len && strchr("+-.0123456789eE", body[end]) && body[end] != '\0')
                end++;
            if (!visit(cls, top, in_metadata, body + i, end - i))
                return;
            i = end;
        } else {
            i++;
        }
    }
}

struct quotes {
    const char *body;
    size_t *at, n_at, cap; /* offsets of each literal's start and end */
    bool failed;
};

static bool note_quote(void *cls, const struct frame *top, bool metadata, const char *s, size_t n)
{
    (void)metadata;
    struct quotes *q = cls;
    if (top == NULL || !quoted(top, s, n))
        return true;
    if (q->n_at + 2 > q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        size_t *grown = realloc(q->at, cap * sizeof *q->at);
        if (grown == NULL) {
            q->failed = true;
            return false;
        }
        q->at = grown;
        q->cap = cap;
    }
    q->at[q->n_at++] = (size_t)(s - q->body);
    q->at[q->n_at++] = (size_t)(s - q->body) + n;
    return true;
}

char *json_numbers_quote_amounts(const char *body, size_t len, size_t *out_len)
{
    struct quotes q = {.body = body};
    walk_numbers(body, len, note_quote, &q);
    if (q.failed || q.n_at == 0) {
        free(q.at);
        return NULL;
    }
    char *out = malloc(len + q.n_at + 1);
    if (out == NULL) {
        free(q.at);
        return NULL;
    }
    size_t o = 0, from = 0;
    for (size_t k = 0; k < q.n_at; k++) {
        memcpy(out + o, body + from, q.at[k] - from);
        o += q.at[k] - from;
        out[o++] = '"';
        from = q.at[k];
    }
    memcpy(out + o, body + from, len - from);
    o += len - from;
    out[o] = '\0';
    free(q.at);
    *out_len = o;
    return out;
}

/* A decimal number as 0.DIGITS x 10^exp, DIGITS without leading or
 * trailing zeros (none for zero, whatever its sign or exponent). */
struct decimal {
    bool negative;
    const char *digits; /* into the caller's buffer */
    size_t n_digits;
    long long exp;
};

/* Exponents this far out are past any double; clamping them keeps the
 * arithmetic in range and still compares as different. */
#define EXP_CLAMP 100000000LL

/* s[0..n) is a JSON number (json_number); buf has room for n digits. */
static struct decimal decimal_of(const char *s, size_t n, char *buf)
{
    struct decimal d = {.negative = s[0] == '-', .digits = buf};
    size_t i = d.negative;
    long long int_digits = 0, skipped = 0;
    bool fraction = false;
    for (; i < n && (digit(s[i]) || s[i] == '.'); i++) {
        if (s[i] == '.') {
            fraction = true;
            continue;
        }
        int_digits += !fraction;
        if (d.n_digits == 0 && s[i] == '0')
            skipped++; /* a leading zero: the point moves left */
        else
            buf[d.n_digits++] = s[i];
    }
    long long e = 0;
    if (i < n) { /* e or E */
        bool negative = s[++i] == '-';
        i += s[i] == '-' || s[i] == '+';
        for (; i < n; i++)
            if (e < EXP_CLAMP)
                e = e * 10 + (s[i] - '0');
        e = negative ? -e : e;
    }
    while (d.n_digits > 0 && buf[d.n_digits - 1] == '0')
        d.n_digits--;
    d.exp = int_digits - skipped + e;
    return d;
}

/* Whether the literal s[0..n) has the value of the double strtod reads it
 * as, which metadata's writer then writes (jw_real_text). */
static bool real_exact(const char *s, size_t n)
{
    char *digits = malloc(n);
    if (digits == NULL)
        return false; /* refusing is safe, storing a changed value is not */
    struct decimal a = decimal_of(s, n, digits);
    bool same;
    if (a.n_digits == 0 ||
        (a.n_digits <= DBL_DIG && a.exp > DBL_MIN_10_EXP + DBL_DIG && a.exp < DBL_MAX_10_EXP)) {
        /* Zero, or DBL_DIG digits in the normal range: the double reads
         * back as those digits, and as no shorter number. */
        same = true;
    } else if (a.n_digits > DBL_DECIMAL_DIG) {
        same = false; /* the fewest digits of any double are at most 17 */
    } else {
        char text[JW_REAL_TEXT_MAX + 8], shortest[JW_REAL_TEXT_MAX], b_digits[JW_REAL_TEXT_MAX];
        /* 16 or 17 digits, or fewer at the edges of the range: the
         * literal's value fits in text as "0.DIGITSe<exp>", and reads as
         * the double jansson read. */
        int len = snprintf(text, sizeof text, "%s0.%.*se%lld", a.negative ? "-" : "",
                           (int)a.n_digits, a.digits, a.exp);
        size_t m = jw_real_text(strtod(text, NULL), shortest);
        struct decimal b = decimal_of(shortest, m, b_digits);
        same = len > 0 && a.negative == b.negative && a.n_digits == b.n_digits && a.exp == b.exp &&
               memcmp(a.digits, b.digits, a.n_digits) == 0;
    }
    free(digits);
    return same;
}

struct inexact {
    const char *at;
    size_t at_len;
};

static bool find_inexact(void *cls, const struct frame *top, bool metadata, const char *s, size_t n)
{
    (void)top;
    struct inexact *x = cls;
    bool integer;
    /* An integer jansson read is an int64, exact; one it could not hold it
     * refused. */
    if (!metadata || !json_number(s, n, &integer) || integer || real_exact(s, n))
        return true;
    x->at = s;
    x->at_len = n;
    return false;
}

bool json_numbers_metadata_inexact(const char *body, size_t len, const char **at, size_t *at_len)
{
    struct inexact x = {NULL, 0};
    walk_numbers(body, len, find_inexact, &x);
    *at = x.at;
    *at_len = x.at_len;
    return x.at != NULL;
}
