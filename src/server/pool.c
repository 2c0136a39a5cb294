/*
 * pool.c - worker threads for the routes that call providers (creates,
 * returns, exec, strategy updates, reloads), so a slow provider never holds
 * an event loop and the other connections on it.
 *
 * The loop thread copies what the handler needs (path, body, headers) into
 * a job and never lets the worker touch the libevent request: the worker
 * runs the handler on its own broker (its own store connection) and
 * captures the answer; the loop thread sends it (event_base_once). If the
 * client went away meanwhile, libevent has detached the request from its
 * connection and sending merely frees it.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include "server/server_internal.h"

void srv_req_done(srv_req *r);
void srv_finish_send(srv_req *r, int status, struct evbuffer *body);

struct srv_job {
	srv_req r;
	srv_thread *loop;       /* where the request lives */
	srv_handler0 fn0;
	srv_handler1 fn1;
	char arg[256];
	char path[1024];
	char *body;
	size_t body_len;
	json_t *in_headers;     /* {lower-case name: value} */
	json_t *out_headers;    /* {name: value} */
	int status;
	char *out;
	size_t out_len;
	struct srv_job *next;
};

/* ---- what handlers see of a job ------------------------------------------------ */

const char *srv_job_header(const srv_job *j, const char *key)
{
	char low[128];
	size_t i = 0;
	for (; key[i] && i < sizeof low - 1; i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	low[i] = '\0';
	return json_string_value(json_object_get(j->in_headers, low));
}

const char *srv_job_body(const srv_job *j, size_t *len)
{
	*len = j->body_len;
	return j->body ? j->body : "";
}

void srv_job_add_header(srv_job *j, const char *key, const char *value)
{
	json_object_set_new(j->out_headers, key, json_string(value));
}

void srv_job_capture(srv_job *j, int status, struct evbuffer *body)
{
	j->status = status;
	free(j->out);
	j->out_len = body ? evbuffer_get_length(body) : 0;
	j->out = malloc(j->out_len + 1);
	if (j->out && j->out_len)
		evbuffer_copyout(body, j->out, j->out_len);
}

/* ---- loop thread: hand over, and answer --------------------------------------------- */

static void job_free(srv_job *j)
{
	free(j->body);
	free(j->out);
	json_decref(j->in_headers);
	json_decref(j->out_headers);
	free(j);
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_job *j = arg;
	srv_req *r = &j->r;
	r->t = j->loop;
	r->w = j->loop->w;
	r->job = NULL;
	if (!evhttp_request_get_connection(r->req))
		/* the client left: sending only frees the request, no completion follows */
		atomic_fetch_sub(&j->loop->pending_writes, 1);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	const char *k;
	json_t *v;
	json_object_foreach(j->out_headers, k, v) evhttp_add_header(h, k, json_string_value(v));
	struct evbuffer *buf = evbuffer_new();
	if (j->out_len)
		evbuffer_add(buf, j->out, j->out_len);
	srv_finish_send(r, j->status ? j->status : 500, buf);
	evbuffer_free(buf);
	job_free(j);
}

static json_t *copy_headers(struct evhttp_request *req)
{
	json_t *o = json_object();
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
		char low[128];
		size_t i = 0;
		for (; kv->key[i] && i < sizeof low - 1; i++)
			low[i] = (char)tolower((unsigned char)kv->key[i]);
		low[i] = '\0';
		json_object_set_new(o, low, json_string(kv->value));
	}
	return o;
}

int srv_offload(srv_req *r, srv_handler0 fn0, srv_handler1 fn1, const char *arg)
{
	pv_server *srv = r->t->srv;
	srv_job *j = calloc(1, sizeof *j);
	if (!j)
		return -1;
	j->r = *r;
	j->r.has_query = false; /* offloaded routes take no query; the loop frees it */
	j->loop = r->t;
	j->fn0 = fn0;
	j->fn1 = fn1;
	snprintf(j->arg, sizeof j->arg, "%s", arg ? arg : "");
	snprintf(j->path, sizeof j->path, "%s", r->path);
	j->r.path = j->path;
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	j->body_len = evbuffer_get_length(in);
	j->body = malloc(j->body_len + 1);
	j->in_headers = copy_headers(r->req);
	j->out_headers = json_object();
	if (!j->body || !j->in_headers || !j->out_headers) {
		job_free(j);
		return -1;
	}
	evbuffer_copyout(in, j->body, j->body_len);
	j->body[j->body_len] = '\0';
	j->r.job = j;
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

void srv_set_current(const srv_req *r);

static void *worker_main(void *arg)
{
	srv_thread *w = arg;
	pv_server *srv = w->srv;
	srv_job *j;
	while ((j = take(srv))) {
		srv_req *r = &j->r;
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
				j->fn1(r, j->arg);
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
