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
 *
 * The queue is bounded (READS_QUEUED_MAX; more reads get 503 at once), and
 * a read whose client has reset its connection while it waited is not
 * run: 3,000 reads of 10,000 entries each, sent and abandoned in a
 * quarter of a second, used to hold every later read for 22 s.
 */
#include <poll.h>
#include <string.h>

#include "internal.h"

/* Whether the client has gone: its connection was reset or hung up. A
 * client that only shut its sending side may still read the answer. */
static bool client_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return false;
    struct pollfd p = {.fd = info->connect_fd, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
}

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
        q->queued--;
        bool stopping = q->stopping;
        pthread_mutex_unlock(&q->lock);
        if (stopping)
            r->read_result = http_reply_error(r, STATUS_UNAVAILABLE, SHUTTING_DOWN_MESSAGE);
        else if (client_gone(r->conn))
            r->read_result = MHD_NO; /* nobody to answer: close */
        else
            r->read_result = r->read(r, r->read_id);
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

enum readers_submit_result readers_submit(struct readers *q, struct http_request *r)
{
    pthread_mutex_lock(&q->lock);
    enum readers_submit_result res = q->stopping                     ? READ_STOPPING
                                     : q->queued >= READS_QUEUED_MAX ? READ_QUEUE_FULL
                                                                     : READ_QUEUED;
    if (res == READ_QUEUED) {
        r->read_next = NULL;
        if (q->tail)
            q->tail->read_next = r;
        else
            q->head = r;
        q->tail = r;
        q->queued++;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return res;
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
