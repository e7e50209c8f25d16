/*
 * json_writer.c - see json_writer.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "json_writer.h"

void json_writer_init(struct json_writer *w)
{
    w->cap = 4096;
    w->len = 0;
    w->need_comma = false;
    w->data = malloc(w->cap);
    LEDGER_ASSERT(w->data != NULL);
    w->data[0] = '\0';
}

char *json_writer_take(struct json_writer *w, size_t *len)
{
    char *text = w->data;
    *len = w->len;
    w->data = NULL;
    w->len = w->cap = 0;
    return text;
}

static void put(struct json_writer *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        while (w->len + n + 1 > w->cap)
            w->cap *= 2;
        w->data = realloc(w->data, w->cap);
        LEDGER_ASSERT(w->data != NULL);
    }
    memcpy(w->data + w->len, s, n);
    w->len += n;
    w->data[w->len] = '\0';
}

/* Before a value or a key: the comma that separates it from the last. */
static void separate(struct json_writer *w)
{
    if (w->need_comma)
        put(w, ",", 1);
    w->need_comma = true;
}

/* '{' or '[': nothing to separate from inside it yet. */
static void open_container(struct json_writer *w, char c)
{
    separate(w);
    put(w, &c, 1);
    w->need_comma = false;
}

/* '}' or ']': the container is a value, which the next one follows. */
static void close_container(struct json_writer *w, char c)
{
    put(w, &c, 1);
    w->need_comma = true;
}

void jw_object_begin(struct json_writer *w)
{
    open_container(w, '{');
}

void jw_object_end(struct json_writer *w)
{
    close_container(w, '}');
}

void jw_array_begin(struct json_writer *w)
{
    open_container(w, '[');
}

void jw_array_end(struct json_writer *w)
{
    close_container(w, ']');
}

void jw_key(struct json_writer *w, const char *key)
{
    separate(w);
    put(w, "\"", 1);
    put(w, key, strlen(key));
    put(w, "\":", 2);
    w->need_comma = false;
}

/* RFC 8259 section 7: '"', '\' and the control characters must be escaped;
 * every other byte (UTF-8 included) is copied as it is. */
static void put_quoted(struct json_writer *w, const char *s)
{
    put(w, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, run, (size_t)(s - run));
        /* The two-character forms where JSON has one, as jansson and
         * PostgreSQL write them: the metadata limit counts these bytes. */
        char esc[8];
        switch (c) {
        case '"':
        case '\\':
            snprintf(esc, sizeof esc, "\\%c", c);
            break;
        case '\b':
            snprintf(esc, sizeof esc, "\\b");
            break;
        case '\f':
            snprintf(esc, sizeof esc, "\\f");
            break;
        case '\n':
            snprintf(esc, sizeof esc, "\\n");
            break;
        case '\r':
            snprintf(esc, sizeof esc, "\\r");
            break;
        case '\t':
            snprintf(esc, sizeof esc, "\\t");
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
        }
        put(w, esc, strlen(esc));
        run = s + 1;
    }
    put(w, run, (size_t)(s - run));
    put(w, "\"", 1);
}

void jw_key_quoted(struct json_writer *w, const char *key)
{
    separate(w);
    put_quoted(w, key);
    put(w, ":", 1);
    w->need_comma = false;
}

void jw_string(struct json_writer *w, const char *s)
{
    separate(w);
    put_quoted(w, s);
}

void jw_int(struct json_writer *w, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    separate(w);
    put(w, buf, (size_t)n);
}

/* The shortest decimal that reads back as the same double: the number
 * the client most likely wrote (0.1, not 0.10000000000000001). */
size_t jw_real_text(double v, char buf[JW_REAL_TEXT_MAX])
{
    /* At most 24 characters; sized for what the compiler cannot rule out
     * of a precision it does not know. */
    char text[320];
    /* If p digits read back as v, so do p + 1 (printf rounds correctly):
     * a binary search finds the fewest. */
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(text, sizeof text, "%.*g", mid, v);
        if (strtod(text, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    int n = snprintf(text, sizeof text, "%.*g", lo, v);
    memcpy(buf, text, (size_t)n + 1);
    return (size_t)n;
}

void jw_real(struct json_writer *w, double v)
{
    char buf[JW_REAL_TEXT_MAX];
    size_t n = jw_real_text(v, buf);
    separate(w);
    put(w, buf, n);
}

void jw_bool(struct json_writer *w, bool v)
{
    separate(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct json_writer *w)
{
    separate(w);
    put(w, "null", 4);
}

void jw_json(struct json_writer *w, const char *text)
{
    separate(w);
    put(w, text, strlen(text));
}
