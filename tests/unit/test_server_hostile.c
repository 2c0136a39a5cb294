/*
 * test_server_hostile.c - provisio serve probed as an attacker and as an
 * unlucky operator would (issue 16), over real sockets on loopback: raw
 * bytes for what curl will not send (HEAD and a request after it on one
 * connection, CONNECT, bytes that are not UTF-8, heads that trickle,
 * bodies that never come), connection limits in all and per client
 * address (clients on 127.0.0.2, .3: all of 127/8 is loopback), failed
 * authentications, no provider call on a read, a second daemon on the
 * port, messages cut inside a character. Each test starts its own server
 * on 127.0.0.1:0 in this process and stops it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "test_server_support.h"
#include "server/server_internal.h"

/* ---- a configuration with the server block under test ------------------------------- */

/* One sim provider; access log on (every request is a line in
 * e->dir/server.log); `server_extra` and `auth_extra` are spliced into the
 * "server" and "server.auth" blocks, `sim_extra` into the sim's config
 * (each starts with a comma). */
static void config(ts_env *e, const char *server_extra, const char *auth_extra, const char *sim_extra)
{
	char rh[PV_SERVER_TOKEN_HASH_MAX], ah[PV_SERVER_TOKEN_HASH_MAX], text[8192];
	assert_int_equal(pv_server_hash_token(READ_TOKEN, 1000, rh, sizeof rh), 0);
	assert_int_equal(pv_server_hash_token(ADMIN_TOKEN, 1000, ah, sizeof ah), 0);
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"simA\", \"type\": \"sim\", \"config\": {\"seed\": 1%s}}],\n"
		 " \"default_strategy\": \"simA\",\n"
		 " \"store\": {\"path\": \"%s\"},\n"
		 " \"broker\": {\"templates_file\": \"%s\", \"status_max_age_seconds\": -1},\n"
		 " \"server\": {\"listen\": \"127.0.0.1:0\", \"threads\": 2, \"reconcile_interval_seconds\": 3600,\n"
		 "   \"auth\": {\"tokens\": [{\"name\": \"reader\", \"hash\": \"%s\", \"role\": \"read\"},\n"
		 "                         {\"name\": \"admin\", \"hash\": \"%s\", \"role\": \"admin\"}]%s}%s}}\n",
		 sim_extra ? sim_extra : "", e->store, e->templates, rh, ah, auth_extra ? auth_extra : "",
		 server_extra ? server_extra : "");
	bf_write_file(e->config, text);
}

static ts_env *start(const char *server_extra, const char *auth_extra, const char *sim_extra)
{
	ts_env *e = calloc(1, sizeof *e);
	ts_env_init(e);
	config(e, server_extra, auth_extra, sim_extra);
	if (ts_start(e) < 0)
		fail_msg("server: %s", pv_error_last());
	return e;
}

static void stop(ts_env *e)
{
	ts_env_clear(e);
	free(e);
}

static bool log_has(const ts_env *e, const char *needle)
{
	char path[320];
	snprintf(path, sizeof path, "%s/server.log", e->dir);
	fflush(e->log);
	return bf_file_has(path, needle);
}

/* ---- raw connections ------------------------------------------------------------------ */

static int port_of(const ts_env *e) { return atoi(strrchr(e->url, ':') + 1); }

/* A connection to the server from loopback address `src` (NULL:
 * 127.0.0.1). Reads give up after 60 s: a test waiting that long failed. */
static int rs_open(const ts_env *e, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {60, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (src) {
		struct sockaddr_in from = {.sin_family = AF_INET};
		inet_pton(AF_INET, src, &from.sin_addr);
		assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
	}
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(e))};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
	return fd;
}

static void rs_send(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k <= 0)
			return; /* the server may close first: what is read says the rest */
		s += k;
		n -= (size_t)k;
	}
}

static void rs_say(int fd, const char *s) { rs_send(fd, s, strlen(s)); }

typedef struct rs_answer {
	int status;
	char head[8192];
	char body[65536];
	size_t body_len;
} rs_answer;

static const char *rs_header(const rs_answer *a, const char *name)
{
	static char value[512];
	char key[80];
	snprintf(key, sizeof key, "\r\n%s:", name);
	const char *p = strcasestr(a->head, key);
	if (!p)
		return NULL;
	p += strlen(key);
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\r\n");
	snprintf(value, sizeof value, "%.*s", (int)(n < sizeof value ? n : sizeof value - 1), p);
	return value;
}

/* Reads one answer: its head, then Content-Length bytes (none when
 * `no_body`: the answer to a HEAD). 0, or -1 when the connection ended or
 * the read gave up first. */
static int rs_read(int fd, rs_answer *a, bool no_body)
{
	memset(a, 0, sizeof *a);
	size_t n = 0;
	while (n + 1 < sizeof a->head && !(n >= 4 && memcmp(a->head + n - 4, "\r\n\r\n", 4) == 0)) {
		ssize_t k = recv(fd, a->head + n, 1, 0);
		if (k <= 0)
			return -1;
		n++;
	}
	if (sscanf(a->head, "HTTP/1.1 %d", &a->status) != 1)
		return -1;
	const char *cl = rs_header(a, "Content-Length");
	size_t want = cl && !no_body ? (size_t)atol(cl) : 0;
	assert_true(want < sizeof a->body);
	while (a->body_len < want) {
		ssize_t k = recv(fd, a->body + a->body_len, want - a->body_len, 0);
		if (k <= 0)
			return -1;
		a->body_len += (size_t)k;
	}
	return 0;
}

/* Whether the server closed the connection (waiting for it). */
static bool rs_closed(int fd)
{
	char c;
	ssize_t k = recv(fd, &c, 1, 0);
	return k == 0 || (k < 0 && errno == ECONNRESET);
}

static json_t *rs_json(const rs_answer *a) { return json_loadb(a->body, a->body_len, 0, NULL); }

static const char *err_code(json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* The answer's body is a JSON error with this code, and says how long it is. */
static void assert_json_error(const rs_answer *a, int status, const char *code)
{
	assert_int_equal(a->status, status);
	assert_non_null(rs_header(a, "Content-Length"));
	assert_int_equal(atol(rs_header(a, "Content-Length")), a->body_len);
	json_t *j = rs_json(a);
	assert_non_null(j);
	assert_string_equal(err_code(j), code);
	json_decref(j);
}

/* A request on a connection that stays open, answered: the server holds it. */
static int held(const ts_env *e, const char *src)
{
	int fd = rs_open(e, src);
	rs_say(fd, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
	rs_answer a;
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_int_equal(a.status, 200);
	return fd;
}

static long metric(const ts_env *e, const char *sample)
{
	ts_resp r = ts_call(e, "GET", "/metrics", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	char line[200];
	snprintf(line, sizeof line, "\n%s ", sample); /* the sample, not its # HELP line */
	const char *p = strstr(r.raw, line);
	long v = p ? atol(p + strlen(line)) : -1;
	ts_resp_clear(&r);
	return v;
}

/* ---- HTTP correctness ------------------------------------------------------------------- */

/* HEAD answers the headers a GET would, Content-Length included, and no
 * body: the next answer on the connection starts right after them. */
static void head_has_the_length_and_no_body(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	int fd = rs_open(e, NULL);
	rs_say(fd, "HEAD /api/v1/templates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " READ_TOKEN "\r\n\r\n"
		   "GET /api/v1/templates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " READ_TOKEN "\r\n\r\n");
	rs_answer h, g;
	assert_int_equal(rs_read(fd, &h, true), 0);
	assert_int_equal(h.status, 200);
	assert_non_null(rs_header(&h, "Content-Length"));
	assert_int_equal(rs_read(fd, &g, false), 0); /* desynchronised, this would be body bytes */
	assert_int_equal(g.status, 200);
	assert_int_equal(atol(rs_header(&h, "Content-Length")), g.body_len);
	json_t *j = rs_json(&g);
	assert_int_equal(json_array_size(json_object_get(j, "templates")), 2);
	json_decref(j);
	close(fd);
	stop(e);
}

/* CONNECT: this is no proxy. 501 as JSON with its length, then closed. */
static void connect_is_501_and_closes(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	int fd = rs_open(e, NULL);
	rs_say(fd, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
	rs_answer a;
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_json_error(&a, 501, "NOT_IMPLEMENTED");
	assert_string_equal(rs_header(&a, "Connection"), "close");
	assert_true(rs_closed(fd));
	close(fd);
	stop(e);
}

/* A path that is not UTF-8 once decoded, raw or percent-encoded: a JSON
 * 400, and an access-log line with the method, the path escaped, the
 * status and the request id. */
static void path_not_utf8_is_400_json_and_logged(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	ts_resp r = ts_call(e, "GET", "/api/v1/templates/%ff", READ_TOKEN, NULL, "X-Request-Id: bad-path-1");
	assert_int_equal(r.status, 400);
	assert_string_equal(err_code(r.body), "INVALID_PATH");
	ts_resp_clear(&r);
	assert_true(log_has(e, "\"method\":\"GET\",\"path\":\"/api/v1/templates/%ff\",\"status\":400"));
	assert_true(log_has(e, "\"request_id\":\"bad-path-1\""));
	int fd = rs_open(e, NULL);
	rs_say(fd, "GET /caf\xc3 HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad-path-2\r\n\r\n");
	rs_answer a;
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_json_error(&a, 400, "BAD_REQUEST");
	close(fd);
	/* a head that cannot be parsed has no X-Request-Id to echo: one is made */
	assert_true(log_has(e, "\"method\":\"GET\",\"path\":\"/caf%C3\",\"status\":400"));
	assert_non_null(rs_header(&a, "X-Request-Id"));
	stop(e);
}

/* Whatever the bytes, the answer is JSON and the request is logged. */
static void garbage_is_400_json_and_logged(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	int fd = rs_open(e, NULL);
	rs_say(fd, "HELLO\x01 there\r\n\r\n");
	rs_answer a;
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_json_error(&a, 400, "BAD_REQUEST");
	assert_true(rs_closed(fd));
	close(fd);
	assert_true(log_has(e, "\"method\":\"HELLO%01\",\"path\":\"there\",\"status\":400"));
	stop(e);
}

/* A head over server.max_header_bytes: 431 as JSON (not libevent's HTML). */
static void long_header_is_431_json(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	int fd = rs_open(e, NULL);
	static char req[80000];
	int n = snprintf(req, sizeof req, "GET /health HTTP/1.1\r\nHost: t\r\nX-Long: ");
	memset(req + n, 'a', 70000);
	memcpy(req + n + 70000, "\r\n\r\n", 5);
	rs_say(fd, req);
	rs_answer a;
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_json_error(&a, 431, "HEADERS_TOO_LARGE");
	close(fd);
	assert_true(log_has(e, "\"method\":\"GET\",\"path\":\"/health\",\"status\":431"));
	stop(e);
}

/* ---- deadlines and the order of things ------------------------------------------------------ */

typedef struct trickle {
	int fd;
	atomic_bool stop;
} trickle;

/* A header line every 20 ms, as long as the server takes it. */
static void *trickler(void *arg)
{
	trickle *t = arg;
	rs_say(t->fd, "GET /health HTTP/1.1\r\n");
	for (int i = 0; !atomic_load(&t->stop); i++) {
		char line[64];
		snprintf(line, sizeof line, "X-Slow-%d: x\r\n", i);
		if (send(t->fd, line, strlen(line), MSG_NOSIGNAL) < 0)
			break;
		usleep(20000);
	}
	return NULL;
}

/* A head that trickles in keeps its connection no longer than
 * server.header_timeout_seconds: 408 as JSON, closed, counted. A client
 * that sends nothing at all is closed too. */
static void slow_head_is_cut_at_the_deadline(void **state)
{
	(void)state;
	ts_env *e = start(", \"header_timeout_seconds\": 0.5", NULL, NULL);
	trickle t = {.fd = rs_open(e, NULL)};
	pthread_t th;
	pthread_create(&th, NULL, trickler, &t);
	rs_answer a;
	assert_int_equal(rs_read(t.fd, &a, false), 0);
	atomic_store(&t.stop, true);
	pthread_join(th, NULL);
	assert_json_error(&a, 408, "REQUEST_TIMEOUT");
	assert_true(rs_closed(t.fd));
	close(t.fd);
	int silent = rs_open(e, NULL);
	assert_true(rs_closed(silent));
	close(silent);
	assert_int_equal(metric(e, "provisio_http_request_timeouts_total{phase=\"header\"}"), 1);
	stop(e);
}

/* An unknown token is refused before any of the body is read: the 401
 * comes while the client has sent only the head of a 1 MB body. */
static void token_is_checked_before_the_body(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	int fd = rs_open(e, NULL);
	rs_say(fd, "POST /api/v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer guess\r\n"
		   "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n");
	rs_answer a;
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_json_error(&a, 401, "UNAUTHENTICATED");
	assert_string_equal(rs_header(&a, "Connection"), "close");
	close(fd);
	/* a caller that may post, and asks first, is told to go on */
	fd = rs_open(e, NULL);
	const char body[] = "{\"template_id\": \"t1\", \"count\": 1}";
	char head[400];
	snprintf(head, sizeof head, "POST /api/v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
		 ADMIN_TOKEN "\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n", strlen(body));
	rs_say(fd, head);
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_int_equal(a.status, 100);
	rs_say(fd, body);
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_int_equal(a.status, 202);
	close(fd);
	stop(e);
}

/* ---- limits --------------------------------------------------------------------------------- */

/* Past server.max_connections_per_client an address is answered 503
 * TOO_MANY_CONNECTIONS while others are served; past server.max_connections
 * everyone is answered SERVER_BUSY until a connection closes. */
static void connections_are_limited_per_client_and_in_all(void **state)
{
	(void)state;
	ts_env *e = start(", \"max_connections\": 5, \"max_connections_per_client\": 2", NULL, NULL);
	int a1 = held(e, "127.0.0.2"), a2 = held(e, "127.0.0.2");
	int a3 = rs_open(e, "127.0.0.2");
	rs_answer a;
	assert_int_equal(rs_read(a3, &a, false), 0);
	assert_json_error(&a, 503, "TOO_MANY_CONNECTIONS");
	assert_true(rs_closed(a3));
	close(a3);
	int b1 = held(e, "127.0.0.3"), b2 = held(e, "127.0.0.3"), c1 = held(e, "127.0.0.4");
	int c2 = rs_open(e, "127.0.0.4"); /* the sixth */
	assert_int_equal(rs_read(c2, &a, false), 0);
	assert_json_error(&a, 503, "SERVER_BUSY");
	close(c2);
	close(a1);
	/* the server notices the close on its own time: wait for it */
	int c3 = -1;
	for (int i = 0; i < 3000; i++) {
		c3 = rs_open(e, "127.0.0.4");
		rs_say(c3, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_int_equal(rs_read(c3, &a, false), 0);
		if (a.status == 200)
			break;
		close(c3);
		c3 = -1;
		usleep(10000);
	}
	assert_true(c3 >= 0);
	int fds[] = {a2, b1, b2, c1, c3};
	for (size_t i = 0; i < 5; i++)
		close(fds[i]);
	/* the counts are read over one more connection: wait for room */
	for (int i = 0; i < 3000; i++) {
		ts_resp h = ts_call(e, "GET", "/health", NULL, NULL, NULL);
		long st = h.status;
		ts_resp_clear(&h);
		if (st == 200)
			break;
		usleep(10000);
	}
	assert_int_equal(metric(e, "provisio_http_connections_refused_total{reason=\"per_client\"}"), 1);
	assert_true(metric(e, "provisio_http_connections_refused_total{reason=\"max_connections\"}") >= 1);
	stop(e);
}

/* Unknown tokens count against their address: past
 * server.auth.max_failures it is answered 429 with Retry-After, good
 * token or not, without any hashing; other addresses are not affected. */
static void failed_authentications_are_limited_per_address(void **state)
{
	(void)state;
	ts_env *e = start(NULL, ", \"max_failures\": 3, \"failure_window_seconds\": 3600", NULL);
	rs_answer a;
	for (int i = 0; i < 4; i++) {
		int fd = rs_open(e, "127.0.0.2");
		rs_say(fd, "GET /api/v1/templates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer guess\r\n\r\n");
		assert_int_equal(rs_read(fd, &a, false), 0);
		close(fd);
		if (i < 3)
			assert_json_error(&a, 401, "UNAUTHENTICATED");
	}
	assert_json_error(&a, 429, "TOO_MANY_FAILED_AUTHENTICATIONS");
	assert_non_null(rs_header(&a, "Retry-After"));
	int fd = rs_open(e, "127.0.0.2");
	rs_say(fd, "GET /api/v1/templates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " READ_TOKEN "\r\n\r\n");
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_int_equal(a.status, 429);
	rs_say(fd, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"); /* no token needed: served */
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_int_equal(a.status, 200);
	close(fd);
	fd = rs_open(e, "127.0.0.3");
	rs_say(fd, "GET /api/v1/templates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " READ_TOKEN "\r\n\r\n");
	assert_int_equal(rs_read(fd, &a, false), 0);
	assert_int_equal(a.status, 200);
	close(fd);
	assert_int_equal(metric(e, "provisio_http_auth_rate_limited_total"), 2);
	stop(e);
}

/* ---- no provider call on a loop ----------------------------------------------------------------- */

static long status_calls(const ts_env *e)
{
	ts_resp r = ts_call(e, "GET", "/api/v1/providers", READ_TOKEN, NULL, NULL);
	assert_int_equal(r.status, 200);
	json_t *calls = json_object_get(json_object_get(json_object_get(json_object_get(r.body, "strategies"),
									  "simA"), "stats"), "calls");
	assert_non_null(calls);
	long n = (long)json_integer_value(json_object_get(calls, "get_instance_status"));
	ts_resp_clear(&r);
	return n;
}

/* Reads answer from the store as the reconciler keeps it: a request whose
 * machines are still booting, read every way, costs the provider nothing;
 * the reconciler's pass is what asks it. */
static void reads_make_no_provider_call(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, ", \"boot_delay_ms\": 3600000");
	ts_resp r = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, "{\"template_id\": \"t1\", \"count\": 2}",
			    NULL);
	assert_int_equal(r.status, 202);
	char id[80], mid[120], path[300];
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.body, "request_id")));
	snprintf(mid, sizeof mid, "%s", json_string_value(json_object_get(
						json_array_get(json_object_get(r.body, "machines"), 0), "machine_id")));
	ts_resp_clear(&r);
	long before = status_calls(e);
	const char *paths[] = {"/api/v1/requests/%s", "/api/v1/machines?request_id=%s", "/api/v1/machines?ids=%s"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, paths[i], i == 2 ? mid : id);
		r = ts_call(e, "GET", path, READ_TOKEN, NULL, NULL);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.raw, mid));
		ts_resp_clear(&r);
	}
	assert_int_equal(status_calls(e), before);
	json_t *rep = NULL;
	assert_int_equal(pv_server_reconcile(e->srv, &rep), 0);
	json_decref(rep);
	assert_true(status_calls(e) > before);
	stop(e);
}

/* ---- the port, exec, tokens --------------------------------------------------------------------- */

/* A second daemon on the port is refused, unless both ask to share it. */
static void a_second_daemon_on_the_port_is_refused(void **state)
{
	(void)state;
	ts_env *first = start(NULL, NULL, NULL);
	ts_env second;
	ts_env_init(&second);
	config(&second, NULL, NULL, NULL);
	char text[8192];
	bf_read_file(second.config, text, sizeof text);
	char *at = strstr(text, "\"listen\": \"127.0.0.1:0\"");
	assert_non_null(at);
	char fixed[8300];
	snprintf(fixed, sizeof fixed, "%.*s\"listen\": \"127.0.0.1:%d\"%s", (int)(at - text), text, port_of(first),
		 at + strlen("\"listen\": \"127.0.0.1:0\""));
	bf_write_file(second.config, fixed);
	assert_int_equal(ts_start(&second), PV_EIO);
	assert_non_null(strstr(pv_error_last(), "already in use"));
	assert_non_null(strstr(pv_error_last(), "server.reuse_port"));
	ts_env_clear(&second);
	stop(first);
}

/* Both with server.reuse_port: sharing the port was asked for. */
static void two_daemons_share_a_port_when_both_ask(void **state)
{
	(void)state;
	ts_env *first = start(", \"reuse_port\": true", NULL, NULL);
	ts_env *second = calloc(1, sizeof *second);
	ts_env_init(second);
	char extra[100];
	snprintf(extra, sizeof extra, ", \"reuse_port\": true, \"threads\": 1");
	config(second, extra, NULL, NULL);
	char text[8192], fixed[8300];
	bf_read_file(second->config, text, sizeof text);
	char *at = strstr(text, "\"listen\": \"127.0.0.1:0\", \"threads\": 2,");
	assert_non_null(at);
	snprintf(fixed, sizeof fixed, "%.*s\"listen\": \"127.0.0.1:%d\",%s", (int)(at - text), text,
		 port_of(first), at + strlen("\"listen\": \"127.0.0.1:0\", \"threads\": 2,"));
	bf_write_file(second->config, fixed);
	assert_int_equal(ts_start(second), 0);
	stop(second);
	stop(first);
}

/* Exec is off unless server.allow_exec; with it on, a template comes from
 * the templates file only (by id), never from the request. */
static void exec_is_off_unless_allowed_and_takes_templates_from_the_file(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	ts_resp r = ts_call(e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN,
			    "{\"operation\": \"health_check\"}", NULL);
	assert_int_equal(r.status, 403);
	assert_string_equal(err_code(r.body), "EXEC_DISABLED");
	ts_resp_clear(&r);
	stop(e);
	e = start(", \"allow_exec\": true", NULL, NULL);
	r = ts_call(e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN,
		    "{\"operation\": \"create_instances\", \"params\": {\"count\": 1,"
		    " \"template\": {\"templateId\": \"x\", \"command\": \"touch /tmp/pv-owned\"}}}",
		    NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.body, "error"), "field")),
			    "params.template");
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN,
		    "{\"operation\": \"create_instances\", \"params\": {\"count\": 1, \"template_id\": \"t9\"}}", NULL);
	assert_int_equal(r.status, 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r.body, "error"), "field")),
			    "params.template_id");
	ts_resp_clear(&r);
	r = ts_call(e, "POST", "/api/v1/providers/simA/exec", ADMIN_TOKEN,
		    "{\"operation\": \"create_instances\", \"params\": {\"count\": 1, \"template_id\": \"t1\"}}", NULL);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.body, "success")));
	ts_resp_clear(&r);
	stop(e);
}

/* Unsalted SHA-256 hashes are refused with the way out in the message. */
static void unsalted_token_hashes_are_refused(void **state)
{
	(void)state;
	ts_env e;
	ts_env_init(&e);
	char text[2048];
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"simA\", \"type\": \"sim\"}], \"store\": {\"path\": \"%s\"},"
		 " \"broker\": {\"templates_file\": \"%s\"}, \"server\": {\"listen\": \"127.0.0.1:0\","
		 " \"auth\": {\"tokens\": [{\"name\": \"old\", \"role\": \"admin\", \"sha256\":"
		 " \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}}}",
		 e.store, e.templates);
	bf_write_file(e.config, text);
	assert_int_equal(ts_start(&e), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "server.auth.tokens[0]"));
	assert_non_null(strstr(pv_error_last(), "--hash-token"));
	ts_env_clear(&e);
}

/* ---- messages cut inside a character --------------------------------------------------------------- */

/* An error naming a template id of 2-byte characters, longer than the
 * message buffer: the message is cut between characters, so the answer is
 * a JSON error, never an empty 400. Two ids, one byte apart: one of them
 * puts a byte cut inside a character whatever the message's prefix. */
static void long_multibyte_message_is_cut_between_characters(void **state)
{
	(void)state;
	ts_env *e = start(NULL, NULL, NULL);
	const char *const starts[] = {"x", "xy"};
	for (int k = 0; k < 2; k++) {
		char body[4096];
		snprintf(body, sizeof body, "{\"template_id\": \"%s", starts[k]);
		for (int i = 0; i < 700; i++)
			strcat(body, "\xc3\xa9"); /* é */
		strcat(body, "\", \"count\": 1}");
		ts_resp r = ts_call(e, "POST", "/api/v1/requests", ADMIN_TOKEN, body, NULL);
		assert_int_equal(r.status, 400);
		assert_non_null(r.body);
		const char *msg = json_string_value(json_object_get(json_object_get(r.body, "error"), "message"));
		assert_non_null(msg);
		char want[40];
		snprintf(want, sizeof want, "no template '%s\xc3\xa9", starts[k]);
		assert_non_null(strstr(msg, want));
		ts_resp_clear(&r);
	}
	stop(e);
}

/* An Idempotency-Key record read back from the store is judged by what
 * it says, and a time that is not one (negative, far future, missing)
 * makes it no record: no overflow, no replay of a made-up request. */
static void stored_idempotency_records_are_judged_strictly(void **state)
{
	(void)state;
	int64_t now = 1800000000000LL;
	char id[80];
	assert_int_equal(srv_idem_judge("{\"state\": \"done\", \"hash\": \"h\", \"request_id\": \"req-1\","
					" \"at_ms\": 1799999990000}", "h", now, id, sizeof id), SRV_IDEM_REPLAY);
	assert_string_equal(id, "req-1");
	assert_int_equal(srv_idem_judge("{\"state\": \"done\", \"hash\": \"other\", \"at_ms\": 1799999990000}",
					"h", now, id, sizeof id), SRV_IDEM_CONFLICT);
	assert_int_equal(srv_idem_judge("{\"state\": \"pending\", \"hash\": \"h\", \"at_ms\": 1799999990000}",
					"h", now, id, sizeof id), SRV_IDEM_PENDING);
	static const char *const nothing[] = {
		"{\"state\": \"done\", \"hash\": \"h\", \"request_id\": \"req-1\", \"at_ms\": -9223372036854775807}",
		"{\"state\": \"done\", \"hash\": \"h\", \"request_id\": \"req-1\", \"at_ms\": 9223372036854775807}",
		"{\"state\": \"done\", \"hash\": \"h\", \"request_id\": \"req-1\"}",
		"{\"state\": \"failed\", \"hash\": \"h\", \"at_ms\": 1799999990000}",
		"[1, 2]", "not json", ""};
	for (size_t i = 0; i < sizeof nothing / sizeof nothing[0]; i++) {
		assert_int_equal(srv_idem_judge(nothing[i], "h", now, id, sizeof id), SRV_IDEM_NEW);
		assert_string_equal(id, "");
	}
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(head_has_the_length_and_no_body),
		cmocka_unit_test(connect_is_501_and_closes),
		cmocka_unit_test(path_not_utf8_is_400_json_and_logged),
		cmocka_unit_test(garbage_is_400_json_and_logged),
		cmocka_unit_test(long_header_is_431_json),
		cmocka_unit_test(slow_head_is_cut_at_the_deadline),
		cmocka_unit_test(token_is_checked_before_the_body),
		cmocka_unit_test(connections_are_limited_per_client_and_in_all),
		cmocka_unit_test(failed_authentications_are_limited_per_address),
		cmocka_unit_test(reads_make_no_provider_call),
		cmocka_unit_test(a_second_daemon_on_the_port_is_refused),
		cmocka_unit_test(two_daemons_share_a_port_when_both_ask),
		cmocka_unit_test(exec_is_off_unless_allowed_and_takes_templates_from_the_file),
		cmocka_unit_test(unsalted_token_hashes_are_refused),
		cmocka_unit_test(long_multibyte_message_is_cut_between_characters),
		cmocka_unit_test(stored_idempotency_records_are_judged_strictly),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
