/*
 * test_queue.c - what a committer takes from the queue (engine/queue.c):
 * order, merge limits, and the requests it skips because another
 * committer's running batch names one of their accounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#include "engine/queue.h"
#include "store/store.h"

/* A queue of two committers and up to QR requests of up to QO ops. */
#define QR 2100
#define QO 700

struct qfx {
    struct engine e;
    struct engine_request req[QR];
    struct engine_op ops[QR][2];
    struct engine_op *big; /* for requests of more than 2 ops */
    int n;
};

static int qfx_setup(void **state)
{
    struct qfx *q = calloc(1, sizeof *q);
    assert_non_null(q);
    pthread_mutex_init(&q->e.lock, NULL);
    pthread_cond_init(&q->e.wake, NULL);
    q->e.queued_ops_max = 1000000;
    q->e.batch_ops_max = 10000;
    q->e.n_committers = 2;
    for (int i = 0; i < 2; i++)
        q->e.committers[i].e = &q->e;
    *state = q;
    return 0;
}

static int qfx_teardown(void **state)
{
    struct qfx *q = *state;
    for (int i = 0; i < 2; i++)
        free(q->e.committers[i].busy_ids);
    free(q->big);
    pthread_mutex_destroy(&q->e.lock);
    pthread_cond_destroy(&q->e.wake);
    free(q);
    return 0;
}

static void set_op(struct engine_op *op, enum op_kind kind, const char *from, const char *to)
{
    memset(op, 0, sizeof *op);
    op->core.kind = kind;
    snprintf(op->from, sizeof op->from, "%s", from);
    snprintf(op->to, sizeof op->to, "%s", to);
}

/* Queues a request of one transfer from -> to; returns it. */
static struct engine_request *submit(struct qfx *q, const char *from, const char *to)
{
    assert_true(q->n < QR);
    struct engine_request *r = &q->req[q->n];
    set_op(&q->ops[q->n][0], OP_TRANSFER, from, to);
    r->ops = q->ops[q->n++];
    r->n_ops = 1;
    assert_int_equal(engine_submit(&q->e, r), ENGINE_QUEUED);
    return r;
}

/* Queues a request of n transfers between accounts named after prefix. */
static struct engine_request *submit_many(struct qfx *q, const char *prefix, int n)
{
    assert_true(q->n < QR && q->big == NULL && n <= QO);
    q->big = calloc((size_t)n, sizeof *q->big);
    assert_non_null(q->big);
    for (int i = 0; i < n; i++) {
        char from[32], to[32];
        snprintf(from, sizeof from, "%s-a%d", prefix, i);
        snprintf(to, sizeof to, "%s-b%d", prefix, i);
        set_op(&q->big[i], OP_TRANSFER, from, to);
    }
    struct engine_request *r = &q->req[q->n++];
    r->ops = q->big;
    r->n_ops = n;
    assert_int_equal(engine_submit(&q->e, r), ENGINE_QUEUED);
    return r;
}

/* Asserts that list holds exactly the given requests, in order. */
static void check_list(struct engine_request *list, struct engine_request *const *want, int n)
{
    int i = 0;
    for (struct engine_request *r = list; r; r = r->next, i++) {
        assert_true(i < n);
        assert_ptr_equal(r, want[i]);
    }
    assert_int_equal(i, n);
}

/* The queue is consistent: head..tail links want, queued_ops counts them. */
static void check_queue(const struct engine *e, struct engine_request *const *want, int n)
{
    int ops = 0;
    for (int i = 0; i < n; i++)
        ops += want[i]->n_ops;
    check_list(e->head, want, n);
    assert_ptr_equal(e->tail, n ? want[n - 1] : NULL);
    assert_int_equal(e->queued_ops, ops);
}

static void takes_everything_in_order_when_no_one_is_busy(void **state)
{
    struct qfx *q = *state;
    struct engine_request *a = submit(q, "x", "y"), *b = submit(q, "x", "y"),
                          *c = submit(q, "y", "z");
    struct engine_request *list = engine_take(&q->e, &q->e.committers[0]);
    check_list(list, (struct engine_request *[]){a, b, c}, 3);
    check_queue(&q->e, NULL, 0);
    assert_null(engine_take(&q->e, &q->e.committers[1]));
}

static void skips_requests_on_accounts_of_the_other_batch(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    struct engine_request *running = submit(q, "shop", "w1");
    struct engine_request *taken = engine_take(&q->e, c0);
    check_list(taken, &running, 1);
    engine_mark_busy(c0, taken, NULL);

    struct engine_request *r1 = submit(q, "w2", "shop"), *r2 = submit(q, "w3", "w4"),
                          *r3 = submit(q, "w1", "w5"), *r4 = submit(q, "w6", "w7");
    struct engine_request *list = engine_take(&q->e, c1);
    check_list(list, (struct engine_request *[]){r2, r4}, 2);
    check_queue(&q->e, (struct engine_request *[]){r1, r3}, 2);

    /* The committer that runs them does not skip its own accounts. */
    check_list(engine_take(&q->e, c0), (struct engine_request *[]){r1, r3}, 2);
    check_queue(&q->e, NULL, 0);
}

/* A committer runs two batches while the second goes ahead of the first:
 * the accounts of both are busy, and those of the first only until it is
 * unpublished. */
static void both_batches_of_a_committer_are_busy(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    submit(q, "a", "b");
    struct engine_request *first = engine_take(&q->e, c0);
    submit(q, "c", "d");
    struct engine_request *second = engine_take(&q->e, c0);
    engine_mark_busy(c0, first, second);

    struct engine_request *r1 = submit(q, "b", "x"), *r2 = submit(q, "y", "c"),
                          *r3 = submit(q, "e", "f");
    check_list(engine_take(&q->e, c1), &r3, 1);
    check_queue(&q->e, (struct engine_request *[]){r1, r2}, 2);

    engine_mark_busy(c0, second, NULL);
    check_list(engine_take(&q->e, c1), &r1, 1);
    check_queue(&q->e, &r2, 1);
}

static void a_request_queued_after_a_skipped_tail_is_linked(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    struct engine_request *running = submit(q, "hot", "w1");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    (void)running;

    struct engine_request *r1 = submit(q, "w2", "hot"), *r2 = submit(q, "w3", "w4");
    check_list(engine_take(&q->e, c1), &r2, 1);
    check_queue(&q->e, &r1, 1);
    struct engine_request *r3 = submit(q, "w5", "w6");
    check_queue(&q->e, (struct engine_request *[]){r1, r3}, 2);

    /* Once the batch is done, everything waiting goes, in order. */
    engine_mark_busy(c0, NULL, NULL);
    check_list(engine_take(&q->e, c1), (struct engine_request *[]){r1, r3}, 2);
    check_queue(&q->e, NULL, 0);
}

static void nothing_goes_beside_a_batch_that_runs_alone(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    struct engine_request *big = submit_many(q, "big", STORE_LOCKED_ACCOUNTS_MAX / 2 + 1);
    struct engine_request *list = engine_take(&q->e, c0);
    check_list(list, &big, 1);
    engine_mark_busy(c0, list, NULL);
    assert_true(c0->busy_all);

    struct engine_request *r = submit(q, "p", "q");
    assert_null(engine_take(&q->e, c1));
    check_queue(&q->e, &r, 1);
    engine_mark_busy(c0, NULL, NULL);
    check_list(engine_take(&q->e, c1), &r, 1);
}

static void a_big_request_waits_for_any_running_batch(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    submit(q, "a", "b");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    struct engine_request *big = submit_many(q, "other", STORE_LOCKED_ACCOUNTS_MAX / 2 + 1);
    assert_null(engine_take(&q->e, c1));
    check_queue(&q->e, &big, 1);
}

static void small_requests_merge_up_to_the_lockable_limit(void **state)
{
    struct qfx *q = *state;
    struct engine_request *r[STORE_LOCKED_ACCOUNTS_MAX / 2 + 1];
    for (int i = 0; i < STORE_LOCKED_ACCOUNTS_MAX / 2 + 1; i++)
        r[i] = submit(q, "x", "y");
    check_list(engine_take(&q->e, &q->e.committers[0]), r, STORE_LOCKED_ACCOUNTS_MAX / 2);
    check_queue(&q->e, &r[STORE_LOCKED_ACCOUNTS_MAX / 2], 1);
}

static void a_big_first_request_merges_up_to_the_batch_limit(void **state)
{
    struct qfx *q = *state;
    q->e.batch_ops_max = STORE_LOCKED_ACCOUNTS_MAX / 2 + 3;
    struct engine_request *big = submit_many(q, "big", STORE_LOCKED_ACCOUNTS_MAX / 2 + 1);
    struct engine_request *a = submit(q, "x", "y"), *b = submit(q, "y", "z"),
                          *c = submit(q, "z", "x");
    check_list(engine_take(&q->e, &q->e.committers[0]), (struct engine_request *[]){big, a, b}, 3);
    check_queue(&q->e, &c, 1);
}

static void a_request_over_the_batch_limit_is_taken_whole_and_alone(void **state)
{
    struct qfx *q = *state;
    q->e.batch_ops_max = QO - 100;
    struct engine_request *big = submit_many(q, "big", QO);
    struct engine_request *a = submit(q, "x", "y");
    check_list(engine_take(&q->e, &q->e.committers[0]), &big, 1);
    check_queue(&q->e, &a, 1);
}

static void settlements_never_conflict_and_are_not_published(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    /* Post, void and expire name their accounts only once resolved. */
    struct engine_request *post = submit(q, "", "");
    post->ops[0].core.kind = OP_POST;
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    assert_int_equal(c0->n_busy, 0);
    assert_false(c0->busy_all);
    engine_mark_busy(c0, NULL, NULL);

    submit(q, "a", "b");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    assert_int_equal(c0->n_busy, 2);
    struct engine_request *expire = submit(q, "", "");
    expire->ops[0].core.kind = OP_EXPIRE;
    check_list(engine_take(&q->e, c1), &expire, 1);
}

static void one_committer_publishes_nothing(void **state)
{
    struct qfx *q = *state;
    q->e.n_committers = 1;
    struct committer *c0 = &q->e.committers[0];
    struct engine_request *r = submit(q, "a", "b");
    struct engine_request *list = engine_take(&q->e, c0);
    check_list(list, &r, 1);
    engine_mark_busy(c0, list, NULL);
    assert_int_equal(c0->n_busy, 0);
    assert_false(c0->busy_all);
}

static void a_skipped_request_holds_back_later_ones_on_its_accounts(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    submit(q, "x", "w");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    struct engine_request *r1 = submit(q, "x", "y"), *r2 = submit(q, "y", "z"),
                          *r3 = submit(q, "p", "q");
    check_list(engine_take(&q->e, c1), &r3, 1);
    check_queue(&q->e, (struct engine_request *[]){r1, r2}, 2);
}

static void a_request_on_two_busy_accounts_goes_next(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    submit(q, "x", "w1");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    submit(q, "y", "w2");
    engine_mark_busy(c1, engine_take(&q->e, c1), NULL);
    struct engine_request *both = submit(q, "x", "y"), *on_x = submit(q, "x", "w3"),
                          *on_y = submit(q, "w4", "y");
    /* c0 is done with x, but y is still busy: nothing on x or y overtakes
     * the request that waits for both. */
    engine_mark_busy(c0, NULL, NULL);
    assert_null(engine_take(&q->e, c0));
    engine_mark_busy(c1, NULL, NULL);
    check_list(engine_take(&q->e, c1), (struct engine_request *[]){both, on_x, on_y}, 3);
}

static void nothing_is_taken_behind_a_skipped_big_request(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    submit(q, "a", "b");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    /* Like the sweeper's request of up to 1,000 expiries. */
    struct engine_request *big = submit_many(q, "other", STORE_LOCKED_ACCOUNTS_MAX / 2 + 1);
    struct engine_request *small = submit(q, "c", "d");
    assert_null(engine_take(&q->e, c1));
    check_queue(&q->e, (struct engine_request *[]){big, small}, 2);
    engine_mark_busy(c0, NULL, NULL);
    check_list(engine_take(&q->e, c1), (struct engine_request *[]){big, small}, 2);
}

static void the_scan_for_free_requests_is_bounded(void **state)
{
    struct qfx *q = *state;
    struct committer *c0 = &q->e.committers[0], *c1 = &q->e.committers[1];
    submit(q, "hot", "w");
    engine_mark_busy(c0, engine_take(&q->e, c0), NULL);
    for (int i = 0; i < 2000; i++)
        submit(q, "x", "hot");
    submit(q, "free", "also-free");
    assert_null(engine_take(&q->e, c1));
    assert_int_equal(q->e.queued_ops, 2001);
}

int run_queue_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(takes_everything_in_order_when_no_one_is_busy, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(skips_requests_on_accounts_of_the_other_batch, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(a_request_queued_after_a_skipped_tail_is_linked, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(nothing_goes_beside_a_batch_that_runs_alone, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(a_big_request_waits_for_any_running_batch, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(small_requests_merge_up_to_the_lockable_limit, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(a_big_first_request_merges_up_to_the_batch_limit, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(a_request_over_the_batch_limit_is_taken_whole_and_alone,
                                        qfx_setup, qfx_teardown),
        cmocka_unit_test_setup_teardown(settlements_never_conflict_and_are_not_published, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(one_committer_publishes_nothing, qfx_setup, qfx_teardown),
        cmocka_unit_test_setup_teardown(both_batches_of_a_committer_are_busy, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(a_skipped_request_holds_back_later_ones_on_its_accounts,
                                        qfx_setup, qfx_teardown),
        cmocka_unit_test_setup_teardown(a_request_on_two_busy_accounts_goes_next, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(nothing_is_taken_behind_a_skipped_big_request, qfx_setup,
                                        qfx_teardown),
        cmocka_unit_test_setup_teardown(the_scan_for_free_requests_is_bounded, qfx_setup,
                                        qfx_teardown),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
