/* A persistent thread pool for data-parallel kernels. sg_pool_run splits work into ntasks tasks
 * and runs them on the pool's threads plus the calling thread, returning when all are done. Calls
 * from different threads are serialised (one parallel region at a time per pool). Sized by
 * --threads / SG_THREADS; a pool of 1 runs everything on the caller. */
#ifndef SG_NN_POOL_H
#define SG_NN_POOL_H

typedef struct sg_pool sg_pool;
typedef void (*sg_pool_fn)(void *ctx, int task, int ntasks);

/* nthreads counts the caller: nthreads - 1 worker threads are started. <= 0 means SG_THREADS or
 * the number of cores. */
sg_pool *sg_pool_new(int nthreads);
void sg_pool_free(sg_pool *p);
int sg_pool_size(const sg_pool *p);
/* pool may be NULL (runs serially on the caller). */
void sg_pool_run(sg_pool *p, sg_pool_fn fn, void *ctx, int ntasks);

#endif
