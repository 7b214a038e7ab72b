/* Fixed worker threads over a ring buffer of jobs, guarded by one mutex and condition variable. */
#include "server/workq.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    sg_job_fn fn;
    void *arg;
} job;

struct sg_workq {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    job *ring;
    int cap, head, len;  /* queued jobs */
    int running;         /* jobs being run */
    int nworkers;
    bool stopping;
    pthread_t *threads;
};

static void *worker_main(void *p)
{
    sg_workq *q = p;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->len == 0 && !q->stopping)
            pthread_cond_wait(&q->ready, &q->lock);
        if (q->len == 0 && q->stopping)
            break;
        job j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        q->running++;
        pthread_mutex_unlock(&q->lock);
        j.fn(j.arg);
        pthread_mutex_lock(&q->lock);
        q->running--;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

sg_workq *sg_workq_new(int workers, int depth)
{
    if (workers < 1)
        workers = 1;
    if (depth < 0)
        depth = 0;
    sg_workq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    /* A job is accepted while a worker is free or the wait queue has room. */
    q->cap = workers + depth;
    q->ring = calloc((size_t)q->cap, sizeof *q->ring);
    q->threads = calloc((size_t)workers, sizeof *q->threads);
    if (!q->ring || !q->threads) {
        free(q->ring);
        free(q->threads);
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0)
            break;
        q->nworkers++;
    }
    if (q->nworkers == 0) {
        sg_workq_free(q);
        return NULL;
    }
    return q;
}

bool sg_workq_submit(sg_workq *q, sg_job_fn fn, void *arg)
{
    pthread_mutex_lock(&q->lock);
    if (q->stopping || q->len + q->running >= q->cap) {
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    q->ring[(q->head + q->len) % q->cap] = (job){fn, arg};
    q->len++;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
    return true;
}

int sg_workq_pending(sg_workq *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->len + q->running;
    pthread_mutex_unlock(&q->lock);
    return n;
}

int sg_workq_queued(sg_workq *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void sg_workq_free(sg_workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->nworkers; i++)
        pthread_join(q->threads[i], NULL);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->ready);
    free(q->ring);
    free(q->threads);
    free(q);
}
