/*
 * fuzz_rest_api.c - libFuzzer target for `provisio serve` as a whole: the
 * input is sent as raw bytes over loopback to a server running in this
 * process (sim provider, SQLite store, auth off on loopback so the routes
 * and their bodies are reached, exec allowed), then the sending side is
 * shut. Whatever was sent, each answer must be well-formed HTTP/1.1 with
 * a Content-Length that matches, and every error must carry a JSON body
 * {"error": {"code", "message"}}.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "provisio/provisio.h"
#include "provisio/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int port;

static void *serve(void *arg)
{
	pv_server_run(arg, false);
	return NULL;
}

static void start(void)
{
	char dir[] = "/tmp/pv-fuzz-rest-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char cfg[400], tmpl[400], text[2048];
	snprintf(tmpl, sizeof tmpl, "%s/templates.json", dir);
	FILE *f = fopen(tmpl, "w");
	fputs("{\"templates\": [{\"templateId\": \"t1\", \"maxNumber\": 20}, {\"templateId\": \"t2\"}]}", f);
	fclose(f);
	snprintf(cfg, sizeof cfg, "%s/provisio.json", dir);
	snprintf(text, sizeof text,
		 "{\"providers\": [{\"name\": \"simA\", \"type\": \"sim\", \"config\": {\"seed\": 1, \"capacity\": 50}}],"
		 " \"default_strategy\": \"simA\", \"store\": {\"path\": \"%s/provisio.db\"},"
		 " \"broker\": {\"templates_file\": \"%s\"},"
		 " \"server\": {\"listen\": \"127.0.0.1:0\", \"threads\": 1, \"access_log\": false,"
		 "  \"allow_exec\": true, \"reconcile_interval_seconds\": 3600, \"header_timeout_seconds\": 5,"
		 "  \"max_connections_per_client\": 100000, \"logging\": {\"level\": \"off\"},"
		 "  \"auth\": {\"enabled\": false}}}", dir, tmpl);
	f = fopen(cfg, "w");
	fputs(text, f);
	fclose(f);
	pv_server_options o = {0};
	o.open.config.path = cfg;
	o.log = fopen("/dev/null", "w");
	pv_server *srv = NULL;
	if (pv_server_new(&srv, &o, NULL) < 0) {
		fprintf(stderr, "fuzz_rest_api: %s\n", pv_error_last());
		abort();
	}
	port = pv_server_port(srv);
	pthread_t th;
	pthread_create(&th, NULL, serve, srv);
}

/* One answer at p (of n bytes left): its length, or 0 when it is not a
 * whole well-formed answer (abort when it is malformed). */
static size_t check_answer(const char *p, size_t n)
{
	const char *end = memmem(p, n, "\r\n\r\n", 4);
	if (!end)
		abort(); /* a server that answers sends whole heads */
	int status = 0;
	if (sscanf(p, "HTTP/1.1 %3d ", &status) != 1 || status < 100 || status > 599)
		abort();
	size_t head = (size_t)(end - p) + 4;
	if (status == 100)
		return head;
	const char *cl = strcasestr(p, "\r\nContent-Length: ");
	if (!cl || cl > end)
		abort();
	size_t len = (size_t)atol(cl + 18);
	if (status >= 400 && !len)
		abort(); /* an error without its JSON */
	/* a HEAD answer has the length and no body: the end, or the next answer */
	if (head + len > n || (n - head >= 9 && memcmp(p + head, "HTTP/1.1 ", 9) == 0))
		return head;
	const char *body = p + head;
	if (status >= 400) {
		json_t *j = json_loadb(body, len, 0, NULL);
		json_t *e = json_object_get(j, "error");
		if (!json_is_string(json_object_get(e, "code")) || !json_is_string(json_object_get(e, "message")))
			abort();
		json_decref(j);
	}
	return head + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, start);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	struct timeval tv = {20, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
		perror("fuzz_rest_api: connect");
		abort();
	}
	for (size_t off = 0; off < size;) {
		ssize_t k = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (k <= 0)
			break; /* answered and closed early: fine */
		off += (size_t)k;
	}
	shutdown(fd, SHUT_WR);
	static char buf[1 << 20];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof buf && (k = recv(fd, buf + n, sizeof buf - n, 0)) > 0)
		n += (size_t)k;
	/* closed with a reset: hundreds of connections a second would
	 * otherwise leave the loopback's ephemeral ports in TIME_WAIT */
	struct linger lg = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
	/* the answers, one after another (pipelined requests) */
	for (size_t at = 0; at < n;) {
		size_t len = check_answer(buf + at, n - at);
		at += len > n - at ? n - at : len;
	}
	return 0;
}
