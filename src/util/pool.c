/*
 * pool.c - the bounded thread pool (see pool.h).
 *
 * One mutex and one condition variable guard a FIFO of intrusive tasks.
 * Threads start lazily, while under the bound, when the queue holds more
 * work than idle threads can take, so a pool never used costs nothing.
 *
 * Wake-ups are what a fan-out of short calls pays for. A submit wakes one
 * sleeping thread per task that the threads still polling for work will
 * not take, so a burst of tasks starts at once (a chain where each woken
 * thread wakes the next costs a wake-up latency per task); a thread that
 * finishes a task takes the next queued one without sleeping. And a thread
 * whose queue ran dry stays warm, polling for a while before it sleeps, so
 * back-to-back calls find it awake: a microsecond with a CPU pause
 * (PV_POOL_PAUSE_NS), then with sched_yield (PV_POOL_SPIN_NS). Longer
 * pausing was measured 2-5x slower on two busy cores, because a pausing
 * spinner keeps the very thread it waits for off the CPU; a yielding one
 * steps aside.
 *
 * Freeing drains the queue before joining, because a queued task may own
 * the last reference of its caller's state: dropping it would leak.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include "provisio/clock.h"
#include "provisio/error.h"
#include "util/pool.h"

#define PV_POOL_SPIN_NS (50 * 1000ull)
#define PV_POOL_PAUSE_NS (1 * 1000ull)

struct pv_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;
	pv_pool_task *head, *tail;
	pthread_t *threads;
	unsigned max_threads, nthreads, idle;
	atomic_size_t queued;    /* tasks in the queue (read unlocked by spinners) */
	atomic_uint spinning;    /* threads spinning for work, not asleep */
	atomic_bool closing;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

bool pv_spin_until(bool (*ready)(void *), void *arg, uint64_t pause_ns, uint64_t yield_ns)
{
	uint64_t start = pv_now_ns(), now = start;
	for (unsigned i = 1; now - start < pause_ns; i++) {
		if (ready(arg))
			return true;
		cpu_relax();
		if ((i & 31) == 0)
			now = pv_now_ns();
	}
	while (now - start < pause_ns + yield_ns) {
		if (ready(arg))
			return true;
		sched_yield();
		now = pv_now_ns();
	}
	return ready(arg);
}

static bool has_work(void *arg)
{
	pv_pool *p = arg;
	return atomic_load_explicit(&p->queued, memory_order_acquire) ||
	       atomic_load_explicit(&p->closing, memory_order_relaxed);
}

/* Spins (unlocked) until work shows up or the spin budget is spent. */
static void spin_for_work(pv_pool *p)
{
	atomic_fetch_add_explicit(&p->spinning, 1, memory_order_relaxed);
	pv_spin_until(has_work, p, PV_POOL_PAUSE_NS, PV_POOL_SPIN_NS);
	atomic_fetch_sub_explicit(&p->spinning, 1, memory_order_relaxed);
}

static pv_pool_task *pop(pv_pool *p)
{
	pv_pool_task *t = p->head;
	p->head = t->next;
	if (!p->head)
		p->tail = NULL;
	atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
	return t;
}

/* Takes the next task, or NULL when the queue is empty (lock held). */
static pv_pool_task *take(pv_pool *p)
{
	return p->head ? pop(p) : NULL;
}

static void *worker(void *arg)
{
	pv_pool *p = arg;
	for (;;) {
		/* Look before locking: threads that find nothing stay off the lock. */
		if (!atomic_load_explicit(&p->queued, memory_order_acquire))
			spin_for_work(p);
		pthread_mutex_lock(&p->lock);
		pv_pool_task *t = take(p);
		if (!t && atomic_load(&p->closing)) {
			pthread_mutex_unlock(&p->lock);
			break; /* closing and drained */
		}
		if (!t) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->idle--;
			t = take(p);
		}
		pthread_mutex_unlock(&p->lock);
		if (t)
			t->run(t); /* may free t */
	}
	return NULL;
}

int pv_pool_new(pv_pool **out, unsigned max_threads)
{
	*out = NULL;
	if (max_threads < 1 || max_threads > 1024)
		return pv_error_set(PV_EINVAL, "pool: max_threads must be 1..1024, got %u", max_threads);
	pv_pool *p = calloc(1, sizeof *p);
	if (!p || !(p->threads = calloc(max_threads, sizeof *p->threads))) {
		free(p);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	/* Adaptive: a thread that finds the lock taken spins a little before
	 * sleeping, since it is only ever held for a few instructions. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&p->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_cond_init(&p->work, NULL);
	p->max_threads = max_threads;
	*out = p;
	return 0;
}

/* Starts one more thread when the queue (with the task about to be added)
 * holds more work than idle or spinning threads can take. Lock held. A
 * failure is fine while at least one thread runs. */
static int maybe_grow(pv_pool *p)
{
	size_t ready = p->idle + atomic_load_explicit(&p->spinning, memory_order_relaxed);
	if (atomic_load_explicit(&p->queued, memory_order_relaxed) + 1 <= ready ||
	    p->nthreads >= p->max_threads)
		return 0;
	if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
		return p->nthreads ? 0 : pv_error_set(PV_ENOMEM, "pool: cannot start a thread");
	p->nthreads++;
	return 0;
}

/* Queues one task (lock held). */
static int push(pv_pool *p, pv_pool_task *task)
{
	int rc = maybe_grow(p);
	if (rc < 0)
		return rc;
	task->next = NULL;
	if (p->tail)
		p->tail->next = task;
	else
		p->head = task;
	p->tail = task;
	atomic_fetch_add_explicit(&p->queued, 1, memory_order_release);
	return 0;
}

size_t pv_pool_submit_many(pv_pool *p, pv_pool_task *const *tasks, size_t n)
{
	size_t done = 0;
	pthread_mutex_lock(&p->lock);
	if (atomic_load(&p->closing))
		pv_error_set(PV_ESTATE, "pool: shutting down");
	else
		while (done < n && push(p, tasks[done]) == 0)
			done++;
	/* One wake-up per task that the threads spinning for work will not
	 * take: all start at once instead of one waking the next. */
	size_t spinning = atomic_load_explicit(&p->spinning, memory_order_relaxed);
	for (size_t woken = 0; woken + spinning < done && woken < p->idle; woken++)
		pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return done;
}

int pv_pool_submit(pv_pool *p, pv_pool_task *task)
{
	if (pv_pool_submit_many(p, &task, 1) == 1)
		return 0;
	return pv_error_last_code() ? pv_error_last_code() : PV_ERROR;
}

void pv_pool_free(pv_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->closing, true);
	pthread_cond_broadcast(&p->work);
	unsigned n = p->nthreads;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

unsigned pv_pool_threads(pv_pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->nthreads;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned pv_pool_max_threads(const pv_pool *p) { return p->max_threads; }
