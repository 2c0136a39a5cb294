/*
 * pool.h - a small bounded thread pool with intrusive tasks.
 *
 * Wrappers that fan one operation out to several children (the composite
 * strategy) need threads that outlive a call: creating a thread per child
 * per call costs tens of microseconds, a persistent pool costs a queue push
 * and a wake-up. Threads start lazily, up to `max_threads`, and then stay
 * until the pool is freed.
 *
 * Tasks are intrusive: the caller embeds a pv_pool_task in its own state
 * and the pool never allocates per task. The caller owns that memory and
 * must keep it alive until `run` has been called (run may free it).
 */
#ifndef PV_UTIL_POOL_H
#define PV_UTIL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pv_pool pv_pool;
typedef struct pv_pool_task pv_pool_task;

struct pv_pool_task {
	void (*run)(pv_pool_task *task); /* called once, on a pool thread */
	pv_pool_task *next;              /* the pool's; leave alone */
};

/* New pool of at most `max_threads` (1..1024) threads; none start until
 * work arrives. Free with pv_pool_free. 0, PV_EINVAL or PV_ENOMEM. */
int pv_pool_new(pv_pool **out, unsigned max_threads);

/*
 * Queues `task`. 0; PV_ESTATE when the pool is being freed; PV_ENOMEM when
 * no thread could be started at all (the task was not queued).
 */
int pv_pool_submit(pv_pool *p, pv_pool_task *task);

/*
 * Queues tasks[0..n) under one lock, waking one sleeping thread per task
 * that no polling thread will take. Returns how many were queued (all but
 * on failure: the rest, in order, were not; the reason is in
 * pv_error_last).
 */
size_t pv_pool_submit_many(pv_pool *p, pv_pool_task *const *tasks, size_t n);

/* Runs every task already queued, then joins the threads and frees the
 * pool. Must not be called from a pool thread. NULL is fine. */
void pv_pool_free(pv_pool *p);

/* Threads started so far (for stats and tests). */
unsigned pv_pool_threads(pv_pool *p);
/*
 * Busy-waits for ready(arg): first with a CPU pause for `pause_ns` (cheap,
 * no system call: the answer usually comes within microseconds), then with
 * sched_yield for `yield_ns` more (steps aside for the thread it waits for
 * on a busy machine). Returns ready(arg) at the end. Never sleeps.
 */
bool pv_spin_until(bool (*ready)(void *), void *arg, uint64_t pause_ns, uint64_t yield_ns);

/* The bound given at creation. */
unsigned pv_pool_max_threads(const pv_pool *p);

#endif
