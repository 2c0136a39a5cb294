/*
 * reconcile.c - the reconciler: what keeps the store true to the providers
 * while nobody asks.
 *
 * One pass: refresh every request not final (batched status calls per
 * provider, through the broker, which also enforces the pending timeout and
 * terminates again what failed to terminate), find machines the providers
 * took back, find orphans, recover requests a crash left in "creating",
 * and refresh the broker gauges /metrics shows.
 *
 * Orphans: a provider lists its managed instances (those carrying
 * provisio's tag) with describe_resource_instances and no request id. An
 * instance no machine record knows is a suspect; a create may be in flight
 * between the provider's answer and the store write, so only an instance
 * still unknown on the next pass is an orphan (reported once, terminated
 * when server.terminate_orphans is on). A provider that cannot list its
 * instances is logged and counted (provisio_orphan_sweep_failures_total),
 * and its suspects wait for the next pass: a failed sweep is never
 * mistaken for an empty one.
 *
 * The daemon and Host Factory: every pass starts with the heartbeat row
 * that tells Host Factory processes a daemon is live (they then only queue
 * and read), and works the queue they fill. The queue is also polled on a
 * short timer (server.queue_poll_seconds) so a queued request does not
 * wait for the next pass.
 */
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "server/server_internal.h"

/* Counts requests by state; the leader also refreshes those not final. */
static int refresh_requests(pv_server *srv, srv_world *w, bool leader, int64_t *by_state)
{
	pv_broker *b = w->main;
	pv_store *st = pv_broker_store(b);
	pv_request_rec *qs = NULL;
	size_t n = 0;
	int refreshed = 0;
	if (pv_store_begin(st, false) < 0)
		return 0;
	int rc = pv_store_request_list(st, -1, 0, &qs, &n);
	pv_store_commit(st);
	if (rc < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (leader && !pv_request_state_final(qs[i].state) &&
		    !pv_request_state_unsettled(qs[i].state)) {
			pv_request_rec q;
			pv_machine_list ms = {0};
			if (pv_broker_request_refresh(b, qs[i].id, &q, &ms) == 0) {
				refreshed++;
				if (q.state != qs[i].state)
					srv_log(srv, PV_LOG_INFO, "reconciler", NULL, "request %s: %s -> %s (%s)", q.id,
						pv_request_state_name(qs[i].state), pv_request_state_name(q.state),
						q.message);
				qs[i].state = q.state;
			}
			pv_machine_list_clear(&ms);
		}
		if ((unsigned)qs[i].state < PV_REQ_STATE_COUNT)
			by_state[qs[i].state]++;
	}
	free(qs);
	return refreshed;
}

static json_t *find_reclaimed(pv_server *srv, srv_world *w)
{
	pv_machine_list out = {0};
	json_t *list = json_array();
	if (pv_broker_reclaimed(w->main, NULL, 0, &out) == 0)
		for (size_t i = 0; i < out.n; i++) {
			srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "machine %s (%s) was taken back by its "
				"provider: %s", out.items[i].machine_id, out.items[i].provider,
				out.items[i].message);
			json_array_append_new(list, pv_broker_machine_json(&out.items[i]));
		}
	atomic_fetch_add(&srv->reclaimed_found, out.n);
	pv_machine_list_clear(&out);
	return list;
}

/* Whether the store knows the instance, or a create that may be writing
 * it is still in progress. */
static bool known(pv_store *st, const char *id, const char *request_id)
{
	pv_machine_rec m;
	pv_request_rec q;
	bool k = false;
	if (pv_store_begin(st, false) < 0)
		return true; /* cannot tell: never call a machine an orphan on a store error */
	if (pv_store_machine_get(st, id, NULL, &m) == 0)
		k = true;
	else if (request_id && pv_store_request_get(st, request_id, &q) == 0 && pv_request_state_unsettled(q.state))
		k = true;
	pv_store_commit(st);
	return k;
}

static void terminate(srv_world *w, const char *provider, json_t *ids)
{
	pv_operation op = {.type = PV_OP_TERMINATE_INSTANCES,
			   .params = json_pack("{s:O}", "instance_ids", ids)};
	op.deadline_ns = pv_now_ns() + pv_broker_get_settings(w->main)->call_timeout_ms * PV_NS_PER_MS;
	pv_result res = PV_RESULT_INIT;
	pv_context_execute_on(pv_broker_context(w->main), provider, &op, &res);
	pv_result_clear(&res);
	json_decref(op.params);
}

/* A provider's suspects of the last pass, kept for the next one. */
static void keep_suspects(pv_server *srv, const char *provider, json_t *next)
{
	const char *key;
	json_t *v;
	size_t n = strlen(provider);
	json_object_foreach(srv->orphan_suspects, key, v)
		if (strncmp(key, provider, n) == 0 && key[n] == '/')
			json_object_set(next, key, v);
}

/* One provider's sweep; false when it could not list its instances. */
static bool provider_orphans(pv_server *srv, srv_world *w, const char *provider, json_t *next,
			     json_t *found, int *terminated)
{
	pv_operation op = {.type = PV_OP_DESCRIBE_RESOURCE_INSTANCES, .params = json_object()};
	op.deadline_ns = pv_now_ns() + pv_broker_get_settings(w->main)->call_timeout_ms * PV_NS_PER_MS;
	pv_result res = PV_RESULT_INIT;
	pv_context_execute_on(pv_broker_context(w->main), provider, &op, &res);
	json_decref(op.params);
	if (!res.success) {
		atomic_fetch_add(&srv->orphan_sweep_failures, 1);
		srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "orphan sweep of '%s' failed: %s: %s", provider,
			res.error_code, pv_result_message(&res) ? pv_result_message(&res) : "");
		keep_suspects(srv, provider, next);
		pv_result_clear(&res);
		return false;
	}
	json_t *kill = json_array();
	size_t i;
	json_t *inst;
	json_array_foreach(json_object_get(res.data, "instances"), i, inst) {
		const char *id = json_string_value(json_object_get(inst, "instance_id"));
		const char *state = json_string_value(json_object_get(inst, "state"));
		if (!id || (state && strcmp(pv_machine_status_from_state(state), "terminated") == 0))
			continue;
		if (known(pv_broker_store(w->main), id,
			  json_string_value(json_object_get(inst, "request_id"))))
			continue;
		char key[300];
		snprintf(key, sizeof key, "%s/%s", provider, id);
		json_t *before = json_object_get(srv->orphan_suspects, key);
		int seen = before ? (int)json_integer_value(before) : 0;
		json_object_set_new(next, key, json_integer(seen ? 2 : 1));
		if (!seen)
			continue;
		json_array_append_new(found, json_pack("{s:s, s:s, s:s?}", "provider", provider, "instance_id",
						       id, "state", state));
		if (seen == 1) {
			atomic_fetch_add(&srv->orphans_found, 1);
			srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "orphan: %s instance %s carries "
				"provisio's tag but no request knows it%s", provider, id,
				w->set.terminate_orphans ? "; terminating it" : "");
		}
		if (w->set.terminate_orphans)
			json_array_append_new(kill, json_string(id));
	}
	if (json_array_size(kill)) {
		terminate(w, provider, kill);
		*terminated += (int)json_array_size(kill);
	}
	json_decref(kill);
	pv_result_clear(&res);
	return true;
}

/* The orphans found; the providers whose sweep failed go to `failed`. */
static json_t *find_orphans(pv_server *srv, srv_world *w, int *terminated, json_t *failed)
{
	json_t *next = json_object(), *found = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(w->graph, "providers"), i, p) {
		const char *name = json_string_value(json_object_get(p, "name"));
		json_t *en = json_object_get(p, "enabled");
		if (name && !json_is_false(en) && !provider_orphans(srv, w, name, next, found, terminated))
			json_array_append_new(failed, json_string(name));
	}
	json_decref(srv->orphan_suspects);
	srv->orphan_suspects = next;
	atomic_store(&srv->last_orphans, (int)json_array_size(found));
	return found;
}

/*
 * Kernel state (breakers, balancer positions) to the store, under the keys
 * the broker reads at open, so Host Factory processes next to the daemon
 * and the daemon's next start see what it learnt. The calls go through the
 * loops' and workers' brokers, which share the main broker's context, so
 * the main broker saves for all of them (only what changed).
 */
void srv_save_kernel_state(pv_server *srv, srv_world *w)
{
	if (pv_broker_save_state(w->main) < 0)
		srv_log(srv, PV_LOG_WARN, "server", NULL, "kernel state not saved: %s", pv_error_last());
}

void srv_heartbeat(pv_server *srv, srv_world *w)
{
	pv_daemon_info d = {.pid = getpid(), .started_ms = srv->started_ms,
			    .interval_ms = (int64_t)(w->set.reconcile_interval_s * 1000 + 0.5)};
	if (d.interval_ms < 1)
		d.interval_ms = 1;
	snprintf(d.listen, sizeof d.listen, "%s", srv->url);
	if (pv_broker_daemon_beat(w->main, &d) < 0)
		srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "heartbeat not written: %s", pv_error_last());
}

int srv_run_queue(pv_server *srv, srv_world *w)
{
	int n = pv_broker_run_queue(w->main);
	if (n > 0)
		srv_log(srv, PV_LOG_INFO, "reconciler", NULL, "%d queued request(s) done", n);
	return n;
}

void srv_gauges_refresh(pv_server *srv, srv_world *w)
{
	pv_store *st = pv_broker_store(w->main);
	pv_machine_list ms = {0};
	if (pv_store_begin(st, false) < 0)
		return;
	pv_store_machine_list(st, PV_MF_ALIVE, NULL, &ms);
	pv_store_commit(st);
	json_t *by = json_object();
	for (size_t i = 0; i < ms.n; i++) {
		json_t *p = json_object_get(by, ms.items[i].provider);
		if (!p)
			json_object_set_new(by, ms.items[i].provider, p = json_object());
		json_int_t n = json_integer_value(json_object_get(p, ms.items[i].status));
		json_object_set_new(p, ms.items[i].status, json_integer(n + 1));
	}
	pv_machine_list_clear(&ms);
	pthread_mutex_lock(&srv->gauges.lock);
	json_decref(srv->gauges.machines);
	srv->gauges.machines = by;
	pthread_mutex_unlock(&srv->gauges.lock);
}

/* Whether this daemon leads the provider-wide passes now: one daemon of
 * those sharing the store holds the "reconciler" lease (renewed each pass,
 * expiring after three missed passes plus 2 s). */
static bool lead(pv_server *srv, srv_world *w)
{
	if (!srv->lease_holder[0]) {
		char node[PV_STORE_NAME_MAX];
		pv_broker_this_node(node, sizeof node);
		snprintf(srv->lease_holder, sizeof srv->lease_holder, "%s pid %lld started %lld", node,
			 (long long)getpid(), (long long)srv->started_ms);
	}
	int64_t ttl = (int64_t)(w->set.reconcile_interval_s * 3000) + 2000;
	bool held = false;
	if (pv_broker_lease(w->main, "reconciler", srv->lease_holder, ttl, &held) < 0)
		srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "lease not taken: %s", pv_error_last());
	if (held != srv->leading)
		srv_log(srv, PV_LOG_INFO, "reconciler", NULL, "%s the reconciler's provider passes",
			held ? "leading" : "another daemon leads");
	srv->leading = held;
	return held;
}

void srv_lease_release(pv_server *srv, srv_world *w)
{
	if (srv->leading && pv_broker_lease_release(w->main, "reconciler", srv->lease_holder) < 0)
		srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "lease not released: %s", pv_error_last());
	srv->leading = false;
}

int srv_reconcile(pv_server *srv, srv_world *w, json_t **report)
{
	int64_t by_state[PV_REQ_STATE_COUNT] = {0};
	srv_heartbeat(srv, w);
	int queued = srv_run_queue(srv, w);
	/* provider-wide passes: once per store, by the leading daemon */
	bool leader = lead(srv, w);
	int refreshed = refresh_requests(srv, w, leader, by_state);
	json_t *reclaimed = leader ? find_reclaimed(srv, w) : json_array();
	int terminated = 0;
	json_t *sweeps_failed = json_array();
	json_t *orphans = leader ? find_orphans(srv, w, &terminated, sweeps_failed) : json_array();
	int recovered = leader ? pv_broker_recover(w->main) : 0;
	if (recovered > 0)
		srv_log(srv, PV_LOG_WARN, "reconciler", NULL, "recovered %d request(s) left in \"creating\"",
			recovered);
	pthread_mutex_lock(&srv->gauges.lock);
	memcpy(srv->gauges.requests, by_state, sizeof by_state);
	srv->gauges.valid = true;
	pthread_mutex_unlock(&srv->gauges.lock);
	srv_gauges_refresh(srv, w);
	srv_save_kernel_state(srv, w);
	atomic_fetch_add(&srv->reconcile_passes, 1);
	if (report)
		*report = json_pack("{s:b, s:i, s:i, s:o, s:o, s:i, s:o, s:i}", "leader", leader, "queued", queued,
				    "refreshed", refreshed, "reclaimed", reclaimed, "orphans", orphans,
				    "orphans_terminated", terminated, "orphan_sweeps_failed", sweeps_failed,
				    "recovered", recovered < 0 ? 0 : recovered);
	else {
		json_decref(reclaimed);
		json_decref(orphans);
		json_decref(sweeps_failed);
	}
	return 0;
}
