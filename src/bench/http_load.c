/*
 * http_load.c - drives ledgerd over HTTP/1.1 keep-alive connections from
 * one thread: non-blocking sockets on epoll, requests written as plain
 * text, answers read by http_parser (Debian's libhttp-parser).
 *
 * The client shares the machine's two cores with ledgerd and PostgreSQL,
 * so what it spends is taken from the system it measures. libcurl's multi
 * interface, which drove this loop before, cost about 58 us of CPU per
 * request here (a fifth of the machine at 7,000 requests/s: it polls every
 * connection at each turn); this loop costs a write, a read and a share
 * of one epoll_wait per request.
 *
 * Closed loop: each of `clients` connections sends its next request as
 * soon as the previous answer arrives. Open loop: requests are scheduled
 * at a fixed rate whatever the answers do, and latency is measured from
 * the scheduled instant, so a stall is charged to every request it delays
 * (no coordinated omission).
 */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define OPEN_LOOP_CONNS    512
#define REQUEST_TIMEOUT_NS (60ULL * 1000000000ULL)

/* Where the requests go, from "http://HOST:PORT". */
struct target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[300]; /* the Host header: HOST:PORT */
};

static int target_resolve(const char *base_url, struct target *t)
{
    char host[256], port[16] = "80";
    const char *p = strncmp(base_url, "http://", 7) == 0 ? base_url + 7 : NULL;
    if (p == NULL || sscanf(p, "%255[^:/]:%15[0-9]", host, port) < 1)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(t->host, sizeof t->host, "%s:%s", host, port);
    return 0;
}

/* A connected TCP socket, non-blocking if asked; -1 on failure. */
static int target_connect(const struct target *t, bool nonblocking)
{
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) != 0) {
        close(fd);
        return -1;
    }
    if (nonblocking) {
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
    return fd;
}

/* ---- one connection and its answer parser ---- */

struct conn {
    int fd; /* -1 until first used, and after a failure */
    http_parser parser;
    struct buf out; /* the request being sent */
    size_t out_off;
    struct buf resp; /* the answer's body */
    int status;      /* the answer's HTTP status, once complete */
    bool complete;
    bool keep_alive; /* the complete answer lets the connection be reused */
    bool busy;
    bool want_out;                                      /* registered for EPOLLOUT */
    enum { READ_RECENT, READ_PAST, READ_ENTRIES } read; /* READS_LEDGER */
    uint64_t started_ns; /* scheduled (open loop) or sent (closed loop) */
    uint64_t sent_ns;    /* for the timeout */
};

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    buf_append(&c->resp, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->status = (int)p->status_code;
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->complete = true;
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Starts reading a new answer. */
static void conn_expect_answer(struct conn *c)
{
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->resp.len = 0;
    if (c->resp.data)
        c->resp.data[0] = '\0';
    c->status = 0;
    c->complete = false;
}

/* Feeds what the socket has to the parser. Returns false when the
 * connection failed or closed before the answer was complete. */
static bool conn_read(struct conn *c)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0)
            return c->complete;
        /* At the end of the stream the parser completes an answer that
         * had no length of its own. */
        size_t used = http_parser_execute(&c->parser, &parser_settings, chunk, (size_t)n);
        if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || used != (size_t)n)
            return false;
        if (c->complete || n == 0)
            return c->complete;
    }
}

/* Writes what it can of the request. Returns false on a failed socket. */
static bool conn_write(struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        c->out_off += (size_t)n;
    }
    return true;
}

static void request_head(struct buf *out, const char *method, const char *path, const char *host,
                         size_t body_len)
{
    out->len = 0;
    if (body_len == 0 && strcmp(method, "GET") == 0)
        buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
    else
        buf_printf(out,
                   "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   method, path, host, body_len);
}

/* ---- the load loop ---- */

struct load {
    const struct http_load *cfg;
    struct target target;
    int epfd;
    struct rng rng;
    uint64_t next_id;
    struct buf body;
    struct samples lat;
    struct samples lat_balance, lat_past, lat_entries; /* READS_LEDGER */
    struct result *out;
    uint64_t sent; /* requests prepared so far */
    int in_flight;
};

static void append_transfer(struct load *l)
{
    int from, to, amount;
    char a[64], b[64];
    workload_next(l->cfg->w, &l->rng, &from, &to, &amount);
    if (l->cfg->zero_amounts)
        amount = 0;
    workload_account(l->cfg->w, from, a, sizeof a);
    workload_account(l->cfg->w, to, b, sizeof b);
    buf_printf(&l->body, "{\"id\":\"%s-%llu\",\"from\":\"%s\",\"to\":\"%s\",\"amount\":%d}",
               l->cfg->id_prefix, (unsigned long long)l->next_id++, a, b, amount);
}

/* A read of a random account: half of them its first page of entries (the
 * oldest, spread over the whole journal's history), a quarter its balance
 * at a random recent time (after its last entry, once the journal is
 * older than that: the common question), a quarter its balance at a
 * random time of the journal's past (a search through its entries). Or
 * the floor, /healthz. */
static void prepare_read(struct load *l, struct conn *c)
{
    char acc[64], path[512];
    if (l->cfg->reads == READS_HEALTHZ) {
        request_head(&c->out, "GET", "/healthz", l->target.host, 0);
        return;
    }
    workload_account(l->cfg->w, (int)rng_below(&l->rng, (uint64_t)l->cfg->w->n_accounts), acc,
                     sizeof acc);
    uint64_t kind = rng_below(&l->rng, 4);
    bool past = kind == 3 && l->cfg->past_to > l->cfg->past_from;
    c->read = kind < 2 ? READ_ENTRIES : past ? READ_PAST : READ_RECENT;
    if (c->read != READ_ENTRIES) {
        time_t at = past ? (time_t)(l->cfg->past_from +
                                    (int64_t)rng_below(
                                        &l->rng, (uint64_t)(l->cfg->past_to - l->cfg->past_from)))
                         : time(NULL) - (time_t)rng_below(&l->rng, 600);
        struct tm tm;
        gmtime_r(&at, &tm);
        snprintf(path, sizeof path, "/v1/accounts/%s/balance?at=%04d-%02d-%02dT%02d:%02d:%02dZ",
                 acc, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
    } else {
        snprintf(path, sizeof path, "/v1/accounts/%s/entries?after_seq=0&limit=100", acc);
    }
    request_head(&c->out, "GET", path, l->target.host, 0);
}

static void prepare_transfers(struct load *l, struct conn *c)
{
    l->body.len = 0;
    if (l->cfg->batch <= 1) {
        append_transfer(l);
    } else {
        buf_append(&l->body, "{\"atomic\":false,\"transfers\":[", 29);
        for (int i = 0; i < l->cfg->batch; i++) {
            if (i)
                buf_append(&l->body, ",", 1);
            append_transfer(l);
        }
        buf_append(&l->body, "]}", 2);
    }
    request_head(&c->out, "POST", l->cfg->batch <= 1 ? "/v1/transfers" : "/v1/transfers/batch",
                 l->target.host, l->body.len);
    buf_append(&c->out, l->body.data, l->body.len);
    l->sent++;
}

static void watch(struct load *l, struct conn *c, int op, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(l->epfd, op, c->fd, &ev);
    c->want_out = want_out;
}

static void conn_close(struct load *l, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
}

static void count_failure(struct load *l)
{
    l->out->errors += (uint64_t)(l->cfg->batch <= 1 || l->cfg->reads ? 1 : l->cfg->batch);
}

/* Prepares the connection's next request and starts sending it. */
static void send_next(struct load *l, struct conn *c, uint64_t started_ns)
{
    if (l->cfg->reads)
        prepare_read(l, c);
    else
        prepare_transfers(l, c);
    c->started_ns = started_ns;
    c->sent_ns = now_ns();
    c->busy = true;
    l->in_flight++;
    if (c->fd < 0) {
        c->fd = target_connect(&l->target, true);
        if (c->fd < 0) {
            c->busy = false;
            l->in_flight--;
            count_failure(l);
            return;
        }
        watch(l, c, EPOLL_CTL_ADD, false);
    }
    conn_expect_answer(c);
    c->out_off = 0;
    if (!conn_write(c)) {
        c->busy = false;
        l->in_flight--;
        count_failure(l);
        conn_close(l, c);
        return;
    }
    if (c->out_off < c->out.len)
        watch(l, c, EPOLL_CTL_MOD, true);
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += len)
        n++;
    return n;
}

/* Counts a finished request into the result. */
static void finish(struct load *l, struct conn *c, bool ok)
{
    uint64_t us = (now_ns() - c->started_ns) / 1000;
    c->busy = false;
    l->in_flight--;
    if (!ok) {
        count_failure(l);
        return;
    }
    samples_add(&l->lat, us);
    if (l->cfg->reads == READS_LEDGER)
        samples_add(c->read == READ_ENTRIES ? &l->lat_entries
                    : c->read == READ_PAST  ? &l->lat_past
                                            : &l->lat_balance,
                    us);
    int status = c->status;
    const char *resp = c->resp.data ? c->resp.data : "";
    if (l->cfg->reads) {
        if (status == 200)
            l->out->transfers++;
        else
            l->out->errors++;
        return;
    }
    if (l->cfg->zero_amounts) {
        if (status == 400 && strstr(resp, "\"invalid_amount\""))
            l->out->transfers++;
        else
            l->out->errors++;
        return;
    }
    if (l->cfg->batch <= 1) {
        if (status == 200 || status == 201)
            l->out->transfers++;
        else if (status == 422)
            l->out->rejects++;
        else
            l->out->errors++;
        return;
    }
    if (status != 200) {
        l->out->errors += (uint64_t)l->cfg->batch;
        return;
    }
    size_t rejected = count_of(resp, "\"status\":\"rejected\"");
    l->out->rejects += rejected;
    l->out->transfers += (uint64_t)l->cfg->batch - rejected;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* A socket is ready: sends the rest of its request, reads its answer, and
 * in the closed loop sends the next one. */
static void on_ready(struct load *l, struct conn *c, uint32_t events, uint64_t end)
{
    if (c->fd < 0) /* closed earlier in this round of events */
        return;
    bool ok = true;
    if ((events & EPOLLOUT) && c->busy) {
        ok = conn_write(c);
        if (ok && c->out_off == c->out.len)
            watch(l, c, EPOLL_CTL_MOD, false);
    }
    if (ok && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        ok = conn_read(c);
    if (!c->busy) {
        /* An idle keep-alive connection that became readable was closed
         * by the server: open a new one when it is next used. */
        conn_close(l, c);
        return;
    }
    if (ok && !c->complete)
        return;
    finish(l, c, ok);
    /* An answer before the whole request was sent leaves the rest of it
     * on the wire: that connection cannot carry another request. */
    if (!ok || !c->keep_alive || c->out_off < c->out.len)
        conn_close(l, c);
    bool open_loop = l->cfg->rate > 0;
    if (!open_loop && now_ns() < end &&
        (l->cfg->max_requests == 0 || l->sent < l->cfg->max_requests))
        send_next(l, c, now_ns());
}

/* Requests that have waited past the timeout count as errors. */
static void expire_stuck(struct load *l, struct conn *conns, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        if (conns[i].busy && now > conns[i].sent_ns &&
            now - conns[i].sent_ns > REQUEST_TIMEOUT_NS) {
            finish(l, &conns[i], false);
            conn_close(l, &conns[i]);
        }
}

static void wait_events(struct load *l, uint64_t wait_ns, uint64_t end)
{
    struct epoll_event ev[256];
    struct timespec ts = {(time_t)(wait_ns / 1000000000ULL), (long)(wait_ns % 1000000000ULL)};
    int n = epoll_pwait2(l->epfd, ev, 256, &ts, NULL);
    for (int i = 0; i < n; i++)
        on_ready(l, ev[i].data.ptr, ev[i].events, end);
}

int http_load_run(const struct http_load *cfg, struct result *out)
{
    struct load l = {.cfg = cfg, .rng = {cfg->seed * 2654435761u + 1}, .out = out};
    memset(out, 0, sizeof *out);
    if (target_resolve(cfg->base_url, &l.target) != 0) {
        fprintf(stderr, "ledger-bench: cannot resolve %s\n", cfg->base_url);
        return -1;
    }
    l.epfd = epoll_create1(EPOLL_CLOEXEC);
    bool open_loop = cfg->rate > 0;
    int n_conns = open_loop ? OPEN_LOOP_CONNS : cfg->clients;
    struct conn *conns = calloc((size_t)n_conns, sizeof *conns);
    for (int i = 0; i < n_conns; i++)
        conns[i].fd = -1;

    uint64_t start = now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9);
    uint64_t interval = open_loop ? (uint64_t)(1e9 / cfg->rate) : 0, next_due = start;
    uint64_t backlog = 0; /* scheduled but not yet sent (no free connection) */
    uint64_t *backlog_at = NULL;
    size_t backlog_cap = 0, backlog_head = 0;
    uint64_t last_rss = 0, last_expiry = start, last_refill = start;

    if (!open_loop)
        for (int i = 0; i < n_conns; i++)
            send_next(&l, &conns[i], now_ns());
    for (;;) {
        uint64_t now = now_ns();
        if (open_loop && now < end) {
            while (next_due <= now) {
                if (backlog_head + backlog == backlog_cap) {
                    backlog_cap = backlog_cap ? backlog_cap * 2 : 4096;
                    backlog_at = realloc(backlog_at, backlog_cap * sizeof *backlog_at);
                }
                backlog_at[backlog_head + backlog++] = next_due;
                next_due += interval;
            }
        }
        for (int i = 0; open_loop && backlog > 0 && i < n_conns; i++) {
            if (conns[i].busy)
                continue;
            send_next(&l, &conns[i], backlog_at[backlog_head++]);
            backlog--;
        }
        if (cfg->rss_pid && now - last_rss > 200000000ULL) {
            long kb = rss_kb(cfg->rss_pid);
            if (kb > out->rss_kb_max)
                out->rss_kb_max = kb;
            last_rss = now;
        }
        if (now - last_expiry > 1000000000ULL) {
            expire_stuck(&l, conns, n_conns, now);
            last_expiry = now;
        }
        /* A closed-loop connection whose request failed (connect, send,
         * timeout) tries again, at most every 10 ms. */
        if (!open_loop && now < end && now - last_refill > 10000000ULL) {
            for (int i = 0; i < n_conns; i++)
                if (!conns[i].busy && (cfg->max_requests == 0 || l.sent < cfg->max_requests))
                    send_next(&l, &conns[i], now);
            last_refill = now;
        }
        bool pending_work = l.in_flight > 0 || (open_loop && (now < end || backlog > 0));
        if (!pending_work)
            break;
        uint64_t wait_ns = 100000000ULL;
        if (open_loop && now < end && backlog == 0)
            wait_ns = next_due > now ? next_due - now : 0;
        wait_events(&l, wait_ns, end);
    }
    out->seconds = (double)(now_ns() - start) / 1e9;
    out->clients = open_loop ? 0 : cfg->clients;
    out->p50_ms = samples_percentile_ms(&l.lat, 50);
    out->p99_ms = samples_percentile_ms(&l.lat, 99);
    out->p999_ms = samples_percentile_ms(&l.lat, 99.9);
    out->balance_p50_ms = samples_percentile_ms(&l.lat_balance, 50);
    out->balance_p99_ms = samples_percentile_ms(&l.lat_balance, 99);
    out->past_p50_ms = samples_percentile_ms(&l.lat_past, 50);
    out->past_p99_ms = samples_percentile_ms(&l.lat_past, 99);
    out->entries_p50_ms = samples_percentile_ms(&l.lat_entries, 50);
    out->entries_p99_ms = samples_percentile_ms(&l.lat_entries, 99);
    if (cfg->rss_pid) {
        long kb = rss_kb(cfg->rss_pid);
        if (kb > out->rss_kb_max)
            out->rss_kb_max = kb;
    }
    for (int i = 0; i < n_conns; i++) {
        conn_close(&l, &conns[i]);
        free(conns[i].out.data);
        free(conns[i].resp.data);
    }
    close(l.epfd);
    free(conns);
    free(backlog_at);
    free(l.body.data);
    samples_free(&l.lat);
    samples_free(&l.lat_balance);
    samples_free(&l.lat_past);
    samples_free(&l.lat_entries);
    return 0;
}

int http_request(const char *base_url, const char *method, const char *path, const char *body,
                 char **response)
{
    struct target t;
    if (response)
        *response = NULL;
    if (target_resolve(base_url, &t) != 0)
        return -1;
    int fd = target_connect(&t, false);
    if (fd < 0)
        return -1;
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct conn c = {.fd = fd};
    size_t body_len = body ? strlen(body) : 0;
    request_head(&c.out, method, path, t.host, body_len);
    if (body_len)
        buf_append(&c.out, body, body_len);
    conn_expect_answer(&c);
    bool ok = conn_write(&c) && c.out_off == c.out.len;
    while (ok && !c.complete)
        ok = conn_read(&c) && (c.complete || errno != EAGAIN);
    close(fd);
    free(c.out.data);
    int status = ok && c.complete ? c.status : -1;
    if (response && status >= 0)
        *response = c.resp.data;
    else
        free(c.resp.data);
    return status;
}
