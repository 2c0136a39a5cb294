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
#include "util/spare.h"

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

/*
 * Every aggregated result says which composite answered, how, and (merge_all)
 * which leaves or (majority_wins) which children agreed; when something is
 * worth telling (a failure, a timeout, a child not awaited, a create), what
 * each child did. Built as JSON on every call that was most of a
 * composite's cost, so it is a deferred part: the facts and a copy of the
 * names, built when somebody reads the metadata.
 */
typedef struct child_fact {
	uint32_t child, provider; /* name offsets */
	bool cancelled, success, abstained;
	uint64_t latency_ns;
	int64_t requested, made;
	char error_code[PV_RESULT_CODE_MAX];
} child_fact;

typedef struct composite_meta {
	pv_result_later part;
	pv_composite_mode mode;
	pv_aggregation policy;
	int extra;             /* META_* */
	size_t votes, voters;  /* META_AGREEMENT */
	uint32_t *listed;      /* name offsets of the leaves or agreeing children */
	size_t n_listed;
	child_fact *children;  /* what each child did, or NULL */
	size_t n_children;
	char *names;           /* the composite's at 0 */
} composite_meta;

static json_t *names_json(const composite_meta *cm, const uint32_t *at, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_string(cm->names + at[i]));
	return list;
}

static json_t *children_json(const composite_meta *cm)
{
	json_t *list = json_array();
	for (size_t i = 0; i < cm->n_children; i++) {
		const child_fact *f = &cm->children[i];
		json_t *e = json_pack("{s:s}", "child", cm->names + f->child);
		if (f->cancelled) {
			json_object_set_new(e, "cancelled", json_true());
		} else {
			json_object_set_new(e, "provider", json_string(cm->names + f->provider));
			json_object_set_new(e, "success", json_boolean(f->success));
			json_object_set_new(e, "latency_ms", json_real((double)f->latency_ns / 1e6));
			if (!f->success)
				json_object_set_new(e, "error_code", json_string(f->error_code));
			if (f->abstained)
				json_object_set_new(e, "abstained", json_true());
			if (f->requested) {
				json_object_set_new(e, "requested", json_integer(f->requested));
				json_object_set_new(e, "made", json_integer(f->made));
			}
		}
		json_array_append_new(list, e);
	}
	return list;
}

static void composite_meta_build(const pv_result_later *part, const pv_result *r, json_t *meta)
{
	(void)r;
	const composite_meta *cm = (const composite_meta *)part;
	if (cm->extra == META_PROVIDERS)
		json_object_set_new(meta, "providers", names_json(cm, cm->listed, cm->n_listed));
	else if (cm->extra == META_AGREEMENT)
		json_object_set_new(meta, "agreement",
				    json_pack("{s:I, s:I, s:o}", "votes", (json_int_t)cm->votes, "voters",
					      (json_int_t)cm->voters, "children",
					      names_json(cm, cm->listed, cm->n_listed)));
	json_object_set_new(meta, "composite", json_string(cm->names));
	json_object_set_new(meta, "mode", json_string(pv_composite_mode_name(cm->mode)));
	json_object_set_new(meta, "policy", json_string(pv_aggregation_name(cm->policy)));
	if (cm->children)
		json_object_set_new(meta, "children", children_json(cm));
}

static void composite_meta_release(pv_result_later *part) { pv_spare_free(part); }

/* The name the extra lists for outcome `i`: the leaf that answered, or the
 * agreeing child; NULL when it lists none. */
static const char *listed_name(const meta_extra *x, const child_outcome *o, size_t i)
{
	if (x->kind == META_PROVIDERS)
		return !o[i].cancelled && o[i].res.success ? o[i].res.provider : NULL;
	if (x->kind == META_AGREEMENT)
		return x->agreeing[i] ? o[i].m->s->name : NULL;
	return NULL;
}

/* Appends `name` to the names block at *at; returns its offset. */
static uint32_t put_name(char *names, size_t *at, const char *name)
{
	uint32_t offset = (uint32_t)*at;
	size_t len = strlen(name) + 1;
	memcpy(names + *at, name, len);
	*at += len;
	return offset;
}

void pv_composite_meta(const composite *c, pv_result *out, const child_outcome *o, size_t n,
		       const meta_extra *extra)
{
	static const meta_extra none = {.kind = META_NONE};
	const meta_extra *x = extra ? extra : &none;
	bool notable = false;
	for (size_t i = 0; o && i < n && !notable; i++)
		notable = o[i].cancelled || o[i].abstained || !o[i].res.success || o[i].requested;
	size_t n_children = notable ? n : 0, n_listed = 0;
	size_t names_len = strlen(c->base.name) + 1;
	for (size_t i = 0; i < n; i++) {
		const char *name = listed_name(x, o, i);
		n_listed += name != NULL;
		names_len += name ? strlen(name) + 1 : 0;
		if (notable)
			names_len += strlen(o[i].m->s->name) + strlen(o[i].res.provider) + 2;
	}
	composite_meta *cm = pv_spare_alloc(sizeof *cm + n_children * sizeof cm->children[0] +
					    n_listed * sizeof cm->listed[0] + names_len);
	if (!cm)
		return;
	*cm = (composite_meta){
		.part = {composite_meta_build, composite_meta_release, NULL},
		.mode = c->cfg.mode, .policy = c->cfg.aggregation_policy, .extra = x->kind,
		.votes = x->votes, .voters = x->voters, .n_listed = n_listed,
		.n_children = n_children,
	};
	cm->children = n_children ? (child_fact *)(cm + 1) : NULL;
	cm->listed = (uint32_t *)((child_fact *)(cm + 1) + n_children);
	cm->names = (char *)(cm->listed + n_listed);
	size_t at = 0, k = 0;
	put_name(cm->names, &at, c->base.name);
	for (size_t i = 0; i < n; i++) {
		const char *name = listed_name(x, o, i);
		if (name)
			cm->listed[k++] = put_name(cm->names, &at, name);
		if (!notable)
			continue;
		const pv_result *r = &o[i].res;
		child_fact *f = &cm->children[i];
		*f = (child_fact){
			.child = put_name(cm->names, &at, o[i].m->s->name),
			.provider = put_name(cm->names, &at, r->provider), .cancelled = o[i].cancelled,
			.success = r->success, .abstained = o[i].abstained, .latency_ns = r->latency_ns,
			.requested = o[i].requested, .made = o[i].requested ? pv_create_made(r) : 0,
		};
		memcpy(f->error_code, r->error_code, sizeof f->error_code);
	}
	pv_result_meta_later(out, &cm->part);
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

/* Hands child `i`'s answer out as the composite's. The outcome keeps what
 * it said (success, code, provider, latency) for the metadata's list of
 * children, not what it owned. The latency is left for the caller to
 * measure: the composite took longer than the winner. */
static void take(child_outcome *o, long i, pv_result *out)
{
	pv_result said = o[i].res; /* the fixed fields; its pointers go with the move */
	pv_result_move(out, &o[i].res);
	pv_result *r = &o[i].res;
	r->success = said.success;
	r->error_class = said.error_class;
	memcpy(r->error_code, said.error_code, sizeof r->error_code);
	memcpy(r->provider, said.provider, sizeof r->provider);
	r->latency_ns = said.latency_ns;
	r->attempts = said.attempts;
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

/* The answers of children that answered, in child order. */
#define EACH_ANSWER(o, n, i) \
	for (size_t i = 0; i < (n); i++) \
		if (!(o)[i].cancelled && (o)[i].res.success)

/* No answer has a key to merge: the merge is {"by_child": {...}} alone. */
static bool answers_keyless(const child_outcome *o, size_t n)
{
	EACH_ANSWER(o, n, i)
		if (json_object_size(o[i].res.data) > 0)
			return false;
	return true;
}

static bool only_ours(json_t *j) { return __atomic_load_n(&j->refcount, __ATOMIC_ACQUIRE) == 1; }

/* Refills a kept {"by_child": {...}} with this call's answers. false unless
 * the caller let go of it (only our reference left) and left it as it was:
 * the same children in the same order. */
static bool refill(json_t *merged, const child_outcome *o, size_t n, size_t answers)
{
	void *it = json_object_iter(merged);
	json_t *by_child = json_object_iter_value(it);
	if (!only_ours(merged) || json_object_size(merged) != 1 ||
	    strcmp(json_object_iter_key(it), BY_CHILD_KEY) != 0 || !json_is_object(by_child) ||
	    !only_ours(by_child) || json_object_size(by_child) != answers)
		return false;
	it = json_object_iter(by_child);
	EACH_ANSWER(o, n, i) {
		/* A key that differs leaves it half refilled: it is ours alone, so
		 * it is simply let go. */
		if (strcmp(json_object_iter_key(it), o[i].m->s->name) != 0)
			return false;
		json_object_iter_set(by_child, it, o[i].res.data ? o[i].res.data : json_null());
		it = json_object_iter_next(by_child, it);
	}
	return true;
}

/*
 * The merge of answers without keys (health checks, mostly): built once and
 * then refilled. The composite keeps a reference to the last one it handed
 * out; when the caller has let go of it, the next call refills it instead
 * of making two objects and a key per child again.
 */
static json_t *merge_keyless(composite *c, const child_outcome *o, size_t n, size_t answers)
{
	json_t *merged = atomic_exchange(&c->merged_spare, NULL);
	if (!merged || !refill(merged, o, n, answers)) {
		json_decref(merged); /* a caller still holding it keeps it */
		json_t *by_child = json_object();
		EACH_ANSWER(o, n, i)
			json_object_set(by_child, o[i].m->s->name,
					o[i].res.data ? o[i].res.data : json_null());
		merged = json_pack("{s:o}", BY_CHILD_KEY, by_child);
	}
	json_t *none = NULL;
	if (merged && !atomic_compare_exchange_strong(&c->merged_spare, &none, json_incref(merged)))
		json_decref(merged); /* another call's is kept */
	return merged;
}

static json_t *merge_keys(const child_outcome *o, size_t n)
{
	json_t *merged = json_object(), *by_child = json_object(), *conflicts = json_array();
	EACH_ANSWER(o, n, i) {
		const pv_result *r = &o[i].res;
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
	return merged;
}

static void merge_all(composite *c, child_outcome *o, size_t n, const tally *t, pv_result *out,
		      meta_extra *x)
{
	long only = -1;
	EACH_ANSWER(o, n, i)
		only = only == -1 ? (long)i : -2;
	pv_result_ok(out, answers_keyless(o, n) ? merge_keyless(c, o, n, t->ok) : merge_keys(o, n));
	/* One answer: its leaf answered. Several: the composite did. */
	pv_result_set_provider(out, only >= 0 ? o[only].res.provider : c->base.name);
	out->attempts = t->attempts;
	x->kind = META_PROVIDERS;
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
			  pv_result *out, meta_extra *x)
{
	char **text = calloc(n, sizeof *text);
	size_t *votes = calloc(n, sizeof *votes);
	bool *agreeing = calloc(n, sizeof *agreeing);
	if (!text || !votes || !agreeing) {
		free(text);
		free(votes);
		free(agreeing);
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
		for (size_t j = 0; j < n; j++)
			agreeing[j] = text[j] && strcmp(text[best], text[j]) == 0;
		take(o, best, out);
		*x = (meta_extra){META_AGREEMENT, votes[best], t->ok, agreeing};
		agreeing = NULL; /* the caller's now */
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
	free(agreeing);
}

/* ---- entry ------------------------------------------------------------------ */

void pv_composite_aggregate(composite *c, const pv_operation *op, child_outcome *o, size_t n,
			    pv_result *out)
{
	(void)op;
	tally t = count(o, n);
	meta_extra x = {.kind = META_NONE};
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
			majority_wins(c, o, n, &t, out, &x);
			break;
		case PV_AGG_MERGE_ALL:
		default:
			merge_all(c, o, n, &t, out, &x);
			break;
		}
	}
	out->attempts = t.attempts ? t.attempts : 1;
	pv_composite_meta(c, out, o, n, &x);
	free(x.agreeing);
}
