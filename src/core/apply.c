/*
 * apply.c - the ledger rules (SPEC sections 3, 4 and 6), and nothing else.
 *
 * Rules kept here:
 *  - Each transfer is checked in SPEC section 3's order of checks, and the
 *    first failing check is its status. Nothing is mutated before every
 *    check has passed ("after this point the transfer must succeed").
 *  - All i128 arithmetic is checked before any field changes.
 *  - An atomic request either applies whole or is rolled back through the
 *    undo log; its successful transfers then report batch_failed.
 *  - seq grows by exactly one per entry; effective_at never decreases per
 *    account.
 * No I/O, no clock, no allocation: everything lives in the caller's arrays.
 */
#include <string.h>

#include "apply.h"
#include "assert.h"

/* The figures a transfer will leave behind, computed before any mutation. */
struct transfer_plan {
    i128 from_balance, from_pending_out;
    i128 to_balance, to_pending_in;
    int64_t effective_us;
};

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* SPEC section 3 idempotency: the same from, to, amount, currency, pending. */
static enum status transfer_exists_status(const struct core_batch *b, const struct core_op *op,
                                          const struct core_transfer *t)
{
    int64_t from_id = op->from >= 0 ? b->accounts[op->from].id : -1;
    int64_t to_id = op->to >= 0 ? b->accounts[op->to].id : -1;
    if (t->from_account != from_id || t->to_account != to_id)
        return STATUS_ID_CONFLICT;
    if (t->amount != op->amount || t->pending != op->pending)
        return STATUS_ID_CONFLICT;
    if (op->has_currency && strcmp(op->currency, t->currency) != 0)
        return STATUS_ID_CONFLICT;
    return STATUS_OK;
}

static enum status transfer_check(const struct core_batch *b, const struct core_op *op,
                                  struct transfer_plan *plan)
{
    if (strcmp(op->from_id, op->to_id) == 0)
        return STATUS_SAME_ACCOUNT;
    if (op->from < 0 || op->to < 0)
        return STATUS_ACCOUNT_NOT_FOUND;

    const struct core_account *from = &b->accounts[op->from];
    const struct core_account *to = &b->accounts[op->to];
    if (strcmp(from->currency, to->currency) != 0 ||
        (op->has_currency && strcmp(op->currency, from->currency) != 0))
        return STATUS_CURRENCY_MISMATCH;
    if ((op->has_expect_from_seq && op->expect_from_seq != from->seq) ||
        (op->has_expect_to_seq && op->expect_to_seq != to->seq))
        return STATUS_SEQ_MISMATCH;

    int64_t last = max64(from->last_effective_us, to->last_effective_us);
    if (op->has_effective) {
        if (op->effective_us < last || op->effective_us > b->now_us)
            return STATUS_BACKDATED;
        plan->effective_us = op->effective_us;
    } else {
        /* Another process's clock may be a little ahead: never go back. */
        plan->effective_us = max64(b->now_us, last);
    }

    plan->from_balance = from->balance;
    plan->from_pending_out = from->pending_out;
    plan->to_balance = to->balance;
    plan->to_pending_in = to->pending_in;
    if (op->pending) {
        if (amount_add(&plan->from_pending_out, op->amount) ||
            amount_add(&plan->to_pending_in, op->amount))
            return STATUS_AMOUNT_OVERFLOW;
    } else {
        if (amount_sub(&plan->from_balance, op->amount) ||
            amount_add(&plan->to_balance, op->amount))
            return STATUS_AMOUNT_OVERFLOW;
    }

    if (!from->min_unbounded) {
        i128 available = plan->from_balance;
        /* An available figure below the i128 range is below any min_balance. */
        if (amount_sub(&available, plan->from_pending_out) || available < from->min_balance)
            return STATUS_INSUFFICIENT_FUNDS;
    }
    return STATUS_OK;
}

static void undo_save_account(struct core_batch *b, int *n_undo, int slot)
{
    struct core_undo *u = &b->undo[(*n_undo)++];
    u->is_account = true;
    u->slot = slot;
    u->saved.account = b->accounts[slot];
}

static void undo_save_transfer(struct core_batch *b, int *n_undo, int slot)
{
    struct core_undo *u = &b->undo[(*n_undo)++];
    u->is_account = false;
    u->slot = slot;
    u->saved.transfer = b->transfers[slot];
}

static void emit_entry(struct core_batch *b, int account_slot, int transfer_slot,
                       enum entry_kind kind, i128 amount, i128 pending_change,
                       int64_t effective_us)
{
    struct core_account *a = &b->accounts[account_slot];
    struct core_entry *e = &b->entries[b->n_entries++];
    a->seq += 1;
    a->last_effective_us = effective_us;
    a->touched = true;
    e->account = account_slot;
    e->transfer = transfer_slot;
    e->seq = a->seq;
    e->kind = kind;
    e->amount = amount;
    e->pending_change = pending_change;
    e->balance = a->balance;
    e->pending_out = a->pending_out;
    e->pending_in = a->pending_in;
    e->effective_us = effective_us;
    e->created_us = b->now_us;
}

/* Returns the op's status; on STATUS_OK the transfer is applied. */
static enum status transfer_apply(struct core_batch *b, struct core_op *op, bool atomic,
                                  int *n_undo)
{
    struct core_transfer *t = &b->transfers[op->transfer];
    if (core_check_amount(op->amount_parse, op->amount) != STATUS_OK)
        return STATUS_INVALID_AMOUNT;
    if (t->exists) {
        enum status s = transfer_exists_status(b, op, t);
        op->replayed = s == STATUS_OK;
        return s;
    }

    struct transfer_plan plan;
    enum status s = transfer_check(b, op, &plan);
    if (s != STATUS_OK)
        return s;

    /* After this point the transfer must succeed. */
    if (atomic) {
        undo_save_account(b, n_undo, op->from);
        undo_save_account(b, n_undo, op->to);
        undo_save_transfer(b, n_undo, op->transfer);
    }
    struct core_account *from = &b->accounts[op->from];
    struct core_account *to = &b->accounts[op->to];
    i128 debit = plan.from_balance - from->balance;
    i128 credit = plan.to_balance - to->balance;
    i128 out_change = plan.from_pending_out - from->pending_out;
    i128 in_change = plan.to_pending_in - to->pending_in;
    from->balance = plan.from_balance;
    from->pending_out = plan.from_pending_out;
    to->balance = plan.to_balance;
    to->pending_in = plan.to_pending_in;
    enum entry_kind kind = op->pending ? ENTRY_PENDING : ENTRY_POSTED;
    emit_entry(b, op->from, op->transfer, kind, debit, out_change, plan.effective_us);
    emit_entry(b, op->to, op->transfer, kind, credit, in_change, plan.effective_us);

    t->exists = true;
    t->created = true;
    t->from_account = from->id;
    t->to_account = to->id;
    t->amount = op->amount;
    memcpy(t->currency, from->currency, sizeof t->currency);
    t->pending = op->pending;
    t->state = op->pending ? TRANSFER_PENDING : TRANSFER_POSTED;
    t->from_seq = from->seq;
    t->to_seq = to->seq;
    t->from_balance = from->balance;
    t->to_balance = to->balance;
    t->created_us = b->now_us;
    t->effective_us = plan.effective_us;
    op->replayed = false;
    return STATUS_OK;
}

static void request_apply(struct core_batch *b, const struct core_request *r)
{
    int n_undo = 0;
    int first_entry = b->n_entries;
    bool failed = false;
    for (int i = r->first_op; i < r->first_op + r->n_ops; i++) {
        struct core_op *op = &b->ops[i];
        op->replayed = false;
        op->status = transfer_apply(b, op, r->atomic, &n_undo);
        if (op->status != STATUS_OK)
            failed = true;
    }
    if (!r->atomic || !failed)
        return;
    while (n_undo > 0) {
        const struct core_undo *u = &b->undo[--n_undo];
        if (u->is_account)
            b->accounts[u->slot] = u->saved.account;
        else
            b->transfers[u->slot] = u->saved.transfer;
    }
    b->n_entries = first_entry;
    for (int i = r->first_op; i < r->first_op + r->n_ops; i++) {
        struct core_op *op = &b->ops[i];
        if (op->status == STATUS_OK) {
            op->status = STATUS_BATCH_FAILED;
            op->replayed = false;
        }
    }
}

void core_apply_batch(struct core_batch *b)
{
    b->n_entries = 0;
    for (int i = 0; i < b->n_requests; i++)
        request_apply(b, &b->requests[i]);
    LEDGER_ASSERT(core_entries_balanced(b));
}

enum status core_check_amount(enum amount_parse_result parsed, i128 amount)
{
    return parsed == AMOUNT_PARSE_OK && amount > 0 ? STATUS_OK : STATUS_INVALID_AMOUNT;
}

bool core_entries_balanced(const struct core_batch *b)
{
    i128 amount_sum = 0, pending_sum = 0;
    for (int i = 0; i < b->n_entries; i++) {
        const struct core_entry *e = &b->entries[i];
        /* Entries come in debit/credit pairs of one transfer. */
        if (amount_add(&amount_sum, e->amount))
            return false;
        if (i % 2 == 0) {
            if (amount_add(&pending_sum, e->pending_change))
                return false;
        } else if (amount_sub(&pending_sum, e->pending_change)) {
            return false;
        }
        if (i % 2 == 1 && e->transfer != b->entries[i - 1].transfer)
            return false;
    }
    return b->n_entries % 2 == 0 && amount_sum == 0 && pending_sum == 0;
}

bool core_account_spec_equal(const struct core_account_spec *a, const struct core_account_spec *b,
                             bool metadata_equal)
{
    if (!metadata_equal || strcmp(a->currency, b->currency) != 0)
        return false;
    if (a->min_unbounded != b->min_unbounded)
        return false;
    if (!a->min_unbounded && a->min_balance != b->min_balance)
        return false;
    if (a->n_cost_currencies != b->n_cost_currencies)
        return false;
    for (int i = 0; i < a->n_cost_currencies; i++)
        if (strcmp(a->cost_currencies[i], b->cost_currencies[i]) != 0)
            return false;
    return true;
}
