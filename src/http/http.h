/*
 * http.h - the HTTP/JSON front: routing, limits, auth, JSON in and out.
 *
 * No ledger rule lives here: transfers go to the engine, reads to the
 * store, and every status comes from core/status.def.
 */
#ifndef LEDGER_HTTP_HTTP_H
#define LEDGER_HTTP_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "store/store.h"

struct http_config {
    const char *listen_host; /* numeric IPv4 or IPv6 address, or "localhost" */
    uint16_t port;
    char **tokens; /* NULL: no auth */
    int n_tokens;
    int threads; /* HTTP threads */
    int readers; /* threads that run reads; as many as the pool has connections */
};

struct http_server;

/* Starts serving; NULL with a logged reason on failure. */
struct http_server *http_start(const struct http_config *cfg, struct engine *engine,
                               struct store_pool *pool);
/* Stops accepting new connections (in-flight requests continue). */
/* The port it listens on (the one the system chose for port 0). */
unsigned http_port(struct http_server *s);
void http_quiesce(struct http_server *s);
/* Waits up to timeout_ms for open connections to finish, then stops. */
void http_stop(struct http_server *s, int timeout_ms);

#endif
