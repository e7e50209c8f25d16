/*
 * internal.h - what server.c and routes.c share.
 */
#ifndef LEDGER_HTTP_INTERNAL_H
#define LEDGER_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "codec.h"
#include "engine/metrics.h"
#include "http.h"

struct http_request;

#define READERS_MAX 32
/* Reads waiting for a reader; more get 503 (readers.c). */
#define READS_QUEUED_MAX 512

/* The reader threads and the requests waiting for them (readers.c). */
struct readers {
    pthread_t threads[READERS_MAX];
    int n;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct http_request *head, *tail;
    int queued;
    bool stopping;
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct engine *engine;
    struct store_pool *pool;
    struct http_config cfg;
    struct readers readers;
    /* Set once shutdown begins: answers then close their connection, and
     * the listening socket is shut (closed after MHD stops, which may
     * still hold it). */
    bool closing;
    MHD_socket listen_fd;
    size_t body_bytes; /* held by all requests' bodies (server.c, body_charge) */
};

enum request_phase {
    PHASE_READING,     /* body arriving */
    PHASE_QUEUED,      /* suspended, waiting for the committer */
    PHASE_COMMITTED,   /* resumed: the engine answered */
    PHASE_READ_QUEUED, /* suspended, waiting for (or run by) a reader */
    PHASE_READ_DONE,   /* resumed: the reader kept its answer */
};

/* A handler that may wait on the database; id is the path's id, if any. */
typedef enum MHD_Result (*read_fn)(struct http_request *r, const char *id);

/* Distinct query arguments a request may carry: more are refused. */
#define ARGS_MAX 16

/* The answer to requests that come while ledgerd stops (503). */
#define SHUTTING_DOWN_MESSAGE                                                                      \
    "ledgerd is shutting down; nothing was applied; retry on another ledgerd process or later"

/* Per connection-request state, from the first callback to completion. */
struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url; /* MHD's, valid for the request's life */
    double started;
    enum metrics_route route;
    enum request_phase phase;
    char *body;
    size_t body_len, body_cap;
    size_t body_charged; /* of srv->body_bytes */
    /* A body refused while it arrives: dropped unread, then answered. */
    enum status body_refused; /* STATUS_OK, or BODY_TOO_LARGE or UNAVAILABLE */
    size_t body_dropped;
    bool answered;     /* a response was queued early (413, 503) */
    bool close;        /* the connection cannot carry another request */
    const char *allow; /* the method a 405 names in its Allow header */

    /* The query arguments, the first value of each key, taken on the HTTP
     * thread: pointers into MHD's memory for the connection, valid until
     * the request completes. */
    const char *arg_key[ARGS_MAX], *arg_value[ARGS_MAX];
    int n_args;
    bool too_many_args;
    bool nul_in_args;         /* an escaped NUL (%00) in a key or value */
    const char *repeated_arg; /* a key given twice */

    /* Transfers waiting on the engine. */
    bool is_batch;
    bool is_settle; /* post or void: success is 200, not 201 */
    struct engine_request engine_req;

    /* A read handed to a reader thread, and the answer it kept. */
    read_fn read;
    char read_id[ID_LEN_MAX + 1];
    enum MHD_Result read_result;
    int kept_status;
    const char *kept_type;
    char *kept_text; /* NULL: nothing kept (read_result says why) */
    size_t kept_len;
    struct http_request *read_next;
};

/* Sends body (consumed) with the HTTP status; on a reader thread, keeps
 * it for the HTTP thread to send once the connection resumes. */
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

/* Starts n reader threads. */
int readers_start(struct readers *q, int n);
enum readers_submit_result { READ_QUEUED, READ_STOPPING, READ_QUEUE_FULL };
/* Queues a suspended request whose read and read_id are set. */
enum readers_submit_result readers_submit(struct readers *q, struct http_request *r);
/* Answers what is still queued 503 unrun, lets the running reads finish,
 * and joins the readers. */
void readers_stop(struct readers *q);

#endif
