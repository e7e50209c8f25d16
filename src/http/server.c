/*
 * server.c - libmicrohttpd glue: connections, body limits, auth, replies.
 *
 * No request holds an HTTP thread while it waits for the database:
 * transfers are queued on the engine, which resumes the connection after
 * COMMIT; reads and account creation are queued on the reader threads
 * (readers.c), which resume it with the answer kept. The next callback
 * sends the answer. Everything else is answered on the spot.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "json_budget.h"
#include "util/chars.h"
#include "util/log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum MHD_Result http_reply_text(struct http_request *r, int http_status, const char *content_type,
                                char *text, size_t len)
{
    if (r->phase == PHASE_READ_QUEUED) {
        r->kept_status = http_status;
        r->kept_type = content_type;
        r->kept_text = text;
        r->kept_len = len;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    /* Headers the status calls for (RFC 9110). */
    if (http_status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (http_status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ledgerd\"");
    if (http_status == 405 && r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    /* A client keeps a keep-alive connection for its next request; told
     * to close it, it opens a new one, which the shut listener refuses,
     * instead of sending on one that MHD_stop_daemon will reset. */
    if (r->close || __atomic_load_n(&r->srv->closing, __ATOMIC_RELAXED))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)http_status, resp);
    MHD_destroy_response(resp);
    double seconds = now_s() - r->started;
    metrics_request(r->route, http_status, seconds);
    log_debug("%s %s: %d in %.3f ms", r->method, r->url, http_status, seconds * 1e3);
    r->answered = true;
    return ret;
}

enum MHD_Result http_reply_json(struct http_request *r, int http_status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    return http_reply_text(r, http_status, "application/json", text, strlen(text));
}

enum MHD_Result http_reply_error(struct http_request *r, enum status s, const char *message)
{
    return http_reply_json(r, status_http(s), codec_error_body(s, message));
}

/* Constant-time in the token's content: every byte of every configured
 * token is compared whatever matches. The scheme is case-insensitive and
 * may be followed by more than one space (RFC 6750), and whitespace
 * around a header's value is not part of it (RFC 9110). */
static bool token_ok(const struct http_config *cfg, const char *header)
{
    static const char scheme[] = "Bearer";
    if (header == NULL || strncasecmp(header, scheme, sizeof scheme - 1) != 0 ||
        !chars_blank(header[sizeof scheme - 1]))
        return false;
    const char *given = header + sizeof scheme - 1;
    while (chars_blank(*given))
        given++;
    size_t given_len = strlen(given);
    while (given_len > 0 && chars_blank(given[given_len - 1]))
        given_len--;
    unsigned match = 0;
    for (int t = 0; t < cfg->n_tokens; t++) {
        const char *tok = cfg->tokens[t];
        size_t len = strlen(tok);
        unsigned diff = (unsigned)(len ^ given_len);
        for (size_t i = 0; i < len; i++)
            diff |= (unsigned char)tok[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
        match |= diff == 0;
    }
    return match != 0;
}

/* Refused tokens are logged, but at most once every AUTH_LOG_S seconds
 * (with how many since), so that a client guessing tokens cannot flood
 * the log; never the token itself. */
#define AUTH_LOG_S 10

static void log_refused_token(struct MHD_Connection *conn)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static double last;
    static long refused;
    double now = now_s();
    pthread_mutex_lock(&lock);
    long n = ++refused;
    bool due = last == 0 || now - last >= AUTH_LOG_S;
    if (due) {
        last = now;
        refused = 0;
    }
    pthread_mutex_unlock(&lock);
    if (!due)
        return;
    char addr[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr) {
        const struct sockaddr *sa = info->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);
    }
    log_warn("refused %ld request(s) without a valid bearer token since the last such line"
             " (the latest from %s)",
             n, addr);
}

/* Decodes %XX escapes in paths and query parameters as libmicrohttpd
 * does, except %00 and %2F, which stay as they are: decoded before
 * routing, "/v1/transfers%00/x/post" would route as "/v1/transfers" and
 * "/v1/accounts/a%2Fbalance" as a balance, so one path would have several
 * spellings, and a proxy rule that lets one route through would let
 * others. Left encoded, they are characters no id or route has. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    char *w = s;
    const char *p = s;
    while (*p) {
        int hi, lo;
        if (p[0] == '%' && (hi = chars_hex_value(p[1])) >= 0 && (lo = chars_hex_value(p[2])) >= 0 &&
            hi * 16 + lo != 0 && hi * 16 + lo != '/') {
            *w++ = (char)(hi * 16 + lo);
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* libmicrohttpd keeps a request's head in the connection's memory pool
 * (MEMORY_POOL_BYTES), with about 64 bytes of its own per header, cookie
 * and query parameter, and builds the answer's head in what is left: a
 * request that left too little was applied and then got no answer. So a
 * head that would leave less than HEAD_ROOM_BYTES is refused first,
 * applying nothing. An estimate, measured on 0.9.75: requests were
 * answered up to 8,040 bytes so counted (README, Limits). */
#define MEMORY_POOL_BYTES   8192
#define HEAD_ROOM_BYTES     1024
#define HEAD_VALUE_OVERHEAD 64

/* What the first callback needs of a request's head, taken in one pass
 * over its headers, cookies and query parameters. */
struct head {
    size_t bytes; /* as libmicrohttpd's pool holds them, estimated */
    const char *authorization, *content_length, *transfer_encoding;
    /* Two different Content-Lengths: libmicrohttpd goes by the first, a
     * proxy in front may go by another, and then the rest of the body
     * would be read as another request (RFC 9112, 6.3: unrecoverable). */
    bool lengths_differ;
};

static enum MHD_Result head_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct head *h = cls;
    h->bytes += key_size + value_size + 4 + HEAD_VALUE_OVERHEAD; /* ": ", CRLF */
    if (kind != MHD_HEADER_KIND)
        return MHD_YES;
    /* The first of each, as MHD_lookup_connection_value would give it. */
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (h->content_length == NULL)
            h->content_length = value;
        else if (strcmp(h->content_length, value) != 0)
            h->lengths_differ = true;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
        if (h->authorization == NULL)
            h->authorization = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (h->transfer_encoding == NULL)
            h->transfer_encoding = value;
    }
    return MHD_YES;
}

static void head_scan(struct MHD_Connection *conn, const char *method, const char *url,
                      struct head *h)
{
    memset(h, 0, sizeof *h);
    h->bytes = strlen(method) + strlen(url) + sizeof " HTTP/1.1\r\n\r\n";
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND | MHD_COOKIE_KIND | MHD_GET_ARGUMENT_KIND,
                                head_value, h);
}

/* Bodies being received or waiting for their answer, all connections
 * together: without a bound, 4,096 connections could each hold 16 MiB. A
 * body that does not fit gets 503 with Retry-After, before a byte of it
 * is read when its Content-Length gives its size. */
#define BODIES_BYTES_MAX (128u << 20)
/* A refused chunked body is read and dropped so that its answer can be
 * sent once it ends (libmicrohttpd cannot answer while a body arrives);
 * past this much, the connection is closed instead. */
#define BODY_DROP_MAX BODY_BYTES_MAX

static bool body_charge(struct http_request *r, size_t bytes)
{
    size_t *total = &r->srv->body_bytes;
    if (__atomic_add_fetch(total, bytes, __ATOMIC_RELAXED) > BODIES_BYTES_MAX) {
        __atomic_sub_fetch(total, bytes, __ATOMIC_RELAXED);
        return false;
    }
    r->body_charged += bytes;
    return true;
}

/* Room for need bytes of body, charged; false if the budget has none. */
static bool body_reserve(struct http_request *r, size_t need)
{
    if (need <= r->body_cap)
        return true;
    /* Exactly what a Content-Length announces; doubling as chunks come. */
    size_t cap = r->body_cap ? r->body_cap : need > 1024 ? need : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > BODY_BYTES_MAX + 1)
        cap = BODY_BYTES_MAX + 1;
    if (!body_charge(r, cap - r->body_cap))
        return false;
    char *b = realloc(r->body, cap);
    if (b == NULL) {
        __atomic_sub_fetch(&r->srv->body_bytes, cap - r->body_cap, __ATOMIC_RELAXED);
        r->body_charged -= cap - r->body_cap;
        return false;
    }
    r->body = b;
    r->body_cap = cap;
    return true;
}

static void body_free(struct http_request *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    __atomic_sub_fetch(&r->srv->body_bytes, r->body_charged, __ATOMIC_RELAXED);
    r->body_charged = 0;
}

static enum MHD_Result body_refuse(struct http_request *r, enum status s)
{
    return http_reply_error(r, s,
                            s == STATUS_BODY_TOO_LARGE
                                ? "request body is larger than 16 MiB"
                                : "too many request bodies are arriving at once; nothing was "
                                  "applied; retry");
}

/* Takes n bytes of a body as they arrive; a body refused on the way is
 * dropped. MHD_NO closes the connection. */
static enum MHD_Result body_take(struct http_request *r, const char *data, size_t n)
{
    if (r->body_refused == STATUS_OK) {
        if (r->body_len + n > BODY_BYTES_MAX)
            r->body_refused = STATUS_BODY_TOO_LARGE;
        else if (!body_reserve(r, r->body_len + n + 1))
            r->body_refused = STATUS_UNAVAILABLE;
        if (r->body_refused != STATUS_OK)
            body_free(r);
    }
    if (r->body_refused != STATUS_OK) {
        r->body_dropped += n;
        return r->body_dropped > BODY_DROP_MAX ? MHD_NO : MHD_YES;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct http_request *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started = now_s();
        r->route = ROUTE_OTHER;
        *con_cls = r;
        struct head h;
        head_scan(conn, method, url, &h);
        if (h.bytes > MEMORY_POOL_BYTES - HEAD_ROOM_BYTES)
            return http_reply_error(r, STATUS_HEAD_TOO_LARGE,
                                    "the request line and headers take more than about 7 KB");
        /* Every path but the two open ones needs a token, whatever
         * spelling of a path the router would accept; and it is asked for
         * before a byte of the body is read. */
        if (srv->cfg.n_tokens > 0 && strcmp(url, "/healthz") != 0 && strcmp(url, "/metrics") != 0 &&
            !token_ok(&srv->cfg, h.authorization)) {
            log_refused_token(conn);
            return http_reply_error(r, STATUS_UNAUTHORIZED, "missing or unknown bearer token");
        }
        if (h.lengths_differ) {
            r->close = true;
            return http_reply_error(r, STATUS_INVALID_REQUEST,
                                    "the request has different Content-Length headers");
        }
        /* libmicrohttpd reads chunked bodies only; with any other coding it
         * waited for a body it could not frame until the connection timed
         * out (RFC 9112, 6.1: answer 501). */
        if (h.transfer_encoding && strcasecmp(h.transfer_encoding, "chunked") != 0) {
            r->close = true;
            return http_reply_error(r, STATUS_UNSUPPORTED_CODING,
                                    "only the chunked transfer coding is supported");
        }
        /* Refused before a byte of the body is read. */
        unsigned long long length = h.content_length ? strtoull(h.content_length, NULL, 10) : 0;
        if (length > BODY_BYTES_MAX)
            return body_refuse(r, STATUS_BODY_TOO_LARGE);
        if (length > 0 && !body_reserve(r, (size_t)length + 1))
            return body_refuse(r, STATUS_UNAVAILABLE);
        return MHD_YES;
    }
    if (r->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->phase == PHASE_COMMITTED)
        return routes_reply_committed(r);
    if (r->phase == PHASE_READ_DONE) {
        if (r->kept_text == NULL)
            return r->read_result;
        char *text = r->kept_text;
        r->kept_text = NULL;
        return http_reply_text(r, r->kept_status, r->kept_type, text, r->kept_len);
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        return body_take(r, upload, n);
    }
    if (r->body_refused != STATUS_OK)
        return body_refuse(r, r->body_refused);
    (void)version;

    return routes_dispatch(r, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct http_request *r = *con_cls;
    if (r == NULL)
        return;
    routes_request_free(r);
    body_free(r);
    free(r);
    *con_cls = NULL;
}

struct http_server *http_start(const struct http_config *cfg, struct engine *engine,
                               struct store_pool *pool)
{
    json_budget_init();
    struct http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->cfg = *cfg;
    s->listen_fd = MHD_INVALID_SOCKET;
    s->engine = engine;
    s->pool = pool;

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    /* MHD_USE_ITC: MHD_quiesce_daemon does nothing without it in this
     * threading mode. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    const char *host = strcmp(cfg->listen_host, "localhost") == 0 ? "127.0.0.1" : cfg->listen_host;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(cfg->port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        log_error("invalid listen address \"%s\": use a numeric IPv4 or IPv6 address", host);
        free(s);
        return NULL;
    }
    if (readers_start(&s->readers, cfg->readers) != 0) {
        log_error("could not start the reader threads");
        free(s);
        return NULL;
    }

    /* Each connection's memory pool holds the request line and headers,
     * their parsed records, the read buffer and the response headers; bodies
     * are copied out as they arrive, so only a request's head must fit
     * (about 7 KB, README). MHD zeroes the whole pool between keep-alive
     * requests: at the default 32 KB that memset was 1.8 % of all CPU under
     * single-transfer load, 0.2 % at 8 KB. */
    s->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)4096, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_POOL_BYTES, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, NULL, MHD_OPTION_END);
    if (s->daemon == NULL) {
        log_error("could not listen on %s:%u", host, cfg->port);
        readers_stop(&s->readers);
        free(s);
        return NULL;
    }
    return s;
}

unsigned http_port(struct http_server *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : s->cfg.port;
}

void http_quiesce(struct http_server *s)
{
    s->listen_fd = MHD_quiesce_daemon(s->daemon);
    /* MHD no longer accepts, but the kernel would still complete
     * handshakes into the backlog, and those clients would wait for an
     * answer that never comes, then be reset. Shut, the socket refuses
     * them at once (and resets any already queued). */
    if (s->listen_fd != MHD_INVALID_SOCKET)
        shutdown(s->listen_fd, SHUT_RDWR);
    /* Only now: a client told to close before the shut could reconnect
     * into the backlog, and be reset there. */
    __atomic_store_n(&s->closing, true, __ATOMIC_RELAXED);
}

void http_stop(struct http_server *s, int timeout_ms)
{
    readers_stop(&s->readers);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (info == NULL || info->num_connections == 0)
            break;
        usleep(10 * 1000);
    }
    MHD_stop_daemon(s->daemon);
    if (s->listen_fd != MHD_INVALID_SOCKET)
        close(s->listen_fd);
    free(s);
}
