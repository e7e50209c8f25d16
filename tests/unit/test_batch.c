/*
 * test_batch.c - batch semantics of core_apply_batch (SPEC section 3,
 * "Atomic batches"): request order, atomic rollback, repeated ids, several
 * requests in one batch.
 */
#include <string.h>

#include "tests.h"

/* Each account's entries carry seq previous + 1 and balance previous +
 * amount, starting from the given state; the account ends at its last entry. */
static void check_entry_chains(const struct fx *f, const struct core_account *before)
{
    for (int a = 0; a < f->n_accounts; a++) {
        int64_t seq = before[a].seq;
        i128 balance = before[a].balance;
        i128 pending_out = before[a].pending_out, pending_in = before[a].pending_in;
        for (int i = 0; i < f->b.n_entries; i++) {
            const struct core_entry *e = &f->entries[i];
            if (e->account != a)
                continue;
            assert_int_equal(e->seq, seq + 1);
            assert_i128_equal(e->balance, balance + e->amount);
            if (i % 2 == 0) {
                assert_i128_equal(e->pending_out, pending_out + e->pending_change);
                assert_i128_equal(e->pending_in, pending_in);
            } else {
                assert_i128_equal(e->pending_in, pending_in + e->pending_change);
                assert_i128_equal(e->pending_out, pending_out);
            }
            seq = e->seq;
            balance = e->balance;
            pending_out = e->pending_out;
            pending_in = e->pending_in;
        }
        assert_int_equal(f->accounts[a].seq, seq);
        assert_i128_equal(f->accounts[a].balance, balance);
        assert_i128_equal(f->accounts[a].pending_out, pending_out);
        assert_i128_equal(f->accounts[a].pending_in, pending_in);
    }
}

static void test_non_atomic_middle_fails(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int c = fx_account(f, "USD", false, 0, 0);
    struct core_account before[FX_ACCOUNTS];
    memcpy(before, f->accounts, sizeof before);
    fx_op(f, 0, a, b, 30);
    fx_op(f, 1, a, c, 500);
    fx_op(f, 2, a, -1, 5);
    fx_op(f, 3, a, c, 20);
    fx_request(f, 0, 4, false);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_INSUFFICIENT_FUNDS, STATUS_ACCOUNT_NOT_FOUND, STATUS_OK);
    assert_int_equal(f->b.n_entries, 4);
    assert_entry(&f->entries[0], .account = a, .transfer = 0, .seq = 1, .kind = ENTRY_POSTED,
                 .amount = -30, .balance = 70, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[1], .account = b, .transfer = 0, .seq = 1, .kind = ENTRY_POSTED,
                 .amount = 30, .balance = 30, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[2], .account = a, .transfer = 3, .seq = 2, .kind = ENTRY_POSTED,
                 .amount = -20, .balance = 50, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[3], .account = c, .transfer = 3, .seq = 1, .kind = ENTRY_POSTED,
                 .amount = 20, .balance = 20, .effective_us = NOW_US, .created_us = NOW_US);
    assert_true(f->transfers[0].exists);
    assert_false(f->transfers[1].exists);
    assert_false(f->transfers[2].exists);
    assert_true(f->transfers[3].exists);
    assert_int_equal(f->transfers[3].from_seq, 2);
    check_entry_chains(f, before);
}

static void test_later_sees_earlier(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int a = fx_account(f, "USD", false, 0, 0);
    int b = fx_account(f, "USD", false, 0, 0);
    struct core_account before[FX_ACCOUNTS];
    memcpy(before, f->accounts, sizeof before);
    /* Spend before funding fails; fund then spend works; then empty. */
    fx_op(f, 0, a, b, 100);
    fx_op(f, 1, issuer, a, 100);
    fx_op(f, 2, a, b, 100);
    fx_op(f, 3, a, b, 1);
    fx_request(f, 0, 4, false);
    /* The same in an atomic request, without the failures. */
    fx_op(f, 4, issuer, a, 40);
    fx_op(f, 5, a, b, 25);
    fx_op(f, 6, b, a, 125);
    fx_request(f, 4, 3, true);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_INSUFFICIENT_FUNDS, STATUS_OK, STATUS_OK, STATUS_INSUFFICIENT_FUNDS,
                    STATUS_OK, STATUS_OK, STATUS_OK);
    assert_int_equal(f->b.n_entries, 10);
    assert_i128_equal(f->accounts[issuer].balance, -140);
    assert_i128_equal(f->accounts[a].balance, 140);
    assert_i128_equal(f->accounts[b].balance, 0);
    assert_int_equal(f->accounts[a].seq, 5);
    assert_int_equal(f->accounts[b].seq, 3);
    assert_int_equal(f->accounts[issuer].seq, 2);
    check_entry_chains(f, before);
}

static void test_atomic_one_fails_changes_nothing(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, -1000);
    int a = fx_account(f, "USD", false, -50, 100);
    int b = fx_account(f, "USD", false, 0, 900);
    int c = fx_account(f, "USD", false, 0, 0);
    /* A state that is not all zeros, so a partial restore would show. */
    f->accounts[a].seq = 11;
    f->accounts[a].last_effective_us = NOW_US - 3;
    f->accounts[a].pending_out = 20;
    f->accounts[b].seq = 4;
    f->accounts[b].pending_in = 20;
    f->accounts[b].last_effective_us = NOW_US - 7;
    f->accounts[issuer].seq = 2;
    f->accounts[issuer].last_effective_us = NOW_US - 9;
    fx_existing(f, 5, issuer, b, 900, false);
    fx_existing(f, 6, a, b, 20, true);

    fx_op(f, 0, issuer, a, 50);   /* ok */
    fx_op(f, 1, a, b, 180);       /* ok only thanks to op 0 and the overdraft */
    fx_op(f, 5, issuer, b, 900);  /* replay: fine */
    fx_op(f, 2, b, c, 1080);      /* ok */
    fx_op(f, 3, a, c, 1);         /* insufficient now */
    fx_op(f, 4, c, issuer, 1080); /* ok */
    fx_request(f, 0, 6, true);

    struct core_account accounts_before[FX_ACCOUNTS];
    struct core_transfer transfers_before[FX_TRANSFERS];
    memcpy(accounts_before, f->accounts, sizeof accounts_before);
    memcpy(transfers_before, f->transfers, sizeof transfers_before);
    fx_run(f);

    EXPECT_STATUSES(f, STATUS_BATCH_FAILED, STATUS_BATCH_FAILED, STATUS_BATCH_FAILED,
                    STATUS_BATCH_FAILED, STATUS_INSUFFICIENT_FUNDS, STATUS_BATCH_FAILED);
    for (int i = 0; i < f->n_ops; i++)
        assert_false(f->ops[i].replayed);
    assert_int_equal(f->b.n_entries, 0);
    assert_memory_equal(f->accounts, accounts_before, sizeof accounts_before);
    assert_memory_equal(f->transfers, transfers_before, sizeof transfers_before);
    assert_false(f->accounts[c].touched);
}

static void test_atomic_several_fail(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int e = fx_account(f, "EUR", false, 0, 0);
    fx_existing(f, 9, a, b, 1, false);
    fx_op(f, 0, a, b, 10);
    fx_op(f, 1, a, b, 1000);
    fx_op(f, 2, b, a, 5);
    fx_op(f, 3, a, -1, 5);
    fx_op(f, 4, a, a, 5);
    fx_op(f, 5, a, e, 5);
    fx_op(f, 9, a, b, 2);
    fx_op(f, 6, a, b, 0);
    fx_request(f, 0, 8, true);
    struct core_account accounts_before[FX_ACCOUNTS];
    memcpy(accounts_before, f->accounts, sizeof accounts_before);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_BATCH_FAILED, STATUS_INSUFFICIENT_FUNDS, STATUS_BATCH_FAILED,
                    STATUS_ACCOUNT_NOT_FOUND, STATUS_SAME_ACCOUNT, STATUS_CURRENCY_MISMATCH,
                    STATUS_ID_CONFLICT, STATUS_INVALID_AMOUNT);
    assert_int_equal(f->b.n_entries, 0);
    assert_memory_equal(f->accounts, accounts_before, sizeof accounts_before);
    for (int t = 0; t < 9; t++)
        assert_false(f->transfers[t].exists);
}

static void test_atomic_single_failure_keeps_own_error(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 0);
    int b = fx_account(f, "USD", false, 0, 0);
    fx_op(f, 0, a, b, 1);
    fx_request(f, 0, 1, true);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_INSUFFICIENT_FUNDS);
    assert_int_equal(f->b.n_entries, 0);
}

static void test_atomic_all_ok(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int a = fx_account(f, "USD", false, 0, 0);
    int b = fx_account(f, "USD", false, 0, 0);
    int c = fx_account(f, "USD", false, 0, 0);
    struct core_account before[FX_ACCOUNTS];
    memcpy(before, f->accounts, sizeof before);
    fx_op(f, 0, issuer, a, 10);
    fx_op(f, 1, a, b, 6);
    fx_op(f, 2, b, c, 6);
    struct core_op *p = fx_op(f, 3, a, c, 4);
    p->pending = true;
    fx_request(f, 0, 4, true);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_OK);
    for (int i = 0; i < 4; i++)
        assert_false(f->ops[i].replayed);
    assert_int_equal(f->b.n_entries, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(f->entries[i].transfer, i / 2);
    assert_i128_equal(f->accounts[issuer].balance, -10);
    assert_i128_equal(f->accounts[a].balance, 4);
    assert_i128_equal(f->accounts[a].pending_out, 4);
    assert_i128_equal(f->accounts[b].balance, 0);
    assert_i128_equal(f->accounts[c].balance, 6);
    assert_i128_equal(f->accounts[c].pending_in, 4);
    for (int t = 0; t < 4; t++)
        assert_true(f->transfers[t].exists && f->transfers[t].created);
    assert_int_equal(f->transfers[3].state, TRANSFER_PENDING);
    assert_int_equal(f->entries[6].kind, ENTRY_PENDING);
    check_entry_chains(f, before);
}

static void test_repeated_id_non_atomic(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int c = fx_account(f, "USD", false, 0, 0);
    fx_op(f, 0, a, b, 10);
    fx_op(f, 0, a, b, 10);
    fx_op(f, 0, a, b, 11);
    fx_op(f, 0, a, c, 10);
    struct core_op *p = fx_op(f, 0, a, b, 10);
    p->pending = true;
    /* A rejected id is not stored: the next use is judged afresh. */
    fx_op(f, 1, a, b, 1000);
    fx_op(f, 1, a, c, 5);
    fx_op(f, 1, a, c, 5);
    fx_request(f, 0, 8, false);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_ID_CONFLICT, STATUS_ID_CONFLICT,
                    STATUS_ID_CONFLICT, STATUS_INSUFFICIENT_FUNDS, STATUS_OK, STATUS_OK);
    const bool replayed[] = {false, true, false, false, false, false, false, true};
    for (int i = 0; i < 8; i++)
        assert_int_equal(f->ops[i].replayed, replayed[i]);
    assert_int_equal(f->b.n_entries, 4);
    assert_i128_equal(f->accounts[a].balance, 85);
    assert_i128_equal(f->accounts[b].balance, 10);
    assert_i128_equal(f->accounts[c].balance, 5);
    assert_i128_equal(f->transfers[1].amount, 5);
    assert_int_equal(f->transfers[1].to_account, 100 + c);
}

static void test_repeated_id_atomic(void **state)
{
    struct fx *f = *state;
    int a = fx_account(f, "USD", false, 0, 100);
    int b = fx_account(f, "USD", false, 0, 0);
    int c = fx_account(f, "USD", false, 0, 0);
    /* Identical repeat: a replay, the request applies. */
    fx_op(f, 0, a, b, 10);
    fx_op(f, 1, b, c, 5);
    fx_op(f, 0, a, b, 10);
    fx_request(f, 0, 3, true);
    /* Different repeat: id_conflict fails the request; the slot is free
     * again afterwards. */
    fx_op(f, 2, a, b, 10);
    fx_op(f, 2, a, b, 11);
    fx_request(f, 3, 2, true);
    /* So a later request may use it with other figures. */
    fx_op(f, 2, a, c, 11);
    fx_request(f, 5, 1, true);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_OK, STATUS_OK, STATUS_BATCH_FAILED, STATUS_ID_CONFLICT,
                    STATUS_OK);
    assert_false(f->ops[0].replayed);
    assert_true(f->ops[2].replayed);
    assert_false(f->ops[3].replayed);
    assert_false(f->ops[5].replayed);
    assert_int_equal(f->b.n_entries, 6);
    assert_int_equal(f->entries[4].transfer, 2);
    assert_int_equal(f->entries[5].account, c);
    assert_i128_equal(f->transfers[2].amount, 11);
    assert_int_equal(f->transfers[2].to_account, 100 + c);
    assert_i128_equal(f->accounts[a].balance, 79);
    assert_i128_equal(f->accounts[b].balance, 5);
    assert_i128_equal(f->accounts[c].balance, 16);
    /* Seqs count only the surviving entries. */
    assert_int_equal(f->accounts[a].seq, 2);
    assert_int_equal(f->accounts[b].seq, 2);
    assert_int_equal(f->accounts[c].seq, 2);
    assert_int_equal(f->entries[4].seq, 2);
}

static void test_failed_atomic_between_successes(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int a = fx_account(f, "USD", false, 0, 0);
    int b = fx_account(f, "USD", false, 0, 0);
    int c = fx_account(f, "USD", false, 0, 0);
    struct core_account before[FX_ACCOUNTS];
    memcpy(before, f->accounts, sizeof before);
    fx_op(f, 0, issuer, a, 100); /* req 0 */
    fx_request(f, 0, 1, false);
    fx_op(f, 1, a, b, 10); /* req 1, atomic, fails */
    fx_op(f, 2, b, c, 10);
    fx_op(f, 3, a, b, 1000);
    fx_request(f, 1, 3, true);
    fx_op(f, 4, a, b, 20); /* req 2 */
    fx_request(f, 4, 1, false);
    fx_op(f, 5, a, b, 30); /* req 3, atomic, ok */
    fx_op(f, 6, b, a, 5);
    fx_request(f, 5, 2, true);
    fx_run(f);
    EXPECT_STATUSES(f, STATUS_OK, STATUS_BATCH_FAILED, STATUS_BATCH_FAILED,
                    STATUS_INSUFFICIENT_FUNDS, STATUS_OK, STATUS_OK, STATUS_OK);
    assert_int_equal(f->b.n_entries, 8);
    const int transfer_of[] = {0, 0, 4, 4, 5, 5, 6, 6};
    for (int i = 0; i < 8; i++)
        assert_int_equal(f->entries[i].transfer, transfer_of[i]);
    assert_entry(&f->entries[2], .account = a, .transfer = 4, .seq = 2, .kind = ENTRY_POSTED,
                 .amount = -20, .balance = 80, .effective_us = NOW_US, .created_us = NOW_US);
    assert_entry(&f->entries[3], .account = b, .transfer = 4, .seq = 1, .kind = ENTRY_POSTED,
                 .amount = 20, .balance = 20, .effective_us = NOW_US, .created_us = NOW_US);
    for (int t = 1; t <= 3; t++)
        assert_false(f->transfers[t].exists);
    assert_int_equal(f->transfers[5].from_seq, 3);
    assert_int_equal(f->transfers[5].to_seq, 2);
    assert_int_equal(f->transfers[6].from_seq, 3);
    assert_int_equal(f->transfers[6].to_seq, 4);
    assert_i128_equal(f->accounts[a].balance, 55);
    assert_i128_equal(f->accounts[b].balance, 45);
    assert_i128_equal(f->accounts[issuer].balance, -100);
    /* Touched by earlier successful requests stays set; c was touched only
     * by the rolled-back request. */
    assert_true(f->accounts[a].touched);
    assert_true(f->accounts[b].touched);
    assert_false(f->accounts[c].touched);
    assert_int_equal(f->accounts[c].seq, 0);
    assert_int_equal(f->accounts[c].last_effective_us, TIME_NONE);
    check_entry_chains(f, before);
}

static void test_seq_consecutive_across_requests(void **state)
{
    struct fx *f = *state;
    int issuer = fx_account(f, "USD", true, 0, 0);
    int a = fx_account(f, "USD", false, 0, 0);
    int b = fx_account(f, "USD", false, 0, 0);
    f->accounts[a].seq = 40;
    f->accounts[a].last_effective_us = NOW_US - 1;
    struct core_account before[FX_ACCOUNTS];
    memcpy(before, f->accounts, sizeof before);
    for (int i = 0; i < 12; i++) {
        if (i % 2 == 0)
            fx_op(f, i, issuer, a, 7 + i);
        else
            fx_op(f, i, a, b, 3 + i);
        fx_request(f, i, 1, i % 3 == 0);
    }
    fx_run(f);
    for (int i = 0; i < 12; i++)
        assert_int_equal(f->ops[i].status, STATUS_OK);
    assert_int_equal(f->b.n_entries, 24);
    int64_t want = 41;
    for (int i = 0; i < 24; i++)
        if (f->entries[i].account == a)
            assert_int_equal(f->entries[i].seq, want++);
    assert_int_equal(f->accounts[a].seq, 52);
    assert_int_equal(f->accounts[b].seq, 6);
    assert_int_equal(f->accounts[issuer].seq, 6);
    check_entry_chains(f, before);
}

static void test_empty_requests(void **state)
{
    struct fx *f = *state;
    fx_account(f, "USD", false, 0, 5);
    fx_request(f, 0, 0, true);
    fx_request(f, 0, 0, false);
    struct core_account before[FX_ACCOUNTS];
    memcpy(before, f->accounts, sizeof before);
    fx_run(f);
    assert_int_equal(f->b.n_entries, 0);
    assert_memory_equal(f->accounts, before, sizeof before);
}

static void test_entries_balanced_checker(void **state)
{
    struct core_entry e[4];
    struct core_batch b = {.entries = e, .n_entries = 0};
    assert_true(core_entries_balanced(&b));

    memset(e, 0, sizeof e);
    e[0] = (struct core_entry){.transfer = 1, .amount = -5};
    e[1] = (struct core_entry){.transfer = 1, .amount = 5};
    b.n_entries = 2;
    assert_true(core_entries_balanced(&b));
    b.n_entries = 1; /* an unpaired entry */
    assert_false(core_entries_balanced(&b));
    b.n_entries = 2;
    e[1].amount = 4;
    assert_false(core_entries_balanced(&b));
    e[1].amount = 5;
    e[1].transfer = 2; /* a pair of two transfers */
    assert_false(core_entries_balanced(&b));
    e[1].transfer = 1;
    e[0].pending_change = 3;
    e[1].pending_change = 3;
    assert_true(core_entries_balanced(&b));
    e[1].pending_change = 2;
    assert_false(core_entries_balanced(&b));
    e[1].pending_change = 3;
    /* A second balanced pair, at the extremes. */
    e[2] = (struct core_entry){.transfer = 2, .amount = -AMOUNT_MAX};
    e[3] = (struct core_entry){.transfer = 2, .amount = AMOUNT_MAX};
    b.n_entries = 4;
    assert_true(core_entries_balanced(&b));
    e[0].amount = AMOUNT_MIN; /* sums leave the i128 range */
    e[1].amount = AMOUNT_MIN;
    assert_false(core_entries_balanced(&b));
}

/* Entries a, b, c, d as the pairs (a, b) and (c, d) of transfers 1 and 2. */
static bool balanced(i128 a, i128 b, i128 c, i128 d, bool pending)
{
    struct core_entry e[4] = {{.transfer = 1}, {.transfer = 1}, {.transfer = 2}, {.transfer = 2}};
    const i128 v[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++) {
        if (pending)
            e[i].pending_change = v[i];
        else
            e[i].amount = v[i];
    }
    struct core_batch batch = {.entries = e, .n_entries = 4};
    return core_entries_balanced(&batch);
}

/* Double entry per transfer: a pair's amounts sum to 0 (debit negative,
 * credit positive) and its pending changes are equal (pending_out of the
 * debited account and pending_in of the credited one move together). A
 * sum that would leave the i128 range is a failure, never a wrap. */
static void test_entries_balanced_per_pair(void **state)
{
    /* Pair 1 sums to MAX + 1; pair 2 to -MAX. */
    assert_false(balanced(AMOUNT_MAX, 1, -AMOUNT_MAX, 0, false));
    /* Pending MAX against 0, then 1 against MAX. */
    assert_false(balanced(AMOUNT_MAX, 0, 1, AMOUNT_MAX, true));
    /* Pending -2 against MAX, then 2 against 0. */
    assert_false(balanced(-2, AMOUNT_MAX, 2, 0, true));
    /* Equal pending changes at the bottom of the range balance. */
    assert_true(balanced(AMOUNT_MIN, AMOUNT_MIN, 0, 0, true));
    assert_true(balanced(-AMOUNT_MAX, AMOUNT_MAX, AMOUNT_MAX, -AMOUNT_MAX, false));
    assert_true(balanced(AMOUNT_MAX, AMOUNT_MAX, AMOUNT_MIN, AMOUNT_MIN, true));

    /* Two unbalanced pairs do not make a balanced batch. */
    assert_false(balanced(-5, 3, -3, 5, false));
    assert_false(balanced(2, 3, 3, 2, true));

    /* An unpaired entry is unbalanced even when it changes nothing. */
    struct core_entry one = {.transfer = 1};
    struct core_batch batch = {.entries = &one, .n_entries = 1};
    assert_false(core_entries_balanced(&batch));
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int run_batch_tests(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_non_atomic_middle_fails),
        FX_TEST(test_later_sees_earlier),
        FX_TEST(test_atomic_one_fails_changes_nothing),
        FX_TEST(test_atomic_several_fail),
        FX_TEST(test_atomic_single_failure_keeps_own_error),
        FX_TEST(test_atomic_all_ok),
        FX_TEST(test_repeated_id_non_atomic),
        FX_TEST(test_repeated_id_atomic),
        FX_TEST(test_failed_atomic_between_successes),
        FX_TEST(test_seq_consecutive_across_requests),
        FX_TEST(test_empty_requests),
        cmocka_unit_test(test_entries_balanced_checker),
        cmocka_unit_test(test_entries_balanced_per_pair),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
