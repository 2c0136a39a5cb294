/*
 * bench_store.c - what a store operation costs, SQLite and PostgreSQL in the
 * same run: a write transaction (one request), a read transaction (one
 * request by id), and the machines of a 1,000-machine request (what
 * getRequestStatus reads). Wall time per operation, best of 5 rounds (the
 * PostgreSQL time is mostly the loopback round trips; its server is the one
 * PV_TEST_POSTGRES_URL names, e.g. under scripts/with-postgres).
 *
 *   build/bench_store                      SQLite only
 *   scripts/with-postgres /tmp/pg build/bench_store
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include "provisio/error.h"
#include "provisio/store.h"

#define MACHINES 1000

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void must(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "bench_store: %s: %s\n", what, pv_error_last());
		exit(1);
	}
}

static pv_request_rec request(int i)
{
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = PV_REQ_RUNNING, .requested = 1,
			    .created_ms = 1000 + i, .updated_ms = 1000 + i};
	snprintf(r.id, sizeof r.id, "req-%08d", i);
	snprintf(r.template_id, sizeof r.template_id, "t");
	return r;
}

static void fill(pv_store *st)
{
	must(pv_store_begin(st, true), "begin");
	for (int i = 0; i < MACHINES; i++) {
		pv_machine_rec m = {.launch_time = 1700000000, .updated_ms = 1};
		snprintf(m.machine_id, sizeof m.machine_id, "i-%06d", i);
		snprintf(m.request_id, sizeof m.request_id, "req-big");
		snprintf(m.template_id, sizeof m.template_id, "t");
		snprintf(m.provider, sizeof m.provider, "sim");
		snprintf(m.name, sizeof m.name, "host-%06d", i);
		snprintf(m.status, sizeof m.status, "running");
		snprintf(m.result, sizeof m.result, "succeed");
		must(pv_store_machine_put(st, &m), "machine put");
	}
	must(pv_store_commit(st), "commit");
}

typedef enum { OP_WRITE, OP_READ, OP_LIST, OP_COUNT } op_kind;
static const char *const op_names[OP_COUNT] = {"write tx: put 1 request", "read tx: get 1 request",
					       "read tx: list 1,000 machines"};
static const int op_iters[OP_COUNT] = {400, 2000, 40};

static double run(pv_store *st, op_kind k, int *seq)
{
	double best = 1e30;
	for (int round = 0; round < 5; round++) {
		double t0 = now_us();
		for (int i = 0; i < op_iters[k]; i++) {
			if (k == OP_WRITE) {
				pv_request_rec r = request((*seq)++);
				must(pv_store_begin(st, true), "begin");
				must(pv_store_request_put(st, &r), "put");
				must(pv_store_commit(st), "commit");
			} else if (k == OP_READ) {
				pv_request_rec got;
				must(pv_store_begin(st, false), "begin");
				must(pv_store_request_get(st, "req-00000000", &got), "get");
				must(pv_store_commit(st), "commit");
			} else {
				pv_machine_list l = {0};
				must(pv_store_begin(st, false), "begin");
				must(pv_store_machine_list(st, PV_MF_REQUEST, "req-big", &l), "list");
				must(pv_store_commit(st), "commit");
				if (l.n != MACHINES)
					must(pv_error_set(PV_EIO, "listed %zu machines", l.n), "list");
				pv_machine_list_clear(&l);
			}
		}
		double per = (now_us() - t0) / op_iters[k];
		if (per < best)
			best = per;
	}
	return best;
}

/* A schema of its own on the server, dropped at the end. */
static void pg_schema(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench_store: %s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(res);
	PQfinish(c);
}

int main(void)
{
	char dir[] = "/tmp/pv_bench_store_XXXXXX", path[64], sql[128], url[1024];
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof path, "%s/bench.db", dir);
	const char *pg = getenv("PV_TEST_POSTGRES_URL");
	pv_store *stores[2] = {NULL, NULL};
	must(pv_store_open(&stores[0], path, NULL), "open sqlite");
	if (pg && *pg) {
		snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS pv_bench_%d CASCADE; CREATE SCHEMA pv_bench_%d",
			 (int)getpid(), (int)getpid());
		pg_schema(pg, sql);
		snprintf(url, sizeof url, "%s%soptions=-csearch_path%%3Dpv_bench_%d", pg,
			 strchr(pg, '?') ? "&" : "?", (int)getpid());
		must(pv_store_open(&stores[1], url, NULL), "open postgres");
	}
	int seq[2] = {0, 0};
	for (int s = 0; s < 2; s++) {
		if (!stores[s])
			continue;
		pv_request_rec r = request(seq[s]++);
		must(pv_store_begin(stores[s], true), "begin");
		must(pv_store_request_put(stores[s], &r), "put");
		must(pv_store_commit(stores[s]), "commit");
		fill(stores[s]);
	}
	printf("%-32s %12s %12s %8s\n", "operation (µs, best of 5)", "sqlite", "postgresql", "pg/sq");
	for (int k = 0; k < OP_COUNT; k++) {
		double sq = run(stores[0], (op_kind)k, &seq[0]);
		if (stores[1]) {
			double p = run(stores[1], (op_kind)k, &seq[1]);
			printf("%-32s %12.1f %12.1f %7.1fx\n", op_names[k], sq, p, p / sq);
		} else {
			printf("%-32s %12.1f %12s %8s\n", op_names[k], sq, "-", "-");
		}
	}
	pv_store_close(stores[0]);
	if (stores[1]) {
		pv_store_close(stores[1]);
		snprintf(sql, sizeof sql, "DROP SCHEMA pv_bench_%d CASCADE", (int)getpid());
		pg_schema(pg, sql);
	}
	unlink(path);
	char wal[80];
	snprintf(wal, sizeof wal, "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof wal, "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	if (!pg || !*pg)
		printf("(postgresql: set PV_TEST_POSTGRES_URL, e.g. scripts/with-postgres /tmp/pg build/bench_store)\n");
	return 0;
}
