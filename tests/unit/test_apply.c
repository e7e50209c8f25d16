/*
 * test_apply.c - core_apply_batch on single transfers: every status the core
 * produces, the entries it writes, and SPEC section 3's order of checks.
 */
#include <string.h>

#include "tests.h"

/* Runs a single op in its own batch and returns its status; the batch must
 * change nothing unless the op succeeded. */
static enum status run_one(struct fx *f, const struct core_op *op)
{
    struct snap s;
    take_snap(f, &s);
    fx_run(f);
    if (op->status != STATUS_OK) {
        assert_false(op->replayed);
        assert_int_equal(f->b.n_entries, 0);
        assert_unchanged(f, &s);
    }
    return op->status;
}

static void test_post_ok(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 5);
    f->accounts[a].seq = 3;
    f->accounts[a].last_effective_us = NOW_US - 10;
    struct core_op *op = fx_op(f, 4, a, b, 300);
    fx_run(f);

    assert_int_equal(op->status, STATUS_OK);
    assert_false(op->replayed);
    assert_int_equal(f->b.n_entries, 2);
    assert_entry(&f->entries[0], .account = a, .transfer = 4, .seq = 4, .kind = ENTRY_POSTED,
                 .amount = -300, .pending_change = 0, .balance = 700, .pending_out = 0,
                 .pending_in = 0, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[1], .account = b, .transfer = 4, .seq = 1, .kind = ENTRY_POSTED,
                 .amount = 300, .pending_change = 0, .balance = 305, .pending_out = 0,
                 .pending_in = 0, .effective_us = NOW_US, .created_us = NOW_US);

    const struct core_account *fa = &f->accounts[a], *fb = &f->accounts[b];
    assert_i128_equal(fa->balance, 700);
    assert_i128_equal(fb->balance, 305);
    assert_int_equal(fa->seq, 4);
    assert_int_equal(fb->seq, 1);
    assert_int_equal(fa->last_effective_us, NOW_US);
    assert_int_equal(fb->last_effective_us, NOW_US);
    assert_true(fa->touched);
    assert_true(fb->touched);

    const struct core_transfer *t = &f->transfers[4];
    assert_true(t->exists);
    assert_true(t->created);
    assert_int_equal(t->from_account, 100 + a);
    assert_int_equal(t->to_account, 100 + b);
    assert_i128_equal(t->amount, 300);
    assert_string_equal(t->currency, "USD");
    assert_false(t->pending);
    assert_int_equal(t->state, TRANSFER_POSTED);
    assert_int_equal(t->from_seq, 4);
    assert_int_equal(t->to_seq, 1);
    assert_i128_equal(t->from_balance, 700);
    assert_i128_equal(t->to_balance, 305);
    assert_int_equal(t->created_us, NOW_US);
    assert_int_equal(t->effective_us, NOW_US);

    /* Other transfer slots untouched. */
    for (int i = 0; i < FX_TRANSFERS; i++)
        if (i != 4)
            assert_false(f->transfers[i].exists);
}

static void test_post_with_currency_and_expect(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 10);
    int b = fx_account(f, "USD", false, 0, 0);
    f->accounts[a].seq = 3;
    f->accounts[b].seq = 8;
    struct core_op *op = fx_op(f, 0, a, b, 10);
    op->has_currency = true;
    strcpy(op->currency, "USD");
    op->has_expect_from_seq = op->has_expect_to_seq = true;
    op->expect_from_seq = 3;
    op->expect_to_seq = 8;
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_int_equal(f->b.n_entries, 2);
    assert_int_equal(f->entries[0].seq, 4);
    assert_int_equal(f->entries[1].seq, 9);
    assert_i128_equal(f->accounts[a].balance, 0);
    assert_i128_equal(f->accounts[b].balance, 10);
}

static void test_check_amount_accepts(void **state)
{
    const i128 good[] = {1, 2, 100, INT64_MAX, (i128)UINT64_MAX + 1, AMOUNT_MAX - 1, AMOUNT_MAX};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(core_check_amount(AMOUNT_PARSE_OK, good[i]), STATUS_OK);
    assert_int_equal(core_check_amount(AMOUNT_PARSE_SYNTAX, 1), STATUS_INVALID_AMOUNT);
    assert_int_equal(core_check_amount(AMOUNT_PARSE_RANGE, 1), STATUS_INVALID_AMOUNT);
}

static void test_amount_max_is_valid(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int b = fx_account(f, "USD", false, 0, 0);
    struct core_op *op = fx_op(f, 0, issuer, b, AMOUNT_MAX);
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_i128_equal(f->accounts[issuer].balance, -AMOUNT_MAX);
    assert_i128_equal(f->accounts[b].balance, AMOUNT_MAX);
    assert_i128_equal(f->entries[0].amount, -AMOUNT_MAX);
    assert_i128_equal(f->entries[1].amount, AMOUNT_MAX);
}

static void test_invalid_amount(void **state)
{
    static const struct {
        enum amount_parse_result parse;
        i128 amount;
    } rows[] = {
        {AMOUNT_PARSE_SYNTAX, 0},  {AMOUNT_PARSE_SYNTAX, 100},    {AMOUNT_PARSE_RANGE, 0},
        {AMOUNT_PARSE_RANGE, 100}, {AMOUNT_PARSE_OK, 0},          {AMOUNT_PARSE_OK, -1},
        {AMOUNT_PARSE_OK, -100},   {AMOUNT_PARSE_OK, AMOUNT_MIN}, {AMOUNT_PARSE_OK, -AMOUNT_MAX},
    };
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 1000);
    int b = fx_account(f, "USD", false, 0, 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        assert_int_equal(core_check_amount(rows[i].parse, rows[i].amount), STATUS_INVALID_AMOUNT);
        struct core_op *op = fx_op(f, 0, a, b, rows[i].amount);
        op->amount_parse = rows[i].parse;
        if (run_one(f, op) != STATUS_INVALID_AMOUNT)
            fail_msg("row %zu: status %s", i, status_code(op->status));
    }
    /* A rejected transfer is not stored. */
    assert_false(f->transfers[0].exists);
}

/* An existing transfer (slot 0): acc0 -> acc1, 50 USD, posted. Each row
 * sends slot 0 again with some fields changed. */
enum { R_A, R_B, R_C, R_E };

struct replay_row {
    const char *what;
    int from, to; /* R_* slots, or -1 */
    i128 amount;
    bool pending;
    const char *currency; /* NULL: not given */
    bool other_fields;    /* wrong expect, out-of-range effective_at */
    enum status want;
};

static void test_replay_and_id_conflict(void **state)
{
    static const struct replay_row rows[] = {
        {"identical", R_A, R_B, 50, false, NULL, false, STATUS_OK},
        {"identical, currency given", R_A, R_B, 50, false, "USD", false, STATUS_OK},
        {"identical, expect/effective differ", R_A, R_B, 50, false, NULL, true, STATUS_OK},
        {"amount differs", R_A, R_B, 51, false, NULL, false, STATUS_ID_CONFLICT},
        {"amount differs a lot", R_A, R_B, AMOUNT_MAX, false, NULL, false, STATUS_ID_CONFLICT},
        {"from differs", R_C, R_B, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"to differs", R_A, R_C, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"from and to swapped", R_B, R_A, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"pending differs", R_A, R_B, 50, true, NULL, false, STATUS_ID_CONFLICT},
        {"currency differs", R_A, R_B, 50, false, "EUR", false, STATUS_ID_CONFLICT},
        /* An existing id comes before every later check. */
        {"same account", R_A, R_A, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"to not found", R_A, -1, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"from not found", -1, R_B, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"currency mismatch", R_E, R_B, 50, false, NULL, false, STATUS_ID_CONFLICT},
        {"conflict with bad expect", R_A, R_B, 49, false, NULL, true, STATUS_ID_CONFLICT},
    };
    struct fx *f = *state;
    fx_account(f, "USD", false, 0, 20);         /* R_A: 50 would be insufficient now */
    fx_account(f, "USD", false, 0, AMOUNT_MAX); /* R_B: 50 more would overflow */
    fx_account(f, "USD", false, 0, 0);          /* R_C */
    fx_account(f, "EUR", false, 0, 100);        /* R_E */
    fx_existing(f, 0, R_A, R_B, 50, false);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct replay_row *r = &rows[i];
        next_run(f);
        struct core_op *op = fx_op(f, 0, r->from, r->to, r->amount);
        op->pending = r->pending;
        if (r->currency != NULL) {
            op->has_currency = true;
            strcpy(op->currency, r->currency);
        }
        if (r->other_fields) {
            op->has_expect_from_seq = op->has_expect_to_seq = true;
            op->expect_from_seq = 77;
            op->expect_to_seq = 78;
            op->has_effective = true;
            op->effective_us = NOW_US + 1000000;
        }
        struct snap s;
        take_snap(f, &s);
        fx_run(f);
        if (op->status != r->want)
            fail_msg("%s: status %s, want %s", r->what, status_code(op->status),
                     status_code(r->want));
        assert_int_equal(op->replayed, r->want == STATUS_OK);
        /* A replay answers with the original transfer and changes nothing. */
        assert_int_equal(f->b.n_entries, 0);
        assert_unchanged(f, &s);
    }
}

static void test_replay_of_pending(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_existing(f, 3, a, b, 40, true);
    struct core_op *same = fx_op(f, 3, a, b, 40);
    same->pending = true;
    struct core_op *posted = fx_op(f, 3, a, b, 40);
    struct snap s;
    take_snap(f, &s);
    fx_run(f);
    assert_int_equal(same->status, STATUS_OK);
    assert_true(same->replayed);
    assert_int_equal(posted->status, STATUS_ID_CONFLICT);
    assert_false(posted->replayed);
    assert_int_equal(f->b.n_entries, 0);
    assert_unchanged(f, &s);
}

/* A missing account must compare unequal to every account id, 1
 * included: internal ids are > 0 (types.h), so a stand-in that is itself
 * a valid id would turn the id_conflict into a replay. */
static void test_replay_with_missing_account_vs_id_1(void **state)
{
    struct fx *f = *state;
    int one = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 100);
    f->accounts[one].id = 1;
    fx_existing(f, 0, one, b, 10, false);
    fx_existing(f, 1, b, one, 10, false);

    struct core_op *op = fx_op(f, 0, -1, b, 10);
    assert_int_equal(run_one(f, op), STATUS_ID_CONFLICT);
    next_run(f);
    op = fx_op(f, 1, b, -1, 10);
    assert_int_equal(run_one(f, op), STATUS_ID_CONFLICT);

    /* The same transfers with the account named are replays. */
    next_run(f);
    op = fx_op(f, 0, one, b, 10);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
    next_run(f);
    op = fx_op(f, 1, b, one, 10);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_true(op->replayed);
}

static void test_same_account(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 10);
    struct core_op *op = fx_op(f, 0, a, a, 5);
    assert_int_equal(run_one(f, op), STATUS_SAME_ACCOUNT);

    /* Before every later check: unknown, wrong currency, bad expect,
     * backdated, insufficient. */
    next_run(f);
    op = fx_op(f, 0, a, a, 1000);
    op->has_currency = true;
    strcpy(op->currency, "EUR");
    op->has_expect_from_seq = true;
    op->expect_from_seq = 5;
    op->has_effective = true;
    op->effective_us = NOW_US + 1;
    assert_int_equal(run_one(f, op), STATUS_SAME_ACCOUNT);

    /* The same unknown id on both sides. */
    next_run(f);
    op = fx_op(f, 0, -1, -1, 5);
    op->from_id = op->to_id = "ghost";
    assert_int_equal(run_one(f, op), STATUS_SAME_ACCOUNT);
}

static void test_account_not_found(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 10);
    int e = fx_account(f, "EUR", false, 0, 10);
    const int pairs[][2] = {{-1, a}, {a, -1}, {-1, -1}, {-1, e}, {e, -1}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, 0, pairs[i][0], pairs[i][1], 5);
        if (run_one(f, op) != STATUS_ACCOUNT_NOT_FOUND)
            fail_msg("pair %zu: %s", i, status_code(op->status));
        /* ... also before currency_mismatch of the given currency. */
        next_run(f);
        op = fx_op(f, 0, pairs[i][0], pairs[i][1], 5);
        op->has_currency = true;
        strcpy(op->currency, "GBP");
        op->has_expect_to_seq = true;
        op->expect_to_seq = 42;
        if (run_one(f, op) != STATUS_ACCOUNT_NOT_FOUND)
            fail_msg("pair %zu with currency: %s", i, status_code(op->status));
    }
}

static void test_currency_mismatch(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int e = fx_account(f, "EUR", false, 0, 100);
    int u = fx_account(f, "USD_2", false, 0, 0); /* a prefix must not match */

    struct core_op *op = fx_op(f, 0, a, e, 5);
    assert_int_equal(run_one(f, op), STATUS_CURRENCY_MISMATCH);
    next_run(f);
    op = fx_op(f, 0, e, a, 5);
    assert_int_equal(run_one(f, op), STATUS_CURRENCY_MISMATCH);
    next_run(f);
    op = fx_op(f, 0, a, u, 5);
    assert_int_equal(run_one(f, op), STATUS_CURRENCY_MISMATCH);

    static const char *const given[] = {"EUR", "usd", "US", "USDX", "USD_2"};
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        next_run(f);
        op = fx_op(f, 0, a, b, 5);
        op->has_currency = true;
        strcpy(op->currency, given[i]);
        if (run_one(f, op) != STATUS_CURRENCY_MISMATCH)
            fail_msg("currency \"%s\": %s", given[i], status_code(op->status));
    }

    /* Before seq_mismatch, backdated and insufficient_funds. */
    next_run(f);
    op = fx_op(f, 0, a, e, 500);
    op->has_expect_from_seq = true;
    op->expect_from_seq = 9;
    op->has_effective = true;
    op->effective_us = NOW_US + 1;
    assert_int_equal(run_one(f, op), STATUS_CURRENCY_MISMATCH);
}

static void test_seq_mismatch(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    f->accounts[a].seq = 3;
    static const struct {
        bool has_from;
        int64_t from;
        bool has_to;
        int64_t to;
        enum status want;
    } rows[] = {
        {true, 2, false, 0, STATUS_SEQ_MISMATCH},
        {true, 4, false, 0, STATUS_SEQ_MISMATCH},
        {false, 0, true, 1, STATUS_SEQ_MISMATCH},
        {false, 0, true, -1, STATUS_SEQ_MISMATCH},
        {true, 3, true, 1, STATUS_SEQ_MISMATCH},
        {true, 0, true, 0, STATUS_SEQ_MISMATCH},
        {true, 3, true, 0, STATUS_OK},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, 0, a, b, 1);
        op->has_expect_from_seq = rows[i].has_from;
        op->expect_from_seq = rows[i].from;
        op->has_expect_to_seq = rows[i].has_to;
        op->expect_to_seq = rows[i].to;
        if (run_one(f, op) != rows[i].want)
            fail_msg("row %zu: %s", i, status_code(op->status));
    }
    /* The successful row moved both seqs on: the old expectation fails. */
    assert_int_equal(f->accounts[a].seq, 4);
    assert_int_equal(f->accounts[b].seq, 1);
    next_run(f);
    struct core_op *op = fx_op(f, 1, a, b, 1);
    op->has_expect_from_seq = true;
    op->expect_from_seq = 3;
    assert_int_equal(run_one(f, op), STATUS_SEQ_MISMATCH);

    /* Before backdated and insufficient_funds. */
    next_run(f);
    op = fx_op(f, 1, a, b, 1000);
    op->has_expect_to_seq = true;
    op->expect_to_seq = 0;
    op->has_effective = true;
    op->effective_us = NOW_US + 1;
    assert_int_equal(run_one(f, op), STATUS_SEQ_MISMATCH);
}

static void test_backdated(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int fresh1 = fx_account(f, "USD", false, 0, 100);
    int fresh2 = fx_account(f, "USD", false, 0, 0);
    f->accounts[a].last_effective_us = NOW_US - 100;
    f->accounts[b].last_effective_us = NOW_US - 50;

    const int64_t bad[] = {NOW_US - 101, NOW_US - 51, NOW_US + 1, INT64_MIN + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, 0, a, b, 1);
        op->has_effective = true;
        op->effective_us = bad[i];
        if (run_one(f, op) != STATUS_BACKDATED)
            fail_msg("effective %lld: %s", (long long)bad[i], status_code(op->status));
    }

    /* Equal to the later of the two last entries is fine. */
    next_run(f);
    struct core_op *op = fx_op(f, 0, a, b, 1);
    op->has_effective = true;
    op->effective_us = NOW_US - 50;
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->entries[0].effective_us, NOW_US - 50);
    assert_int_equal(f->entries[1].effective_us, NOW_US - 50);
    assert_int_equal(f->entries[0].created_us, NOW_US);
    assert_int_equal(f->transfers[0].effective_us, NOW_US - 50);
    assert_int_equal(f->transfers[0].created_us, NOW_US);
    assert_int_equal(f->accounts[a].last_effective_us, NOW_US - 50);
    assert_int_equal(f->accounts[b].last_effective_us, NOW_US - 50);

    /* a's last entry is now at NOW - 50 too. */
    next_run(f);
    op = fx_op(f, 1, a, fresh2, 1);
    op->has_effective = true;
    op->effective_us = NOW_US - 51;
    assert_int_equal(run_one(f, op), STATUS_BACKDATED);

    /* Equal to now is fine. */
    next_run(f);
    op = fx_op(f, 1, a, b, 1);
    op->has_effective = true;
    op->effective_us = NOW_US;
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->accounts[a].last_effective_us, NOW_US);

    /* Accounts without entries accept any time up to now, even pre-1970. */
    next_run(f);
    op = fx_op(f, 2, fresh1, fresh2, 1);
    op->has_effective = true;
    op->effective_us = INT64_C(-2208988800000000);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_int_equal(f->entries[0].effective_us, INT64_C(-2208988800000000));
    assert_int_equal(f->accounts[fresh1].last_effective_us, INT64_C(-2208988800000000));

    /* Before amount_overflow and insufficient_funds. */
    next_run(f);
    op = fx_op(f, 3, a, b, 1000);
    op->has_effective = true;
    op->effective_us = NOW_US + 1;
    assert_int_equal(run_one(f, op), STATUS_BACKDATED);
}

static void test_default_effective(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int c = fx_account(f, "USD", false, 0, 0);

    /* No entries yet: now. */
    struct core_op *op = fx_op(f, 0, a, b, 1);
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_int_equal(f->entries[0].effective_us, NOW_US);

    /* Earlier entries: still now. */
    next_run(f);
    f->accounts[a].last_effective_us = NOW_US - 5;
    op = fx_op(f, 1, a, b, 1);
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_int_equal(f->entries[0].effective_us, NOW_US);

    /* Another process's clock ran ahead on the debit side: never go back. */
    next_run(f);
    f->accounts[a].last_effective_us = NOW_US + 500;
    op = fx_op(f, 2, a, c, 1);
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_int_equal(f->entries[0].effective_us, NOW_US + 500);
    assert_int_equal(f->entries[1].effective_us, NOW_US + 500);
    assert_int_equal(f->entries[0].created_us, NOW_US);
    assert_int_equal(f->transfers[2].effective_us, NOW_US + 500);
    assert_int_equal(f->transfers[2].created_us, NOW_US);
    assert_int_equal(f->accounts[c].last_effective_us, NOW_US + 500);

    /* ... and on the credit side. */
    next_run(f);
    f->accounts[b].last_effective_us = NOW_US + 700;
    op = fx_op(f, 3, a, b, 1);
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_int_equal(f->entries[0].effective_us, NOW_US + 700);
    assert_int_equal(f->accounts[a].last_effective_us, NOW_US + 700);

    /* With a last entry after now, no explicit effective_at can pass. */
    next_run(f);
    op = fx_op(f, 4, a, b, 1);
    op->has_effective = true;
    op->effective_us = NOW_US;
    assert_int_equal(run_one(f, op), STATUS_BACKDATED);
    next_run(f);
    op = fx_op(f, 4, a, b, 1);
    op->has_effective = true;
    op->effective_us = NOW_US + 700;
    assert_int_equal(run_one(f, op), STATUS_BACKDATED);
}

static void test_amount_overflow(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int full = fx_account(f, "USD", false, 0, AMOUNT_MAX);
    int deep = fx_account(f, "USD", true, 0, AMOUNT_MIN + 5);
    int sink = fx_account(f, "USD", false, 0, 0);
    int poor = fx_account(f, "USD", false, 0, 0);
    int at_floor = fx_account(f, "USD", false, AMOUNT_MIN, AMOUNT_MIN + 1);
    int in_full = fx_account(f, "USD", false, 0, 0);
    int out_full = fx_account(f, "USD", true, 0, 0);
    int near = fx_account(f, "USD", false, 0, AMOUNT_MAX - 10);
    int deep2 = fx_account(f, "USD", true, 0, AMOUNT_MIN + 5);
    f->accounts[in_full].pending_in = AMOUNT_MAX;
    f->accounts[out_full].pending_out = AMOUNT_MAX;

    struct core_op *op = fx_op(f, 0, issuer, full, 1);
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    next_run(f);
    op = fx_op(f, 0, issuer, full, AMOUNT_MAX);
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    /* Debit of an unbounded account below AMOUNT_MIN. */
    next_run(f);
    op = fx_op(f, 0, deep, sink, 6);
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    /* Before insufficient_funds: poor has nothing, full has no room. */
    next_run(f);
    op = fx_op(f, 0, poor, full, 1);
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    /* A bounded account whose min_balance is AMOUNT_MIN. */
    next_run(f);
    op = fx_op(f, 0, at_floor, sink, 2);
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    /* Pending figures overflow too. */
    next_run(f);
    op = fx_op(f, 0, issuer, in_full, 1);
    op->pending = true;
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    next_run(f);
    op = fx_op(f, 0, out_full, sink, 1);
    op->pending = true;
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    /* So does available = balance - pending_out, unbounded or not: the
     * balance stays in range, available would not. */
    next_run(f);
    op = fx_op(f, 0, deep2, sink, 6);
    op->pending = true;
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);
    next_run(f);
    op = fx_op(f, 3, deep2, sink, 5);
    op->pending = true;
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[deep2].pending_out, 5);
    next_run(f);
    op = fx_op(f, 4, deep2, sink, 1);
    assert_int_equal(run_one(f, op), STATUS_AMOUNT_OVERFLOW);

    /* The exact limits are reachable. */
    next_run(f);
    op = fx_op(f, 0, deep, sink, 5);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[deep].balance, AMOUNT_MIN);
    assert_i128_equal(f->entries[0].balance, AMOUNT_MIN);
    next_run(f);
    op = fx_op(f, 1, issuer, near, 10);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[near].balance, AMOUNT_MAX);
    assert_i128_equal(f->entries[1].balance, AMOUNT_MAX);
    next_run(f);
    op = fx_op(f, 2, at_floor, sink, 1);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[at_floor].balance, AMOUNT_MIN);
}

static void test_insufficient_funds(void **state)
{
    struct fx *f = *state;
    int sink = fx_account(f, "USD", false, 0, 0);
    int zero_min = fx_account(f, "USD", false, 0, 100);
    int overdraft = fx_account(f, "USD", false, -500, 100);
    int unbounded = fx_account(f, "USD", true, 0, 0);
    int reserved = fx_account(f, "USD", false, 0, 100);
    int positive_min = fx_account(f, "USD", false, 50, 100);
    int pend = fx_account(f, "USD", false, 0, 100);
    int low = fx_account(f, "USD", false, AMOUNT_MIN, AMOUNT_MIN + 10);
    int below = fx_account(f, "USD", false, 0, -10); /* already below its min */
    f->accounts[reserved].pending_out = 60;

    static const struct {
        int from; /* index into the slots above, resolved below */
        i128 amount;
        bool pending;
        enum status want;
    } rows[] = {
        {1, 101, false, STATUS_INSUFFICIENT_FUNDS},
        {1, 100, false, STATUS_OK},
        {1, 1, false, STATUS_INSUFFICIENT_FUNDS},
        {2, 601, false, STATUS_INSUFFICIENT_FUNDS},
        {2, 600, false, STATUS_OK}, /* exactly to the overdraft limit */
        {2, 1, false, STATUS_INSUFFICIENT_FUNDS},
        {3, 1000000000000, false, STATUS_OK},
        {3, AMOUNT_MAX / 2, false, STATUS_OK},
        {4, 41, false, STATUS_INSUFFICIENT_FUNDS}, /* pending_out counts */
        {4, 40, false, STATUS_OK},
        {4, 1, true, STATUS_INSUFFICIENT_FUNDS},
        {5, 51, false, STATUS_INSUFFICIENT_FUNDS},
        {5, 50, false, STATUS_OK},
        {6, 101, true, STATUS_INSUFFICIENT_FUNDS},
        {6, 100, true, STATUS_OK},
        {6, 1, false, STATUS_INSUFFICIENT_FUNDS}, /* the reservation counts */
        {6, 1, true, STATUS_INSUFFICIENT_FUNDS},
        /* available = balance - pending_out below the i128 range: a
         * figure that cannot be written, so amount_overflow first */
        {7, 11, true, STATUS_AMOUNT_OVERFLOW},
        {7, 10, true, STATUS_OK},
        {8, 1, false, STATUS_INSUFFICIENT_FUNDS},
    };
    const int slots[] = {sink, zero_min, overdraft, unbounded, reserved, positive_min, pend, low};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        int from = rows[i].from == 8 ? below : slots[rows[i].from];
        struct core_op *op = fx_op(f, (int)i, from, sink, rows[i].amount);
        op->pending = rows[i].pending;
        if (run_one(f, op) != rows[i].want)
            fail_msg("row %zu: %s, want %s", i, status_code(op->status), status_code(rows[i].want));
    }
    assert_i128_equal(f->accounts[zero_min].balance, 0);
    assert_i128_equal(f->accounts[overdraft].balance, -500);
    assert_i128_equal(f->accounts[unbounded].balance, -(i128)1000000000000 - AMOUNT_MAX / 2);
    assert_i128_equal(f->accounts[reserved].balance, 60);
    assert_i128_equal(f->accounts[reserved].pending_out, 60);
    assert_i128_equal(f->accounts[positive_min].balance, 50);
    assert_i128_equal(f->accounts[pend].balance, 100);
    assert_i128_equal(f->accounts[pend].pending_out, 100);
    assert_i128_equal(f->accounts[low].pending_out, 10);

    /* A credit is never refused for funds, even to an account below its
     * min_balance. */
    next_run(f);
    struct core_op *op = fx_op(f, 30, unbounded, below, 5);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[below].balance, -5);

    /* min_balance means nothing on an unbounded account, whatever it holds. */
    int stale = fx_account(f, "USD", true, 0, 0);
    f->accounts[stale].min_balance = 1000;
    next_run(f);
    op = fx_op(f, 31, stale, sink, 5);
    assert_int_equal(run_one(f, op), STATUS_OK);
    assert_i128_equal(f->accounts[stale].balance, -5);
}

static void test_pending(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 7);
    f->accounts[b].pending_out = 3;
    struct core_op *op = fx_op(f, 0, a, b, 30);
    op->pending = true;
    fx_run(f);
    assert_int_equal(op->status, STATUS_OK);
    assert_false(op->replayed);
    assert_int_equal(f->b.n_entries, 2);
    assert_entry(&f->entries[0], .account = a, .transfer = 0, .seq = 1, .kind = ENTRY_PENDING,
                 .amount = 0, .pending_change = 30, .balance = 100, .pending_out = 30,
                 .pending_in = 0, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[1], .account = b, .transfer = 0, .seq = 1, .kind = ENTRY_PENDING,
                 .amount = 0, .pending_change = 30, .balance = 7, .pending_out = 3,
                 .pending_in = 30, .effective_us = NOW_US, .created_us = NOW_US);
    assert_i128_equal(f->accounts[a].balance, 100);
    assert_i128_equal(f->accounts[a].pending_out, 30);
    assert_i128_equal(f->accounts[a].pending_in, 0);
    assert_i128_equal(f->accounts[b].balance, 7);
    assert_i128_equal(f->accounts[b].pending_in, 30);
    assert_i128_equal(f->accounts[b].pending_out, 3);
    const struct core_transfer *t = &f->transfers[0];
    assert_true(t->exists && t->created && t->pending);
    assert_int_equal(t->state, TRANSFER_PENDING);
    assert_i128_equal(t->amount, 30);
    assert_i128_equal(t->from_balance, 100);
    assert_i128_equal(t->to_balance, 7);
    assert_int_equal(t->from_seq, 1);
    assert_int_equal(t->to_seq, 1);

    /* A later debit sees the reduced available (70), posted or pending. */
    next_run(f);
    struct core_op *too_much = fx_op(f, 1, a, b, 71);
    struct core_op *too_much_pending = fx_op(f, 2, a, b, 71);
    too_much_pending->pending = true;
    struct core_op *replay = fx_op(f, 0, a, b, 30);
    replay->pending = true;
    struct core_op *rest = fx_op(f, 3, a, b, 70);
    struct core_op *nothing_left = fx_op(f, 4, a, b, 1);
    nothing_left->pending = true;
    fx_run(f);
    assert_int_equal(too_much->status, STATUS_INSUFFICIENT_FUNDS);
    assert_int_equal(too_much_pending->status, STATUS_INSUFFICIENT_FUNDS);
    assert_int_equal(replay->status, STATUS_OK);
    assert_true(replay->replayed);
    assert_int_equal(rest->status, STATUS_OK);
    assert_false(rest->replayed);
    assert_int_equal(nothing_left->status, STATUS_INSUFFICIENT_FUNDS);
    assert_int_equal(f->b.n_entries, 2);
    assert_entry(&f->entries[0], .account = a, .transfer = 3, .seq = 2, .kind = ENTRY_POSTED,
                 .amount = -70, .pending_change = 0, .balance = 30, .pending_out = 30,
                 .pending_in = 0, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[1], .account = b, .transfer = 3, .seq = 2, .kind = ENTRY_POSTED,
                 .amount = 70, .pending_change = 0, .balance = 77, .pending_out = 3,
                 .pending_in = 30, .effective_us = NOW_US, .created_us = NOW_US);
}

/* One row per adjacent pair of SPEC section 3's order of checks: both
 * errors apply, the earlier one wins. */
static void test_order_of_checks(void **state)
{
    enum { A, B, E, C };
    static const struct {
        const char *what;
        int transfer;
        int from, to;
        const char *same_id; /* both ids, for unknown accounts */
        i128 amount;
        enum amount_parse_result parse;
        const char *currency;
        bool has_expect_from, has_expect_to;
        int64_t expect_from, expect_to;
        bool has_effective;
        int64_t effective;
        enum status want;
    } rows[] = {
        {"syntax > existing id", 0, A, C, NULL, 0, AMOUNT_PARSE_OK, NULL, false, false, 0, 0, false,
         0, STATUS_INVALID_AMOUNT},
        {"syntax (range) > existing id", 0, A, C, NULL, 10, AMOUNT_PARSE_RANGE, NULL, false, false,
         0, 0, false, 0, STATUS_INVALID_AMOUNT},
        {"existing id > same_account", 0, A, A, NULL, 10, AMOUNT_PARSE_OK, NULL, false, false, 0, 0,
         false, 0, STATUS_ID_CONFLICT},
        {"replay > seq, backdated, funds", 0, A, C, NULL, 10, AMOUNT_PARSE_OK, "USD", true, true, 1,
         1, true, NOW_US + 5, STATUS_OK},
        {"same_account > account_not_found", 1, -1, -1, "ghost", 10, AMOUNT_PARSE_OK, NULL, false,
         false, 0, 0, false, 0, STATUS_SAME_ACCOUNT},
        {"account_not_found > currency_mismatch", 1, E, -1, NULL, 10, AMOUNT_PARSE_OK, "USD", false,
         false, 0, 0, false, 0, STATUS_ACCOUNT_NOT_FOUND},
        {"currency_mismatch > seq_mismatch", 1, A, E, NULL, 10, AMOUNT_PARSE_OK, NULL, true, false,
         99, 0, false, 0, STATUS_CURRENCY_MISMATCH},
        {"seq_mismatch > backdated", 1, A, C, NULL, 10, AMOUNT_PARSE_OK, NULL, false, true, 0, 5,
         true, NOW_US + 1, STATUS_SEQ_MISMATCH},
        {"backdated > amount_overflow", 1, A, B, NULL, 1, AMOUNT_PARSE_OK, NULL, false, false, 0, 0,
         true, NOW_US - 200, STATUS_BACKDATED},
        {"amount_overflow > insufficient_funds", 1, A, B, NULL, 1000, AMOUNT_PARSE_OK, NULL, false,
         false, 0, 0, false, 0, STATUS_AMOUNT_OVERFLOW},
        {"insufficient_funds", 1, A, C, NULL, 101, AMOUNT_PARSE_OK, NULL, true, true, 3, 0, true,
         NOW_US, STATUS_INSUFFICIENT_FUNDS},
    };
    struct fx *f = *state;
    fx_account(f, "USD", false, 0, 100);        /* A */
    fx_account(f, "USD", false, 0, AMOUNT_MAX); /* B */
    fx_account(f, "EUR", false, 0, 100);        /* E */
    fx_account(f, "USD", false, 0, 0);          /* C */
    f->accounts[A].seq = 3;
    f->accounts[A].last_effective_us = NOW_US - 100;
    fx_existing(f, 0, A, C, 10, false);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        next_run(f);
        struct core_op *op = fx_op(f, rows[i].transfer, rows[i].from, rows[i].to, rows[i].amount);
        if (rows[i].same_id != NULL)
            op->from_id = op->to_id = rows[i].same_id;
        op->amount_parse = rows[i].parse;
        if (rows[i].currency != NULL) {
            op->has_currency = true;
            strcpy(op->currency, rows[i].currency);
        }
        op->has_expect_from_seq = rows[i].has_expect_from;
        op->has_expect_to_seq = rows[i].has_expect_to;
        op->expect_from_seq = rows[i].expect_from;
        op->expect_to_seq = rows[i].expect_to;
        op->has_effective = rows[i].has_effective;
        op->effective_us = rows[i].effective;
        struct snap s;
        take_snap(f, &s);
        fx_run(f);
        if (op->status != rows[i].want)
            fail_msg("%s: got %s", rows[i].what, status_code(op->status));
        assert_int_equal(f->b.n_entries, 0);
        assert_unchanged(f, &s);
    }
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int run_apply_tests(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_post_ok),
        FX_TEST(test_post_with_currency_and_expect),
        cmocka_unit_test(test_check_amount_accepts),
        FX_TEST(test_amount_max_is_valid),
        FX_TEST(test_invalid_amount),
        FX_TEST(test_replay_and_id_conflict),
        FX_TEST(test_replay_of_pending),
        FX_TEST(test_replay_with_missing_account_vs_id_1),
        FX_TEST(test_same_account),
        FX_TEST(test_account_not_found),
        FX_TEST(test_currency_mismatch),
        FX_TEST(test_seq_mismatch),
        FX_TEST(test_backdated),
        FX_TEST(test_default_effective),
        FX_TEST(test_amount_overflow),
        FX_TEST(test_insufficient_funds),
        FX_TEST(test_pending),
        FX_TEST(test_order_of_checks),
    };
    return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
