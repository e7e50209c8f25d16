/*
 * codec.c - request bodies to C structs, C structs to response bodies.
 *
 * Syntax only: a field's presence, type, charset and size. Whether a
 * transfer may happen is decided by core, never here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "codec.h"

static bool fail(struct codec_error *err, const char *fmt, const char *field)
{
    err->status = STATUS_INVALID_REQUEST;
    snprintf(err->message, sizeof err->message, fmt, field);
    return false;
}

/* Rejects any key of obj not in allowed (NULL-terminated). */
static bool only_known_keys(json_t *obj, const char *const *allowed, struct codec_error *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(key, *a) == 0)
                known = true;
        if (!known)
            return fail(err, "unknown field \"%.64s\"", key);
    }
    return true;
}

static bool get_id(json_t *obj, const char *field, char *out, struct codec_error *err)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL)
        return fail(err, "missing required field \"%s\"", field);
    if (!json_is_string(v) || !valid_id(json_string_value(v), json_string_length(v)))
        return fail(err, "\"%s\" must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -", field);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static bool get_currency(json_t *v, const char *field, char *out, struct codec_error *err)
{
    if (!json_is_string(v) || !valid_currency(json_string_value(v), json_string_length(v)))
        return fail(err, "\"%s\" must be 1 to 16 characters of A-Z 0-9 _", field);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* A JSON integer, or a string of an optional '-' and decimal digits. */
static enum amount_parse_result parse_amount(json_t *v, i128 *out)
{
    if (json_is_integer(v)) {
        *out = (i128)json_integer_value(v);
        return AMOUNT_PARSE_OK;
    }
    if (json_is_string(v))
        return amount_parse(json_string_value(v), json_string_length(v), out);
    return AMOUNT_PARSE_SYNTAX;
}

/* Metadata goes to PostgreSQL's jsonb, which keeps numbers as exact
 * decimals. jansson writes a double in 17 digits (0.1 as
 * 0.10000000000000001), so numbers are written here in the fewest digits
 * that are the same double. */
static void write_any(struct json_writer *w, json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        jw_object_begin(w);
        json_object_foreach(v, key, item)
        {
            jw_key_quoted(w, key);
            write_any(w, item);
        }
        jw_object_end(w);
        break;
    case JSON_ARRAY:
        jw_array_begin(w);
        json_array_foreach(v, i, item) write_any(w, item);
        jw_array_end(w);
        break;
    case JSON_STRING:
        jw_string(w, json_string_value(v));
        break;
    case JSON_INTEGER:
        jw_int(w, json_integer_value(v));
        break;
    case JSON_REAL:
        jw_real(w, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        jw_bool(w, json_is_true(v));
        break;
    case JSON_NULL:
        jw_null(w);
        break;
    }
}

static bool get_metadata(json_t *obj, char **out, struct codec_error *err)
{
    *out = NULL;
    json_t *v = json_object_get(obj, "metadata");
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_object(v))
        return fail(err, "\"%s\" must be a JSON object", "metadata");
    struct json_writer w;
    json_writer_init(&w);
    write_any(&w, v);
    size_t len;
    char *text = json_writer_take(&w, &len);
    if (len > METADATA_MAX) {
        free(text);
        return fail(err, "\"%s\" is larger than 4096 bytes serialised", "metadata");
    }
    *out = text;
    return true;
}

static bool get_seq(json_t *obj, const char *field, bool *has, int64_t *out,
                    struct codec_error *err)
{
    json_t *v = json_object_get(obj, field);
    *has = v != NULL;
    if (v == NULL)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(err, "\"expect.%s\" must be a non-negative integer", field);
    *out = json_integer_value(v);
    return true;
}

/* Currencies in strcmp order, as the store returns them. */
static void sort_cost(struct core_cost *c)
{
    for (int i = 1; i < c->n; i++)
        for (int k = i; k > 0 && strcmp(c->currency[k - 1], c->currency[k]) > 0; k--) {
            char tmp[CURRENCY_LEN_MAX + 1];
            i128 v = c->value[k];
            memcpy(tmp, c->currency[k], sizeof tmp);
            memcpy(c->currency[k], c->currency[k - 1], sizeof tmp);
            memcpy(c->currency[k - 1], tmp, sizeof tmp);
            c->value[k] = c->value[k - 1];
            c->value[k - 1] = v;
        }
}

/* {"USD": "123.45", "BRL": 612}: decimal strings or integers, >= 0, at
 * most 18 fraction digits. An empty map is well formed: it lacks every
 * cost currency, which core judges (missing_unit_cost), like a map that
 * lacks some. */
static bool parse_unit_cost(json_t *v, struct core_cost *c, struct codec_error *err)
{
    if (!json_is_object(v) || json_object_size(v) > COST_CURRENCIES_MAX)
        return fail(err, "\"%s\" must be an object of at most 8 currency: decimal string pairs",
                    "unit_cost");
    const char *key;
    json_t *val;
    memset(c, 0, sizeof *c);
    json_object_foreach(v, key, val)
    {
        if (!valid_currency(key, strlen(key)))
            return fail(err, "\"unit_cost\" has an invalid currency code \"%.32s\"", key);
        char text[32];
        const char *s = NULL;
        if (json_is_string(val)) {
            s = json_string_value(val);
        } else if (json_is_integer(val) && json_integer_value(val) >= 0) {
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(val));
            s = text;
        }
        if (s == NULL || !cost_parse(s, strlen(s), &c->value[c->n]))
            return fail(err,
                        "\"unit_cost.%.32s\" must be a decimal string >= 0 with at most 20"
                        " integer and 18 fraction digits",
                        key);
        snprintf(c->currency[c->n], sizeof c->currency[c->n], "%s", key);
        c->n++;
    }
    sort_cost(c);
    return true;
}

bool codec_parse_transfer(json_t *obj, struct engine_op *op, struct codec_error *err)
{
    static const char *const allowed[] = {"id",           "from",    "to",        "amount",
                                          "currency",     "pending", "timeout_s", "metadata",
                                          "effective_at", "expect",  "unit_cost", NULL};
    memset(op, 0, sizeof *op);
    if (!json_is_object(obj))
        return fail(err, "a transfer must be a JSON object%s", "");
    if (!only_known_keys(obj, allowed, err) || !get_id(obj, "id", op->id, err) ||
        !get_id(obj, "from", op->from, err) || !get_id(obj, "to", op->to, err))
        return false;

    json_t *amount = json_object_get(obj, "amount");
    if (amount == NULL)
        return fail(err, "missing required field \"%s\"", "amount");
    op->core.amount_parse = parse_amount(amount, &op->core.amount);

    json_t *v = json_object_get(obj, "currency");
    if (v && !get_currency(v, "currency", op->core.currency, err))
        return false;
    op->core.has_currency = v != NULL;

    v = json_object_get(obj, "pending");
    if (v && !json_is_boolean(v))
        return fail(err, "\"%s\" must be true or false", "pending");
    op->core.pending = json_is_true(v);
    v = json_object_get(obj, "timeout_s");
    if (v) {
        if (!op->core.pending)
            return fail(err, "\"%s\" applies to pending transfers only", "timeout_s");
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > TIMEOUT_S_MAX)
            return fail(err, "\"%s\" must be an integer from 1 to 315360000 (ten years)",
                        "timeout_s");
        op->core.timeout_s = json_integer_value(v);
    }
    json_t *unit_cost = json_object_get(obj, "unit_cost");
    struct core_cost cost;
    if (unit_cost && !parse_unit_cost(unit_cost, &cost, err))
        return false;

    v = json_object_get(obj, "effective_at");
    if (v) {
        if (!json_is_string(v) || !time_parse_rfc3339(json_string_value(v), json_string_length(v),
                                                      &op->core.effective_us))
            return fail(err, "\"%s\" must be an RFC 3339 date-time", "effective_at");
        op->core.has_effective = true;
    }

    v = json_object_get(obj, "expect");
    if (v) {
        static const char *const expect_keys[] = {"from_seq", "to_seq", NULL};
        if (!json_is_object(v))
            return fail(err, "\"%s\" must be a JSON object", "expect");
        if (!only_known_keys(v, expect_keys, err) ||
            !get_seq(v, "from_seq", &op->core.has_expect_from_seq, &op->core.expect_from_seq,
                     err) ||
            !get_seq(v, "to_seq", &op->core.has_expect_to_seq, &op->core.expect_to_seq, err))
            return false;
    }
    if (!get_metadata(obj, &op->metadata_json, err))
        return false;
    /* Allocated last, so that a refused op owns nothing. */
    if (unit_cost) {
        struct core_cost *copy = malloc(sizeof *copy);
        LEDGER_ASSERT(copy != NULL);
        *copy = cost;
        op->core.unit_cost = copy;
    }
    return true;
}

bool codec_parse_account(json_t *obj, struct store_account *a, struct codec_error *err)
{
    static const char *const allowed[] = {"id",       "currency",        "min_balance",
                                          "metadata", "cost_currencies", NULL};
    memset(a, 0, sizeof *a);
    if (!json_is_object(obj))
        return fail(err, "an account must be a JSON object%s", "");
    if (!only_known_keys(obj, allowed, err) || !get_id(obj, "id", a->ext_id, err))
        return false;
    json_t *v = json_object_get(obj, "currency");
    if (v == NULL)
        return fail(err, "missing required field \"%s\"", "currency");
    if (!get_currency(v, "currency", a->currency, err))
        return false;

    v = json_object_get(obj, "min_balance");
    if (json_is_null(v)) {
        a->min_unbounded = true;
    } else if (v != NULL && parse_amount(v, &a->min_balance) != AMOUNT_PARSE_OK) {
        return fail(err, "\"%s\" must be an integer, a string of digits, or null", "min_balance");
    }

    /* Optional like metadata, so null means absent here too. */
    v = json_object_get(obj, "cost_currencies");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_array(v) || json_array_size(v) > COST_CURRENCIES_MAX)
            return fail(err, "\"%s\" must be a list of at most 8 currency codes",
                        "cost_currencies");
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *code = json_array_get(v, i);
            if (!get_currency(code, "cost_currencies", a->cost_currencies[i], err))
                return false;
        }
        a->n_cost_currencies = (int)json_array_size(v);
        /* A set, kept in the order given (and compared as a set). */
        for (int i = 0; i < a->n_cost_currencies; i++)
            for (int k = 0; k < i; k++)
                if (strcmp(a->cost_currencies[k], a->cost_currencies[i]) == 0)
                    return fail(err, "\"%s\" lists a currency twice", "cost_currencies");
    }
    return get_metadata(obj, &a->metadata_json, err);
}

json_t *codec_amount(i128 v)
{
    char buf[AMOUNT_TEXT_MAX];
    amount_format(v, buf);
    return json_string(buf);
}

json_t *codec_time(int64_t us)
{
    char buf[TIME_TEXT_MAX];
    time_format_rfc3339(us, buf);
    return json_string(buf);
}

json_t *codec_stored_json(const char *text)
{
    return text ? json_loads(text, 0, NULL) : NULL;
}

static void write_amount(struct json_writer *w, const char *key, i128 v)
{
    char buf[AMOUNT_TEXT_MAX];
    amount_format(v, buf);
    jw_key(w, key);
    jw_string(w, buf);
}

static void write_time(struct json_writer *w, const char *key, int64_t us)
{
    char buf[TIME_TEXT_MAX];
    time_format_rfc3339(us, buf);
    jw_key(w, key);
    jw_string(w, buf);
}

void codec_write_account(struct json_writer *w, const struct store_account *a)
{
    jw_object_begin(w);
    jw_key(w, "id");
    jw_string(w, a->ext_id);
    jw_key(w, "currency");
    jw_string(w, a->currency);
    if (a->min_unbounded) {
        jw_key(w, "min_balance");
        jw_null(w);
    } else {
        write_amount(w, "min_balance", a->min_balance);
    }
    jw_key(w, "cost_currencies");
    jw_array_begin(w);
    for (int i = 0; i < a->n_cost_currencies; i++)
        jw_string(w, a->cost_currencies[i]);
    jw_array_end(w);
    /* As PostgreSQL wrote it: jsonb keeps numbers exactly, and jansson
     * could not read integers beyond 64 bits back. */
    jw_key(w, "metadata");
    if (a->metadata_json)
        jw_json(w, a->metadata_json);
    else
        jw_null(w);
    write_amount(w, "balance", a->balance);
    write_amount(w, "pending_out", a->pending_out);
    write_amount(w, "pending_in", a->pending_in);
    /* available is shown, not judged: an i128 difference may not fit, and
     * then the exact figure is still balance - pending_out. */
    i128 available = a->balance;
    if (amount_sub(&available, a->pending_out) == 0)
        write_amount(w, "available", available);
    jw_key(w, "seq");
    jw_int(w, a->seq);
    if (a->avg_cost_json) {
        jw_key(w, "avg_cost");
        jw_json(w, a->avg_cost_json);
    }
    write_time(w, "created_at", a->created_us);
    jw_object_end(w);
}

void codec_write_transfer_fields(struct json_writer *w, const char *id, const char *from,
                                 const char *to, const struct core_transfer *t)
{
    jw_key(w, "id");
    jw_string(w, id);
    jw_key(w, "status");
    jw_string(w, transfer_state_name(t->state));
    jw_key(w, "from");
    jw_string(w, from);
    jw_key(w, "to");
    jw_string(w, to);
    write_amount(w, "amount", t->amount);
    jw_key(w, "currency");
    jw_string(w, t->currency);
    jw_key(w, "pending");
    jw_bool(w, t->pending);
    /* A settled pending transfer reports the entries that settled it. */
    jw_key(w, "from_seq");
    jw_int(w, t->settled ? t->settle_from_seq : t->from_seq);
    jw_key(w, "to_seq");
    jw_int(w, t->settled ? t->settle_to_seq : t->to_seq);
    write_amount(w, "from_balance", t->settled ? t->settle_from_balance : t->from_balance);
    write_amount(w, "to_balance", t->settled ? t->settle_to_balance : t->to_balance);
    write_time(w, "created_at", t->created_us);
    write_time(w, "effective_at", t->effective_us);
    if (t->state == TRANSFER_POSTED && t->pending)
        write_amount(w, "posted_amount", t->posted_amount);
    if (t->pending && t->timeout_s > 0) {
        jw_key(w, "timeout_s");
        jw_int(w, t->timeout_s);
    }
    if (t->deadline_us != TIME_NONE && t->pending)
        write_time(w, "expires_at", t->deadline_us);
    if (t->settled)
        write_time(w, "settled_at", t->settled_us);
    if (t->unit_cost.n > 0) {
        jw_key(w, "unit_cost");
        jw_object_begin(w);
        for (int i = 0; i < t->unit_cost.n; i++) {
            char text[COST_TEXT_MAX];
            cost_format(t->unit_cost.value[i], text);
            jw_key(w, t->unit_cost.currency[i]);
            jw_string(w, text);
        }
        jw_object_end(w);
    }
}

bool codec_parse_batch_item(json_t *obj, struct engine_op *op, struct codec_error *err)
{
    static const char *const post_keys[] = {"action", "id", "amount", NULL};
    static const char *const void_keys[] = {"action", "id", NULL};
    json_t *action = json_is_object(obj) ? json_object_get(obj, "action") : NULL;
    if (action == NULL)
        return codec_parse_transfer(obj, op, err);
    memset(op, 0, sizeof *op);
    const char *name = json_is_string(action) ? json_string_value(action) : "";
    if (strcmp(name, "post") == 0)
        op->core.kind = OP_POST;
    else if (strcmp(name, "void") == 0)
        op->core.kind = OP_VOID;
    else
        return fail(err, "\"%s\" must be \"post\" or \"void\"", "action");
    if (!only_known_keys(obj, op->core.kind == OP_POST ? post_keys : void_keys, err) ||
        !get_id(obj, "id", op->id, err))
        return false;
    json_t *amount = json_object_get(obj, "amount");
    if (amount) {
        op->core.has_amount = true;
        op->core.amount_parse = parse_amount(amount, &op->core.amount);
    }
    return true;
}

bool codec_parse_settle(json_t *obj, enum op_kind kind, struct engine_op *op,
                        struct codec_error *err)
{
    static const char *const post_keys[] = {"amount", NULL};
    static const char *const void_keys[] = {NULL};
    if (obj != NULL && !json_is_object(obj))
        return fail(err, "the body must be a JSON object%s", "");
    if (obj != NULL && !only_known_keys(obj, kind == OP_POST ? post_keys : void_keys, err))
        return false;
    json_t *amount = obj ? json_object_get(obj, "amount") : NULL;
    if (amount) {
        op->core.has_amount = true;
        op->core.amount_parse = parse_amount(amount, &op->core.amount);
    }
    return true;
}

void codec_write_entry(struct json_writer *w, const struct store_entry *e)
{
    jw_object_begin(w);
    jw_key(w, "seq");
    jw_int(w, e->seq);
    jw_key(w, "transfer_id");
    jw_string(w, e->transfer_id);
    jw_key(w, "kind");
    jw_string(w, e->kind);
    write_amount(w, "amount", e->amount);
    write_amount(w, "pending_change", e->pending_change);
    write_amount(w, "balance", e->balance);
    write_amount(w, "pending_out", e->pending_out);
    write_amount(w, "pending_in", e->pending_in);
    if (e->avg_cost_json) {
        jw_key(w, "avg_cost");
        jw_json(w, e->avg_cost_json);
    }
    write_time(w, "effective_at", e->effective_us);
    write_time(w, "created_at", e->created_us);
    jw_object_end(w);
}

json_t *codec_error_body(enum status s, const char *message)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(status_code(s)));
    json_object_set_new(o, "message", json_string(message));
    return o;
}
