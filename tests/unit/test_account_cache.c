/*
 * test_account_cache.c - the committers' cache of committed account states
 * (engine/account_cache.c): all-or-nothing lookups, hold-offs after a
 * refused judgement, servers, and replacement within a full set.
 */
#include <stdio.h>
#include <string.h>

#include "tests.h"

#include "engine/account_cache.h"

static struct core_account state(int64_t id, int64_t seq, long long balance)
{
    struct core_account a;
    memset(&a, 0, sizeof a);
    a.id = id;
    a.seq = seq;
    a.balance = balance;
    snprintf(a.currency, sizeof a.currency, "USD");
    a.touched = true; /* as a committed batch leaves it */
    return a;
}

/* A cache of room for capacity accounts, holding server "s1"'s states. */
static void cache_on(struct account_cache *c, unsigned capacity)
{
    assert_int_equal(account_cache_init(c, capacity), 0);
    account_cache_use_server(c, "s1");
}

static void put_one(struct account_cache *c, const char *id, struct core_account a)
{
    const char *ids[] = {id};
    bool found[] = {true};
    account_cache_put(c, "s1", ids, 1, &a, found);
}

static void test_get_all_or_nothing(void **st)
{
    (void)st;
    struct account_cache c;
    cache_on(&c, 1024);
    const char *ids[] = {"alice", "bob"};
    struct core_account s[2] = {state(1, 4, 100), state(2, 9, -5)};
    bool found[] = {true, false};
    account_cache_put(&c, "s1", ids, 2, s, found);

    struct core_account out[2];
    assert_false(account_cache_get_all(&c, "s1", ids, 2, out, 0)); /* bob was not found */
    assert_true(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    assert_int_equal(out[0].id, 1);
    assert_int_equal(out[0].seq, 4);
    assert_i128_equal(out[0].balance, 100);
    assert_false(out[0].touched);

    /* A later put replaces the state. */
    put_one(&c, "alice", state(1, 5, 70));
    put_one(&c, "bob", state(2, 10, 7));
    assert_true(account_cache_get_all(&c, "s1", ids, 2, out, 0));
    assert_int_equal(out[0].seq, 5);
    assert_i128_equal(out[0].balance, 70);
    assert_int_equal(out[1].seq, 10);
    assert_i128_equal(out[1].balance, 7);
    account_cache_destroy(&c);
}

static void test_drop_and_hold(void **st)
{
    (void)st;
    struct account_cache c;
    cache_on(&c, 1024);
    const char *ids[] = {"alice", "bob"};
    struct core_account out[2];
    put_one(&c, "alice", state(1, 1, 1));
    put_one(&c, "bob", state(2, 1, 1));

    account_cache_drop(&c, ids + 1, 1, 0);
    assert_false(account_cache_get_all(&c, "s1", ids, 2, out, 0));
    assert_true(account_cache_get_all(&c, "s1", ids, 1, out, 0));

    /* Held until t = 1000: refused before, even with a state put since. */
    put_one(&c, "bob", state(2, 2, 1));
    account_cache_drop(&c, ids, 2, 1000);
    assert_false(account_cache_get_all(&c, "s1", ids, 1, out, 999));
    put_one(&c, "alice", state(1, 2, 1));
    put_one(&c, "bob", state(2, 3, 1));
    assert_false(account_cache_get_all(&c, "s1", ids, 2, out, 999));
    assert_true(account_cache_get_all(&c, "s1", ids, 2, out, 1000));
    assert_int_equal(out[1].seq, 3);

    /* A drop without a hold keeps an earlier hold. */
    account_cache_drop(&c, ids, 1, 2000);
    account_cache_drop(&c, ids, 1, 0);
    put_one(&c, "alice", state(1, 3, 1));
    assert_false(account_cache_get_all(&c, "s1", ids, 1, out, 1999));
    assert_true(account_cache_get_all(&c, "s1", ids, 1, out, 2000));
    account_cache_destroy(&c);
}

/* The same server again keeps the states; another one forgets them all,
 * holds included, and sessions still on the old one neither get nor put. */
static void test_servers(void **st)
{
    (void)st;
    struct account_cache c;
    assert_int_equal(account_cache_init(&c, 64), 0);
    const char *ids[] = {"alice"};
    struct core_account out[1];
    bool found[] = {true};
    struct core_account a = state(1, 1, 1);
    account_cache_put(&c, "s1", ids, 1, &a, found); /* no server yet: ignored */
    account_cache_use_server(&c, "s1");
    assert_false(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    account_cache_put(&c, "s1", ids, 1, &a, found);
    account_cache_use_server(&c, "s1"); /* a reconnection to the same one */
    assert_true(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    account_cache_drop(&c, ids, 1, 1000);

    account_cache_use_server(&c, "s2");
    assert_false(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    assert_false(account_cache_get_all(&c, "s2", ids, 1, out, 0));
    struct core_account old = state(1, 9, 1);
    account_cache_put(&c, "s1", ids, 1, &old, found); /* a late commit on s1 */
    assert_false(account_cache_get_all(&c, "s2", ids, 1, out, 0));
    struct core_account fresh = state(1, 2, 1);
    account_cache_put(&c, "s2", ids, 1, &fresh, found);
    assert_true(account_cache_get_all(&c, "s2", ids, 1, out, 0)); /* no hold left */
    assert_int_equal(out[0].seq, 2);
    assert_false(account_cache_get_all(&c, "", ids, 1, out, 0));
    account_cache_destroy(&c);
}

/* Two committers' commits may be put out of order: a lower seq never
 * replaces a higher one. */
static void test_older_state_not_put(void **st)
{
    (void)st;
    struct account_cache c;
    cache_on(&c, 64);
    const char *ids[] = {"alice"};
    struct core_account out[1];
    put_one(&c, "alice", state(1, 5, 50));
    put_one(&c, "alice", state(1, 4, 40));
    assert_true(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    assert_int_equal(out[0].seq, 5);
    assert_i128_equal(out[0].balance, 50);
    account_cache_destroy(&c);
}

/* One set of eight: the ninth account replaces the least recently used. */
static void test_replacement(void **st)
{
    (void)st;
    struct account_cache c;
    cache_on(&c, 8);
    assert_int_equal(c.n_sets, 1);
    char names[9][16];
    const char *ids[9];
    for (int i = 0; i < 9; i++) {
        snprintf(names[i], sizeof names[i], "a%d", i);
        ids[i] = names[i];
    }
    for (int i = 0; i < 8; i++)
        put_one(&c, ids[i], state(i + 1, 1, i));
    struct core_account out[9];
    assert_true(account_cache_get_all(&c, "s1", ids, 8, out, 0));
    /* Use all but a3 again, so that a3 is the least recently used. */
    for (int i = 0; i < 8; i++)
        if (i != 3)
            assert_true(account_cache_get_all(&c, "s1", ids + i, 1, out, 0));
    put_one(&c, ids[8], state(9, 1, 8));
    assert_false(account_cache_get_all(&c, "s1", ids + 3, 1, out, 0));
    for (int i = 0; i < 9; i++)
        if (i != 3) {
            assert_true(account_cache_get_all(&c, "s1", ids + i, 1, out, 0));
            assert_int_equal(out[0].id, i + 1);
        }
    account_cache_destroy(&c);
}

/* Ids longer than the cache's keys are never cached, not truncated into
 * another account's key. */
static void test_long_id_not_cached(void **st)
{
    (void)st;
    struct account_cache c;
    cache_on(&c, 64);
    char long_id[ID_LEN_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *ids[] = {long_id};
    put_one(&c, long_id, state(1, 1, 1));
    struct core_account out[1];
    assert_false(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    long_id[ID_LEN_MAX] = '\0';
    assert_false(account_cache_get_all(&c, "s1", ids, 1, out, 0));
    account_cache_destroy(&c);
}

int run_account_cache_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_all_or_nothing),
        cmocka_unit_test(test_drop_and_hold),
        cmocka_unit_test(test_servers),
        cmocka_unit_test(test_older_state_not_put),
        cmocka_unit_test(test_replacement),
        cmocka_unit_test(test_long_id_not_cached),
    };
    return cmocka_run_group_tests_name("account_cache", tests, NULL, NULL);
}
