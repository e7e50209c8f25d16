/*
 * pg_binary.c - rows in PostgreSQL's binary COPY format (see the COPY
 * reference page, "Binary Format", and each type's send function).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_binary.h"

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC). */
#define PG_EPOCH_US 946684800000000LL

static void put(struct pg_binary *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            fputs("out of memory\n", stderr);
            abort();
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u16(struct pg_binary *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(b, x, 2);
}

static void put_u32(struct pg_binary *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, x, 4);
}

void pgb_free(struct pg_binary *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void pgb_begin(struct pg_binary *b)
{
    b->len = 0;
    put(b, "PGCOPY\n\377\r\n\0", 11);
    put_u32(b, 0); /* flags */
    put_u32(b, 0); /* header extension length */
}

void pgb_end(struct pg_binary *b)
{
    put_u16(b, UINT16_MAX); /* a field count of -1 */
}

void pgb_row(struct pg_binary *b, int n)
{
    put_u16(b, (uint16_t)n);
}

/* The header's fields, 4 bytes each: dimensions, the has-NULL flag, the
 * element type, then each dimension's length and lower bound. */
enum { ARRAY_NDIM = 0, ARRAY_HAS_NULL = 4, ARRAY_ELEM_OID = 8, ARRAY_DIM_LEN = 12 };

void pgb_array_begin(struct pg_binary *b, uint32_t elem_oid)
{
    b->len = 0;
    put_u32(b, 1);
    put_u32(b, 0);
    put_u32(b, elem_oid);
    put_u32(b, 0); /* the length, once known */
    put_u32(b, 1);
}

static void set_u32(struct pg_binary *b, size_t at, uint32_t v)
{
    size_t len = b->len;
    b->len = at;
    put_u32(b, v);
    b->len = len;
}

/* PostgreSQL writes an empty array as one of no dimensions, still with
 * its element type, which it checks. */
void pgb_array_end(struct pg_binary *b, int n, bool has_null)
{
    if (n == 0) {
        set_u32(b, ARRAY_NDIM, 0);
        b->len = ARRAY_DIM_LEN;
        return;
    }
    set_u32(b, ARRAY_HAS_NULL, has_null);
    set_u32(b, ARRAY_DIM_LEN, (uint32_t)n);
}

void pgb_null(struct pg_binary *b)
{
    put_u32(b, UINT32_MAX); /* a length of -1 */
}

void pgb_int8(struct pg_binary *b, int64_t v)
{
    put_u32(b, 8);
    put_u32(b, (uint32_t)((uint64_t)v >> 32));
    put_u32(b, (uint32_t)v);
}

void pgb_bool(struct pg_binary *b, bool v)
{
    put_u32(b, 1);
    put(b, v ? "\1" : "\0", 1);
}

void pgb_text(struct pg_binary *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* A version byte, then the JSON text. */
void pgb_jsonb(struct pg_binary *b, const char *json)
{
    size_t n = strlen(json);
    put_u32(b, (uint32_t)n + 1);
    put(b, "\1", 1);
    put(b, json, n);
}

void pgb_timestamptz(struct pg_binary *b, int64_t unix_us)
{
    pgb_int8(b, unix_us - PG_EPOCH_US);
}

/* Base-10000 digits, most significant first, after their count, the
 * weight of the first, the sign and the display scale. Trailing zero
 * digits are left out, as PostgreSQL stores them. */
void pgb_numeric(struct pg_binary *b, i128 v)
{
    uint16_t digit[10]; /* |v| < 2^127 < 10^40 */
    int n = 0;
    unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    while (u > 0) {
        digit[n++] = (uint16_t)(u % 10000);
        u /= 10000;
    }
    int low = 0;
    while (low < n && digit[low] == 0)
        low++;
    put_u32(b, 8 + 2 * (uint32_t)(n - low));
    put_u16(b, (uint16_t)(n - low));
    put_u16(b, (uint16_t)(n > 0 ? n - 1 : 0));
    put_u16(b, v < 0 ? 0x4000 : 0x0000);
    put_u16(b, 0);
    for (int i = n - 1; i >= low; i--)
        put_u16(b, digit[i]);
}
