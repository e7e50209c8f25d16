/*
 * ledgerctl.c - a command-line client of ledgerd's HTTP API.
 *
 *   ledgerctl [--url URL] [--token-file FILE] COMMAND ...
 *
 * One command is one request. The answer's body is printed as ledgerd
 * sent it, and the exit status says what happened, so that shell scripts
 * can branch on it: 0 for a 2xx answer, 1 for any other answer, 2 for a
 * command line that makes no request, 3 for no answer (ledgerd could not
 * be reached, or the connection failed or timed out before it answered).
 * The client judges nothing: amounts, ids and times go to ledgerd as
 * typed, and ledgerd's own errors come back.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/token_file.h"

enum { EXIT_ANSWERED_2XX = 0, EXIT_ANSWERED_ERROR = 1, EXIT_USAGE = 2, EXIT_NO_ANSWER = 3 };

static const char usage_text[] =
    "usage: ledgerctl [--url URL] [--token-file FILE] COMMAND ...\n"
    "\n"
    "  account create ID CURRENCY [--min-balance N | --unbounded]\n"
    "                 [--cost-currencies C1,C2] [--metadata JSON]\n"
    "  account get ID\n"
    "  account balance ID [--at TIME]\n"
    "  account entries ID [--after-seq N] [--limit M]\n"
    "  transfer create ID FROM TO AMOUNT [--currency C] [--pending] [--timeout-s S]\n"
    "                  [--effective-at TIME] [--expect-from-seq N] [--expect-to-seq N]\n"
    "                  [--unit-cost JSON] [--metadata JSON]\n"
    "  transfer get ID\n"
    "  transfer post ID [--amount N]\n"
    "  transfer void ID\n"
    "  transfer batch FILE          (the request body, e.g. {\"transfers\": [...]};\n"
    "                                - reads it from standard input)\n"
    "  health\n"
    "\n"
    "--url defaults to http://127.0.0.1:8080. --token-file: the first line that\n"
    "is neither blank nor a # comment is sent as the bearer token.\n"
    "Prints ledgerd's answer. Exit status: 0 for a 2xx answer, 1 for any other\n"
    "answer, 2 for a bad command line, 3 for no answer (a transfer may or may not\n"
    "have been applied: sending it again with the same id is safe).\n";

struct request {
    const char *method; /* GET or POST */
    char path[1024];    /* with its query string */
    char *body;         /* NULL: no body */
    bool too_long;      /* the path did not fit */
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("ledgerctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* ---- request bodies ---- */

static bool parse_i64(const char *s, json_int_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Sets key to the JSON value written in text (a --metadata or --unit-cost
 * argument). */
static bool set_json(json_t *obj, const char *key, const char *text, const char *flag)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL) {
        fprintf(stderr, "ledgerctl: %s is not JSON: %s\n", flag, e.text);
        return false;
    }
    json_object_set_new(obj, key, v);
    return true;
}

/* Sets key to a string as typed. JSON strings are UTF-8: anything else is
 * refused here, since jansson would otherwise drop the member silently. */
static bool set_string(json_t *obj, const char *key, const char *text)
{
    json_t *v = json_string(text);
    if (v == NULL) {
        fprintf(stderr, "ledgerctl: the value for %s is not valid UTF-8\n", key);
        return false;
    }
    json_object_set_new(obj, key, v);
    return true;
}

static bool set_integer(json_t *obj, const char *key, const char *text, const char *flag)
{
    json_int_t v;
    if (!parse_i64(text, &v)) {
        fprintf(stderr, "ledgerctl: %s needs an integer, not \"%s\"\n", flag, text);
        return false;
    }
    json_object_set_new(obj, key, json_integer(v));
    return true;
}

static void put_path(struct request *r, const char *s)
{
    size_t len = strlen(r->path);
    if (len + strlen(s) >= sizeof r->path)
        r->too_long = true;
    else
        memcpy(r->path + len, s, strlen(s) + 1);
}

/* Appends a path segment or query value, percent-encoded. */
static void put_escaped(struct request *r, const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (e == NULL)
        r->too_long = true;
    else
        put_path(r, e);
    curl_free(e);
}

/* Finds an option among argv[first..]: optind-style scanning would take
 * "-5" for a flag, and amounts may be negative. */
struct flag {
    const char *name;
    bool takes_value;
    const char *value; /* set when seen; "" for a flag without value */
};

static int parse_flags(int argc, char **argv, int first, struct flag *flags, int n_flags,
                       const char **positional, int n_positional)
{
    int got = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0) {
            int k = 0;
            while (k < n_flags && strcmp(a + 2, flags[k].name) != 0)
                k++;
            if (k == n_flags)
                return usage_error("unknown option %s", a);
            if (flags[k].takes_value) {
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", a);
                flags[k].value = argv[++i];
            } else {
                flags[k].value = "";
            }
        } else if (got < n_positional) {
            positional[got++] = a;
        } else {
            return usage_error("unexpected argument \"%s\"", a);
        }
    }
    if (got < n_positional)
        return usage_error("%s", "missing arguments");
    return 0;
}

/* Makes r a POST of body to path, or drops body when building it failed. */
static int post_json(struct request *r, const char *path, json_t *body, bool ok)
{
    if (ok) {
        r->method = "POST";
        put_path(r, path);
        r->body = json_dumps(body, JSON_COMPACT);
    }
    json_decref(body);
    return ok ? 0 : EXIT_USAGE;
}

static int account_create(int argc, char **argv, int first, struct request *r)
{
    struct flag f[] = {{"min-balance", true, NULL},
                       {"unbounded", false, NULL},
                       {"cost-currencies", true, NULL},
                       {"metadata", true, NULL}};
    const char *pos[2];
    int rc = parse_flags(argc, argv, first, f, 4, pos, 2);
    if (rc)
        return rc;
    if (f[0].value && f[1].value)
        return usage_error("%s", "--min-balance and --unbounded exclude each other");
    json_t *b = json_object();
    bool ok = set_string(b, "id", pos[0]) && set_string(b, "currency", pos[1]);
    if (f[0].value)
        ok = ok && set_string(b, "min_balance", f[0].value);
    if (f[1].value)
        json_object_set_new(b, "min_balance", json_null());
    if (f[2].value) {
        json_t *list = json_array();
        json_object_set_new(b, "cost_currencies", list);
        char *copy = strdup(f[2].value), *save = NULL;
        for (char *c = strtok_r(copy, ",", &save); ok && c; c = strtok_r(NULL, ",", &save)) {
            json_t *code = json_string(c);
            ok = code != NULL && json_array_append_new(list, code) == 0;
        }
        free(copy);
        if (!ok)
            fprintf(stderr, "ledgerctl: --cost-currencies is not valid UTF-8\n");
    }
    ok = ok && (!f[3].value || set_json(b, "metadata", f[3].value, "--metadata"));
    return post_json(r, "/v1/accounts", b, ok);
}

static int account_read(const char *what, int argc, char **argv, int first, struct request *r)
{
    struct flag f[] = {{"at", true, NULL}, {"after-seq", true, NULL}, {"limit", true, NULL}};
    bool balance = strcmp(what, "balance") == 0, entries = strcmp(what, "entries") == 0;
    const char *pos[1];
    int rc = parse_flags(argc, argv, first, f, 3, pos, 1);
    if (rc)
        return rc;
    if ((f[0].value && !balance) || ((f[1].value || f[2].value) && !entries))
        return usage_error("%s", "an option does not belong to this command");
    r->method = "GET";
    put_path(r, "/v1/accounts/");
    put_escaped(r, pos[0]);
    if (balance) {
        put_path(r, "/balance");
        if (f[0].value) {
            put_path(r, "?at=");
            put_escaped(r, f[0].value);
        }
    } else if (entries) {
        put_path(r, "/entries");
        char sep = '?';
        for (int k = 1; k < 3; k++) {
            if (!f[k].value)
                continue;
            char key[32];
            snprintf(key, sizeof key, "%c%s=", sep, k == 1 ? "after_seq" : "limit");
            put_path(r, key);
            put_escaped(r, f[k].value);
            sep = '&';
        }
    }
    return 0;
}

static int transfer_create(int argc, char **argv, int first, struct request *r)
{
    enum { CURRENCY, PENDING, TIMEOUT, EFFECTIVE, EXPECT_FROM, EXPECT_TO, UNIT_COST, METADATA };
    struct flag f[] = {{"currency", true, NULL},        {"pending", false, NULL},
                       {"timeout-s", true, NULL},       {"effective-at", true, NULL},
                       {"expect-from-seq", true, NULL}, {"expect-to-seq", true, NULL},
                       {"unit-cost", true, NULL},       {"metadata", true, NULL}};
    const char *pos[4];
    int rc = parse_flags(argc, argv, first, f, 8, pos, 4);
    if (rc)
        return rc;
    json_t *b = json_object();
    bool ok = set_string(b, "id", pos[0]) && set_string(b, "from", pos[1]) &&
              set_string(b, "to", pos[2]) && set_string(b, "amount", pos[3]);
    if (f[CURRENCY].value)
        ok = ok && set_string(b, "currency", f[CURRENCY].value);
    if (f[PENDING].value)
        json_object_set_new(b, "pending", json_true());
    if (f[TIMEOUT].value)
        ok = ok && set_integer(b, "timeout_s", f[TIMEOUT].value, "--timeout-s");
    if (f[EFFECTIVE].value)
        ok = ok && set_string(b, "effective_at", f[EFFECTIVE].value);
    if (f[EXPECT_FROM].value || f[EXPECT_TO].value) {
        json_t *expect = json_object();
        json_object_set_new(b, "expect", expect);
        if (f[EXPECT_FROM].value)
            ok = ok && set_integer(expect, "from_seq", f[EXPECT_FROM].value, "--expect-from-seq");
        if (f[EXPECT_TO].value)
            ok = ok && set_integer(expect, "to_seq", f[EXPECT_TO].value, "--expect-to-seq");
    }
    if (f[UNIT_COST].value)
        ok = ok && set_json(b, "unit_cost", f[UNIT_COST].value, "--unit-cost");
    if (f[METADATA].value)
        ok = ok && set_json(b, "metadata", f[METADATA].value, "--metadata");
    return post_json(r, "/v1/transfers", b, ok);
}

static char *read_all(FILE *f)
{
    size_t len = 0, cap = 65536;
    char *s = malloc(cap);
    for (size_t n; s && (n = fread(s + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(s, cap *= 2);
            if (bigger == NULL)
                free(s);
            s = bigger;
        }
    }
    if (s == NULL || ferror(f)) {
        free(s);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

static int transfer_command(const char *what, int argc, char **argv, int first, struct request *r)
{
    if (strcmp(what, "create") == 0)
        return transfer_create(argc, argv, first, r);
    bool get = strcmp(what, "get") == 0, post = strcmp(what, "post") == 0,
         void_ = strcmp(what, "void") == 0, batch = strcmp(what, "batch") == 0;
    if (!get && !post && !void_ && !batch)
        return usage_error("unknown command \"transfer %s\"", what);
    struct flag f[] = {{"amount", true, NULL}};
    const char *pos[1];
    int rc = parse_flags(argc, argv, first, f, post ? 1 : 0, pos, 1);
    if (rc)
        return rc;
    if (batch) {
        FILE *in = strcmp(pos[0], "-") == 0 ? stdin : fopen(pos[0], "r");
        if (in == NULL) {
            fprintf(stderr, "ledgerctl: %s: %s\n", pos[0], strerror(errno));
            return EXIT_USAGE;
        }
        r->body = read_all(in);
        if (in != stdin)
            fclose(in);
        if (r->body == NULL) {
            fprintf(stderr, "ledgerctl: could not read %s\n", pos[0]);
            return EXIT_USAGE;
        }
        r->method = "POST";
        put_path(r, "/v1/transfers/batch");
        return 0;
    }
    put_path(r, "/v1/transfers/");
    put_escaped(r, pos[0]);
    if (get) {
        r->method = "GET";
        return 0;
    }
    json_t *b = json_object();
    bool ok = !f[0].value || set_string(b, "amount", f[0].value);
    return post_json(r, post ? "/post" : "/void", b, ok);
}

/* ---- the request ---- */

/* The first token of the file, read as ledgerd reads its own. */
static bool read_token(const char *path, char *token, size_t len)
{
    char **tokens, err[512];
    int n = token_file_read(path, &tokens, err, sizeof err);
    if (n < 0)
        fprintf(stderr, "ledgerctl: %s\n", err);
    else if (n == 0)
        fprintf(stderr, "ledgerctl: %s holds no token\n", path);
    else
        snprintf(token, len, "%s", tokens[0]);
    if (n > 0)
        token_file_free(tokens, n);
    return n > 0;
}

static size_t print_body(char *data, size_t size, size_t n, void *user)
{
    return fwrite(data, size, n, stdout) * size;
}

static int perform(const char *url_base, const char *token, const struct request *r)
{
    char url[2048], auth[4200];
    snprintf(url, sizeof url, "%s%s", url_base, r->path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    /* Ids "." and ".." are ids, not path steps to fold away. */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, print_body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(r->body ? strlen(r->body) : 0));
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
        fprintf(stderr, "ledgerctl: --url %s: %s\n", url_base, curl_easy_strerror(rc));
        return EXIT_USAGE;
    }
    if (rc != CURLE_OK) {
        /* Past the connection, a write may have been applied: only a retry
         * with the same id tells, and it is safe. */
        fprintf(stderr, "ledgerctl: %s: %s (no answer)\n", url_base, curl_easy_strerror(rc));
        return EXIT_NO_ANSWER;
    }
    putchar('\n');
    return status >= 200 && status < 300 ? EXIT_ANSWERED_2XX : EXIT_ANSWERED_ERROR;
}

static int build(int argc, char **argv, int first, struct request *r)
{
    if (first >= argc)
        return usage_error("%s", "no command");
    const char *noun = argv[first];
    if (strcmp(noun, "health") == 0) {
        if (first + 1 != argc)
            return usage_error("%s", "health takes no arguments");
        r->method = "GET";
        put_path(r, "/healthz");
        return 0;
    }
    if (first + 1 >= argc)
        return usage_error("\"%s\" needs a subcommand", noun);
    const char *verb = argv[first + 1];
    if (strcmp(noun, "account") == 0) {
        if (strcmp(verb, "create") == 0)
            return account_create(argc, argv, first + 2, r);
        if (strcmp(verb, "get") == 0 || strcmp(verb, "balance") == 0 ||
            strcmp(verb, "entries") == 0)
            return account_read(verb, argc, argv, first + 2, r);
        return usage_error("unknown command \"account %s\"", verb);
    }
    if (strcmp(noun, "transfer") == 0)
        return transfer_command(verb, argc, argv, first + 2, r);
    return usage_error("unknown command \"%s\"", noun);
}

int main(int argc, char **argv)
{
    const char *url = "http://127.0.0.1:8080", *token_file = NULL;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        const char **target = strcmp(argv[i], "--url") == 0          ? &url
                              : strcmp(argv[i], "--token-file") == 0 ? &token_file
                                                                     : NULL;
        if (target == NULL)
            return usage_error("unknown option %s", argv[i]);
        if (i + 1 >= argc)
            return usage_error("%s needs a value", argv[i]);
        *target = argv[++i];
    }
    /* Without a scheme, curl would take any word for a host name, and a
     * typo would look like a server that cannot be reached (exit 3). */
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return usage_error("--url %s: must start with http:// or https://", url);
    size_t url_len = strlen(url);
    while (url_len > 0 && url[url_len - 1] == '/')
        url_len--;
    char base[1024];
    snprintf(base, sizeof base, "%.*s", (int)url_len, url);

    struct request r = {0};
    int rc = build(argc, argv, i, &r);
    if (rc == 0 && r.too_long)
        rc = usage_error("%s", "arguments too long");
    if (rc != 0) {
        free(r.body);
        return rc;
    }
    char token[TOKEN_LEN_MAX + 1];
    if (token_file && !read_token(token_file, token, sizeof token)) {
        free(r.body);
        return EXIT_USAGE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = perform(base, token_file ? token : NULL, &r);
    curl_global_cleanup();
    free(r.body);
    return rc;
}
