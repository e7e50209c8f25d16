/*
 * test_model.c - seeded randomized test of core_apply_batch against a naive
 * reference model, plus the invariants of SPEC section 6.
 *
 * The seed comes from the LEDGER_SEED environment variable, else from the
 * clock; it is printed first ("seed=N") so that any failure can be replayed
 * with LEDGER_SEED=N.
 *
 * The model re-implements the transfer rules in the plainest way it can: a
 * full copy of its state before each atomic request instead of an undo log,
 * checked builtins instead of amount_add/amount_sub, account slots instead
 * of store ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests.h"

#define M_ACCOUNTS   20
#define M_SLOTS      8192
#define M_MAX_REQ    5
#define M_MAX_REQ_OP 8
#define M_MAX_OPS    (M_MAX_REQ * M_MAX_REQ_OP)
#define M_TARGET_OPS 4000

/* ---- deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
    return rnd() % n;
}

static bool chance(unsigned percent)
{
    return below(100) < percent;
}

/* ---- the accounts ---- */

struct m_def {
    const char *currency;
    bool unbounded;
    i128 min;
    i128 initial; /* balances at the start; they sum to 0 per currency */
};

static const struct m_def defs[M_ACCOUNTS] = {
    {"USD", true, 0, -1000},       /* 0: issuer */
    {"USD", true, 0, 0},           /* 1: world */
    {"EUR", true, 0, 0},           /* 2: EUR issuer */
    {"USD", false, -500, 0},       /* 3: overdraft */
    {"USD", false, -1000000, 0},   /* 4: large overdraft */
    {"USD", false, AMOUNT_MIN, 0}, /* 5: bounded at the bottom of the range */
    {"EUR", false, -300, 0},       /* 6 */
    {"USD", false, 0, 0},          /* 7..15 */
    {"USD", false, 0, 0},          {"USD", false, 0, 0},
    {"USD", false, 0, 0},          {"USD", false, 0, 0},
    {"USD", false, 0, 0},          {"USD", false, 0, 0},
    {"USD", false, 0, 0},          {"USD", false, 0, 0},
    {"EUR", false, 0, 0}, /* 16..18 */
    {"EUR", false, 0, 0},          {"EUR", false, 0, 0},
    {"USD", false, 25, 1000}, /* 19: positive min_balance */
};

static const char *const currencies[] = {"USD", "EUR"};

/* ---- the reference model ---- */

struct m_account {
    i128 balance, pending_out, pending_in;
    int64_t seq, last_eff;
};

struct m_transfer {
    bool exists;
    int from, to;
    i128 amount;
    bool pending;
};

struct m_state {
    struct m_account acc[M_ACCOUNTS];
    struct m_transfer tr[M_SLOTS];
};

/* ---- everything the test keeps between batches ---- */

struct mt {
    unsigned seed;
    int batch;
    int64_t now;
    /* core's side */
    struct core_account accounts[M_ACCOUNTS];
    char names[M_ACCOUNTS][16];
    struct core_transfer transfers[M_SLOTS];
    struct core_op ops[M_MAX_OPS];
    struct core_transfer results[M_MAX_OPS]; /* ops[i].result */
    struct core_request reqs[M_MAX_REQ];
    int n_ops, n_reqs;
    struct core_entry *entries;
    struct core_undo *undo;
    /* the model's side */
    struct m_state model, saved;
    struct core_entry want[2 * M_MAX_OPS];
    int n_want;
    enum status want_status[M_MAX_OPS];
    bool want_replayed[M_MAX_OPS];
    /* op generation */
    int n_slots;
    struct core_op last_op[M_SLOTS];
    bool has_last_op[M_SLOTS];
    bool pre_exists[M_SLOTS];
    /* the journal as read back from the entries of every batch */
    int64_t j_seq[M_ACCOUNTS];
    i128 j_balance[M_ACCOUNTS], j_pending_out[M_ACCOUNTS], j_pending_in[M_ACCOUNTS];
    /* coverage */
    int seen[64];
    int replays;
};

static void mt_init(struct mt *m, unsigned seed)
{
    memset(m, 0, sizeof *m);
    m->seed = seed;
    rng_state = seed;
    m->now = NOW_US;
    for (int a = 0; a < M_ACCOUNTS; a++) {
        struct core_account *c = &m->accounts[a];
        c->id = 1000 + a;
        snprintf(c->currency, sizeof c->currency, "%s", defs[a].currency);
        c->min_unbounded = defs[a].unbounded;
        c->min_balance = defs[a].unbounded ? 0 : defs[a].min;
        c->balance = defs[a].initial;
        c->last_effective_us = TIME_NONE;
        snprintf(m->names[a], sizeof m->names[a], "a%02d", a);
        m->model.acc[a] = (struct m_account){.balance = defs[a].initial, .last_eff = TIME_NONE};
        m->j_balance[a] = defs[a].initial;
    }
}

/* ---- generating ops ---- */

static i128 gen_amount(enum amount_parse_result *parse)
{
    *parse = AMOUNT_PARSE_OK;
    uint64_t r = below(1000);
    if (r < 600)
        return 1 + (i128)below(200);
    if (r < 780)
        return 1 + (i128)below(100000);
    if (r < 830) /* anywhere below 2^126 */
        return 1 + (i128)((((unsigned __int128)rnd() << 64) | rnd()) >> 2);
    if (r < 860)
        return AMOUNT_MAX - (i128)below(3);
    if (r < 880)
        return AMOUNT_MAX / 2 + (i128)below(3);
    if (r < 920)
        return -(i128)below(100); /* 0 or negative */
    if (r < 950) {
        *parse = chance(50) ? AMOUNT_PARSE_SYNTAX : AMOUNT_PARSE_RANGE;
        return (i128)below(100); /* garbage the core must not use */
    }
    return 1 + (i128)below(1000);
}

static void gen_op(struct mt *m, struct core_op *op, int batch_first_slot)
{
    int slot;
    uint64_t r = below(100);
    if (r < 12 && m->n_slots > batch_first_slot)
        slot = batch_first_slot + (int)below((uint64_t)(m->n_slots - batch_first_slot));
    else if (r < 25 && m->n_slots > 0)
        slot = (int)below((uint64_t)m->n_slots);
    else if (m->n_slots < M_SLOTS)
        slot = m->n_slots++;
    else
        slot = (int)below(M_SLOTS);

    if (m->has_last_op[slot] && chance(60)) {
        /* The same transfer again: a replay if it was stored. */
        *op = m->last_op[slot];
        if (chance(30)) { /* fields a replay does not compare */
            op->has_expect_from_seq = chance(50);
            op->expect_from_seq = (int64_t)below(5);
            op->has_effective = chance(50);
            op->effective_us = m->now + (int64_t)below(10) - 5;
        }
        op->status = STATUS_INTERNAL;
        op->replayed = true;
        return;
    }

    memset(op, 0, sizeof *op);
    op->transfer = slot;
    op->from = (int)below(M_ACCOUNTS);
    op->to = (int)below(M_ACCOUNTS);
    /* Mostly within one currency, or currency_mismatch would drown the
     * rest. */
    while (chance(85) && strcmp(defs[op->to].currency, defs[op->from].currency) != 0)
        op->to = (int)below(M_ACCOUNTS);
    r = below(100);
    if (r < 3)
        op->from = -1;
    else if (r < 6)
        op->to = -1;
    else if (r < 10)
        op->to = op->from;
    op->from_id = op->from >= 0 ? m->names[op->from] : "ghost-from";
    op->to_id = op->to >= 0 ? m->names[op->to] : "ghost-to";
    if (op->from < 0 && op->to < 0 && chance(50))
        op->from_id = op->to_id = "ghost";
    op->amount = gen_amount(&op->amount_parse);
    op->pending = chance(10);

    r = below(100);
    if (r < 8 && op->from >= 0) {
        op->has_currency = true;
        strcpy(op->currency, defs[op->from].currency);
    } else if (r < 12) {
        op->has_currency = true;
        strcpy(op->currency, currencies[below(2)]);
    } else if (r < 13) {
        op->has_currency = true;
        strcpy(op->currency, "GBP");
    }

    /* expect: the seq before the batch, or close to it */
    if (chance(6)) {
        op->has_expect_from_seq = true;
        op->expect_from_seq = (op->from >= 0 ? m->model.acc[op->from].seq : 0) + (int64_t)below(3);
    }
    if (chance(6)) {
        op->has_expect_to_seq = true;
        op->expect_to_seq = (op->to >= 0 ? m->model.acc[op->to].seq : 0) + (int64_t)below(3);
    }
    if (chance(6)) {
        op->has_effective = true;
        switch (below(4)) {
        case 0:
            op->effective_us = m->now - (int64_t)below(3000);
            break;
        case 1:
            op->effective_us = m->now + 1 + (int64_t)below(3);
            break;
        case 2:
            op->effective_us = m->now;
            break;
        default:
            op->effective_us = op->from >= 0 && m->model.acc[op->from].last_eff != TIME_NONE
                                   ? m->model.acc[op->from].last_eff
                                   : m->now - 1;
        }
    }
    op->status = STATUS_INTERNAL; /* sentinels */
    op->replayed = true;
    m->last_op[slot] = *op;
    m->has_last_op[slot] = true;
}

/* ---- the model's rules ---- */

static int64_t later(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static enum status model_transfer(struct mt *m, const struct core_op *op, bool *replayed)
{
    struct m_state *s = &m->model;
    *replayed = false;
    if (op->amount_parse != AMOUNT_PARSE_OK || op->amount < 1)
        return STATUS_INVALID_AMOUNT;
    struct m_transfer *t = &s->tr[op->transfer];
    if (t->exists) {
        bool same = t->from == op->from && t->to == op->to && t->amount == op->amount &&
                    t->pending == op->pending &&
                    (!op->has_currency || strcmp(op->currency, defs[t->from].currency) == 0);
        *replayed = same;
        return same ? STATUS_OK : STATUS_ID_CONFLICT;
    }
    if (strcmp(op->from_id, op->to_id) == 0)
        return STATUS_SAME_ACCOUNT;
    if (op->from < 0 || op->to < 0)
        return STATUS_ACCOUNT_NOT_FOUND;
    const char *currency = defs[op->from].currency;
    if (strcmp(currency, defs[op->to].currency) != 0 ||
        (op->has_currency && strcmp(op->currency, currency) != 0))
        return STATUS_CURRENCY_MISMATCH;
    struct m_account *from = &s->acc[op->from], *to = &s->acc[op->to];
    if ((op->has_expect_from_seq && op->expect_from_seq != from->seq) ||
        (op->has_expect_to_seq && op->expect_to_seq != to->seq))
        return STATUS_SEQ_MISMATCH;
    int64_t last = later(from->last_eff, to->last_eff);
    int64_t eff = later(m->now, last);
    if (op->has_effective) {
        if (op->effective_us < last || op->effective_us > m->now)
            return STATUS_BACKDATED;
        eff = op->effective_us;
    }
    i128 from_balance = from->balance, from_out = from->pending_out;
    i128 to_balance = to->balance, to_in = to->pending_in;
    bool overflow;
    if (op->pending)
        overflow = __builtin_add_overflow(from_out, op->amount, &from_out) ||
                   __builtin_add_overflow(to_in, op->amount, &to_in);
    else
        overflow = __builtin_sub_overflow(from_balance, op->amount, &from_balance) ||
                   __builtin_add_overflow(to_balance, op->amount, &to_balance);
    if (overflow)
        return STATUS_AMOUNT_OVERFLOW;
    i128 available, incoming;
    if (__builtin_sub_overflow(from_balance, from_out, &available) ||
        __builtin_add_overflow(to_balance, to_in, &incoming))
        return STATUS_AMOUNT_OVERFLOW;
    if (!defs[op->from].unbounded && available < defs[op->from].min)
        return STATUS_INSUFFICIENT_FUNDS;

    enum entry_kind kind = op->pending ? ENTRY_PENDING : ENTRY_POSTED;
    i128 moved = op->pending ? 0 : op->amount;
    i128 reserved = op->pending ? op->amount : 0;
    from->balance = from_balance;
    from->pending_out = from_out;
    from->seq++;
    from->last_eff = eff;
    to->balance = to_balance;
    to->pending_in = to_in;
    to->seq++;
    to->last_eff = eff;
    m->want[m->n_want++] = (struct core_entry){
        .account = op->from,
        .transfer = op->transfer,
        .seq = from->seq,
        .kind = kind,
        .amount = -moved,
        .pending_change = reserved,
        .balance = from->balance,
        .pending_out = from->pending_out,
        .pending_in = from->pending_in,
        .effective_us = eff,
        .created_us = m->now,
    };
    m->want[m->n_want++] = (struct core_entry){
        .account = op->to,
        .transfer = op->transfer,
        .seq = to->seq,
        .kind = kind,
        .amount = moved,
        .pending_change = reserved,
        .balance = to->balance,
        .pending_out = to->pending_out,
        .pending_in = to->pending_in,
        .effective_us = eff,
        .created_us = m->now,
    };
    *t = (struct m_transfer){true, op->from, op->to, op->amount, op->pending};
    return STATUS_OK;
}

static void model_batch(struct mt *m)
{
    m->n_want = 0;
    for (int r = 0; r < m->n_reqs; r++) {
        const struct core_request *req = &m->reqs[r];
        int first_want = m->n_want;
        if (req->atomic)
            m->saved = m->model;
        bool failed = false;
        for (int i = req->first_op; i < req->first_op + req->n_ops; i++) {
            m->want_status[i] = model_transfer(m, &m->ops[i], &m->want_replayed[i]);
            failed |= m->want_status[i] != STATUS_OK;
        }
        if (req->atomic && failed) {
            m->model = m->saved;
            m->n_want = first_want;
            for (int i = req->first_op; i < req->first_op + req->n_ops; i++)
                if (m->want_status[i] == STATUS_OK) {
                    m->want_status[i] = STATUS_BATCH_FAILED;
                    m->want_replayed[i] = false;
                }
        }
    }
}

/* ---- comparing ---- */

static void describe_op(const struct mt *m, int i)
{
    const struct core_op *op = &m->ops[i];
    char amount[AMOUNT_TEXT_MAX];
    amount_format(op->amount, amount);
    print_error("seed=%u batch %d op %d: slot %d %s(%d) -> %s(%d) amount %s parse %d pending %d "
                "currency %s expect %s%lld/%s%lld effective %s%lld now %lld\n",
                m->seed, m->batch, i, op->transfer, op->from_id, op->from, op->to_id, op->to,
                amount, (int)op->amount_parse, op->pending, op->has_currency ? op->currency : "-",
                op->has_expect_from_seq ? "" : "!", (long long)op->expect_from_seq,
                op->has_expect_to_seq ? "" : "!", (long long)op->expect_to_seq,
                op->has_effective ? "" : "!", (long long)op->effective_us, (long long)m->now);
}

static bool entry_equal(const struct core_entry *a, const struct core_entry *b)
{
    return a->account == b->account && a->transfer == b->transfer && a->seq == b->seq &&
           a->kind == b->kind && a->amount == b->amount && a->pending_change == b->pending_change &&
           a->balance == b->balance && a->pending_out == b->pending_out &&
           a->pending_in == b->pending_in && a->effective_us == b->effective_us &&
           a->created_us == b->created_us;
}

static void compare_with_model(const struct mt *m, int n_entries)
{
    for (int i = 0; i < m->n_ops; i++) {
        const struct core_op *op = &m->ops[i];
        if (op->status != m->want_status[i] || op->replayed != m->want_replayed[i]) {
            describe_op(m, i);
            fail_msg("status %s replayed %d, model says %s replayed %d", status_code(op->status),
                     op->replayed, status_code(m->want_status[i]), m->want_replayed[i]);
        }
    }
    if (n_entries != m->n_want)
        fail_msg("seed=%u batch %d: %d entries, model has %d", m->seed, m->batch, n_entries,
                 m->n_want);
    for (int i = 0; i < n_entries; i++)
        if (!entry_equal(&m->entries[i], &m->want[i])) {
            print_error("seed=%u batch %d entry %d differs from the model\n", m->seed, m->batch, i);
            check_entry(&m->entries[i], &m->want[i], __FILE__, __LINE__);
        }
    for (int a = 0; a < M_ACCOUNTS; a++) {
        const struct core_account *c = &m->accounts[a];
        const struct m_account *w = &m->model.acc[a];
        if (c->balance != w->balance || c->pending_out != w->pending_out ||
            c->pending_in != w->pending_in || c->seq != w->seq ||
            c->last_effective_us != w->last_eff)
            fail_msg("seed=%u batch %d: account %d differs from the model", m->seed, m->batch, a);
        /* Nothing else of the account may change. */
        assert_int_equal(c->id, 1000 + a);
        assert_string_equal(c->currency, defs[a].currency);
        assert_int_equal(c->min_unbounded, defs[a].unbounded);
    }
    for (int t = 0; t < m->n_slots; t++) {
        const struct core_transfer *c = &m->transfers[t];
        const struct m_transfer *w = &m->model.tr[t];
        if (c->exists != w->exists)
            fail_msg("seed=%u batch %d: transfer slot %d exists=%d, model %d", m->seed, m->batch, t,
                     c->exists, w->exists);
        if (!w->exists)
            continue;
        if (c->from_account != 1000 + w->from || c->to_account != 1000 + w->to ||
            c->amount != w->amount || c->pending != w->pending ||
            strcmp(c->currency, defs[w->from].currency) != 0 ||
            c->state != (w->pending ? TRANSFER_PENDING : TRANSFER_POSTED))
            fail_msg("seed=%u batch %d: transfer slot %d differs from the model", m->seed, m->batch,
                     t);
    }
}

/* SPEC section 6, read from core's output alone. */
static void check_invariants(struct mt *m, int n_entries)
{
    /* 1. Per currency, balances sum to 0 and pending_out to pending_in
     * (mod 2^128: a partial sum may leave the i128 range). */
    for (size_t k = 0; k < sizeof currencies / sizeof currencies[0]; k++) {
        unsigned __int128 balances = 0, outs = 0, ins = 0;
        for (int a = 0; a < M_ACCOUNTS; a++)
            if (strcmp(defs[a].currency, currencies[k]) == 0) {
                balances += (unsigned __int128)m->accounts[a].balance;
                outs += (unsigned __int128)m->accounts[a].pending_out;
                ins += (unsigned __int128)m->accounts[a].pending_in;
            }
        if (balances != 0 || outs != ins)
            fail_msg("seed=%u batch %d: %s does not sum to zero", m->seed, m->batch, currencies[k]);
    }

    int per_transfer[M_SLOTS] = {0};
    bool has_entries[M_ACCOUNTS] = {false};
    for (int i = 0; i < n_entries; i++) {
        const struct core_entry *e = &m->entries[i];
        int a = e->account;
        assert_true(a >= 0 && a < M_ACCOUNTS);
        assert_true(e->transfer >= 0 && e->transfer < M_SLOTS);
        per_transfer[e->transfer]++;
        has_entries[a] = true;
        /* 3. seq without gaps; balance = previous + amount; pending
         * figures = previous + pending_change on the entry's side. */
        if (e->seq != m->j_seq[a] + 1)
            fail_msg("seed=%u batch %d entry %d: seq %lld after %lld", m->seed, m->batch, i,
                     (long long)e->seq, (long long)m->j_seq[a]);
        i128 balance, out = m->j_pending_out[a], in = m->j_pending_in[a];
        assert_false(__builtin_add_overflow(m->j_balance[a], e->amount, &balance));
        if (i % 2 == 0)
            assert_false(__builtin_add_overflow(out, e->pending_change, &out));
        else
            assert_false(__builtin_add_overflow(in, e->pending_change, &in));
        assert_i128_equal(e->balance, balance);
        assert_i128_equal(e->pending_out, out);
        assert_i128_equal(e->pending_in, in);
        /* 2. available never below min_balance at any entry. */
        if (!defs[a].unbounded) {
            i128 available;
            if (__builtin_sub_overflow(e->balance, e->pending_out, &available) ||
                available < defs[a].min)
                fail_msg("seed=%u batch %d entry %d: account %d below its minimum", m->seed,
                         m->batch, i, a);
        }
        m->j_seq[a] = e->seq;
        m->j_balance[a] = e->balance;
        m->j_pending_out[a] = e->pending_out;
        m->j_pending_in[a] = e->pending_in;
    }
    /* 3. the account's state equals its last entry; 2. also now. */
    for (int a = 0; a < M_ACCOUNTS; a++) {
        const struct core_account *c = &m->accounts[a];
        assert_int_equal(c->seq, m->j_seq[a]);
        assert_i128_equal(c->balance, m->j_balance[a]);
        assert_i128_equal(c->pending_out, m->j_pending_out[a]);
        assert_i128_equal(c->pending_in, m->j_pending_in[a]);
        assert_int_equal(c->touched, has_entries[a]);
        if (!defs[a].unbounded && c->seq > 0) {
            i128 available;
            assert_false(__builtin_sub_overflow(c->balance, c->pending_out, &available));
            assert_true(available >= defs[a].min);
        }
    }
    /* 4. every transfer created by this batch has exactly its two entries,
     * and no entry lacks a transfer. */
    for (int i = 0; i < m->n_ops; i++) {
        int t = m->ops[i].transfer;
        const struct core_transfer *c = &m->transfers[t];
        bool created_now = c->exists && !m->pre_exists[t];
        assert_int_equal(c->created, created_now);
        assert_int_equal(per_transfer[t], created_now ? 2 : 0);
    }
    for (int t = 0; t < M_SLOTS; t++)
        if (per_transfer[t] != 0)
            assert_true(m->transfers[t].exists);
}

/* ---- one batch ---- */

static void run_batch(struct mt *m)
{
    /* The clock mostly moves on; sometimes this process's clock is behind
     * another one's. */
    m->now += (int64_t)below(5000);
    if (chance(5))
        m->now -= (int64_t)below(200);

    int first_slot = m->n_slots;
    m->n_ops = 0;
    m->n_reqs = (int)(1 + below(M_MAX_REQ));
    for (int r = 0; r < m->n_reqs; r++) {
        int n = (int)(1 + below(M_MAX_REQ_OP));
        m->reqs[r] = (struct core_request){m->n_ops, n, chance(25)};
        for (int i = 0; i < n; i++, m->n_ops++) {
            gen_op(m, &m->ops[m->n_ops], first_slot);
            m->ops[m->n_ops].result = &m->results[m->n_ops];
        }
    }

    /* What the engine would do on loading: clear the per-batch flags. */
    for (int a = 0; a < M_ACCOUNTS; a++)
        m->accounts[a].touched = false;
    for (int t = 0; t < m->n_slots; t++) {
        m->transfers[t].created = false;
        m->pre_exists[t] = m->transfers[t].exists;
    }

    free(m->entries);
    free(m->undo);
    m->entries = malloc(sizeof *m->entries * (size_t)(2 * m->n_ops));
    m->undo = malloc(sizeof *m->undo * (size_t)(3 * m->n_ops));
    assert_non_null(m->entries);
    assert_non_null(m->undo);
    struct core_batch b = {
        .accounts = m->accounts,
        .n_accounts = M_ACCOUNTS,
        .transfers = m->transfers,
        .n_transfers = M_SLOTS,
        .ops = m->ops,
        .n_ops = m->n_ops,
        .requests = m->reqs,
        .n_requests = m->n_reqs,
        .entries = m->entries,
        .n_entries = 0,
        .undo = m->undo,
        .now_us = m->now,
    };
    core_apply_batch(&b);
    assert_true(core_entries_balanced(&b));

    model_batch(m);
    compare_with_model(m, b.n_entries);
    check_invariants(m, b.n_entries);

    for (int i = 0; i < m->n_ops; i++) {
        m->seen[m->ops[i].status]++;
        m->replays += m->ops[i].replayed;
    }
}

static unsigned pick_seed(void)
{
    const char *env = getenv("LEDGER_SEED");
    if (env != NULL && *env != '\0')
        return (unsigned)strtoul(env, NULL, 10);
    return (unsigned)time(NULL);
}

static int model_setup(void **state)
{
    struct mt *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -1;
    *state = m;
    return 0;
}

static int model_teardown(void **state)
{
    struct mt *m = *state;
    free(m->entries);
    free(m->undo);
    free(m);
    return 0;
}

static void test_random_batches_match_model(void **state)
{
    struct mt *m = *state;
    unsigned seed = pick_seed();
    printf("seed=%u\n", seed);
    fflush(stdout);
    mt_init(m, seed);

    int total = 0;
    while (total < M_TARGET_OPS) {
        run_batch(m);
        total += m->n_ops;
        m->batch++;
    }

    /* The run must have reached every rule, or it proves little. */
    static const enum status must_see[] = {
        STATUS_OK,
        STATUS_INVALID_AMOUNT,
        STATUS_ID_CONFLICT,
        STATUS_SAME_ACCOUNT,
        STATUS_ACCOUNT_NOT_FOUND,
        STATUS_CURRENCY_MISMATCH,
        STATUS_SEQ_MISMATCH,
        STATUS_BACKDATED,
        STATUS_AMOUNT_OVERFLOW,
        STATUS_INSUFFICIENT_FUNDS,
        STATUS_BATCH_FAILED,
    };
    for (size_t i = 0; i < sizeof must_see / sizeof must_see[0]; i++)
        if (m->seen[must_see[i]] == 0)
            fail_msg("seed=%u: no op ended with %s", seed, status_code(must_see[i]));
    if (m->replays == 0)
        fail_msg("seed=%u: no replay", seed);
    print_message("model: %d ops in %d batches, %d replays\n", total, m->batch, m->replays);
    for (size_t i = 0; i < sizeof m->seen / sizeof m->seen[0]; i++)
        if (m->seen[i] != 0)
            print_message("model:   %-20s %d\n", status_code((enum status)i), m->seen[i]);
}

int run_model_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_batches_match_model, model_setup,
                                        model_teardown),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
