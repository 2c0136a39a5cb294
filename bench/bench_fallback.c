/*
 * bench_fallback.c - what the fallback strategy costs per operation.
 *
 * Every row runs health_check (the sim's allocation-free path) against
 * zero-latency sim providers on the system clock, so the numbers are the
 * wrapper's own overhead. The first row is a direct call to the sim, the
 * baseline the others are compared with. Each row is timed three times and
 * the best run is kept (the machine is shared). Runs in a few seconds.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "provisio/fallback.h"
#include "provisio/provisio.h"

#define RUN_NS (60 * PV_NS_PER_MS)
#define ROUNDS 7

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

/* ns/op of `iters` calls. */
static double time_calls(pv_strategy *s, uint64_t iters)
{
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	uint64_t t0 = pv_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		pv_result r;
		pv_strategy_execute(s, &op, &r, NULL);
		if (!r.success) {
			fprintf(stderr, "unexpected failure: %s\n", r.error_code);
			exit(1);
		}
		pv_result_clear(&r);
	}
	return (double)(pv_now_ns() - t0) / (double)iters;
}

/* Calls in a run of about RUN_NS, from a warm-up run. */
static uint64_t size_run(pv_strategy *s)
{
	double per = time_calls(s, 20000);
	return (uint64_t)((double)RUN_NS / (per > 1 ? per : 1));
}

/* Best of one strategy alone (used by the threaded rows). */
static double measure(pv_strategy *s)
{
	uint64_t iters = size_run(s);
	double best = 1e18;
	for (int k = 0; k < ROUNDS; k++) {
		double ns = time_calls(s, iters);
		if (ns < best)
			best = ns;
	}
	return best;
}

typedef struct mt_arg {
	pv_strategy *s;
	double ns;
} mt_arg;

static void *mt_run(void *p)
{
	mt_arg *a = p;
	a->ns = measure(a->s);
	return NULL;
}

/* Per-thread ns/op with two threads calling the same strategy at once. */
static double measure_two_threads(pv_strategy *s)
{
	mt_arg a[2] = {{s, 0}, {s, 0}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, mt_run, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return (a[0].ns + a[1].ns) / 2;
}

static void row(const char *name, double ns, double base)
{
	printf("| %-58s | %8.1f | %+9.1f |\n", name, ns, ns - base);
}

int main(void)
{
	pv_log_set_level(PV_LOG_ERROR);
	pv_strategy *direct = sim("direct", NULL);

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

	struct {
		const char *name;
		pv_strategy *s;
		uint64_t iters;
		double best;
	} rows[] = {
		{"direct sim call (baseline)", direct, 0, 1e18},
		{"fallback circuit_breaker, healthy primary (breaker closed)", cb, 0, 1e18},
		{"fallback immediate, healthy primary", imm, 0, 1e18},
		{"fallback retry_then_fallback, healthy primary", retry, 0, 1e18},
		{"fallback health_based, healthy primary (cached health)", health, 0, 1e18},
		{"fallback circuit_breaker, primary failing, breaker open", open, 0, 1e18},
		{"fallback immediate, primary failing (called every time)", failing, 0, 1e18},
	};
	size_t n_rows = sizeof rows / sizeof rows[0];
	for (size_t i = 0; i < n_rows; i++)
		rows[i].iters = size_run(rows[i].s);
	for (int k = 0; k < ROUNDS; k++) {
		for (size_t i = 0; i < n_rows; i++) {
			double ns = time_calls(rows[i].s, rows[i].iters);
			if (ns < rows[i].best)
				rows[i].best = ns;
		}
	}
	double base = rows[0].best;
	printf("| %-58s | %8s | %9s |\n", "benchmark (health_check, zero-latency sim)", "ns/op", "overhead");
	printf("|%s|%s|%s|\n", "------------------------------------------------------------",
	       "----------", "-----------");
	for (size_t i = 0; i < n_rows; i++)
		row(rows[i].name, rows[i].best, base);
	double base2 = measure_two_threads(direct);
	row("2 threads: direct sim call (baseline), per thread", base2, base2);
	row("2 threads: fallback circuit_breaker, healthy, per thread", measure_two_threads(cb), base2);

	json_t *m = pv_fallback_circuit_metrics(open);
	printf("\nprimary breaker of the failing row: state=%s rejected=%lld\n",
	       json_string_value(json_object_get(m, "state")),
	       (long long)json_integer_value(json_object_get(m, "rejected_requests")));
	json_decref(m);
	pv_strategy *all[] = {direct, cb, imm, retry, health, open, failing};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		pv_strategy_unref(all[i]);
	return 0;
}
