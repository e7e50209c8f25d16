/*
 * json_budget.h - bounds on the memory jansson takes to read request
 * bodies.
 *
 * A body's size says little about what its tree costs: 16 MiB of ordinary
 * transfers take about 150 MB of jansson's values, 16 MiB of empty objects
 * about 1.1 GB. So every allocation jansson makes is counted: one parse
 * may take at most JSON_PARSE_BYTES_MAX, and all of jansson's live values
 * together at most JSON_LIVE_BYTES_MAX; an allocation past either fails,
 * and so does the parse, early.
 */
#ifndef LEDGER_HTTP_JSON_BUDGET_H
#define LEDGER_HTTP_JSON_BUDGET_H

#include <jansson.h>

/* 24 times the largest body. Measured in usable malloc sizes: plain
 * transfers take 9 times their text, metadata of one-digit members up to
 * 20 times, empty objects 70 times; so any batch of transfers fits, with
 * metadata of any kind but nested empty containers. One such parse takes
 * it all and runs alone; batches of 1,000 plain transfers take about 1 MB
 * each. */
#define JSON_PARSE_BYTES_MAX ((size_t)384 << 20)
#define JSON_LIVE_BYTES_MAX  JSON_PARSE_BYTES_MAX

enum json_budget_result {
    JSON_BUDGET_OK = 0,
    JSON_BUDGET_REQUEST = 1, /* this body alone needs more than a parse may take */
    JSON_BUDGET_BUSY = 2,    /* other requests' values hold the rest: retry */
};

/* Installs the counting allocator; before anything else uses jansson. */
void json_budget_init(void);

/* json_loadb within the bounds. On NULL, *over says whether a bound was
 * the reason (error holds jansson's own reason otherwise). */
json_t *json_budget_loadb(const char *buf, size_t len, size_t flags, json_error_t *error,
                          enum json_budget_result *over);

#endif
