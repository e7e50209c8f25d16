/*
 * json_writer.h - appends JSON text to a growing buffer: the responses
 * ledgerd sends most (transfer results, entries pages) are written straight
 * to text rather than built and dumped as jansson trees (for an entries
 * page of 100 entries that cost more CPU than PostgreSQL's query).
 *
 * Output only; requests are still parsed by jansson. Commas are placed by
 * the writer: after '{' or '[' none is needed, after any value one is.
 * Aborts on out-of-memory, like the store's buffers.
 */
#ifndef LEDGER_HTTP_JSON_WRITER_H
#define LEDGER_HTTP_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_writer {
    char *data; /* NUL-terminated; owned until json_writer_take */
    size_t len, cap;
    bool need_comma;
};

void json_writer_init(struct json_writer *w);
/* Hands the text to the caller (to free); w needs json_writer_init again
 * before any further use. */
char *json_writer_take(struct json_writer *w, size_t *len);

void jw_object_begin(struct json_writer *w);
void jw_object_end(struct json_writer *w);
void jw_array_begin(struct json_writer *w);
void jw_array_end(struct json_writer *w);
/* Writes "key": (keys are constants of ours or validated currency codes,
 * and need no escaping). */
void jw_key(struct json_writer *w, const char *key);
/* Writes "key": for any key, escaping what JSON requires. */
void jw_key_quoted(struct json_writer *w, const char *key);
/* Values: */
void jw_string(struct json_writer *w, const char *s);
void jw_int(struct json_writer *w, int64_t v);
/* A finite double, in the fewest digits that read back as it. */
void jw_real(struct json_writer *w, double v);
#define JW_REAL_TEXT_MAX 32
/* The same text into buf (NUL-terminated); returns its length. */
size_t jw_real_text(double v, char buf[JW_REAL_TEXT_MAX]);
void jw_bool(struct json_writer *w, bool v);
void jw_null(struct json_writer *w);
/* A complete JSON text from a trusted source (PostgreSQL's jsonb output). */
void jw_json(struct json_writer *w, const char *text);

#endif
