/*
 * test_composite_pool.c - the bounded thread pool the composite runs
 * children on (src/util/pool.c): the bound holds, queued work is never
 * dropped, batches are queued in order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>
#include "provisio/error.h"
#include "util/pool.h"
#include "wait.h"

typedef struct job {
	pv_pool_task task; /* first */
	atomic_int *running, *max_running, *done;
	unsigned sleep_us;
	int meet; /* > 0: waits until that many jobs have run at once */
} job;

static void job_run(pv_pool_task *t)
{
	job *j = (job *)t;
	int now = atomic_fetch_add(j->running, 1) + 1;
	int seen = atomic_load(j->max_running);
	while (now > seen && !atomic_compare_exchange_weak(j->max_running, &seen, now))
		;
	struct timespec ts = {0, (long)j->sleep_us * 1000L};
	nanosleep(&ts, NULL);
	if (j->meet > 0)
		PV_TEST_WAIT_UNTIL(atomic_load(j->max_running) >= j->meet);
	atomic_fetch_sub(j->running, 1);
	atomic_fetch_add(j->done, 1);
}

static void run_jobs(unsigned threads, size_t n, unsigned sleep_us, int meet, bool batch, int *max_out,
		     unsigned *threads_out)
{
	atomic_int running = 0, max_running = 0, done = 0;
	job *jobs = calloc(n, sizeof *jobs);
	pv_pool_task **tasks = calloc(n, sizeof *tasks);
	pv_pool *p = NULL;
	assert_int_equal(pv_pool_new(&p, threads), 0);
	for (size_t i = 0; i < n; i++) {
		jobs[i] = (job){{job_run, NULL}, &running, &max_running, &done, sleep_us, meet};
		tasks[i] = &jobs[i].task;
	}
	if (batch)
		assert_int_equal(pv_pool_submit_many(p, tasks, n), n);
	else
		for (size_t i = 0; i < n; i++)
			assert_int_equal(pv_pool_submit(p, tasks[i]), 0);
	*threads_out = pv_pool_threads(p);
	pv_pool_free(p); /* drains the queue before joining */
	assert_int_equal(atomic_load(&done), (int)n);
	*max_out = atomic_load(&max_running);
	free(tasks);
	free(jobs);
}

static void test_pool_never_runs_more_than_its_bound(void **state)
{
	(void)state;
	int max;
	unsigned threads;
	run_jobs(3, 40, 1000, 0, true, &max, &threads);
	assert_in_range(max, 1, 3);
	assert_in_range(threads, 1, 3);
}

static void test_pool_runs_work_in_parallel_up_to_its_bound(void **state)
{
	(void)state;
	int max;
	unsigned threads;
	/* each job waits (bounded) until two have run at once: a serial pool
	 * would never get there */
	run_jobs(4, 8, 0, 2, false, &max, &threads);
	assert_int_equal(threads, 4);
	assert_true(max >= 2);
}

static void test_pool_free_runs_every_queued_task(void **state)
{
	(void)state;
	int max;
	unsigned threads;
	run_jobs(1, 200, 0, 0, true, &max, &threads); /* freed at once: the queue is full */
	assert_int_equal(max, 1);
}

/* ---- many callers, and a shutdown with work queued --------------------------- */

#define CALLERS 8
#define BATCHES 300
#define BATCH 3

typedef struct counted {
	pv_pool_task task; /* first */
	atomic_int runs;
	atomic_int *done;
	atomic_bool *gate; /* NULL, or wait until it opens */
} counted;

static void counted_run(pv_pool_task *t)
{
	counted *c = (counted *)t;
	while (c->gate && !atomic_load(c->gate))
		sched_yield();
	atomic_fetch_add(&c->runs, 1);
	atomic_fetch_add(c->done, 1);
}

typedef struct caller {
	pv_pool *pool;
	counted tasks[BATCHES][BATCH];
	atomic_int done;
} caller;

/* Submits its batches one after another, each once the last one ran. */
static void *caller_run(void *arg)
{
	caller *c = arg;
	for (int b = 0; b < BATCHES; b++) {
		pv_pool_task *batch[BATCH];
		for (int i = 0; i < BATCH; i++) {
			c->tasks[b][i] = (counted){.task = {counted_run, NULL}, .done = &c->done};
			batch[i] = &c->tasks[b][i].task;
		}
		if (pv_pool_submit_many(c->pool, batch, BATCH) != BATCH)
			return "submit failed";
		while (atomic_load(&c->done) < (b + 1) * BATCH) /* wait for the event, not a time */
			sched_yield();
	}
	return NULL;
}

static void test_pool_many_concurrent_callers_each_task_runs_once(void **state)
{
	(void)state;
	pv_pool *p = NULL;
	assert_int_equal(pv_pool_new(&p, 3), 0);
	caller *callers = calloc(CALLERS, sizeof *callers);
	pthread_t t[CALLERS];
	for (int i = 0; i < CALLERS; i++) {
		callers[i].pool = p;
		pthread_create(&t[i], NULL, caller_run, &callers[i]);
	}
	for (int i = 0; i < CALLERS; i++) {
		void *err;
		pthread_join(t[i], &err);
		assert_null(err);
	}
	for (int i = 0; i < CALLERS; i++)
		for (int b = 0; b < BATCHES; b++)
			for (int k = 0; k < BATCH; k++)
				assert_int_equal(atomic_load(&callers[i].tasks[b][k].runs), 1);
	assert_in_range(pv_pool_threads(p), 1, 3);
	pv_pool_free(p);
	free(callers);
}

typedef struct freer {
	pv_pool *pool;
	atomic_bool freeing;
} freer;

static void *free_pool(void *arg)
{
	freer *f = arg;
	atomic_store(&f->freeing, true);
	pv_pool_free(f->pool);
	return NULL;
}

/* Freeing a pool whose threads are busy and whose queue is full runs every
 * queued task exactly once before it returns: a queued task may own the
 * last reference to its caller's state. */
static void test_pool_shutdown_while_work_is_queued_runs_it_all(void **state)
{
	(void)state;
	enum { N = 50 };
	freer f = {.freeing = false};
	assert_int_equal(pv_pool_new(&f.pool, 2), 0);
	atomic_bool gate = false;
	atomic_int done = 0;
	counted tasks[N];
	pv_pool_task *list[N];
	for (int i = 0; i < N; i++) {
		tasks[i] = (counted){.task = {counted_run, NULL}, .done = &done, .gate = &gate};
		list[i] = &tasks[i].task;
	}
	assert_int_equal(pv_pool_submit_many(f.pool, list, N), N);
	pthread_t t;
	pthread_create(&t, NULL, free_pool, &f);
	while (!atomic_load(&f.freeing)) /* the pool is being freed, its queue still full */
		sched_yield();
	assert_true(atomic_load(&done) == 0);
	atomic_store(&gate, true);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&done), N);
	for (int i = 0; i < N; i++)
		assert_int_equal(atomic_load(&tasks[i].runs), 1);
}

static void test_pool_rejects_a_bad_bound(void **state)
{
	(void)state;
	pv_pool *p = (pv_pool *)1;
	assert_int_equal(pv_pool_new(&p, 0), PV_EINVAL);
	assert_null(p);
	assert_int_equal(pv_pool_new(&p, 5000), PV_EINVAL);
	pv_pool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_never_runs_more_than_its_bound),
		cmocka_unit_test(test_pool_runs_work_in_parallel_up_to_its_bound),
		cmocka_unit_test(test_pool_free_runs_every_queued_task),
		cmocka_unit_test(test_pool_rejects_a_bad_bound),
		cmocka_unit_test(test_pool_many_concurrent_callers_each_task_runs_once),
		cmocka_unit_test(test_pool_shutdown_while_work_is_queued_runs_it_all),
	};
	return cmocka_run_group_tests_name("composite_pool", tests, NULL, NULL);
}
