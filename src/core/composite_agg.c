/*
 * composite_agg.c - from several children's answers to one result.
 *
 * First the gate decides whether the set of answers is good enough at all
 * (failure_threshold, require_all_success, min_success_count); then the
 * policy builds the answer. The gate comes first so that, say, a majority
 * of two out of five is never reported while three children failed.
 *
 * Children that abstained (NOT_FOUND on an id-addressed operation: those
 * are another child's machines) or were cancelled (not needed once the
 * answer was known) take no part in the gate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/composite_internal.h"
#include "provisio/error.h"

typedef struct tally {
	size_t ran, ok, failed;
	uint32_t attempts;
} tally;

static tally count(const child_outcome *o, size_t n)
{
	tally t = {0};
	for (size_t i = 0; i < n; i++) {
		if (o[i].cancelled)
			continue;
		t.attempts += o[i].res.attempts;
		if (o[i].abstained)
			continue;
		t.ran++;
		o[i].res.success ? t.ok++ : t.failed++;
	}
	return t;
}

/* ---- metadata ------------------------------------------------------------ */

json_t *pv_composite_children_summary(const child_outcome *o, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		const pv_result *r = &o[i].res;
		json_t *e = json_pack("{s:s}", "child", o[i].m->s->name);
		if (o[i].cancelled) {
			json_object_set_new(e, "cancelled", json_true());
		} else {
			json_object_set_new(e, "provider", json_string(r->provider));
			json_object_set_new(e, "success", json_boolean(r->success));
			json_object_set_new(e, "latency_ms", json_real((double)r->latency_ns / 1e6));
			if (!r->success)
				json_object_set_new(e, "error_code", json_string(r->error_code));
			if (o[i].abstained)
				json_object_set_new(e, "abstained", json_true());
			if (o[i].requested) {
				json_object_set_new(e, "requested", json_integer(o[i].requested));
				json_object_set_new(e, "made", json_integer(pv_create_made(r)));
			}
		}
		json_array_append_new(list, e);
	}
	return list;
}

void pv_composite_meta(const composite *c, pv_result *out, const child_outcome *o, size_t n)
{
	pv_result_meta_set(out, "composite", json_string(c->base.name));
	pv_result_meta_set(out, "mode", json_string(pv_composite_mode_name(c->cfg.mode)));
	pv_result_meta_set(out, "policy",
			   json_string(pv_aggregation_name(c->cfg.aggregation_policy)));
	/* Per-child detail only when there is something to tell: a failure, a
	 * timeout, a child not awaited, or machines (creates always). */
	bool notable = false;
	for (size_t i = 0; o && i < n && !notable; i++)
		notable = o[i].cancelled || o[i].abstained || !o[i].res.success || o[i].requested;
	if (notable)
		pv_result_meta_set(out, "children", pv_composite_children_summary(o, n));
}

/* ---- the gate ------------------------------------------------------------ */

/* The class a failure of the whole inherits: the children's when they
 * agree (all capacity: capacity), else transient. */
static pv_error_class common_class(const child_outcome *o, size_t n)
{
	pv_error_class cls = PV_CLASS_NONE;
	for (size_t i = 0; i < n; i++) {
		if (o[i].cancelled || o[i].abstained || o[i].res.success)
			continue;
		if (cls == PV_CLASS_NONE)
			cls = o[i].res.error_class;
		else if (cls != o[i].res.error_class)
			return PV_CLASS_TRANSIENT;
	}
	return cls == PV_CLASS_NONE ? PV_CLASS_TRANSIENT : cls;
}

/* Fills `out` with the gate's failure, or returns false when it passes. */
static bool gate_fails(const composite *c, const child_outcome *o, size_t n, const tally *t,
		       pv_result *out)
{
	const pv_composite_config *cfg = &c->cfg;
	double failed_fraction = t->ran ? (double)t->failed / (double)t->ran : 0;
	pv_error_class cls = common_class(o, n);
	if (failed_fraction > cfg->failure_threshold + 1e-12)
		pv_result_fail(out, PV_ERR_FAILURE_THRESHOLD_EXCEEDED, cls,
			       "composite '%s': %zu of %zu children failed (%.0f%%), above "
			       "failure_threshold %.2f",
			       c->base.name, t->failed, t->ran, failed_fraction * 100,
			       cfg->failure_threshold);
	else if (cfg->require_all_success && t->failed > 0)
		pv_result_fail(out, PV_ERR_NOT_ALL_SUCCEEDED, cls,
			       "composite '%s': %zu of %zu children failed and require_all_success "
			       "is set",
			       c->base.name, t->failed, t->ran);
	else if (t->ok == 0)
		pv_result_fail(out, PV_ERR_ALL_STRATEGIES_FAILED, cls,
			       "composite '%s': all %zu children failed", c->base.name, t->ran);
	else if (t->ok < cfg->min_success_count)
		pv_result_fail(out, PV_ERR_INSUFFICIENT_SUCCESS, cls,
			       "composite '%s': %zu of %zu children succeeded, min_success_count "
			       "is %u",
			       c->base.name, t->ok, t->ran, cfg->min_success_count);
	else
		return false;
	return true;
}

/* ---- single-answer policies ----------------------------------------------- */

static long pick_first(const child_outcome *o, size_t n)
{
	long best = -1;
	for (size_t i = 0; i < n; i++)
		if (!o[i].cancelled && o[i].res.success && (best < 0 || o[i].seq < o[best].seq))
			best = (long)i;
	return best;
}

static long pick_fastest(const child_outcome *o, size_t n)
{
	long best = -1;
	for (size_t i = 0; i < n; i++)
		if (!o[i].cancelled && o[i].res.success &&
		    (best < 0 || o[i].res.latency_ns < o[best].res.latency_ns ||
		     (o[i].res.latency_ns == o[best].res.latency_ns && o[i].seq < o[best].seq)))
			best = (long)i;
	return best;
}

/* Hands child `i`'s answer out as the composite's. The latency is left for
 * the caller to measure: the composite took longer than the winner. */
static void take(child_outcome *o, long i, pv_result *out)
{
	pv_result_clear(out);
	*out = o[i].res;
	memset(&o[i].res, 0, sizeof o[i].res);
	out->latency_ns = 0;
}

/* ---- merge_all ------------------------------------------------------------ */

static bool is_summed(const char *key)
{
	return strcmp(key, "count") == 0 || strcmp(key, "requested") == 0 ||
	       strcmp(key, "would_create") == 0;
}

/* Gives every instance the leaf that made it, when the child did not. */
static void attribute(json_t *list, const char *provider)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
		if (json_is_object(e) && !json_object_get(e, "provider"))
			json_object_set_new(e, "provider", json_string(provider));
}

static bool in_array(const json_t *arr, const json_t *v)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
		if (json_equal(e, v))
			return true;
	return false;
}

/* not_found keeps only ids that no child found. */
static void intersect(json_t *acc, const json_t *other)
{
	for (size_t i = json_array_size(acc); i-- > 0;)
		if (!in_array(other, json_array_get(acc, i)))
			json_array_remove(acc, i);
}

static void merge_key(json_t *merged, json_t *conflicts, const char *key, json_t *v,
		      const char *provider)
{
	json_t *have = json_object_get(merged, key);
	if (strcmp(key, "not_found") == 0 && json_is_array(v)) {
		if (have)
			intersect(have, v);
		else
			json_object_set_new(merged, key, json_copy(v));
	} else if (json_is_array(v) && (!have || json_is_array(have))) {
		if (strcmp(key, "instances") == 0)
			attribute(v, provider);
		if (!have)
			json_object_set_new(merged, key, have = json_array());
		json_array_extend(have, v);
	} else if (is_summed(key) && json_is_integer(v) && (!have || json_is_integer(have))) {
		json_int_t sum = json_integer_value(v) + (have ? json_integer_value(have) : 0);
		json_object_set_new(merged, key, json_integer(sum));
	} else if (strcmp(key, "partial") == 0 && json_is_boolean(v)) {
		if (!have || json_is_true(v))
			json_object_set(merged, key, v);
	} else if (!have) {
		json_object_set(merged, key, v);
	} else if (!json_equal(have, v)) {
		/* Two children disagree: neither wins; both stay under by_child. */
		json_object_del(merged, key);
		json_array_append_new(conflicts, json_string(key));
	}
}

static bool conflicted(const json_t *conflicts, const char *key)
{
	size_t i;
	json_t *e;
	json_array_foreach(conflicts, i, e)
		if (strcmp(json_string_value(e), key) == 0)
			return true;
	return false;
}

static void merge_all(const composite *c, child_outcome *o, size_t n, const tally *t,
		      pv_result *out)
{
	json_t *merged = json_object(), *by_child = json_object(), *conflicts = json_array();
	json_t *providers = json_array();
	long only = -1;
	for (size_t i = 0; i < n; i++) {
		pv_result *r = &o[i].res;
		if (o[i].cancelled || !r->success)
			continue;
		only = only == -1 ? (long)i : -2;
		json_array_append_new(providers, json_string(r->provider));
		json_object_set(by_child, o[i].m->s->name, r->data ? r->data : json_null());
		const char *key;
		json_t *v;
		json_object_foreach(r->data, key, v)
			if (strcmp(key, BY_CHILD_KEY) != 0 && !conflicted(conflicts, key))
				merge_key(merged, conflicts, key, v, r->provider);
	}
	json_object_set_new(merged, BY_CHILD_KEY, by_child);
	if (json_array_size(conflicts))
		json_object_set(merged, "conflicting_keys", conflicts);
	json_decref(conflicts);
	pv_result_ok(out, merged);
	/* One answer: its leaf answered. Several: the composite did. */
	pv_result_set_provider(out, only >= 0 ? o[only].res.provider : c->base.name);
	out->attempts = t->attempts;
	pv_result_meta_set(out, "providers", providers);
}

/* ---- majority_wins ---------------------------------------------------------- */

static const char *const default_volatile[] = {
	"latency_ms",  "latency_ns", "response_ms",   "response_time_ms", "duration_ms",
	"elapsed_ms",  "timings",    "timing",        "timestamp",        "checked_at",
	"checked_at_ms", "request_time",
};

static bool is_volatile(const char *key, const json_t *fields)
{
	if (fields) {
		size_t i;
		json_t *e;
		json_array_foreach(fields, i, e)
			if (strcmp(json_string_value(e), key) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; i < sizeof default_volatile / sizeof default_volatile[0]; i++)
		if (strcmp(default_volatile[i], key) == 0)
			return true;
	return false;
}

static void strip(json_t *j, const json_t *fields)
{
	const char *key;
	json_t *v;
	void *tmp;
	size_t i;
	if (json_is_object(j)) {
		json_object_foreach_safe(j, tmp, key, v) {
			if (is_volatile(key, fields))
				json_object_del(j, key);
			else
				strip(v, fields);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			strip(v, fields);
	}
}

char *pv_composite_canonical(const json_t *data, const json_t *volatile_fields)
{
	if (!data)
		return strdup("null");
	json_t *copy = json_deep_copy(data);
	strip(copy, volatile_fields);
	char *text = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(copy);
	return text;
}

static json_t *answers_of(const child_outcome *o, size_t n)
{
	json_t *answers = json_object();
	for (size_t i = 0; i < n; i++) {
		const pv_result *r = &o[i].res;
		if (o[i].cancelled)
			continue;
		json_object_set_new(answers, o[i].m->s->name,
				    r->success ? (r->data ? json_incref(r->data) : json_null())
					       : json_pack("{s:s}", "error_code", r->error_code));
	}
	return answers;
}

static void majority_wins(const composite *c, child_outcome *o, size_t n, const tally *t,
			  pv_result *out)
{
	char **text = calloc(n, sizeof *text);
	size_t *votes = calloc(n, sizeof *votes);
	if (!text || !votes) {
		free(text);
		free(votes);
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!o[i].cancelled && o[i].res.success)
			text[i] = pv_composite_canonical(o[i].res.data, c->cfg.volatile_fields);
	/* votes[i]: how many answers equal answer i (counted at the earliest). */
	long best = -1;
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		if (!text[i])
			continue;
		for (size_t j = 0; j < n; j++)
			votes[i] += text[j] && strcmp(text[i], text[j]) == 0;
		if (best < 0 || votes[i] > votes[best] ||
		    (votes[i] == votes[best] && o[i].seq < o[best].seq)) {
			tie = best >= 0 && votes[i] == votes[best] && strcmp(text[i], text[best]) != 0;
			best = (long)i;
		} else if (votes[i] == votes[best] && strcmp(text[i], text[best]) != 0) {
			tie = true;
		}
	}
	size_t need = c->cfg.min_success_count;
	if (best >= 0 && !tie && votes[best] >= need) {
		json_t *agreeing = json_array();
		for (size_t j = 0; j < n; j++)
			if (text[j] && strcmp(text[best], text[j]) == 0)
				json_array_append_new(agreeing, json_string(o[j].m->s->name));
		take(o, best, out);
		pv_result_meta_set(out, "agreement",
				   json_pack("{s:I, s:I, s:o}", "votes", (json_int_t)votes[best],
					     "voters", (json_int_t)t->ok, "children", agreeing));
	} else {
		pv_result_fail(out, PV_ERR_NO_MAJORITY, PV_CLASS_TRANSIENT,
			       "composite '%s': no answer was given by at least %zu of %zu children "
			       "%s",
			       c->base.name, need, t->ok, tie ? "(tie)" : "");
		pv_result_set_provider(out, c->base.name);
		pv_result_meta_set(out, "answers", answers_of(o, n));
	}
	for (size_t i = 0; i < n; i++)
		free(text[i]);
	free(text);
	free(votes);
}

/* ---- entry ------------------------------------------------------------------ */

void pv_composite_aggregate(composite *c, const pv_operation *op, child_outcome *o, size_t n,
			    pv_result *out)
{
	(void)op;
	tally t = count(o, n);
	if (c->cfg.mode == PV_COMPOSITE_SEQUENTIAL && t.ok == 1 && t.ran == 1 && !o[0].cancelled &&
	    o[0].res.success) {
		/* The first child answered and nobody else was asked: its result as
		 * it is, with no metadata to allocate (the hot path). */
		take(o, 0, out);
		out->attempts = t.attempts;
		return;
	}
	if (t.ran == 0) { /* every child abstained: nobody knows these ids */
		long first = -1;
		for (size_t i = 0; i < n && first < 0; i++)
			if (o[i].abstained)
				first = (long)i;
		if (first >= 0)
			take(o, first, out);
		else
			pv_result_fail(out, PV_ERR_NO_STRATEGY_AVAILABLE, PV_CLASS_TRANSIENT,
				       "composite '%s': no child ran", c->base.name);
		pv_result_set_provider(out, c->base.name);
	} else if (t.ran == 1 && t.failed == 1 && n == 1) {
		take(o, 0, out); /* one child: its failure as it is */
	} else if (gate_fails(c, o, n, &t, out)) {
		pv_result_set_provider(out, c->base.name);
	} else {
		switch (c->cfg.aggregation_policy) {
		case PV_AGG_FIRST_SUCCESS:
			take(o, pick_first(o, n), out);
			break;
		case PV_AGG_BEST_PERFORMANCE:
			take(o, pick_fastest(o, n), out);
			break;
		case PV_AGG_MAJORITY_WINS:
			majority_wins(c, o, n, &t, out);
			break;
		case PV_AGG_MERGE_ALL:
		default:
			merge_all(c, o, n, &t, out);
			break;
		}
	}
	out->attempts = t.attempts ? t.attempts : 1;
	pv_composite_meta(c, out, o, n);
}
