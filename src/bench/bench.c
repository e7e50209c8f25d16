/*
 * bench.c - ledger-bench: the standard suite in one run.
 *
 * It starts its own PostgreSQL cluster (fsync and synchronous_commit on,
 * as shipped) and its own ledgerd, then for each workload measures ledgerd
 * with single-transfer and batch requests, the three hand-rolled SQL
 * baselines with the same client count, and prints one table per workload
 * with the ratio to the best baseline. Then the ceiling (journal rows
 * written directly, 1,000 per transaction), an open-loop latency run, and
 * `ledgerd verify`. Every run prints its seed first.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ledgerd/pg_embedded.h"
#include "util/log.h"

#define FUNDS 1000000000LL /* per account: no transfer is refused for funds */

struct options {
    bool smoke;
    uint64_t seed;
    double seconds;
    int clients;
    int batch_clients;
    double open_rate;
    double read_rate; /* reads offered per second for the read latency run */
    const char *ledgerd;
    const char *workloads;
    const char *systems;
    const char *ledgerd_log;
    const char *db;   /* an existing database instead of a private cluster */
    uint64_t journal; /* transfers written before measuring, to test a large journal */
};

/* log: NULL, or a file that gets ledgerd's debug log (per-batch timings). */
static pid_t start_ledgerd(const char *path, const char *conninfo, int port, const char *log)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        if (log && freopen(log, "w", stderr) == NULL)
            _exit(127);
        execl(path, path, "--db", conninfo, "--listen", listen, "--log-level",
              log ? "debug" : "warn", (char *)NULL);
        fprintf(stderr, "ledger-bench: could not run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

static bool wait_healthy(const char *base, pid_t pid)
{
    for (int i = 0; i < 600; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) != 0)
            return false;
        if (http_request(base, "GET", "/healthz", NULL, NULL) == 200)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static bool sql(const char *conninfo, const char *text)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, text);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "ledger-bench: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

/* When the journal's first and last transfers took effect, in Unix
 * seconds; both 0 if it has none. Read by primary key: two probes. */
static void journal_span(const char *conninfo, int64_t *from, int64_t *to)
{
    *from = *to = 0;
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, "SELECT (SELECT extract(epoch FROM effective_at)::bigint"
                            "  FROM ledger.transfers ORDER BY id LIMIT 1),"
                            " (SELECT extract(epoch FROM effective_at)::bigint"
                            "  FROM ledger.transfers ORDER BY id DESC LIMIT 1)");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && !PQgetisnull(r, 0, 0)) {
        *from = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *to = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    PQfinish(c);
}

/* Accounts go in by SQL (they have no entries yet, so the ledger stays
 * consistent); the funds go in through ledgerd, as batch transfers. */
static bool seed_ledger(const char *conninfo, const char *base, const struct workload *w)
{
    char text[1024];
    snprintf(text, sizeof text,
             "INSERT INTO ledger.accounts (ext_id, currency, min_balance)"
             " VALUES ('%s-bank', 'USD', NULL) ON CONFLICT (ext_id) DO NOTHING;"
             "INSERT INTO ledger.accounts (ext_id, currency, min_balance)"
             " SELECT '%s-' || lpad(g::text, 6, '0'), 'USD', 0 FROM generate_series(0, %d) g"
             " ON CONFLICT (ext_id) DO NOTHING",
             w->name, w->name, w->n_accounts - 1);
    if (!sql(conninfo, text))
        return false;
    size_t cap = 8190 * 128 + 64;
    char *body = malloc(cap);
    for (int first = 0; first < w->n_accounts; first += 8190) {
        size_t len = (size_t)snprintf(body, cap, "{\"atomic\":true,\"transfers\":[");
        for (int i = first; i < w->n_accounts && i < first + 8190; i++) {
            char acc[64];
            workload_account(w, i, acc, sizeof acc);
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"id\":\"fund-%s\",\"from\":\"%s-bank\",\"to\":\"%s\","
                                    "\"amount\":%lld}",
                                    i == first ? "" : ",", acc, w->name, acc, FUNDS);
        }
        snprintf(body + len, cap - len, "]}");
        char *resp = NULL;
        int status = http_request(base, "POST", "/v1/transfers/batch", body, &resp);
        bool ok = status == 200 && resp && strstr(resp, "\"rejected\"") == NULL;
        if (!ok)
            fprintf(stderr, "ledger-bench: funding failed (HTTP %d): %.300s\n", status,
                    resp ? resp : "");
        free(resp);
        if (!ok) {
            free(body);
            return false;
        }
    }
    free(body);
    return true;
}

static void print_table_header(void)
{
    printf("| system | clients | transfers/s | p50 ms | p99 ms | p99.9 ms | rejects | errors "
           "| retries | vs best baseline |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
}

static double rate_of(const struct result *r)
{
    return r->seconds > 0 ? (double)r->transfers / r->seconds : 0;
}

/* One row of a workload's table, after the table's header if it is the
 * first row printed (*header_done). */
static void print_row(const struct result *r, double best_baseline, bool *header_done)
{
    if (r->seconds == 0)
        return; /* not selected with --systems */
    if (!*header_done)
        print_table_header();
    *header_done = true;
    printf("| %s | %d | %.0f | %.2f | %.2f | %.2f | %llu | %llu | %llu |", r->system, r->clients,
           rate_of(r), r->p50_ms, r->p99_ms, r->p999_ms, (unsigned long long)r->rejects,
           (unsigned long long)r->errors, (unsigned long long)r->retries);
    if (best_baseline > 0)
        printf(" %.2fx |\n", rate_of(r) / best_baseline);
    else
        printf(" |\n");
    fflush(stdout);
}

/* Lets the database settle between measured runs, so that no run pays for
 * another's leftovers. VACUUM ANALYZE does the work that the previous
 * runs' rows would otherwise start in autovacuum during the next run: an
 * autovacuum of the journal once ran through six of the open loop's ten
 * seconds, and its worst quarter-second had a p99 of 65 ms. The checkpoint
 * flushes their dirty pages. Autovacuum workers already running are
 * waited for. */
static void settle(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    PQclear(PQexec(c, "VACUUM ANALYZE"));
    PQclear(PQexec(c, "CHECKPOINT"));
    for (int i = 0; i < 60; i++) {
        PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity"
                                " WHERE backend_type = 'autovacuum worker'");
        bool busy = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (!busy)
            break;
        usleep(500 * 1000);
    }
    PQfinish(c);
}

/* Is name one of the comma-separated list? */
static bool wanted(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

static int run_verify(const char *ledgerd, const char *conninfo)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' verify --db '%s'", ledgerd, conninfo);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"smoke", no_argument, NULL, 's'},
                                             {"seed", required_argument, NULL, 'S'},
                                             {"seconds", required_argument, NULL, 't'},
                                             {"clients", required_argument, NULL, 'c'},
                                             {"ledgerd", required_argument, NULL, 'l'},
                                             {"workloads", required_argument, NULL, 'w'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"systems", required_argument, NULL, 'y'},
                                             {"ledgerd-log", required_argument, NULL, 'L'},
                                             {"db", required_argument, NULL, 'D'},
                                             {"journal", required_argument, NULL, 'J'},
                                             {"read-rate", required_argument, NULL, 'R'},
                                             {"batch-clients", required_argument, NULL, 'B'},
                                             {NULL, 0, NULL, 0}};
    o->seed = (uint64_t)time(NULL);
    o->seconds = 10;
    o->clients = 64;
    o->batch_clients = 64;
    o->open_rate = 5000;
    o->read_rate = 1000;
    o->workloads = "uniform,hot,hot-spend,zipf";
    o->systems = "single,batch,lock,serializable,optimistic,ceiling,http,open,reads";
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->smoke = true;
            break;
        case 'S':
            o->seed = strtoull(optarg, NULL, 10);
            break;
        case 't':
            o->seconds = atof(optarg);
            break;
        case 'c':
            o->clients = atoi(optarg);
            break;
        case 'l':
            o->ledgerd = optarg;
            break;
        case 'w':
            o->workloads = optarg;
            break;
        case 'r':
            o->open_rate = atof(optarg);
            break;
        case 'y':
            o->systems = optarg;
            break;
        case 'L':
            o->ledgerd_log = optarg;
            break;
        case 'D':
            o->db = optarg;
            break;
        case 'J':
            o->journal = strtoull(optarg, NULL, 10);
            break;
        case 'R':
            o->read_rate = atof(optarg);
            break;
        case 'B':
            o->batch_clients = atoi(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: ledger-bench [--smoke] [--seed N] [--seconds S] [--clients N]"
                    " [--batch-clients N]"
                    " [--rate R] [--read-rate R] [--journal N]"
                    " [--workloads uniform,hot,hot-spend,zipf]"
                    " [--systems single,batch,lock,serializable,optimistic,ceiling,http,open,reads]"
                    " [--ledgerd-log FILE] [--db CONNINFO]"
                    " [--ledgerd PATH]\n");
            return -1;
        }
    }
    if (o->clients < 1 || o->batch_clients < 1) {
        fprintf(stderr, "ledger-bench: --clients and --batch-clients must be at least 1\n");
        return -1;
    }
    if (o->smoke) {
        o->seconds = 1;
        o->clients = 8;
        o->batch_clients = 2;
        o->open_rate = 500;
        o->read_rate = 100;
        o->workloads = "uniform";
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    char ledgerd_path[4096];
    if (o.ledgerd == NULL) {
        char self[4096];
        snprintf(self, sizeof self, "%s", argv[0]);
        snprintf(ledgerd_path, sizeof ledgerd_path, "%s/ledgerd", dirname(self));
        o.ledgerd = ledgerd_path;
    }
    printf("seed=%llu seconds=%g clients=%d batch_clients=%d open_rate=%g read_rate=%g"
           " workloads=%s\n",
           (unsigned long long)o.seed, o.seconds, o.clients, o.batch_clients, o.open_rate,
           o.read_rate, o.workloads);
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    g_log_level = LOG_WARN;

    char dir[] = "/tmp/ledger-bench-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    char data[256];
    snprintf(data, sizeof data, "%s/pg", dir);
    struct pg_embedded pg;
    memset(&pg, 0, sizeof pg);
    if (o.db == NULL && pg_embedded_start(&pg, data) != 0) {
        rmdir(dir);
        return 2;
    }
    char conninfo[4400];
    snprintf(conninfo, sizeof conninfo, "%s", o.db ? o.db : pg.conninfo);
    int port = 18000 + (int)(getpid() % 2000);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    pid_t ledgerd = start_ledgerd(o.ledgerd, conninfo, port, o.ledgerd_log);
    int failures = 0;
    if (!wait_healthy(base, ledgerd)) {
        fprintf(stderr, "ledger-bench: ledgerd did not start\n");
        failures++;
        goto out;
    }

    struct result ceiling[CEIL_COUNT] = {{0}};
    for (int k = 0; k < WL_COUNT; k++) {
        struct workload w;
        workload_init(&w, (enum workload_kind)k);
        if (!wanted(o.workloads, w.name)) {
            workload_free(&w);
            continue;
        }
        if (!seed_ledger(conninfo, base, &w) || baseline_setup(conninfo, &w, FUNDS) != 0) {
            failures++;
            workload_free(&w);
            break;
        }
        if (o.journal > 0) {
            /* A large journal first: the measurements below then run on it. */
            char jprefix[64];
            snprintf(jprefix, sizeof jprefix, "%s-j-%llu", w.name, (unsigned long long)o.seed);
            struct http_load fill = {.base_url = base,
                                     .w = &w,
                                     .seed = o.seed + 4,
                                     .id_prefix = jprefix,
                                     .clients = 4,
                                     .batch = 1000,
                                     .seconds = 86400,
                                     .max_requests = o.journal / 1000,
                                     .rss_pid = ledgerd};
            struct result fill_res;
            http_load_run(&fill, &fill_res);
            printf("\njournal preloaded with %llu transfers of %s in %.0f s (%.0f/s), RSS %ld MB,"
                   " errors %llu\n",
                   (unsigned long long)fill_res.transfers, w.name, fill_res.seconds,
                   rate_of(&fill_res), fill_res.rss_kb_max / 1024,
                   (unsigned long long)fill_res.errors);
            sql(conninfo, "VACUUM ANALYZE");
        }
        struct result base_res[BASE_COUNT];
        memset(base_res, 0, sizeof base_res);
        double best = 0;
        for (int b = 0; b < BASE_COUNT; b++) {
            base_res[b].system = baseline_name((enum baseline_kind)b);
            if (!wanted(o.systems, baseline_name((enum baseline_kind)b)))
                continue;
            settle(conninfo);
            baseline_run(conninfo, (enum baseline_kind)b, &w, o.seed, o.clients, o.seconds,
                         &base_res[b]);
            failures +=
                baseline_check(conninfo, (enum baseline_kind)b, (long long)w.n_accounts * FUNDS);
            if (rate_of(&base_res[b]) > best)
                best = rate_of(&base_res[b]);
        }
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s-s-%llu", w.name, (unsigned long long)o.seed);
        struct http_load single = {.base_url = base,
                                   .w = &w,
                                   .seed = o.seed,
                                   .id_prefix = prefix,
                                   .clients = o.clients,
                                   .batch = 1,
                                   .seconds = o.seconds,
                                   .rss_pid = ledgerd};
        struct result single_res = {0}, batch_res = {0};
        if (wanted(o.systems, "single")) {
            settle(conninfo);
            http_load_run(&single, &single_res);
        }
        single_res.system = "ledgerd (single)";
        snprintf(prefix, sizeof prefix, "%s-b-%llu", w.name, (unsigned long long)o.seed);
        struct http_load batch = {.base_url = base,
                                  .w = &w,
                                  .seed = o.seed + 1,
                                  .id_prefix = prefix,
                                  .clients = o.batch_clients,
                                  .batch = 1000,
                                  .seconds = o.seconds,
                                  .rss_pid = ledgerd};
        if (wanted(o.systems, "batch")) {
            settle(conninfo);
            http_load_run(&batch, &batch_res);
        }
        batch_res.system = "ledgerd (batch of 1000)";
        if (k == WL_UNIFORM && wanted(o.systems, "ceiling")) {
            for (int c = 0; c < CEIL_COUNT; c++) {
                settle(conninfo);
                ceiling_run(conninfo, &w, (enum ceiling_kind)c, o.seed, o.seconds, &ceiling[c]);
            }
        }

        char title[128];
        snprintf(title, sizeof title, "%s (%d accounts)", w.name, w.n_accounts);
        printf("\n### %s\n\n", title);
        bool header_done = false;
        print_row(&single_res, best, &header_done);
        print_row(&batch_res, best, &header_done);
        for (int b = 0; b < BASE_COUNT; b++)
            print_row(&base_res[b], best, &header_done);
        if (k == WL_UNIFORM && wanted(o.systems, "ceiling")) {
            double top = 1;
            for (int c = 0; c < CEIL_COUNT; c++) {
                print_row(&ceiling[c], best, &header_done);
                if (rate_of(&ceiling[c]) > top)
                    top = rate_of(&ceiling[c]);
            }
            if (batch_res.seconds > 0)
                printf("\nbatch requests reach %.0f%% of the ceiling (the faster of the two)\n",
                       100.0 * rate_of(&batch_res) / top);
        }
        /* Sampled during the single and batch runs (the open loop prints
         * its own). */
        if (single_res.seconds > 0 || batch_res.seconds > 0)
            printf("ledgerd RSS max: %ld MB\n",
                   (single_res.rss_kb_max > batch_res.rss_kb_max ? single_res.rss_kb_max
                                                                 : batch_res.rss_kb_max) /
                       1024);
        if (single_res.errors + batch_res.errors > 0) {
            printf("  violation: ledgerd answered %llu requests with errors\n",
                   (unsigned long long)(single_res.errors + batch_res.errors));
            failures++;
        }
        if (k == WL_UNIFORM && wanted(o.systems, "http")) {
            /* An upper bound for the HTTP side on this machine: the same
             * requests and client, refused by ledgerd's HTTP threads right
             * after parsing, so no queue, no committer, no database. */
            snprintf(prefix, sizeof prefix, "%s-h-%llu", w.name, (unsigned long long)o.seed);
            struct http_load http = single;
            http.id_prefix = prefix;
            http.zero_amounts = true;
            struct result http_res;
            settle(conninfo);
            http_load_run(&http, &http_res);
            printf("\nHTTP alone, %s, %d clients, the same requests with amount 0 (400 before the"
                   " database): %.0f requests/s, p50 %.2f ms, p99 %.2f ms, errors %llu\n",
                   w.name, o.clients, rate_of(&http_res), http_res.p50_ms, http_res.p99_ms,
                   (unsigned long long)http_res.errors);
            failures += http_res.errors > 0;
        }
        if (k == WL_UNIFORM && wanted(o.systems, "open")) {
            snprintf(prefix, sizeof prefix, "%s-o-%llu", w.name, (unsigned long long)o.seed);
            char warm_prefix[64];
            struct http_load open = {.base_url = base,
                                     .w = &w,
                                     .seed = o.seed + 2,
                                     .id_prefix = prefix,
                                     .batch = 1,
                                     .seconds = o.seconds,
                                     .rate = o.open_rate,
                                     .rss_pid = ledgerd};
            struct result open_res;
            settle(conninfo);
            /* Right after settle(), the first batches are slow: the
             * committer replans after VACUUM ANALYZE, and after the
             * checkpoint the first change to each page writes the whole
             * page to the WAL (26 MB in the first second, about 6 MB in
             * later ones). The worst answers of the first 0.15 s waited
             * 20-120 ms. A running server meets that after each
             * checkpoint and ANALYZE, minutes apart, not every 10 s, so
             * it is measured apart: a warm-up at the same rate,
             * reported, then the measured run. */
            struct http_load warm = open;
            struct result warm_res;
            snprintf(warm_prefix, sizeof warm_prefix, "%s-w-%llu", w.name,
                     (unsigned long long)o.seed);
            warm.id_prefix = warm_prefix;
            warm.seed = o.seed + 5;
            warm.seconds = o.seconds / 5;
            http_load_run(&warm, &warm_res);
            printf("\nopen loop warm-up right after a checkpoint, %s, %.1f s at %.0f/s (not counted"
                   " below): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %llu\n",
                   w.name, warm.seconds, o.open_rate, warm_res.p50_ms, warm_res.p99_ms,
                   warm_res.p999_ms, (unsigned long long)warm_res.errors);
            failures += warm_res.errors > 0;
            http_load_run(&open, &open_res);
            printf("open loop, %s, single transfers at %.0f/s offered: %.0f/s done, p50 %.2f ms,"
                   " p99 %.2f ms, p99.9 %.2f ms, errors %llu, RSS %ld MB\n",
                   w.name, o.open_rate, rate_of(&open_res), open_res.p50_ms, open_res.p99_ms,
                   open_res.p999_ms, (unsigned long long)open_res.errors,
                   open_res.rss_kb_max / 1024);
            failures += open_res.errors > 0;
        }
        if (wanted(o.systems, "reads")) {
            struct http_load reads = {.base_url = base,
                                      .w = &w,
                                      .seed = o.seed + 3,
                                      .id_prefix = "",
                                      .clients = 8,
                                      .batch = 1,
                                      .seconds = o.seconds / 2,
                                      .reads = READS_LEDGER,
                                      .rss_pid = ledgerd};
            journal_span(conninfo, &reads.past_from, &reads.past_to);
            struct result read_res;
            settle(conninfo);
            http_load_run(&reads, &read_res);
            printf("\nreads, %s, 8 clients (balance?at= and entries pages of random accounts):"
                   " %.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %llu\n",
                   w.name, rate_of(&read_res), read_res.p50_ms, read_res.p99_ms, read_res.p999_ms,
                   (unsigned long long)read_res.errors);
            failures += read_res.errors > 0;
            /* One client, one read at a time: what a single caller waits,
             * with no other request in the machine. */
            reads.clients = 1;
            settle(conninfo);
            http_load_run(&reads, &read_res);
            printf("reads, %s, 1 client, one read at a time: %.0f/s, p50 %.2f ms, p99 %.2f ms,"
                   " p99.9 %.2f ms, errors %llu; balance?at= recent p50 %.2f ms, p99 %.2f ms;"
                   " past p50 %.2f ms, p99 %.2f ms; entries p50 %.2f ms, p99 %.2f ms\n",
                   w.name, rate_of(&read_res), read_res.p50_ms, read_res.p99_ms, read_res.p999_ms,
                   (unsigned long long)read_res.errors, read_res.balance_p50_ms,
                   read_res.balance_p99_ms, read_res.past_p50_ms, read_res.past_p99_ms,
                   read_res.entries_p50_ms, read_res.entries_p99_ms);
            failures += read_res.errors > 0;
            reads.clients = 8;
            /* Latency is only meaningful at a stated load: the closed loop
             * above keeps every core busy, so its latency is mostly queueing
             * for the CPU. The same reads, offered at a fixed rate: */
            reads.rate = o.read_rate;
            settle(conninfo);
            http_load_run(&reads, &read_res);
            printf("reads, %s, open loop at %.0f/s offered: %.0f/s done, p50 %.2f ms, p99 %.2f ms,"
                   " p99.9 %.2f ms, errors %llu; balance?at= recent p50 %.2f ms, p99 %.2f ms;"
                   " past p50 %.2f ms, p99 %.2f ms; entries p50 %.2f ms, p99 %.2f ms\n",
                   w.name, o.read_rate, rate_of(&read_res), read_res.p50_ms, read_res.p99_ms,
                   read_res.p999_ms, (unsigned long long)read_res.errors, read_res.balance_p50_ms,
                   read_res.balance_p99_ms, read_res.past_p50_ms, read_res.past_p99_ms,
                   read_res.entries_p50_ms, read_res.entries_p99_ms);
            failures += read_res.errors > 0;
            /* The floor under those figures: the same open loop through the
             * same HTTP thread, reader thread and pooled connection, with a
             * query that reads nothing. What it adds over a bare round trip
             * is this machine's scheduling (BENCHMARKS.md, Machine). */
            reads.reads = READS_HEALTHZ;
            http_load_run(&reads, &read_res);
            printf("reads floor, open loop at %.0f/s offered of GET /healthz: %.0f/s done,"
                   " p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %llu\n",
                   o.read_rate, rate_of(&read_res), read_res.p50_ms, read_res.p99_ms,
                   read_res.p999_ms, (unsigned long long)read_res.errors);
            failures += read_res.errors > 0;
        }
        workload_free(&w);
    }
    printf("\nledgerd verify:\n");
    fflush(stdout);
    if (run_verify(o.ledgerd, conninfo) != 0)
        failures++;
out:
    kill(ledgerd, SIGTERM);
    waitpid(ledgerd, NULL, 0);
    pg_embedded_stop(&pg);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ledger-bench: could not remove %s\n", dir);
    printf("\nledger-bench: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
