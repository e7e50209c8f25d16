/*
 * codec.h - JSON <-> the shapes of engine and store, with SPEC section 3's
 * syntax rules (unknown fields, types, ids, limits). Amounts leave as
 * strings, always.
 */
#ifndef LEDGER_HTTP_CODEC_H
#define LEDGER_HTTP_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/engine.h"
#include "json_writer.h"
#include "store/store.h"

/* A syntax error: the status to answer with and a message for people. */
struct codec_error {
    enum status status;
    char message[256];
};

/* Parses one transfer object into op (metadata_json is malloc'd). Returns
 * false with err set on a syntax error. An unusable amount is not a syntax
 * error here: it is recorded in op->amount_parse for core to judge. */
bool codec_parse_transfer(json_t *obj, struct engine_op *op, struct codec_error *err);
/* Parses an account creation body into a (metadata_json is malloc'd). */
bool codec_parse_account(json_t *obj, struct store_account *a, struct codec_error *err);

/* A batch item: a transfer, or {"action": "post"|"void", "id": pending id,
 * "amount": partial (post only)}. */
bool codec_parse_batch_item(json_t *obj, struct engine_op *op, struct codec_error *err);
/* The body of a post ({"amount"} optional) or a void (empty or {}); obj
 * NULL for an empty body. */
bool codec_parse_settle(json_t *obj, enum op_kind kind, struct engine_op *op,
                        struct codec_error *err);

json_t *codec_amount(i128 v);
json_t *codec_time(int64_t us);
/* Parses stored JSON text (metadata, avg_cost); NULL text gives NULL. */
json_t *codec_stored_json(const char *text);

/* An account and its state, as one object. */
void codec_write_account(struct json_writer *w, const struct store_account *a);
/* A transfer result's fields, inside an object the caller opened (so that
 * it can add "replayed" or "metadata"). */
void codec_write_transfer_fields(struct json_writer *w, const char *id, const char *from,
                                 const char *to, const struct core_transfer *t);
/* One entry of an entries page, written straight to text. */
void codec_write_entry(struct json_writer *w, const struct store_entry *e);
json_t *codec_error_body(enum status s, const char *message);

#endif
