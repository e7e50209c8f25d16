/*
 * main.c - runs every unit test group: the core module, the http
 * module's response writer and its big-integer pass, the engine's
 * queue and account cache, and the store's binary COPY encoding.
 *
 * Exit status: 0 when every test passed, 1 otherwise.
 */
#include <stdio.h>

#include "tests.h"

int main(void)
{
    int (*const groups[])(void) = {
        run_amount_tests,    run_validate_tests,      run_status_tests,       run_apply_tests,
        run_batch_tests,     run_account_spec_tests,  run_model_tests,        run_cost_tests,
        run_pending_tests,   run_json_writer_tests,   run_json_numbers_tests, run_queue_tests,
        run_pg_binary_tests, run_account_cache_tests,
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        failed += groups[i]();
    if (failed != 0)
        fprintf(stderr, "unit tests: %d failed\n", failed);
    return failed != 0;
}
