/*
 * test_account_spec.c - core_account_spec_equal: idempotent account
 * creation compares currency, min_balance, cost_currencies and metadata by
 * value (SPEC section 3, "Idempotency").
 */
#include <string.h>

#include "tests.h"

static const char *const usd_eur[] = {"USD", "EUR"};

static struct core_account_spec base(void)
{
    return (struct core_account_spec){
        .currency = "TOKEN_A",
        .min_unbounded = false,
        .min_balance = 0,
        .cost_currencies = usd_eur,
        .n_cost_currencies = 2,
    };
}

static void test_equal_specs(void **state)
{
    struct core_account_spec a = base(), b = base();
    assert_true(core_account_spec_equal(&a, &b, true));
    assert_true(core_account_spec_equal(&a, &a, true));

    /* By value, not by pointer: copies of every string. */
    char currency[] = "TOKEN_A", c1[] = "USD", c2[] = "EUR";
    const char *const copies[] = {c1, c2};
    b.currency = currency;
    b.cost_currencies = copies;
    assert_true(core_account_spec_equal(&a, &b, true));
    assert_true(core_account_spec_equal(&b, &a, true));

    /* A set: the same currencies in another order. */
    static const char *const eur_usd[] = {"EUR", "USD"};
    b.cost_currencies = eur_usd;
    assert_true(core_account_spec_equal(&a, &b, true));
    assert_true(core_account_spec_equal(&b, &a, true));

    /* No cost currencies on either side. */
    a.cost_currencies = b.cost_currencies = NULL;
    a.n_cost_currencies = b.n_cost_currencies = 0;
    assert_true(core_account_spec_equal(&a, &b, true));

    /* Large and negative minimums. */
    a.min_balance = b.min_balance = AMOUNT_MIN;
    assert_true(core_account_spec_equal(&a, &b, true));
    a.min_balance = b.min_balance = -500;
    assert_true(core_account_spec_equal(&a, &b, true));
}

static void test_metadata(void **state)
{
    struct core_account_spec a = base(), b = base();
    assert_false(core_account_spec_equal(&a, &b, false));
    assert_false(core_account_spec_equal(&a, &a, false));
}

static void test_currency(void **state)
{
    struct core_account_spec a = base(), b = base();
    b.currency = "TOKEN_B";
    assert_false(core_account_spec_equal(&a, &b, true));
    b.currency = "TOKEN";
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
    b.currency = "token_a";
    assert_false(core_account_spec_equal(&a, &b, true));
}

static void test_min_balance(void **state)
{
    struct core_account_spec a = base(), b = base();
    /* min vs unbounded, both ways, even when the ignored value agrees. */
    b.min_unbounded = true;
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
    /* Different values. */
    b = base();
    b.min_balance = -1;
    assert_false(core_account_spec_equal(&a, &b, true));
    b.min_balance = 1;
    assert_false(core_account_spec_equal(&a, &b, true));
    a.min_balance = AMOUNT_MIN;
    b.min_balance = AMOUNT_MAX;
    assert_false(core_account_spec_equal(&a, &b, true));
    /* Values differing only above 64 bits. */
    a.min_balance = -((i128)1 << 100);
    b.min_balance = -((i128)1 << 100) - ((i128)1 << 64);
    assert_false(core_account_spec_equal(&a, &b, true));
    /* Both unbounded: min_balance carries no meaning. */
    a = base();
    b = base();
    a.min_unbounded = b.min_unbounded = true;
    a.min_balance = 7;
    b.min_balance = -7;
    assert_true(core_account_spec_equal(&a, &b, true));
}

static void test_cost_currencies(void **state)
{
    static const char *const usd[] = {"USD"};
    static const char *const usd_gbp[] = {"USD", "GBP"};
    static const char *const usd_eur_gbp[] = {"USD", "EUR", "GBP"};
    struct core_account_spec a = base(), b = base();
    b.cost_currencies = usd;
    b.n_cost_currencies = 1;
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
    b.cost_currencies = usd_gbp;
    b.n_cost_currencies = 2;
    assert_false(core_account_spec_equal(&a, &b, true));
    b.cost_currencies = usd_eur_gbp;
    b.n_cost_currencies = 3;
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
    b.cost_currencies = NULL;
    b.n_cost_currencies = 0;
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
    /* Sets of the same size that differ only in their first member. */
    static const char *const eur[] = {"EUR"};
    static const char *const gbp_eur[] = {"GBP", "EUR"};
    a.cost_currencies = usd;
    a.n_cost_currencies = 1;
    b.cost_currencies = eur;
    b.n_cost_currencies = 1;
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
    a = base();
    b.cost_currencies = gbp_eur;
    b.n_cost_currencies = 2;
    assert_false(core_account_spec_equal(&a, &b, true));
    assert_false(core_account_spec_equal(&b, &a, true));
}

int run_account_spec_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_specs),     cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_currency),        cmocka_unit_test(test_min_balance),
        cmocka_unit_test(test_cost_currencies),
    };
    return cmocka_run_group_tests_name("account_spec", tests, NULL, NULL);
}
