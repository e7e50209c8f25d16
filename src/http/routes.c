/*
 * routes.c - path -> handler, and the handlers themselves.
 *
 * Handlers translate: JSON to engine/store calls and back. Transfers are
 * queued on the engine (the request is suspended until COMMIT); reads and
 * account creation run on a reader thread (readers.c) with a pooled
 * connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_budget.h"
#include "json_numbers.h"
#include "core/apply.h"
#include "internal.h"
#include "util/log.h"

#define ENTRIES_LIMIT_DEFAULT 100
#define ENTRIES_LIMIT_MAX     10000

/* Splits "/v1/a/b/c" after the prefix into at most max segments. */
static int split_path(const char *url, char segs[][ID_LEN_MAX + 2], int max)
{
    int n = 0;
    if (url[0] != '/' || url[1] == '/')
        return -1; /* one spelling per path: no empty segment */
    const char *p = url + 1;
    while (*p) {
        if (n == max)
            return -1;
        size_t len = strcspn(p, "/");
        if (len > ID_LEN_MAX + 1)
            len = ID_LEN_MAX + 1; /* too long for an id: still invalid below */
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        p += strcspn(p, "/");
        if (*p == '/') {
            p++;
            if (*p == '\0' || *p == '/')
                return -1; /* a trailing slash, an empty segment */
        }
    }
    return n;
}

/* Whether the request or an item of its batch has metadata, by its keys as
 * jansson decoded them. */
static bool has_metadata(json_t *root)
{
    if (json_object_get(root, "metadata"))
        return true;
    json_t *items = json_object_get(root, "transfers"), *item;
    size_t i;
    json_array_foreach(items, i, item) if (json_object_get(item, "metadata")) return true;
    return false;
}

static json_t *parse_body(struct http_request *r, struct codec_error *err)
{
    json_error_t jerr;
    if (r->body_len == 0) {
        err->status = STATUS_INVALID_REQUEST;
        snprintf(err->message, sizeof err->message, "request body is empty");
        return NULL;
    }
    enum json_budget_result over;
    json_t *root = json_budget_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr, &over);
    bool requoted = false;
    if (root == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        size_t len;
        char *quoted = json_numbers_quote_amounts(r->body, r->body_len, &len);
        if (quoted) {
            root = json_budget_loadb(quoted, len, JSON_REJECT_DUPLICATES, &jerr, &over);
            requoted = true;
            free(quoted);
        }
    }
    if (root == NULL && over != JSON_BUDGET_OK) {
        err->status = over == JSON_BUDGET_BUSY ? STATUS_UNAVAILABLE : STATUS_INVALID_REQUEST;
        snprintf(err->message, sizeof err->message, "%s",
                 over == JSON_BUDGET_BUSY
                     ? "other requests' JSON holds the memory this one needs; nothing was "
                       "applied; retry"
                     : "the body holds too many JSON values to read (they would take more than "
                       "384 MiB)");
        return NULL;
    }
    if (root == NULL) {
        err->status = STATUS_INVALID_REQUEST;
        /* After quoting, byte positions are those of the quoted text. */
        if (json_error_code(&jerr) == json_error_numeric_overflow)
            snprintf(err->message, sizeof err->message,
                     "malformed JSON: a number too large to read (only amounts and unit costs "
                     "may be integers beyond 64 bits; send other figures as strings)");
        else if (json_error_code(&jerr) == json_error_null_character)
            /* Valid JSON, but PostgreSQL's text and jsonb cannot hold it. */
            snprintf(err->message, sizeof err->message,
                     "a string holds \\u0000, which the ledger cannot store");
        else if (requoted)
            snprintf(err->message, sizeof err->message, "malformed JSON: %s", jerr.text);
        else
            snprintf(err->message, sizeof err->message, "malformed JSON at byte %d: %s",
                     jerr.position, jerr.text);
        return NULL;
    }
    const char *at;
    size_t at_len;
    if (has_metadata(root) && json_numbers_metadata_inexact(r->body, r->body_len, &at, &at_len)) {
        json_decref(root);
        err->status = STATUS_INVALID_REQUEST;
        snprintf(err->message, sizeof err->message,
                 "metadata holds the number %.*s%s, which would not be kept exactly (a double "
                 "holds about 16 significant digits); send it as a string",
                 (int)(at_len < 40 ? at_len : 40), at, at_len > 40 ? "..." : "");
        return NULL;
    }
    return root;
}

static enum MHD_Result take_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct http_request *r = cls;
    /* %00 stays encoded (server.c, unescape), but a raw NUL byte would
     * end a C string early: "limit=5<NUL>x" read as 5. */
    if (strlen(key) != key_size || (value != NULL && strlen(value) != value_size)) {
        r->nul_in_args = true;
        return MHD_NO;
    }
    /* Which of two values was meant is not ours to guess. */
    for (int i = 0; i < r->n_args; i++)
        if (strcmp(r->arg_key[i], key) == 0) {
            r->repeated_arg = r->arg_key[i];
            return MHD_NO;
        }
    if (r->n_args == ARGS_MAX) {
        r->too_many_args = true;
        return MHD_NO;
    }
    r->arg_key[r->n_args] = key;
    r->arg_value[r->n_args++] = value;
    return MHD_YES;
}

/* The value of query argument key, or NULL. */
static const char *arg(const struct http_request *r, const char *key)
{
    for (int i = 0; i < r->n_args; i++)
        if (strcmp(r->arg_key[i], key) == 0)
            return r->arg_value[i];
    return NULL;
}

/* Rejects query parameters other than the allowed ones. */
static bool only_known_args(struct http_request *r, const char *const *allowed, char *bad,
                            size_t badlen)
{
    if (r->too_many_args) {
        snprintf(bad, badlen, "more than %d different query parameters", ARGS_MAX);
        return false;
    }
    if (r->nul_in_args) {
        snprintf(bad, badlen, "a query parameter holds a NUL byte");
        return false;
    }
    if (r->repeated_arg) {
        snprintf(bad, badlen, "query parameter \"%.64s\" given more than once", r->repeated_arg);
        return false;
    }
    for (int i = 0; i < r->n_args; i++) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, r->arg_key[i]) != 0)
            a++;
        if (*a == NULL) {
            snprintf(bad, badlen, "unknown query parameter \"%.64s\"", r->arg_key[i]);
            return false;
        }
        if (r->arg_value[i] == NULL) { /* "?limit": which limit is not ours to guess */
            snprintf(bad, badlen, "query parameter \"%.64s\" has no value", r->arg_key[i]);
            return false;
        }
    }
    return true;
}

/* A string of decimal digits; values past INT64_MAX saturate (a limit
 * that large is capped, an after_seq that large is past every entry). */
static bool parse_nonneg(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v > (INT64_MAX - (*p - '0')) / 10)
            v = INT64_MAX;
        else
            v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

static PGconn *pool_get_or_reply(struct http_request *r, enum MHD_Result *ret)
{
    PGconn *c = store_pool_get(r->srv->pool);
    if (c == NULL)
        *ret = http_reply_error(r, STATUS_UNAVAILABLE, "the database cannot be reached");
    return c;
}

static enum MHD_Result reply_written(struct http_request *r, int http_status, struct json_writer *w)
{
    size_t len;
    char *text = json_writer_take(w, &len);
    return http_reply_text(r, http_status, "application/json", text, len);
}

static enum MHD_Result db_error_reply(struct http_request *r, PGconn *c)
{
    metrics_db_error();
    log_warn("read query failed: %s", PQerrorMessage(c));
    store_pool_put(r->srv->pool, c);
    return http_reply_error(r, STATUS_UNAVAILABLE, "the database cannot be reached");
}

static enum MHD_Result accounts_create(struct http_request *r, const char *no_id)
{
    struct codec_error err;
    json_t *root = parse_body(r, &err);
    if (root == NULL)
        return http_reply_error(r, err.status, err.message);
    struct store_account in, out;
    memset(&out, 0, sizeof out);
    bool ok = codec_parse_account(root, &in, &err);
    json_decref(root);
    if (!ok)
        return http_reply_error(r, err.status, err.message);
    enum MHD_Result ret;
    PGconn *c = pool_get_or_reply(r, &ret);
    if (c == NULL) {
        store_account_free(&in);
        return ret;
    }
    enum store_create_outcome o = store_create_account(c, &in, &out);
    store_account_free(&in);
    if (o == STORE_CREATE_FAILED)
        return db_error_reply(r, c);
    store_pool_put(r->srv->pool, c);
    if (o == STORE_EXISTS_DIFFERENT) {
        store_account_free(&out);
        return http_reply_error(r, STATUS_ACCOUNT_EXISTS,
                                "an account with this id exists with a different body");
    }
    struct json_writer w;
    json_writer_init(&w);
    codec_write_account(&w, &out);
    store_account_free(&out);
    return reply_written(r, o == STORE_CREATED ? 201 : 200, &w);
}

static enum MHD_Result account_get(struct http_request *r, const char *id)
{
    enum MHD_Result ret;
    PGconn *c = pool_get_or_reply(r, &ret);
    if (c == NULL)
        return ret;
    struct store_account a;
    int found = store_get_account(c, id, &a);
    if (found < 0)
        return db_error_reply(r, c);
    store_pool_put(r->srv->pool, c);
    if (found == 0)
        return http_reply_error(r, STATUS_ACCOUNT_NOT_FOUND, "no account with this id");
    struct json_writer w;
    json_writer_init(&w);
    codec_write_account(&w, &a);
    store_account_free(&a);
    return reply_written(r, 200, &w);
}

static enum MHD_Result account_balance(struct http_request *r, const char *id)
{
    const char *at = arg(r, "at");
    int64_t at_us = INT64_MAX;
    char at_buf[64];
    if (at && strlen(at) < sizeof at_buf) {
        /* An unencoded '+' of an offset arrives as a space (form encoding). */
        snprintf(at_buf, sizeof at_buf, "%s", at);
        for (char *p = at_buf; *p; p++)
            if (*p == ' ')
                *p = '+';
        at = at_buf;
    }
    if (at && !time_parse_rfc3339(at, strlen(at), &at_us))
        return http_reply_error(r, STATUS_INVALID_REQUEST, "\"at\" must be an RFC 3339 date-time");
    enum MHD_Result ret;
    PGconn *c = pool_get_or_reply(r, &ret);
    if (c == NULL)
        return ret;
    json_t *body = NULL;
    if (at == NULL) {
        struct store_account a;
        int found = store_get_account(c, id, &a);
        if (found < 0)
            return db_error_reply(r, c);
        if (found) {
            body = json_object();
            json_object_set_new(body, "id", json_string(a.ext_id));
            json_object_set_new(body, "balance", codec_amount(a.balance));
            json_object_set_new(body, "seq", json_integer(a.seq));
            json_t *avg = codec_stored_json(a.avg_cost_json);
            if (avg)
                json_object_set_new(body, "avg_cost", avg);
            store_account_free(&a);
        }
    } else {
        struct store_balance_at b;
        int found = store_balance_at(c, id, at_us, &b);
        if (found < 0)
            return db_error_reply(r, c);
        if (found) {
            body = json_object();
            json_object_set_new(body, "id", json_string(id));
            json_object_set_new(body, "at", codec_time(at_us));
            json_object_set_new(body, "balance", codec_amount(b.balance));
            json_object_set_new(body, "seq", json_integer(b.seq));
            json_t *avg = codec_stored_json(b.avg_cost_json);
            if (avg)
                json_object_set_new(body, "avg_cost", avg);
            free(b.avg_cost_json);
        }
    }
    store_pool_put(r->srv->pool, c);
    if (body == NULL)
        return http_reply_error(r, STATUS_ACCOUNT_NOT_FOUND, "no account with this id");
    return http_reply_json(r, 200, body);
}

static enum MHD_Result account_entries(struct http_request *r, const char *id)
{
    const char *after = arg(r, "after_seq");
    const char *lim = arg(r, "limit");
    int64_t after_seq = 0, limit = ENTRIES_LIMIT_DEFAULT;
    if (after && !parse_nonneg(after, &after_seq))
        return http_reply_error(r, STATUS_INVALID_REQUEST,
                                "\"after_seq\" must be a non-negative integer");
    if (lim && (!parse_nonneg(lim, &limit) || limit < 1))
        return http_reply_error(r, STATUS_INVALID_REQUEST, "\"limit\" must be a positive integer");
    if (limit > ENTRIES_LIMIT_MAX)
        limit = ENTRIES_LIMIT_MAX;
    enum MHD_Result ret;
    PGconn *c = pool_get_or_reply(r, &ret);
    if (c == NULL)
        return ret;
    struct store_entry *entries;
    int n;
    int found = store_list_entries(c, id, after_seq, (int)limit, &entries, &n);
    if (found < 0)
        return db_error_reply(r, c);
    store_pool_put(r->srv->pool, c);
    if (found == 0)
        return http_reply_error(r, STATUS_ACCOUNT_NOT_FOUND, "no account with this id");
    bool more = n > limit;
    int shown = more ? (int)limit : n;
    struct json_writer w;
    json_writer_init(&w);
    jw_object_begin(&w);
    jw_key(&w, "entries");
    jw_array_begin(&w);
    for (int i = 0; i < shown; i++)
        codec_write_entry(&w, &entries[i]);
    jw_array_end(&w);
    jw_key(&w, "next_after_seq");
    if (more)
        jw_int(&w, entries[shown - 1].seq);
    else
        jw_null(&w);
    jw_object_end(&w);
    store_entries_free(entries, n);
    return reply_written(r, 200, &w);
}

static enum MHD_Result transfer_get(struct http_request *r, const char *id)
{
    enum MHD_Result ret;
    PGconn *c = pool_get_or_reply(r, &ret);
    if (c == NULL)
        return ret;
    struct store_transfer t;
    int found = store_get_transfer(c, id, &t);
    if (found < 0)
        return db_error_reply(r, c);
    store_pool_put(r->srv->pool, c);
    if (found == 0)
        return http_reply_error(r, STATUS_TRANSFER_NOT_FOUND, "no transfer with this id");
    struct json_writer w;
    json_writer_init(&w);
    jw_object_begin(&w);
    codec_write_transfer_fields(&w, t.ext_id, t.from, t.to, &t.t);
    jw_key(&w, "metadata");
    if (t.metadata_json)
        jw_json(&w, t.metadata_json);
    else
        jw_null(&w);
    jw_object_end(&w);
    free(t.metadata_json);
    return reply_written(r, 200, &w);
}

static void engine_done(struct engine_request *er)
{
    struct http_request *r = er->done_arg;
    r->phase = PHASE_COMMITTED;
    MHD_resume_connection(r->conn);
}

static enum MHD_Result queue_transfers(struct http_request *r)
{
    r->engine_req.done = engine_done;
    r->engine_req.done_arg = r;
    r->phase = PHASE_QUEUED;
    MHD_suspend_connection(r->conn);
    enum engine_submit_result queued = engine_submit(r->srv->engine, &r->engine_req);
    if (queued != ENGINE_QUEUED) {
        r->phase = PHASE_READING;
        MHD_resume_connection(r->conn);
        return http_reply_error(r, STATUS_UNAVAILABLE,
                                queued == ENGINE_FULL
                                    ? "the write queue is full; nothing was applied; retry later"
                                    : SHUTTING_DOWN_MESSAGE);
    }
    return MHD_YES;
}

static enum MHD_Result transfers_create(struct http_request *r)
{
    struct codec_error err;
    json_t *root = parse_body(r, &err);
    if (root == NULL)
        return http_reply_error(r, err.status, err.message);
    r->engine_req.ops = calloc(1, sizeof *r->engine_req.ops);
    if (r->engine_req.ops == NULL) {
        json_decref(root);
        return MHD_NO;
    }
    r->engine_req.n_ops = 1;
    r->engine_req.atomic = true;
    bool ok = codec_parse_transfer(root, &r->engine_req.ops[0], &err);
    json_decref(root);
    if (!ok)
        return http_reply_error(r, err.status, err.message);
    enum status s =
        core_check_amount(r->engine_req.ops[0].core.amount_parse, r->engine_req.ops[0].core.amount);
    if (s != STATUS_OK)
        return http_reply_error(r, s, status_message(s));
    return queue_transfers(r);
}

/* POST /v1/transfers/{id}/post and /void: one settle op through the engine. */
static enum MHD_Result transfer_settle(struct http_request *r, const char *id, enum op_kind kind)
{
    struct codec_error err;
    json_t *root = NULL;
    if (r->body_len > 0) {
        root = parse_body(r, &err);
        if (root == NULL)
            return http_reply_error(r, err.status, err.message);
    }
    r->engine_req.ops = calloc(1, sizeof *r->engine_req.ops);
    if (r->engine_req.ops == NULL) {
        json_decref(root);
        return MHD_NO;
    }
    r->engine_req.n_ops = 1;
    r->engine_req.atomic = true;
    struct engine_op *op = &r->engine_req.ops[0];
    op->core.kind = kind;
    snprintf(op->id, sizeof op->id, "%.*s", ID_LEN_MAX, id); /* valid_id: never cut */
    bool ok = codec_parse_settle(root, kind, op, &err);
    json_decref(root);
    if (!ok)
        return http_reply_error(r, err.status, err.message);
    if (op->core.has_amount &&
        core_check_amount(op->core.amount_parse, op->core.amount) != STATUS_OK)
        return http_reply_error(r, STATUS_INVALID_AMOUNT, status_message(STATUS_INVALID_AMOUNT));
    r->is_settle = true;
    return queue_transfers(r);
}

static enum MHD_Result transfers_batch(struct http_request *r)
{
    struct codec_error err;
    json_t *root = parse_body(r, &err);
    if (root == NULL)
        return http_reply_error(r, err.status, err.message);
    enum MHD_Result ret;
    json_t *list = json_object_get(root, "transfers");
    json_t *atomic = json_object_get(root, "atomic");
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "transfers") != 0 && strcmp(key, "atomic") != 0) {
            snprintf(err.message, sizeof err.message, "unknown field \"%.64s\"", key);
            ret = http_reply_error(r, STATUS_INVALID_REQUEST, err.message);
            goto out;
        }
    }
    if (!json_is_array(list) || (atomic && !json_is_boolean(atomic))) {
        ret = http_reply_error(r, STATUS_INVALID_REQUEST,
                               "body must be {\"transfers\": [...], \"atomic\": true|false}");
        goto out;
    }
    size_t n = json_array_size(list);
    if (n > BATCH_TRANSFERS_MAX) {
        ret = http_reply_error(r, STATUS_BATCH_TOO_LARGE, "a batch holds at most 8190 transfers");
        goto out;
    }
    if (n == 0) { /* "up to 8,190" includes none: nothing to apply, nothing to answer */
        char *text = strdup("{\"results\":[]}");
        ret = text ? http_reply_text(r, 200, "application/json", text, strlen(text)) : MHD_NO;
        goto out;
    }
    r->is_batch = true;
    r->engine_req.ops = calloc(n, sizeof *r->engine_req.ops);
    if (r->engine_req.ops == NULL) {
        ret = MHD_NO;
        goto out;
    }
    r->engine_req.atomic = json_is_true(atomic);
    for (size_t i = 0; i < n; i++) {
        r->engine_req.n_ops = (int)i;
        if (!codec_parse_batch_item(json_array_get(list, i), &r->engine_req.ops[i], &err)) {
            char msg[300];
            snprintf(msg, sizeof msg, "transfers[%zu]: %s", i, err.message);
            ret = http_reply_error(r, err.status, msg);
            goto out;
        }
    }
    r->engine_req.n_ops = (int)n;
    ret = queue_transfers(r);
out:
    json_decref(root);
    return ret;
}

enum MHD_Result routes_reply_committed(struct http_request *r)
{
    struct engine_request *er = &r->engine_req;
    if (er->status != STATUS_OK)
        return http_reply_error(r, STATUS_UNAVAILABLE,
                                "the database cannot be reached; nothing was applied unless a "
                                "retry with the same id says replayed");
    struct json_writer w;
    if (!r->is_batch) {
        struct engine_op *op = &er->ops[0];
        if (op->core.status != STATUS_OK)
            return http_reply_error(r, op->core.status, status_message(op->core.status));
        json_writer_init(&w);
        jw_object_begin(&w);
        codec_write_transfer_fields(&w, op->id, op->from, op->to, op->core.result);
        jw_key(&w, "replayed");
        jw_bool(&w, op->core.replayed);
        jw_object_end(&w);
        return reply_written(r, op->core.replayed || r->is_settle ? 200 : 201, &w);
    }
    json_writer_init(&w);
    jw_object_begin(&w);
    jw_key(&w, "results");
    jw_array_begin(&w);
    for (int i = 0; i < er->n_ops; i++) {
        struct engine_op *op = &er->ops[i];
        jw_object_begin(&w);
        if (op->core.status == STATUS_OK) {
            codec_write_transfer_fields(&w, op->id, op->from, op->to, op->core.result);
            jw_key(&w, "replayed");
            jw_bool(&w, op->core.replayed);
        } else {
            jw_key(&w, "id");
            jw_string(&w, op->id);
            jw_key(&w, "status");
            jw_string(&w, "rejected");
            jw_key(&w, "error");
            jw_string(&w, status_code(op->core.status));
            jw_key(&w, "message");
            jw_string(&w, status_message(op->core.status));
        }
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_object_end(&w);
    return reply_written(r, 200, &w);
}

void routes_request_free(struct http_request *r)
{
    for (int i = 0; i < r->engine_req.n_ops; i++) {
        free(r->engine_req.ops[i].metadata_json);
        free((void *)r->engine_req.ops[i].core.unit_cost);
    }
    free(r->engine_req.ops);
    r->engine_req.ops = NULL;
    free(r->engine_req.results);
    r->engine_req.results = NULL;
    free(r->kept_text);
    r->kept_text = NULL;
}

static enum MHD_Result healthz(struct http_request *r, const char *no_id)
{
    PGconn *c = store_pool_get(r->srv->pool);
    bool ok = c != NULL && store_ping(c);
    if (c)
        store_pool_put(r->srv->pool, c);
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string(ok ? "ok" : "unavailable"));
    json_object_set_new(body, "database", json_boolean(ok));
    return http_reply_json(r, ok ? 200 : 503, body);
}

static enum MHD_Result metrics(struct http_request *r)
{
    size_t len;
    char *text =
        metrics_render(&len, engine_queued_ops(r->srv->engine), r->srv->engine->queued_ops_max);
    if (text == NULL)
        return MHD_NO;
    return http_reply_text(r, 200, "text/plain; version=0.0.4", text, len);
}

/* Runs fn, which may wait on the database, on a reader thread: the
 * connection stays suspended until the reader has its answer. */
static enum MHD_Result defer_read(struct http_request *r, read_fn fn, const char *id)
{
    r->read = fn;
    snprintf(r->read_id, sizeof r->read_id, "%.*s", ID_LEN_MAX, id ? id : "");
    r->phase = PHASE_READ_QUEUED;
    MHD_suspend_connection(r->conn);
    enum readers_submit_result queued = readers_submit(&r->srv->readers, r);
    if (queued != READ_QUEUED) {
        r->phase = PHASE_READING;
        MHD_resume_connection(r->conn);
        return http_reply_error(r, STATUS_UNAVAILABLE,
                                queued == READ_STOPPING ? SHUTTING_DOWN_MESSAGE
                                                        : "too many reads are waiting; retry");
    }
    return MHD_YES;
}

static enum MHD_Result method_not_allowed(struct http_request *r, const char *allowed)
{
    char msg[32];
    snprintf(msg, sizeof msg, "use %s", allowed);
    r->allow = allowed;
    return http_reply_error(r, STATUS_METHOD_NOT_ALLOWED, msg);
}

/* The query parameters a /v1 route reads. Any other is refused, so that
 * one the client meant ("dry_run=1", say) is never silently ignored by a
 * request that moves money. */
static const char *const *route_args(enum metrics_route route)
{
    static const char *const none[] = {NULL};
    static const char *const balance[] = {"at", NULL};
    static const char *const entries[] = {"after_seq", "limit", NULL};
    return route == ROUTE_ACCOUNT_BALANCE   ? balance
           : route == ROUTE_ACCOUNT_ENTRIES ? entries
                                            : none;
}

/* Which /v1 route seg[1..n) names; ROUTE_OTHER if none. */
static enum metrics_route v1_route(char seg[][ID_LEN_MAX + 2], int n, bool post)
{
    if (strcmp(seg[1], "accounts") == 0) {
        if (n == 2)
            return ROUTE_ACCOUNTS_CREATE;
        if (n == 3)
            return ROUTE_ACCOUNT_GET;
        if (n == 4 && strcmp(seg[3], "balance") == 0)
            return ROUTE_ACCOUNT_BALANCE;
        if (n == 4 && strcmp(seg[3], "entries") == 0)
            return ROUTE_ACCOUNT_ENTRIES;
    } else if (strcmp(seg[1], "transfers") == 0) {
        if (n == 2)
            return ROUTE_TRANSFER_CREATE;
        /* "batch" is also a valid transfer id, to GET. */
        if (n == 3)
            return strcmp(seg[2], "batch") == 0 && post ? ROUTE_TRANSFER_BATCH : ROUTE_TRANSFER_GET;
        if (n == 4 && strcmp(seg[3], "post") == 0)
            return ROUTE_TRANSFER_POST;
        if (n == 4 && strcmp(seg[3], "void") == 0)
            return ROUTE_TRANSFER_VOID;
    }
    return ROUTE_OTHER;
}

enum MHD_Result routes_dispatch(struct http_request *r, const char *method, const char *url)
{
    char seg[4][ID_LEN_MAX + 2];
    int n = split_path(url, seg, 4);
    /* HEAD is GET without the body, which libmicrohttpd leaves out (RFC 9110, 9.3.2). */
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, take_arg, r);

    if (n == 1 && strcmp(seg[0], "healthz") == 0) {
        r->route = ROUTE_HEALTHZ;
        return get ? defer_read(r, healthz, NULL) : method_not_allowed(r, "GET");
    }
    if (n == 1 && strcmp(seg[0], "metrics") == 0) {
        r->route = ROUTE_METRICS;
        return get ? metrics(r) : method_not_allowed(r, "GET");
    }
    if (n < 2 || strcmp(seg[0], "v1") != 0 || (r->route = v1_route(seg, n, post)) == ROUTE_OTHER)
        return http_reply_error(r, STATUS_NOT_FOUND, "no such endpoint");

    /* Then, in this order: the method, the id, the query parameters. */
    enum metrics_route route = r->route;
    const char *id = n >= 3 ? seg[2] : NULL;
    bool by_get = route == ROUTE_ACCOUNT_GET || route == ROUTE_ACCOUNT_BALANCE ||
                  route == ROUTE_ACCOUNT_ENTRIES || route == ROUTE_TRANSFER_GET;
    if (by_get ? !get : !post)
        return method_not_allowed(r, !by_get ? "POST"
                                     : route == ROUTE_TRANSFER_GET && strcmp(id, "batch") == 0
                                         ? "GET, POST"
                                         : "GET");
    if (id != NULL && route != ROUTE_TRANSFER_BATCH && !valid_id(id, strlen(id)))
        return http_reply_error(r, STATUS_INVALID_REQUEST,
                                strcmp(seg[1], "accounts") == 0 ? "invalid account id"
                                                                : "invalid transfer id");
    char msg[128];
    if (!only_known_args(r, route_args(route), msg, sizeof msg))
        return http_reply_error(r, STATUS_INVALID_REQUEST, msg);

    switch (route) {
    case ROUTE_ACCOUNTS_CREATE:
        return defer_read(r, accounts_create, NULL);
    case ROUTE_ACCOUNT_GET:
        return defer_read(r, account_get, id);
    case ROUTE_ACCOUNT_BALANCE:
        return defer_read(r, account_balance, id);
    case ROUTE_ACCOUNT_ENTRIES:
        return defer_read(r, account_entries, id);
    case ROUTE_TRANSFER_CREATE:
        return transfers_create(r);
    case ROUTE_TRANSFER_BATCH:
        return transfers_batch(r);
    case ROUTE_TRANSFER_GET:
        return defer_read(r, transfer_get, id);
    default: /* ROUTE_TRANSFER_POST, ROUTE_TRANSFER_VOID */
        return transfer_settle(r, id, route == ROUTE_TRANSFER_POST ? OP_POST : OP_VOID);
    }
}
