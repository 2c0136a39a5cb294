/*
 * bench_kernel.c - what the strategy kernel costs per operation.
 *
 * Rows: a direct call of a zero-latency sim strategy (the baseline), the
 * same call through a context with one strategy, with three strategies
 * under each selection policy, and throughput at 1, 2 and 50 threads. All
 * rows run in one process, one after the other, so the ratios compare like
 * with like on a shared machine. Not a test: it asserts nothing.
 *
 * Single-thread rows report CPU time of the benchmarking thread per
 * operation (CLOCK_THREAD_CPUTIME_ID), which a busy shared machine inflates
 * far less than wall time; wall time is printed beside it.
 *
 * Usage: bench_kernel [seconds-per-row]   (default 0.3)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "provisio/provisio.h"

static double row_seconds = 0.3;
static const pv_operation op = {.type = PV_OP_HEALTH_CHECK};

typedef void (*body_fn)(void *arg, uint64_t n);

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * PV_NS_PER_S + (uint64_t)ts.tv_nsec;
}

typedef struct cost {
	double cpu_ns, wall_ns; /* per operation */
} cost;

/* Runs body in growing batches until row_seconds of CPU time pass. */
static cost measure(body_fn body, void *arg)
{
	body(arg, 10000); /* warm up */
	uint64_t n = 0, batch = 10000, c0 = thread_cpu_ns(), w0 = pv_now_ns(), c1;
	do {
		body(arg, batch);
		n += batch;
		c1 = thread_cpu_ns();
		if (batch < 1000000)
			batch *= 2;
	} while ((double)(c1 - c0) < row_seconds * 1e9);
	return (cost){(double)(c1 - c0) / (double)n, (double)(pv_now_ns() - w0) / (double)n};
}

static void direct_body(void *arg, uint64_t n)
{
	pv_strategy *s = arg;
	for (uint64_t i = 0; i < n; i++) {
		pv_result r;
		pv_result_init(&r);
		s->methods->execute(s, &op, &r);
		pv_result_clear(&r);
	}
}

static void context_body(void *arg, uint64_t n)
{
	pv_context *ctx = arg;
	for (uint64_t i = 0; i < n; i++) {
		pv_result r;
		pv_context_execute(ctx, &op, &r);
		pv_result_clear(&r);
	}
}

static pv_strategy *zero_sim(const char *name)
{
	pv_strategy *s;
	if (pv_sim_new(&s, name, NULL, NULL) < 0) {
		fprintf(stderr, "bench: %s\n", pv_error_last());
		exit(1);
	}
	return s;
}

static pv_context *context_of(int n)
{
	pv_context *ctx;
	pv_context_new(&ctx, NULL);
	for (int i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof name, "sim%d", i);
		pv_strategy *s = zero_sim(name);
		pv_context_register_weighted(ctx, s, (double)(n - i));
		pv_strategy_unref(s);
	}
	pv_context_initialize(ctx, NULL);
	return ctx;
}

typedef struct thread_arg {
	pv_context *ctx;
	uint64_t ops;
} thread_arg;

static void *thread_body(void *p)
{
	thread_arg *a = p;
	context_body(a->ctx, a->ops);
	return NULL;
}

/* Total operations per second with `threads` threads sharing one context. */
static double throughput(pv_context *ctx, int threads)
{
	uint64_t per_thread = (uint64_t)(row_seconds * 4e6 / threads) + 1000;
	pthread_t t[64];
	thread_arg a = {ctx, per_thread};
	uint64_t t0 = pv_now_ns();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, thread_body, &a);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double secs = (double)(pv_now_ns() - t0) / 1e9;
	return (double)per_thread * threads / secs;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		row_seconds = atof(argv[1]);
	if (!(row_seconds > 0)) {
		fprintf(stderr, "usage: bench_kernel [seconds-per-row > 0]\n");
		return 2;
	}
	pv_strategy *direct = zero_sim("direct");
	cost base = measure(direct_body, direct);
	printf("provisio kernel benchmark (health_check on a zero-latency sim, %.1f s a row)\n\n", row_seconds);
	printf("%-44s %10s %10s %12s\n", "row", "cpu ns/op", "wall ns/op", "overhead ns");
	printf("%-44s %10.1f %10.1f %12s\n", "direct strategy call (baseline)", base.cpu_ns, base.wall_ns, "-");

	pv_context *one = context_of(1);
	cost c = measure(context_body, one);
	printf("%-44s %10.1f %10.1f %12.1f\n", "context, 1 strategy (current)", c.cpu_ns, c.wall_ns,
	       c.cpu_ns - base.cpu_ns);

	pv_context *three = context_of(3);
	for (int p = PV_POLICY_NONE; p < PV_POLICY_CUSTOM; p++) {
		pv_context_set_policy(three, (pv_policy)p);
		c = measure(context_body, three);
		char label[64];
		snprintf(label, sizeof label, "context, 3 strategies, %s", pv_policy_name((pv_policy)p));
		printf("%-44s %10.1f %10.1f %12.1f\n", label, c.cpu_ns, c.wall_ns, c.cpu_ns - base.cpu_ns);
	}

	printf("\n%-44s %12s\n", "throughput (context, 1 strategy)", "ops/s");
	int threads[] = {1, 2, 50};
	for (size_t i = 0; i < 3; i++) {
		char label[64];
		snprintf(label, sizeof label, "%d thread%s", threads[i], threads[i] > 1 ? "s" : "");
		printf("%-44s %12.0f\n", label, throughput(one, threads[i]));
	}
	pv_context_set_policy(three, PV_POLICY_ROUND_ROBIN);
	printf("%-44s %12.0f\n", "50 threads, 3 strategies, round_robin", throughput(three, 50));

	pv_context_free(one);
	pv_context_free(three);
	pv_strategy_unref(direct);
	return 0;
}
