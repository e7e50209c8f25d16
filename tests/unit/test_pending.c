/*
 * test_pending.c - pending (two-phase) transfers and mean acquisition cost
 * in core_apply_batch (SPEC sections 3 and 5): reservations, post, void and
 * expire with their statuses and entries, unit_cost checks in the order of
 * checks, and avg_cost on accounts and entries.
 */
#include <string.h>

#include "tests.h"

#define E18 ((i128)1000000000000000000LL)
#define SEC INT64_C(1000000)

/* Runs the ops added since next_run in one non-atomic request and returns
 * the status of op; a failed op or a replay must change nothing. */
static enum status run_one(struct fx *f, const struct core_op *op)
{
    struct snap s;
    take_snap(f, &s);
    fx_run(f);
    if (op->status != STATUS_OK || op->replayed) {
        assert_int_equal(f->b.n_entries, 0);
        assert_unchanged(f, &s);
    }
    if (op->status != STATUS_OK)
        assert_false(op->replayed);
    /* The answer is the transfer as the op left it, except that a replayed
     * creation of a transfer settled since answers as the creation did
     * (test_replay_of_a_settled_creation). */
    bool as_created = op->kind == OP_TRANSFER && op->replayed && f->transfers[op->transfer].settled;
    if (op->status == STATUS_OK && !as_created)
        assert_memory_equal(op->result, &f->transfers[op->transfer], sizeof *op->result);
    return op->status;
}

/* A post (all of it), void or expire of transfer slot t, whose accounts the
 * engine resolved to slots from and to. */
static struct core_op *fx_settle(struct fx *f, enum op_kind kind, int t, int from, int to)
{
    struct core_op *op = fx_op(f, t, from, to, 0);
    op->kind = kind;
    return op;
}

/* A post of amount (has_amount) of transfer slot t. */
static struct core_op *fx_post(struct fx *f, int t, int from, int to, i128 amount)
{
    struct core_op *op = fx_settle(f, OP_POST, t, from, to);
    op->has_amount = true;
    op->amount = amount;
    return op;
}

/* A reservation op: a new pending transfer. */
static struct core_op *fx_reserve(struct fx *f, int t, int from, int to, i128 amount)
{
    struct core_op *op = fx_op(f, t, from, to, amount);
    op->pending = true;
    return op;
}

/* A pending transfer loaded from the journal, still pending, with its
 * reservation counted in both accounts. */
static struct core_transfer *fx_pending(struct fx *f, int t, int from, int to, i128 amount,
                                        int64_t deadline_us)
{
    struct core_transfer *tr = fx_existing(f, t, from, to, amount, true);
    tr->deadline_us = deadline_us;
    tr->timeout_s = deadline_us == TIME_NONE ? 0 : 60;
    f->accounts[from].pending_out += amount;
    f->accounts[to].pending_in += amount;
    return tr;
}

/* A pending transfer loaded from the journal, already posted (posted
 * units), voided or expired; its reservation is gone. */
static struct core_transfer *fx_settled(struct fx *f, int t, int from, int to, i128 amount,
                                        enum transfer_state state, i128 posted)
{
    struct core_transfer *tr = fx_existing(f, t, from, to, amount, true);
    tr->deadline_us = TIME_NONE;
    tr->state = state;
    tr->settled = true;
    tr->posted_amount = posted;
    tr->settle_from_seq = 8;
    tr->settle_to_seq = 10;
    tr->settled_us = NOW_US - 500;
    return tr;
}

static void check_cost(const struct core_cost *got, const struct core_cost *want, const char *file,
                       int line)
{
    bool ok = got->n == want->n;
    for (int i = 0; ok && i < want->n; i++)
        ok = strcmp(got->currency[i], want->currency[i]) == 0 && got->value[i] == want->value[i];
    if (ok)
        return;
    print_error("avg_cost: got n=%d, want n=%d\n", got->n, want->n);
    for (int i = 0; i < COST_CURRENCIES_MAX && (i < got->n || i < want->n); i++) {
        char g[AMOUNT_TEXT_MAX], w[AMOUNT_TEXT_MAX];
        amount_format(got->value[i], g);
        amount_format(want->value[i], w);
        print_error("  [%d] got %s %s, want %s %s\n", i, got->currency[i], g, want->currency[i], w);
    }
    _fail(file, line);
}
#define assert_cost(got, ...)                                                                      \
    check_cost((got), &(const struct core_cost){__VA_ARGS__}, __FILE__, __LINE__)

/* Makes account slot a track the given sorted cost currencies. */
static void track(struct fx *f, int a, const char *c1, const char *c2)
{
    struct core_cost *c = &f->accounts[a].avg_cost;
    memset(c, 0, sizeof *c);
    strcpy(c->currency[c->n++], c1);
    if (c2 != NULL)
        strcpy(c->currency[c->n++], c2);
}

static const char *kind_name(enum op_kind k)
{
    return k == OP_POST ? "post" : k == OP_VOID ? "void" : k == OP_EXPIRE ? "expire" : "transfer";
}

/* ---- one test per status of post, void and expire ---- */

static void test_pending_not_found(void **state)
{
    enum { A, B, C, E };
    static const struct {
        const char *what;
        int transfer;
        int from, to;
        bool has_amount;
        i128 amount;
    } rows[] = {
        {"no such transfer", 2, A, B, false, 0},
        {"no such transfer, amount above anything", 2, A, B, true, 5000},
        {"a posted transfer that was never pending", 1, A, B, false, 0},
        {"never pending, amount within it", 1, A, B, true, 10},
        {"from unknown", 0, -1, B, false, 0},
        {"to unknown", 0, A, -1, false, 0},
        {"both unknown", 0, -1, -1, false, 0},
        {"another from", 0, C, B, false, 0},
        {"another to", 0, A, C, false, 0},
        {"from and to swapped", 0, B, A, false, 0},
        {"an account of another currency", 0, A, E, false, 0},
        {"another to, amount above the reservation", 0, A, C, true, 101},
        {"past its deadline, another from", 3, C, B, false, 0},
        {"already voided, another to", 4, A, C, false, 0},
    };
    static const enum op_kind kinds[] = {OP_POST, OP_VOID, OP_EXPIRE};
    struct fx *f = *state;
    fx_account(f, "USD", false, 0, 1000); /* A */
    fx_account(f, "USD", false, 0, 0);    /* B */
    fx_account(f, "USD", false, 0, 0);    /* C */
    fx_account(f, "EUR", false, 0, 0);    /* E */
    fx_pending(f, 0, A, B, 100, TIME_NONE);
    fx_existing(f, 1, A, B, 100, false);
    fx_pending(f, 3, A, B, 100, NOW_US - 1);
    fx_settled(f, 4, A, B, 100, TRANSFER_VOIDED, 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            next_run(f);
            struct core_op *op = fx_settle(f, kinds[k], rows[i].transfer, rows[i].from, rows[i].to);
            op->has_amount = kinds[k] == OP_POST && rows[i].has_amount;
            op->amount = rows[i].amount;
            if (run_one(f, op) != STATUS_PENDING_NOT_FOUND)
                fail_msg("%s (%s): %s", rows[i].what, kind_name(kinds[k]), status_code(op->status));
        }
    }
    assert_false(f->transfers[2].exists);
    assert_int_equal(f->transfers[0].state, TRANSFER_PENDING);
    assert_i128_equal(f->accounts[A].pending_out, 200);
}

static void test_pending_expired(void **state)
{
    static const struct {
        const char *what;
        enum op_kind kind;
        bool has_amount;
        i128 amount;
        int64_t deadline; /* TIME_NONE: none */
        enum transfer_state state;
        enum status want;
    } rows[] = {
        {"post all at the deadline", OP_POST, false, 0, NOW_US, TRANSFER_PENDING,
         STATUS_PENDING_EXPIRED},
        {"post all after it", OP_POST, false, 0, NOW_US - 1, TRANSFER_PENDING,
         STATUS_PENDING_EXPIRED},
        {"post part at the deadline", OP_POST, true, 10, NOW_US, TRANSFER_PENDING,
         STATUS_PENDING_EXPIRED},
        {"post too much after it (expired first)", OP_POST, true, 101, NOW_US - 1, TRANSFER_PENDING,
         STATUS_PENDING_EXPIRED},
        {"void at the deadline", OP_VOID, false, 0, NOW_US, TRANSFER_PENDING,
         STATUS_PENDING_EXPIRED},
        {"void an hour after it", OP_VOID, false, 0, NOW_US - 3600 * SEC, TRANSFER_PENDING,
         STATUS_PENDING_EXPIRED},
        {"post an expired one", OP_POST, false, 0, TIME_NONE, TRANSFER_EXPIRED,
         STATUS_PENDING_EXPIRED},
        {"post part of an expired one", OP_POST, true, 5, TIME_NONE, TRANSFER_EXPIRED,
         STATUS_PENDING_EXPIRED},
        {"void an expired one", OP_VOID, false, 0, TIME_NONE, TRANSFER_EXPIRED,
         STATUS_PENDING_EXPIRED},
        {"expire an expired one", OP_EXPIRE, false, 0, TIME_NONE, TRANSFER_EXPIRED,
         STATUS_PENDING_EXPIRED},
        /* Just in time. */
        {"post all 1 us before the deadline", OP_POST, false, 0, NOW_US + 1, TRANSFER_PENDING,
         STATUS_OK},
        {"post part 1 us before the deadline", OP_POST, true, 100, NOW_US + 1, TRANSFER_PENDING,
         STATUS_OK},
        {"void 1 us before the deadline", OP_VOID, false, 0, NOW_US + 1, TRANSFER_PENDING,
         STATUS_OK},
        {"post without a deadline", OP_POST, false, 0, TIME_NONE, TRANSFER_PENDING, STATUS_OK},
    };
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 10000);
    int b = fx_account(f, "USD", false, 0, 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int t = (int)i;
        if (rows[i].state == TRANSFER_PENDING)
            fx_pending(f, t, a, b, 100, rows[i].deadline);
        else
            fx_settled(f, t, a, b, 100, rows[i].state, 0);
        next_run(f);
        struct core_op *op = fx_settle(f, rows[i].kind, t, a, b);
        op->has_amount = rows[i].has_amount;
        op->amount = rows[i].amount;
        if (run_one(f, op) != rows[i].want)
            fail_msg("%s: %s, want %s", rows[i].what, status_code(op->status),
                     status_code(rows[i].want));
        if (rows[i].want == STATUS_OK) {
            assert_false(op->replayed);
            assert_int_equal(f->b.n_entries, 2);
            assert_int_equal(f->transfers[t].state,
                             rows[i].kind == OP_POST ? TRANSFER_POSTED : TRANSFER_VOIDED);
        } else if (rows[i].state == TRANSFER_PENDING) {
            /* Refusing a late post or void does not expire it: the sweeper does. */
            assert_int_equal(f->transfers[t].state, TRANSFER_PENDING);
        }
    }
    /* Three posts of 100 and a void moved 300; the six refused pending ones
     * still hold their reservations. */
    assert_i128_equal(f->accounts[a].balance, 10000 - 300);
    assert_i128_equal(f->accounts[b].balance, 300);
    assert_i128_equal(f->accounts[a].pending_out, 600);
    assert_i128_equal(f->accounts[b].pending_in, 600);
}

static void test_exceeds_pending(void **state)
{
    static const struct {
        i128 amount;
        enum status want;
    } rows[] = {
        {101, STATUS_EXCEEDS_PENDING},     {150, STATUS_EXCEEDS_PENDING}, /* within the account's
                                                                             total reservations */
        {1000000, STATUS_EXCEEDS_PENDING}, {AMOUNT_MAX, STATUS_EXCEEDS_PENDING}, {100, STATUS_OK},
    };
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 10000);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_pending(f, 20, a, b, 100, TIME_NONE); /* another reservation of the same accounts */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int t = (int)i;
        fx_pending(f, t, a, b, 100, TIME_NONE);
        next_run(f);
        struct core_op *op = fx_post(f, t, a, b, rows[i].amount);
        if (run_one(f, op) != rows[i].want)
            fail_msg("post %d of 100: %s", (int)rows[i].amount, status_code(op->status));
    }
    /* Once posted, a transfer answers already_posted before exceeds_pending. */
    next_run(f);
    struct core_op *op = fx_post(f, 4, a, b, 101);
    assert_int_equal(run_one(f, op), STATUS_ALREADY_POSTED);
    assert_i128_equal(f->accounts[a].balance, 9900);
    assert_i128_equal(f->accounts[a].pending_out, 500);
    assert_i128_equal(f->accounts[b].pending_in, 500);
}

/* Post, void and expire of transfers already posted or voided: one row per
 * case, including the replays (SPEC: "Posting or voiding twice the same
 * way is a replay too"). */
static void test_settled_again(void **state)
{
    enum { FULL = 0, PART = 1, VOIDED = 2, FULL_LATE = 3, VOIDED_LATE = 4 };
    static const struct {
        const char *what;
        int transfer;
        enum op_kind kind;
        bool has_amount;
        i128 amount;
        enum status want; /* STATUS_OK: a replay */
    } rows[] = {
        {"posted all: post all again", FULL, OP_POST, false, 0, STATUS_OK},
        {"posted all: post 100 again", FULL, OP_POST, true, 100, STATUS_OK},
        {"posted all: post 60", FULL, OP_POST, true, 60, STATUS_ALREADY_POSTED},
        {"posted all: post 101 (posted first)", FULL, OP_POST, true, 101, STATUS_ALREADY_POSTED},
        {"posted all: void", FULL, OP_VOID, false, 0, STATUS_ALREADY_POSTED},
        {"posted all: expire", FULL, OP_EXPIRE, false, 0, STATUS_ALREADY_POSTED},
        {"posted 60: post 60 again", PART, OP_POST, true, 60, STATUS_OK},
        {"posted 60: post all", PART, OP_POST, false, 0, STATUS_ALREADY_POSTED},
        {"posted 60: post 100", PART, OP_POST, true, 100, STATUS_ALREADY_POSTED},
        {"posted 60: post 59", PART, OP_POST, true, 59, STATUS_ALREADY_POSTED},
        {"posted 60: post 61", PART, OP_POST, true, 61, STATUS_ALREADY_POSTED},
        {"posted 60: void", PART, OP_VOID, false, 0, STATUS_ALREADY_POSTED},
        {"posted 60: expire", PART, OP_EXPIRE, false, 0, STATUS_ALREADY_POSTED},
        {"voided: void again", VOIDED, OP_VOID, false, 0, STATUS_OK},
        {"voided: post all", VOIDED, OP_POST, false, 0, STATUS_ALREADY_VOIDED},
        {"voided: post 50", VOIDED, OP_POST, true, 50, STATUS_ALREADY_VOIDED},
        {"voided: post 101", VOIDED, OP_POST, true, 101, STATUS_ALREADY_VOIDED},
        {"voided: expire", VOIDED, OP_EXPIRE, false, 0, STATUS_ALREADY_VOIDED},
        /* Settled before a deadline that has passed since: still a replay. */
        {"posted, deadline passed: post again", FULL_LATE, OP_POST, false, 0, STATUS_OK},
        {"posted, deadline passed: void", FULL_LATE, OP_VOID, false, 0, STATUS_ALREADY_POSTED},
        {"voided, deadline passed: void again", VOIDED_LATE, OP_VOID, false, 0, STATUS_OK},
        {"voided, deadline passed: post", VOIDED_LATE, OP_POST, false, 0, STATUS_ALREADY_VOIDED},
    };
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_settled(f, FULL, a, b, 100, TRANSFER_POSTED, 100);
    fx_settled(f, PART, a, b, 100, TRANSFER_POSTED, 60);
    fx_settled(f, VOIDED, a, b, 100, TRANSFER_VOIDED, 0);
    fx_settled(f, FULL_LATE, a, b, 100, TRANSFER_POSTED, 100)->deadline_us = NOW_US - SEC;
    fx_settled(f, VOIDED_LATE, a, b, 100, TRANSFER_VOIDED, 0)->deadline_us = NOW_US - SEC;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op = fx_settle(f, rows[i].kind, rows[i].transfer, a, b);
        op->has_amount = rows[i].has_amount;
        op->amount = rows[i].amount;
        struct snap s;
        take_snap(f, &s);
        if (run_one(f, op) != rows[i].want)
            fail_msg("%s: %s, want %s", rows[i].what, status_code(op->status),
                     status_code(rows[i].want));
        /* A replay answers with the settled transfer and changes nothing. */
        assert_int_equal(op->replayed, rows[i].want == STATUS_OK);
        assert_int_equal(f->b.n_entries, 0);
        assert_unchanged(f, &s);
        if (rows[i].want == STATUS_OK)
            assert_memory_equal(op->result, &s.transfers[rows[i].transfer], sizeof *op->result);
    }
}

static void test_post_invalid_amount(void **state)
{
    static const struct {
        const char *what;
        int transfer;
        enum amount_parse_result parse;
        i128 amount;
    } rows[] = {
        {"0", 0, AMOUNT_PARSE_OK, 0},
        {"-1", 0, AMOUNT_PARSE_OK, -1},
        {"-100", 0, AMOUNT_PARSE_OK, -100},
        {"AMOUNT_MIN", 0, AMOUNT_PARSE_OK, AMOUNT_MIN},
        {"syntax", 0, AMOUNT_PARSE_SYNTAX, 5},
        {"range", 0, AMOUNT_PARSE_RANGE, 5},
        /* Before every other check of a post. */
        {"0, no such transfer", 5, AMOUNT_PARSE_OK, 0},
        {"0, voided", 1, AMOUNT_PARSE_OK, 0},
        {"0, posted", 2, AMOUNT_PARSE_OK, 0},
        {"0, past its deadline", 3, AMOUNT_PARSE_OK, 0},
        {"-1, expired", 4, AMOUNT_PARSE_OK, -1},
    };
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_pending(f, 0, a, b, 100, TIME_NONE);
    fx_settled(f, 1, a, b, 100, TRANSFER_VOIDED, 0);
    fx_settled(f, 2, a, b, 100, TRANSFER_POSTED, 100);
    fx_pending(f, 3, a, b, 100, NOW_US);
    fx_settled(f, 4, a, b, 100, TRANSFER_EXPIRED, 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op = fx_post(f, rows[i].transfer, a, b, rows[i].amount);
        op->amount_parse = rows[i].parse;
        if (run_one(f, op) != STATUS_INVALID_AMOUNT)
            fail_msg("post %s: %s", rows[i].what, status_code(op->status));
    }
    /* Without has_amount the amount field is not looked at: all of it. */
    next_run(f);
    struct core_op *op = fx_settle(f, OP_POST, 0, a, b);
    op->amount = 0;
    op->amount_parse = AMOUNT_PARSE_SYNTAX;
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->transfers[0].posted_amount, 100);
    assert_i128_equal(f->accounts[b].balance, 100);
}

/* Replays of post and void inside one batch, and against the journal. */
static void test_replay_post_and_void(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_pending(f, 0, a, b, 100, TIME_NONE);
    fx_pending(f, 1, a, b, 50, TIME_NONE);
    fx_post(f, 0, a, b, 70);
    fx_post(f, 0, a, b, 70);
    fx_settle(f, OP_VOID, 1, a, b);
    fx_settle(f, OP_VOID, 1, a, b);
    fx_post(f, 0, a, b, 71);
    fx_settle(f, OP_POST, 1, a, b);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_ALREADY_POSTED,
                    STATUS_ALREADY_VOIDED);
    const bool replayed[] = {false, true, false, true, false, false};
    for (int i = 0; i < 6; i++)
        assert_int_equal(f->ops[i].replayed, replayed[i]);
    /* Only the first post and the first void wrote entries. */
    assert_int_equal(f->b.n_entries, 4);
    assert_int_equal(f->entries[0].transfer, 0);
    assert_int_equal(f->entries[0].kind, ENTRY_POST_PENDING);
    assert_int_equal(f->entries[2].transfer, 1);
    assert_int_equal(f->entries[2].kind, ENTRY_VOID_PENDING);
    assert_memory_equal(f->ops[1].result, f->ops[0].result, sizeof *f->ops[0].result);
    assert_memory_equal(f->ops[3].result, f->ops[2].result, sizeof *f->ops[2].result);
    assert_i128_equal(f->accounts[a].balance, 930);
    assert_i128_equal(f->accounts[a].pending_out, 0);
    assert_i128_equal(f->accounts[b].balance, 70);
    assert_i128_equal(f->accounts[b].pending_in, 0);

    /* The next batch replays against the settled state. */
    next_run(f);
    struct core_op *op = fx_post(f, 0, a, b, 70);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
    next_run(f);
    op = fx_settle(f, OP_VOID, 1, a, b);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
    assert_int_equal(op->result->state, TRANSFER_VOIDED);
}

/* A replayed creation answers what the creation answered, even after a
 * post (SPEC: "the original result"), in a later batch or the same one. */
static void test_replay_of_a_settled_creation(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    struct core_op *op = fx_reserve(f, 0, a, b, 100);
    assert_int_equal(run_one(f, op), STATUS_OK);
    const struct core_transfer created = *op->result;
    next_run(f);
    op = fx_post(f, 0, a, b, 60);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(op->result->state, TRANSFER_POSTED);

    next_run(f);
    op = fx_reserve(f, 0, a, b, 100);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
    const struct core_transfer *r = op->result;
    assert_int_equal(r->state, TRANSFER_PENDING);
    assert_false(r->settled);
    assert_int_equal(r->from_seq, created.from_seq);
    assert_int_equal(r->to_seq, created.to_seq);
    assert_i128_equal(r->from_balance, created.from_balance);
    assert_i128_equal(r->to_balance, created.to_balance);
    assert_i128_equal(r->posted_amount, 0);
    /* Nothing of the settlement leaks into the creation's answer. */
    assert_int_equal(r->settle_from_seq, 0);
    assert_int_equal(r->settle_to_seq, 0);
    assert_i128_equal(r->settle_from_balance, 0);
    assert_i128_equal(r->settle_to_balance, 0);
    assert_int_equal(r->settled_us, 0);
    /* The journal's transfer itself stays posted. */
    assert_int_equal(f->transfers[0].state, TRANSFER_POSTED);

    /* Created, voided and replayed in one batch. */
    next_run(f);
    fx_reserve(f, 1, a, b, 10);
    fx_settle(f, OP_VOID, 1, a, b);
    fx_reserve(f, 1, a, b, 10);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_OK);
    assert_int_equal(f->ops[1].result->state, TRANSFER_VOIDED);
    assert_true(f->ops[2].replayed);
    assert_int_equal(f->ops[2].result->state, TRANSFER_PENDING);
    assert_int_equal(f->ops[2].result->from_seq, f->ops[0].result->from_seq);
}

/* ---- reservations ---- */

static void test_reservation_counts_against_available(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int sink = fx_account(f, "USD", false, 0, 0);
    int od = fx_account(f, "USD", false, -100, 0);    /* overdraft */
    int incoming = fx_account(f, "USD", false, 0, 0); /* pending_in is not available */
    int issuer = fx_account(f, "USD", true, 0, 0);    /* no limit at all */

    struct core_op *op = fx_reserve(f, 0, a, sink, 60);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[a].balance, 100);
    assert_i128_equal(f->accounts[a].pending_out, 60);
    assert_i128_equal(f->accounts[sink].balance, 0);
    assert_i128_equal(f->accounts[sink].pending_in, 60);

    static const struct {
        i128 amount;
        bool pending;
        enum status want;
    } rows[] = {
        {41, false, STATUS_INSUFFICIENT_FUNDS},  {41, true, STATUS_INSUFFICIENT_FUNDS},
        {100, false, STATUS_INSUFFICIENT_FUNDS}, {40, false, STATUS_OK},
        {1, false, STATUS_INSUFFICIENT_FUNDS},   {1, true, STATUS_INSUFFICIENT_FUNDS},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        op = fx_op(f, 1 + (int)i, a, sink, rows[i].amount);
        op->pending = rows[i].pending;
        if (run_one(f, op) != rows[i].want)
            fail_msg("row %zu: %s", i, status_code(op->status));
    }
    assert_i128_equal(f->accounts[a].balance, 60);
    assert_i128_equal(f->accounts[a].pending_out, 60);

    /* Voiding gives the reservation back to available. */
    next_run(f);
    op = fx_settle(f, OP_VOID, 0, a, sink);
    assert_int_equal(run_one(f, op), STATUS_OK);
    next_run(f);
    op = fx_op(f, 10, a, sink, 61);
    assert_int_equal(run_one(f, op), STATUS_INSUFFICIENT_FUNDS);
    next_run(f);
    op = fx_op(f, 10, a, sink, 60);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[a].balance, 0);
    assert_i128_equal(f->accounts[a].pending_out, 0);

    /* An overdraft reserves down to its min_balance. */
    next_run(f);
    op = fx_reserve(f, 11, od, sink, 100);
    assert_int_equal(run_one(f, op), STATUS_OK);
    next_run(f);
    op = fx_reserve(f, 12, od, sink, 1);
    assert_int_equal(run_one(f, op), STATUS_INSUFFICIENT_FUNDS);
    next_run(f);
    op = fx_op(f, 12, od, sink, 1);
    assert_int_equal(run_one(f, op), STATUS_INSUFFICIENT_FUNDS);

    /* Money on its way in cannot be spent. */
    next_run(f);
    op = fx_reserve(f, 13, issuer, incoming, 500);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[incoming].pending_in, 500);
    next_run(f);
    op = fx_op(f, 14, incoming, sink, 1);
    assert_int_equal(run_one(f, op), STATUS_INSUFFICIENT_FUNDS);
    next_run(f);
    op = fx_reserve(f, 14, incoming, sink, 1);
    assert_int_equal(run_one(f, op), STATUS_INSUFFICIENT_FUNDS);
    /* ... until it is posted. */
    next_run(f);
    op = fx_post(f, 13, issuer, incoming, 30);
    assert_int_equal(run_one(f, op), STATUS_OK);
    next_run(f);
    op = fx_op(f, 14, incoming, sink, 30);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[incoming].balance, 0);
    assert_i128_equal(f->accounts[incoming].pending_in, 0);
    /* The unbounded issuer reserved freely and posted 30 of 500. */
    assert_i128_equal(f->accounts[issuer].balance, -30);
    assert_i128_equal(f->accounts[issuer].pending_out, 0);
}

/* Many clients reserving from one wallet, batched together: requests apply
 * in order, each sees the reservations before it, until the wallet is
 * exhausted. */
static void test_reservations_until_exhausted(void **state)
{
    struct fx *f = *state;
    int w = fx_account(f, "USD", false, 0, 100);
    int m1 = fx_account(f, "USD", false, 0, 0);
    int m2 = fx_account(f, "USD", false, 0, 0);
    static const struct {
        i128 amount;
        bool pending;
        bool atomic;
        enum status want;
    } rows[] = {
        {30, true, false, STATUS_OK},
        {30, true, true, STATUS_OK},
        {30, true, false, STATUS_OK},
        {30, true, true, STATUS_INSUFFICIENT_FUNDS}, /* 10 left */
        {11, false, false, STATUS_INSUFFICIENT_FUNDS},
        {10, true, false, STATUS_OK},
        {1, true, true, STATUS_INSUFFICIENT_FUNDS},
        {1, false, false, STATUS_INSUFFICIENT_FUNDS},
    };
    const int n = (int)(sizeof rows / sizeof rows[0]);
    for (int i = 0; i < n; i++) {
        struct core_op *op = fx_op(f, i, w, i % 2 ? m2 : m1, rows[i].amount);
        op->pending = rows[i].pending;
        fx_request(f, i, 1, rows[i].atomic);
    }
    /* A void frees 30 for the last client. */
    fx_settle(f, OP_VOID, 1, w, m2);
    fx_request(f, n, 1, false);
    fx_reserve(f, n + 1, w, m1, 30);
    fx_request(f, n + 1, 1, true);
    fx_reserve(f, n + 2, w, m1, 1);
    fx_request(f, n + 2, 1, false);
    fx_run(f);
    for (int i = 0; i < n; i++)
        if (f->ops[i].status != rows[i].want)
            fail_msg("client %d: %s", i, status_code(f->ops[i].status));
    assert_int_equal(f->ops[n].status, STATUS_OK);
    assert_int_equal(f->ops[n + 1].status, STATUS_OK);
    assert_int_equal(f->ops[n + 2].status, STATUS_INSUFFICIENT_FUNDS);

    assert_i128_equal(f->accounts[w].balance, 100);
    assert_i128_equal(f->accounts[w].pending_out, 100);
    assert_i128_equal(f->accounts[m1].pending_in, 90);
    assert_i128_equal(f->accounts[m2].pending_in, 10);
    /* The wallet's entries: four reservations, the void, one more. */
    const i128 pending_out[] = {30, 60, 90, 100, 70, 100};
    int k = 0;
    for (int i = 0; i < f->b.n_entries; i++) {
        const struct core_entry *e = &f->entries[i];
        if (e->account != w)
            continue;
        assert_true(k < 6);
        assert_int_equal(e->seq, k + 1);
        assert_i128_equal(e->balance, 100);
        assert_i128_equal(e->pending_out, pending_out[k]);
        assert_int_equal(e->kind, k == 4 ? ENTRY_VOID_PENDING : ENTRY_PENDING);
        k++;
    }
    assert_int_equal(k, 6);
    assert_int_equal(f->b.n_entries, 12);
}

/* A pending credit counts against balance + pending_in, what the credited
 * account holds once its reservations are posted, and so does a posted
 * credit: whatever is reserved can then always be posted in full. */
static void test_credit_reservations_near_the_top_of_the_range(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int high = fx_account(f, "USD", false, 0, AMOUNT_MAX - 10);
    static const struct {
        i128 amount;
        bool pending;
        enum status want;
    } rows[] = {
        {11, true, STATUS_AMOUNT_OVERFLOW}, {6, true, STATUS_OK},
        {5, true, STATUS_AMOUNT_OVERFLOW}, /* 4 left */
        {5, false, STATUS_AMOUNT_OVERFLOW}, {4, true, STATUS_OK},
        {1, false, STATUS_AMOUNT_OVERFLOW},
    };
    const int n = (int)(sizeof rows / sizeof rows[0]);
    for (int i = 0; i < n; i++) {
        struct core_op *op = fx_op(f, i, issuer, high, rows[i].amount);
        op->pending = rows[i].pending;
        fx_request(f, i, 1, false);
    }
    fx_run(f);
    for (int i = 0; i < n; i++)
        if (f->ops[i].status != rows[i].want)
            fail_msg("credit %d: %s", i, status_code(f->ops[i].status));
    assert_i128_equal(f->accounts[high].balance, AMOUNT_MAX - 10);
    assert_i128_equal(f->accounts[high].pending_in, 10);

    next_run(f);
    struct core_op *op = fx_settle(f, OP_POST, 1, issuer, high);
    assert_int_equal(run_one(f, op), STATUS_OK);
    next_run(f);
    op = fx_settle(f, OP_POST, 4, issuer, high);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[high].balance, AMOUNT_MAX);
    assert_i128_equal(f->accounts[high].pending_in, 0);
}

/* Slot 0 is a valid account slot on either side of a settlement; only a
 * negative slot means the engine found no account. */
static void test_settle_with_credited_account_in_slot_0(void **state)
{
    struct fx *f = *state;
    int to = fx_account(f, "USD", false, 0, 0);
    int from = fx_account(f, "USD", false, 0, 100);
    assert_int_equal(to, 0);
    struct core_op *op = fx_reserve(f, 0, from, to, 10);
    assert_int_equal(run_one(f, op), STATUS_OK);
    next_run(f);
    op = fx_reserve(f, 1, from, to, 20);
    assert_int_equal(run_one(f, op), STATUS_OK);

    next_run(f);
    op = fx_settle(f, OP_POST, 0, from, to);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->transfers[0].state, TRANSFER_POSTED);
    assert_i128_equal(f->accounts[to].balance, 10);
    next_run(f);
    op = fx_settle(f, OP_VOID, 1, from, to);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->transfers[1].state, TRANSFER_VOIDED);
    assert_i128_equal(f->accounts[from].balance, 90);
    assert_i128_equal(f->accounts[from].pending_out, 0);
    assert_i128_equal(f->accounts[to].pending_in, 0);
}

/* ---- settlement entries ---- */

static void test_post_partial_entries(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 5);
    int c = fx_account(f, "USD", false, 0, 0);
    f->accounts[a].seq = 3;
    f->accounts[a].last_effective_us = NOW_US - 10;
    fx_pending(f, 9, a, c, 50, TIME_NONE); /* another reservation of a */

    struct core_op *op = fx_reserve(f, 0, a, b, 300);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_entry(&f->entries[0], .account = a, .transfer = 0, .seq = 4, .kind = ENTRY_PENDING,
                 .amount = 0, .pending_change = 300, .balance = 1000, .pending_out = 350,
                 .pending_in = 0, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[1], .account = b, .transfer = 0, .seq = 1, .kind = ENTRY_PENDING,
                 .amount = 0, .pending_change = 300, .balance = 5, .pending_out = 0,
                 .pending_in = 300, .effective_us = NOW_US, .created_us = NOW_US);
    struct core_transfer reserved = f->transfers[0];
    /* The committer writes pending states only for dirty slots: without
     * the flag a new reservation would never reach the pending table. */
    assert_true(reserved.pending_dirty);

    /* As the store would load it in a later batch. */
    f->transfers[0].created = false;
    f->transfers[0].pending_dirty = false;
    f->accounts[a].touched = f->accounts[b].touched = false;
    f->now_us = NOW_US + 1000;
    next_run(f);
    op = fx_post(f, 0, a, b, 120);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_false(op->replayed);
    assert_int_equal(f->b.n_entries, 2);
    assert_entry(&f->entries[0], .account = a, .transfer = 0, .seq = 5, .kind = ENTRY_POST_PENDING,
                 .amount = -120, .pending_change = -300, .balance = 880, .pending_out = 50,
                 .pending_in = 0, .effective_us = NOW_US + 1000, .created_us = NOW_US + 1000);
    assert_entry(&f->entries[1], .account = b, .transfer = 0, .seq = 2, .kind = ENTRY_POST_PENDING,
                 .amount = 120, .pending_change = -300, .balance = 125, .pending_out = 0,
                 .pending_in = 0, .effective_us = NOW_US + 1000, .created_us = NOW_US + 1000);
    assert_true(f->accounts[a].touched && f->accounts[b].touched);
    assert_false(f->accounts[c].touched);
    assert_i128_equal(f->accounts[c].pending_in, 50);

    const struct core_transfer *t = &f->transfers[0];
    assert_int_equal(t->state, TRANSFER_POSTED);
    assert_true(t->settled);
    assert_true(t->pending_dirty);
    assert_false(t->created);
    assert_i128_equal(t->posted_amount, 120);
    assert_int_equal(t->settle_from_seq, 5);
    assert_int_equal(t->settle_to_seq, 2);
    assert_i128_equal(t->settle_from_balance, 880);
    assert_i128_equal(t->settle_to_balance, 125);
    assert_int_equal(t->settled_us, NOW_US + 1000);
    /* What the reservation recorded stays. */
    assert_true(t->exists && t->pending);
    assert_i128_equal(t->amount, 300);
    assert_int_equal(t->from_seq, reserved.from_seq);
    assert_int_equal(t->to_seq, reserved.to_seq);
    assert_i128_equal(t->from_balance, 1000);
    assert_i128_equal(t->to_balance, 5);
    assert_int_equal(t->created_us, NOW_US);
    assert_int_equal(t->effective_us, NOW_US);
    assert_int_equal(t->deadline_us, TIME_NONE);

    /* The 180 not posted went back to available (880 - 50). */
    next_run(f);
    op = fx_op(f, 1, a, c, 831);
    assert_int_equal(run_one(f, op), STATUS_INSUFFICIENT_FUNDS);
    next_run(f);
    op = fx_op(f, 1, a, c, 830);
    assert_int_equal(run_one(f, op), STATUS_OK);
}

static void test_void_and_expire_entries(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 5);
    f->accounts[a].seq = 2;
    f->accounts[b].seq = 6;
    struct core_op *op = fx_reserve(f, 0, a, b, 300);
    op = fx_reserve(f, 1, a, b, 200);
    op->timeout_s = 30;
    fx_run(f);
    assert_int_equal(f->ops[0].status, STATUS_OK);
    assert_int_equal(f->ops[1].status, STATUS_OK);
    assert_int_equal(f->transfers[1].deadline_us, NOW_US + 30 * SEC);

    /* Void; b's last entry is a little ahead of this process's clock. */
    f->accounts[b].last_effective_us = NOW_US + 500;
    next_run(f);
    op = fx_settle(f, OP_VOID, 0, a, b);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_entry(&f->entries[0], .account = a, .transfer = 0, .seq = 5, .kind = ENTRY_VOID_PENDING,
                 .amount = 0, .pending_change = -300, .balance = 1000, .pending_out = 200,
                 .pending_in = 0, .effective_us = NOW_US + 500, .created_us = NOW_US);
    assert_entry(&f->entries[1], .account = b, .transfer = 0, .seq = 9, .kind = ENTRY_VOID_PENDING,
                 .amount = 0, .pending_change = -300, .balance = 5, .pending_out = 0,
                 .pending_in = 200, .effective_us = NOW_US + 500, .created_us = NOW_US);
    const struct core_transfer *t = &f->transfers[0];
    assert_int_equal(t->state, TRANSFER_VOIDED);
    assert_true(t->settled && t->pending_dirty);
    assert_i128_equal(t->posted_amount, 0);
    assert_int_equal(t->settle_from_seq, 5);
    assert_int_equal(t->settle_to_seq, 9);
    assert_i128_equal(t->settle_from_balance, 1000);
    assert_i128_equal(t->settle_to_balance, 5);
    assert_int_equal(t->settled_us, NOW_US);

    /* Expire, by the sweeper, at the deadline. */
    f->now_us = NOW_US + 30 * SEC;
    next_run(f);
    op = fx_settle(f, OP_EXPIRE, 1, a, b);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_false(op->replayed);
    assert_entry(&f->entries[0], .account = a, .transfer = 1, .seq = 6,
                 .kind = ENTRY_EXPIRE_PENDING, .amount = 0, .pending_change = -200, .balance = 1000,
                 .pending_out = 0, .pending_in = 0, .effective_us = NOW_US + 30 * SEC,
                 .created_us = NOW_US + 30 * SEC);
    assert_entry(&f->entries[1], .account = b, .transfer = 1, .seq = 10,
                 .kind = ENTRY_EXPIRE_PENDING, .amount = 0, .pending_change = -200, .balance = 5,
                 .pending_out = 0, .pending_in = 0, .effective_us = NOW_US + 30 * SEC,
                 .created_us = NOW_US + 30 * SEC);
    t = &f->transfers[1];
    assert_int_equal(t->state, TRANSFER_EXPIRED);
    assert_true(t->settled && t->pending_dirty);
    assert_i128_equal(t->posted_amount, 0);
    assert_int_equal(t->settle_from_seq, 6);
    assert_int_equal(t->settle_to_seq, 10);
    assert_int_equal(t->settled_us, NOW_US + 30 * SEC);
    assert_int_equal(t->timeout_s, 30);
}

static void test_expire_deadline(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    struct core_op *op = fx_reserve(f, 0, a, b, 100);
    op->timeout_s = 30;
    op = fx_reserve(f, 1, a, b, 100); /* no timeout */
    op = fx_reserve(f, 2, a, b, 100);
    op->timeout_s = 1;
    op = fx_reserve(f, 3, a, b, 100);
    op->timeout_s = 315360000; /* ten years, the API's limit */
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_OK);
    assert_int_equal(f->transfers[0].timeout_s, 30);
    assert_int_equal(f->transfers[0].deadline_us, NOW_US + 30 * SEC);
    assert_int_equal(f->transfers[1].timeout_s, 0);
    assert_int_equal(f->transfers[1].deadline_us, TIME_NONE);
    assert_int_equal(f->transfers[2].deadline_us, NOW_US + SEC);
    assert_int_equal(f->transfers[3].deadline_us, NOW_US + INT64_C(315360000) * SEC);

    /* The sweeper may come early: nothing happens. */
    const int64_t early[] = {NOW_US, NOW_US + 30 * SEC - 1};
    for (size_t i = 0; i < 2; i++) {
        f->now_us = early[i];
        next_run(f);
        op = fx_settle(f, OP_EXPIRE, 0, a, b);
        assert_int_equal(run_one(f, op), STATUS_INVALID_REQUEST);
    }
    /* A transfer without a deadline never expires. */
    f->now_us = NOW_US + INT64_C(3650) * 86400 * SEC;
    next_run(f);
    op = fx_settle(f, OP_EXPIRE, 1, a, b);
    assert_int_equal(run_one(f, op), STATUS_INVALID_REQUEST);

    /* At the deadline, exactly. */
    f->now_us = NOW_US + 30 * SEC;
    next_run(f);
    op = fx_settle(f, OP_EXPIRE, 0, a, b);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->transfers[0].state, TRANSFER_EXPIRED);
    /* Long after it. */
    next_run(f);
    op = fx_settle(f, OP_EXPIRE, 2, a, b);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->transfers[2].state, TRANSFER_EXPIRED);
    assert_i128_equal(f->accounts[a].pending_out, 200);
    assert_i128_equal(f->accounts[b].pending_in, 200);
    assert_i128_equal(f->accounts[a].balance, 1000);

    /* Nothing can settle an expired transfer again. */
    static const enum op_kind kinds[] = {OP_POST, OP_VOID, OP_EXPIRE};
    for (size_t i = 0; i < 3; i++) {
        next_run(f);
        op = fx_settle(f, kinds[i], 0, a, b);
        if (run_one(f, op) != STATUS_PENDING_EXPIRED)
            fail_msg("%s of an expired transfer: %s", kind_name(kinds[i]), status_code(op->status));
    }
    /* The ten-year one is still pending and can be posted. */
    next_run(f);
    op = fx_settle(f, OP_POST, 3, a, b);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[b].balance, 100);
}

static void test_timeout_only_for_pending(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    const int64_t timeouts[] = {1, 30, -1};
    for (size_t i = 0; i < 3; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, 0, a, b, 10);
        op->timeout_s = timeouts[i];
        assert_int_equal(run_one(f, op), STATUS_INVALID_REQUEST);
        assert_false(f->transfers[0].exists);
    }
    /* ... also when the id exists (a request error, before the replay). */
    fx_existing(f, 1, a, b, 10, false);
    next_run(f);
    struct core_op *op = fx_op(f, 1, a, b, 10);
    op->timeout_s = 5;
    assert_int_equal(run_one(f, op), STATUS_INVALID_REQUEST);
    /* The same transfer without it is fine. */
    next_run(f);
    op = fx_op(f, 0, a, b, 10);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->transfers[0].timeout_s, 0);
    assert_int_equal(f->transfers[0].deadline_us, TIME_NONE);
}

/* core enforces the range itself, not only the HTTP codec: a negative
 * timeout would put the deadline before the transfer, and above the limit
 * now + timeout may leave int64 microseconds (types.h). */
static void test_timeout_range(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    const int64_t bad[] = {-1, TIMEOUT_S_MAX + 1, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        next_run(f);
        struct core_op *op = fx_reserve(f, 0, a, b, 10);
        op->timeout_s = bad[i];
        if (run_one(f, op) != STATUS_INVALID_REQUEST)
            fail_msg("timeout_s %lld: %s", (long long)bad[i], status_code(op->status));
        assert_false(f->transfers[0].exists);
    }
    /* ... also when the id exists (a request error, before the replay). */
    fx_pending(f, 1, a, b, 10, TIME_NONE);
    next_run(f);
    struct core_op *op = fx_reserve(f, 1, a, b, 10);
    op->timeout_s = -1;
    assert_int_equal(run_one(f, op), STATUS_INVALID_REQUEST);
    next_run(f);
    op = fx_reserve(f, 1, a, b, 10);
    op->timeout_s = TIMEOUT_S_MAX + 1;
    assert_int_equal(run_one(f, op), STATUS_INVALID_REQUEST);
    /* The limit itself is fine. */
    next_run(f);
    op = fx_reserve(f, 0, a, b, 10);
    op->timeout_s = TIMEOUT_S_MAX;
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->transfers[0].deadline_us, NOW_US + TIMEOUT_S_MAX * SEC);
}

/* ---- atomic requests and snapshots ---- */

static void test_atomic_rollback_of_reservation_and_post(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 7);
    int c = fx_account(f, "USD", false, 0, 0);
    f->accounts[a].seq = 4;
    f->accounts[a].last_effective_us = NOW_US - 5;
    f->accounts[b].seq = 2;
    f->accounts[b].last_effective_us = NOW_US - 9;
    fx_pending(f, 5, a, b, 40, NOW_US + 60 * SEC);

    /* Reserve, post an older reservation, then a post that exceeds. */
    fx_reserve(f, 0, a, b, 100);
    fx_settle(f, OP_POST, 5, a, b);
    fx_post(f, 0, a, b, 150);
    fx_request(f, 0, 3, true);
    /* Reserve, post it, void the older one, then a debit the post made impossible. */
    fx_reserve(f, 1, a, c, 900);
    fx_settle(f, OP_POST, 1, a, c);
    fx_settle(f, OP_VOID, 5, a, b);
    fx_op(f, 2, a, c, 101);
    fx_request(f, 3, 4, true);

    struct snap s;
    take_snap(f, &s);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_BATCH_FAILED, STATUS_BATCH_FAILED, STATUS_EXCEEDS_PENDING,
                    STATUS_BATCH_FAILED, STATUS_BATCH_FAILED, STATUS_BATCH_FAILED,
                    STATUS_INSUFFICIENT_FUNDS);
    for (int i = 0; i < f->n_ops; i++)
        assert_false(f->ops[i].replayed);
    assert_int_equal(f->b.n_entries, 0);
    assert_unchanged(f, &s);

    /* The rolled-back post left the reservation whole: it settles later. */
    next_run(f);
    struct core_op *op = fx_post(f, 5, a, b, 40);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->entries[0].seq, 5);
    assert_int_equal(f->entries[1].seq, 3);
    assert_i128_equal(f->accounts[a].pending_out, 0);
    assert_i128_equal(f->accounts[b].balance, 47);
}

/* Reserve, then post, in one request: each op answers with the transfer as
 * it left it. */
static void snapshots(struct fx *f, bool atomic)
{
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_reserve(f, 0, a, b, 100);
    fx_post(f, 0, a, b, 40);
    fx_post(f, 0, a, b, 40);
    fx_reserve(f, 1, a, b, 50);
    fx_settle(f, OP_VOID, 1, a, b);
    fx_settle(f, OP_VOID, 1, a, b);
    fx_request(f, 0, 6, atomic);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_OK);
    const bool replayed[] = {false, false, true, false, false, true};
    for (int i = 0; i < 6; i++)
        assert_int_equal(f->ops[i].replayed, replayed[i]);
    assert_int_equal(f->b.n_entries, 8);

    const struct core_transfer *r0 = f->ops[0].result, *r1 = f->ops[1].result;
    assert_true(r0->exists && r0->created && r0->pending);
    assert_int_equal(r0->state, TRANSFER_PENDING);
    assert_false(r0->settled);
    assert_i128_equal(r0->posted_amount, 0);
    assert_int_equal(r0->from_seq, 1);
    assert_int_equal(r0->settle_from_seq, 0);
    assert_int_equal(r1->state, TRANSFER_POSTED);
    assert_true(r1->settled);
    assert_i128_equal(r1->posted_amount, 40);
    assert_int_equal(r1->from_seq, 1);
    assert_int_equal(r1->settle_from_seq, 2);
    assert_int_equal(r1->settle_to_seq, 2);
    assert_i128_equal(r1->settle_from_balance, 960);
    assert_i128_equal(r1->settle_to_balance, 40);
    assert_memory_not_equal(r0, r1, sizeof *r0);
    assert_memory_equal(f->ops[2].result, r1, sizeof *r1);
    assert_memory_equal(&f->transfers[0], r1, sizeof *r1);

    assert_int_equal(f->ops[3].result->state, TRANSFER_PENDING);
    assert_int_equal(f->ops[4].result->state, TRANSFER_VOIDED);
    assert_int_equal(f->ops[4].result->settle_from_seq, 4);
    assert_memory_equal(f->ops[5].result, f->ops[4].result, sizeof *f->ops[4].result);
    assert_memory_equal(&f->transfers[1], f->ops[4].result, sizeof *f->ops[4].result);
    assert_i128_equal(f->accounts[a].balance, 960);
    assert_i128_equal(f->accounts[a].pending_out, 0);
    assert_i128_equal(f->accounts[b].pending_in, 0);
}

static void test_snapshots_non_atomic(void **state)
{
    snapshots(*state, false);
}

static void test_snapshots_atomic(void **state)
{
    snapshots(*state, true);
}

/* ---- unit_cost checks ---- */

static void test_unit_cost_statuses(void **state)
{
    enum { ISS, T2, T1, P };
    static const struct {
        const char *what;
        int from, to;
        bool pending;
        bool has_unit_cost;
        struct core_cost uc;
        enum status want;
    } rows[] = {
        {"tracked, none", ISS, T2, false, false, {0}, STATUS_MISSING_UNIT_COST},
        {"tracked, empty", ISS, T2, false, true, {.n = 0}, STATUS_MISSING_UNIT_COST},
        {"tracked, USD missing",
         ISS,
         T2,
         false,
         true,
         {1, {"BRL"}, {E18}},
         STATUS_MISSING_UNIT_COST},
        {"tracked, BRL missing",
         ISS,
         T2,
         false,
         true,
         {1, {"USD"}, {E18}},
         STATUS_MISSING_UNIT_COST},
        {"tracked, complete", ISS, T2, false, true, {2, {"BRL", "USD"}, {E18, 2 * E18}}, STATUS_OK},
        {"tracked, zero costs", ISS, T2, false, true, {2, {"BRL", "USD"}, {0, 0}}, STATUS_OK},
        {"tracked, one too many",
         ISS,
         T2,
         false,
         true,
         {3, {"BRL", "EUR", "USD"}, {1, 2, 3}},
         STATUS_UNTRACKED_UNIT_COST},
        {"tracked, only an untracked one",
         ISS,
         T2,
         false,
         true,
         {1, {"EUR"}, {1}},
         STATUS_UNTRACKED_UNIT_COST},
        {"tracked, untracked beats missing",
         ISS,
         T2,
         false,
         true,
         {2, {"BRL", "EUR"}, {1, 2}},
         STATUS_UNTRACKED_UNIT_COST},
        {"tracked, a prefix is another currency",
         ISS,
         T1,
         false,
         true,
         {1, {"US"}, {1}},
         STATUS_UNTRACKED_UNIT_COST},
        {"tracked, case matters",
         ISS,
         T1,
         false,
         true,
         {1, {"usd"}, {1}},
         STATUS_UNTRACKED_UNIT_COST},
        {"one currency, complete", ISS, T1, false, true, {1, {"USD"}, {3 * E18}}, STATUS_OK},
        {"untracked, unit_cost",
         ISS,
         P,
         false,
         true,
         {1, {"USD"}, {E18}},
         STATUS_UNTRACKED_UNIT_COST},
        {"untracked, empty unit_cost", ISS, P, false, true, {.n = 0}, STATUS_UNTRACKED_UNIT_COST},
        {"untracked, none", ISS, P, false, false, {0}, STATUS_OK},
        {"pending, tracked, none", ISS, T2, true, false, {0}, STATUS_MISSING_UNIT_COST},
        {"pending, tracked, BRL missing",
         ISS,
         T2,
         true,
         true,
         {1, {"USD"}, {E18}},
         STATUS_MISSING_UNIT_COST},
        {"pending, tracked, complete",
         ISS,
         T2,
         true,
         true,
         {2, {"BRL", "USD"}, {E18, E18}},
         STATUS_OK},
        {"pending, untracked, unit_cost",
         ISS,
         P,
         true,
         true,
         {1, {"USD"}, {E18}},
         STATUS_UNTRACKED_UNIT_COST},
        /* Only the credited side counts. */
        {"debit of a tracked account, none", T2, P, false, false, {0}, STATUS_OK},
        {"debit of a tracked account, unit_cost",
         T2,
         P,
         false,
         true,
         {1, {"USD"}, {E18}},
         STATUS_UNTRACKED_UNIT_COST},
        {"tracked to tracked, complete",
         T1,
         T2,
         false,
         true,
         {2, {"BRL", "USD"}, {E18, E18}},
         STATUS_OK},
        {"tracked to tracked, the debited side's currencies",
         T2,
         T1,
         false,
         true,
         {2, {"BRL", "USD"}, {E18, E18}},
         STATUS_UNTRACKED_UNIT_COST},
    };
    struct fx *f = *state;
    fx_account(f, "TOK", true, 0, 0);     /* ISS */
    fx_account(f, "TOK", false, 0, 1000); /* T2 */
    fx_account(f, "TOK", false, 0, 1000); /* T1 */
    fx_account(f, "TOK", false, 0, 0);    /* P */
    track(f, T2, "BRL", "USD");
    track(f, T1, "USD", NULL);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, (int)i, rows[i].from, rows[i].to, 1);
        op->pending = rows[i].pending;
        if (rows[i].has_unit_cost)
            fx_unit_cost(f, op, rows[i].uc);
        if (run_one(f, op) != rows[i].want)
            fail_msg("%s: %s, want %s", rows[i].what, status_code(op->status),
                     status_code(rows[i].want));
        if (rows[i].want == STATUS_OK && rows[i].has_unit_cost)
            assert_memory_equal(&f->transfers[i].unit_cost, &rows[i].uc, sizeof rows[i].uc);
    }

    /* A replay does not compare unit_cost (SPEC section 3). */
    fx_existing(f, 30, ISS, T2, 5, false);
    next_run(f);
    struct core_op *op = fx_op(f, 30, ISS, T2, 5);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
    next_run(f);
    op = fx_op(f, 30, ISS, T2, 5);
    fx_unit_cost(f, op, (struct core_cost){1, {"EUR"}, {1}});
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
}

static void test_unit_cost_order_of_checks(void **state)
{
    enum { F, Z, T, TF, E, U };
    static const struct {
        const char *what;
        int transfer;
        int from, to;
        i128 amount;
        enum amount_parse_result parse;
        bool pending;
        int unit_cost; /* 0: none, 1: {USD}, 2: {EUR, USD} (untracked EUR) */
        bool has_expect_from;
        int64_t expect_from;
        bool has_effective;
        int64_t effective;
        enum status want;
    } rows[] = {
        {"invalid_amount > missing_unit_cost", 1, F, T, 0, AMOUNT_PARSE_OK, false, 0, false, 0,
         false, 0, STATUS_INVALID_AMOUNT},
        {"existing id (replay) > missing_unit_cost", 0, F, T, 10, AMOUNT_PARSE_OK, false, 0, false,
         0, false, 0, STATUS_OK},
        {"existing id (conflict) > missing_unit_cost", 0, F, T, 11, AMOUNT_PARSE_OK, false, 0,
         false, 0, false, 0, STATUS_ID_CONFLICT},
        {"same_account > missing_unit_cost", 1, T, T, 1, AMOUNT_PARSE_OK, false, 0, false, 0, false,
         0, STATUS_SAME_ACCOUNT},
        {"account_not_found > missing_unit_cost", 1, -1, T, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         false, 0, STATUS_ACCOUNT_NOT_FOUND},
        {"currency_mismatch > missing_unit_cost", 1, F, E, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         false, 0, STATUS_CURRENCY_MISMATCH},
        {"seq_mismatch > missing_unit_cost", 1, F, T, 1, AMOUNT_PARSE_OK, false, 0, true, 9, false,
         0, STATUS_SEQ_MISMATCH},
        {"backdated (past) > missing_unit_cost", 1, F, T, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         true, NOW_US - 200, STATUS_BACKDATED},
        {"backdated (future) > missing_unit_cost", 1, F, T, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         true, NOW_US + 1, STATUS_BACKDATED},
        /* A malformed unit_cost is a 400: judged once the accounts are
         * known, before what depends on their state. */
        {"account_not_found > unit_cost to an untracked account", 1, -1, U, 1, AMOUNT_PARSE_OK,
         false, 1, false, 0, false, 0, STATUS_ACCOUNT_NOT_FOUND},
        {"unit_cost naming an untracked currency > currency_mismatch", 1, F, E, 1, AMOUNT_PARSE_OK,
         false, 2, false, 0, false, 0, STATUS_UNTRACKED_UNIT_COST},
        {"unit_cost naming an untracked currency > seq_mismatch", 1, F, T, 1, AMOUNT_PARSE_OK,
         false, 2, true, 9, false, 0, STATUS_UNTRACKED_UNIT_COST},
        {"unit_cost naming an untracked currency > backdated", 1, F, T, 1, AMOUNT_PARSE_OK, false,
         2, false, 0, true, NOW_US - 200, STATUS_UNTRACKED_UNIT_COST},
        {"unit_cost to an untracked account > backdated", 1, F, U, 1, AMOUNT_PARSE_OK, false, 1,
         false, 0, true, NOW_US - 200, STATUS_UNTRACKED_UNIT_COST},
        {"missing_unit_cost > amount_overflow", 1, F, TF, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         false, 0, STATUS_MISSING_UNIT_COST},
        {"amount_overflow once unit_cost is there", 1, F, TF, 1, AMOUNT_PARSE_OK, false, 1, false,
         0, false, 0, STATUS_AMOUNT_OVERFLOW},
        {"missing_unit_cost > insufficient_funds", 1, Z, T, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         false, 0, STATUS_MISSING_UNIT_COST},
        {"insufficient_funds once unit_cost is there", 1, Z, T, 1, AMOUNT_PARSE_OK, false, 1, false,
         0, false, 0, STATUS_INSUFFICIENT_FUNDS},
        {"missing_unit_cost > overflow and funds", 1, Z, TF, 1, AMOUNT_PARSE_OK, false, 0, false, 0,
         false, 0, STATUS_MISSING_UNIT_COST},
        {"pending: missing_unit_cost > insufficient_funds", 1, Z, T, 1, AMOUNT_PARSE_OK, true, 0,
         false, 0, false, 0, STATUS_MISSING_UNIT_COST},
        {"pending: insufficient_funds with unit_cost", 1, Z, T, 1, AMOUNT_PARSE_OK, true, 1, false,
         0, false, 0, STATUS_INSUFFICIENT_FUNDS},
        {"untracked currency > amount_overflow", 1, F, TF, 1, AMOUNT_PARSE_OK, false, 2, false, 0,
         false, 0, STATUS_UNTRACKED_UNIT_COST},
        {"untracked currency > insufficient_funds", 1, Z, T, 1, AMOUNT_PARSE_OK, false, 2, false, 0,
         false, 0, STATUS_UNTRACKED_UNIT_COST},
        {"untracked account > insufficient_funds", 1, Z, U, 1, AMOUNT_PARSE_OK, false, 1, false, 0,
         false, 0, STATUS_UNTRACKED_UNIT_COST},
        {"all checks pass", 1, F, T, 1, AMOUNT_PARSE_OK, false, 1, true, 3, true, NOW_US - 100,
         STATUS_OK},
    };
    static const struct core_cost costs[] = {
        {0},
        {1, {"USD"}, {5 * E18}},
        {2, {"EUR", "USD"}, {E18, 5 * E18}},
    };
    struct fx *f = *state;
    fx_account(f, "TOK", false, 0, 100);        /* F */
    fx_account(f, "TOK", false, 0, 0);          /* Z */
    fx_account(f, "TOK", false, 0, 5);          /* T */
    fx_account(f, "TOK", false, 0, AMOUNT_MAX); /* TF */
    fx_account(f, "EUR", false, 0, 0);          /* E */
    fx_account(f, "TOK", false, 0, 0);          /* U */
    track(f, T, "USD", NULL);
    track(f, TF, "USD", NULL);
    track(f, E, "USD", NULL);
    f->accounts[T].avg_cost.value[0] = 2 * E18;
    f->accounts[TF].avg_cost.value[0] = 2 * E18;
    f->accounts[F].seq = 3;
    f->accounts[F].last_effective_us = NOW_US - 100;
    fx_existing(f, 0, F, T, 10, false);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, rows[i].transfer, rows[i].from, rows[i].to, rows[i].amount);
        op->amount_parse = rows[i].parse;
        op->pending = rows[i].pending;
        if (rows[i].unit_cost != 0)
            fx_unit_cost(f, op, costs[rows[i].unit_cost]);
        op->has_expect_from_seq = rows[i].has_expect_from;
        op->expect_from_seq = rows[i].expect_from;
        op->has_effective = rows[i].has_effective;
        op->effective_us = rows[i].effective;
        if (run_one(f, op) != rows[i].want)
            fail_msg("%s: %s, want %s", rows[i].what, status_code(op->status),
                     status_code(rows[i].want));
    }
    /* Only the last row applied: 5 at 2.00 plus 1 at 5.00 = 15 / 6 = 2.50. */
    assert_i128_equal(f->accounts[T].balance, 6);
    assert_cost(&f->accounts[T].avg_cost, 1, {"USD"}, {2 * E18 + E18 / 2});
}

/* ---- avg_cost ---- */

static void test_avg_cost_credit_and_debit(void **state)
{
    struct fx *f = *state;
    int iss = fx_account(f, "TOK", true, 0, 0);
    int w = fx_account(f, "TOK", false, 0, 0);
    int s = fx_account(f, "TOK", false, 0, 0);
    track(f, w, "BRL", "USD");
    static const struct {
        const char *what;
        bool credit; /* iss -> w with unit_cost; else w -> s */
        i128 amount;
        i128 brl, usd;           /* unit_cost of a credit */
        i128 want_brl, want_usd; /* w's means after */
        i128 want_balance;
    } rows[] = {
        {"first credit: the unit cost", true, 10, 10 * E18, 2 * E18, 10 * E18, 2 * E18, 10},
        /* (10 * 10 + 30 * 5.5) / 40 = 6.625; (10 * 2 + 30 * 4) / 40 = 3.5 */
        {"second credit: the weighted mean", true, 30, 5 * E18 + E18 / 2, 4 * E18,
         6 * E18 + 625 * E18 / 1000, 3 * E18 + E18 / 2, 40},
        {"debit: the mean stays", false, 15, 0, 0, 6 * E18 + 625 * E18 / 1000, 3 * E18 + E18 / 2,
         25},
        /* (25 * 3.5 + 5 * 10^-18) / 30 = 2.9166666666666666668333... */
        {"credit at the smallest cost: rounded", true, 5, 6 * E18 + 625 * E18 / 1000, 1,
         6 * E18 + 625 * E18 / 1000, (i128)2916666666666666667LL, 30},
        {"debit to zero: the mean is 0", false, 30, 0, 0, 0, 0, 0},
        {"credit after zero: the unit cost", true, 4, E18, 9 * E18, E18, 9 * E18, 4},
        /* (4 * 1 + 4 * (1 + 3e-18)) / 8 = 1 + 1.5e-18 -> 1 + 2e-18 (tie, to even);
         * (4 * 9 + 4 * (9 + 1e-18)) / 8 = 9 + 0.5e-18 -> 9 (tie, to even). */
        {"ties round half to even", true, 4, E18 + 3, 9 * E18 + 1, E18 + 2, 9 * E18, 8},
        /* The next mean starts from the stored, rounded one:
         * (8 * (1 + 2e-18) + 8 * 1) / 16 = 1 + 1e-18. */
        {"from the stored mean", true, 8, E18, 9 * E18, E18 + 1, 9 * E18, 16},
        {"debit of all but one", false, 15, 0, 0, E18 + 1, 9 * E18, 1},
    };
    int64_t seq = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op;
        if (rows[i].credit) {
            op = fx_op(f, (int)i, iss, w, rows[i].amount);
            fx_unit_cost(f, op, (struct core_cost){2, {"BRL", "USD"}, {rows[i].brl, rows[i].usd}});
        } else {
            op = fx_op(f, (int)i, w, s, rows[i].amount);
        }
        if (run_one(f, op) != STATUS_OK)
            fail_msg("%s: %s", rows[i].what, status_code(op->status));
        const struct core_entry *mine = &f->entries[rows[i].credit ? 1 : 0];
        const struct core_entry *other = &f->entries[rows[i].credit ? 0 : 1];
        assert_int_equal(mine->account, w);
        assert_int_equal(mine->seq, ++seq);
        assert_i128_equal(mine->balance, rows[i].want_balance);
        assert_cost(&mine->avg_cost, 2, {"BRL", "USD"}, {rows[i].want_brl, rows[i].want_usd});
        assert_cost(&f->accounts[w].avg_cost, 2, {"BRL", "USD"},
                    {rows[i].want_brl, rows[i].want_usd});
        /* The untracked side carries no avg_cost. */
        assert_int_equal(other->avg_cost.n, 0);
        assert_int_equal(f->accounts[rows[i].credit ? iss : s].avg_cost.n, 0);
    }
}

/* An account that may go below 0: a credit onto a balance <= 0 takes the
 * unit cost; one that lands on 0 gives 0. */
static void test_avg_cost_negative_balance(void **state)
{
    struct fx *f = *state;
    int iss = fx_account(f, "TOK", true, 0, 0);
    int n = fx_account(f, "TOK", false, -1000, 0);
    int s = fx_account(f, "TOK", false, 0, 0);
    track(f, n, "USD", NULL);
    f->accounts[n].balance = 20;
    f->accounts[n].avg_cost.value[0] = 3 * E18;

    struct core_op *op = fx_op(f, 0, n, s, 30); /* to -10: the mean stays */
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->entries[0].avg_cost, 1, {"USD"}, {3 * E18});
    next_run(f);
    op = fx_op(f, 1, iss, n, 30); /* -10 + 30 = 20: b <= 0, so u */
    fx_unit_cost(f, op, (struct core_cost){1, {"USD"}, {7 * E18}});
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->entries[1].avg_cost, 1, {"USD"}, {7 * E18});
    assert_cost(&f->accounts[n].avg_cost, 1, {"USD"}, {7 * E18});
    next_run(f);
    op = fx_op(f, 2, n, s, 50); /* to -30 */
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->accounts[n].avg_cost, 1, {"USD"}, {7 * E18});
    next_run(f);
    op = fx_op(f, 3, iss, n, 30); /* exactly to 0: 0 */
    fx_unit_cost(f, op, (struct core_cost){1, {"USD"}, {4 * E18}});
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[n].balance, 0);
    assert_cost(&f->entries[1].avg_cost, 1, {"USD"}, {0});
    assert_cost(&f->accounts[n].avg_cost, 1, {"USD"}, {0});
}

static void test_avg_cost_pending_credit_then_post(void **state)
{
    struct fx *f = *state;
    int iss = fx_account(f, "TOK", true, 0, 0);
    int w = fx_account(f, "TOK", false, 0, 10);
    int s = fx_account(f, "TOK", false, 0, 0);
    track(f, w, "USD", NULL);
    f->accounts[w].avg_cost.value[0] = 2 * E18;

    /* Reserve a credit of 100 at 5.00: nothing moves yet. */
    struct core_op *op = fx_reserve(f, 0, iss, w, 100);
    fx_unit_cost(f, op, (struct core_cost){1, {"USD"}, {5 * E18}});
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->entries[1].avg_cost, 1, {"USD"}, {2 * E18});
    assert_cost(&f->accounts[w].avg_cost, 1, {"USD"}, {2 * E18});
    assert_cost(&f->transfers[0].unit_cost, 1, {"USD"}, {5 * E18});
    assert_int_equal(f->entries[0].avg_cost.n, 0);

    /* A posted debit meanwhile leaves the mean. */
    next_run(f);
    op = fx_op(f, 1, w, s, 4);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->entries[0].avg_cost, 1, {"USD"}, {2 * E18});

    /* Post 30 of it: the stored unit cost applies to the 30 posted:
     * (6 * 2 + 30 * 5) / 36 = 4.5. */
    next_run(f);
    op = fx_post(f, 0, iss, w, 30);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_entry(&f->entries[1], .account = w, .transfer = 0, .seq = 3, .kind = ENTRY_POST_PENDING,
                 .amount = 30, .pending_change = -100, .balance = 36, .pending_out = 0,
                 .pending_in = 0, .effective_us = NOW_US, .created_us = NOW_US, .avg_cost.n = 1);
    assert_cost(&f->entries[1].avg_cost, 1, {"USD"}, {4 * E18 + E18 / 2});
    assert_cost(&f->accounts[w].avg_cost, 1, {"USD"}, {4 * E18 + E18 / 2});
    assert_int_equal(f->entries[0].avg_cost.n, 0);

    /* A pending debit of all of it, posted: the mean drops to 0 with the
     * balance. */
    next_run(f);
    op = fx_reserve(f, 2, w, s, 36);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->entries[0].avg_cost, 1, {"USD"}, {4 * E18 + E18 / 2});
    next_run(f);
    op = fx_settle(f, OP_POST, 2, w, s);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[w].balance, 0);
    assert_cost(&f->entries[0].avg_cost, 1, {"USD"}, {0});
    assert_cost(&f->accounts[w].avg_cost, 1, {"USD"}, {0});

    /* A pending credit posted onto a balance of 0 takes its unit cost. */
    next_run(f);
    op = fx_reserve(f, 3, iss, w, 9);
    fx_unit_cost(f, op, (struct core_cost){1, {"USD"}, {E18 / 3}});
    assert_int_equal(run_one(f, op), STATUS_OK);
    next_run(f);
    op = fx_settle(f, OP_POST, 3, iss, w);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_cost(&f->entries[1].avg_cost, 1, {"USD"}, {E18 / 3});
}

static void test_avg_cost_void_and_expire_leave_mean(void **state)
{
    struct fx *f = *state;
    int iss = fx_account(f, "TOK", true, 0, 0);
    int w = fx_account(f, "TOK", false, 0, 10);
    track(f, w, "BRL", "USD");
    f->accounts[w].avg_cost.value[0] = 7 * E18;
    f->accounts[w].avg_cost.value[1] = 2 * E18;

    struct core_op *op = fx_reserve(f, 0, iss, w, 1000);
    fx_unit_cost(f, op, (struct core_cost){2, {"BRL", "USD"}, {90 * E18, 50 * E18}});
    op = fx_reserve(f, 1, iss, w, 500);
    fx_unit_cost(f, op, (struct core_cost){2, {"BRL", "USD"}, {1, 1}});
    op->timeout_s = 10;
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK);

    next_run(f);
    op = fx_settle(f, OP_VOID, 0, iss, w);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->entries[1].kind, ENTRY_VOID_PENDING);
    assert_cost(&f->entries[1].avg_cost, 2, {"BRL", "USD"}, {7 * E18, 2 * E18});
    assert_cost(&f->accounts[w].avg_cost, 2, {"BRL", "USD"}, {7 * E18, 2 * E18});

    f->now_us = NOW_US + 10 * SEC;
    next_run(f);
    op = fx_settle(f, OP_EXPIRE, 1, iss, w);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->entries[1].kind, ENTRY_EXPIRE_PENDING);
    assert_cost(&f->entries[1].avg_cost, 2, {"BRL", "USD"}, {7 * E18, 2 * E18});
    assert_cost(&f->accounts[w].avg_cost, 2, {"BRL", "USD"}, {7 * E18, 2 * E18});
    assert_i128_equal(f->accounts[w].balance, 10);
    assert_i128_equal(f->accounts[w].pending_in, 0);
}

/* Settling a reservation changes the debited side only by a debit (post)
 * or not at all (void, expire): the tracked mean of the debited account
 * stays, and no unit cost is looked at for it. */
static void test_avg_cost_settling_a_debit_reservation(void **state)
{
    struct fx *f = *state;
    int w = fx_account(f, "TOK", false, 0, 100);
    int s = fx_account(f, "TOK", false, 0, 0);
    track(f, w, "USD", NULL);
    f->accounts[w].avg_cost.value[0] = 7 * E18;
    static const enum op_kind kinds[] = {OP_VOID, OP_POST, OP_EXPIRE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int t = (int)i;
        next_run(f);
        struct core_op *op = fx_reserve(f, t, w, s, 10);
        op->timeout_s = kinds[i] == OP_EXPIRE ? 1 : 0;
        assert_int_equal(run_one(f, op), STATUS_OK);
        if (kinds[i] == OP_EXPIRE)
            f->now_us += SEC;
        next_run(f);
        op = fx_settle(f, kinds[i], t, w, s);
        if (run_one(f, op) != STATUS_OK)
            fail_msg("%s: %s", kind_name(kinds[i]), status_code(op->status));
        assert_int_equal(f->entries[0].account, w);
        assert_cost(&f->entries[0].avg_cost, 1, {"USD"}, {7 * E18});
        assert_cost(&f->accounts[w].avg_cost, 1, {"USD"}, {7 * E18});
        assert_int_equal(f->entries[1].avg_cost.n, 0);
    }
    assert_i128_equal(f->accounts[w].balance, 90);
    assert_i128_equal(f->accounts[w].pending_out, 0);
}

/* An atomic request that fails restores the means too. */
static void test_avg_cost_atomic_rollback(void **state)
{
    struct fx *f = *state;
    int iss = fx_account(f, "TOK", true, 0, 0);
    int w = fx_account(f, "TOK", false, 0, 10);
    int s = fx_account(f, "TOK", false, 0, 0);
    track(f, w, "USD", NULL);
    f->accounts[w].avg_cost.value[0] = 2 * E18;
    struct core_op *op = fx_op(f, 0, iss, w, 10);
    fx_unit_cost(f, op, (struct core_cost){1, {"USD"}, {4 * E18}});
    fx_op(f, 1, w, s, 20);
    fx_op(f, 2, iss, w, 1); /* missing_unit_cost */
    fx_request(f, 0, 3, true);
    struct snap sn;
    take_snap(f, &sn);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_BATCH_FAILED, STATUS_BATCH_FAILED, STATUS_MISSING_UNIT_COST);
    assert_int_equal(f->b.n_entries, 0);
    assert_unchanged(f, &sn);
    assert_cost(&f->accounts[w].avg_cost, 1, {"USD"}, {2 * E18});
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int run_pending_tests(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_pending_not_found),
        FX_TEST(test_pending_expired),
        FX_TEST(test_exceeds_pending),
        FX_TEST(test_settled_again),
        FX_TEST(test_post_invalid_amount),
        FX_TEST(test_replay_post_and_void),
        FX_TEST(test_replay_of_a_settled_creation),
        FX_TEST(test_reservation_counts_against_available),
        FX_TEST(test_reservations_until_exhausted),
        FX_TEST(test_credit_reservations_near_the_top_of_the_range),
        FX_TEST(test_settle_with_credited_account_in_slot_0),
        FX_TEST(test_post_partial_entries),
        FX_TEST(test_void_and_expire_entries),
        FX_TEST(test_expire_deadline),
        FX_TEST(test_timeout_only_for_pending),
        FX_TEST(test_timeout_range),
        FX_TEST(test_atomic_rollback_of_reservation_and_post),
        FX_TEST(test_snapshots_non_atomic),
        FX_TEST(test_snapshots_atomic),
        FX_TEST(test_unit_cost_statuses),
        FX_TEST(test_unit_cost_order_of_checks),
        FX_TEST(test_avg_cost_credit_and_debit),
        FX_TEST(test_avg_cost_negative_balance),
        FX_TEST(test_avg_cost_pending_credit_then_post),
        FX_TEST(test_avg_cost_void_and_expire_leave_mean),
        FX_TEST(test_avg_cost_settling_a_debit_reservation),
        FX_TEST(test_avg_cost_atomic_rollback),
    };
    return cmocka_run_group_tests_name("pending", tests, NULL, NULL);
}
