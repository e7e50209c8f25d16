/*
 * assert.c - the one place core may write to stderr: just before abort().
 */
#include <stdio.h>
#include <stdlib.h>

#include "assert.h"

void ledger_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "FATAL: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
