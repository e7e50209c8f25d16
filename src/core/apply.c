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
 *  - A reservation (pending) counts against available for every later
 *    debit; post, void and expire release it exactly once, because they
 *    act only on a transfer whose state is still pending.
 *  - Mean acquisition cost changes only on a credit (cost.c), and is 0 at
 *    a balance of 0.
 * No I/O, no clock, no allocation: everything lives in the caller's arrays.
 */
#include <string.h>

#include "apply.h"
#include "assert.h"

/* The figures a transfer will leave behind, computed before any mutation. */
struct transfer_plan {
    i128 from_balance, from_pending_out;
    i128 to_balance, to_pending_in;
    struct core_cost from_cost, to_cost;
    int64_t effective_us;
};

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Index of currency in c, or -1. */
static int cost_find(const struct core_cost *c, const char *currency)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->currency[i], currency) == 0)
            return i;
    return -1;
}

/* SPEC section 5: a unit_cost may name only the credited account's cost
 * currencies, and one for an account that tracks none is malformed: a
 * 400, so it is judged as soon as the account is known, before the
 * checks that depend on the accounts' state. */
static bool unit_cost_malformed(const struct core_account *to, const struct core_cost *unit_cost)
{
    if (unit_cost != NULL && to->avg_cost.n == 0)
        return true;
    for (int i = 0; unit_cost != NULL && i < unit_cost->n; i++)
        if (cost_find(&to->avg_cost, unit_cost->currency[i]) < 0)
            return true;
    return false;
}

/* ... and it must name every one of them (missing_unit_cost). */
static bool unit_cost_missing(const struct core_account *to, const struct core_cost *unit_cost)
{
    for (int i = 0; i < to->avg_cost.n; i++)
        if (unit_cost == NULL || cost_find(unit_cost, to->avg_cost.currency[i]) < 0)
            return true;
    return false;
}

/* The means after a balance change: a credit of q > 0 at unit_cost mixes
 * in; a debit leaves them; a balance of 0 means a mean of 0. */
static void cost_after(const struct core_account *a, i128 new_balance, i128 credit,
                       const struct core_cost *unit_cost, struct core_cost *out)
{
    *out = a->avg_cost;
    for (int i = 0; i < out->n; i++) {
        if (new_balance == 0) {
            out->value[i] = 0;
        } else if (credit > 0) {
            int k = cost_find(unit_cost, out->currency[i]);
            LEDGER_ASSERT(k >= 0);
            LEDGER_ASSERT(cost_mean_after_credit(a->balance, a->avg_cost.value[i], credit,
                                                 unit_cost->value[k], &out->value[i]) == 0);
        }
    }
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
    if (unit_cost_malformed(to, op->unit_cost))
        return STATUS_UNTRACKED_UNIT_COST;
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

    if (unit_cost_missing(to, op->unit_cost))
        return STATUS_MISSING_UNIT_COST;

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

    /* available = balance - pending_out is a figure of the account like
     * the others (unbounded accounts too): it must fit the i128 range. So
     * must balance + pending_in, what the credited account holds once its
     * pending credits are posted: posting a reservation can then never
     * overflow. */
    i128 available = plan->from_balance, incoming = plan->to_balance;
    if (amount_sub(&available, plan->from_pending_out) ||
        amount_add(&incoming, plan->to_pending_in))
        return STATUS_AMOUNT_OVERFLOW;
    if (!from->min_unbounded && available < from->min_balance)
        return STATUS_INSUFFICIENT_FUNDS;
    cost_after(from, plan->from_balance, 0, NULL, &plan->from_cost);
    cost_after(to, plan->to_balance, op->pending ? 0 : op->amount, op->unit_cost, &plan->to_cost);
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
                       enum entry_kind kind, i128 amount, i128 pending_change, int64_t effective_us)
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
    e->avg_cost = a->avg_cost;
    e->effective_us = effective_us;
    e->created_us = b->now_us;
}

/* Moves both accounts to the plan and writes their entries. */
static void plan_commit(struct core_batch *b, const struct core_op *op,
                        const struct transfer_plan *plan, enum entry_kind kind, bool atomic,
                        int *n_undo)
{
    if (atomic) {
        undo_save_account(b, n_undo, op->from);
        undo_save_account(b, n_undo, op->to);
        undo_save_transfer(b, n_undo, op->transfer);
    }
    struct core_account *from = &b->accounts[op->from];
    struct core_account *to = &b->accounts[op->to];
    i128 debit = plan->from_balance - from->balance;
    i128 credit = plan->to_balance - to->balance;
    i128 out_change = plan->from_pending_out - from->pending_out;
    i128 in_change = plan->to_pending_in - to->pending_in;
    from->balance = plan->from_balance;
    from->pending_out = plan->from_pending_out;
    from->avg_cost = plan->from_cost;
    to->balance = plan->to_balance;
    to->pending_in = plan->to_pending_in;
    to->avg_cost = plan->to_cost;
    emit_entry(b, op->from, op->transfer, kind, debit, out_change, plan->effective_us);
    emit_entry(b, op->to, op->transfer, kind, credit, in_change, plan->effective_us);
}

/* Returns the op's status; on STATUS_OK the transfer is applied. */
static enum status transfer_apply(struct core_batch *b, struct core_op *op, bool atomic,
                                  int *n_undo)
{
    struct core_transfer *t = &b->transfers[op->transfer];
    if (core_check_amount(op->amount_parse, op->amount) != STATUS_OK)
        return STATUS_INVALID_AMOUNT;
    if (op->timeout_s < 0 || op->timeout_s > TIMEOUT_S_MAX || (op->timeout_s != 0 && !op->pending))
        return STATUS_INVALID_REQUEST;
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
    plan_commit(b, op, &plan, op->pending ? ENTRY_PENDING : ENTRY_POSTED, atomic, n_undo);
    const struct core_account *from = &b->accounts[op->from];
    const struct core_account *to = &b->accounts[op->to];
    memset(t, 0, sizeof *t);
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
    t->deadline_us = TIME_NONE;
    if (op->unit_cost != NULL)
        t->unit_cost =
            *op->unit_cost; /* kept in the journal; a pending credit applies it on post */
    if (op->pending) {
        t->timeout_s = op->timeout_s;
        if (op->timeout_s > 0)
            t->deadline_us = b->now_us + op->timeout_s * 1000000;
        t->pending_dirty = true;
    }
    op->replayed = false;
    return STATUS_OK;
}

/* Post, void or expire of a pending transfer: checks, then settles. */
static enum status settle_apply(struct core_batch *b, struct core_op *op, bool atomic, int *n_undo)
{
    struct core_transfer *t = &b->transfers[op->transfer];
    if (op->kind == OP_POST && op->has_amount &&
        core_check_amount(op->amount_parse, op->amount) != STATUS_OK)
        return STATUS_INVALID_AMOUNT;
    /* The engine names the accounts it resolved for this id; if another
     * process created the id with other accounts meanwhile, it is not the
     * pending transfer the caller meant to settle. */
    if (!t->exists || !t->pending || op->from < 0 || op->to < 0 ||
        b->accounts[op->from].id != t->from_account || b->accounts[op->to].id != t->to_account)
        return STATUS_PENDING_NOT_FOUND;

    i128 posted = op->kind == OP_POST ? (op->has_amount ? op->amount : t->amount) : 0;
    switch (t->state) {
    case TRANSFER_POSTED:
        /* Posting again the same way is a replay. */
        if (op->kind == OP_POST && posted == t->posted_amount) {
            op->replayed = true;
            return STATUS_OK;
        }
        return STATUS_ALREADY_POSTED;
    case TRANSFER_VOIDED:
        if (op->kind == OP_VOID) {
            op->replayed = true;
            return STATUS_OK;
        }
        return STATUS_ALREADY_VOIDED;
    case TRANSFER_EXPIRED:
        return STATUS_PENDING_EXPIRED;
    case TRANSFER_PENDING:
        break;
    }
    bool due = t->deadline_us != TIME_NONE && b->now_us >= t->deadline_us;
    if (op->kind == OP_EXPIRE && !due)
        return STATUS_INVALID_REQUEST; /* the sweeper came early: nothing to do */
    if (op->kind != OP_EXPIRE && due)
        return STATUS_PENDING_EXPIRED;
    if (posted > t->amount)
        return STATUS_EXCEEDS_PENDING;

    const struct core_account *from = &b->accounts[op->from];
    const struct core_account *to = &b->accounts[op->to];
    struct transfer_plan plan = {
        .from_balance = from->balance,
        .from_pending_out = from->pending_out,
        .to_balance = to->balance,
        .to_pending_in = to->pending_in,
        .effective_us = max64(b->now_us, max64(from->last_effective_us, to->last_effective_us)),
    };
    if (amount_sub(&plan.from_pending_out, t->amount) ||
        amount_sub(&plan.to_pending_in, t->amount) || amount_sub(&plan.from_balance, posted) ||
        amount_add(&plan.to_balance, posted))
        return STATUS_AMOUNT_OVERFLOW;
    /* The reservation was checked against min_balance when it was made;
     * releasing it can only raise available. */
    cost_after(from, plan.from_balance, 0, NULL, &plan.from_cost);
    cost_after(to, plan.to_balance, posted, &t->unit_cost, &plan.to_cost);

    /* After this point the settlement must succeed. */
    enum entry_kind kind = op->kind == OP_POST   ? ENTRY_POST_PENDING
                           : op->kind == OP_VOID ? ENTRY_VOID_PENDING
                                                 : ENTRY_EXPIRE_PENDING;
    plan_commit(b, op, &plan, kind, atomic, n_undo);
    t->state = op->kind == OP_POST   ? TRANSFER_POSTED
               : op->kind == OP_VOID ? TRANSFER_VOIDED
                                     : TRANSFER_EXPIRED;
    t->settled = true;
    t->posted_amount = posted;
    t->settle_from_seq = b->accounts[op->from].seq;
    t->settle_to_seq = b->accounts[op->to].seq;
    t->settle_from_balance = b->accounts[op->from].balance;
    t->settle_to_balance = b->accounts[op->to].balance;
    t->settled_us = b->now_us;
    t->pending_dirty = true;
    op->replayed = false;
    return STATUS_OK;
}

/* A replayed creation answers what the creation answered (SPEC: "the
 * original result"), even if the transfer has been settled since; a
 * replayed post or void answers what the settlement answered, which is
 * the transfer as it is now. */
static void as_created(struct core_transfer *t)
{
    if (!t->pending || !t->settled)
        return;
    t->state = TRANSFER_PENDING;
    t->settled = false;
    t->posted_amount = 0;
    t->settle_from_seq = t->settle_to_seq = 0;
    t->settle_from_balance = t->settle_to_balance = 0;
    t->settled_us = 0;
}

static void request_apply(struct core_batch *b, const struct core_request *r)
{
    int n_undo = 0;
    int first_entry = b->n_entries;
    bool failed = false;
    for (int i = r->first_op; i < r->first_op + r->n_ops; i++) {
        struct core_op *op = &b->ops[i];
        op->replayed = false;
        op->status = op->kind == OP_TRANSFER ? transfer_apply(b, op, r->atomic, &n_undo)
                                             : settle_apply(b, op, r->atomic, &n_undo);
        /* A later op of the batch may settle the same transfer: each op
         * answers with the transfer as it left it. */
        if (op->status == STATUS_OK) {
            *op->result = b->transfers[op->transfer];
            if (op->kind == OP_TRANSFER && op->replayed)
                as_created(op->result);
        }
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
    if (b->n_entries % 2 != 0)
        return false;
    /* Entries come in debit/credit pairs of one transfer: the amounts of a
     * pair cancel, and its pending changes are equal (pending_out of the
     * debited account and pending_in of the credited one move together). */
    for (int i = 0; i < b->n_entries; i += 2) {
        const struct core_entry *debit = &b->entries[i], *credit = &b->entries[i + 1];
        i128 sum = debit->amount;
        if (debit->transfer != credit->transfer || amount_add(&sum, credit->amount) || sum != 0 ||
            debit->pending_change != credit->pending_change)
            return false;
    }
    return true;
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
    /* Sets without repeats (codec.c), in any order. */
    if (a->n_cost_currencies != b->n_cost_currencies)
        return false;
    for (int i = 0; i < a->n_cost_currencies; i++) {
        int k = 0;
        while (k < b->n_cost_currencies &&
               strcmp(a->cost_currencies[i], b->cost_currencies[k]) != 0)
            k++;
        if (k == b->n_cost_currencies)
            return false;
    }
    return true;
}
