/*
 * server.c - the life of `provisio serve`: worlds (what one configuration
 * built) and their swap on reload, one event loop a thread, the main loop
 * with signals and timers, and the graceful stop.
 *
 * Why a loop a thread: each loop's connections stay on one core with one
 * store connection (SQLite connections are not to be shared between
 * threads mid-transaction). Loops only read the store: anything that calls
 * a provider runs on the worker pool (pool.c), so a slow cloud never
 * holds a loop.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include "server/server_internal.h"
#include "util/notify.h"

int srv_parse_listen(const char *text, char *host, size_t hsize, int *port);

/* ---- worlds -------------------------------------------------------------------- */

void srv_world_release(srv_world *w)
{
	if (!w || atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	pv_broker_close(w->main);
	json_decref(w->graph);
	srv_settings_clear(&w->set);
	free(w);
}

srv_world *srv_world_get(pv_server *srv)
{
	pthread_mutex_lock(&srv->world_lock);
	srv_world *w = srv->world;
	if (w)
		atomic_fetch_add(&w->refs, 1);
	pthread_mutex_unlock(&srv->world_lock);
	return w;
}

static void copy_diags(pv_diags *to, const pv_diags *from)
{
	for (size_t i = 0; to && i < from->n; i++)
		pv_diags_add(to, from->items[i].level, from->items[i].path, "%s", from->items[i].message);
}

/* The listener as configured, overridden by --listen; auth may be off only
 * on loopback. */
static int check_listener(pv_server *srv, srv_settings *s, pv_diags *diags)
{
	if (srv->listen && srv_parse_listen(srv->listen, s->host, sizeof s->host, &s->port) < 0) {
		pv_diags_add(diags, PV_DIAG_ERROR, "--listen", "%s", pv_error_last());
		return PV_EINVAL;
	}
	if (!s->auth_enabled && !srv_host_is_loopback(s->host)) {
		pv_diags_add(diags, PV_DIAG_ERROR, "server.auth.enabled",
			     "auth may be disabled only on a loopback listener (127.0.0.1, ::1, "
			     "localhost); %s is not one", s->host);
		return PV_EINVAL;
	}
	if (srv->opts.threads)
		s->threads = srv->opts.threads;
	return 0;
}

static int load_world(pv_server *srv, unsigned gen, srv_world **out, pv_diags *diags)
{
	pv_diags scratch;
	pv_diags_init(&scratch);
	json_t *doc = NULL;
	srv_world *w = calloc(1, sizeof *w);
	if (!w)
		return pv_error_set(PV_ENOMEM, "out of memory");
	atomic_init(&w->refs, 1);
	w->gen = gen;
	pv_broker_open_options o = srv->opts.open;
	int rc = pv_config_load_file(&o.config, &doc, &scratch);
	if (rc < 0)
		copy_diags(diags, &scratch);
	pv_diags_clear(&scratch);
	if (rc == 0) {
		pv_diags_init(&scratch);
		rc = srv_settings_read(json_object_get(doc, "server"), &w->set, &scratch);
		if (rc == 0)
			rc = check_listener(srv, &w->set, &scratch);
		copy_diags(diags, &scratch);
		if (rc < 0)
			pv_error_set(PV_EINVAL, "%s: %s", scratch.items[0].path, scratch.items[0].message);
		pv_diags_clear(&scratch);
	}
	if (rc == 0) {
		pv_diags_init(&scratch);
		w->graph = pv_config_normalize(doc, o.config.strict, &scratch);
		pv_diags_clear(&scratch);
		rc = pv_broker_store_config(srv->store_path, json_object_get(doc, "store"),
					    w->store_location, sizeof w->store_location, &w->store_opts);
		o.store_path = w->store_location;
	}
	if (rc == 0) {
		pv_diags local;
		pv_diags_init(&local);
		rc = pv_broker_open(&w->main, &o, &local);
		/* the daemon keeps health fresh on its own (stopped when the
		 * world's context is freed) */
		if (rc == 0)
			pv_context_start_health_monitor(pv_broker_context(w->main));
		copy_diags(diags, &local);
		if (rc < 0 && local.errors)
			pv_error_set(rc, "%s: %s", local.items[local.n - 1].path, local.items[local.n - 1].message);
		pv_diags_clear(&local);
	}
	json_decref(doc);
	if (rc < 0) {
		srv_world_release(w);
		return rc;
	}
	*out = w;
	return 0;
}

srv_world *srv_thread_world(srv_thread *t)
{
	unsigned gen = atomic_load_explicit(&t->srv->gen, memory_order_acquire);
	if (t->w && t->w->gen == gen)
		return t->w;
	srv_world *w = srv_world_get(t->srv);
	if (!w)
		return t->w;
	pv_broker_close(t->b); /* rebuilt on the new world when next needed */
	t->b = NULL;
	if (t->w && strcmp(t->w->store_location, w->store_location) != 0) {
		pv_store_close(t->st);
		t->st = NULL;
	}
	srv_world_release(t->w);
	t->w = w;
	return w;
}

pv_broker *srv_thread_broker(srv_thread *t)
{
	srv_world *w = srv_thread_world(t);
	if (!w) {
		pv_error_set(PV_ESTATE, "server is stopping");
		return NULL;
	}
	if (t->b)
		return t->b;
	if (!t->st && pv_store_open(&t->st, w->store_location, &w->store_opts) < 0)
		return NULL;
	if (pv_broker_new_like(&t->b, w->main, t->st) < 0)
		t->b = NULL;
	/* a loop reads the store as the reconciler keeps it: a status that
	 * needed a provider call would hold every connection of the loop */
	else if (!t->worker)
		pv_broker_set_mode(t->b, PV_BROKER_DEFERRED);
	return t->b;
}

static void thread_drop_broker(srv_thread *t)
{
	pv_machine_list_clear(&t->scratch);
	pv_broker_close(t->b);
	t->b = NULL;
	pv_store_close(t->st);
	t->st = NULL;
	srv_world_release(t->w);
	t->w = NULL;
}

/* ---- TLS, loops ------------------------------------------------------------------- */

static int tls_setup(pv_server *srv, const srv_settings *s)
{
	if (!s->tls_cert[0])
		return 0;
	srv->ssl = SSL_CTX_new(TLS_server_method());
	if (!srv->ssl || SSL_CTX_use_certificate_chain_file(srv->ssl, s->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(srv->ssl, s->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(srv->ssl) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		return pv_error_set(PV_EIO, "server.tls: cannot use %s / %s: %s", s->tls_cert, s->tls_key,
				    buf);
	}
	SSL_CTX_set_min_proto_version(srv->ssl, TLS1_2_VERSION);
	return 0;
}

static int thread_setup(pv_server *srv, srv_thread *t, const srv_settings *s)
{
	t->srv = srv;
	/* with evthread_use_pthreads the base has a lock: the main loop may
	 * post the stop to it (event_base_once), loop 0 hand it connections */
	t->base = event_base_new();
	if (!t->base || srv_inbox_init(t) < 0)
		return pv_error_set(PV_ENOMEM, "cannot create an event loop");
	/* one socket (loop 0 accepts for all), or one a loop (reuse_port) */
	if (t->index > 0 && !s->reuse_port)
		return 0;
	int port = srv->port ? srv->port : s->port;
	if (srv_listener_open(t, s->host, &port, s->reuse_port) < 0)
		return PV_EIO;
	srv->port = port;
	return 0;
}

static void *thread_main(void *arg)
{
	srv_thread *t = arg;
	/* a loop that does not accept waits for connections handed to it */
	event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
	thread_drop_broker(t);
	return NULL;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_thread *t = arg;
	if (atomic_load(&t->pending_writes) <= 0 || pv_now_ns() >= t->drain_deadline_ns)
		event_base_loopexit(t->base, NULL);
}

static void thread_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	srv_thread *t = arg;
	srv_listener_close(t);
	srv_conns_close_idle(t);
	srv_world *w = t->w ? t->w : t->srv->world;
	double limit = w ? w->set.shutdown_timeout_s : 30;
	t->drain_deadline_ns = pv_now_ns() + (uint64_t)(limit * 1e9);
	struct timeval tv = {0, 10000};
	t->drain = event_new(t->base, -1, EV_PERSIST, drain_check, t);
	event_add(t->drain, &tv);
	drain_check(-1, 0, t);
}

/* ---- the main loop ---------------------------------------------------------------------- */

/* A word to systemd when it runs us as a Type=notify service (no-op
 * otherwise); a failure is logged, never fatal. */
static void tell_systemd(pv_server *srv, const char *state)
{
	if (pv_notify(state) < 0)
		srv_log(srv, PV_LOG_WARN, "server", NULL, "systemd notification: %s", pv_error_last());
}

/* From the main loop: a loop that hangs stops the pings, and systemd
 * restarts the service (WatchdogSec=). */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tell_systemd(arg, "WATCHDOG=1");
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pv_server *srv = arg;
	atomic_store(&srv->stopping, true);
	tell_systemd(srv, "STOPPING=1");
	srv_log(srv, PV_LOG_INFO, "server", NULL, "stopping: no new connections; waiting for requests "
		"in progress");
	struct timeval now = {0, 0};
	for (unsigned i = 0; i < srv->n_threads; i++)
		if (srv->threads[i].started)
			event_base_once(srv->threads[i].base, -1, EV_TIMEOUT, thread_stop, &srv->threads[i], &now);
	for (unsigned i = 0; i < srv->n_threads; i++)
		if (srv->threads[i].started) {
			pthread_join(srv->threads[i].th, NULL);
			srv->threads[i].started = false;
		}
	srv_pool_stop(srv);
	event_base_loopbreak(srv->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	pv_server *srv = arg;
	if (sig == SIGHUP) {
		srv_log(srv, PV_LOG_INFO, "server", NULL, "SIGHUP: reloading the configuration");
		if (pv_notify_reloading() < 0)
			srv_log(srv, PV_LOG_WARN, "server", NULL, "systemd notification: %s", pv_error_last());
		pv_server_reload(srv, NULL); /* a rejected one keeps the old: ready either way */
		tell_systemd(srv, "READY=1");
		return;
	}
	srv_log(srv, PV_LOG_INFO, "server", NULL, "%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	pv_server_stop(srv);
}

static void reconcile_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pv_server_reconcile(arg, NULL);
}

static void queue_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pv_server *srv = arg;
	srv_world *w = srv_world_get(srv);
	if (!w)
		return;
	pthread_mutex_lock(&srv->reconcile_lock);
	if (srv_run_queue(srv, w) > 0)
		srv_save_kernel_state(srv, w);
	pthread_mutex_unlock(&srv->reconcile_lock);
	srv_world_release(w);
}

static void alert_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pv_server_evaluate_alerts(arg);
}

static void arm_timers(pv_server *srv, const srv_settings *s)
{
	struct timeval rv = {(time_t)s->reconcile_interval_s,
			     (suseconds_t)((s->reconcile_interval_s - (time_t)s->reconcile_interval_s) * 1e6)};
	struct timeval av = {(time_t)s->alert_interval_s,
			     (suseconds_t)((s->alert_interval_s - (time_t)s->alert_interval_s) * 1e6)};
	struct timeval qv = {(time_t)s->queue_poll_s,
			     (suseconds_t)((s->queue_poll_s - (time_t)s->queue_poll_s) * 1e6)};
	event_add(srv->reconcile_ev, &rv);
	event_add(srv->alert_ev, &av);
	event_add(srv->queue_ev, &qv);
}

/* ---- public --------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void make_token(pv_server *srv)
{
	unsigned char raw[24];
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		for (size_t i = 0; i < sizeof raw; i++)
			raw[i] = (unsigned char)(pv_now_ns() >> (i % 8));
	char *p = srv->generated_token;
	p += sprintf(p, "pv_");
	for (size_t i = 0; i < sizeof raw; i++)
		p += sprintf(p, "%02x", raw[i]);
}

static void use_pthreads(void) { evthread_use_pthreads(); }

/* Descriptors: the soft limit raised to the hard one (each connection is
 * one), and a word when server.max_connections cannot all be held. */
static void raise_fd_limit(pv_server *srv, const srv_settings *s)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)s->max_connections + 64 > rl.rlim_cur)
		srv_log(srv, PV_LOG_WARN, "server", NULL, "server.max_connections is %u but RLIMIT_NOFILE is "
			"%llu: when descriptors run out, accepting pauses (and new clients are answered 503) "
			"until connections close", s->max_connections, (unsigned long long)rl.rlim_cur);
}

static int server_setup(pv_server *srv, pv_diags *diags)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, use_pthreads);
	int rc = load_world(srv, 1, &srv->world, diags);
	if (rc < 0)
		return rc;
	atomic_store(&srv->gen, 1);
	srv_settings *s = &srv->world->set;
	srv_log_install(srv, s);
	/* big buffers (request bodies) are mapped and unmapped on their own,
	 * never left in the heap when their connections are gone */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	raise_fd_limit(srv, s);
	if ((rc = srv_clients_new(&srv->clients)) < 0)
		return rc;
	if (s->auth_enabled && !s->n_tokens)
		make_token(srv);
	if ((rc = tls_setup(srv, s)) < 0)
		return rc;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	srv->n_threads = s->threads ? s->threads : (unsigned)(cores > 0 ? cores : 1);
	/* aligned: each loop's counters sit on their own cache lines */
	size_t bytes = srv->n_threads * sizeof *srv->threads;
	srv->threads = aligned_alloc(_Alignof(srv_thread), (bytes + 63) / 64 * 64);
	if (!srv->threads)
		return pv_error_set(PV_ENOMEM, "out of memory");
	memset(srv->threads, 0, bytes);
	for (unsigned i = 0; i < srv->n_threads; i++) {
		srv->threads[i].index = i;
		if ((rc = thread_setup(srv, &srv->threads[i], s)) < 0)
			return rc;
	}
	const char *h = s->host;
	bool v6 = strchr(h, ':') != NULL;
	snprintf(srv->url, sizeof srv->url, "%s://%s%s%s:%d", srv->ssl ? "https" : "http", v6 ? "[" : "",
		 h, v6 ? "]" : "", srv->port);
	srv->base = event_base_new();
	if (!srv->base)
		return pv_error_set(PV_ENOMEM, "cannot create the main loop");
	srv->stop_ev = event_new(srv->base, -1, 0, stop_cb, srv);
	srv->reconcile_ev = event_new(srv->base, -1, EV_PERSIST, reconcile_cb, srv);
	srv->alert_ev = event_new(srv->base, -1, EV_PERSIST, alert_cb, srv);
	srv->queue_ev = event_new(srv->base, -1, EV_PERSIST, queue_cb, srv);
	return 0;
}

int pv_server_new(pv_server **out, const pv_server_options *opts, pv_diags *diags)
{
	*out = NULL;
	pv_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return pv_error_set(PV_ENOMEM, "out of memory");
	pv_server_options none = {0};
	srv->opts = opts ? *opts : none;
	srv->config_path = dup_or_null(srv->opts.open.config.path);
	srv->templates_path = dup_or_null(srv->opts.open.templates_path);
	srv->store_path = dup_or_null(srv->opts.open.store_path);
	srv->listen = dup_or_null(srv->opts.listen);
	srv->opts.open.config.path = srv->config_path;
	srv->opts.open.templates_path = srv->templates_path;
	srv->opts.open.store_path = srv->store_path;
	srv->opts.open.config.env_name = NULL;
	if (opts && opts->open.config.env_name)
		setenv("PROVISIO_ENV", opts->open.config.env_name, 0);
	srv->log = srv->opts.log ? srv->opts.log : stderr;
	pthread_mutex_init(&srv->log_lock, NULL);
	pthread_mutex_init(&srv->world_lock, NULL);
	pthread_mutex_init(&srv->alert_lock, NULL);
	pthread_mutex_init(&srv->reconcile_lock, NULL);
	pthread_mutex_init(&srv->pool_lock, NULL);
	pthread_cond_init(&srv->pool_cond, NULL);
	pthread_mutex_init(&srv->gauges.lock, NULL);
	srv->orphan_suspects = json_object();
	srv->breaker_open_since = json_object();
	srv->started_ms = pv_wall_ms();
	srv->started_ns = pv_now_ns();
	int rc = server_setup(srv, diags);
	if (rc < 0) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", pv_error_last());
		pv_server_free(srv);
		return pv_error_set(rc, "%s", msg);
	}
	*out = srv;
	return 0;
}

int pv_server_port(const pv_server *srv) { return srv->port; }
const char *pv_server_url(const pv_server *srv) { return srv->url; }
const char *pv_server_generated_token(const pv_server *srv)
{
	return srv->generated_token[0] ? srv->generated_token : NULL;
}

const char *pv_server_first_template_id(pv_server *srv)
{
	srv_world *w = srv_world_get(srv);
	if (!w)
		return NULL;
	const char *id = json_string_value(
		json_object_get(json_array_get(pv_broker_templates(w->main), 0), "templateId"));
	srv_world_release(w);
	return id;
}

int pv_server_run(pv_server *srv, bool handle_signals)
{
	if (handle_signals) {
		srv->sig_term = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
		srv->sig_int = evsignal_new(srv->base, SIGINT, signal_cb, srv);
		srv->sig_hup = evsignal_new(srv->base, SIGHUP, signal_cb, srv);
		evsignal_add(srv->sig_term, NULL);
		evsignal_add(srv->sig_int, NULL);
		evsignal_add(srv->sig_hup, NULL);
	}
	srv_world *w = srv_world_get(srv);
	pthread_mutex_lock(&srv->reconcile_lock);
	/* announced before anything else: from now on Host Factory queues */
	srv_heartbeat(srv, w);
	int recovered = pv_broker_recover(w->main);
	if (recovered > 0)
		srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "recovered %d request(s) left by a crash",
			recovered);
	srv_run_queue(srv, w);
	pthread_mutex_unlock(&srv->reconcile_lock);
	arm_timers(srv, &w->set);
	srv_world_release(w);
	/* the workers must not take the signals the main loop handles */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = srv_pool_start(srv);
	for (unsigned i = 0; i < srv->n_threads && rc == 0; i++) {
		srv_thread *t = &srv->threads[i];
		if (pthread_create(&t->th, NULL, thread_main, t) == 0)
			t->started = true;
		else
			rc = pv_error_set(PV_ERROR, "cannot start loop thread %u", i);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	srv_log(srv, PV_LOG_INFO, "server", NULL, "listening on %s with %u loop(s)", srv->url,
		srv->n_threads);
	if (rc < 0) {
		pv_server_stop(srv);
	} else {
		char ready[sizeof srv->url + 64];
		snprintf(ready, sizeof ready, "READY=1\nSTATUS=listening on %s", srv->url);
		tell_systemd(srv, ready);
		uint64_t wd = pv_notify_watchdog_usec();
		if (wd) {
			srv->watchdog_ev = event_new(srv->base, -1, EV_PERSIST, watchdog_cb, srv);
			struct timeval half = {(time_t)(wd / 2 / 1000000), (suseconds_t)(wd / 2 % 1000000)};
			event_add(srv->watchdog_ev, &half);
			tell_systemd(srv, "WATCHDOG=1");
		}
	}
	event_base_dispatch(srv->base);
	if (srv->stop_ev && !atomic_load(&srv->stopping))
		stop_cb(-1, 0, srv);
	event_del(srv->reconcile_ev);
	event_del(srv->alert_ev);
	event_del(srv->queue_ev);
	if (srv->watchdog_ev)
		event_del(srv->watchdog_ev);
	srv_world *last = srv_world_get(srv);
	if (last) {
		pthread_mutex_lock(&srv->reconcile_lock);
		/* Host Factory calls the providers itself from now on (and
		 * finishes anything queued after this) */
		if (pv_broker_daemon_clear(last->main, getpid()) < 0)
			srv_log(srv, PV_LOG_WARN, "server", NULL, "heartbeat not cleared: %s", pv_error_last());
		srv_lease_release(srv, last); /* another daemon leads from its next pass */
		srv_save_kernel_state(srv, last);
		pthread_mutex_unlock(&srv->reconcile_lock);
		srv_world_release(last);
	}
	srv_log(srv, PV_LOG_INFO, "server", NULL, "stopped; kernel state saved");
	return rc;
}

void pv_server_stop(pv_server *srv)
{
	if (srv && srv->stop_ev)
		event_active(srv->stop_ev, EV_TIMEOUT, 0);
}

int pv_server_reload(pv_server *srv, pv_diags *diags)
{
	pv_diags local;
	pv_diags_init(&local);
	srv_world *w = NULL;
	unsigned gen = atomic_load(&srv->gen) + 1;
	/* the new graph starts from the store: give it what the old one knows */
	srv_world *cur = srv_world_get(srv);
	if (cur) {
		pthread_mutex_lock(&srv->reconcile_lock);
		srv_save_kernel_state(srv, cur);
		pthread_mutex_unlock(&srv->reconcile_lock);
		srv_world_release(cur);
	}
	int rc = load_world(srv, gen, &w, &local);
	if (rc == 0 && !!w->set.tls_cert[0] != !!srv->ssl)
		rc = pv_error_set(PV_EINVAL, "server.tls: turning TLS on or off needs a restart");
	if (rc < 0) {
		char *text = pv_diags_format(&local);
		char first[512];
		snprintf(first, sizeof first, "%s", pv_error_last());
		srv_log(srv, PV_LOG_ERROR, "server", NULL, "reload rejected, the running configuration is "
			"kept: %s%s%s", first, text && *text ? "\n" : "", text ? text : "");
		free(text);
		copy_diags(diags, &local);
		pv_diags_clear(&local);
		atomic_fetch_add(&srv->reload_failures, 1);
		srv_world_release(w);
		return pv_error_set(rc < 0 ? rc : PV_EINVAL, "%s", first);
	}
	copy_diags(diags, &local);
	pv_diags_clear(&local);
	srv_world *old_w = srv->world;
	if (strcmp(old_w->set.host, w->set.host) || (old_w->set.port != w->set.port && w->set.port) ||
	    old_w->set.reuse_port != w->set.reuse_port)
		srv_log(srv, PV_LOG_WARN, "server", NULL, "server.listen or server.reuse_port changed: it "
			"applies at the next restart");
	pthread_mutex_lock(&srv->world_lock);
	srv->world = w;
	atomic_store_explicit(&srv->gen, gen, memory_order_release);
	pthread_mutex_unlock(&srv->world_lock);
	srv_log_install(srv, &w->set);
	if (srv->base && event_pending(srv->reconcile_ev, EV_TIMEOUT, NULL))
		arm_timers(srv, &w->set);
	atomic_fetch_add(&srv->reloads, 1);
	srv_log(srv, PV_LOG_INFO, "server", NULL, "configuration reloaded (generation %u)", gen);
	srv_world_release(old_w);
	return 0;
}

int pv_server_reconcile(pv_server *srv, json_t **report)
{
	srv_world *w = srv_world_get(srv);
	if (!w)
		return pv_error_set(PV_ESTATE, "server has no configuration");
	pthread_mutex_lock(&srv->reconcile_lock);
	int rc = srv_reconcile(srv, w, report);
	pthread_mutex_unlock(&srv->reconcile_lock);
	srv_world_release(w);
	return rc;
}

int pv_server_evaluate_alerts(pv_server *srv)
{
	srv_world *w = srv_world_get(srv);
	if (!w)
		return 0;
	int n = srv_alerts_evaluate(srv, w);
	srv_world_release(w);
	return n;
}

void pv_server_free(pv_server *srv)
{
	if (!srv)
		return;
	for (unsigned i = 0; srv->threads && i < srv->n_threads; i++) {
		srv_thread *t = &srv->threads[i];
		srv_listener_close(t);
		srv_inbox_free(t);
		srv_conns_free(t);
		thread_drop_broker(t);
		if (t->drain)
			event_free(t->drain);
		if (t->base)
			event_base_free(t->base);
	}
	free(srv->threads);
	srv_clients_free(srv->clients);
	struct event *evs[] = {srv->sig_term, srv->sig_int, srv->sig_hup, srv->stop_ev, srv->reconcile_ev,
			       srv->alert_ev, srv->queue_ev, srv->watchdog_ev};
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i])
			event_free(evs[i]);
	if (srv->base)
		event_base_free(srv->base);
	if (srv->ssl)
		SSL_CTX_free(srv->ssl);
	srv_log_uninstall();
	srv_world_release(srv->world);
	json_decref(srv->gauges.machines);
	json_decref(srv->orphan_suspects);
	json_decref(srv->breaker_open_since);
	free(srv->alerts);
	free(srv->config_path);
	free(srv->templates_path);
	free(srv->store_path);
	free(srv->listen);
	pthread_mutex_destroy(&srv->log_lock);
	pthread_mutex_destroy(&srv->world_lock);
	pthread_mutex_destroy(&srv->alert_lock);
	pthread_mutex_destroy(&srv->reconcile_lock);
	pthread_mutex_destroy(&srv->pool_lock);
	pthread_cond_destroy(&srv->pool_cond);
	pthread_mutex_destroy(&srv->gauges.lock);
	free(srv);
}
