/*
 * clients.c - what the server remembers per client address: how many
 * connections it holds open (server.max_connections_per_client) and how
 * many times it failed to authenticate lately (server.auth.max_failures a
 * server.auth.failure_window_seconds).
 *
 * One table for all loops behind one mutex: it is touched when a
 * connection opens or closes and when a token is refused, never on the
 * path of an ordinary request. An address is forgotten when it holds no
 * connection and its failures are older than the window; entries kept
 * only for failures are capped, so a flood of addresses cannot grow the
 * table without bound (past the cap, new addresses are not rate-limited
 * until old ones expire, and the metric says how often that happened).
 */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "server/server_internal.h"

#define BUCKETS 4096
#define MAX_FAILURE_ONLY 65536

typedef struct entry {
	srv_addr addr;
	unsigned conns;
	unsigned failures;
	int64_t window_start_ms;
	struct entry *next;
} entry;

struct srv_clients {
	pthread_mutex_t lock;
	entry *buckets[BUCKETS];
	size_t failure_only; /* entries kept for failures alone */
	atomic_uint_fast64_t untracked;
};

void srv_addr_from_sockaddr(const struct sockaddr *sa, srv_addr *out, char *text, size_t tsize)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		out->b[10] = out->b[11] = 0xff; /* v4-mapped, one key space */
		memcpy(out->b + 12, &s4->sin_addr, 4);
		if (text)
			inet_ntop(AF_INET, &s4->sin_addr, text, (socklen_t)tsize);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		memcpy(out->b, &s6->sin6_addr, 16);
		if (text)
			inet_ntop(AF_INET6, &s6->sin6_addr, text, (socklen_t)tsize);
	} else if (text && tsize)
		text[0] = '\0';
}

int srv_clients_new(srv_clients **out)
{
	srv_clients *c = calloc(1, sizeof *c);
	if (!c)
		return pv_error_set(PV_ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void srv_clients_free(srv_clients *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (entry *e = c->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static size_t bucket_of(const srv_addr *a)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < sizeof a->b; i++)
		h = (h ^ a->b[i]) * 1099511628211ULL;
	return (size_t)(h % BUCKETS);
}

static entry **find(srv_clients *c, const srv_addr *a)
{
	entry **p = &c->buckets[bucket_of(a)];
	while (*p && memcmp((*p)->addr.b, a->b, sizeof a->b) != 0)
		p = &(*p)->next;
	return p;
}

static bool expired(const entry *e, int64_t now_ms, double window_s)
{
	return !e->failures || (double)(now_ms - e->window_start_ms) >= window_s * 1000.0;
}

/* Drops the entry at *p when nothing about it is worth keeping. */
static void maybe_forget(srv_clients *c, entry **p, int64_t now_ms, double window_s)
{
	entry *e = *p;
	if (e->conns || !expired(e, now_ms, window_s))
		return;
	if (e->failures)
		c->failure_only--;
	*p = e->next;
	free(e);
}

/* Forgets every failure-only entry whose window has passed. */
static void sweep(srv_clients *c, int64_t now_ms, double window_s)
{
	for (size_t i = 0; i < BUCKETS; i++)
		for (entry **p = &c->buckets[i]; *p;) {
			entry *e = *p;
			maybe_forget(c, p, now_ms, window_s);
			if (*p == e)
				p = &e->next;
		}
}

static entry *add(entry **slot, const srv_addr *a)
{
	entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->addr = *a;
	*slot = e;
	return e;
}

bool srv_clients_open(srv_clients *c, const srv_addr *a, unsigned cap)
{
	pthread_mutex_lock(&c->lock);
	entry **p = find(c, a);
	entry *e = *p ? *p : add(p, a);
	bool ok = e && e->conns < cap;
	if (ok) {
		if (!e->conns && e->failures)
			c->failure_only--;
		e->conns++;
	} else if (e && !e->conns && !e->failures) {
		*p = e->next; /* cap 0: nothing to keep */
		free(e);
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

void srv_clients_close(srv_clients *c, const srv_addr *a)
{
	pthread_mutex_lock(&c->lock);
	entry **p = find(c, a);
	if (*p && (*p)->conns) {
		entry *e = *p;
		e->conns--;
		if (!e->conns) {
			if (e->failures)
				c->failure_only++;
			/* the window is judged when the address is next seen or swept */
			if (!e->failures) {
				*p = e->next;
				free(e);
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void srv_clients_auth_failed(srv_clients *c, const srv_addr *a, int64_t now_ms, double window_s)
{
	pthread_mutex_lock(&c->lock);
	entry **p = find(c, a);
	entry *e = *p;
	if (!e) {
		if (c->failure_only >= MAX_FAILURE_ONLY)
			sweep(c, now_ms, window_s);
		p = find(c, a);
		e = c->failure_only < MAX_FAILURE_ONLY ? add(p, a) : NULL;
		if (!e) {
			atomic_fetch_add(&c->untracked, 1);
			pthread_mutex_unlock(&c->lock);
			return;
		}
	}
	if (e->failures && expired(e, now_ms, window_s)) {
		e->failures = 0;
		if (!e->conns)
			c->failure_only--;
	}
	if (!e->failures) {
		e->window_start_ms = now_ms;
		if (!e->conns)
			c->failure_only++;
	}
	e->failures++;
	pthread_mutex_unlock(&c->lock);
}

bool srv_clients_auth_blocked(srv_clients *c, const srv_addr *a, int64_t now_ms, unsigned max,
			      double window_s, unsigned *retry_after_s)
{
	bool blocked = false;
	pthread_mutex_lock(&c->lock);
	entry **p = find(c, a);
	if (*p) {
		entry *e = *p;
		if (e->failures && !expired(e, now_ms, window_s) && e->failures >= max) {
			blocked = true;
			double left = window_s - (double)(now_ms - e->window_start_ms) / 1000.0;
			*retry_after_s = left < 1 ? 1 : (unsigned)(left + 0.999);
		} else if (e->failures && expired(e, now_ms, window_s)) {
			if (!e->conns)
				c->failure_only--;
			e->failures = 0;
			if (!e->conns) {
				*p = e->next;
				free(e);
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	return blocked;
}

uint64_t srv_clients_untracked(srv_clients *c) { return c ? atomic_load(&c->untracked) : 0; }
