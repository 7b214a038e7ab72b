/* A persistent thread pool for data-parallel kernels. One parallel region ("round") at a time per
 * pool: the caller publishes fn/ctx and a 64-bit ticket (generation | ntasks | next task), then
 * it and the workers claim task indices from the ticket with compare-and-swap until none are
 * left. Idle workers spin for a short while (so back-to-back kernels of one forward pass cost a
 * few hundred nanoseconds each) and then sleep on a futex (a condition variable off Linux). */
#include "nn/pool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define POOL_MAX_THREADS 256
/* How long an idle thread spins before sleeping. Longer than the gap between two kernels of a
 * forward pass (layernorm, softmax: a few microseconds), short enough not to matter when idle. */
#define POOL_SPIN_NS 200000L

/* ticket = gen (24 bits) << 40 | ntasks (20 bits) << 20 | next (20 bits). Keeping the count in
 * the same word as the next index lets a claim check both with one compare-and-swap; the
 * generation makes a stale compare-and-swap from a previous round fail. */
#define TICKET_BITS 20
#define TICKET_MASK ((1u << TICKET_BITS) - 1)
#define POOL_MAX_ROUND ((int)TICKET_MASK)
#define TICKET_NEXT(v) ((unsigned)((v) & TICKET_MASK))
#define TICKET_COUNT(v) ((unsigned)(((v) >> TICKET_BITS) & TICKET_MASK))
#define TICKET_GEN_SHIFT (2 * TICKET_BITS)

struct sg_pool {
    int nthreads; /* including the caller */
    int nworkers; /* threads actually started */
    pthread_t *threads;
    pthread_mutex_t run_lock; /* serialises sg_pool_run */
#ifndef __linux__
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
#endif
    /* the current round; written by the caller before the ticket is published */
    _Alignas(64) _Atomic(sg_pool_fn) fn;
    _Atomic(void *) ctx;
    atomic_int base, total;
    uint64_t gen;
    _Alignas(64) _Atomic uint64_t ticket;
    _Alignas(64) atomic_int done;  /* tasks finished this round (futex word for the caller) */
    atomic_int caller_waiting;
    _Alignas(64) atomic_int wake_seq; /* futex word for sleeping workers */
    atomic_int sleepers;
    atomic_int stop;
};

/* Which pool's task this thread is running, to run nested calls serially instead of
 * deadlocking on run_lock. */
static _Thread_local const sg_pool *pool_current;

static inline void pool_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

static long pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Sleeps while *word == val (may return spuriously); pool_wake wakes all sleepers on word. */
static void pool_wait(sg_pool *p, atomic_int *word, int val)
{
#ifdef __linux__
    (void)p;
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    pthread_mutex_lock(&p->wait_lock);
    while (atomic_load(word) == val)
        pthread_cond_wait(&p->wait_cond, &p->wait_lock);
    pthread_mutex_unlock(&p->wait_lock);
#endif
}

static void pool_wake(sg_pool *p, atomic_int *word)
{
#ifdef __linux__
    (void)p;
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
    pthread_mutex_lock(&p->wait_lock);
    pthread_cond_broadcast(&p->wait_cond);
    pthread_mutex_unlock(&p->wait_lock);
#endif
}

static inline int pool_has_work(uint64_t v) { return TICKET_NEXT(v) < TICKET_COUNT(v); }

/* Claims and runs tasks of the current round until none are left; returns how many it ran. */
static int pool_run_tasks(sg_pool *p)
{
    int ran = 0;
    uint64_t v = atomic_load_explicit(&p->ticket, memory_order_acquire);
    while (pool_has_work(v)) {
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* The round cannot finish before this task does, so fn/ctx are still this round's. */
        sg_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        int base = atomic_load_explicit(&p->base, memory_order_relaxed);
        int total = atomic_load_explicit(&p->total, memory_order_relaxed);
        fn(ctx, base + (int)TICKET_NEXT(v), total);
        ran++;
        int count = (int)TICKET_COUNT(v);
        if (atomic_fetch_add(&p->done, 1) + 1 == count && atomic_load(&p->caller_waiting))
            pool_wake(p, &p->done);
        v = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
    return ran;
}

static void *pool_worker(void *arg)
{
    sg_pool *p = arg;
    pool_current = p;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        if (pool_run_tasks(p))
            continue;
        /* spin, checking the clock only now and then */
        long start = pool_now_ns();
        int found = 0;
        for (unsigned i = 1; !found; i++) {
            if (pool_has_work(atomic_load_explicit(&p->ticket, memory_order_relaxed)) ||
                atomic_load_explicit(&p->stop, memory_order_relaxed))
                found = 1;
            else if ((i & 63) == 0 && pool_now_ns() - start > POOL_SPIN_NS)
                break;
            else
                pool_cpu_relax();
        }
        if (found)
            continue;
        atomic_fetch_add(&p->sleepers, 1);
        int seq = atomic_load(&p->wake_seq);
        if (!pool_has_work(atomic_load(&p->ticket)) && !atomic_load(&p->stop))
            pool_wait(p, &p->wake_seq, seq);
        atomic_fetch_sub(&p->sleepers, 1);
    }
    return NULL;
}

static int pool_default_threads(void)
{
    const char *env = getenv("SG_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n > 0)
            return n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)n;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    return cores > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)cores;
}

sg_pool *sg_pool_new(int nthreads)
{
    if (nthreads <= 0)
        nthreads = pool_default_threads();
    if (nthreads > POOL_MAX_THREADS)
        nthreads = POOL_MAX_THREADS;
    sg_pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
    if (!p)
        return NULL;
    *p = (sg_pool){.nthreads = nthreads};
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->base, 0);
    atomic_init(&p->total, 0);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->caller_waiting, 0);
    atomic_init(&p->wake_seq, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->run_lock, NULL) != 0) {
        free(p);
        return NULL;
    }
#ifndef __linux__
    pthread_mutex_init(&p->wait_lock, NULL);
    pthread_cond_init(&p->wait_cond, NULL);
#endif
    if (nthreads > 1) {
        p->threads = calloc((size_t)nthreads - 1, sizeof *p->threads);
        if (!p->threads) {
            sg_pool_free(p);
            return NULL;
        }
        /* workers never handle signals: the process's signal handling stays on its threads */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (int i = 0; i < nthreads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, pool_worker, p) != 0)
                break;
            p->nworkers++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        /* fewer threads than asked still computes the same results */
        p->nthreads = p->nworkers + 1;
    }
    return p;
}

void sg_pool_free(sg_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->run_lock);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->wake_seq, 1);
    pool_wake(p, &p->wake_seq);
    pthread_mutex_unlock(&p->run_lock);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->run_lock);
#ifndef __linux__
    pthread_mutex_destroy(&p->wait_lock);
    pthread_cond_destroy(&p->wait_cond);
#endif
    free(p);
}

int sg_pool_size(const sg_pool *p) { return p ? p->nthreads : 1; }

/* One round of at most POOL_MAX_ROUND tasks: publish, work, wait for the stragglers. */
static void pool_round(sg_pool *p, sg_pool_fn fn, void *ctx, int base, int count, int total)
{
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->base, base, memory_order_relaxed);
    atomic_store_explicit(&p->total, total, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    p->gen = (p->gen + 1) & ((1u << 24) - 1);
    atomic_store(&p->ticket, p->gen << TICKET_GEN_SHIFT | (uint64_t)count << TICKET_BITS);
    if (atomic_load(&p->sleepers) > 0) {
        atomic_fetch_add(&p->wake_seq, 1);
        pool_wake(p, &p->wake_seq);
    }
    pool_run_tasks(p);
    long start = 0;
    for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < count; i++) {
        if ((i & 63) == 0) {
            long now = pool_now_ns();
            if (!start)
                start = now;
            else if (now - start > POOL_SPIN_NS)
                break;
        }
        pool_cpu_relax();
    }
    int d;
    if ((d = atomic_load(&p->done)) < count) {
        atomic_store(&p->caller_waiting, 1);
        while ((d = atomic_load(&p->done)) < count)
            pool_wait(p, &p->done, d);
        atomic_store(&p->caller_waiting, 0);
    }
}

void sg_pool_run(sg_pool *p, sg_pool_fn fn, void *ctx, int ntasks)
{
    if (ntasks <= 0)
        return;
    if (!p || p->nthreads <= 1 || ntasks == 1 || pool_current == p) {
        for (int t = 0; t < ntasks; t++)
            fn(ctx, t, ntasks);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    const sg_pool *outer = pool_current;
    pool_current = p;
    for (int base = 0; base < ntasks; base += POOL_MAX_ROUND) {
        int count = ntasks - base < POOL_MAX_ROUND ? ntasks - base : POOL_MAX_ROUND;
        pool_round(p, fn, ctx, base, count, ntasks);
    }
    pool_current = outer;
    pthread_mutex_unlock(&p->run_lock);
}
