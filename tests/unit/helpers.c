/*
 * helpers.c - i128 assertions and the hand-built batch fixture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

void check_i128_equal(i128 a, i128 b, const char *a_text, const char *b_text, const char *file,
                      int line)
{
    if (a == b)
        return;
    char as[AMOUNT_TEXT_MAX], bs[AMOUNT_TEXT_MAX];
    amount_format(a, as);
    amount_format(b, bs);
    print_error("%s (%s) != %s (%s)\n", a_text, as, b_text, bs);
    _fail(file, line);
}

int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->now_us = NOW_US;
    *state = f;
    return 0;
}

int fx_teardown(void **state)
{
    struct fx *f = *state;
    free(f->entries);
    free(f->undo);
    free(f);
    return 0;
}

int fx_account(struct fx *f, const char *currency, bool unbounded, i128 min_balance, i128 balance)
{
    assert_true(f->n_accounts < FX_ACCOUNTS);
    int slot = f->n_accounts++;
    struct core_account *a = &f->accounts[slot];
    memset(a, 0, sizeof *a);
    a->id = 100 + slot;
    snprintf(a->currency, sizeof a->currency, "%s", currency);
    a->min_unbounded = unbounded;
    a->min_balance = unbounded ? 0 : min_balance;
    a->balance = balance;
    a->seq = 0;
    a->last_effective_us = TIME_NONE;
    snprintf(f->names[slot], sizeof f->names[slot], "acc%d", slot);
    return slot;
}

static void use_transfer_slot(struct fx *f, int t)
{
    assert_true(t >= 0 && t < FX_TRANSFERS);
    if (t >= f->n_transfers)
        f->n_transfers = t + 1;
}

struct core_op *fx_op(struct fx *f, int t, int from, int to, i128 amount)
{
    assert_true(f->n_ops < FX_OPS);
    use_transfer_slot(f, t);
    struct core_op *op = &f->ops[f->n_ops++];
    memset(op, 0, sizeof *op);
    op->transfer = t;
    op->from = from;
    op->to = to;
    op->from_id = from >= 0 ? f->names[from] : "no-such-from";
    op->to_id = to >= 0 ? f->names[to] : "no-such-to";
    op->amount_parse = AMOUNT_PARSE_OK;
    op->amount = amount;
    op->result = &f->results[op - f->ops];
    /* Sentinels: core must overwrite all three on success. */
    op->status = STATUS_INTERNAL;
    op->replayed = true;
    memset(op->result, 0xa5, sizeof *op->result);
    return op;
}

void fx_unit_cost(struct fx *f, struct core_op *op, struct core_cost cost)
{
    struct core_cost *c = &f->unit_costs[op - f->ops];
    *c = cost;
    op->unit_cost = c;
}

struct core_transfer *fx_existing(struct fx *f, int t, int from, int to, i128 amount, bool pending)
{
    use_transfer_slot(f, t);
    struct core_transfer *tr = &f->transfers[t];
    memset(tr, 0, sizeof *tr);
    tr->exists = true;
    tr->created = false;
    tr->from_account = f->accounts[from].id;
    tr->to_account = f->accounts[to].id;
    tr->amount = amount;
    memcpy(tr->currency, f->accounts[from].currency, sizeof tr->currency);
    tr->pending = pending;
    tr->state = pending ? TRANSFER_PENDING : TRANSFER_POSTED;
    tr->from_seq = 7;
    tr->to_seq = 9;
    tr->from_balance = -1234;
    tr->to_balance = 1234;
    tr->created_us = NOW_US - 1000;
    tr->effective_us = NOW_US - 2000;
    tr->deadline_us = TIME_NONE; /* as the store loads a transfer without a timeout */
    return tr;
}

void fx_request(struct fx *f, int first, int n, bool atomic)
{
    assert_true(f->n_requests < FX_REQUESTS);
    f->requests[f->n_requests++] = (struct core_request){first, n, atomic};
}

void fx_run(struct fx *f)
{
    if (f->n_requests == 0)
        fx_request(f, 0, f->n_ops, false);
    free(f->entries);
    free(f->undo);
    /* Exactly the documented capacities (at least one byte for malloc). */
    f->entries = malloc(sizeof *f->entries * (size_t)(2 * f->n_ops) + 1);
    f->undo = malloc(sizeof *f->undo * (size_t)(3 * f->n_ops) + 1);
    assert_non_null(f->entries);
    assert_non_null(f->undo);
    /* The ops too, so that reading one past a request at the end of the
     * batch is an ASan report rather than a look at an unused fx slot; the
     * tests keep pointers into f->ops, so the outputs are copied back. */
    struct core_op *ops = malloc(sizeof *ops * (size_t)f->n_ops + 1);
    assert_non_null(ops);
    memcpy(ops, f->ops, sizeof *ops * (size_t)f->n_ops);
    f->b = (struct core_batch){
        .accounts = f->accounts,
        .n_accounts = f->n_accounts,
        .transfers = f->transfers,
        .n_transfers = f->n_transfers,
        .ops = ops,
        .n_ops = f->n_ops,
        .requests = f->requests,
        .n_requests = f->n_requests,
        .entries = f->entries,
        .n_entries = 0,
        .undo = f->undo,
        .now_us = f->now_us,
    };
    core_apply_batch(&f->b);
    memcpy(f->ops, ops, sizeof *ops * (size_t)f->n_ops);
    free(ops);
    f->b.ops = f->ops;
    assert_true(f->b.n_entries >= 0 && f->b.n_entries <= 2 * f->n_ops);
    assert_true(core_entries_balanced(&f->b));
}

void check_entry(const struct core_entry *got, const struct core_entry *want, const char *file,
                 int line)
{
    bool ok = true;
#define CHECK_INT(field)                                                                           \
    if (got->field != want->field) {                                                               \
        print_error("entry." #field ": got %lld, want %lld\n", (long long)got->field,              \
                    (long long)want->field);                                                       \
        ok = false;                                                                                \
    }
#define CHECK_I128(field)                                                                          \
    if (got->field != want->field) {                                                               \
        char g[AMOUNT_TEXT_MAX], w[AMOUNT_TEXT_MAX];                                               \
        amount_format(got->field, g);                                                              \
        amount_format(want->field, w);                                                             \
        print_error("entry." #field ": got %s, want %s\n", g, w);                                  \
        ok = false;                                                                                \
    }
    CHECK_INT(account)
    CHECK_INT(transfer)
    CHECK_INT(seq)
    if (got->kind != want->kind) {
        print_error("entry.kind: got %s, want %s\n", entry_kind_name(got->kind),
                    entry_kind_name(want->kind));
        ok = false;
    }
    CHECK_I128(amount)
    CHECK_I128(pending_change)
    CHECK_I128(balance)
    CHECK_I128(pending_out)
    CHECK_I128(pending_in)
    CHECK_INT(effective_us)
    CHECK_INT(created_us)
    CHECK_INT(avg_cost.n)
#undef CHECK_INT
#undef CHECK_I128
    if (!ok)
        _fail(file, line);
}

void take_snap(const struct fx *f, struct snap *s)
{
    memcpy(s->accounts, f->accounts, sizeof s->accounts);
    memcpy(s->transfers, f->transfers, sizeof s->transfers);
}

void assert_unchanged(const struct fx *f, const struct snap *s)
{
    assert_memory_equal(f->accounts, s->accounts, sizeof s->accounts);
    assert_memory_equal(f->transfers, s->transfers, sizeof s->transfers);
}

void next_run(struct fx *f)
{
    f->n_ops = 0;
    f->n_requests = 0;
}

void expect_statuses(const struct fx *f, const enum status *want, int n)
{
    assert_int_equal(f->n_ops, n);
    for (int i = 0; i < n; i++)
        if (f->ops[i].status != want[i])
            fail_msg("op %d: status %s, want %s", i, status_code(f->ops[i].status),
                     status_code(want[i]));
}
