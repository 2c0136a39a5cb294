/*
 * bench_composite.c - what a composite call costs over a direct call.
 *
 * Three zero-latency sim children, health_check (the cheapest operation, so
 * the numbers are the composite's own overhead). Rows: a direct call to one
 * sim (the baseline), sequential first_success (stops at the first child),
 * sequential merge_all (all three, merged), parallel merge_all and parallel
 * first_success on the persistent pool, and redundant majority_wins.
 * Targets: sequential <= 300 ns/op, parallel <= 20 us/op.
 *
 * Each row is measured in REPS short runs and prints the median and the
 * best: on a shared machine other processes steal the CPU in bursts, and
 * the median of several runs says more than one long average. The last
 * column is CPU time of the whole process per op (pool threads and their
 * polling included), which load on the machine does not inflate.
 *
 * Usage: bench_composite [seconds per row, default 1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "provisio/composite.h"
#include "provisio/error.h"
#include "provisio/sim.h"

#define CHILDREN 3
#define REPS 7

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * PV_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double last_cpu_per_op; /* CPU time of all threads per op, last run */

static double run_for(pv_strategy *s, pv_op_type type, double seconds)
{
	pv_operation op = {.type = type};
	uint64_t cpu0 = cpu_ns();
	uint64_t start = pv_now_ns(), end = start + (uint64_t)(seconds * 1e9), now;
	uint64_t n = 0;
	do {
		for (int i = 0; i < 256; i++) {
			pv_result r;
			pv_strategy_execute(s, &op, &r, NULL);
			if (!r.success) {
				fprintf(stderr, "unexpected failure: %s\n", r.error_code);
				exit(1);
			}
			pv_result_clear(&r);
		}
		n += 256;
		now = pv_now_ns();
	} while (now < end);
	last_cpu_per_op = (double)(cpu_ns() - cpu0) / (double)n;
	return (double)(now - start) / (double)n;
}

static pv_strategy *make(pv_strategy **kids, pv_composite_mode mode, pv_aggregation policy)
{
	pv_composite_config cfg;
	pv_composite_config_default(&cfg);
	cfg.mode = mode;
	cfg.aggregation_policy = policy;
	cfg.max_concurrent_operations = CHILDREN;
	pv_strategy *c = NULL;
	if (pv_composite_new(&c, "bench", kids, NULL, CHILDREN, &cfg, NULL) < 0 ||
	    pv_strategy_initialize(c) < 0) {
		fprintf(stderr, "composite: %s\n", pv_error_last());
		exit(1);
	}
	return c;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median and best of REPS runs of secs/REPS each, and the median CPU time
 * per op (all threads: pool workers and their polling included). */
static void measure(pv_strategy *s, double secs, double *median, double *best, double *cpu)
{
	double v[REPS], c[REPS];
	run_for(s, PV_OP_HEALTH_CHECK, secs / REPS); /* warm up: threads, caches */
	for (int i = 0; i < REPS; i++) {
		v[i] = run_for(s, PV_OP_HEALTH_CHECK, secs / REPS);
		c[i] = last_cpu_per_op;
	}
	qsort(v, REPS, sizeof v[0], cmp_double);
	qsort(c, REPS, sizeof c[0], cmp_double);
	*median = v[REPS / 2];
	*best = v[0];
	*cpu = c[REPS / 2];
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	pv_strategy *kids[CHILDREN];
	char name[16];
	for (int i = 0; i < CHILDREN; i++) {
		snprintf(name, sizeof name, "sim%d", i);
		if (pv_sim_new(&kids[i], name, NULL, NULL) < 0)
			return 1;
	}
	static const struct {
		const char *label;
		pv_composite_mode mode;
		pv_aggregation policy;
	} rows[] = {
		{"sequential first_success", PV_COMPOSITE_SEQUENTIAL, PV_AGG_FIRST_SUCCESS},
		{"sequential merge_all", PV_COMPOSITE_SEQUENTIAL, PV_AGG_MERGE_ALL},
		{"parallel merge_all", PV_COMPOSITE_PARALLEL, PV_AGG_MERGE_ALL},
		{"parallel first_success", PV_COMPOSITE_PARALLEL, PV_AGG_FIRST_SUCCESS},
		{"redundant majority_wins", PV_COMPOSITE_REDUNDANT, PV_AGG_MAJORITY_WINS},
	};
	double base, base_best, base_cpu, med, best, cpu;
	measure(kids[0], secs, &base, &base_best, &base_cpu);
	printf("%-34s %12s %12s %14s %12s\n", "case (3 zero-latency sim children)",
	       "median ns/op", "best ns/op", "overhead (med)", "cpu ns/op");
	printf("%-34s %12.1f %12.1f %14s %12.1f\n", "direct sim call (baseline)", base, base_best,
	       "-", base_cpu);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		pv_strategy *c = make(kids, rows[i].mode, rows[i].policy);
		measure(c, secs, &med, &best, &cpu);
		printf("%-34s %12.1f %12.1f %14.1f %12.1f\n", rows[i].label, med, best, med - base,
		       cpu);
		pv_strategy_unref(c);
	}
	for (int i = 0; i < CHILDREN; i++)
		pv_strategy_unref(kids[i]);
	return 0;
}
