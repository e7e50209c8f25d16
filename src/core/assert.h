/*
 * assert.h - assertions that stay on in production builds.
 *
 * A failed LEDGER_ASSERT means a bug in ledgerd, never bad input: the
 * process stops before it can commit anything built on a broken invariant.
 */
#ifndef LEDGER_CORE_ASSERT_H
#define LEDGER_CORE_ASSERT_H

_Noreturn void ledger_assert_fail(const char *expr, const char *file, int line);

#define LEDGER_ASSERT(expr)                                                                        \
    do {                                                                                           \
        if (!(expr))                                                                               \
            ledger_assert_fail(#expr, __FILE__, __LINE__);                                         \
    } while (0)

#endif
