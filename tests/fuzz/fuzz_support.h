/*
 * fuzz_support.h - what several libFuzzer targets share: a scratch
 * directory made once per process, files written into it, a broker over
 * the sim provider and a SQLite store in it, and quiet logs. Header-only:
 * each fuzz_*.c is one program.
 */
#ifndef PV_FUZZ_SUPPORT_H
#define PV_FUZZ_SUPPORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "provisio/provisio.h"

/* The scratch directory of this process (made on first use). */
static inline const char *fz_dir(void)
{
	static char dir[64];
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/pv-fuzz-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		pv_log_set_level(PV_LOG_OFF);
	}
	return dir;
}

/* Writes `len` bytes to `name` in the scratch directory; its path in `out`. */
static inline void fz_write(const char *name, const void *data, size_t len, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", fz_dir(), name);
	FILE *f = fopen(out, "wb");
	if (!f)
		abort();
	fwrite(data, 1, len, f);
	fclose(f);
}

/* A broker from a configuration over one sim provider ("sim"), the
 * templates file given (a path), and the store `db` in the scratch
 * directory. NULL when pv_broker_open refuses (a bad templates file). */
static inline pv_broker *fz_broker(const char *templates_path, const char *db)
{
	char cfg[300], store[300];
	static const char text[] = "{\"providers\": [{\"name\": \"sim\", \"type\": \"sim\","
				   " \"config\": {\"seed\": 1, \"capacity\": 40}}], \"default_strategy\": \"sim\"}";
	fz_write("provisio.json", text, sizeof text - 1, cfg, sizeof cfg);
	snprintf(store, sizeof store, "%s/%s", fz_dir(), db);
	pv_broker_open_options o = {0};
	o.config.path = cfg;
	o.templates_path = templates_path;
	o.store_path = store;
	pv_diags d;
	pv_diags_init(&d);
	pv_broker *b = NULL;
	if (pv_broker_open(&b, &o, &d) < 0)
		b = NULL;
	pv_diags_clear(&d);
	return b;
}

/* ---- a loopback HTTP peer ------------------------------------------------------------- */

/*
 * A one-thread HTTP/1.1 peer on 127.0.0.1: it reads each request (head and
 * Content-Length body, kept in `last` for the fuzz target), then answers
 * with the status and body the target set (Connection: close). What a
 * provider's remote end, or EC2, would send back, under the fuzzer's
 * control.
 */
typedef struct fz_peer {
	int port;
	pthread_mutex_t lock;
	int status;
	char *answer;
	size_t answer_len;
	char last[1 << 16];
	size_t last_len;
} fz_peer;

static inline void *fz_peer_main(void *arg)
{
	fz_peer *p = arg;
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	socklen_t al = sizeof a;
	if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 64) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &al) < 0)
		abort();
	pthread_mutex_lock(&p->lock);
	p->port = ntohs(a.sin_port);
	pthread_mutex_unlock(&p->lock);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			continue;
		char req[1 << 16];
		size_t n = 0;
		ssize_t k;
		const char *end = NULL;
		while (n < sizeof req && (k = recv(fd, req + n, sizeof req - n, 0)) > 0) {
			n += (size_t)k;
			end = memmem(req, n, "\r\n\r\n", 4);
			if (!end)
				continue;
			const char *cl = strcasestr(req, "\r\ncontent-length:");
			size_t want = (size_t)(end - req) + 4 + (cl && cl < end ? (size_t)atol(cl + 17) : 0);
			if (n >= want)
				break;
		}
		pthread_mutex_lock(&p->lock);
		memcpy(p->last, req, n);
		p->last_len = n;
		char head[200];
		int hn = snprintf(head, sizeof head, "HTTP/1.1 %d Fuzz\r\nContent-Type: application/json\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n", p->status, p->answer_len);
		(void)!send(fd, head, (size_t)hn, MSG_NOSIGNAL);
		if (p->answer_len)
			(void)!send(fd, p->answer, p->answer_len, MSG_NOSIGNAL);
		pthread_mutex_unlock(&p->lock);
		shutdown(fd, SHUT_WR);
		while (recv(fd, req, sizeof req, 0) > 0)
			;
		close(fd);
	}
	return NULL;
}

static inline fz_peer *fz_peer_start(void)
{
	fz_peer *p = calloc(1, sizeof *p);
	pthread_mutex_init(&p->lock, NULL);
	pthread_t th;
	pthread_create(&th, NULL, fz_peer_main, p);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		int port = p->port;
		pthread_mutex_unlock(&p->lock);
		if (port)
			break;
		usleep(1000);
	}
	return p;
}

/* What the peer answers from now on. */
static inline void fz_peer_answer(fz_peer *p, int status, const void *body, size_t len)
{
	pthread_mutex_lock(&p->lock);
	free(p->answer);
	p->answer = malloc(len + 1);
	memcpy(p->answer, body, len);
	p->answer_len = len;
	p->status = status;
	pthread_mutex_unlock(&p->lock);
}

#endif
