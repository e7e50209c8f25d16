/*
 * chars.h - the character classes ledgerd's small parsers share.
 */
#ifndef LEDGER_UTIL_CHARS_H
#define LEDGER_UTIL_CHARS_H

#include <stdbool.h>

/* A space or a tab: HTTP's optional whitespace (RFC 9110, 5.6.3), and
 * what a token file may put around a token. */
static inline bool chars_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The value of a hexadecimal digit, or -1. */
static inline int chars_hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

#endif
