/* The bounded pool that runs model work (frame decode and vision, speech, turns). A fixed number
 * of worker threads take jobs from a queue of fixed depth; when the queue is full, submit refuses
 * at once so the server can answer 503 OVERLOADED with Retry-After instead of letting latency grow
 * without bound. */
#ifndef SG_SERVER_WORKQ_H
#define SG_SERVER_WORKQ_H

#include <stdbool.h>

typedef struct sg_workq sg_workq;
typedef void (*sg_job_fn)(void *arg);

sg_workq *sg_workq_new(int workers, int depth);
/* Queues fn(arg). False when workers and queue are all busy (nothing is queued). */
bool sg_workq_submit(sg_workq *q, sg_job_fn fn, void *arg);
/* Jobs queued or running. */
int sg_workq_pending(sg_workq *q);
/* Jobs waiting for a worker (not yet running). */
int sg_workq_queued(sg_workq *q);
/* Runs every queued job to completion, then joins the workers. */
void sg_workq_free(sg_workq *q);

#endif
