/*
 * test_store.c - the stores: schema and migrations, the request state
 * machine, machines and their filters, maxNumber accounting, key/value,
 * transactions (rollback leaves nothing), concurrent writers.
 *
 * The behaviour every store must share runs twice: on SQLite files, and on
 * the PostgreSQL server named by PV_TEST_POSTGRES_URL (`make test` starts
 * one with scripts/with-postgres; without it the PostgreSQL group says it
 * is skipped). Each PostgreSQL "file" is a schema of its own, dropped after
 * the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "provisio/broker.h"
#include <libpq-fe.h>
#include <sqlite3.h>
#include "scratch_dir.h"
#include "provisio/error.h"
#include "provisio/store.h"
#include "store/schema.h"

static char dir[256];
static const char *pg_url; /* NULL: the SQLite group is running */

static int setup(void **state)
{
	(void)state;
	return pv_test_scratch_make(dir, sizeof dir, "pv_test_store_");
}

static int teardown(void **state)
{
	(void)state;
	return pv_test_scratch_remove(dir);
}

/* The PostgreSQL schema standing for store file `name` in this process. */
static void pg_schema(const char *name, char *out, size_t size)
{
	snprintf(out, size, "pvt_%ld_%.*s", (long)getpid(), (int)strcspn(name, "."), name);
}

/* Runs SQL on the test server (as its owner); asserts it worked. */
static void pg_exec(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c);
}

/* The store URL for `name`: the server's URL with search_path set to a
 * schema of its own, made empty for the test. */
static void pg_location(const char *name, bool fresh, char *out, size_t size)
{
	char schema[96], sql[256];
	pg_schema(name, schema, sizeof schema);
	if (fresh) {
		snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
		pg_exec(sql);
	}
	snprintf(out, size, "%s%soptions=-csearch_path%%3D%s", pg_url, strchr(pg_url, '?') ? "&" : "?",
		 schema);
}

static char made[16][64]; /* the store names a test opened: dropped after it */

static void location(const char *name, char *out, size_t size)
{
	if (!pg_url) {
		snprintf(out, size, "%s/%s", dir, name);
		return;
	}
	bool fresh = true;
	int i = 0;
	for (; i < 16 && made[i][0]; i++)
		if (strcmp(made[i], name) == 0)
			fresh = false;
	if (fresh && i < 16)
		snprintf(made[i], sizeof made[i], "%s", name);
	pg_location(name, fresh, out, size);
}

static int pg_test_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 16 && made[i][0]; i++) {
		char schema[96], sql[160];
		pg_schema(made[i], schema, sizeof schema);
		snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
		pg_exec(sql);
		made[i][0] = '\0';
	}
	return 0;
}

static pv_store *open_store(const char *name)
{
	char where[600];
	location(name, where, sizeof where);
	pv_store *st = NULL;
	if (pv_store_open(&st, where, NULL) < 0)
		fail_msg("open %s: %s", name, pv_error_last());
	return st;
}

static pv_request_rec request(const char *id, pv_request_state state, const char *tmpl, int64_t n)
{
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = state, .requested = n,
			    .created_ms = 1000, .updated_ms = 1000};
	snprintf(r.id, sizeof r.id, "%s", id);
	snprintf(r.template_id, sizeof r.template_id, "%s", tmpl);
	return r;
}

static pv_machine_rec machine(const char *id, const char *req, const char *tmpl, const char *status)
{
	pv_machine_rec m = {.launch_time = 1700000000};
	snprintf(m.machine_id, sizeof m.machine_id, "%s", id);
	snprintf(m.request_id, sizeof m.request_id, "%s", req);
	snprintf(m.template_id, sizeof m.template_id, "%s", tmpl);
	snprintf(m.provider, sizeof m.provider, "sim");
	snprintf(m.name, sizeof m.name, "host-%s", id);
	snprintf(m.status, sizeof m.status, "%s", status);
	snprintf(m.result, sizeof m.result, "succeed");
	return m;
}

static void put_request(pv_store *st, const pv_request_rec *r, int want)
{
	assert_int_equal(pv_store_begin(st, true), 0);
	int rc = pv_store_request_put(st, r);
	assert_int_equal(rc, want);
	if (rc == 0)
		assert_int_equal(pv_store_commit(st), 0);
	else
		pv_store_rollback(st);
}

static void test_state_names_round_trip_and_unknown_lists_valid(void **state)
{
	(void)state;
	for (int i = 0; i < PV_REQ_STATE_COUNT; i++) {
		pv_request_state s;
		assert_int_equal(pv_request_state_parse(pv_request_state_name((pv_request_state)i), &s), 0);
		assert_int_equal(s, i);
	}
	pv_request_state s;
	assert_int_equal(pv_request_state_parse("done", &s), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "complete_with_error"));
	for (int i = 0; i < PV_MF_COUNT; i++) {
		pv_machine_filter f;
		assert_int_equal(pv_machine_filter_parse(pv_machine_filter_name((pv_machine_filter)i), &f), 0);
		assert_int_equal(f, i);
	}
	pv_machine_filter f;
	assert_int_equal(pv_machine_filter_parse("dead", &f), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "leaving"));
	pv_request_kind k;
	assert_int_equal(pv_request_kind_parse("return", &k), 0);
	assert_int_equal(k, PV_REQ_RETURN);
	assert_int_equal(pv_request_kind_parse("give", &k), PV_EINVAL);
}

static void test_state_machine_allows_only_forward_moves(void **state)
{
	(void)state;
	assert_true(pv_request_state_can_move(PV_REQ_CREATING, PV_REQ_RUNNING));
	assert_true(pv_request_state_can_move(PV_REQ_CREATING, PV_REQ_FAILED));
	assert_true(pv_request_state_can_move(PV_REQ_RUNNING, PV_REQ_COMPLETE));
	assert_true(pv_request_state_can_move(PV_REQ_RUNNING, PV_REQ_COMPLETE_WITH_ERROR));
	assert_false(pv_request_state_can_move(PV_REQ_RUNNING, PV_REQ_CREATING));
	assert_false(pv_request_state_can_move(PV_REQ_RUNNING, PV_REQ_FAILED));
	assert_false(pv_request_state_can_move(PV_REQ_COMPLETE, PV_REQ_RUNNING));
	assert_false(pv_request_state_can_move(PV_REQ_FAILED, PV_REQ_COMPLETE));
	assert_true(pv_request_state_can_move(PV_REQ_COMPLETE, PV_REQ_COMPLETE));
	/* queued: waiting for a daemon; once started it never goes back */
	assert_true(pv_request_state_can_move(PV_REQ_QUEUED, PV_REQ_CREATING));
	assert_true(pv_request_state_can_move(PV_REQ_QUEUED, PV_REQ_RUNNING));
	assert_true(pv_request_state_can_move(PV_REQ_QUEUED, PV_REQ_FAILED));
	assert_false(pv_request_state_can_move(PV_REQ_CREATING, PV_REQ_QUEUED));
	assert_false(pv_request_state_can_move(PV_REQ_RUNNING, PV_REQ_QUEUED));
	assert_true(pv_request_state_unsettled(PV_REQ_QUEUED));
	assert_true(pv_request_state_unsettled(PV_REQ_CREATING));
	assert_false(pv_request_state_unsettled(PV_REQ_RUNNING));
	assert_false(pv_request_state_final(PV_REQ_QUEUED));
}

static void test_store_refuses_illegal_transition(void **state)
{
	(void)state;
	pv_store *st = open_store("sm.db");
	pv_request_rec r = request("req-1", PV_REQ_CREATING, "t", 2);
	put_request(st, &r, 0);
	r.state = PV_REQ_COMPLETE;
	put_request(st, &r, 0);
	r.state = PV_REQ_RUNNING;
	put_request(st, &r, PV_ESTATE);
	assert_non_null(strstr(pv_error_last(), "cannot move from complete to running"));
	pv_request_rec got;
	assert_int_equal(pv_store_request_get(st, "req-1", &got), 0);
	assert_int_equal(got.state, PV_REQ_COMPLETE);
	pv_store_close(st);
}

static void test_writes_need_a_write_transaction(void **state)
{
	(void)state;
	pv_store *st = open_store("tx.db");
	pv_request_rec r = request("req-1", PV_REQ_CREATING, "t", 1);
	assert_int_equal(pv_store_request_put(st, &r), PV_ESTATE);
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_request_put(st, &r), PV_ESTATE);
	assert_int_equal(pv_store_begin(st, true), PV_ESTATE); /* already in one */
	pv_store_commit(st);
	pv_store_close(st);
}

static void test_request_round_trips_every_field(void **state)
{
	(void)state;
	pv_store *st = open_store("rt.db");
	pv_request_rec r = request("ret-9", PV_REQ_RUNNING, "tmpl-a", 7);
	r.kind = PV_REQ_RETURN;
	snprintf(r.strategy, sizeof r.strategy, "fb");
	snprintf(r.message, sizeof r.message, "it's \"quoted\"");
	r.owner_pid = 4242;
	snprintf(r.owner_node, sizeof r.owner_node, "node-7 pid:[4026531836]");
	r.refreshed_ms = 555;
	r.delivered_ms = 777;
	put_request(st, &r, 0);
	pv_request_rec got;
	assert_int_equal(pv_store_request_get(st, "ret-9", &got), 0);
	assert_memory_equal(&got, &r, sizeof r);
	assert_int_equal(pv_store_request_get(st, "nope", &got), PV_ENOTFOUND);
	pv_store_close(st);
}

/* Once a request's id is delivered (or it is reclaimed), a writer holding
 * an older copy cannot take that back; the undelivered list holds settled
 * acquire requests made before the cutoff, oldest first. */
static void test_delivery_sticks_and_undelivered_requests_are_listed(void **state)
{
	(void)state;
	pv_store *st = open_store("undelivered.db");
	struct {
		const char *id;
		pv_request_state state;
		pv_request_kind kind;
		int64_t created, delivered;
	} rows[] = {
		{"req-late", PV_REQ_COMPLETE, PV_REQ_ACQUIRE, 300, 0},   /* listed, second */
		{"req-early", PV_REQ_RUNNING, PV_REQ_ACQUIRE, 100, 0},   /* listed, first */
		{"req-read", PV_REQ_COMPLETE, PV_REQ_ACQUIRE, 100, 50},  /* delivered */
		{"req-gone", PV_REQ_COMPLETE, PV_REQ_ACQUIRE, 100, -1},  /* reclaimed */
		{"req-busy", PV_REQ_CREATING, PV_REQ_ACQUIRE, 100, 0},   /* not settled */
		{"req-queued", PV_REQ_QUEUED, PV_REQ_ACQUIRE, 100, 0},   /* not settled */
		{"ret-1", PV_REQ_COMPLETE, PV_REQ_RETURN, 100, 0},       /* a return */
		{"req-new", PV_REQ_COMPLETE, PV_REQ_ACQUIRE, 900, 0},    /* after the cutoff */
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		pv_request_rec r = request(rows[i].id, rows[i].state, "t", 1);
		r.kind = rows[i].kind;
		r.created_ms = rows[i].created;
		r.delivered_ms = rows[i].delivered;
		put_request(st, &r, 0);
	}
	pv_request_rec stale = request("req-read", PV_REQ_COMPLETE, "t", 1); /* delivered_ms 0 */
	put_request(st, &stale, 0);
	pv_request_rec got;
	assert_int_equal(pv_store_request_get(st, "req-read", &got), 0);
	assert_int_equal(got.delivered_ms, 50);
	pv_request_rec *list = NULL;
	size_t n = 0;
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_request_list_undelivered(st, 500, &list, &n), 0);
	pv_store_commit(st);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "req-early");
	assert_string_equal(list[1].id, "req-late");
	free(list);
	pv_store_close(st);
}

static void test_rollback_leaves_nothing(void **state)
{
	(void)state;
	pv_store *st = open_store("rb.db");
	assert_int_equal(pv_store_begin(st, true), 0);
	pv_request_rec r = request("req-1", PV_REQ_CREATING, "t", 1);
	pv_machine_rec m = machine("i-1", "req-1", "t", "running");
	assert_int_equal(pv_store_request_put(st, &r), 0);
	assert_int_equal(pv_store_machine_put(st, &m), 0);
	pv_store_rollback(st);
	pv_request_rec got;
	pv_machine_rec gm;
	assert_int_equal(pv_store_request_get(st, "req-1", &got), PV_ENOTFOUND);
	assert_int_equal(pv_store_machine_get(st, "i-1", NULL, &gm), PV_ENOTFOUND);
	pv_store_close(st);
}

static void test_machine_filters_and_lookup_by_name(void **state)
{
	(void)state;
	pv_store *st = open_store("m.db");
	assert_int_equal(pv_store_begin(st, true), 0);
	pv_machine_rec a = machine("i-1", "req-1", "t1", "running");
	pv_machine_rec b = machine("i-2", "req-1", "t1", "terminated");
	pv_machine_rec c = machine("i-3", "req-2", "t2", "pending");
	memset(c.result, 0, sizeof c.result);
	snprintf(c.result, sizeof c.result, "fail"); /* being released */
	snprintf(b.return_id, sizeof b.return_id, "ret-1");
	assert_int_equal(pv_store_machine_put(st, &a), 0);
	assert_int_equal(pv_store_machine_put(st, &b), 0);
	assert_int_equal(pv_store_machine_put(st, &c), 0);
	assert_int_equal(pv_store_commit(st), 0);
	struct {
		pv_machine_filter f;
		const char *key;
		size_t n;
	} cases[] = {{PV_MF_REQUEST, "req-1", 2}, {PV_MF_RETURN, "ret-1", 1}, {PV_MF_TEMPLATE, "t1", 1},
		     {PV_MF_ALIVE, NULL, 2},     {PV_MF_ALL, NULL, 3},      {PV_MF_REQUEST, "zzz", 0},
		     {PV_MF_LEAVING, NULL, 1}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pv_machine_list l = {0};
		assert_int_equal(pv_store_machine_list(st, cases[i].f, cases[i].key, &l), 0);
		assert_int_equal(l.n, cases[i].n);
		pv_machine_list_clear(&l);
	}
	pv_machine_rec got;
	assert_int_equal(pv_store_machine_get(st, NULL, "host-i-3", &got), 0);
	assert_string_equal(got.machine_id, "i-3");
	assert_memory_equal(&got, &c, sizeof c);
	pv_store_close(st);
}

static void test_in_use_counts_live_machines_and_unsettled_reservations(void **state)
{
	(void)state;
	pv_store *st = open_store("use.db");
	assert_int_equal(pv_store_begin(st, true), 0);
	pv_machine_rec a = machine("i-1", "req-1", "t", "running");
	pv_machine_rec b = machine("i-2", "req-1", "t", "terminated");
	pv_machine_rec c = machine("i-3", "req-1", "other", "running");
	pv_request_rec creating = request("req-2", PV_REQ_CREATING, "t", 5);
	pv_request_rec queued = request("req-3", PV_REQ_QUEUED, "t", 3);
	pv_request_rec done = request("req-1", PV_REQ_COMPLETE, "t", 2);
	assert_int_equal(pv_store_request_put(st, &queued), 0);
	assert_int_equal(pv_store_machine_put(st, &a), 0);
	assert_int_equal(pv_store_machine_put(st, &b), 0);
	assert_int_equal(pv_store_machine_put(st, &c), 0);
	assert_int_equal(pv_store_request_put(st, &creating), 0);
	assert_int_equal(pv_store_request_put(st, &done), 0);
	assert_int_equal(pv_store_commit(st), 0);
	int64_t n = -1;
	assert_int_equal(pv_store_template_in_use(st, "t", &n), 0);
	assert_int_equal(n, 1 + 5 + 3);
	pv_store_close(st);
}

static void test_kv_put_get_replace(void **state)
{
	(void)state;
	pv_store *st = open_store("kv.db");
	char *v = NULL;
	assert_int_equal(pv_store_kv_get(st, "state/fb", &v), PV_ENOTFOUND);
	assert_int_equal(pv_store_begin(st, true), 0);
	assert_int_equal(pv_store_kv_put(st, "state/fb", "{\"a\":1}"), 0);
	assert_int_equal(pv_store_kv_put(st, "state/fb", "{\"a\":2}"), 0);
	assert_int_equal(pv_store_commit(st), 0);
	assert_int_equal(pv_store_kv_get(st, "state/fb", &v), 0);
	assert_string_equal(v, "{\"a\":2}");
	free(v);
	pv_store_close(st);
}

/* The broker's limiter keeps its buckets in the store: two limiters (two
 * processes) on one store spend one bucket, a drain by one empties it for
 * the other, other keys are other buckets, and a bucket without a capacity
 * or a refill rate is refused naming what it needs. */
static void test_limiters_on_one_store_share_their_buckets(void **state)
{
	(void)state;
	char where[600];
	location("limiter.db", where, sizeof where);
	pv_store *st = open_store("limiter.db");
	pv_limiter *a = NULL, *b = NULL;
	assert_int_equal(pv_broker_limiter_new(&a, where, NULL), 0);
	assert_int_equal(pv_broker_limiter_new(&b, where, NULL), 0);
	uint64_t wait = 1;
	/* 3 tokens, refilled at one a thousand seconds: nothing comes back meanwhile */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pv_limiter_take(i % 2 ? b : a, "ec2 run", 3, 0.001, &wait), 0);
		assert_int_equal(wait, 0);
	}
	assert_int_equal(pv_limiter_take(b, "ec2 run", 3, 0.001, &wait), 0);
	assert_true(wait > 900 * PV_NS_PER_S); /* empty for both: the next token in ~1000 s */
	assert_int_equal(pv_limiter_take(a, "ec2 describe", 3, 0.001, &wait), 0);
	assert_int_equal(wait, 0); /* another bucket */
	assert_int_equal(pv_limiter_drain(b, "ec2 describe", 3, 0.001), 0);
	assert_int_equal(pv_limiter_take(a, "ec2 describe", 3, 0.001, &wait), 0);
	assert_true(wait > 0);
	char *row = NULL;
	assert_int_equal(pv_store_kv_get(st, "limiter/ec2 run", &row), 0);
	assert_non_null(strstr(row, "tokens"));
	free(row);
	assert_int_equal(pv_limiter_take(a, "ec2 run", 0, 1, &wait), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "capacity"));
	pv_limiter_unref(a);
	pv_limiter_unref(b);
	pv_store_close(st);
}

static void test_reopen_keeps_data_and_schema_version(void **state)
{
	(void)state;
	pv_store *st = open_store("re.db");
	pv_request_rec r = request("req-1", PV_REQ_RUNNING, "t", 1);
	put_request(st, &r, 0);
	pv_store_close(st);
	st = open_store("re.db");
	pv_request_rec got;
	assert_int_equal(pv_store_request_get(st, "req-1", &got), 0);
	pv_store_close(st);
	assert_true(pv_store_schema_version() >= 1);
}

/* Processes that each open the store, write and close (Host Factory calls)
 * leave a WAL that stays near PV_SQLITE_WAL_KEEP_BYTES: it used to grow by
 * every one of them (the WAL was never emptied), 25 KiB a call. */
static void test_wal_of_short_lived_connections_stays_bounded(void **state)
{
	(void)state;
	char path[400], wal[420];
	snprintf(path, sizeof path, "%s/wal.db", dir);
	snprintf(wal, sizeof wal, "%s-wal", path);
	char value[2048];
	memset(value, 'x', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	off_t largest = 0;
	int emptied = 0;
	for (int i = 0; i < 400; i++) {
		pv_store *st = NULL;
		assert_int_equal(pv_store_open_sqlite(&st, path, NULL), 0);
		char key[32];
		snprintf(key, sizeof key, "k%d", i % 50);
		assert_int_equal(pv_store_begin(st, true), 0);
		assert_int_equal(pv_store_kv_put(st, key, value), 0);
		assert_int_equal(pv_store_commit(st), 0);
		pv_store_close(st);
		struct stat sb;
		assert_int_equal(stat(wal, &sb), 0);
		largest = sb.st_size > largest ? sb.st_size : largest;
		emptied += sb.st_size == 0;
	}
	assert_true(emptied > 0);
	/* one connection's own writes past the bound, not 400 of them */
	assert_true(largest <= PV_SQLITE_WAL_KEEP_BYTES + 64 * 1024);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open_sqlite(&st, path, NULL), 0);
	char *got = NULL;
	assert_int_equal(pv_store_kv_get(st, "k49", &got), 0);
	assert_string_equal(got, value); /* nothing lost by the emptying */
	free(got);
	pv_store_close(st);
}

/* A file written by schema version 1 (as a release with only that version
 * left it) is migrated in place and keeps its rows. */
static void test_version_1_file_is_migrated_keeping_rows(void **state)
{
	(void)state;
	char path[400];
	snprintf(path, sizeof path, "%s/v1.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	const char *v1 =
		"CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
		"CREATE TABLE requests (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,"
		" template_id TEXT NOT NULL DEFAULT '', strategy TEXT NOT NULL DEFAULT '',"
		" requested BIGINT NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '',"
		" owner_pid BIGINT NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL,"
		" updated_ms BIGINT NOT NULL, refreshed_ms BIGINT NOT NULL DEFAULT 0);"
		"CREATE INDEX requests_state ON requests(state, template_id);"
		"CREATE TABLE machines (machine_id TEXT PRIMARY KEY, request_id TEXT NOT NULL,"
		" return_id TEXT NOT NULL DEFAULT '', template_id TEXT NOT NULL, provider TEXT NOT NULL,"
		" name TEXT NOT NULL, private_ip TEXT NOT NULL DEFAULT '', public_ip TEXT NOT NULL DEFAULT '',"
		" status TEXT NOT NULL, result TEXT NOT NULL, instance_type TEXT NOT NULL DEFAULT '',"
		" price_type TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',"
		" launch_time BIGINT NOT NULL DEFAULT 0, updated_ms BIGINT NOT NULL);"
		"CREATE INDEX machines_request ON machines(request_id);"
		"CREATE INDEX machines_return ON machines(return_id);"
		"CREATE INDEX machines_template ON machines(template_id, status);"
		"CREATE INDEX machines_name ON machines(name);"
		"CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms BIGINT NOT NULL);"
		"INSERT INTO machines (machine_id, request_id, template_id, provider, name, status, result,"
		" updated_ms) VALUES ('i-old', 'req-old', 't', 'sim', 'old-host', 'running', 'succeed', 1);"
		"INSERT INTO requests (id, kind, state, template_id, created_ms, updated_ms)"
		" VALUES ('req-old', 'acquire', 'complete', 't', 1, 2);";
	assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open_sqlite(&st, path, NULL), 0);
	pv_machine_list l = {0};
	assert_int_equal(pv_store_machine_list(st, PV_MF_REQUEST, "req-old", &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "old-host");
	pv_machine_list_clear(&l);
	/* a request from before delivery was recorded counts as delivered:
	 * an upgrade reclaims nothing */
	pv_request_rec old;
	assert_int_equal(pv_store_request_get(st, "req-old", &old), 0);
	assert_int_equal(old.delivered_ms, 2);
	pv_request_rec *list = NULL;
	size_t n = 0;
	assert_int_equal(pv_store_request_list_undelivered(st, INT64_MAX, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	pv_store_close(st);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), pv_store_schema_version());
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* A template's capacity count (every getAvailableTemplates and
 * requestMachines) walks the index of live machines: a row lookup per
 * machine was half of a getAvailableTemplates next to 1,000 machines. */
static void test_capacity_count_reads_only_live_machines(void **state)
{
	(void)state;
	pv_store_close(open_store("plan.db"));
	char path[400], sql[512];
	snprintf(path, sizeof path, "%s/plan.db", dir);
	snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", pv_store_sql[PV_Q_IN_USE_M]);
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	const char *plan = (const char *)sqlite3_column_text(q, 3);
	if (!strstr(plan, "USING INDEX machines_live"))
		fail_msg("plan: %s", plan);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void test_newer_schema_is_refused(void **state)
{
	(void)state;
	pv_store *st = open_store("new.db");
	pv_store_close(st);
	char path[400];
	snprintf(path, sizeof path, "%s/new.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(pv_store_open_sqlite(&st, path, NULL), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "newer"));
}

static void test_bad_path_is_an_error(void **state)
{
	(void)state;
	pv_store *st = NULL;
	assert_int_equal(pv_store_open_sqlite(&st, "", NULL), PV_EINVAL);
	assert_int_equal(pv_store_open_sqlite(&st, "/proc/no/such/dir/x.db", NULL), PV_EIO);
	assert_null(st);
}

/* Threads with their own connections add requests at once: none is lost. */
static void *writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	char where[600];
	location("conc.db", where, sizeof where);
	pv_store *st = NULL;
	if (pv_store_open(&st, where, NULL) < 0)
		return (void *)1;
	for (int i = 0; i < 25; i++) {
		char id[64];
		snprintf(id, sizeof id, "req-%d-%d", t, i);
		pv_request_rec r = request(id, PV_REQ_CREATING, "t", 1);
		if (pv_store_begin(st, true) < 0 || pv_store_request_put(st, &r) < 0 ||
		    pv_store_commit(st) < 0) {
			pv_store_close(st);
			return (void *)1;
		}
	}
	pv_store_close(st);
	return NULL;
}

static void test_concurrent_writers_lose_nothing(void **state)
{
	(void)state;
	pv_store *st = open_store("conc.db");
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i);
	for (int i = 0; i < 8; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	pv_request_rec *list = NULL;
	size_t n = 0;
	assert_int_equal(pv_store_request_list(st, PV_REQ_CREATING, 0, &list, &n), 0);
	assert_int_equal(n, 8 * 25);
	free(list);
	pv_store_close(st);
}

/* ---- PostgreSQL only ------------------------------------------------------ */

/* A database left at schema version 3 (before owner_node) is migrated in
 * place and keeps its rows. */
static void test_pg_schema_3_database_is_migrated_keeping_rows(void **state)
{
	(void)state;
	char where[600], schema[96], sql[4096];
	location("v3.db", where, sizeof where);
	pg_schema("v3.db", schema, sizeof schema);
	int n = snprintf(sql, sizeof sql, "SET search_path = %s; CREATE TABLE schema_version (version INTEGER NOT NULL);"
			 " INSERT INTO schema_version VALUES (3);", schema);
	for (int v = 0; v < 3; v++)
		n += snprintf(sql + n, sizeof sql - (size_t)n, "%s", pv_store_migrations[v]);
	snprintf(sql + n, sizeof sql - (size_t)n,
		 "INSERT INTO requests (id, kind, state, template_id, owner_pid, created_ms, updated_ms)"
		 " VALUES ('req-old', 'acquire', 'running', 't', 77, 1, 2);");
	pg_exec(sql);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open(&st, where, NULL), 0);
	pv_request_rec got;
	assert_int_equal(pv_store_request_get(st, "req-old", &got), 0);
	assert_int_equal(got.owner_pid, 77);
	assert_string_equal(got.owner_node, "");
	assert_int_equal(got.state, PV_REQ_RUNNING);
	pv_store_close(st);
	snprintf(sql, sizeof sql, "SELECT 1 FROM %s.schema_version WHERE version = %d", schema,
		 pv_store_schema_version());
	PGconn *c = PQconnectdb(pg_url);
	PGresult *res = PQexec(c, sql);
	assert_int_equal(PQntuples(res), 1);
	PQclear(res);
	PQfinish(c);
}

static void test_pg_newer_schema_is_refused(void **state)
{
	(void)state;
	pv_store_close(open_store("new.db"));
	char schema[96], sql[200], where[600];
	pg_schema("new.db", schema, sizeof schema);
	snprintf(sql, sizeof sql, "UPDATE %s.schema_version SET version = 99", schema);
	pg_exec(sql);
	location("new.db", where, sizeof where);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open(&st, where, NULL), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "newer"));
	assert_null(st);
}

/* The server's URL with its password replaced by `password`. */
static void with_password(const char *password, char *out, size_t size)
{
	const char *at = strchr(pg_url, '@');
	const char *colon = strchr(pg_url + strlen("postgresql://"), ':');
	assert_true(at && colon && colon < at);
	snprintf(out, size, "%.*s:%s%s", (int)(colon - pg_url), pg_url, password, at);
}

static void test_pg_bad_url_or_password_is_an_error_without_the_secret(void **state)
{
	(void)state;
	pv_store *st = NULL;
	assert_int_equal(pv_store_open_postgres(&st, "mysql://x@127.0.0.1/db", NULL), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "postgresql://"));
	char url[600];
	with_password("Sesame-0f-wrong-7", url, sizeof url);
	assert_int_equal(pv_store_open(&st, url, NULL), PV_EIO);
	if (!strstr(pv_error_last(), "password authentication failed"))
		fail_msg("unexpected: %s", pv_error_last());
	assert_null(strstr(pv_error_last(), "Sesame-0f-wrong-7"));
	assert_null(st);
	/* nobody listens on port 1 of loopback */
	assert_int_equal(pv_store_open(&st, "postgresql://u:Sesame-0f-wrong-7@127.0.0.1:1/db", NULL), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "connect"));
	assert_null(strstr(pv_error_last(), "Sesame-0f-wrong-7"));
}

/* Two brokers (two connections) never write at once: the second writer
 * waits for the first (here: past its lock timeout), readers do not. */
static void test_pg_write_transactions_are_serial_across_connections(void **state)
{
	(void)state;
	pv_store *a = open_store("serial.db");
	char where[600];
	location("serial.db", where, sizeof where);
	pv_store *b = NULL;
	pv_store_options quick = {.busy_timeout_ms = 200};
	assert_int_equal(pv_store_open(&b, where, &quick), 0);
	assert_int_equal(pv_store_begin(a, true), 0);
	pv_request_rec r = request("req-1", PV_REQ_CREATING, "t", 1);
	assert_int_equal(pv_store_request_put(a, &r), 0);
	assert_int_equal(pv_store_begin(b, true), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "lock timeout"));
	char password[128];
	const char *colon = strchr(pg_url + strlen("postgresql://"), ':');
	snprintf(password, sizeof password, "%.*s", (int)strcspn(colon + 1, "@"), colon + 1);
	assert_null(strstr(pv_error_last(), password));
	pv_request_rec got;
	assert_int_equal(pv_store_begin(b, false), 0); /* a reader: its snapshot, no wait */
	assert_int_equal(pv_store_request_get(b, "req-1", &got), PV_ENOTFOUND);
	assert_int_equal(pv_store_commit(b), 0);
	assert_int_equal(pv_store_commit(a), 0);
	assert_int_equal(pv_store_begin(b, true), 0);
	assert_int_equal(pv_store_request_get(b, "req-1", &got), 0);
	assert_int_equal(pv_store_commit(b), 0);
	pv_store_close(b);
	pv_store_close(a);
}

/* The server drops the connection (restart, failover): the next
 * transaction connects again and prepares its statements again. */
static void test_pg_lost_connection_is_reopened_at_next_begin(void **state)
{
	(void)state;
	char where[700], app[64], sql[200];
	location("lost.db", where, sizeof where);
	snprintf(app, sizeof app, "pvt_lost_%ld", (long)getpid());
	size_t len = strlen(where);
	snprintf(where + len, sizeof where - len, "&application_name=%s", app);
	pv_store *st = NULL;
	assert_int_equal(pv_store_open(&st, where, NULL), 0);
	pv_request_rec r = request("req-1", PV_REQ_RUNNING, "t", 1);
	put_request(st, &r, 0);
	snprintf(sql, sizeof sql,
		 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s'", app);
	pg_exec(sql);
	pv_request_rec got;
	/* the first use after the drop fails, the next begin reconnects */
	if (pv_store_begin(st, false) == 0) {
		int rc = pv_store_request_get(st, "req-1", &got);
		pv_store_rollback(st);
		assert_true(rc == PV_EIO || rc == 0);
	}
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_request_get(st, "req-1", &got), 0);
	assert_int_equal(pv_store_commit(st), 0);
	pv_store_close(st);
}

/* A statement the server refuses to prepare (its table dropped behind the
 * store's back) is an error naming the cause; the connection goes on. */
static void test_pg_statement_that_cannot_be_prepared_is_an_error(void **state)
{
	(void)state;
	pv_store *st = open_store("gone.db");
	char schema[96], sql[160];
	pg_schema("gone.db", schema, sizeof schema);
	snprintf(sql, sizeof sql, "DROP TABLE %s.kv", schema);
	pg_exec(sql);
	char *v = NULL;
	assert_int_equal(pv_store_kv_get(st, "k", &v), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "prepare"));
	assert_non_null(strstr(pv_error_last(), "\"kv\" does not exist"));
	assert_null(v);
	pv_request_rec r = request("req-1", PV_REQ_RUNNING, "t", 1), got;
	put_request(st, &r, 0);
	assert_int_equal(pv_store_request_get(st, "req-1", &got), 0);
	pv_store_close(st);
}

#define EACH_STORE(t) cmocka_unit_test_teardown(t, pg_test_teardown)

int main(void)
{
	const struct CMUnitTest shared[] = {
		EACH_STORE(test_writes_need_a_write_transaction),
		EACH_STORE(test_request_round_trips_every_field),
		EACH_STORE(test_delivery_sticks_and_undelivered_requests_are_listed),
		EACH_STORE(test_rollback_leaves_nothing),
		EACH_STORE(test_machine_filters_and_lookup_by_name),
		EACH_STORE(test_in_use_counts_live_machines_and_unsettled_reservations),
		EACH_STORE(test_kv_put_get_replace),
		EACH_STORE(test_limiters_on_one_store_share_their_buckets),
		EACH_STORE(test_reopen_keeps_data_and_schema_version),
		EACH_STORE(test_concurrent_writers_lose_nothing),
	};
	const struct CMUnitTest sqlite_only[] = {
		cmocka_unit_test(test_state_names_round_trip_and_unknown_lists_valid),
		cmocka_unit_test(test_state_machine_allows_only_forward_moves),
		cmocka_unit_test(test_store_refuses_illegal_transition),
		cmocka_unit_test(test_version_1_file_is_migrated_keeping_rows),
		cmocka_unit_test(test_wal_of_short_lived_connections_stays_bounded),
		cmocka_unit_test(test_capacity_count_reads_only_live_machines),
		cmocka_unit_test(test_newer_schema_is_refused),
		cmocka_unit_test(test_bad_path_is_an_error),
	};
	const struct CMUnitTest postgres_only[] = {
		EACH_STORE(test_pg_schema_3_database_is_migrated_keeping_rows),
		EACH_STORE(test_pg_newer_schema_is_refused),
		EACH_STORE(test_pg_bad_url_or_password_is_an_error_without_the_secret),
		EACH_STORE(test_pg_write_transactions_are_serial_across_connections),
		EACH_STORE(test_pg_lost_connection_is_reopened_at_next_begin),
		EACH_STORE(test_pg_statement_that_cannot_be_prepared_is_an_error),
	};
	int failed = cmocka_run_group_tests_name("sqlite", shared, setup, teardown);
	failed += cmocka_run_group_tests_name("sqlite only", sqlite_only, setup, teardown);
	pg_url = getenv("PV_TEST_POSTGRES_URL");
	if (!pg_url || !*pg_url) {
		printf("postgresql: skipped (PV_TEST_POSTGRES_URL is not set; `make test` sets it)\n");
		return failed;
	}
	failed += cmocka_run_group_tests_name("postgresql", shared, setup, teardown);
	failed += cmocka_run_group_tests_name("postgresql only", postgres_only, setup, teardown);
	return failed;
}
