/*
 * bench_fallback.c - what the fallback strategy costs per operation, next
 * to its floor.
 *
 * Every row runs health_check (the sim's allocation-free path) against
 * zero-latency sim providers on the system clock, so the numbers are the
 * wrapper's own overhead. Each row names its floor, the direct calls that
 * do the same work without the fallback, measured in the same run:
 *
 *   1. one direct sim call: the floor of the healthy rows and of the open
 *      breaker (which should skip the primary for about nothing);
 *   2. a failing sim call then a direct one: the floor of "primary failing,
 *      called every time" (two calls and one failure result);
 *   the two-thread rows: the same call on one thread (the target is
 *   scaling: two threads on one fallback as fast as one).
 *
 * Two threads only contend when they run at the same time: they are pinned
 * to two different CPUs (when the process may use two), start each round
 * together, and a round counts only when each thread was on its CPU for at
 * least 90 % of it; the output says how many rounds did, and the row says
 * so when none did (a busy machine) instead of printing a number that
 * measured one thread at a time.
 *
 * Numbers are CPU time of the calling thread per call (the machine is
 * shared: wall time measures the neighbours), the best of ROUNDS
 * interleaved rounds. The target of every row is 1.5x its floor. Under
 * valgrind (bench/callgrind.sh) each row instead counts instructions.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include "bench_util.h"
#include "provisio/fallback.h"
#include "provisio/provisio.h"

#define RUN_NS (40 * PV_NS_PER_MS)
#define ROUNDS 9

static pv_strategy *sim(const char *name, const char *json)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	pv_strategy *s = NULL;
	if (pv_sim_new(&s, name, cfg, NULL) < 0) {
		fprintf(stderr, "sim: %s\n", pv_error_last());
		exit(1);
	}
	json_decref(cfg);
	return s;
}

static pv_strategy *fallback(const char *cfg_json, const char *primary_cfg)
{
	pv_fallback_config cfg;
	json_t *j = json_loads(cfg_json, 0, NULL);
	if (pv_fallback_config_from_json(j, &cfg) < 0) {
		fprintf(stderr, "config: %s\n", pv_error_last());
		exit(1);
	}
	json_decref(j);
	pv_strategy *a = sim("primary", primary_cfg), *b = sim("backup", NULL), *f = NULL;
	if (pv_fallback_new(&f, "fb", a, &b, 1, &cfg, NULL) < 0 || pv_strategy_initialize(f) < 0) {
		fprintf(stderr, "fallback: %s\n", pv_error_last());
		exit(1);
	}
	pv_strategy_unref(a);
	pv_strategy_unref(b);
	return f;
}

/* One row: `s` is called (then `then`, when set: a floor of two calls) and
 * the last call must succeed. */
typedef struct row {
	const char *name;
	pv_strategy *s, *then;
	int floor; /* row number (from 1) of its floor, 0: none */
	uint64_t calls;
	double best;
} row;

static void run_calls(void *arg, uint64_t calls)
{
	row *r = arg;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	for (uint64_t i = 0; i < calls; i++) {
		pv_result res;
		pv_strategy_execute(r->s, &op, &res, NULL);
		if (r->then) {
			pv_result_clear(&res);
			pv_strategy_execute(r->then, &op, &res, NULL);
		}
		if (!res.success) {
			fprintf(stderr, "%s: unexpected failure: %s\n", r->name, res.error_code);
			exit(1);
		}
		pv_result_clear(&res);
	}
}

/* CPU ns per call of `calls` calls. */
static double time_calls(row *r, uint64_t calls)
{
	uint64_t t0 = bench_thread_cpu_ns();
	run_calls(r, calls);
	return (double)(bench_thread_cpu_ns() - t0) / (double)calls;
}

/* Calls in a run of about RUN_NS, from a warm-up run. */
static uint64_t size_run(row *r)
{
	double per = time_calls(r, 20000);
	return (uint64_t)((double)RUN_NS / (per > 1 ? per : 1));
}

/* A round of two threads counts when each was on a CPU this much of it. */
#define AT_ONCE 0.9

typedef struct mt_arg {
	row r;
	pthread_barrier_t *start;
	int cpu;                          /* to pin to; -1: not pinned */
	bool pinned;
	double ns[ROUNDS], on_cpu[ROUNDS]; /* per round: CPU ns per call, CPU / wall */
} mt_arg;

static void *mt_run(void *p)
{
	mt_arg *a = p;
	if (a->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		a->pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
	}
	a->r.calls = size_run(&a->r);
	for (int k = 0; k < ROUNDS; k++) {
		pthread_barrier_wait(a->start);
		uint64_t wall0 = pv_now_ns(), cpu0 = bench_thread_cpu_ns();
		run_calls(&a->r, a->r.calls);
		double cpu = (double)(bench_thread_cpu_ns() - cpu0), wall = (double)(pv_now_ns() - wall0);
		a->ns[k] = cpu / (double)a->r.calls;
		a->on_cpu[k] = wall > 0 ? cpu / wall : 0;
	}
	return NULL;
}

/* The first two CPUs this process may run on, or -1s. */
static void two_cpus(int cpu[2])
{
	cpu_set_t set;
	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return;
	for (int i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
		if (CPU_ISSET(i, &set))
			cpu[k++] = i;
	if (cpu[1] < 0)
		cpu[0] = -1;
}

typedef struct at_once {
	double ns;       /* per thread, the best round that ran at once; 0: none did */
	int rounds;      /* rounds that ran at once */
	double most;     /* the most of a round both threads were on a CPU */
	bool pinned;
	int cpu[2];
} at_once;

/* Per-thread CPU ns per call with two threads calling `s` at once. */
static at_once two_threads(pv_strategy *s)
{
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, 2);
	at_once res = {0};
	two_cpus(res.cpu);
	mt_arg a[2] = {{.r = {.name = "2 threads", .s = s}, .start = &start, .cpu = res.cpu[0]},
		       {.r = {.name = "2 threads", .s = s}, .start = &start, .cpu = res.cpu[1]}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, mt_run, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	res.pinned = a[0].pinned && a[1].pinned;
	for (int k = 0; k < ROUNDS; k++) {
		double both = a[0].on_cpu[k] < a[1].on_cpu[k] ? a[0].on_cpu[k] : a[1].on_cpu[k];
		if (both > res.most)
			res.most = both;
		if (both < AT_ONCE)
			continue;
		double ns = (a[0].ns[k] + a[1].ns[k]) / 2;
		res.rounds++;
		if (!res.ns || ns < res.ns)
			res.ns = ns;
	}
	return res;
}

static void print_row(int number, const char *name, double ns, int floor, double floor_ns)
{
	char ratio[32] = "";
	if (floor)
		snprintf(ratio, sizeof ratio, "%.2f (row %d)", ns / floor_ns, floor);
	printf("| %d. %-62s | %8.1f | %-13s |\n", number, name, ns, ratio);
}

int main(void)
{
	pv_log_set_level(PV_LOG_ERROR);
	pv_strategy *direct = sim("direct", NULL);
	pv_strategy *failing_sim = sim("failing", "{\"failure_rate\": 1}");
	pv_strategy *cb = fallback("{\"mode\": \"circuit_breaker\"}", NULL);
	pv_strategy *imm = fallback("{\"mode\": \"immediate\"}", NULL);
	pv_strategy *retry = fallback("{\"mode\": \"retry_then_fallback\"}", NULL);
	pv_strategy *health = fallback("{\"mode\": \"health_based\"}", NULL);
	pv_strategy *open = fallback("{\"mode\": \"circuit_breaker\", \"circuit_breaker_threshold\": 1, "
				     "\"circuit_breaker_timeout_seconds\": 3600}",
				     "{\"failure_rate\": 1}");
	pv_strategy *failing = fallback("{\"mode\": \"immediate\"}", "{\"failure_rate\": 1}");
	pv_result r;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_strategy_execute(open, &op, &r, NULL); /* trips the primary's breaker */
	pv_result_clear(&r);

	row rows[] = {
		{"direct sim call", direct, NULL, 0, 0, 1e18},
		{"direct failing sim call + direct sim call", failing_sim, direct, 0, 0, 1e18},
		{"fallback circuit_breaker, healthy primary (breaker closed)", cb, NULL, 1, 0, 1e18},
		{"fallback immediate, healthy primary", imm, NULL, 1, 0, 1e18},
		{"fallback retry_then_fallback, healthy primary", retry, NULL, 1, 0, 1e18},
		{"fallback health_based, healthy primary (cached health)", health, NULL, 1, 0, 1e18},
		{"fallback circuit_breaker, primary failing, breaker open", open, NULL, 1, 0, 1e18},
		{"fallback immediate, primary failing (called every time)", failing, NULL, 2, 0, 1e18},
	};
	int n_rows = (int)(sizeof rows / sizeof rows[0]);
	if (bench_under_callgrind()) {
		for (int i = 0; i < n_rows; i++)
			bench_callgrind_row(rows[i].name, rows[i].floor, run_calls, &rows[i]);
	} else {
		for (int i = 0; i < n_rows; i++)
			rows[i].calls = size_run(&rows[i]);
		for (int k = 0; k < ROUNDS; k++) {
			for (int i = 0; i < n_rows; i++) {
				double ns = time_calls(&rows[i], rows[i].calls);
				if (ns < rows[i].best)
					rows[i].best = ns;
			}
		}
		printf("| %-65s | %8s | %-13s |\n", "health_check, zero-latency sims",
		       "cpu ns", "x floor");
		printf("|%s|---------:|:--------------|\n",
		       "-------------------------------------------------------------------");
		for (int i = 0; i < n_rows; i++)
			print_row(i + 1, rows[i].name, rows[i].best, rows[i].floor,
				  rows[i].floor ? rows[rows[i].floor - 1].best : 0);
		at_once two[2] = {two_threads(direct), two_threads(cb)};
		const char *names[2] = {"2 threads at once: direct sim call, per thread",
					"2 threads at once: fallback circuit_breaker, healthy, per thread"};
		int floors[2] = {1, 3};
		for (int i = 0; i < 2; i++) {
			if (two[i].rounds)
				print_row(n_rows + 1 + i, names[i], two[i].ns, floors[i],
					  rows[floors[i] - 1].best);
			else
				printf("| %d. %-62s | %8s | %-13s |\n", n_rows + 1 + i, names[i], "n/a",
				       "never at once");
		}
		printf("\n2-thread rows: %s; rounds where both threads were on a CPU >= %.0f%% of "
		       "the time: %d and %d of %d (at best both on a CPU %.0f%% and %.0f%% of a round)\n",
		       two[0].pinned ? "pinned to two CPUs" : "NOT pinned (one CPU or no affinity)",
		       AT_ONCE * 100, two[0].rounds, two[1].rounds, ROUNDS, two[0].most * 100,
		       two[1].most * 100);

		json_t *m = pv_fallback_circuit_metrics(open);
		printf("\nthe open row's primary breaker: state=%s rejected=%lld\n",
		       json_string_value(json_object_get(m, "state")),
		       (long long)json_integer_value(json_object_get(m, "rejected_requests")));
		json_decref(m);
	}
	pv_strategy *all[] = {direct, failing_sim, cb, imm, retry, health, open, failing};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		pv_strategy_unref(all[i]);
	return 0;
}
