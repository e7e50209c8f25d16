/*
 * internal.h - what server.c and routes.c share.
 */
#ifndef LEDGER_HTTP_INTERNAL_H
#define LEDGER_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>

#include "codec.h"
#include "engine/metrics.h"
#include "http.h"

struct http_server {
    struct MHD_Daemon *daemon;
    struct engine *engine;
    struct store_pool *pool;
    struct http_config cfg;
};

enum request_phase {
    PHASE_READING,   /* body arriving */
    PHASE_QUEUED,    /* suspended, waiting for the committer */
    PHASE_COMMITTED, /* resumed: the engine answered */
};

/* Per connection-request state, from the first callback to completion. */
struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    double started;
    enum metrics_route route;
    enum request_phase phase;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool answered;     /* a response was queued early (413) */
    const char *allow; /* the method a 405 names in its Allow header */

    /* Transfers waiting on the engine. */
    bool is_batch;
    bool is_settle; /* post or void: success is 200, not 201 */
    struct engine_request engine_req;
};

/* Sends body (consumed) with the HTTP status. */
enum MHD_Result http_reply_json(struct http_request *r, int http_status, json_t *body);
enum MHD_Result http_reply_error(struct http_request *r, enum status s, const char *message);
enum MHD_Result http_reply_text(struct http_request *r, int http_status, const char *content_type,
                                char *text, size_t len);

/* Dispatches a fully read request; may suspend it for the engine. */
enum MHD_Result routes_dispatch(struct http_request *r, const char *method, const char *url);
/* Answers a request the engine has finished. */
enum MHD_Result routes_reply_committed(struct http_request *r);
/* Frees what routes attached to the request. */
void routes_request_free(struct http_request *r);

#endif
