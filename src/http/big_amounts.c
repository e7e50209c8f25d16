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

#define DEPTH_MAX 8 /* amounts sit at depth 1 or 3; deeper is never one */

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

/* A JSON integer literal (-?(0|[1-9][0-9]*)) that int64 cannot hold. */
static bool big_integer(const char *s, size_t n)
{
    bool negative = n > 0 && s[0] == '-';
    const char *d = s + negative;
    size_t digits = n - negative;
    if (digits == 0 || (d[0] == '0' && digits > 1))
        return false;
    for (size_t i = 0; i < digits; i++)
        if (d[i] < '0' || d[i] > '9')
            return false;
    const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
    return digits > 19 || (digits == 19 && memcmp(d, limit, 19) > 0);
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
            bool figure =
                top && ((top->request && (key_is(top, "amount") || key_is(top, "min_balance"))) ||
                        top->unit_cost);
            if (figure && big_integer(body + i, end - i)) {
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
