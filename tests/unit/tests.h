/*
 * tests.h - shared declarations of the core unit tests (cmocka).
 *
 * Every test file exposes one run_*_tests() function that runs its group
 * and returns the number of failed tests; main.c runs them all.
 */
#ifndef LEDGER_TESTS_UNIT_TESTS_H
#define LEDGER_TESTS_UNIT_TESTS_H

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

#include "core/amount.h"
#include "core/apply.h"
#include "core/status.h"
#include "core/types.h"
#include "core/validate.h"

int run_amount_tests(void);
int run_validate_tests(void);
int run_status_tests(void);
int run_apply_tests(void);
int run_batch_tests(void);
int run_account_spec_tests(void);
int run_model_tests(void);
int run_cost_tests(void);
int run_pending_tests(void);
int run_json_writer_tests(void);
int run_json_numbers_tests(void);
int run_queue_tests(void);
int run_pg_binary_tests(void);
int run_account_cache_tests(void);

/* cmocka compares integers as uintmax_t: i128 needs its own assertions. */
void check_i128_equal(i128 a, i128 b, const char *a_text, const char *b_text, const char *file,
                      int line);
#define assert_i128_equal(a, b) check_i128_equal((a), (b), #a, #b, __FILE__, __LINE__)

/* Thu Nov 14 2023 22:13:20 UTC: the "now" of the hand-built batches. */
#define NOW_US INT64_C(1700000000000000)

/* A hand-built batch: fixed arrays for the inputs, entries and undo
 * allocated with exactly the documented capacities (2 and 3 per op) so that
 * ASan catches any write past them; fx_run hands core an exact copy of the
 * ops for the same reason. */
#define FX_ACCOUNTS  16
#define FX_TRANSFERS 32
#define FX_OPS       32
#define FX_REQUESTS  16

struct fx {
    struct core_account accounts[FX_ACCOUNTS];
    char names[FX_ACCOUNTS][16];
    struct core_transfer transfers[FX_TRANSFERS];
    struct core_op ops[FX_OPS];
    struct core_transfer results[FX_OPS]; /* ops[i].result */
    struct core_cost unit_costs[FX_OPS];  /* ops[i].unit_cost, if set */
    struct core_request requests[FX_REQUESTS];
    struct core_entry *entries;
    struct core_undo *undo;
    struct core_batch b;
    int n_accounts, n_transfers, n_ops, n_requests;
    int64_t now_us;
};

/* cmocka setup/teardown: *state becomes a zeroed struct fx with now_us =
 * NOW_US. */
int fx_setup(void **state);
int fx_teardown(void **state);

/* Adds an account (store id 100 + slot, client id "acc<slot>", seq 0, no
 * entry yet); returns its slot. */
int fx_account(struct fx *f, const char *currency, bool unbounded, i128 min_balance, i128 balance);
/* Adds a posted transfer op amount from -> to using transfer slot t (slot
 * -1 for an account: "no such account"); status/replayed hold sentinels. */
struct core_op *fx_op(struct fx *f, int t, int from, int to, i128 amount);
/* Gives op (of f) a unit_cost: a copy of cost that f keeps. */
void fx_unit_cost(struct fx *f, struct core_op *op, struct core_cost cost);
/* Marks transfer slot t as an existing posted (or pending) transfer from the
 * journal. */
struct core_transfer *fx_existing(struct fx *f, int t, int from, int to, i128 amount, bool pending);
/* Adds a request over ops [first, first + n). */
void fx_request(struct fx *f, int first, int n, bool atomic);
/* Runs core_apply_batch (wrapping all ops in one non-atomic request when no
 * request was added) and asserts core_entries_balanced. */
void fx_run(struct fx *f);

/* Compares every field of an entry with the expected one. */
void check_entry(const struct core_entry *got, const struct core_entry *want, const char *file,
                 int line);
#define assert_entry(got, ...)                                                                     \
    check_entry((got), &(const struct core_entry){__VA_ARGS__}, __FILE__, __LINE__)

/* The accounts and transfers as they were before a run. */
struct snap {
    struct core_account accounts[FX_ACCOUNTS];
    struct core_transfer transfers[FX_TRANSFERS];
};

void take_snap(const struct fx *f, struct snap *s);
/* Asserts that accounts and transfers are byte for byte as in s. */
void assert_unchanged(const struct fx *f, const struct snap *s);
/* Forget the ops and requests of the last run; keep accounts and transfers. */
void next_run(struct fx *f);

/* Asserts the statuses of all ops of the last run, in order. */
void expect_statuses(const struct fx *f, const enum status *want, int n);
#define EXPECT_STATUSES(f, ...)                                                                    \
    expect_statuses((f), (const enum status[]){__VA_ARGS__},                                       \
                    (int)(sizeof((const enum status[]){__VA_ARGS__}) / sizeof(enum status)))

#endif
