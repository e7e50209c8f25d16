/*
 * status.c - names and HTTP statuses of the codes in status.def.
 */
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
