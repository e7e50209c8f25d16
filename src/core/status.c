/*
 * status.c - names and HTTP statuses of the codes in status.def.
 */
#include "status.h"

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
