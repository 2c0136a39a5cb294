/*
 * test_server_process.c - `provisio serve` as a process: SIGHUP with a
 * good and a bad configuration, SIGTERM with a request in flight, the URL
 * file's permissions, running out of file descriptors (RLIMIT_NOFILE set
 * in the child), memory under bodies refused and bodies buffered. Each
 * test starts the real program on 127.0.0.1:0 and stops it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Starts the program; `server_extra` goes into the server block, and
 * RLIMIT_NOFILE is set to `nofile` (soft and hard) when not 0. */
static void start_with(proc *p, const char *server_extra, const char *sim_extra, rlim_t nofile)
{
	ts_env_init(&p->e);
	ts_config(&p->e, server_extra, sim_extra, NULL);
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
		if (nofile) { /* by the shell: under valgrind the test may not lower its own limit */
			char sh[64];
			snprintf(sh, sizeof sh, "ulimit -n %llu && exec \"$0\" \"$@\"", (unsigned long long)nofile);
			execl("/bin/sh", "sh", "-c", sh, PV_CLI_BIN, "--config", p->e.config, "serve", "--url-file",
			      p->urlf, (char *)NULL);
			_exit(126);
		}
		execl(PV_CLI_BIN, "provisio", "--config", p->e.config, "serve", "--url-file", p->urlf, (char *)NULL);
		_exit(127);
	}
	/* until the server says where it listens or is gone: a busy machine
	 * may take seconds to start it */
	int status = 0;
	bool gone = false;
	PV_TEST_WAIT_UNTIL(bf_file_has(p->urlf, "http") || (gone = waitpid(p->pid, &status, WNOHANG) == p->pid));
	if (gone)
		fail_msg("provisio serve exited (status %d) before writing %s", status, p->urlf);
	FILE *f = fopen(p->urlf, "r");
	assert_non_null(f);
	assert_non_null(fgets(p->e.url, sizeof p->e.url, f));
	fclose(f);
	p->e.url[strcspn(p->e.url, "\n")] = '\0';
}

static void start(proc *p, const char *sim_extra) { start_with(p, NULL, sim_extra, 0); }

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

/* ---- issue 16: the URL file, descriptors, memory ---------------------------------------- */

/* The URL file may carry the generated admin token: its owner's only,
 * even when it was there before with wider permissions. */
static void url_file_is_its_owners_only(void **state)
{
	(void)state;
	proc p = {0};
	ts_env_init(&p.e);
	snprintf(p.urlf, sizeof p.urlf, "%s/url", p.e.dir);
	int fd = open(p.urlf, O_WRONLY | O_CREAT, 0666);
	fchmod(fd, 0666);
	close(fd);
	ts_env_clear(&p.e);
	start(&p, NULL);
	struct stat st;
	assert_int_equal(stat(p.urlf, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	kill(p.pid, SIGTERM);
	assert_int_equal(finish(&p), 0);
	cleanup(&p);
}

static int port_of(const proc *p) { return atoi(strrchr(p->e.url, ':') + 1); }

/* A connection from the address FROM (NULL: any). */
static int connect_from(const proc *p, const char *from)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (from) {
		struct sockaddr_in me = {.sin_family = AF_INET};
		inet_pton(AF_INET, from, &me.sin_addr);
		assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
	}
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(p))};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	struct timeval tv = {60, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
	return fd;
}

static int connect_to(const proc *p) { return connect_from(p, NULL); }

/* Everything the server sends on fd until it closes (or the read gives up). */
static size_t read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t k;
	while (n + 1 < size && (k = recv(fd, buf + n, size - 1 - n, 0)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	return n;
}

static long sample(const char *text, const char *name)
{
	char line[200];
	snprintf(line, sizeof line, "\n%s ", name);
	const char *at = strstr(text, line);
	return at ? atol(at + strlen(line)) : -1;
}

static size_t count_lines(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t n = 0;
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/*
 * With RLIMIT_NOFILE at 64 and 120 clients connected, accept() runs out of
 * descriptors. The server keeps serving the connections it holds, pauses
 * accepting instead of spinning on the error (so the failures it counts
 * stay within one a pause), logs it once an interval, answers a waiting
 * client 503 with its reserve descriptor, and accepts again once
 * connections close.
 */

/* Whether one of the waiting clients was told the server is busy. */
static bool one_told_busy(const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		struct pollfd pf = {.fd = fds[i], .events = POLLIN};
		if (poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN)) {
			char buf[1024];
			ssize_t k = recv(fds[i], buf, sizeof buf - 1, MSG_PEEK);
			buf[k > 0 ? k : 0] = '\0';
			if (strstr(buf, "503") && strstr(buf, "SERVER_BUSY"))
				return true;
		}
	}
	return false;
}

static long health_status(const proc *p)
{
	ts_resp r = ts_call(&p->e, "GET", "/health", NULL, NULL, NULL);
	long status = r.status;
	ts_resp_clear(&r);
	return status;
}

static void running_out_of_descriptors_pauses_accepting(void **state)
{
	(void)state;
	proc p = {0};
	start_with(&p, ", \"max_connections\": 1000, \"header_timeout_seconds\": 300", NULL, 64);
	uint64_t t0 = pv_now_ns();
	int fds[120];
	for (int i = 0; i < 120; i++)
		fds[i] = connect_to(&p);
	PV_TEST_WAIT_UNTIL(bf_file_has(p.log, "accept: Too many open files"));
	assert_true(bf_file_has(p.log, "accept: Too many open files"));
	/* a waiting client is told, not left hanging: wait for one */
	bool told = false;
	PV_TEST_WAIT_UNTIL((told = one_told_busy(fds, 120)));
	assert_true(told);
	/* the first connection was accepted: the server still answers on it */
	char req[200], answer[65536];
	snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Authorization: Bearer %s\r\n\r\n", READ_TOKEN);
	assert_int_equal(send(fds[0], req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	read_all(fds[0], answer, sizeof answer);
	double elapsed = (double)(pv_now_ns() - t0) / 1e9;
	assert_int_equal(strncmp(answer, "HTTP/1.1 200", 12), 0);
	long failures = sample(answer, "provisio_http_accept_errors_total{reason=\"out_of_descriptors\"}");
	assert_true(failures >= 1);
	/* one failed accept a 100 ms pause at most, never a spin */
	assert_true(failures <= (long)(elapsed * 10) + 5);
	assert_true(count_lines(p.log, "accept: Too many open files") <= (size_t)(elapsed / 10) + 1);
	struct stat st;
	assert_int_equal(stat(p.log, &st), 0);
	assert_true(st.st_size < 64 * 1024);
	for (int i = 0; i < 120; i++)
		close(fds[i]);
	long status = 0;
	PV_TEST_WAIT_UNTIL((status = health_status(&p)) == 200);
	assert_int_equal(status, 200);
	kill(p.pid, SIGTERM);
	assert_int_equal(finish(&p), 0);
	cleanup(&p);
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

static void send_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		buf += k;
		n -= (size_t)k;
	}
}

#define BIG (4u << 20)

/*
 * Memory: 150 callers with an unknown token announce 4 MiB bodies and send
 * them; each is refused before its body is read, so the server's memory
 * barely moves. Then 30 admins hold 4 MiB bodies in the server at once
 * (buffered: the memory goes up by about that), and once they are answered
 * and gone the memory is back near where it started.
 */
static void refused_bodies_cost_nothing_and_buffered_ones_are_given_back(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip(); /* ASan keeps freed memory in quarantine: the RSS is not the allocator's */
#endif
	proc p = {0};
	/* deadlines far away: on a busy machine sending 120 MiB may take longer
	 * than the default 30 s a body has, and a body cut short frees its buffer */
	start_with(&p, ", \"max_body_bytes\": 4194304, \"header_timeout_seconds\": 3600, "
		   "\"body_timeout_seconds\": 3600", NULL, 0);
	for (int i = 0; i < 5; i++) { /* warm: both loops, the store, the token */
		ts_resp r = ts_call(&p.e, "GET", "/api/v1/templates", ADMIN_TOKEN, NULL, NULL);
		ts_resp_clear(&r);
	}
	long base = rss_kb(p.pid);
	char *junk = malloc(BIG);
	memset(junk, ' ', BIG);
	char head[300];
	int fds[150];
	for (int i = 0; i < 150; i++) { /* from another address than the admin's below, which
					  * its failures would have limited (429) */
		fds[i] = connect_from(&p, "127.0.0.2");
		snprintf(head, sizeof head, "POST /api/v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
			 "guess-%d\r\nContent-Length: %u\r\n\r\n", i, BIG);
		send_all(fds[i], head, strlen(head));
	}
	for (int i = 0; i < 150; i++) {
		send_all(fds[i], junk, BIG); /* refused: the server closes as it may */
		char answer[2048];
		read_all(fds[i], answer, sizeof answer);
		assert_true(strstr(answer, " 401 ") || strstr(answer, " 429 "));
	}
	long refused = rss_kb(p.pid);
	for (int i = 0; i < 150; i++)
		close(fds[i]);
	assert_true(refused - base < 32 * 1024);
	/* 30 bodies held at once: all but their last byte sent */
	int held[30];
	for (int i = 0; i < 30; i++) {
		held[i] = connect_to(&p);
		snprintf(head, sizeof head, "POST /api/v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
			 "%s\r\nContent-Length: %u\r\n\r\n[", ADMIN_TOKEN, BIG);
		send_all(held[i], head, strlen(head));
		send_all(held[i], junk, BIG - 2);
	}
	long peak = 0;
	for (int i = 0; i < 12000 && peak - base < 100 * 1024; i++) { /* the server reads them */
		peak = rss_kb(p.pid);
		usleep(10000);
	}
	assert_true(peak - base >= 100 * 1024);
	for (int i = 0; i < 30; i++) {
		send_all(held[i], "]", 1);
		char answer[2048];
		ssize_t k = recv(held[i], answer, sizeof answer - 1, 0);
		answer[k > 0 ? k : 0] = '\0';
		assert_non_null(strstr(answer, " 400 ")); /* "[  ...  ]" is JSON, not an object */
		close(held[i]);
	}
	long after = base + 1000000;
	for (int i = 0; i < 12000 && after - base >= 16 * 1024; i++) { /* they close on the server's time */
		after = rss_kb(p.pid);
		usleep(10000);
	}
	assert_true(after - base < 16 * 1024);
	free(junk);
	kill(p.pid, SIGTERM);
	assert_int_equal(finish(&p), 0);
	cleanup(&p);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sighup_with_good_config_applies_it),
		cmocka_unit_test(sighup_with_bad_config_keeps_the_old_one),
		cmocka_unit_test(sigterm_lets_the_request_in_flight_finish),
		cmocka_unit_test(url_file_is_its_owners_only),
		cmocka_unit_test(running_out_of_descriptors_pauses_accepting),
		cmocka_unit_test(refused_bodies_cost_nothing_and_buffered_ones_are_given_back),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
