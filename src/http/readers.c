/*
 * readers.c - reads off the HTTP threads.
 *
 * A read waits on the database. Each HTTP thread serves many connections,
 * so a read run on it holds up every request that arrives meanwhile on
 * the thread's other connections: one slow read made several slow answers
 * (BENCHMARKS.md, the 10 M journal). Instead, the handler's HTTP thread
 * suspends the connection and queues the request here; a reader thread
 * runs the handler, which keeps its answer (http_reply_text), and resumes
 * the connection; the HTTP thread then sends it. As many readers as the
 * pool has connections, so a reader never waits for one. Once stopping,
 * what is still queued is answered 503 unrun: a database that has
 * stalled would otherwise hold shutdown for each queued read in turn.
 */
#include <string.h>

#include "internal.h"

static void *reader_main(void *arg)
{
    struct readers *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->head == NULL && !q->stopping)
            pthread_cond_wait(&q->wake, &q->lock);
        struct http_request *r = q->head;
        if (r == NULL)
            break; /* stopping, and nothing left to run */
        q->head = r->read_next;
        if (q->head == NULL)
            q->tail = NULL;
        bool stopping = q->stopping;
        pthread_mutex_unlock(&q->lock);
        r->read_result = stopping ? http_reply_error(r, STATUS_UNAVAILABLE, SHUTTING_DOWN_MESSAGE)
                                  : r->read(r, r->read_id);
        r->phase = PHASE_READ_DONE;
        MHD_resume_connection(r->conn);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int readers_start(struct readers *q, int n)
{
    if (n < 1)
        return -1; /* reads would wait forever */
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    for (q->n = 0; q->n < n && q->n < READERS_MAX; q->n++)
        if (pthread_create(&q->threads[q->n], NULL, reader_main, q) != 0) {
            readers_stop(q);
            return -1;
        }
    return 0;
}

bool readers_submit(struct readers *q, struct http_request *r)
{
    pthread_mutex_lock(&q->lock);
    bool ok = !q->stopping;
    if (ok) {
        r->read_next = NULL;
        if (q->tail)
            q->tail->read_next = r;
        else
            q->head = r;
        q->tail = r;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

void readers_stop(struct readers *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->n; i++)
        pthread_join(q->threads[i], NULL);
    q->n = 0;
}
