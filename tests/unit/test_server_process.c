/*
 * test_server_process.c - `provisio serve` as a process: SIGHUP with a
 * good and a bad configuration, SIGTERM with a request in flight. Each
 * test starts the real program on 127.0.0.1:0 and stops it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "child_process.h"
#include "test_server_support.h"
#include "wait.h"
#include "provisio/store.h"

typedef struct proc {
	ts_env e;
	pid_t pid;
	char log[300], urlf[300];
} proc;

static void start(proc *p, const char *sim_extra)
{
	ts_env_init(&p->e);
	ts_config(&p->e, NULL, sim_extra, NULL);
	snprintf(p->log, sizeof p->log, "%s/serve.log", p->e.dir);
	snprintf(p->urlf, sizeof p->urlf, "%s/url", p->e.dir);
	pid_t parent = getpid();
	p->pid = fork();
	if (p->pid == 0) {
		pv_test_die_with_parent(parent);
		int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 1);
		setenv("PROVISIO_LOG", "info", 1);
		execl(PV_CLI_BIN, "provisio", "--config", p->e.config, "serve", "--url-file", p->urlf, (char *)NULL);
		_exit(127);
	}
	PV_TEST_WAIT_UNTIL(bf_file_has(p->urlf, "http"));
	FILE *f = fopen(p->urlf, "r");
	assert_non_null(f);
	assert_non_null(fgets(p->e.url, sizeof p->e.url, f));
	fclose(f);
	p->e.url[strcspn(p->e.url, "\n")] = '\0';
}

/* Waits for the process to exit; its exit status, or -1 when it had to be
 * killed (it outlived the safety bound). */
static int finish(proc *p)
{
	int st = 0;
	bool exited = false;
	PV_TEST_WAIT_UNTIL((exited = waitpid(p->pid, &st, WNOHANG) == p->pid));
	if (exited)
		return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	return -1;
}

static void cleanup(proc *p)
{
	if (p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	ts_env_clear(&p->e);
}

static void sighup_with_good_config_applies_it(void **state)
{
	(void)state;
	proc p = {0};
	start(&p, NULL);
	ts_resp r = ts_call(&p.e, "GET", "/api/v1/templates/t2", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 404);
	ts_resp_clear(&r);
	bf_write_file(p.e.templates, "{\"templates\": [{\"templateId\": \"t2\", \"maxNumber\": 5}]}");
	kill(p.pid, SIGHUP);
	PV_TEST_WAIT_UNTIL(bf_file_has(p.log, "configuration reloaded"));
	assert_true(bf_file_has(p.log, "configuration reloaded"));
	r = ts_call(&p.e, "GET", "/api/v1/templates/t2", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
	kill(p.pid, SIGTERM);
	assert_int_equal(finish(&p), 0);
	cleanup(&p);
}

static void sighup_with_bad_config_keeps_the_old_one(void **state)
{
	(void)state;
	proc p = {0};
	start(&p, NULL);
	bf_write_file(p.e.config, "{\"providers\": [{\"name\": \"x\", \"type\": \"sim\", \"config\": {\"seed\": \"one\"}}],"
				  " \"server\": {\"threads\": -4}}");
	kill(p.pid, SIGHUP);
	PV_TEST_WAIT_UNTIL(bf_file_has(p.log, "reload rejected"));
	assert_true(bf_file_has(p.log, "reload rejected"));
	assert_true(bf_file_has(p.log, "server.threads")); /* the reason is logged */
	ts_resp r = ts_call(&p.e, "GET", "/api/v1/templates/t1", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	ts_resp_clear(&r);
	kill(p.pid, SIGTERM);
	assert_int_equal(finish(&p), 0);
	cleanup(&p);
}

typedef struct inflight {
	const ts_env *e;
	ts_resp r;
} inflight;

static void *slow_create(void *arg)
{
	inflight *f = arg;
	f->r = ts_call(f->e, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": \"t1\", \"count\": 1}", NULL);
	return NULL;
}

/* Whether the store holds a request still being created (its provider call
 * is in flight). One open store, read afresh each time: a poll costs a
 * query, not an open, so even under valgrind on a loaded machine it comes
 * round many times within the call. */
static bool creating(pv_store *st)
{
	pv_request_rec *list = NULL;
	size_t n = 0;
	if (pv_store_begin(st, false) == 0) {
		pv_store_request_list(st, PV_REQ_CREATING, 0, &list, &n);
		pv_store_commit(st);
	}
	free(list);
	return n > 0;
}

static void sigterm_lets_the_request_in_flight_finish(void **state)
{
	(void)state;
	proc p = {0};
	/* every sim call takes 5 s: the request is seen in flight, then stopped */
	start(&p, ", \"latency\": {\"distribution\": \"fixed\", \"mean_ms\": 5000}");
	pv_store *store = NULL;
	assert_int_equal(pv_store_open_sqlite(&store, p.e.store, NULL), 0);
	inflight f = {.e = &p.e};
	pthread_t th;
	pthread_create(&th, NULL, slow_create, &f);
	bool in_flight = false;
	PV_TEST_WAIT_UNTIL((in_flight = creating(store)));
	pv_store_close(store);
	assert_true(in_flight);
	kill(p.pid, SIGTERM);
	pthread_join(th, NULL);
	assert_int_equal(f.r.status, 202);
	assert_int_equal(json_array_size(json_object_get(f.r.body, "machines")), 1);
	ts_resp_clear(&f.r);
	assert_int_equal(finish(&p), 0);
	assert_true(bf_file_has(p.log, "SIGTERM received"));
	assert_true(bf_file_has(p.log, "stopped; kernel state saved"));
	/* nothing listens any more */
	ts_resp r = ts_call(&p.e, "GET", "/health", NULL, NULL, NULL);
	assert_int_equal(r.status, 0);
	ts_resp_clear(&r);
	/* kernel state (the fallback's breakers) was saved on the way out */
	pv_store *st = NULL;
	assert_int_equal(pv_store_open_sqlite(&st, p.e.store, NULL), 0);
	char *text = NULL;
	assert_int_equal(pv_store_begin(st, false), 0);
	assert_int_equal(pv_store_kv_get(st, "state/main", &text), 0);
	pv_store_commit(st);
	assert_non_null(strstr(text, "simA"));
	free(text);
	pv_store_close(st);
	cleanup(&p);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sighup_with_good_config_applies_it),
		cmocka_unit_test(sighup_with_bad_config_keeps_the_old_one),
		cmocka_unit_test(sigterm_lets_the_request_in_flight_finish),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
