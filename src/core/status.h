/*
 * status.h - result codes generated from status.def.
 */
#ifndef LEDGER_CORE_STATUS_H
#define LEDGER_CORE_STATUS_H

enum status {
#define X(name, num, code, http, message) STATUS_##name = num,
#include "status.def"
#undef X
};

/* The stable JSON code, e.g. "insufficient_funds"; "internal" if unknown. */
const char *status_code(enum status s);
/* A sentence for people, for the "message" field. */
const char *status_message(enum status s);
/* The HTTP status a single request answers with. */
int status_http(enum status s);

#endif
