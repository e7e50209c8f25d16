/*
 * main.c - ledgerd: flags, lifecycle and signals.
 *
 *   ledgerd [--db URL | --data DIR] [--listen HOST:PORT] [--log-level L]
 *           [--token-file FILE] [--committers N]
 *   ledgerd verify [--db URL | --data DIR]
 *
 * Start order: database (embedded or --db) -> migrations -> engine ->
 * HTTP. Stop order on SIGTERM/SIGINT/SIGHUP is the reverse: stop accepting,
 * let the committer finish what is queued, answer, stop PostgreSQL.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "pg_embedded.h"
#include "util/log.h"
#include "util/token_file.h"
#include "verify.h"

#define QUEUE_OPS_MAX 100000
/* A batch that runs alone (its first request is large) takes further
 * requests while it stays within this many transfers. Its arrays take
 * about 5 MB per 1,000 transfers, so 3,000 fit the block a committer keeps
 * between batches (BATCH_MEM_KEEP_MAX); with 10,000, 64 clients sending
 * batches of 1,000 made batches that faulted in 50 MB each and ran at
 * 25,000-26,000 transfers/s with 172 MB RSS, against 34,600-38,300/s and
 * 134 MB. A request is never split: one of up to BATCH_TRANSFERS_MAX
 * still runs whole in one transaction. */
#define BATCH_OPS_MAX 3000
/* ledger-bench found no steady difference between 2, 3 and 4 HTTP
 * threads for writes. Reads run on reader threads, one pooled connection
 * each, which bound how many reads are in flight; 4 overlap more of the
 * page reads of a large journal than fewer. */
#define HTTP_THREADS   4
#define READ_POOL_SIZE 4
/* Committers take only requests on accounts the others are not busy with
 * (engine.h), so several keep several PostgreSQL backends busy on disjoint
 * accounts. On the 2-core machine of BENCHMARKS.md a second one gained no
 * throughput, and its small transactions beside the first's doubled the
 * open-loop p99: one by default, --committers for more cores. */
#define COMMITTERS_DEFAULT 1

struct options {
    const char *db;
    const char *listen;
    const char *data;
    const char *token_file;
    int committers;
};

static void usage(FILE *f)
{
    fputs("usage: ledgerd [--db URL | --data DIR] [--listen HOST:PORT]\n"
          "               [--log-level error|warn|info|debug] [--token-file FILE]\n"
          "               [--committers N]\n"
          "       ledgerd verify [--db URL | --data DIR]\n",
          f);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"db", required_argument, NULL, 'd'},
                                             {"listen", required_argument, NULL, 'l'},
                                             {"data", required_argument, NULL, 'D'},
                                             {"log-level", required_argument, NULL, 'v'},
                                             {"token-file", required_argument, NULL, 't'},
                                             {"committers", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    o->listen = "127.0.0.1:8080";
    o->data = "./ledger-data";
    o->committers = COMMITTERS_DEFAULT;
    bool data_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'D':
            o->data = optarg;
            data_given = true;
            break;
        case 't':
            o->token_file = optarg;
            break;
        case 'c': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || n < 1 || n > COMMITTERS_MAX) {
                fprintf(stderr, "ledgerd: --committers must be a whole number from 1 to %d\n",
                        COMMITTERS_MAX);
                return -1;
            }
            o->committers = (int)n;
            break;
        }
        case 'v': {
            int level = log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "ledgerd: --log-level must be error, warn, info or debug\n");
                return -1;
            }
            g_log_level = (enum log_level)level;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->db && data_given) {
        /* One would be ignored: say so rather than serve or check another
         * ledger than the one meant. */
        fprintf(stderr, "ledgerd: give --db or --data, not both\n");
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "ledgerd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* "HOST:PORT", "[v6]:PORT" or ":PORT". */
static int parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535 || colon[1] == '\0')
        return -1;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0) {
        snprintf(host, hostlen, "127.0.0.1");
    } else {
        if (n >= hostlen)
            return -1;
        memcpy(host, s, n);
        host[n] = '\0';
    }
    *port = (uint16_t)p;
    return 0;
}

static int load_tokens(const char *path, char ***tokens, int *n)
{
    char err[512];
    *n = token_file_read(path, tokens, err, sizeof err);
    if (*n < 0) {
        log_error("%s", err);
        return -1;
    }
    if (*n == 0) {
        log_error("token file \"%s\" holds no token", path);
        return -1;
    }
    log_info("bearer tokens required on /v1 (%d configured)", *n);
    return 0;
}

/* The embedded cluster is supervised: if postgres exits under ledgerd
 * (killed, out of memory), requests get 503 until it is started again, and
 * its crash recovery replays the WAL, so nothing committed is lost. A
 * start that fails (the old server's backends may still be exiting) is
 * retried after 1, 2, 4 ... 30 s. */
struct supervisor {
    bool down;
    int wait_s, backoff_s;
};

/* Called about once a second. */
static void supervise(struct pg_embedded *pg, const char *data_dir, struct supervisor *s)
{
    if (!s->down) {
        if (pg_embedded_alive(pg))
            return;
        if (pg->pid == 0)
            log_warn("the process that ran PostgreSQL in %s is gone; running it from here",
                     data_dir);
        else
            log_error("PostgreSQL (pid %d) exited; starting it again", (int)pg->pid);
        s->down = true;
        s->wait_s = 0;
        s->backoff_s = 1;
    }
    if (s->wait_s-- > 0)
        return;
    /* A cluster that is gone (a volume unmounted) is not replaced by a new,
     * empty one: that would be a ledger without its journal. */
    char version_file[4200];
    snprintf(version_file, sizeof version_file, "%s/PG_VERSION", data_dir);
    if (access(version_file, F_OK) != 0) {
        log_error("no PostgreSQL cluster in %s any more; not creating one", data_dir);
    } else if (pg_embedded_start(pg, data_dir) == 0) {
        log_info("PostgreSQL is back");
        s->down = false;
        return;
    }
    s->wait_s = s->backoff_s;
    s->backoff_s = s->backoff_s * 2 > 30 ? 30 : s->backoff_s * 2;
}

/* Started as root on the embedded cluster, ledgerd needs root only to
 * bind its port and to set up the cluster's folder and user. Then it
 * becomes the user that runs PostgreSQL, the folder's owner, who can
 * still supervise, restart and stop it; the HTTP threads parse what
 * clients send and should not do that as root. With --db it stays who it
 * is: there the OS user may be the database identity (peer
 * authentication, ~/.pgpass) for every reconnect. */
static int drop_root(const char *data_dir)
{
    if (geteuid() != 0)
        return 0;
    struct stat st;
    if (stat(data_dir, &st) != 0 || st.st_uid == 0) {
        log_error("cannot tell which user to run as: %s is owned by root", data_dir);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 || setuid(st.st_uid) != 0) {
        log_error("could not leave root for uid %u: %s", (unsigned)st.st_uid, strerror(errno));
        return -1;
    }
    log_info("running as uid %u, the owner of %s", (unsigned)st.st_uid, data_dir);
    return 0;
}

static int serve(const struct options *o)
{
    /* Few malloc arenas: request threads allocate and free large batch
     * bodies, and one arena per thread kept RSS growing under load. */
    mallopt(M_ARENA_MAX, 2);
    char host[256];
    uint16_t port;
    if (parse_listen(o->listen, host, sizeof host, &port) != 0) {
        log_error("--listen must be HOST:PORT, got \"%s\"", o->listen);
        return 2;
    }
    struct http_config cfg = {
        .listen_host = host, .port = port, .threads = HTTP_THREADS, .readers = READ_POOL_SIZE};
    if (o->token_file && load_tokens(o->token_file, &cfg.tokens, &cfg.n_tokens) != 0)
        return 2;

    /* Signals are taken by sigwait below, never by the worker threads. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    /* A closed terminal: stop as cleanly, and stop PostgreSQL too; unless
     * started to ignore it (nohup): a blocked signal is queued even when
     * ignored, and sigtimedwait would take it. */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
        sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct pg_embedded pg;
    memset(&pg, 0, sizeof pg);
    int started = o->db == NULL ? pg_embedded_start(&pg, o->data) : 0;
    if (started != 0)
        return started > 0 ? 0 : 1; /* stopped while starting: a clean stop */
    /* A copy: the supervisor rewrites pg while the write path reconnects. */
    char *conninfo = strdup(o->db ? o->db : pg.conninfo);
    if (conninfo == NULL) {
        pg_embedded_stop(&pg);
        return 1;
    }

    int rc = 1;
    char err[512];
    PGconn *conn = store_connect(conninfo, err, sizeof err);
    if (conn == NULL) {
        log_error("could not connect to the database: %s", err);
        goto stop_pg;
    }
    int version = 0;
    if (store_migrate(conn, &version, err, sizeof err) != 0) {
        log_error("could not migrate the ledger schema: %s", err);
        PQfinish(conn);
        goto stop_pg;
    }
    PQfinish(conn);
    log_info("ledger schema at version %d", version);

    struct store_pool pool;
    struct engine engine;
    if (store_pool_init(&pool, conninfo, READ_POOL_SIZE) != 0 ||
        engine_start(&engine, conninfo, QUEUE_OPS_MAX, BATCH_OPS_MAX, o->committers) != 0) {
        log_error("could not start the write path");
        goto stop_pg;
    }
    struct http_server *http = http_start(&cfg, &engine, &pool);
    if (http == NULL) {
        engine_stop(&engine);
        store_pool_destroy(&pool);
        goto stop_pg;
    }
    if (o->db == NULL && drop_root(o->data) != 0)
        goto stop;
    bool v6 = strchr(host, ':') != NULL;
    log_info("listening on http://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", http_port(http));

    int sig;
    struct supervisor sup = {0};
    const struct timespec second = {1, 0};
    while ((sig = sigtimedwait(&sigs, NULL, &second)) <= 0)
        if (o->db == NULL)
            supervise(&pg, o->data, &sup);
    log_info("received SIG%s; shutting down", sigabbrev_np(sig));
    rc = 0;
stop:
    http_quiesce(http);
    engine_stop(&engine); /* answers everything already queued */
    http_stop(http, 2000);
    store_pool_destroy(&pool);
stop_pg:
    pg_embedded_stop(&pg);
    free(conninfo);
    token_file_free(cfg.tokens, cfg.n_tokens);
    return rc;
}

int main(int argc, char **argv)
{
    bool verify = argc > 1 && strcmp(argv[1], "verify") == 0;
    if (verify) {
        argv++;
        argc--;
    }
    struct options o = {0};
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    if (verify)
        return verify_main(o.db, o.data);
    return serve(&o);
}
