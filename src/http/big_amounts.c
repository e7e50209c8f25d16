/*
 * big_amounts.c - see big_amounts.h.
 *
 * A lexical pass only: it tells strings, numbers, keys and brackets apart
 * so as to know where an amount is, and leaves all judging of the JSON to
 * jansson, which parses the result. Quoting a number token turns one valid
 * value into another, so a text jansson refuses stays refused and one it
 * accepts stays accepted, with the same structure.
 */
#include <stdlib.h>
#include <string.h>

#include "big_amounts.h"

/* Figures sit in objects at depth 1 to 4 (a batch item's unit_cost is the
 * deepest); past DEPTH_MAX nothing is one. */
#define DEPTH_MAX 8

struct frame {
    bool object;
    bool request;   /* an object whose "amount" is an amount */
    bool unit_cost; /* a request's "unit_cost": every member is a figure */
    bool transfers; /* the top-level "transfers" array */
    const char *key;
    size_t key_len;
    bool want_key;
};

static bool key_is(const struct frame *f, const char *name)
{
    return f->key && f->key_len == strlen(name) && memcmp(f->key, name, f->key_len) == 0;
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

char *big_amounts_quote(const char *body, size_t len, size_t *out_len)
{
    struct frame stack[DEPTH_MAX];
    int depth = 0, deep = 0; /* deep: levels past DEPTH_MAX */
    size_t *at = NULL, n_at = 0, cap = 0;
    for (size_t i = 0; i < len;) {
        char c = body[i];
        struct frame *top = depth > 0 && deep == 0 ? &stack[depth - 1] : NULL;
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
                deep++;
            } else {
                struct frame f = {.object = c == '{', .want_key = c == '{'};
                f.request = f.object && (depth == 0 || (top && top->transfers));
                f.unit_cost = f.object && top && top->request && key_is(top, "unit_cost");
                f.transfers = !f.object && depth == 1 && top->request && key_is(top, "transfers");
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
            if (top && quoted(top, body + i, end - i)) {
                if (n_at + 2 > cap) {
                    cap = cap ? cap * 2 : 16;
                    size_t *grown = realloc(at, cap * sizeof *at);
                    if (grown == NULL) {
                        free(at);
                        return NULL;
                    }
                    at = grown;
                }
                at[n_at++] = i;
                at[n_at++] = end;
            }
            i = end;
        } else {
            i++;
        }
    }
    if (n_at == 0)
        return NULL;
    char *out = malloc(len + n_at + 1);
    if (out == NULL) {
        free(at);
        return NULL;
    }
    size_t o = 0, from = 0;
    for (size_t k = 0; k < n_at; k++) {
        memcpy(out + o, body + from, at[k] - from);
        o += at[k] - from;
        out[o++] = '"';
        from = at[k];
    }
    memcpy(out + o, body + from, len - from);
    o += len - from;
    out[o] = '\0';
    free(at);
    *out_len = o;
    return out;
}
