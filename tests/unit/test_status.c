/*
 * test_status.c - the result code table (status.def) against SPEC section 3.
 */
#include <string.h>

#include "tests.h"

struct status_row {
    enum status status;
    int number; /* stable, never reused */
    const char *code;
    int http;
};

/* Written from SPEC section 3 (error list and transfer error table); the
 * codes the SPEC does not list (unauthorized, not_found, method_not_allowed,
 * internal, ok) carry their usual HTTP meaning. */
static const struct status_row expected[] = {
    {STATUS_OK, 0, "ok", 200},
    {STATUS_INVALID_REQUEST, 1, "invalid_request", 400},
    {STATUS_INVALID_AMOUNT, 2, "invalid_amount", 400},
    {STATUS_BATCH_TOO_LARGE, 3, "batch_too_large", 400},
    {STATUS_BODY_TOO_LARGE, 4, "body_too_large", 413},
    {STATUS_UNAUTHORIZED, 5, "unauthorized", 401},
    {STATUS_NOT_FOUND, 6, "not_found", 404},
    {STATUS_METHOD_NOT_ALLOWED, 7, "method_not_allowed", 405},
    {STATUS_HEAD_TOO_LARGE, 8, "invalid_request", 431},
    {STATUS_UNSUPPORTED_CODING, 9, "invalid_request", 501},
    {STATUS_ID_CONFLICT, 10, "id_conflict", 409},
    {STATUS_SAME_ACCOUNT, 11, "same_account", 422},
    {STATUS_ACCOUNT_NOT_FOUND, 12, "account_not_found", 404},
    {STATUS_CURRENCY_MISMATCH, 13, "currency_mismatch", 422},
    {STATUS_SEQ_MISMATCH, 14, "seq_mismatch", 409},
    {STATUS_BACKDATED, 15, "backdated", 422},
    {STATUS_MISSING_UNIT_COST, 16, "missing_unit_cost", 422},
    {STATUS_AMOUNT_OVERFLOW, 17, "amount_overflow", 422},
    {STATUS_INSUFFICIENT_FUNDS, 18, "insufficient_funds", 422},
    {STATUS_BATCH_FAILED, 19, "batch_failed", 422},
    {STATUS_PENDING_NOT_FOUND, 20, "pending_not_found", 404},
    {STATUS_PENDING_EXPIRED, 21, "pending_expired", 409},
    {STATUS_EXCEEDS_PENDING, 22, "exceeds_pending", 422},
    {STATUS_ALREADY_POSTED, 23, "already_posted", 409},
    {STATUS_ALREADY_VOIDED, 24, "already_voided", 409},
    {STATUS_UNTRACKED_UNIT_COST, 25, "invalid_request", 400},
    {STATUS_ACCOUNT_EXISTS, 30, "account_exists", 409},
    {STATUS_TRANSFER_NOT_FOUND, 31, "transfer_not_found", 404},
    {STATUS_UNAVAILABLE, 40, "unavailable", 503},
    {STATUS_INTERNAL, 41, "internal", 500},
};

#define N_EXPECTED (sizeof expected / sizeof expected[0])

static void test_rows_match_spec(void **state)
{
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const struct status_row *r = &expected[i];
        if ((int)r->status != r->number)
            fail_msg("%s: number %d, want %d", r->code, (int)r->status, r->number);
        if (strcmp(status_code(r->status), r->code) != 0)
            fail_msg("status %d: code \"%s\", want \"%s\"", r->number, status_code(r->status),
                     r->code);
        if (status_http(r->status) != r->http)
            fail_msg("%s: HTTP %d, want %d", r->code, status_http(r->status), r->http);
    }
}

/* Every row of status.def is in the table above, and nothing else is. */
static void test_def_has_no_other_rows(void **state)
{
    size_t rows = 0;
#define X(NAME, NUM, CODE, HTTP, MESSAGE)                                                          \
    do {                                                                                           \
        rows++;                                                                                    \
        bool found = false;                                                                        \
        for (size_t i = 0; i < N_EXPECTED; i++)                                                    \
            if (expected[i].number == (NUM)) {                                                     \
                assert_string_equal(expected[i].code, (CODE));                                     \
                assert_int_equal(expected[i].http, (HTTP));                                        \
                assert_string_equal(status_message(STATUS_##NAME), (MESSAGE));                     \
                found = true;                                                                      \
            }                                                                                      \
        if (!found)                                                                                \
            fail_msg("status.def row %s (%d) not checked against the SPEC", #NAME, (NUM));         \
    } while (0);
#include "core/status.def"
#undef X
    assert_int_equal(rows, N_EXPECTED);
}

/* Numbers are unique; so are codes, but for invalid_request, which SPEC
 * gives many causes: a cause core finds has its own row, for its message. */
static void test_codes_and_numbers_unique(void **state)
{
    for (size_t i = 0; i < N_EXPECTED; i++)
        for (size_t j = i + 1; j < N_EXPECTED; j++) {
            assert_int_not_equal(expected[i].status, expected[j].status);
            if (strcmp(expected[i].code, "invalid_request") != 0)
                assert_string_not_equal(status_code(expected[i].status),
                                        status_code(expected[j].status));
            else
                assert_string_not_equal(status_message(expected[i].status),
                                        status_message(expected[j].status));
        }
}

static void test_messages(void **state)
{
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const char *msg = status_message(expected[i].status);
        assert_non_null(msg);
        if (strlen(msg) == 0)
            fail_msg("%s: empty message", expected[i].code);
    }
}

static void test_unknown_status(void **state)
{
    /* Numbers never assigned fall back to "internal" / 500. */
    const int unused[] = {26, 27, 28, 29, 32, 39, 42, 1000, -1};
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++) {
        assert_string_equal(status_code((enum status)unused[i]), "internal");
        assert_int_equal(status_http((enum status)unused[i]), 500);
        assert_string_equal(status_message((enum status)unused[i]), "internal error");
    }
}

/* The names the journal stores for transfer states read back as the same
 * state, and nothing else reads as one. */
static void test_transfer_state_names_round_trip(void **state)
{
    const char *names[] = {"posted", "pending", "voided", "expired"};
    for (enum transfer_state s = TRANSFER_POSTED; s <= TRANSFER_EXPIRED; s++) {
        assert_string_equal(transfer_state_name(s), names[s - TRANSFER_POSTED]);
        enum transfer_state back = 0;
        assert_true(transfer_state_from_name(names[s - TRANSFER_POSTED], &back));
        assert_int_equal(back, s);
    }
    enum transfer_state unused = TRANSFER_POSTED;
    assert_false(transfer_state_from_name("", &unused));
    assert_false(transfer_state_from_name("Posted", &unused));
    assert_false(transfer_state_from_name("post_pending", &unused));
    assert_int_equal(unused, TRANSFER_POSTED);
}

int run_status_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_match_spec),
        cmocka_unit_test(test_def_has_no_other_rows),
        cmocka_unit_test(test_codes_and_numbers_unique),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_unknown_status),
        cmocka_unit_test(test_transfer_state_names_round_trip),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
