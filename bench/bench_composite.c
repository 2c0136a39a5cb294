/*
 * bench_composite.c - what a composite call costs, next to its floor.
 *
 * Three zero-latency sim children, health_check (the cheapest operation, so
 * the numbers are the composite's own overhead). Floors, measured in the
 * same run: one direct sim call (row 1) for the rows that call one child,
 * three direct calls one after another (row 2) for the rows that call all
 * three. Targets: 1.5x the floor for the sequential rows; for the parallel
 * ones <= 20 us wall and <= 25 us CPU per call (every thread of the
 * process: pool workers, their polling and the caller). Zero-latency
 * children are run by the calling thread itself (a handoff costs more), so
 * the last rows give the children 200 us of latency to measure the pool:
 * their floor is one such call, since the three run at once.
 *
 * Each row is measured in REPS short runs and prints the median and the
 * best wall time and the median CPU time of the process per call: on a
 * shared machine other processes steal the CPU in bursts, and the median of
 * several runs says more than one long average. Under valgrind
 * (bench/callgrind.sh) the single-thread rows count instructions instead.
 *
 * Usage: bench_composite [seconds per row, default 1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_util.h"
#include "provisio/composite.h"
#include "provisio/error.h"
#include "provisio/sim.h"

#define CHILDREN 3
#define REPS 7

typedef struct row {
	const char *label;
	pv_composite_mode mode;
	pv_aggregation policy;
	int floor;     /* row number (from 1) of its floor */
	bool parallel; /* uses the pool: not counted under callgrind */
	pv_strategy **kids; /* its children */
	pv_strategy *s; /* the composite; NULL: direct calls of `direct` children */
	int direct;     /* direct rows: children called per call */
} row;

static pv_strategy *kids[CHILDREN], *slow_kids[CHILDREN];

static void run_calls(void *arg, uint64_t calls)
{
	const row *r = arg;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	for (uint64_t i = 0; i < calls; i++) {
		for (int k = 0; k < (r->s ? 1 : r->direct); k++) {
			pv_result res;
			pv_strategy_execute(r->s ? r->s : r->kids[k], &op, &res, NULL);
			if (!res.success) {
				fprintf(stderr, "%s: unexpected failure: %s\n", r->label, res.error_code);
				exit(1);
			}
			pv_result_clear(&res);
		}
	}
}

typedef struct cost {
	double wall, cpu; /* ns per call */
} cost;

static cost run_for(const row *r, double seconds)
{
	uint64_t cpu0 = bench_process_cpu_ns();
	uint64_t start = pv_now_ns(), end = start + (uint64_t)(seconds * 1e9), now, n = 0;
	do {
		run_calls((void *)r, 256);
		n += 256;
		now = pv_now_ns();
	} while (now < end);
	return (cost){(double)(now - start) / (double)n,
		      (double)(bench_process_cpu_ns() - cpu0) / (double)n};
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

typedef struct result {
	double median, best, cpu;
} result;

/* Median and best wall time of REPS runs, and their median CPU time. */
static result measure(const row *r, double secs)
{
	double wall[REPS], cpu[REPS];
	run_for(r, secs / REPS); /* warm up: threads, caches */
	for (int i = 0; i < REPS; i++) {
		cost c = run_for(r, secs / REPS);
		wall[i] = c.wall;
		cpu[i] = c.cpu;
	}
	qsort(wall, REPS, sizeof wall[0], cmp_double);
	qsort(cpu, REPS, sizeof cpu[0], cmp_double);
	return (result){wall[REPS / 2], wall[0], cpu[REPS / 2]};
}

/* How often a merge_all row handed out its kept merge again: the frozen
 * sim answers make every call after the first reusable, so a low share
 * means the row measured merging anew (as a miscompiled release build did). */
static char reuse_notes[1024];

static void note_reuse(const row *r)
{
	json_t *st = pv_strategy_stats(r->s);
	long long calls = json_integer_value(json_object_get(st, "calls"));
	long long reused = json_integer_value(json_object_get(st, "merges_reused"));
	size_t len = strlen(reuse_notes);
	snprintf(reuse_notes + len, sizeof reuse_notes - len,
		 "%s: merge handed out again in %lld of %lld calls (%.1f %%)\n", r->label, reused,
		 calls, calls ? 100.0 * (double)reused / (double)calls : 0.0);
	json_decref(st);
}

static pv_strategy *make(pv_strategy **children, pv_composite_mode mode, pv_aggregation policy)
{
	pv_composite_config cfg;
	pv_composite_config_default(&cfg);
	cfg.mode = mode;
	cfg.aggregation_policy = policy;
	cfg.max_concurrent_operations = CHILDREN;
	pv_strategy *c = NULL;
	if (pv_composite_new(&c, "bench", children, NULL, CHILDREN, &cfg, NULL) < 0 ||
	    pv_strategy_initialize(c) < 0) {
		fprintf(stderr, "composite: %s\n", pv_error_last());
		exit(1);
	}
	return c;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	char name[16];
	json_t *slow = json_pack("{s:{s:f}}", "latency", "mean_ms", 0.2);
	for (int i = 0; i < CHILDREN; i++) {
		snprintf(name, sizeof name, "sim%d", i);
		if (pv_sim_new(&kids[i], name, NULL, NULL) < 0 ||
		    pv_sim_new(&slow_kids[i], name, slow, NULL) < 0)
			return 1;
	}
	json_decref(slow);
	const pv_composite_mode P = PV_COMPOSITE_PARALLEL, S = PV_COMPOSITE_SEQUENTIAL;
	row rows[] = {
		{"direct sim call", 0, 0, 0, false, kids, NULL, 1},
		{"3 direct sim calls", 0, 0, 0, false, kids, NULL, CHILDREN},
		{"sequential first_success", S, PV_AGG_FIRST_SUCCESS, 1, false, kids, NULL, 0},
		{"sequential merge_all", S, PV_AGG_MERGE_ALL, 2, false, kids, NULL, 0},
		{"parallel merge_all", P, PV_AGG_MERGE_ALL, 2, true, kids, NULL, 0},
		{"parallel first_success", P, PV_AGG_FIRST_SUCCESS, 1, true, kids, NULL, 0},
		{"redundant majority_wins", PV_COMPOSITE_REDUNDANT, PV_AGG_MAJORITY_WINS, 2, true, kids,
		 NULL, 0},
		{"direct sim call, 200 us", 0, 0, 0, true, slow_kids, NULL, 1},
		{"parallel merge_all, 200 us (pool)", P, PV_AGG_MERGE_ALL, 8, true, slow_kids, NULL, 0},
	};
	int n_rows = (int)(sizeof rows / sizeof rows[0]);
	result res[sizeof rows / sizeof rows[0]];
	if (!bench_under_callgrind()) {
		printf("| %-36s | %10s | %10s | %10s | %-13s | %-13s |\n", "3 sim children",
		       "median ns", "best ns", "cpu ns", "wall x floor", "cpu x floor");
		printf("|--------------------------------------|-----------:|-----------:|-----------:|"
		       ":--------------|:--------------|\n");
	}
	for (int i = 0; i < n_rows; i++) {
		row *r = &rows[i];
		if (!r->direct)
			r->s = make(r->kids, r->mode, r->policy);
		if (bench_under_callgrind()) {
			if (!r->parallel)
				bench_callgrind_row(r->label, r->floor, run_calls, r);
		} else {
			res[i] = measure(r, secs);
			char wall[32] = "", cpu[32] = "";
			if (r->floor) {
				snprintf(wall, sizeof wall, "%.2f (row %d)",
					 res[i].median / res[r->floor - 1].median, r->floor);
				snprintf(cpu, sizeof cpu, "%.2f (row %d)",
					 res[i].cpu / res[r->floor - 1].cpu, r->floor);
			}
			printf("| %d. %-33s | %10.1f | %10.1f | %10.1f | %-13s | %-13s |\n", i + 1,
			       r->label, res[i].median, res[i].best, res[i].cpu, wall, cpu);
		}
		if (r->s && r->policy == PV_AGG_MERGE_ALL)
			note_reuse(r);
		pv_strategy_unref(r->s);
	}
	printf("\n%s", reuse_notes);
	for (int i = 0; i < CHILDREN; i++) {
		pv_strategy_unref(kids[i]);
		pv_strategy_unref(slow_kids[i]);
	}
	return 0;
}
