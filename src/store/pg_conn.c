/*
 * pg_conn.c - connections, the request threads' pool, and result helpers.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "pg_internal.h"

PGconn *store_connect(const char *conninfo, char *err, size_t errlen)
{
    /* A dead server must fail requests fast, not hang them. Over TCP, a
     * peer that went silent is noticed within about a minute even while
     * a blocking call (a COPY, a ROLLBACK) waits on it: keepalives while
     * waiting for an answer, a timeout on data sent and never
     * acknowledged. These come before dbname, so the user's conninfo may
     * override them. */
    const char *keys[] = {
        "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        "dbname",          "connect_timeout",     "application_name", NULL};
    const char *vals[] = {"30", "10", "3", "60000", conninfo, "3", "ledgerd", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        if (err)
            snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return NULL;
    }
    /* JIT compiling the big multi-row statements costs far more than it
     * saves: every batch would pay tens of milliseconds for it. Generic
     * plans: our prepared statements take arrays whose length the planner
     * cannot use well, and with custom plans a small batch spent more
     * time being planned (about 1.5 ms) than being executed. */
    PQclear(PQexec(conn, "SET statement_timeout = '30s'; SET jit = off;"
                         " SET plan_cache_mode = force_generic_plan"));
    return conn;
}

int store_server_incarnation(PGconn *conn, char *out, size_t len)
{
    PGresult *res = PQexec(conn, "SELECT pg_postmaster_start_time()::text");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ok ? 0 : -1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool plans_fresh(int64_t planned_ns, int64_t now)
{
    return planned_ns != 0 && now - planned_ns < PLAN_REFRESH_NS;
}

void store_refresh_plans(PGconn *conn, int64_t *planned_ns)
{
    int64_t now = mono_ns();
    if (plans_fresh(*planned_ns, now))
        return;
    PQclear(PQexec(conn, "DISCARD PLANS"));
    *planned_ns = now;
}

/* An idle connection has nothing to read (ledgerd LISTENs to nothing): a
 * readable socket means the server is closing it (a restart, a crash,
 * pg_terminate_backend), and the next query would fail. */
static bool idle_connection_alive(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
    return p.fd >= 0 && poll(&p, 1, 0) == 0;
}

static bool connection_usable(PGconn *conn)
{
    return conn != NULL && PQstatus(conn) == CONNECTION_OK && idle_connection_alive(conn);
}

bool store_ready_now(PGconn *conn, int64_t planned_ns)
{
    return connection_usable(conn) && plans_fresh(planned_ns, mono_ns());
}

enum store_ensure_result store_ensure(PGconn **conn, const char *conninfo)
{
    if (connection_usable(*conn))
        return STORE_CONN_SAME;
    PQfinish(*conn);
    *conn = store_connect(conninfo, NULL, 0);
    return *conn != NULL ? STORE_CONN_NEW : STORE_CONN_DOWN;
}

bool store_ping(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT 1");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok;
}

int store_pool_init(struct store_pool *p, const char *conninfo, int size)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->free_cond, NULL);
    p->conninfo = conninfo;
    p->size = size;
    p->conns = calloc((size_t)size, sizeof *p->conns);
    p->busy = calloc((size_t)size, sizeof *p->busy);
    p->planned_ns = calloc((size_t)size, sizeof *p->planned_ns);
    return p->conns && p->busy && p->planned_ns ? 0 : -1;
}

void store_pool_destroy(struct store_pool *p)
{
    for (int i = 0; i < p->size; i++)
        PQfinish(p->conns[i]);
    free(p->conns);
    free(p->busy);
    free(p->planned_ns);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->free_cond);
}

PGconn *store_pool_get(struct store_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int slot = -1;
    for (;;) {
        for (int i = 0; i < p->size; i++) {
            if (!p->busy[i]) {
                slot = i;
                break;
            }
        }
        if (slot >= 0)
            break;
        pthread_cond_wait(&p->free_cond, &p->lock);
    }
    p->busy[slot] = true;
    pthread_mutex_unlock(&p->lock);

    /* Connect outside the lock: it may take up to connect_timeout. */
    PGconn *conn = p->conns[slot];
    if (conn != NULL && PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    bool ok = store_ensure_reads(&conn, p->conninfo) != STORE_CONN_DOWN;
    if (ok)
        store_refresh_plans(conn, &p->planned_ns[slot]);
    pthread_mutex_lock(&p->lock);
    p->conns[slot] = conn;
    if (!ok) {
        p->busy[slot] = false;
        pthread_cond_signal(&p->free_cond);
    }
    pthread_mutex_unlock(&p->lock);
    return ok ? conn : NULL;
}

void store_pool_put(struct store_pool *p, PGconn *conn)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->size; i++) {
        if (p->conns[i] == conn) {
            p->busy[i] = false;
            break;
        }
    }
    pthread_cond_signal(&p->free_cond);
    pthread_mutex_unlock(&p->lock);
}

void sbuf_init(struct sbuf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    sbuf_reset(b);
}

void sbuf_free(struct sbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void sbuf_reserve(struct sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    LEDGER_ASSERT(d != NULL);
    b->data = d;
    b->cap = cap;
}

void sbuf_reset(struct sbuf *b)
{
    sbuf_reserve(b, 0);
    b->len = 0;
    b->data[0] = '\0';
}

void sbuf_putc(struct sbuf *b, char c)
{
    sbuf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void sbuf_puts(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    sbuf_reserve(b, n);
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

void sbuf_put_quoted(struct sbuf *b, const char *s)
{
    sbuf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sbuf_putc(b, '\\');
        sbuf_putc(b, *s);
    }
    sbuf_putc(b, '"');
}

bool pg_put_cost(struct pg_binary *b, const struct core_cost *c,
                 void (*put)(struct pg_binary *, const char *))
{
    if (c->n == 0) {
        pgb_null(b);
        return false;
    }
    struct sbuf json;
    sbuf_init(&json);
    sbuf_putc(&json, '{');
    for (int i = 0; i < c->n; i++) {
        char text[COST_TEXT_MAX];
        cost_format(c->value[i], text);
        sbuf_puts(&json, i ? ",\"" : "\"");
        sbuf_puts(&json, c->currency[i]);
        sbuf_puts(&json, "\":\"");
        sbuf_puts(&json, text);
        sbuf_putc(&json, '"');
    }
    sbuf_putc(&json, '}');
    put(b, json.data);
    sbuf_free(&json);
    return true;
}

/* Next element of a one-dimensional array literal of unquoted tokens. */
static bool next_token(const char **p, char *out, size_t outlen)
{
    const char *s = *p;
    if (*s == '{' || *s == ',')
        s++;
    if (*s == '}' || *s == '\0')
        return false;
    size_t n = strcspn(s, ",}");
    snprintf(out, outlen, "%.*s", (int)n, s);
    *p = s + n;
    return true;
}

void pg_parse_cost(const char *currencies, const char *values, struct core_cost *c)
{
    char code[64], value[64];
    memset(c, 0, sizeof *c);
    while (c->n < COST_CURRENCIES_MAX && next_token(&currencies, code, sizeof code)) {
        snprintf(c->currency[c->n], sizeof c->currency[c->n], "%.16s", code);
        i128 v = 0;
        if (next_token(&values, value, sizeof value) && strcmp(value, "NULL") != 0)
            LEDGER_ASSERT(cost_parse(value, strlen(value), &v));
        c->value[c->n++] = v;
    }
}

void pg_get_transfer(const PGresult *res, int row, int col, struct core_transfer *t)
{
    memset(t, 0, sizeof *t);
    t->exists = true;
    t->id = pg_get_i64(res, row, col);
    t->from_account = pg_get_i64(res, row, col + 1);
    t->to_account = pg_get_i64(res, row, col + 2);
    t->amount = pg_get_amount(res, row, col + 3);
    snprintf(t->currency, sizeof t->currency, "%s", PQgetvalue(res, row, col + 4));
    t->pending = PQgetvalue(res, row, col + 5)[0] == 't';
    t->from_seq = pg_get_i64(res, row, col + 6);
    t->to_seq = pg_get_i64(res, row, col + 7);
    t->from_balance = pg_get_amount(res, row, col + 8);
    t->to_balance = pg_get_amount(res, row, col + 9);
    t->created_us = pg_get_i64(res, row, col + 10);
    t->effective_us = pg_get_i64(res, row, col + 11);
    col += 12; /* the pending state follows */
    t->deadline_us = TIME_NONE;
    pg_parse_cost(PQgetvalue(res, row, col + 9), PQgetvalue(res, row, col + 10), &t->unit_cost);
    if (!t->pending) {
        t->state = TRANSFER_POSTED;
        return;
    }
    LEDGER_ASSERT(!PQgetisnull(res, row, col));
    LEDGER_ASSERT(transfer_state_from_name(PQgetvalue(res, row, col), &t->state));
    if (!PQgetisnull(res, row, col + 1))
        t->deadline_us = pg_get_i64(res, row, col + 1);
    t->settled = t->state != TRANSFER_PENDING;
    if (t->settled) {
        t->posted_amount = pg_get_amount(res, row, col + 2);
        t->settle_from_seq = pg_get_i64(res, row, col + 3);
        t->settle_to_seq = pg_get_i64(res, row, col + 4);
        t->settle_from_balance = pg_get_amount(res, row, col + 5);
        t->settle_to_balance = pg_get_amount(res, row, col + 6);
        t->settled_us = pg_get_i64(res, row, col + 7);
    }
    t->timeout_s = PQgetisnull(res, row, col + 8) ? 0 : pg_get_i64(res, row, col + 8);
}

i128 pg_get_amount(const PGresult *res, int row, int col)
{
    const char *s = PQgetvalue(res, row, col);
    i128 v = 0;
    LEDGER_ASSERT(amount_parse(s, strlen(s), &v) == AMOUNT_PARSE_OK);
    return v;
}

int64_t pg_get_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

enum store_result pg_classify(PGconn *conn, const PGresult *res, struct store_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    /* Only a transfer id inserted concurrently by another process is
     * expected; a duplicate (account, seq) means the locks failed, or
     * refuses a judgement on cached states, which the committer then runs
     * again on loaded ones. */
    const char *constraint = state && strcmp(state, "23505") == 0
                                 ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
                                 : NULL;
    bool id_exists = constraint && strcmp(constraint, "transfers_ext_id_key") == 0;
    if (err) {
        err->id_exists = id_exists;
        snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state ? state : "");
        snprintf(err->message, sizeof err->message, "%s", msg && *msg ? msg : PQerrorMessage(conn));
        size_t n = strlen(err->message);
        while (n > 0 && err->message[n - 1] == '\n')
            err->message[--n] = '\0';
    }
    if (state != NULL) {
        if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
            return STORE_RETRY;
        if (strcmp(state, "53200") == 0)
            return STORE_RETRY_LOCK_ALL;
        if (id_exists)
            return STORE_RETRY;
    }
    /* A broken connection applied nothing unless COMMIT was sent, which the
     * write path reports as STORE_UNKNOWN instead. Run the batch again on a
     * new connection: a server that is down refuses it at once, and one
     * that was restarted serves it (a backend left by a killed postmaster
     * can answer one more batch before it notices and leaves). */
    if (PQstatus(conn) != CONNECTION_OK)
        return STORE_RETRY;
    return STORE_FAILED;
}
