/*
 * http_load.c - drives ledgerd over HTTP/1.1 keep-alive connections with
 * libcurl's multi interface, from one thread.
 *
 * Closed loop: each of `clients` connections sends its next request as
 * soon as the previous answer arrives. Open loop: requests are scheduled
 * at a fixed rate whatever the answers do, and latency is measured from
 * the scheduled instant, so a stall is charged to every request it delays
 * (no coordinated omission).
 */
#include <curl/curl.h>
#include <sys/select.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define OPEN_LOOP_CONNS 512

struct conn {
    CURL *easy;
    char *body;
    size_t body_len, body_cap;
    char *resp;
    size_t resp_len, resp_cap;
    uint64_t started_ns; /* scheduled (open loop) or sent (closed loop) */
    bool busy;
};

struct load {
    const struct http_load *cfg;
    struct rng rng;
    uint64_t next_id;
    char url_single[256], url_batch[256];
    struct curl_slist *headers;
    struct samples lat;
    struct result *out;
    uint64_t sent; /* requests prepared so far */
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct conn *c = user;
    size_t n = size * nmemb;
    if (c->resp_len + n + 1 > c->resp_cap) {
        c->resp_cap = (c->resp_len + n + 1) * 2;
        c->resp = realloc(c->resp, c->resp_cap);
        if (c->resp == NULL)
            abort();
    }
    memcpy(c->resp + c->resp_len, ptr, n);
    c->resp_len += n;
    c->resp[c->resp_len] = '\0';
    return n;
}

static void body_append(struct conn *c, const char *s, size_t n)
{
    if (c->body_len + n + 1 > c->body_cap) {
        c->body_cap = (c->body_len + n + 1) * 2;
        c->body = realloc(c->body, c->body_cap);
        if (c->body == NULL)
            abort();
    }
    memcpy(c->body + c->body_len, s, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
}

static void append_transfer(struct load *l, struct conn *c)
{
    int from, to, amount;
    char a[64], b[64], item[256];
    workload_next(l->cfg->w, &l->rng, &from, &to, &amount);
    if (l->cfg->zero_amounts)
        amount = 0;
    workload_account(l->cfg->w, from, a, sizeof a);
    workload_account(l->cfg->w, to, b, sizeof b);
    int n = snprintf(item, sizeof item,
                     "{\"id\":\"%s-%llu\",\"from\":\"%s\",\"to\":\"%s\",\"amount\":%d}",
                     l->cfg->id_prefix, (unsigned long long)l->next_id++, a, b, amount);
    body_append(c, item, (size_t)n);
}

/* A read: the balance of a random account at a random recent time, or its
 * latest page of entries. */
static void prepare_read(struct load *l, struct conn *c, uint64_t started_ns)
{
    char acc[64], url[512];
    workload_account(l->cfg->w, (int)rng_below(&l->rng, (uint64_t)l->cfg->w->n_accounts), acc,
                     sizeof acc);
    if (rng_next(&l->rng) & 1) {
        time_t at = time(NULL) - (time_t)rng_below(&l->rng, 600);
        struct tm tm;
        gmtime_r(&at, &tm);
        snprintf(url, sizeof url, "%s/v1/accounts/%s/balance?at=%04d-%02d-%02dT%02d:%02d:%02dZ",
                 l->cfg->base_url, acc, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
    } else {
        snprintf(url, sizeof url, "%s/v1/accounts/%s/entries?after_seq=0&limit=100",
                 l->cfg->base_url, acc);
    }
    c->resp_len = 0;
    curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    c->started_ns = started_ns;
    c->busy = true;
}

static void prepare(struct load *l, struct conn *c, uint64_t started_ns)
{
    if (l->cfg->reads) {
        prepare_read(l, c, started_ns);
        return;
    }
    c->body_len = 0;
    c->resp_len = 0;
    if (l->cfg->batch <= 1) {
        append_transfer(l, c);
    } else {
        body_append(c, "{\"atomic\":false,\"transfers\":[", 29);
        for (int i = 0; i < l->cfg->batch; i++) {
            if (i)
                body_append(c, ",", 1);
            append_transfer(l, c);
        }
        body_append(c, "]}", 2);
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, l->cfg->batch <= 1 ? l->url_single : l->url_batch);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
    c->started_ns = started_ns;
    c->busy = true;
    l->sent++;
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += len)
        n++;
    return n;
}

/* Counts a finished request into the result. */
static void finish(struct load *l, struct conn *c, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    uint64_t us = (now_ns() - c->started_ns) / 1000;
    c->busy = false;
    if (rc != CURLE_OK) {
        l->out->errors += (uint64_t)(l->cfg->batch <= 1 ? 1 : l->cfg->batch);
        return;
    }
    samples_add(&l->lat, us);
    if (l->cfg->reads) {
        if (status == 200)
            l->out->transfers++;
        else
            l->out->errors++;
        return;
    }
    if (l->cfg->zero_amounts) {
        if (status == 400 && c->resp && strstr(c->resp, "\"invalid_amount\""))
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
    if (status != 200 || c->resp == NULL) {
        l->out->errors += (uint64_t)l->cfg->batch;
        return;
    }
    size_t rejected = count_of(c->resp, "\"status\":\"rejected\"");
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

/* Waits up to wait_ns (< 1 ms) for activity on any of curl's sockets. */
static void wait_briefly(CURLM *multi, uint64_t wait_ns)
{
    fd_set r, w, e;
    int maxfd = -1;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    curl_multi_fdset(multi, &r, &w, &e, &maxfd);
    struct timeval tv = {0, (suseconds_t)(wait_ns / 1000)};
    if (maxfd >= 0 && maxfd < FD_SETSIZE) {
        select(maxfd + 1, &r, &w, &e, &tv);
    } else {
        struct timespec ts = {0, (long)wait_ns};
        nanosleep(&ts, NULL);
    }
}

int http_load_run(const struct http_load *cfg, struct result *out)
{
    struct load l = {.cfg = cfg, .rng = {cfg->seed * 2654435761u + 1}, .out = out};
    memset(out, 0, sizeof *out);
    snprintf(l.url_single, sizeof l.url_single, "%s/v1/transfers", cfg->base_url);
    snprintf(l.url_batch, sizeof l.url_batch, "%s/v1/transfers/batch", cfg->base_url);
    l.headers = curl_slist_append(NULL, "Content-Type: application/json");
    l.headers = curl_slist_append(l.headers, "Expect:"); /* no 100-continue round trip */

    bool open_loop = cfg->rate > 0;
    int n_conns = open_loop ? OPEN_LOOP_CONNS : cfg->clients;
    struct conn *conns = calloc((size_t)n_conns, sizeof *conns);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n_conns);
    for (int i = 0; i < n_conns; i++) {
        CURL *e = curl_easy_init();
        conns[i].easy = e;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, l.headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &conns[i]);
        curl_easy_setopt(e, CURLOPT_PRIVATE, &conns[i]);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    }

    uint64_t start = now_ns(), end = start + (uint64_t)(cfg->seconds * 1e9);
    uint64_t interval = open_loop ? (uint64_t)(1e9 / cfg->rate) : 0, next_due = start;
    uint64_t backlog = 0; /* scheduled but not yet sent (no free connection) */
    uint64_t *backlog_at = NULL;
    size_t backlog_cap = 0, backlog_head = 0;
    int running = 0;
    /* Counted here, not taken from curl_multi_perform: when group commit
     * answers every connection at once, perform reports 0 running just
     * before the loop below adds them all again. */
    int in_flight = 0;
    uint64_t last_rss = 0;

    if (!open_loop)
        for (int i = 0; i < n_conns; i++) {
            prepare(&l, &conns[i], now_ns());
            curl_multi_add_handle(multi, conns[i].easy);
            in_flight++;
        }
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
            prepare(&l, &conns[i], backlog_at[backlog_head++]);
            backlog--;
            curl_multi_add_handle(multi, conns[i].easy);
            in_flight++;
        }
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct conn *c;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(multi, c->easy);
            in_flight--;
            finish(&l, c, rc);
            if (!open_loop && now_ns() < end &&
                (cfg->max_requests == 0 || l.sent < cfg->max_requests)) {
                prepare(&l, c, now_ns());
                curl_multi_add_handle(multi, c->easy);
                in_flight++;
            }
        }
        if (cfg->rss_pid && now - last_rss > 200000000ULL) {
            long kb = rss_kb(cfg->rss_pid);
            if (kb > out->rss_kb_max)
                out->rss_kb_max = kb;
            last_rss = now;
        }
        now = now_ns();
        bool pending_work = in_flight > 0 || (open_loop && (now < end || backlog > 0));
        if (!pending_work)
            break;
        /* curl waits in whole milliseconds, and a 0 ms wait returns at
         * once: the open loop, due every 200 us at 5,000/s, spun a core the
         * measured system needs. Shorter waits select() on curl's sockets
         * with a microsecond timeout, so answers are still read at once. */
        int timeout_ms = 1;
        if (open_loop && backlog == 0 && next_due > now) {
            uint64_t wait_ns = next_due - now;
            if (wait_ns < 1000000) {
                wait_briefly(multi, wait_ns);
                continue;
            }
            timeout_ms = (int)(wait_ns / 1000000);
        }
        curl_multi_poll(multi, NULL, 0, timeout_ms, NULL);
    }
    out->seconds = (double)(now_ns() - start) / 1e9;
    out->clients = open_loop ? 0 : cfg->clients;
    out->p50_ms = samples_percentile_ms(&l.lat, 50);
    out->p99_ms = samples_percentile_ms(&l.lat, 99);
    out->p999_ms = samples_percentile_ms(&l.lat, 99.9);
    if (cfg->rss_pid) {
        long kb = rss_kb(cfg->rss_pid);
        if (kb > out->rss_kb_max)
            out->rss_kb_max = kb;
    }
    for (int i = 0; i < n_conns; i++) {
        curl_multi_remove_handle(multi, conns[i].easy);
        curl_easy_cleanup(conns[i].easy);
        free(conns[i].body);
        free(conns[i].resp);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(l.headers);
    free(conns);
    free(backlog_at);
    samples_free(&l.lat);
    return 0;
}

int http_post(const char *base_url, const char *path, const char *body, char **response)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    struct conn c = {0};
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
    long status = -1;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (response)
        *response = c.resp;
    else
        free(c.resp);
    return (int)status;
}
