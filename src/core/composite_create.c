/*
 * composite_create.c - create_instances over several children.
 *
 * Reads can be asked of everyone; machines cannot: asking three providers
 * for N machines each makes 3N. So creation has its own three shapes:
 *
 *   split   (parallel, unless first_success): N is divided by weight and by
 *           the room each child reports, asked of all at once; a child that
 *           makes fewer than asked drops out and its shortfall is split
 *           again among those that kept up, for a few rounds.
 *   spill   (sequential): ask the first child for N; if it makes k < N, ask
 *           the next for N - k, and so on.
 *   hedge   (parallel first_success, redundant): ask every child for N at
 *           once, keep one child's machines (the first full answer, or the
 *           fastest for best_performance) and terminate the others' through
 *           the child that made them.
 *
 * The result lists every instance with the leaf provider that made it. A
 * create is judged by the machines it made, not by the gate: success when N
 * exist, success flagged partial with the shortfall when 0 < k < N, and a
 * failure only when none were made (reporting machines that exist as a
 * failure would orphan them).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/composite_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"

#define SPLIT_ROUNDS 4

int64_t pv_create_made(const pv_result *r)
{
	if (!r->success || !r->data)
		return 0;
	json_t *v;
	if ((v = json_object_get(r->data, "instances")) && json_is_array(v))
		return (int64_t)json_array_size(v);
	if ((v = json_object_get(r->data, "instance_ids")) && json_is_array(v))
		return (int64_t)json_array_size(v);
	if ((v = json_object_get(r->data, "count")) && json_is_integer(v))
		return json_integer_value(v);
	if ((v = json_object_get(r->data, "would_create")) && json_is_integer(v))
		return json_integer_value(v); /* dry run */
	return 0;
}

/* The op's params with "count" replaced. New reference. */
static json_t *params_with_count(const pv_operation *op, int64_t count)
{
	json_t *p = json_is_object(op->params) ? json_copy(op->params) : json_object();
	if (p)
		json_object_set_new(p, "count", json_integer(count));
	return p;
}

/*
 * Divides `total` among n children in proportion to `w`, never giving a
 * child more than cap[i] (-1 = no limit, 0 = leave out): water-filling for
 * the caps, then largest remainders for the integer rounding (ties to the
 * earlier child). The sum is min(total, sum of caps).
 */
static void split_count(int64_t total, const double *w, const int64_t *cap, size_t n,
			int64_t *out, double *share)
{
	int64_t left = total;
	for (size_t i = 0; i < n; i++)
		out[i] = cap[i] == 0 ? 0 : -1; /* -1: still open */
	for (;;) {
		double wsum = 0;
		for (size_t i = 0; i < n; i++)
			wsum += out[i] < 0 ? w[i] : 0;
		if (wsum <= 0 || left <= 0)
			break;
		bool capped = false;
		for (size_t i = 0; i < n; i++) {
			share[i] = out[i] < 0 ? (double)left * w[i] / wsum : 0;
			if (out[i] < 0 && cap[i] > 0 && share[i] >= (double)cap[i]) {
				out[i] = cap[i];
				left -= cap[i];
				capped = true;
			}
		}
		if (capped)
			continue;
		int64_t given = 0;
		for (size_t i = 0; i < n; i++)
			if (out[i] < 0) {
				out[i] = (int64_t)floor(share[i]);
				given += out[i];
				share[i] -= (double)out[i];
			} else {
				share[i] = -1; /* not in the remainder round */
			}
		for (int64_t r = left - given; r > 0; r--) {
			size_t best = n;
			for (size_t i = 0; i < n; i++)
				if (share[i] >= 0 && (best == n || share[i] > share[best]))
					best = i;
			if (best == n)
				break;
			out[best]++;
			share[best] = -1;
		}
		left = 0;
		break;
	}
	for (size_t i = 0; i < n; i++)
		if (out[i] < 0)
			out[i] = 0;
}

/* ---- the merged result ------------------------------------------------------ */

static void add_child_section(json_t *by_child, const child_outcome *o, int64_t made)
{
	json_t *sec = json_object_get(by_child, o->m->s->name);
	if (!sec) {
		sec = json_pack("{s:s, s:I, s:[]}", "provider", o->res.provider, "count",
				(json_int_t)0, "instance_ids");
		json_object_set_new(by_child, o->m->s->name, sec);
	}
	json_object_set_new(sec, "count",
			    json_integer(json_integer_value(json_object_get(sec, "count")) + made));
	json_t *ids = json_object_get(o->res.data, "instance_ids");
	if (json_is_array(ids))
		json_array_extend(json_object_get(sec, "instance_ids"), ids);
}

static void attribute_instances(json_t *list, const char *provider)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
		if (json_is_object(e) && !json_object_get(e, "provider"))
			json_object_set_new(e, "provider", json_string(provider));
}

/* Failure of a create that made nothing: the children's code when they
 * all agree (CAPACITY), else ALL_STRATEGIES_FAILED. */
static void fail_nothing_made(const composite *c, const child_outcome *o, size_t n,
			      int64_t want, pv_result *out)
{
	const char *code = NULL;
	pv_error_class cls = PV_CLASS_NONE;
	for (size_t i = 0; i < n; i++) {
		if (o[i].cancelled || o[i].res.success)
			continue;
		if (!code) {
			code = o[i].res.error_code;
			cls = o[i].res.error_class;
		} else if (strcmp(code, o[i].res.error_code) != 0) {
			code = PV_ERR_ALL_STRATEGIES_FAILED;
			cls = cls == o[i].res.error_class ? cls : PV_CLASS_TRANSIENT;
		}
	}
	pv_result_fail(out, code ? code : PV_ERR_CAPACITY, cls ? cls : PV_CLASS_CAPACITY,
		       "composite '%s': no child created any of the %lld machines requested",
		       c->base.name, (long long)want);
}

/* Merges the machines of every outcome, or only of outcome `only_from`
 * (>= 0) when the others' were terminated. */
static void merge_creates(const composite *c, const pv_operation *op, int64_t want,
			  child_outcome *o, size_t n, long only_from, pv_result *out)
{
	json_t *instances = json_array(), *ids = json_array(), *by_child = json_object();
	int64_t total = 0;
	uint32_t attempts = 0;
	long only = -1;
	for (size_t i = 0; i < n; i++) {
		attempts += o[i].cancelled ? 0 : o[i].res.attempts;
		int64_t made = pv_create_made(&o[i].res);
		if (made <= 0 || (only_from >= 0 && (long)i != only_from))
			continue;
		json_t *list = json_object_get(o[i].res.data, "instances");
		attribute_instances(list, o[i].res.provider);
		json_array_extend(instances, list);
		json_array_extend(ids, json_object_get(o[i].res.data, "instance_ids"));
		add_child_section(by_child, &o[i], made);
		total += made;
		only = only == -1 || (only >= 0 && o[only].m == o[i].m) ? (long)i : -2;
	}
	if (total == 0) {
		json_decref(instances);
		json_decref(ids);
		json_decref(by_child);
		fail_nothing_made(c, o, n, want, out);
		pv_result_set_provider(out, c->base.name);
	} else {
		json_t *data = json_pack("{s:o, s:o, s:I, s:I, s:b, s:I, s:o}", "instances", instances,
					 "instance_ids", ids, "count", (json_int_t)total, "requested",
					 (json_int_t)want, "partial", total < want, "shortfall",
					 (json_int_t)(total < want ? want - total : 0), BY_CHILD_KEY,
					 by_child);
		if (pv_operation_dry_run(op))
			json_object_set_new(data, "dry_run", json_true());
		pv_result_ok(out, data);
		pv_result_set_provider(out, only >= 0 ? o[only].res.provider : c->base.name);
		if (total < want) {
			pv_result_meta_set(out, "partial", json_true());
			pv_result_meta_set(out, "shortfall", json_integer(want - total));
		}
	}
	out->attempts = attempts ? attempts : 1;
	pv_composite_meta(c, out, o, n, NULL);
}

/* ---- outcome lists that grow over rounds --------------------------------- */

typedef struct outcomes {
	child_outcome *o;
	size_t n, cap;
} outcomes;

static child_outcome *outcomes_grow(outcomes *acc, size_t more)
{
	if (acc->n + more > acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 8;
		while (cap < acc->n + more)
			cap *= 2;
		child_outcome *g = realloc(acc->o, cap * sizeof *g);
		if (!g)
			return NULL;
		acc->o = g;
		acc->cap = cap;
	}
	child_outcome *at = acc->o + acc->n;
	acc->n += more;
	return at;
}

static void outcomes_free(outcomes *acc)
{
	child_outcomes_clear(acc->o, acc->n);
	free(acc->o);
}

/* ---- spill-over -------------------------------------------------------------- */

static void spill(composite *c, const pv_operation *op, cmember **mem, size_t n, int64_t want,
		  outcomes *acc)
{
	int64_t left = want;
	for (size_t i = 0; i < n; i++) {
		child_outcome *o = outcomes_grow(acc, 1);
		if (!o)
			return;
		if (left <= 0) {
			*o = (child_outcome){.m = mem[i], .cancelled = true};
			continue;
		}
		child_job job = {mem[i], params_with_count(op, left), left};
		pv_composite_run(c, op, &job, 1, false, 0, o, NULL);
		left -= pv_create_made(&o->res);
	}
}

/* ---- split ---------------------------------------------------------------------- */

typedef struct split_state {
	size_t n;
	double *w, *share;
	int64_t *cap, *ask;
	child_job *jobs;
} split_state;

static bool split_round(composite *c, const pv_operation *op, cmember **mem, split_state *st,
			int64_t *left, outcomes *acc)
{
	split_count(*left, st->w, st->cap, st->n, st->ask, st->share);
	size_t k = 0;
	for (size_t i = 0; i < st->n; i++)
		if (st->ask[i] > 0)
			st->jobs[k++] = (child_job){mem[i], params_with_count(op, st->ask[i]),
						    st->ask[i]};
	if (k == 0)
		return false;
	child_outcome *o = outcomes_grow(acc, k);
	if (!o) {
		for (size_t j = 0; j < k; j++)
			json_decref(st->jobs[j].params);
		return false;
	}
	pv_composite_run(c, op, st->jobs, k, true, 0, o, NULL);
	int64_t progress = 0;
	for (size_t j = 0; j < k; j++) {
		size_t i = 0;
		while (mem[i] != o[j].m)
			i++;
		int64_t made = pv_create_made(&o[j].res);
		progress += made;
		/* Short of what it was asked: it is full (or failing); drop it. */
		st->cap[i] = made < o[j].requested ? 0
						   : (st->cap[i] < 0 ? -1 : st->cap[i] - made);
	}
	*left -= progress;
	return progress > 0;
}

static void split(composite *c, const pv_operation *op, cmember **mem, size_t n, int64_t want,
		  outcomes *acc)
{
	split_state st = {.n = n,
			  .w = calloc(n, sizeof(double)),
			  .share = calloc(n, sizeof(double)),
			  .cap = calloc(n, sizeof(int64_t)),
			  .ask = calloc(n, sizeof(int64_t)),
			  .jobs = calloc(n, sizeof(child_job))};
	if (st.w && st.share && st.cap && st.ask && st.jobs) {
		for (size_t i = 0; i < n; i++) {
			st.w[i] = atomic_load(&mem[i]->weight);
			st.cap[i] = pv_composite_child_room(mem[i]->s);
		}
		int64_t left = want;
		for (int round = 0; round < SPLIT_ROUNDS && left > 0; round++)
			if (pv_clock_now(c->clock) >= op->deadline_ns ||
			    !split_round(c, op, mem, &st, &left, acc))
				break;
	}
	free(st.w);
	free(st.share);
	free(st.cap);
	free(st.ask);
	free(st.jobs);
}

/* ---- hedge -------------------------------------------------------------------- */

static long hedge_winner(const composite *c, const child_outcome *o, size_t n, int64_t want)
{
	bool fastest = c->cfg.aggregation_policy == PV_AGG_BEST_PERFORMANCE;
	long best = -1;
	for (size_t i = 0; i < n; i++) {
		int64_t made = pv_create_made(&o[i].res);
		if (made <= 0)
			continue;
		if (best < 0) {
			best = (long)i;
			continue;
		}
		int64_t bm = pv_create_made(&o[best].res);
		bool full = made >= want, bfull = bm >= want;
		bool better = full != bfull ? full
			      : !full && made != bm ? made > bm
			      : fastest ? o[i].res.latency_ns < o[best].res.latency_ns
					: o[i].seq < o[best].seq;
		if (better)
			best = (long)i;
	}
	return best;
}

/* Terminates what a losing hedge child made, through that child. */
static json_t *terminate_surplus(composite *c, const pv_operation *op, const child_outcome *o)
{
	json_t *ids = json_object_get(o->res.data, "instance_ids");
	pv_operation top = {.type = PV_OP_TERMINATE_INSTANCES,
			    .params = json_pack("{s:O}", "instance_ids", ids),
			    .context = op->context,
			    .deadline_ns = pv_composite_deadline(c, &(pv_operation){0})};
	pv_result tr;
	pv_strategy_execute(o->m->s, &top, &tr, c->clock);
	json_decref(top.params);
	if (tr.success)
		pv_counters_add(&c->counts, CC_SURPLUS_REAPED, json_array_size(ids));
	else
		pv_log(PV_LOG_ERROR, "composite '%s': terminating %zu surplus machine(s) on '%s' failed: %s",
		       c->base.name, json_array_size(ids), o->m->s->name, tr.error_code);
	json_t *e = json_pack("{s:s, s:s, s:O, s:b}", "child", o->m->s->name, "provider",
			      o->res.provider, "instance_ids", ids, "terminated", tr.success);
	if (!tr.success)
		json_object_set_new(e, "error_code", json_string(tr.error_code));
	pv_result_clear(&tr);
	return e;
}

static void hedge(composite *c, const pv_operation *op, cmember **mem, size_t n, int64_t want,
		  pv_result *out)
{
	child_job *jobs = calloc(n, sizeof *jobs);
	child_outcome *o = calloc(n, sizeof *o);
	if (!jobs || !o) {
		free(jobs);
		free(o);
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		jobs[i] = (child_job){mem[i], params_with_count(op, want), want};
	pv_composite_run(c, op, jobs, n, true, 0, o, NULL);
	long win = hedge_winner(c, o, n, want);
	json_t *surplus = json_array();
	for (size_t i = 0; i < n; i++)
		if ((long)i != win && pv_create_made(&o[i].res) > 0 && !pv_operation_dry_run(op))
			json_array_append_new(surplus, terminate_surplus(c, op, &o[i]));
	/* Only the winner's machines remain. With no winner, nothing was made
	 * and the merge reports the failure. */
	merge_creates(c, op, want, o, n, win >= 0 ? win : -1, out);
	pv_result_meta_set(out, "hedge",
			   json_pack("{s:s?, s:o}", "winner", win >= 0 ? o[win].m->s->name : NULL,
				     "surplus", surplus));
	child_outcomes_clear(o, n);
	free(jobs);
	free(o);
}

/* ---- entry ---------------------------------------------------------------------- */

void pv_composite_create(composite *c, const pv_operation *op, cmember **mem, size_t n,
			 pv_result *out)
{
	json_t *jc = op->params ? json_object_get(op->params, "count") : NULL;
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'count' must be an integer >= 1");
		return;
	}
	int64_t want = jc ? json_integer_value(jc) : 1;
	const pv_composite_config *cfg = &c->cfg;
	if (cfg->mode == PV_COMPOSITE_REDUNDANT ||
	    (cfg->mode == PV_COMPOSITE_PARALLEL && cfg->aggregation_policy == PV_AGG_FIRST_SUCCESS)) {
		hedge(c, op, mem, n, want, out);
		return;
	}
	outcomes acc = {0};
	if (cfg->mode == PV_COMPOSITE_SEQUENTIAL)
		spill(c, op, mem, n, want, &acc);
	else
		split(c, op, mem, n, want, &acc);
	merge_creates(c, op, want, acc.o, acc.n, -1, out);
	pv_result_meta_set(out, "create", json_string(cfg->mode == PV_COMPOSITE_SEQUENTIAL
							       ? "spill_over"
							       : "split"));
	outcomes_free(&acc);
}
