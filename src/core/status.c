/*
 * status.c - names and HTTP statuses of the codes in status.def.
 */
#include <string.h>

#include "types.h"

const char *status_code(enum status s)
{
    switch (s) {
#define X(name, num, code, http, message)                                                          \
    case STATUS_##name:                                                                            \
        return code;
#include "status.def"
#undef X
    }
    return "internal";
}

int status_http(enum status s)
{
    switch (s) {
#define X(name, num, code, http, message)                                                          \
    case STATUS_##name:                                                                            \
        return http;
#include "status.def"
#undef X
    }
    return 500;
}

const char *status_message(enum status s)
{
    switch (s) {
#define X(name, num, code, http, message)                                                          \
    case STATUS_##name:                                                                            \
        return message;
#include "status.def"
#undef X
    }
    return "internal error";
}

const char *transfer_state_name(enum transfer_state s)
{
    switch (s) {
    case TRANSFER_POSTED:
        return "posted";
    case TRANSFER_PENDING:
        return "pending";
    case TRANSFER_VOIDED:
        return "voided";
    case TRANSFER_EXPIRED:
        return "expired";
    }
    return "posted";
}

bool transfer_state_from_name(const char *name, enum transfer_state *out)
{
    for (enum transfer_state s = TRANSFER_POSTED; s <= TRANSFER_EXPIRED; s++)
        if (strcmp(name, transfer_state_name(s)) == 0) {
            *out = s;
            return true;
        }
    return false;
}

const char *entry_kind_name(enum entry_kind k)
{
    switch (k) {
    case ENTRY_POSTED:
        return "posted";
    case ENTRY_PENDING:
        return "pending";
    case ENTRY_POST_PENDING:
        return "post_pending";
    case ENTRY_VOID_PENDING:
        return "void_pending";
    case ENTRY_EXPIRE_PENDING:
        return "expire_pending";
    }
    return "posted";
}
