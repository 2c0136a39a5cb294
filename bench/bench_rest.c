/*
 * bench_rest.c - what a create/status round trip through the rest provider
 * costs against a local server, at 1 and 16 concurrent callers.
 *
 * The server is the loopback test server of the unit tests (plain sockets,
 * one thread a connection, keep-alive, machines in memory), so the numbers
 * are provisio's client work (JSON, libcurl, result mapping) plus loopback
 * HTTP plus a very cheap server: an upper bound on what the provider can do,
 * not a measure of `provisio serve`. The baseline is the same round trip on
 * a zero-latency sim called directly; overhead = difference. Rows with the
 * handle pool off (max_connections 0: a new curl handle, so a new TCP
 * connection, every call) show what the pool buys.
 *
 * With PV_BENCH_SERVE_URL and PV_BENCH_SERVE_TOKEN set, two more rows run
 * against a real `provisio serve` (sim provider, SQLite store, template
 * t-small), started by hand as docs/rest.md shows.
 *
 * Not a test: it asserts nothing. Usage: bench_rest [seconds-per-row] (0.6)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/provisio.h"
#include "provisio/rest.h"
/* Bench targets link only the library; the test server is compiled in. */
#include "../tests/support/rest_test_server.c"

static double row_seconds = 0.6;

static bool exec(pv_strategy *s, pv_op_type type, json_t *params, json_t **ids_out)
{
	pv_operation op = {.type = type, .params = params};
	pv_result r = PV_RESULT_INIT;
	s->methods->execute(s, &op, &r);
	if (!r.success) {
		fprintf(stderr, "bench: %s failed: %s\n", pv_op_name(type), pv_result_message(&r) ? pv_result_message(&r) : r.error_code);
		exit(1);
	}
	if (ids_out)
		*ids_out = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	return true;
}

/* create 1 (with its own request id) -> status of what it made. */
static void round_trip(pv_strategy *s, uint64_t worker, uint64_t i)
{
	char req[48];
	snprintf(req, sizeof req, "bench-%llu-%llu", (unsigned long long)worker, (unsigned long long)i);
	json_t *params = json_pack("{s:i, s:s, s:s}", "count", 1, "template_id", "t-small", "request_id", req);
	json_t *ids = NULL;
	exec(s, PV_OP_CREATE_INSTANCES, params, &ids);
	json_decref(params);
	params = json_pack("{s:o}", "instance_ids", ids);
	exec(s, PV_OP_GET_INSTANCE_STATUS, params, NULL);
	json_decref(params);
}

typedef struct job {
	pv_strategy *s;
	uint64_t worker, n;
	uint64_t stop_at;
} job;

static void *worker_main(void *arg)
{
	job *j = arg;
	while (pv_now_ns() < j->stop_at)
		round_trip(j->s, j->worker, j->n++);
	return NULL;
}

/* Runs `callers` threads for row_seconds; prints ns per round trip and
 * round trips per second. Returns ns/op. */
static double row(const char *label, pv_strategy *s, int callers, double baseline)
{
	pthread_t t[64];
	job jobs[64];
	static uint64_t run_id;
	run_id++;
	uint64_t t0 = pv_now_ns(), stop = t0 + (uint64_t)(row_seconds * 1e9);
	for (int i = 0; i < callers; i++) {
		jobs[i] = (job){s, run_id * 1000 + (uint64_t)i, 0, stop};
		pthread_create(&t[i], NULL, worker_main, &jobs[i]);
	}
	uint64_t total = 0;
	for (int i = 0; i < callers; i++) {
		pthread_join(t[i], NULL);
		total += jobs[i].n;
	}
	double secs = (double)(pv_now_ns() - t0) / 1e9;
	double ns = secs * 1e9 / (double)total * callers; /* latency seen by one caller */
	double ops = (double)total / secs;
	if (baseline > 0)
		printf("%-44s %8d %12.0f %12.0f %12.0f\n", label, callers, ns, ops, ns - baseline);
	else
		printf("%-44s %8d %12.0f %12.0f %12s\n", label, callers, ns, ops, "-");
	return ns;
}

static pv_strategy *rest(const char *url, const char *key, int pool)
{
	char cfg[512];
	snprintf(cfg, sizeof cfg, "{\"endpoint_url\": \"%s\", \"api_key\": \"%s\", \"max_connections\": %d}",
		 url, key, pool);
	json_t *j = json_loads(cfg, 0, NULL);
	pv_strategy *s = NULL;
	if (pv_rest_new(&s, "remote", j, NULL) < 0 || pv_strategy_initialize(s) < 0) {
		fprintf(stderr, "bench: %s\n", pv_error_last());
		exit(1);
	}
	json_decref(j);
	return s;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		row_seconds = atof(argv[1]);
	rts_server *srv;
	if (rts_start(&srv) < 0) {
		fprintf(stderr, "bench: cannot start the local server\n");
		return 1;
	}
	pv_strategy *sim = NULL;
	json_t *simcfg = json_pack("{s:i, s:{s:s, s:f}}", "capacity", -1, "latency", "distribution",
				   "fixed", "mean_ms", 0.0);
	pv_sim_new(&sim, "sim", simcfg, NULL);
	json_decref(simcfg);
	pv_strategy_initialize(sim);
	pv_strategy *pooled = rest(rts_url(srv), "bench", 16), *fresh = rest(rts_url(srv), "bench", 0);

	printf("create+status round trip                     callers    ns/op(1)      ops/s  overhead ns\n");
	double base = row("sim, direct call (baseline)", sim, 1, 0);
	row("sim, direct call (baseline)", sim, 16, 0);
	row("rest -> local server, pooled handles", pooled, 1, base);
	row("rest -> local server, pooled handles", pooled, 16, base);
	row("rest -> local server, new handle per call", fresh, 1, base);
	row("rest -> local server, new handle per call", fresh, 16, base);
	/* A real provisio serve (sim behind it, SQLite store): started by
	 * hand, e.g. as docs/rest.md shows; its template must be t-small. */
	const char *serve_url = getenv("PV_BENCH_SERVE_URL"), *serve_key = getenv("PV_BENCH_SERVE_TOKEN");
	if (serve_url && serve_key) {
		pv_strategy *real = rest(serve_url, serve_key, 16);
		row("rest -> provisio serve, pooled handles", real, 1, base);
		row("rest -> provisio serve, pooled handles", real, 16, base);
		pv_strategy_unref(real);
	}
	printf("(ns/op(1) = wall time one caller waits per round trip; ops/s = all callers together)\n");

	pv_strategy_unref(sim);
	pv_strategy_unref(pooled);
	pv_strategy_unref(fresh);
	rts_stop(srv);
	return 0;
}
