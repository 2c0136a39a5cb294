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
#include "util/frozen.h"
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

/* Appends `name` (`len` bytes with its NUL) to the names block at *at;
 * returns its offset. */
static uint32_t put_name_len(char *names, size_t *at, const char *name, size_t len)
{
	uint32_t offset = (uint32_t)*at;
	memcpy(names + *at, name, len);
	*at += len;
	return offset;
}

static uint32_t put_name(char *names, size_t *at, const char *name)
{
	return put_name_len(names, at, name, strlen(name) + 1);
}

/* A listed name's room in the names block: a provider (a result's fixed
 * buffer, NUL inside) is copied whole, a constant-size copy with nothing to
 * measure; a child's name as long as it is. */
static size_t listed_len(const meta_extra *x, const char *name)
{
	return x->kind == META_PROVIDERS ? PV_RESULT_NAME_MAX : strlen(name) + 1;
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
	size_t names_len = c->name_len + 1;
	for (size_t i = 0; i < n; i++) {
		const char *name = listed_name(x, o, i);
		n_listed += name != NULL;
		names_len += name ? listed_len(x, name) : 0;
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
	put_name_len(cm->names, &at, c->base.name, c->name_len + 1);
	for (size_t i = 0; i < n; i++) {
		const char *name = listed_name(x, o, i);
		if (name)
			cm->listed[k++] = x->kind == META_PROVIDERS
						  ? put_name_len(cm->names, &at, name, PV_RESULT_NAME_MAX)
						  : put_name(cm->names, &at, name);
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
		json_object_set(merged, CONFLICTS_KEY, conflicts);
	json_decref(conflicts);
	return merged;
}

/*
 * Answers of one shape: the same keys in the same order (none at all, as a
 * health check's null), each value one the merge takes as it is when the
 * answers agree (no list to join, no count to sum, no flag to combine).
 * Their merge is the first answer's keys, less those some answer disagrees
 * on, then by_child, then conflicting_keys: merge_keys builds exactly that,
 * and a kept one can be refilled in place.
 */
#define SHAPE_KEYS_MAX 64

typedef struct shape {
	json_t *first; /* the first answer's data */
	size_t keys;
	uint64_t conflicted;  /* bit k: the answers disagree on the first's key k */
	const char *conflict[SHAPE_KEYS_MAX]; /* those keys, in the order merge_keys finds them */
	size_t n_conflicts;
} shape;

/* The merge's own keys: an answer's are left out (merge_keys) or replaced. */
static bool is_merge_key(const char *key)
{
	return (key[0] == BY_CHILD_KEY[0] && strcmp(key, BY_CHILD_KEY) == 0) ||
	       (key[0] == CONFLICTS_KEY[0] && strcmp(key, CONFLICTS_KEY) == 0);
}

static bool taken_as_is(const char *key, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_ARRAY:
		return false;
	case JSON_INTEGER:
		return !is_summed(key) && !is_merge_key(key);
	case JSON_TRUE:
	case JSON_FALSE:
		return strcmp(key, "partial") != 0 && !is_merge_key(key);
	default:
		return !is_merge_key(key);
	}
}

/* Every value of `answer` is taken as it is. */
static bool all_taken_as_is(json_t *answer)
{
	for (void *it = json_object_iter(answer); it; it = json_object_iter_next(answer, it))
		if (!taken_as_is(json_object_iter_key(it), json_object_iter_value(it)))
			return false;
	return true;
}

/* Whether the answers have the first's keys in its order, and where they
 * disagree with it. The first's own values are checked where they are walked
 * anyway: by the refill, or before a new merge is kept. */
static bool one_shape(const child_outcome *o, size_t n, shape *sh)
{
	sh->first = NULL;
	sh->keys = 0;
	sh->conflicted = 0;
	sh->n_conflicts = 0;
	EACH_ANSWER(o, n, i) {
		json_t *d = o[i].res.data;
		if (!sh->first) {
			sh->first = d ? d : json_null();
			sh->keys = json_object_size(d);
			if (sh->keys > SHAPE_KEYS_MAX)
				return false;
			continue;
		}
		if (d == sh->first) /* the same answer (a shared one): the same shape, no conflict */
			continue;
		if (json_object_size(d) != sh->keys)
			return false;
		void *mine = json_object_iter(sh->first), *theirs = json_object_iter(d);
		for (size_t k = 0; k < sh->keys; k++) {
			const char *key = json_object_iter_key(mine);
			json_t *v = json_object_iter_value(theirs);
			if (strcmp(key, json_object_iter_key(theirs)) != 0 || !taken_as_is(key, v))
				return false;
			if (!(sh->conflicted >> k & 1) && !json_equal(json_object_iter_value(mine), v)) {
				sh->conflicted |= (uint64_t)1 << k;
				sh->conflict[sh->n_conflicts++] = key;
			}
			mine = json_object_iter_next(sh->first, mine);
			theirs = json_object_iter_next(d, theirs);
		}
	}
	return sh->first != NULL;
}

static bool only_ours(json_t *j) { return __atomic_load_n(&j->refcount, __ATOMIC_ACQUIRE) == 1; }

/* The key at `it` is `key`. */
static bool at_key(void *it, const char *key) { return strcmp(json_object_iter_key(it), key) == 0; }

/* Sets the value at `it` (the same one again is left as it is). */
static void set_at(json_t *object, void *it, json_t *v)
{
	if (json_object_iter_value(it) != v)
		json_object_iter_set(object, it, v);
}

/* Refills a kept merge with this call's answers of shape `sh`. false unless
 * the first answer's values are all taken as they are, and the caller let
 * go of the merge (only our reference left, also on by_child and
 * conflicting_keys, which are changed or compared) and left its keys as
 * they were: the same children in the same order, the same keys and
 * conflicts. A mismatch leaves it half refilled: it is ours alone, so it is
 * simply let go. */
static bool refill(json_t *merged, const child_outcome *o, size_t n, size_t answers,
		   const shape *sh)
{
	size_t kept = sh->keys - sh->n_conflicts;
	if (!only_ours(merged) || json_object_size(merged) != kept + 1 + (sh->n_conflicts > 0))
		return false;
	void *it = json_object_iter(merged), *from = json_object_iter(sh->first);
	for (size_t k = 0; k < sh->keys; k++, from = json_object_iter_next(sh->first, from)) {
		const char *key = json_object_iter_key(from);
		json_t *v = json_object_iter_value(from);
		if (!taken_as_is(key, v))
			return false;
		if (sh->conflicted >> k & 1)
			continue;
		if (!at_key(it, key))
			return false;
		set_at(merged, it, v);
		it = json_object_iter_next(merged, it);
	}
	json_t *by_child = json_object_iter_value(it);
	if (!at_key(it, BY_CHILD_KEY) || !json_is_object(by_child) || !only_ours(by_child) ||
	    json_object_size(by_child) != answers)
		return false;
	void *child = json_object_iter(by_child);
	EACH_ANSWER(o, n, i) {
		if (!at_key(child, o[i].m->s->name))
			return false;
		set_at(by_child, child, o[i].res.data ? o[i].res.data : json_null());
		child = json_object_iter_next(by_child, child);
	}
	if (!sh->n_conflicts)
		return true;
	it = json_object_iter_next(merged, it);
	json_t *list = json_object_iter_value(it);
	if (!at_key(it, CONFLICTS_KEY) || !json_is_array(list) || !only_ours(list) ||
	    json_array_size(list) != sh->n_conflicts)
		return false;
	for (size_t k = 0; k < sh->n_conflicts; k++) {
		const char *named = json_string_value(json_array_get(list, k));
		if (!named || strcmp(named, sh->conflict[k]) != 0)
			return false;
	}
	return true;
}

/*
 * The merge the composite keeps for the next call. When the answers it was
 * made of are frozen (frozen.h: never changed, never freed) and agree, a
 * call whose children answer with the very same objects gets the very same
 * merge back after pointer comparisons, as long as the caller let go of it
 * and left it as it was (what `vals`, `keys` and the answers say it holds):
 * nothing in it would change. It holds no reference on what it compares:
 * a roster's block lives as long as the composite (composite.c), so the
 * same roster pointer is the same roster, whose members the calling one
 * holds; frozen answers are never freed.
 */
#define REUSE_MAX 16

struct kept_merge {
	json_t *merged;              /* one reference */
	const croster *roster;       /* the call's it was made in */
	size_t n;                    /* the outcomes it was made of; 0: not reusable */
	uint32_t answered;           /* bit i: outcome i answered */
	const cmember *m[REUSE_MAX];
	const json_t *answers[REUSE_MAX]; /* frozen (NULL: no data) */
	size_t n_keys;               /* its keys before by_child: the first answer's */
	const char *keys[SHAPE_KEYS_MAX]; /* in the frozen first answer */
	json_t *vals[SHAPE_KEYS_MAX];
};

typedef struct kept_merge kept_merge;

void pv_kept_merge_free(kept_merge *k)
{
	if (!k)
		return;
	json_decref(k->merged);
	free(k);
}

/* The children are the same members of the same roster and answered with
 * the same objects. */
static bool same_answers(const kept_merge *k, const croster *r, const child_outcome *o, size_t n)
{
	if (!k->n || k->n != n || k->roster != r)
		return false;
	uint32_t answered = 0;
	for (size_t i = 0; i < n; i++) {
		if (o[i].m != k->m[i])
			return false;
		if (o[i].cancelled || !o[i].res.success)
			continue;
		if (o[i].res.data != k->answers[i])
			return false;
		answered |= (uint32_t)1 << i;
	}
	return answered == k->answered;
}

/* The caller let go of the merge and left it as it was made. */
static bool kept_unchanged(const kept_merge *k)
{
	json_t *merged = k->merged;
	if (!only_ours(merged) || json_object_size(merged) != k->n_keys + 1)
		return false;
	void *it = json_object_iter(merged);
	for (size_t i = 0; i < k->n_keys; i++, it = json_object_iter_next(merged, it))
		if (json_object_iter_value(it) != k->vals[i] || !at_key(it, k->keys[i]))
			return false;
	json_t *by_child = json_object_iter_value(it);
	if (!at_key(it, BY_CHILD_KEY) || !json_is_object(by_child) || !only_ours(by_child) ||
	    json_object_size(by_child) != (size_t)__builtin_popcount(k->answered))
		return false;
	void *child = json_object_iter(by_child);
	for (size_t i = 0; i < k->n; i++) {
		if (!(k->answered >> i & 1))
			continue;
		const json_t *want = k->answers[i] ? k->answers[i] : json_null();
		if (json_object_iter_value(child) != want || !at_key(child, k->m[i]->s->name))
			return false;
		child = json_object_iter_next(by_child, child);
	}
	return true;
}

/* Records what `merged` (taken over) was made of; reusable when the answers
 * are frozen and agree. */
static void kept_record(kept_merge *k, json_t *merged, const croster *r, const child_outcome *o,
			size_t n, const shape *sh)
{
	k->merged = merged;
	k->roster = r;
	k->n = 0;
	if (n > REUSE_MAX || sh->n_conflicts)
		return;
	EACH_ANSWER(o, n, i)
		if (!pv_json_frozen(o[i].res.data))
			return;
	k->answered = 0;
	k->n_keys = 0;
	for (void *it = json_object_iter(sh->first); it; it = json_object_iter_next(sh->first, it)) {
		k->keys[k->n_keys] = json_object_iter_key(it);
		k->vals[k->n_keys++] = json_object_iter_value(it);
	}
	/* One store an entry: GCC 12.2 at -O3 turned a NULL store followed by
	 * a conditional one into a memset after the loop (loop distribution),
	 * and no merge was ever reused in release builds. */
	for (size_t i = 0; i < n; i++) {
		bool answered = !o[i].cancelled && o[i].res.success;
		k->m[i] = o[i].m;
		k->answers[i] = answered ? o[i].res.data : NULL;
		k->answered |= (uint32_t)answered << i;
	}
	k->n = n;
}

/* Gives `k` back to the composite, or frees it when another call's is kept. */
static void keep(composite *c, kept_merge *k)
{
	kept_merge *none = NULL;
	if (!atomic_compare_exchange_strong(&c->kept, &none, k))
		pv_kept_merge_free(k);
}

/*
 * The merge of answers of one shape (health checks, mostly): built once and
 * then handed out again (frozen answers, above) or refilled. The composite
 * keeps a reference to the last one it handed out; when the caller has let
 * go of it, the next call reuses or refills it instead of making two
 * objects and a key per child and per answer key again. Answers of other
 * shapes are merged anew and nothing is kept: a merged list of machines is
 * not held past its use.
 */
static json_t *merge_answers(composite *c, const croster *r, const child_outcome *o, size_t n,
			     size_t answers)
{
	kept_merge *k = atomic_exchange(&c->kept, NULL);
	if (k && same_answers(k, r, o, n) && kept_unchanged(k)) {
		pv_counters_add(&c->counts, CC_MERGES_REUSED, 1);
		json_t *merged = json_incref(k->merged);
		keep(c, k);
		return merged;
	}
	shape sh;
	if (!one_shape(o, n, &sh)) {
		pv_kept_merge_free(k);
		return merge_keys(o, n);
	}
	json_t *merged = k ? k->merged : NULL;
	if (k)
		k->merged = NULL;
	if (!merged || !refill(merged, o, n, answers, &sh)) {
		json_decref(merged); /* a caller still holding it keeps it */
		merged = merge_keys(o, n);
		if (!merged || !all_taken_as_is(sh.first)) {
			free(k);
			return merged;
		}
	}
	if (!k && !(k = malloc(sizeof *k)))
		return merged; /* not kept: the next call merges anew */
	kept_record(k, json_incref(merged), r, o, n, &sh);
	keep(c, k);
	return merged;
}

static void merge_all(composite *c, const croster *r, child_outcome *o, size_t n,
		      const tally *t, pv_result *out, meta_extra *x)
{
	long only = -1;
	EACH_ANSWER(o, n, i)
		only = only == -1 ? (long)i : -2;
	pv_result_ok(out, merge_answers(c, r, o, n, t->ok));
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

/* Whether two answers say the same, volatile keys aside at every depth; key
 * order never matters. Compared in place: one answer shared by several
 * children costs a pointer comparison. */
static bool same_answer(const json_t *a, const json_t *b, const json_t *fields)
{
	a = a ? a : json_null();
	b = b ? b : json_null();
	if (a == b)
		return true;
	if (json_is_object(a) && json_is_object(b)) {
		size_t kept = 0;
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)a, key, v) {
			if (is_volatile(key, fields))
				continue;
			kept++;
			json_t *w = json_object_get(b, key);
			if (!w || !same_answer(v, w, fields))
				return false;
		}
		json_object_foreach((json_t *)b, key, v)
			kept -= !is_volatile(key, fields);
		return kept == 0; /* b has no key a lacks */
	}
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same_answer(json_array_get(a, i), json_array_get(b, i), fields))
				return false;
		return true;
	}
	return json_equal(a, b);
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
	size_t *votes = calloc(n, sizeof *votes);
	bool *agreeing = calloc(n, sizeof *agreeing);
	if (!votes || !agreeing) {
		free(votes);
		free(agreeing);
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return;
	}
	const json_t *fields = c->cfg.volatile_fields;
#define ANSWERED(i) (!o[i].cancelled && o[i].res.success)
#define SAME(i, j) same_answer(o[i].res.data, o[j].res.data, fields)
	/* votes[i]: how many answers equal answer i (counted at the earliest). */
	long best = -1;
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		if (!ANSWERED(i))
			continue;
		for (size_t j = 0; j < n; j++)
			votes[i] += ANSWERED(j) && (i == j || SAME(i, j));
		if (best < 0 || votes[i] > votes[best] ||
		    (votes[i] == votes[best] && o[i].seq < o[best].seq)) {
			tie = best >= 0 && votes[i] == votes[best] && !SAME(i, best);
			best = (long)i;
		} else if (votes[i] == votes[best] && !SAME(i, best)) {
			tie = true;
		}
	}
	size_t need = c->cfg.min_success_count;
	if (best >= 0 && !tie && votes[best] >= need) {
		for (size_t j = 0; j < n; j++)
			agreeing[j] = ANSWERED(j) && ((long)j == best || SAME(best, j));
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
#undef SAME
#undef ANSWERED
	free(votes);
	free(agreeing);
}

/* ---- entry ------------------------------------------------------------------ */

void pv_composite_aggregate(composite *c, const croster *r, const pv_operation *op,
			    child_outcome *o, size_t n, pv_result *out)
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
			merge_all(c, r, o, n, &t, out, &x);
			break;
		}
	}
	out->attempts = t.attempts ? t.attempts : 1;
	pv_composite_meta(c, out, o, n, &x);
	free(x.agreeing);
}
