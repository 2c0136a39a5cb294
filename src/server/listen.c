/*
 * listen.c - accepting connections: the listening socket, the limits
 * (server.max_connections, per client address), running out of file
 * descriptors, and handing connections to the loops.
 *
 * By default one socket, bound without SO_REUSEPORT, so the kernel refuses
 * a second daemon on the same port instead of splitting the clients
 * between two stores and two sets of tokens; loop 0 accepts and hands each
 * connection to the loop holding the fewest. With server.reuse_port each
 * loop has its own socket (and another process may join the port).
 *
 * When descriptors run out, accept() fails at once every time it is
 * called, so a level-triggered loop spins and logs: instead a reserve
 * descriptor is given up to accept one waiting client and tell it 503,
 * accepting pauses for a moment, and the log says so once an interval.
 * A refused connection is answered 503 as JSON and closed, never read.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "server/server_internal.h"
#include "util/utf8.h"

struct srv_inbox_item {
	evutil_socket_t fd;
	srv_addr addr;
	char peer[64];
};

struct srv_listener {
	srv_thread *t;      /* the loop that accepts */
	evutil_socket_t fd;
	bool distribute;    /* one socket for all loops: hand connections over */
	struct event *ev, *resume;
	int reserve;        /* a descriptor kept to answer when they run out */
	int64_t last_log_ms[3]; /* by door_trouble */
	uint64_t quiet[3];      /* occurrences since its last line */
};

enum door_trouble { DOOR_FULL, DOOR_CLIENT, DOOR_ACCEPT };

#define ACCEPT_PAUSE_MS 100
#define LOG_INTERVAL_MS 10000

static const srv_settings *settings(srv_thread *t)
{
	srv_world *w = srv_thread_world(t);
	return w ? &w->set : NULL;
}

/* ---- handing connections to a loop ---------------------------------------------------- */

static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_thread *t = arg;
	pthread_mutex_lock(&t->inbox_lock);
	struct srv_inbox_item *items = t->inbox;
	size_t n = t->inbox_n;
	t->inbox = NULL;
	t->inbox_n = t->inbox_cap = 0;
	pthread_mutex_unlock(&t->inbox_lock);
	for (size_t i = 0; i < n; i++)
		srv_conn_new(t, items[i].fd, &items[i].addr, items[i].peer);
	free(items);
}

int srv_inbox_init(srv_thread *t)
{
	TAILQ_INIT(&t->conns);
	pthread_mutex_init(&t->inbox_lock, NULL);
	t->inbox_ev = event_new(t->base, -1, EV_PERSIST, inbox_cb, t);
	return t->inbox_ev ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

void srv_inbox_free(srv_thread *t)
{
	if (!t->inbox_ev)
		return;
	for (size_t i = 0; i < t->inbox_n; i++) {
		close(t->inbox[i].fd);
		srv_clients_close(t->srv->clients, &t->inbox[i].addr);
		atomic_fetch_sub(&t->srv->conns_open, 1);
	}
	free(t->inbox);
	t->inbox = NULL;
	t->inbox_n = 0;
	event_free(t->inbox_ev);
	t->inbox_ev = NULL;
	pthread_mutex_destroy(&t->inbox_lock);
}

/* ---- accepting -------------------------------------------------------------------------- */

/* Tells a connection no, as JSON, and closes it (never read from). */
static void refuse(evutil_socket_t fd, const char *code, const char *message)
{
	char body[400], text[700];
	int bn = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code, message);
	int n = snprintf(text, sizeof text, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
			 "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s", bn, body);
	if (n > 0)
		(void)!send(fd, text, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* One log line an interval for trouble at the door, saying how often it
 * happened meanwhile (a flood must not become a flood of log lines). */
static void log_door(srv_listener *l, enum door_trouble k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_door(srv_listener *l, enum door_trouble k, const char *fmt, ...)
{
	int64_t now = pv_wall_ms();
	l->quiet[k]++;
	if (l->last_log_ms[k] && now - l->last_log_ms[k] < LOG_INTERVAL_MS)
		return;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	pv_utf8_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	srv_log(l->t->srv, PV_LOG_WARN, "http", NULL, "%s (%llu time(s) since the last such line)", msg,
		(unsigned long long)l->quiet[k]);
	l->quiet[k] = 0;
	l->last_log_ms[k] = now;
}

static srv_thread *least_busy(pv_server *srv)
{
	srv_thread *best = &srv->threads[0];
	unsigned low = atomic_load_explicit(&best->n_conns, memory_order_relaxed);
	for (unsigned i = 1; i < srv->n_threads; i++) {
		unsigned n = atomic_load_explicit(&srv->threads[i].n_conns, memory_order_relaxed);
		if (n < low) {
			low = n;
			best = &srv->threads[i];
		}
	}
	return best;
}

static void hand_over(srv_thread *to, evutil_socket_t fd, const srv_addr *a, const char *peer)
{
	pthread_mutex_lock(&to->inbox_lock);
	if (to->inbox_n == to->inbox_cap) {
		size_t cap = to->inbox_cap ? to->inbox_cap * 2 : 16;
		struct srv_inbox_item *grown = realloc(to->inbox, cap * sizeof *grown);
		if (!grown) {
			pthread_mutex_unlock(&to->inbox_lock);
			close(fd);
			srv_clients_close(to->srv->clients, a);
			atomic_fetch_sub(&to->srv->conns_open, 1);
			return;
		}
		to->inbox = grown;
		to->inbox_cap = cap;
	}
	struct srv_inbox_item *it = &to->inbox[to->inbox_n++];
	it->fd = fd;
	it->addr = *a;
	snprintf(it->peer, sizeof it->peer, "%s", peer);
	pthread_mutex_unlock(&to->inbox_lock);
	event_active(to->inbox_ev, EV_READ, 0);
}

static void admit(srv_listener *l, evutil_socket_t fd, const struct sockaddr *sa)
{
	pv_server *srv = l->t->srv;
	const srv_settings *s = settings(l->t);
	srv_addr a;
	char peer[64];
	srv_addr_from_sockaddr(sa, &a, peer, sizeof peer);
	unsigned max = s ? s->max_connections : 10000, per = s ? s->max_connections_per_client : 256;
	unsigned open = atomic_load(&srv->conns_open);
	if (open >= max) {
		atomic_fetch_add(&srv->refused_max, 1);
		refuse(fd, "SERVER_BUSY", "the server holds its maximum of connections (server.max_connections)");
		log_door(l, DOOR_FULL, "refusing connections: %u held, the maximum (server.max_connections %u); new "
			 "ones are answered 503", open, max);
		return;
	}
	if (!srv_clients_open(srv->clients, &a, per)) {
		atomic_fetch_add(&srv->refused_per_client, 1);
		refuse(fd, "TOO_MANY_CONNECTIONS", "this address holds its maximum of connections "
		       "(server.max_connections_per_client)");
		log_door(l, DOOR_CLIENT, "refusing connections from %s: it holds %u, the maximum a client "
			 "(server.max_connections_per_client)", peer, per);
		return;
	}
	atomic_fetch_add(&srv->conns_open, 1);
	srv_thread *to = l->distribute ? least_busy(srv) : l->t;
	if (to == l->t)
		srv_conn_new(to, fd, &a, peer);
	else
		hand_over(to, fd, &a, peer);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_listener *l = arg;
	if (l->fd >= 0)
		event_add(l->ev, NULL);
}

/* accept() failed for want of descriptors (or memory): answer one waiting
 * client with the reserve descriptor, then pause instead of spinning. */
static void out_of_descriptors(srv_listener *l, int err)
{
	pv_server *srv = l->t->srv;
	bool fds = err == EMFILE || err == ENFILE;
	atomic_fetch_add(fds ? &srv->accept_fd_exhausted : &srv->accept_errors, 1);
	if (fds && l->reserve >= 0) {
		close(l->reserve);
		l->reserve = -1;
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			refuse(fd, "SERVER_BUSY", "the server is out of file descriptors");
		l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	log_door(l, DOOR_ACCEPT, "accept: %s with %u connection(s) open; accepting pauses %u ms at a time",
		 strerror(err), atomic_load(&srv->conns_open), ACCEPT_PAUSE_MS);
	event_del(l->ev);
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
	event_add(l->resume, &tv);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	srv_listener *l = arg;
	for (int i = 0; i < 64; i++) { /* then let the loop's other work in */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			admit(l, fd, (struct sockaddr *)&ss);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM: /* a firewall said no to this one */
			continue;
		default:
			out_of_descriptors(l, errno);
			return;
		}
	}
}

static evutil_socket_t bind_socket(const char *host, int port, bool reuse_port, int *bound_port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai = NULL;
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g != 0) {
		pv_error_set(PV_EIO, "listen %s:%d: %s", host, port, gai_strerror(g));
		return -1;
	}
	evutil_socket_t fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	/* SO_REUSEADDR only lets a restart bind over TIME_WAIT leftovers; a
	 * live listener on the port still makes bind fail. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		int err = errno;
		if (err == EADDRINUSE)
			pv_error_set(PV_EIO, "listen %s:%d: the address is already in use (another provisio "
				     "serve?); two daemons share a port only when both set server.reuse_port",
				     host, port);
		else
			pv_error_set(PV_EIO, "listen %s:%d: %s", host, port, strerror(err));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						     : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int srv_listener_open(srv_thread *t, const char *host, int *port, bool reuse_port)
{
	srv_listener *l = calloc(1, sizeof *l);
	if (!l)
		return pv_error_set(PV_ENOMEM, "out of memory");
	l->t = t;
	l->distribute = !reuse_port;
	l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	l->fd = bind_socket(host, *port, reuse_port, port);
	if (l->fd >= 0) {
		l->ev = event_new(t->base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
		l->resume = evtimer_new(t->base, resume_cb, l);
	}
	t->listener = l;
	if (l->fd < 0)
		return PV_EIO;
	if (!l->ev || !l->resume || event_add(l->ev, NULL) < 0)
		return pv_error_set(PV_ENOMEM, "cannot accept on %s:%d", host, *port);
	return 0;
}

void srv_listener_close(srv_thread *t)
{
	srv_listener *l = t->listener;
	if (!l)
		return;
	if (l->ev)
		event_free(l->ev);
	if (l->resume)
		event_free(l->resume);
	if (l->fd >= 0)
		close(l->fd);
	if (l->reserve >= 0)
		close(l->reserve);
	free(l);
	t->listener = NULL;
}
