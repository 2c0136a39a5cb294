/*
 * requests.c - acquire and return requests: their state machine, the calls
 * to providers, status refresh, reconciliation and crash recovery.
 *
 * The rule that keeps many short processes safe: never hold a store
 * transaction while a provider runs. A request is written first ("creating",
 * with the owner's pid), providers are called, then the outcome is written
 * in one transaction. A process killed in between leaves a "creating"
 * request that pv_broker_recover finishes: it asks every provider for the
 * machines made under that request id (creation is idempotent per request
 * id and round, so nothing is made twice) and releases them, because Host
 * Factory never received the id.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/broker_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"

/* ---- derivation ------------------------------------------------------------- */

static void set_msg(char *buf, size_t size, const char *text)
{
	snprintf(buf, size, "%s", text ? text : "");
}

/* The result of a machine of an acquire request, from its status. */
static void acquire_result(pv_machine_rec *m)
{
	if (strcmp(m->result, "succeed") == 0 || strcmp(m->result, "fail") == 0)
		return; /* decided once: a later death is reconciliation's business */
	if (strcmp(m->status, "running") == 0) {
		set_msg(m->result, sizeof m->result, "succeed");
	} else if (strcmp(m->status, "pending") == 0) {
		set_msg(m->result, sizeof m->result, "executing");
	} else {
		set_msg(m->result, sizeof m->result, "fail");
		if (!m->message[0])
			snprintf(m->message, sizeof m->message, "machine is %s before it became ready",
				 m->status);
	}
}

static void return_result(pv_machine_rec *m)
{
	if (strcmp(m->status, "terminated") == 0)
		set_msg(m->result, sizeof m->result, "succeed");
	else if (strcmp(m->result, "fail") != 0)
		set_msg(m->result, sizeof m->result, "executing");
}

static pv_request_state derive(const pv_request_rec *r, const pv_machine_list *ms, char *msg,
			       size_t size)
{
	size_t executing = 0, ok = 0, failed = 0;
	for (size_t i = 0; i < ms->n; i++) {
		const char *res = ms->items[i].result;
		executing += strcmp(res, "executing") == 0;
		ok += strcmp(res, "succeed") == 0;
		failed += strcmp(res, "fail") == 0;
	}
	if (executing)
		return PV_REQ_RUNNING;
	if (r->kind == PV_REQ_ACQUIRE && (int64_t)ok >= r->requested)
		return PV_REQ_COMPLETE;
	/* a return's requested counts the machines named that nobody knew */
	if (r->kind == PV_REQ_RETURN && !failed && (int64_t)ok >= r->requested)
		return PV_REQ_COMPLETE;
	if (msg && !msg[0])
		snprintf(msg, size, "%zu of %lld machine(s) %s", ok, (long long)r->requested,
			 r->kind == PV_REQ_ACQUIRE ? "provisioned" : "terminated");
	return PV_REQ_COMPLETE_WITH_ERROR;
}

/* ---- grouping by provider ----------------------------------------------------- */

/* Runs `type` once per owning provider over the machines picked by `want`,
 * with params {"instance_ids": [...]}; calls `apply` with each answer. */
typedef bool (*pick_fn)(const pv_machine_rec *m, void *user);
typedef void (*apply_fn)(pv_broker *b, pv_machine_list *ms, const char *provider,
			 const pv_result *res, void *user);

static void per_provider(pv_broker *b, pv_machine_list *ms, pv_op_type type, pick_fn want,
			 apply_fn apply, void *user)
{
	bool *done = calloc(ms->n + 1, sizeof *done);
	if (!done)
		return;
	for (size_t i = 0; i < ms->n; i++) {
		if (done[i] || !want(&ms->items[i], user))
			continue;
		const char *prov = ms->items[i].provider;
		json_t *ids = json_array();
		for (size_t j = i; j < ms->n; j++)
			if (!done[j] && strcmp(ms->items[j].provider, prov) == 0 && want(&ms->items[j], user)) {
				done[j] = true;
				json_array_append_new(ids, json_string(ms->items[j].machine_id));
			}
		pv_result res = PV_RESULT_INIT;
		pv_broker_run(b, prov, type, json_pack("{s:o}", "instance_ids", ids), &res);
		if (!res.success)
			pv_log(PV_LOG_WARN, "broker: %s on '%s' failed: %s: %s", pv_op_name(type), prov,
			       res.error_code, pv_result_message(&res) ? pv_result_message(&res) : "");
		apply(b, ms, prov, &res, user);
		pv_result_clear(&res);
	}
	free(done);
}

static pv_machine_rec *find_machine(pv_machine_list *ms, const char *provider, const char *id)
{
	for (size_t i = 0; id && i < ms->n; i++)
		if (strcmp(ms->items[i].machine_id, id) == 0 && strcmp(ms->items[i].provider, provider) == 0)
			return &ms->items[i];
	return NULL;
}

/* Status answers: new state (and addresses, now that they may be known). */
/* A machine leaving that nobody returned: the provider is taking it back
 * (a spot interruption, a termination outside provisio). Its reason, when
 * the provider gives one (state_reason), is recorded with it: Host Factory
 * sees it in getReturnRequests until it returns the machine. */
static void note_taken_back(pv_machine_rec *m, const json_t *inst)
{
	const char *why = json_string_value(json_object_get(inst, "state_reason"));
	const char *text = json_string_value(json_object_get(inst, "state_reason_message"));
	bool leaving = strcmp(m->status, "running") != 0 && strcmp(m->status, "pending") != 0;
	if (!why || !leaving || m->return_id[0] || strcmp(m->result, "fail") == 0 || m->message[0])
		return;
	snprintf(m->message, sizeof m->message, "taken back by the provider: %s%s%s", why, text ? ": " : "",
		 text ? text : "");
}

/* The provider's warning that it will take a running machine back (a spot
 * interruption notice: marked-for-termination, -stop, -hibernation). The
 * machine is recorded under notice (its message, kept in the store) and
 * reported to Host Factory from now on, so it can drain it before it goes. */
static void note_notice(pv_machine_rec *m, const json_t *inst)
{
	const char *code = json_string_value(json_object_get(inst, "interruption_notice"));
	const char *text = json_string_value(json_object_get(inst, "interruption_notice_message"));
	if (!code || m->return_id[0] || strcmp(m->result, "fail") == 0 || pv_machine_under_notice(m))
		return;
	snprintf(m->message, sizeof m->message, PV_NOTICE_PREFIX "%s%s%s", code, text ? ": " : "", text ? text : "");
	pv_log(PV_LOG_WARN, "broker: %s (%s) is under an interruption notice: %s", m->machine_id, m->provider, code);
}

bool pv_machine_under_notice(const pv_machine_rec *m)
{
	return strncmp(m->message, PV_NOTICE_PREFIX, sizeof PV_NOTICE_PREFIX - 1) == 0;
}

static void apply_status(pv_broker *b, pv_machine_list *ms, const char *provider,
			 const pv_result *res, void *user)
{
	(void)b;
	(void)user;
	if (!res->success)
		return;
	size_t i;
	json_t *inst, *id;
	json_array_foreach(json_object_get(res->data, "instances"), i, inst) {
		pv_machine_rec *m = find_machine(ms, provider, json_string_value(json_object_get(inst, "instance_id")));
		if (!m)
			continue;
		pv_machine_rec fresh = *m;
		pv_machine_from_instance(&fresh, inst, provider);
		set_msg(m->status, sizeof m->status, fresh.status);
		if (pv_machine_host_name(inst))
			set_msg(m->name, sizeof m->name, fresh.name);
		if (fresh.price_type[0])
			set_msg(m->price_type, sizeof m->price_type, fresh.price_type);
		if (fresh.private_ip[0])
			set_msg(m->private_ip, sizeof m->private_ip, fresh.private_ip);
		if (fresh.public_ip[0])
			set_msg(m->public_ip, sizeof m->public_ip, fresh.public_ip);
		note_taken_back(m, inst);
		note_notice(m, inst);
		m->updated_ms = pv_broker_now_ms();
	}
	/* The provider no longer knows it: it is gone. */
	json_array_foreach(json_object_get(res->data, "not_found"), i, id) {
		pv_machine_rec *m = find_machine(ms, provider, json_string_value(id));
		if (!m)
			continue;
		set_msg(m->status, sizeof m->status, "terminated");
		if (!m->message[0])
			set_msg(m->message, sizeof m->message, "the provider no longer knows this machine");
		m->updated_ms = pv_broker_now_ms();
	}
}

/* Terminate answers: accepted machines are shutting down (or already gone). */
static void apply_terminate(pv_broker *b, pv_machine_list *ms, const char *provider,
			    const pv_result *res, void *user)
{
	(void)b;
	(void)user;
	size_t i;
	json_t *id;
	if (!res->success) {
		/* NOT_FOUND for all: nothing left to terminate */
		bool gone = strcmp(res->error_code, PV_ERR_NOT_FOUND) == 0;
		for (size_t k = 0; k < ms->n; k++) {
			pv_machine_rec *m = &ms->items[k];
			if (strcmp(m->provider, provider) != 0 || strcmp(m->status, "terminated") == 0)
				continue;
			if (gone)
				set_msg(m->status, sizeof m->status, "terminated");
			else
				snprintf(m->message, sizeof m->message, "terminate failed: %s: %s",
					 res->error_code, pv_result_message(res) ? pv_result_message(res) : "");
		}
		return;
	}
	json_array_foreach(json_object_get(res->data, "terminated"), i, id) {
		pv_machine_rec *m = find_machine(ms, provider, json_string_value(id));
		if (m && strcmp(m->status, "terminated") != 0)
			set_msg(m->status, sizeof m->status, "shutting-down");
	}
	json_array_foreach(json_object_get(res->data, "not_found"), i, id) {
		pv_machine_rec *m = find_machine(ms, provider, json_string_value(id));
		if (m)
			set_msg(m->status, sizeof m->status, "terminated");
	}
}

static bool pick_not_gone(const pv_machine_rec *m, void *user)
{
	(void)user;
	return strcmp(m->status, "terminated") != 0 && strcmp(m->status, "shutting-down") != 0;
}

static bool pick_all(const pv_machine_rec *m, void *user)
{
	(void)m;
	(void)user;
	return true;
}

static bool pick_transitional(const pv_machine_rec *m, void *user)
{
	(void)user;
	return strcmp(m->status, "terminated") != 0 && strcmp(m->status, "running") != 0 &&
	       strcmp(m->status, "stopped") != 0;
}

/*
 * Writes a machine read before a provider call, in the caller's write
 * transaction. Meanwhile another process may have returned the machine or
 * seen it terminated: a copy read earlier never undoes that (a status
 * refresh that wrote its stale copy back cleared the return, and the
 * returned machine ran on with nothing to terminate it).
 */
static int put_machine(pv_broker *b, const pv_machine_rec *m)
{
	pv_machine_rec now;
	if (m->return_id[0] || pv_store_machine_get(b->store, m->machine_id, NULL, &now) < 0)
		return pv_store_machine_put(b->store, m);
	pv_machine_rec merged = *m;
	if (now.return_id[0]) {
		set_msg(merged.return_id, sizeof merged.return_id, now.return_id);
		set_msg(merged.result, sizeof merged.result, now.result);
		set_msg(merged.message, sizeof merged.message, now.message);
	}
	if (strcmp(now.status, "terminated") == 0)
		set_msg(merged.status, sizeof merged.status, now.status);
	return pv_store_machine_put(b->store, &merged);
}

/* Machines the broker released itself (failed, never returned) that are
 * not gone yet. */
static bool pick_released(const pv_machine_rec *m, void *user)
{
	(void)user;
	return strcmp(m->result, "fail") == 0 && !m->return_id[0] && pick_not_gone(m, NULL);
}

/* Writes machines read before a provider call, in one transaction (put_machine). */
static int write_machines(pv_broker *b, const pv_machine_list *ms)
{
	int rc = pv_store_begin(b->store, true);
	for (size_t i = 0; rc == 0 && i < ms->n; i++)
		rc = put_machine(b, &ms->items[i]);
	if (rc == 0)
		rc = pv_store_commit(b->store);
	if (rc < 0)
		pv_store_rollback(b->store);
	return rc;
}

/* Writes machines and (when it may move) the request, in one transaction. */
static int write_outcome(pv_broker *b, pv_request_rec *r, const pv_machine_list *ms)
{
	int rc = pv_store_begin(b->store, true);
	if (rc < 0)
		return rc;
	pv_request_rec stored;
	if (pv_store_request_get(b->store, r->id, &stored) == 0 &&
	    !pv_request_state_can_move(stored.state, r->state)) {
		/* another process finished it first; keep its verdict */
		r->state = stored.state;
		set_msg(r->message, sizeof r->message, stored.message);
	}
	for (size_t i = 0; rc == 0 && i < ms->n; i++)
		rc = put_machine(b, &ms->items[i]);
	r->updated_ms = pv_broker_now_ms();
	if (rc == 0)
		rc = pv_store_request_put(b->store, r);
	if (rc == 0)
		rc = pv_store_commit(b->store);
	if (rc < 0)
		pv_store_rollback(b->store);
	return rc;
}

/* ---- acquire ------------------------------------------------------------------- */

static int reserve(pv_broker *b, pv_request_rec *r, int64_t count)
{
	int rc = pv_store_begin(b->store, true);
	if (rc < 0)
		return rc;
	int64_t avail = 0;
	rc = pv_broker_available(b, r->template_id, &avail);
	if (rc == 0 && count > avail)
		rc = pv_error_set(PV_EINVAL, "machineCount %lld is over the available number %lld of "
					     "template '%s'", (long long)count, (long long)avail,
				  r->template_id);
	if (rc == 0)
		rc = pv_store_request_put(b->store, r);
	if (rc == 0)
		rc = pv_store_commit(b->store);
	if (rc < 0)
		pv_store_rollback(b->store);
	return rc;
}

/* Whether `m` is among the first `upto` machines of `ms`. */
static bool listed_in(const pv_machine_list *ms, size_t upto, const pv_machine_rec *m)
{
	for (size_t i = 0; i < upto && i < ms->n; i++)
		if (strcmp(ms->items[i].machine_id, m->machine_id) == 0 &&
		    strcmp(ms->items[i].provider, m->provider) == 0)
			return true;
	return false;
}

static bool listed(const pv_machine_list *ms, const pv_machine_rec *m)
{
	for (size_t i = 0; i < ms->n; i++)
		if (strcmp(ms->items[i].machine_id, m->machine_id) == 0 &&
		    strcmp(ms->items[i].provider, m->provider) == 0)
			return true;
	return false;
}

/* Adds the instances of one create answer; returns how many were new. */
static size_t take_instances(pv_machine_list *ms, const pv_request_rec *r, const pv_result *res)
{
	size_t i, added = 0, before = ms->n;
	json_t *inst;
	json_array_foreach(json_object_get(res->data, "instances"), i, inst) {
		pv_machine_rec m = {0};
		pv_machine_from_instance(&m, inst, res->provider);
		/* a replayed round answers with what earlier rounds made; one
		 * answer never lists a machine twice, so only those are compared */
		if (!m.machine_id[0] || listed_in(ms, before, &m))
			continue;
		set_msg(m.request_id, sizeof m.request_id, r->id);
		set_msg(m.template_id, sizeof m.template_id, r->template_id);
		m.updated_ms = pv_broker_now_ms();
		acquire_result(&m);
		if (pv_machine_list_push(ms, &m) == 0)
			added++;
	}
	return added;
}

/* ---- machines under the request's tag ------------------------------------------ */

static bool gone(const pv_machine_rec *m)
{
	return strcmp(m->status, "terminated") == 0 || strcmp(m->status, "shutting-down") == 0;
}

/*
 * Every instance the providers under the request's strategy list under its
 * id (describe_resource_instances), appended to `out` as machine records of
 * the request. false when one of them could not answer: then nobody can say
 * what exists, and nothing may be concluded from the list.
 */
static bool find_tagged(pv_broker *b, const pv_request_rec *r, pv_machine_list *out)
{
	bool complete = true;
	for (size_t p = 0; p < b->n_providers; p++) {
		const char *prov = b->providers[p];
		if (r->strategy[0] && !pv_broker_leaf_of(b, r->strategy, prov))
			continue;
		pv_result res = PV_RESULT_INIT;
		pv_broker_run(b, prov, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", r->id),
			      &res);
		if (!res.success) {
			pv_log(PV_LOG_WARN, "broker: %s: its machines on '%s' cannot be listed: %s: %s", r->id, prov,
			       res.error_code, pv_result_message(&res) ? pv_result_message(&res) : "");
			complete = false;
		}
		size_t i;
		json_t *inst;
		json_array_foreach(res.success ? json_object_get(res.data, "instances") : NULL, i, inst) {
			const char *rid = json_string_value(json_object_get(inst, "request_id"));
			if (rid && strcmp(rid, r->id) != 0)
				continue;
			pv_machine_rec m = {0};
			pv_machine_from_instance(&m, inst, prov);
			set_msg(m.request_id, sizeof m.request_id, r->id);
			set_msg(m.template_id, sizeof m.template_id, r->template_id);
			m.updated_ms = pv_broker_now_ms();
			if (m.machine_id[0] && !listed(out, &m))
				pv_machine_list_push(out, &m);
		}
		pv_result_clear(&res);
	}
	return complete;
}

/*
 * Adopts the request's live machines found under its tag that `ms` does
 * not hold yet, up to the count asked for, and terminates the live ones
 * beyond it (a launch made twice: the instance is never left running
 * unrecorded). Adds the number adopted to *adopted. false when the lookup
 * could not be made (what it did find is still adopted).
 */
static bool adopt_tagged(pv_broker *b, const pv_request_rec *r, pv_machine_list *ms, size_t *adopted)
{
	pv_machine_list found = {0}, excess = {0};
	bool complete = find_tagged(b, r, &found);
	size_t took = 0;
	for (size_t i = 0; i < found.n; i++) {
		pv_machine_rec *m = &found.items[i];
		if (listed(ms, m) || gone(m))
			continue;
		if ((int64_t)ms->n < r->requested) {
			acquire_result(m);
			if (pv_machine_list_push(ms, m) == 0)
				took++;
		} else {
			pv_machine_list_push(&excess, m);
		}
	}
	if (took)
		pv_log(PV_LOG_INFO, "broker: %s: %zu machine(s) found under its tag adopted", r->id, took);
	if (excess.n) {
		pv_log(PV_LOG_WARN, "broker: %s: %zu machine(s) beyond its count found under its tag: "
		       "terminating them", r->id, excess.n);
		per_provider(b, &excess, PV_OP_TERMINATE_INSTANCES, pick_all, apply_terminate, NULL);
	}
	pv_machine_list_clear(&found);
	pv_machine_list_clear(&excess);
	*adopted += took;
	return complete;
}

/* ---- acquire: the create rounds ---------------------------------------------------- */

/* What the create rounds of one request came to, beyond its machines. */
typedef struct rounds {
	bool unsettled;          /* a look under the tag could not be made: what
				    exists is unknown, nothing may be concluded */
	unsigned retries;        /* the providers' own retries, all rounds */
	pv_error_class cls;      /* the last failure's class */
	char throttled_by[64];   /* who throttled ("EC2"), when someone did */
} rounds;

/* A token no other attempt at this request uses: a process that takes a
 * request over makes its own launches (after adopting what the first one
 * made), never replays another's. */
static void attempt_nonce(char *buf, size_t size)
{
	char id[48];
	pv_broker_new_id("x", id, sizeof id);
	snprintf(buf, size, "%.8s", id + 2);
}

/*
 * Asks the template's strategy until it has all machines or stops making
 * progress: a provider that delivers part leaves the rest to the next
 * round, where a full provider fails with CAPACITY and a fallback moves on;
 * a transient or throttled failure is worth another round. Each round is
 * one intended launch with its own client_token (a provider's retries of
 * it reuse the token). A round whose outcome is unknown (a lost answer the
 * provider could not resolve, a transient failure) is settled by looking
 * under the request's tag before the next one.
 */
static void provision(pv_broker *b, const pv_request_rec *r, const json_t *tmpl, pv_machine_list *ms,
		      char *msg, size_t size, rounds *o)
{
	char nonce[16];
	attempt_nonce(nonce, sizeof nonce);
	for (unsigned round = 0; round < b->set.max_create_rounds && (int64_t)ms->n < r->requested;
	     round++) {
		char token[PV_STORE_SHORT_MAX + 32];
		snprintf(token, sizeof token, "%s-%s-%u", r->id, nonce, round);
		json_t *params = json_pack("{s:I, s:s, s:s, s:s, s:O}", "count",
					   (json_int_t)(r->requested - (int64_t)ms->n), "template_id",
					   r->template_id, "request_id", r->id, "client_token", token,
					   "template", tmpl);
		pv_result res = PV_RESULT_INIT;
		pv_broker_run(b, r->strategy, PV_OP_CREATE_INSTANCES, params, &res);
		size_t added = res.success ? take_instances(ms, r, &res) : 0;
		json_t *meta = pv_result_meta(&res);
		o->retries += (unsigned)json_integer_value(json_object_get(meta, "retries"));
		const char *by = json_string_value(json_object_get(meta, "throttled_by"));
		if (by)
			snprintf(o->throttled_by, sizeof o->throttled_by, "%s", by);
		bool unsure = json_is_true(json_object_get(meta, "outcome_unknown")) ||
			      (!res.success && res.error_class == PV_CLASS_TRANSIENT);
		bool again = !res.success && pv_error_class_retryable(res.error_class);
		if (!res.success) {
			snprintf(msg, size, "%s: %s", res.error_code,
				 pv_result_message(&res) ? pv_result_message(&res) : "");
			o->cls = res.error_class;
		}
		pv_log(PV_LOG_INFO, "broker: %s round %u: %s via '%s': %zu machine(s)%s", r->id, round,
		       res.success ? "ok" : res.error_code, res.provider, added,
		       unsure ? ", outcome unknown: looking under its tag" : "");
		pv_result_clear(&res);
		if (unsure && !adopt_tagged(b, r, ms, &added)) {
			o->unsettled = true;
			break;
		}
		if (added == 0 && !again)
			break;
	}
}

/* The request's message when it ends short: the cause first when it was
 * throttling ("throttled by EC2: 100 of 150 after 33 retries"). */
static void short_message(pv_request_rec *r, size_t made, const rounds *o)
{
	char why[sizeof r->message];
	memcpy(why, r->message, sizeof why);
	/* a call throttled until its deadline ends as a TIMEOUT saying so */
	bool throttled = o->cls == PV_CLASS_THROTTLED || (o->throttled_by[0] && strstr(why, "throttled by"));
	if (throttled)
		snprintf(r->message, sizeof r->message, "throttled by %.60s: %zu of %lld after %u retries%s%.300s",
			 o->throttled_by[0] ? o->throttled_by : r->strategy, made, (long long)r->requested,
			 o->retries, why[0] ? "; " : "", why);
	else if (made)
		snprintf(r->message, sizeof r->message, "%zu of %lld machine(s) provisioned%s%.400s", made,
			 (long long)r->requested, why[0] ? ": " : "", why);
}

/*
 * What cannot be settled now is left for another try, never concluded: a
 * queued request (Host Factory holds its id) goes back to the queue, for
 * the next pass to look under its tag again and carry on; a request of
 * this process (creating) is left to recovery, which releases what it
 * made (Host Factory never gets its id). The machines known are written
 * with it, so recovery finds them even where a listing lags.
 */
static int leave_unsettled(pv_broker *b, pv_request_rec *r, pv_machine_list *ms)
{
	char why[sizeof r->message];
	memcpy(why, r->message, sizeof why);
	snprintf(r->message, sizeof r->message, "a launch's outcome is unknown and its machines cannot be "
		 "listed now%s%.400s", why[0] ? ": " : "", why);
	r->owner_pid = 0; /* nobody works on it: the queue or recovery takes it */
	bool queued = r->state == PV_REQ_QUEUED;
	for (size_t i = 0; !queued && i < ms->n; i++) {
		set_msg(ms->items[i].result, sizeof ms->items[i].result, "fail");
		set_msg(ms->items[i].message, sizeof ms->items[i].message,
			"released: the request's outcome could not be settled");
	}
	pv_machine_list none = {0};
	int rc = write_outcome(b, r, queued ? &none : ms);
	pv_log(PV_LOG_WARN, "broker: %s left %s: %s", r->id, queued ? "queued" : "to recovery", r->message);
	if (rc < 0)
		return rc;
	return pv_error_set(PV_EIO, "request %s: %s", r->id, r->message);
}

/* Provisions a request already reserved in the store and writes the
 * outcome. A queued request is first looked for under its tag: another
 * process may have started it (Host Factory holds its id, so what exists
 * is delivered). 0, PV_ERROR when no machine was made (the request is
 * "failed"), PV_EIO when the outcome could not be settled (see
 * leave_unsettled), or the store's error (left unsettled: recovery or the
 * queue finishes it). */
static int fulfil(pv_broker *b, pv_request_rec *r, const json_t *tmpl)
{
	pv_machine_list ms = {0};
	rounds o = {0};
	size_t adopted = 0;
	if (r->state == PV_REQ_QUEUED && !adopt_tagged(b, r, &ms, &adopted))
		o.unsettled = true;
	else if (tmpl)
		provision(b, r, tmpl, &ms, r->message, sizeof r->message, &o);
	else
		snprintf(r->message, sizeof r->message, "template '%s' is no longer configured",
			 r->template_id);
	if (o.unsettled) {
		int rc = leave_unsettled(b, r, &ms);
		pv_machine_list_clear(&ms);
		return rc;
	}
	r->refreshed_ms = pv_broker_now_ms();
	r->state = ms.n ? derive(r, &ms, NULL, 0) : PV_REQ_FAILED;
	if (r->state == PV_REQ_COMPLETE)
		r->message[0] = '\0';
	else if ((int64_t)ms.n < r->requested)
		short_message(r, ms.n, &o);
	int rc = write_outcome(b, r, &ms);
	pv_machine_list_clear(&ms);
	if (rc < 0)
		return rc;
	if (r->state == PV_REQ_FAILED)
		return pv_error_set(PV_ERROR, "no machine of template '%s' could be provisioned: %s",
				    r->template_id, r->message);
	return 0;
}

/* This process becomes the request's owner (owner_pid in this node). */
static void take_ownership(const pv_broker *b, pv_request_rec *r)
{
	r->owner_pid = getpid();
	snprintf(r->owner_node, sizeof r->owner_node, "%s", b->node);
}

int pv_broker_request_machines(pv_broker *b, const char *template_id, int64_t count,
			       char id_out[PV_STORE_SHORT_MAX])
{
	id_out[0] = '\0';
	const json_t *tmpl = pv_broker_template(b, template_id);
	if (!tmpl)
		return pv_error_set(PV_EINVAL, "unknown template '%s'", template_id ? template_id : "");
	const char *refused = pv_broker_template_refused(b, template_id);
	if (refused)
		return pv_error_set(PV_EINVAL, "template '%s' is refused by its provider: %s", template_id, refused);
	if (count < 1 || count > PV_BROKER_MAX_MACHINE_COUNT)
		return pv_error_set(PV_EINVAL, "machineCount must be from 1 to %d (got %lld)",
				    PV_BROKER_MAX_MACHINE_COUNT, (long long)count);
	bool queue = b->mode == PV_BROKER_DEFERRED;
	pv_request_rec r = {.kind = PV_REQ_ACQUIRE, .state = queue ? PV_REQ_QUEUED : PV_REQ_CREATING,
			    .requested = count, .created_ms = pv_broker_now_ms()};
	r.updated_ms = r.created_ms;
	if (!queue)
		take_ownership(b, &r);
	int rc = pv_broker_choose_strategy(b, tmpl, r.strategy, sizeof r.strategy);
	if (rc < 0)
		return rc;
	set_msg(r.template_id, sizeof r.template_id, template_id);
	pv_broker_new_id("req", r.id, sizeof r.id);
	if (!queue)
		pv_broker_recover(b); /* dead processes' reservations count against maxNumber */
	rc = reserve(b, &r, count);
	if (rc < 0)
		return rc;
	/* queued: the daemon provisions it; Host Factory asks for the status */
	if (!queue && (rc = fulfil(b, &r, tmpl)) < 0)
		return rc;
	snprintf(id_out, PV_STORE_SHORT_MAX, "%s", r.id);
	return 0;
}

/* ---- status ---------------------------------------------------------------------- */

static void expire_pending(pv_broker *b, pv_machine_list *ms)
{
	int64_t now_s = pv_broker_now_ms() / 1000;
	bool any = false;
	for (size_t i = 0; i < ms->n; i++) {
		pv_machine_rec *m = &ms->items[i];
		if (strcmp(m->status, "pending") != 0 ||
		    (double)(now_s - m->launch_time) < b->set.pending_timeout_seconds)
			continue;
		set_msg(m->result, sizeof m->result, "fail");
		snprintf(m->message, sizeof m->message, "still pending after %.0f s (pending timeout)",
			 b->set.pending_timeout_seconds);
		any = true;
	}
	if (any)
		per_provider(b, ms, PV_OP_TERMINATE_INSTANCES, pick_transitional, apply_terminate, NULL);
}

static bool stale(const pv_broker *b, const pv_request_rec *r)
{
	double age = (double)(pv_broker_now_ms() - r->refreshed_ms) / 1000.0;
	return b->set.status_max_age_seconds < 0 || age >= b->set.status_max_age_seconds;
}

static int refresh(pv_broker *b, pv_request_rec *r, pv_machine_list *ms)
{
	per_provider(b, ms, PV_OP_GET_INSTANCE_STATUS, pick_transitional, apply_status, NULL);
	if (r->kind == PV_REQ_ACQUIRE) {
		expire_pending(b, ms);
		for (size_t i = 0; i < ms->n; i++)
			acquire_result(&ms->items[i]);
	} else {
		/* a return is not done until the machines are gone: ask again */
		per_provider(b, ms, PV_OP_TERMINATE_INSTANCES, pick_not_gone, apply_terminate, NULL);
		bool late = (double)(pv_broker_now_ms() - r->created_ms) / 1000.0 >= b->set.pending_timeout_seconds;
		for (size_t i = 0; i < ms->n; i++) {
			pv_machine_rec *m = &ms->items[i];
			return_result(m);
			if (late && strcmp(m->result, "executing") == 0) {
				set_msg(m->result, sizeof m->result, "fail");
				if (!m->message[0])
					set_msg(m->message, sizeof m->message, "not terminated in time");
			}
		}
	}
	r->refreshed_ms = pv_broker_now_ms();
	if (!pv_request_state_final(r->state) && !pv_request_state_unsettled(r->state))
		r->state = derive(r, ms, r->message, sizeof r->message);
	return write_outcome(b, r, ms);
}

static int read_request(pv_broker *b, const char *id, pv_request_rec *r, pv_machine_list *ms)
{
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return rc;
	rc = pv_store_request_get(b->store, id, r);
	if (rc == 0)
		rc = pv_store_machine_list(b->store, r->kind == PV_REQ_ACQUIRE ? PV_MF_REQUEST : PV_MF_RETURN,
					   id, ms);
	pv_store_commit(b->store);
	return rc;
}

/* Records that an acquire request's id reached someone (the first time
 * only: the store keeps the first mark, and a reclaimed one stays so). */
static int mark_delivered(pv_broker *b, const char *id, int64_t *delivered_ms)
{
	int rc = pv_store_begin(b->store, true);
	if (rc < 0)
		return rc;
	pv_request_rec r;
	rc = pv_store_request_get(b->store, id, &r);
	if (rc == 0 && r.kind == PV_REQ_ACQUIRE && r.delivered_ms == 0) {
		r.delivered_ms = pv_broker_now_ms();
		rc = pv_store_request_put(b->store, &r);
	}
	if (rc == 0)
		rc = pv_store_commit(b->store);
	if (rc < 0)
		pv_store_rollback(b->store);
	else if (delivered_ms)
		*delivered_ms = r.delivered_ms;
	return rc;
}

int pv_broker_request_delivered(pv_broker *b, const char *id)
{
	if (!id || !*id)
		return pv_error_set(PV_EINVAL, "requestId must be a non-empty string");
	int rc = mark_delivered(b, id, NULL);
	return rc == PV_ENOTFOUND ? pv_error_set(PV_ENOTFOUND, "unknown request id '%s'", id) : rc;
}

/* The status; `reader`: asked by someone holding the id (a front end),
 * which proves it was delivered, not by the reconciler. */
static int status_of(pv_broker *b, const char *id, pv_request_rec *req, pv_machine_list *machines,
		     bool reader)
{
	if (!id || !*id)
		return pv_error_set(PV_EINVAL, "requestId must be a non-empty string");
	/* an empty list is read into directly: its capacity is reused (a
	 * server keeps one per thread), nothing is copied */
	pv_machine_list local = {0};
	pv_machine_list *ms = machines->n == 0 ? machines : &local;
	int rc = read_request(b, id, req, ms);
	if (rc == PV_ENOTFOUND)
		rc = pv_error_set(PV_ENOTFOUND, "unknown request id '%s'", id);
	bool direct = b->mode == PV_BROKER_DIRECT;
	if (rc == 0 && direct && req->state == PV_REQ_CREATING && pv_broker_recover(b) > 0) {
		ms->n = 0;
		rc = read_request(b, id, req, ms);
	}
	if (rc == 0 && reader && req->kind == PV_REQ_ACQUIRE && req->delivered_ms == 0)
		rc = mark_delivered(b, id, &req->delivered_ms);
	bool moving = false;
	for (size_t i = 0; rc == 0 && i < ms->n; i++)
		moving |= pick_transitional(&ms->items[i], NULL) ||
			  (req->kind == PV_REQ_RETURN && strcmp(ms->items[i].result, "executing") == 0);
	if (rc == 0 && direct && !pv_request_state_unsettled(req->state) &&
	    (moving || !pv_request_state_final(req->state)) && stale(b, req))
		rc = refresh(b, req, ms);
	if (ms == machines)
		return rc;
	for (size_t i = 0; rc == 0 && i < local.n; i++)
		rc = pv_machine_list_push(machines, &local.items[i]);
	pv_machine_list_clear(&local);
	return rc;
}

int pv_broker_request_status(pv_broker *b, const char *id, pv_request_rec *req,
			     pv_machine_list *machines)
{
	return status_of(b, id, req, machines, true);
}

int pv_broker_request_refresh(pv_broker *b, const char *id, pv_request_rec *req,
			      pv_machine_list *machines)
{
	return status_of(b, id, req, machines, false);
}

/* ---- return ---------------------------------------------------------------------- */

/* Room for the names of unknown machines in a return's message (with "and
 * N more" and the message's own words, it fits PV_STORE_MESSAGE_MAX). */
#define UNKNOWN_NAMES_MAX 420

static const char *ref_text(const pv_machine_ref *ref)
{
	return ref->machine_id && *ref->machine_id ? ref->machine_id : ref->name ? ref->name : "";
}

/* The machines `refs` name, each once, into `ms`. Those the store does not
 * know are skipped; with `unknown` they are counted and named in `note`
 * ("a, b" and, past what fits, "and N more"). */
static int resolve(pv_broker *b, const pv_machine_ref *refs, size_t n, pv_machine_list *ms,
		   size_t *unknown, char *note, size_t size)
{
	size_t named = 0, len = 0;
	char names[UNKNOWN_NAMES_MAX] = "";
	for (size_t i = 0; i < n; i++) {
		pv_machine_rec m;
		const char *id = refs[i].machine_id && *refs[i].machine_id ? refs[i].machine_id : NULL;
		int rc = pv_store_machine_get(b->store, id, id ? NULL : refs[i].name, &m);
		if (rc == PV_ENOTFOUND && unknown) {
			const char *text = ref_text(&refs[i]);
			if (len + strlen(text) + 2 <= UNKNOWN_NAMES_MAX - 40) {
				len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", named ? ", " : "",
							text);
				named++;
			}
			++*unknown;
			continue;
		}
		if (rc == PV_ENOTFOUND)
			continue;
		if (rc < 0)
			return rc;
		if (!listed(ms, &m) && (rc = pv_machine_list_push(ms, &m)) < 0)
			return rc;
	}
	if (unknown && named < *unknown)
		snprintf(note, size, "%s and %zu more", names, *unknown - named);
	else if (unknown)
		snprintf(note, size, "%s", names);
	return 0;
}

/* Terminates the machines of a recorded return (those not gone yet) and
 * writes where it stands. */
static int finish_return(pv_broker *b, pv_request_rec *r, pv_machine_list *ms)
{
	per_provider(b, ms, PV_OP_TERMINATE_INSTANCES, pick_not_gone, apply_terminate, NULL);
	for (size_t i = 0; i < ms->n; i++)
		return_result(&ms->items[i]);
	r->refreshed_ms = pv_broker_now_ms();
	r->state = derive(r, ms, r->message, sizeof r->message);
	return write_outcome(b, r, ms);
}

int pv_broker_return_machines(pv_broker *b, const pv_machine_ref *refs, size_t n,
			      char id_out[PV_STORE_SHORT_MAX])
{
	id_out[0] = '\0';
	if (!n)
		return pv_error_set(PV_EINVAL, "machines must list at least one machine");
	bool queue = b->mode == PV_BROKER_DEFERRED;
	pv_request_rec r = {.kind = PV_REQ_RETURN, .state = queue ? PV_REQ_QUEUED : PV_REQ_CREATING,
			    .requested = (int64_t)n, .created_ms = pv_broker_now_ms()};
	r.updated_ms = r.created_ms;
	if (!queue)
		take_ownership(b, &r);
	pv_broker_new_id("ret", r.id, sizeof r.id);
	pv_machine_list ms = {0};
	size_t unknown = 0;
	char names[UNKNOWN_NAMES_MAX] = "";
	int rc = pv_store_begin(b->store, true);
	if (rc == 0)
		rc = resolve(b, refs, n, &ms, &unknown, names, sizeof names);
	if (rc == 0 && ms.n == 0)
		rc = pv_error_set(PV_EINVAL, "unknown machine(s), nothing returned: %s", names);
	/* the known ones are returned; those nobody knew keep it from complete */
	r.requested = (int64_t)(ms.n + unknown);
	if (rc == 0 && unknown) {
		snprintf(r.message, sizeof r.message, "%zu machine(s) unknown to provisio, not returned: %s",
			 unknown, names);
		pv_log(PV_LOG_WARN, "broker: return %s: %s", r.id, r.message);
	}
	for (size_t i = 0; rc == 0 && i < ms.n; i++) {
		pv_machine_rec *m = &ms.items[i];
		set_msg(m->return_id, sizeof m->return_id, r.id);
		m->message[0] = '\0';
		set_msg(m->result, sizeof m->result, "executing");
		return_result(m);
		rc = pv_store_machine_put(b->store, m);
	}
	if (rc == 0)
		rc = pv_store_request_put(b->store, &r);
	if (rc == 0)
		rc = pv_store_commit(b->store);
	if (rc < 0) {
		pv_store_rollback(b->store);
		pv_machine_list_clear(&ms);
		return rc;
	}
	/* queued: marked for return; the daemon terminates them */
	if (!queue)
		rc = finish_return(b, &r, &ms);
	pv_machine_list_clear(&ms);
	if (rc == 0)
		snprintf(id_out, PV_STORE_SHORT_MAX, "%s", r.id);
	return rc;
}

/* ---- reconciliation ----------------------------------------------------------------- */

static bool reclaimed(const pv_machine_rec *m)
{
	/* machines the broker released itself were never Host Factory's to
	 * drain; a running one under an interruption notice is, before it goes */
	return !m->return_id[0] && strcmp(m->result, "fail") != 0 &&
	       ((strcmp(m->status, "running") != 0 && strcmp(m->status, "pending") != 0) ||
		pv_machine_under_notice(m));
}

/* Machines of filter `f` not listed yet: those on their way out that no
 * request will look at again (released by recovery or a pending timeout:
 * Host Factory's periodic getReturnRequests is where their end gets
 * recorded), and those their provider took back (a spot interruption, a
 * termination outside provisio: reported until Host Factory returns them). */
static int add_listed(pv_broker *b, pv_machine_filter f, pv_machine_list *ms)
{
	pv_machine_list leaving = {0};
	int rc = pv_store_machine_list(b->store, f, NULL, &leaving);
	for (size_t i = 0; rc == 0 && i < leaving.n; i++)
		if (!listed(ms, &leaving.items[i]))
			rc = pv_machine_list_push(ms, &leaving.items[i]);
	pv_machine_list_clear(&leaving);
	return rc;
}

static bool pick_unsettled(const pv_machine_rec *m, void *user)
{
	(void)user;
	return strcmp(m->status, "terminated") != 0;
}

int pv_broker_reclaimed(pv_broker *b, const pv_machine_ref *refs, size_t n, pv_machine_list *out)
{
	pv_machine_list ms = {0};
	/* Host Factory's periodic call: also where requests nobody got are
	 * reclaimed when no other call comes */
	pv_broker_recover(b);
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return rc;
	/* a host Host Factory names that is not ours is nobody's to reclaim */
	rc = n ? resolve(b, refs, n, &ms, NULL, NULL, 0) : pv_store_machine_list(b->store, PV_MF_ALIVE, NULL, &ms);
	if (rc == 0)
		rc = add_listed(b, PV_MF_LEAVING, &ms);
	if (rc == 0 && !n)
		rc = add_listed(b, PV_MF_TAKEN_BACK, &ms);
	pv_store_commit(b->store);
	/* only machines nobody returned; returned ones are the return's business */
	size_t k = 0;
	for (size_t i = 0; i < ms.n; i++)
		if (!ms.items[i].return_id[0])
			ms.items[k++] = ms.items[i];
	ms.n = k;
	/* deferred: the daemon's reconciler asked the providers already */
	if (rc == 0 && ms.n && b->mode == PV_BROKER_DIRECT) {
		per_provider(b, &ms, PV_OP_GET_INSTANCE_STATUS, pick_unsettled, apply_status, NULL);
		/* machines the broker released whose terminate did not happen
		 * (it failed, or its process died first) are ended now */
		per_provider(b, &ms, PV_OP_TERMINATE_INSTANCES, pick_released, apply_terminate, NULL);
		rc = write_machines(b, &ms);
	}
	for (size_t i = 0; rc == 0 && i < ms.n; i++)
		if (reclaimed(&ms.items[i]))
			rc = pv_machine_list_push(out, &ms.items[i]);
	pv_machine_list_clear(&ms);
	return rc;
}

/* ---- crash recovery ------------------------------------------------------------------ */

bool pv_broker_pid_alive(int64_t pid)
{
	if (pid <= 0)
		return false;
	if (pid == getpid())
		return true;
	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return false;
	/* a killed process its parent has not reaped yet is a zombie: dead */
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true; /* no /proc: trust kill() */
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* Whether the request's owner_pid is a pid of this node (rows written
 * before owner_node was recorded: assumed so, as then every owner was). */
static bool owned_on_this_node(const pv_broker *b, const pv_request_rec *r)
{
	return !r->owner_node[0] || strcmp(r->owner_node, b->node) == 0;
}

static bool owned_by_me(const pv_broker *b, const pv_request_rec *r)
{
	return r->owner_pid == getpid() && owned_on_this_node(b, r);
}

/* Whether the process working on a request may still exist. Another node's
 * pid cannot be checked from here: that owner holds the request until it
 * is creating_timeout_seconds old (a lease), as a hung local one does. */
static bool owner_alive(const pv_broker *b, const pv_request_rec *r)
{
	return !owned_on_this_node(b, r) || pv_broker_pid_alive(r->owner_pid);
}

/* Takes over a stale request (so one process recovers it) for this process.
 * false when someone else finished or claimed it meanwhile. */
static bool claim(pv_broker *b, pv_request_rec *r)
{
	if (pv_store_begin(b->store, true) < 0)
		return false;
	pv_request_rec now;
	bool ok = pv_store_request_get(b->store, r->id, &now) == 0 && now.state == r->state &&
		  now.owner_pid == r->owner_pid && strcmp(now.owner_node, r->owner_node) == 0 &&
		  now.updated_ms == r->updated_ms;
	if (ok) {
		take_ownership(b, r);
		r->updated_ms = pv_broker_now_ms();
		ok = pv_store_request_put(b->store, r) == 0 && pv_store_commit(b->store) == 0;
	}
	if (!ok)
		pv_store_rollback(b->store);
	return ok;
}

/* The machines a request interrupted before Host Factory got its id made:
 * those recorded with it and those found under its tag, all marked to be
 * released. false when they cannot all be known now (a provider could not
 * list them). */
static bool interrupted_machines(pv_broker *b, const pv_request_rec *r, pv_machine_list *ms)
{
	int rc = pv_store_begin(b->store, false);
	if (rc == 0) {
		rc = pv_store_machine_list(b->store, PV_MF_REQUEST, r->id, ms);
		pv_store_commit(b->store);
	}
	bool complete = find_tagged(b, r, ms) && rc == 0;
	for (size_t i = 0; i < ms->n; i++) {
		set_msg(ms->items[i].result, sizeof ms->items[i].result, "fail");
		set_msg(ms->items[i].message, sizeof ms->items[i].message,
			"released: its request was interrupted before Host Factory got the id");
	}
	return complete;
}

static int return_machines_of(pv_broker *b, const pv_request_rec *r, pv_machine_list *ms)
{
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return rc;
	rc = pv_store_machine_list(b->store, PV_MF_RETURN, r->id, ms);
	pv_store_commit(b->store);
	return rc;
}

/* The requests in `state`, newest first. */
static int requests_in(pv_broker *b, pv_request_state state, pv_request_rec **list, size_t *n)
{
	*list = NULL;
	*n = 0;
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return rc;
	rc = pv_store_request_list(b->store, (int)state, 0, list, n);
	pv_store_commit(b->store);
	return rc;
}

/* ---- requests nobody got ---------------------------------------------------------------- */

/*
 * A request whose process died after committing it and before handing its
 * id out (printing it, answering) holds machines nobody will ever ask
 * about or return. The id is delivered when the front end has written it
 * (pv_broker_request_delivered) or when anyone reads the request's status;
 * a request still undelivered creating_timeout_seconds +
 * pending_timeout_seconds after it was made is reclaimed: by then it has
 * settled (or was recovered), and a caller that got its id would long
 * have asked about it (Host Factory asks within seconds).
 */

/* In one write transaction: still undelivered, it is marked reclaimed
 * (delivered_ms -1) and its machines not returned nor gone marked failed
 * (released: machines the broker gives back itself, PV_MF_LEAVING), into
 * `ms`. false when someone read it meanwhile (or the store failed). */
static bool claim_undelivered(pv_broker *b, const pv_request_rec *seen, double waited_s,
			      pv_machine_list *ms)
{
	if (pv_store_begin(b->store, true) < 0)
		return false;
	pv_request_rec r;
	pv_machine_list all = {0};
	int rc = pv_store_request_get(b->store, seen->id, &r);
	bool ok = rc == 0 && r.delivered_ms == 0;
	if (ok)
		rc = pv_store_machine_list(b->store, PV_MF_REQUEST, r.id, &all);
	for (size_t i = 0; ok && rc == 0 && i < all.n; i++) {
		pv_machine_rec *m = &all.items[i];
		if (m->return_id[0] || strcmp(m->status, "terminated") == 0)
			continue;
		set_msg(m->result, sizeof m->result, "fail");
		set_msg(m->message, sizeof m->message,
			"released: its request's id was never delivered to anyone");
		m->updated_ms = pv_broker_now_ms();
		rc = pv_store_machine_put(b->store, m);
		if (rc == 0)
			rc = pv_machine_list_push(ms, m);
	}
	if (ok && rc == 0) {
		r.delivered_ms = -1;
		snprintf(r.message, sizeof r.message, "reclaimed: its id was never delivered (nobody read it "
			 "in %.0f s); %zu machine(s) released", waited_s, ms->n);
		if (!pv_request_state_final(r.state))
			r.state = derive(&r, &all, NULL, 0);
		r.updated_ms = pv_broker_now_ms();
		rc = pv_store_request_put(b->store, &r);
	}
	if (ok && rc == 0)
		rc = pv_store_commit(b->store);
	if (!ok || rc < 0)
		pv_store_rollback(b->store);
	pv_machine_list_clear(&all);
	return ok && rc == 0;
}

static int reclaim_undelivered(pv_broker *b)
{
	double waited_s = b->set.creating_timeout_seconds + b->set.pending_timeout_seconds;
	pv_request_rec *list = NULL;
	size_t n = 0;
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return 0;
	rc = pv_store_request_list_undelivered(b->store, pv_broker_now_ms() - (int64_t)(waited_s * 1000),
					      &list, &n);
	pv_store_commit(b->store);
	int reclaimed = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		pv_machine_list ms = {0};
		if (!claim_undelivered(b, &list[i], waited_s, &ms))
			continue;
		/* a crash from here on leaves them failed, not returned, not gone:
		 * pv_broker_reclaimed terminates them again */
		per_provider(b, &ms, PV_OP_TERMINATE_INSTANCES, pick_released, apply_terminate, NULL);
		write_machines(b, &ms);
		pv_log(PV_LOG_WARN, "broker: reclaimed %s: its id was never delivered; %zu machine(s) "
		       "released", list[i].id, ms.n);
		reclaimed++;
		pv_machine_list_clear(&ms);
	}
	free(list);
	return reclaimed;
}

int pv_broker_recover(pv_broker *b)
{
	if (b->mode != PV_BROKER_DIRECT)
		return 0;
	pv_request_rec *list = NULL;
	size_t n = 0;
	int rc = requests_in(b, PV_REQ_CREATING, &list, &n);
	int recovered = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		pv_request_rec *r = &list[i];
		double age = (double)(pv_broker_now_ms() - r->updated_ms) / 1000.0;
		if ((owner_alive(b, r) && age < b->set.creating_timeout_seconds) ||
		    owned_by_me(b, r) || !claim(b, r))
			continue;
		pv_machine_list ms = {0};
		int done;
		if (r->kind == PV_REQ_ACQUIRE && !interrupted_machines(b, r, &ms)) {
			/* not concluded on a partial view: the next pass looks again */
			r->owner_pid = 0;
			pv_machine_list none = {0};
			write_outcome(b, r, &none);
			pv_log(PV_LOG_WARN, "broker: %s not recovered yet: its machines cannot all be listed",
			       r->id);
			pv_machine_list_clear(&ms);
			continue;
		} else if (r->kind == PV_REQ_ACQUIRE) {
			per_provider(b, &ms, PV_OP_TERMINATE_INSTANCES, pick_not_gone, apply_terminate, NULL);
			r->state = PV_REQ_FAILED;
			snprintf(r->message, sizeof r->message,
				 "interrupted before Host Factory got the request id; %zu machine(s) released",
				 ms.n);
			done = write_outcome(b, r, &ms);
		} else {
			/* a return: its machines are recorded; finish terminating them */
			done = return_machines_of(b, r, &ms);
			if (done == 0)
				done = finish_return(b, r, &ms);
		}
		if (done == 0)
			recovered++;
		pv_log(PV_LOG_WARN, "broker: recovered %s (%zu machine(s))", r->id, ms.n);
		pv_machine_list_clear(&ms);
	}
	free(list);
	return recovered + reclaim_undelivered(b);
}

/* ---- the queue ---------------------------------------------------------------------------- */

/* Whether this process should take a queued request: nobody has it yet,
 * or the process that took it died (or has been at it too long). */
static bool takeable(const pv_broker *b, const pv_request_rec *r)
{
	if (r->owner_pid == 0)
		return true;
	if (owned_by_me(b, r))
		return false;
	double age = (double)(pv_broker_now_ms() - r->updated_ms) / 1000.0;
	return !owner_alive(b, r) || age >= b->set.creating_timeout_seconds;
}

static int run_one(pv_broker *b, pv_request_rec *r)
{
	if (r->kind == PV_REQ_ACQUIRE) {
		/* replayed from round 0 when a dead process had started it: the
		 * provider answers the same client tokens with the same machines */
		int rc = fulfil(b, r, pv_broker_template(b, r->template_id));
		pv_log(rc == 0 ? PV_LOG_INFO : PV_LOG_WARN, "broker: queued %s of %lld '%s': %s", r->id,
		       (long long)r->requested, r->template_id, pv_request_state_name(r->state));
		return rc == PV_ERROR ? 0 : rc; /* failed is an outcome, recorded */
	}
	pv_machine_list ms = {0};
	int rc = return_machines_of(b, r, &ms);
	if (rc == 0)
		rc = finish_return(b, r, &ms);
	pv_log(PV_LOG_INFO, "broker: queued return %s of %zu machine(s): %s", r->id, ms.n,
	       pv_request_state_name(r->state));
	pv_machine_list_clear(&ms);
	return rc;
}

int pv_broker_run_queue(pv_broker *b)
{
	if (b->mode != PV_BROKER_DIRECT)
		return 0;
	pv_request_rec *list = NULL;
	size_t n = 0;
	int done = 0;
	if (requests_in(b, PV_REQ_QUEUED, &list, &n) < 0)
		return 0;
	/* oldest first: the store lists newest first */
	for (size_t k = n; k-- > 0;) {
		pv_request_rec *r = &list[k];
		if (!takeable(b, r) || !claim(b, r))
			continue;
		if (run_one(b, r) == 0)
			done++;
	}
	free(list);
	return done;
}
