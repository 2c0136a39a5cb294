/*
 * pool.c - worker threads for the routes that call providers (creates,
 * returns, exec, strategy updates, reloads), so a slow provider never holds
 * an event loop and the other connections on it.
 *
 * The loop thread hands over the request as it stands: its connection
 * waits (reading nothing, writing nothing) until the answer comes back, so
 * the worker reads the path, headers and body in place, runs the handler
 * on its own broker (its own store connection) and keeps the answer; the
 * loop thread sends it (event_base_once). A client that left meanwhile
 * costs the answer only.
 */
#include <stdlib.h>
#include <string.h>
#include "server/server_internal.h"

struct srv_job {
	srv_req *r;
	srv_thread *loop;       /* where the request lives */
	srv_handler0 fn0;
	srv_handler1 fn1;
	int status;
	char *out;
	size_t out_len;
	struct srv_job *next;
};

void srv_job_capture(srv_job *j, int status, char *body, size_t len, bool owned)
{
	j->status = status;
	free(j->out);
	j->out = NULL;
	j->out_len = 0;
	if (owned)
		j->out = body;
	else if ((j->out = malloc(len + 1)))
		memcpy(j->out, body, len);
	if (j->out)
		j->out_len = len;
	else
		j->status = 500; /* no memory for the answer */
}

/* ---- loop thread: hand over, and answer --------------------------------------------- */

static void deliver(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_job *j = arg;
	srv_req *r = j->r;
	r->t = j->loop;
	r->w = j->loop->w;
	r->job = NULL;
	srv_send(r, j->status ? j->status : 500, j->out, j->out_len, true);
	free(j);
}

int srv_offload(srv_req *r, srv_handler0 fn0, srv_handler1 fn1)
{
	pv_server *srv = r->t->srv;
	srv_job *j = calloc(1, sizeof *j);
	if (!j)
		return -1;
	j->r = r;
	j->loop = r->t;
	j->fn0 = fn0;
	j->fn1 = fn1;
	r->job = j;
	pthread_mutex_lock(&srv->pool_lock);
	if (srv->pool_tail)
		srv->pool_tail->next = j;
	else
		srv->pool_head = j;
	srv->pool_tail = j;
	pthread_cond_signal(&srv->pool_cond);
	pthread_mutex_unlock(&srv->pool_lock);
	return 0;
}

/* ---- the workers ------------------------------------------------------------------------ */

static srv_job *take(pv_server *srv)
{
	pthread_mutex_lock(&srv->pool_lock);
	while (!srv->pool_head && !srv->pool_stop)
		pthread_cond_wait(&srv->pool_cond, &srv->pool_lock);
	srv_job *j = srv->pool_head;
	if (j) {
		srv->pool_head = j->next;
		if (!srv->pool_head)
			srv->pool_tail = NULL;
	}
	pthread_mutex_unlock(&srv->pool_lock);
	return j;
}

static void *worker_main(void *arg)
{
	srv_thread *w = arg;
	pv_server *srv = w->srv;
	srv_job *j;
	while ((j = take(srv))) {
		srv_req *r = j->r;
		r->t = w;
		srv_set_current(r);
		if (!srv_thread_broker(w))
			srv_reply_error(r, 503, "UNAVAILABLE", NULL, "the store cannot be opened: %s",
					pv_error_last());
		else {
			r->w = w->w;
			if (j->fn0)
				j->fn0(r);
			else
				j->fn1(r, r->arg);
		}
		srv_set_current(NULL);
		struct timeval now = {0, 0};
		event_base_once(j->loop->base, -1, EV_TIMEOUT, deliver, j, &now);
	}
	pv_machine_list_clear(&w->scratch);
	pv_broker_close(w->b);
	pv_store_close(w->st);
	srv_world_release(w->w);
	w->b = NULL;
	w->st = NULL;
	w->w = NULL;
	return NULL;
}

int srv_pool_start(pv_server *srv)
{
	srv->n_workers = srv->n_threads < 2 ? 2 : srv->n_threads;
	size_t bytes = srv->n_workers * sizeof *srv->workers;
	srv->workers = aligned_alloc(_Alignof(srv_thread), (bytes + 63) / 64 * 64);
	if (!srv->workers)
		return pv_error_set(PV_ENOMEM, "out of memory");
	memset(srv->workers, 0, bytes);
	for (unsigned i = 0; i < srv->n_workers; i++) {
		srv_thread *w = &srv->workers[i];
		w->srv = srv;
		w->worker = true;
		w->index = 100 + i;
		if (pthread_create(&w->th, NULL, worker_main, w) != 0)
			return pv_error_set(PV_ERROR, "cannot start worker %u", i);
		w->started = true;
	}
	return 0;
}

/* After the loops stopped: workers finish the jobs queued, then exit. */
void srv_pool_stop(pv_server *srv)
{
	pthread_mutex_lock(&srv->pool_lock);
	srv->pool_stop = true;
	pthread_cond_broadcast(&srv->pool_cond);
	pthread_mutex_unlock(&srv->pool_lock);
	for (unsigned i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].started)
			pthread_join(srv->workers[i].th, NULL);
	free(srv->workers);
	srv->workers = NULL;
	srv->n_workers = 0;
	/* answers posted to loops that already exited: send (or drop) them now */
	for (unsigned i = 0; i < srv->n_threads; i++)
		if (srv->threads[i].base)
			event_base_loop(srv->threads[i].base, EVLOOP_NONBLOCK);
}
