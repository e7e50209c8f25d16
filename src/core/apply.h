/*
 * apply.h - the ledger rules: applying a batch of requests to account state.
 */
#ifndef LEDGER_CORE_APPLY_H
#define LEDGER_CORE_APPLY_H

#include "types.h"

/*
 * Applies every request of the batch, in order, each transfer judged against
 * the state left by the ones before it (SPEC section 3). Sets status and
 * replayed on every op, and *result on every op that succeeds (so each op
 * needs one); updates accounts and transfers in place; appends the
 * journal entries to b->entries. A failed transfer changes nothing; a failed
 * atomic request changes nothing and its other transfers report
 * STATUS_BATCH_FAILED. No I/O, no clock (b->now_us is the time), no
 * allocation.
 */
void core_apply_batch(struct core_batch *b);

/* SPEC section 3: an amount is an integer > 0 and < 2^127. */
enum status core_check_amount(enum amount_parse_result parsed, i128 amount);

/* Pair assertion for the engine: the entries come in pairs, one per
 * transfer, whose amounts net to zero and whose pending changes match. */
bool core_entries_balanced(const struct core_batch *b);

/* What an account creation asks for, compared for idempotent creation. */
struct core_account_spec {
    const char *currency;
    bool min_unbounded;
    i128 min_balance;
    const char *const *cost_currencies;
    int n_cost_currencies;
};

/* SPEC section 3: creating an existing account is a replay (true) only when
 * currency, min_balance, cost_currencies and metadata are equal by value.
 * metadata_equal is decided by the caller, which holds the parsed JSON. */
bool core_account_spec_equal(const struct core_account_spec *a, const struct core_account_spec *b,
                             bool metadata_equal);

#endif
