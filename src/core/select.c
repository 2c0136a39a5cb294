/*
 * select.c - selection criteria and the ten selection policies.
 *
 * Runs under the context's read lock, so it only reads: atomics of the
 * metrics recorders, cached health and capabilities. It never calls a
 * strategy (no health call per selection). Ties are broken by rotating the
 * start of the scan with the context's cursor, so equal strategies share
 * the load instead of the first one taking it all.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/context_internal.h"
#include "provisio/error.h"
#include "util/rng.h"
#include "util/swrr.h"

/* performance_based: score = success rate (0..1; 1 when unmeasured) divided
 * by (1 + EWMA latency / PERF_LATENCY_REF_MS); a strategy at 250 ms scores
 * half of an equally reliable one at 0 ms. */
#define PERF_LATENCY_REF_MS 250.0
#define DEFAULT_MIN_SAMPLES 10
#define STACK_CANDIDATES 64

static const char *const policy_names[PV_POLICY_COUNT] = {
	"none", "first_available", "round_robin", "weighted_round_robin",
	"least_connections", "fastest_response", "highest_success_rate",
	"capability_based", "health_based", "random", "performance_based", "custom",
};

const char *pv_policy_name(pv_policy p)
{
	return (unsigned)p < PV_POLICY_COUNT ? policy_names[p] : "unknown";
}

int pv_policy_parse(const char *name, pv_policy *out)
{
	if (name && strcasecmp(name, "least_response_time") == 0) {
		*out = PV_POLICY_FASTEST_RESPONSE;
		return 0;
	}
	for (unsigned i = 0; name && i < PV_POLICY_COUNT; i++) {
		if (strcasecmp(name, policy_names[i]) == 0) {
			*out = (pv_policy)i;
			return 0;
		}
	}
	return pv_error_set(PV_EINVAL,
			    "unknown selection policy '%s': valid values are none, first_available, "
			    "round_robin, weighted_round_robin, least_connections, fastest_response "
			    "(alias least_response_time), highest_success_rate, capability_based, "
			    "health_based, random, performance_based, custom",
			    name ? name : "(null)");
}

/* ---- criteria ----------------------------------------------------------- */

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void pv_criteria_clear(criteria *c)
{
	json_decref(c->required_features);
	free_names(c->exclude, c->n_exclude);
	free_names(c->prefer, c->n_prefer);
	memset(c, 0, sizeof *c);
}

static int copy_names(char ***dst, const char *const *src, size_t n)
{
	*dst = NULL;
	if (!n)
		return 0;
	if (!src)
		return pv_error_set(PV_EINVAL, "criteria: a name list has a count but no names");
	*dst = calloc(n, sizeof **dst);
	if (!*dst)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!src[i])
			return pv_error_set(PV_EINVAL, "criteria: name %zu of a list is NULL", i);
		if (!((*dst)[i] = strdup(src[i])))
			return pv_error_set(PV_ENOMEM, "out of memory");
	}
	return 0;
}

int pv_criteria_copy(criteria *dst, const pv_criteria *src)
{
	memset(dst, 0, sizeof *dst);
	if (!src)
		return 0;
	if (!(src->min_success_rate >= 0 && src->min_success_rate <= 100))
		return pv_error_set(PV_EINVAL, "criteria: min_success_rate must be a percentage from 0 to 100");
	if (!(src->max_response_time_ms >= 0) || !isfinite(src->max_response_time_ms))
		return pv_error_set(PV_EINVAL, "criteria: max_response_time_ms must be a number >= 0");
	if (src->required_operations & ~PV_OP_SET_ALL)
		return pv_error_set(PV_EINVAL, "criteria: required_operations has unknown operation bits");
	if (src->required_features && !json_is_array(src->required_features))
		return pv_error_set(PV_EINVAL, "criteria: required_features must be an array of names");
	dst->set = true;
	dst->required_operations = src->required_operations;
	dst->min_success_rate = src->min_success_rate;
	dst->max_response_ns = src->max_response_time_ms * 1e6;
	dst->min_samples = src->min_samples ? src->min_samples : DEFAULT_MIN_SAMPLES;
	dst->require_healthy = src->require_healthy;
	int rc = 0;
	if (src->required_features &&
	    !(dst->required_features = json_deep_copy(src->required_features)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	if (!rc && (rc = copy_names(&dst->exclude, src->exclude, src->n_exclude)) == 0)
		dst->n_exclude = src->n_exclude;
	if (!rc && (rc = copy_names(&dst->prefer, src->prefer, src->n_prefer)) == 0)
		dst->n_prefer = src->n_prefer;
	if (rc) {
		dst->n_exclude = dst->exclude ? src->n_exclude : 0;
		dst->n_prefer = dst->prefer ? src->n_prefer : 0;
		pv_criteria_clear(dst);
	}
	return rc;
}

static bool name_in(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Whether `e` may serve `op` at all, before any policy. */
static bool eligible(const pv_context *ctx, const entry *e, const pv_operation *op)
{
	if (!e->selectable ||
	    atomic_load_explicit(&e->init_state, memory_order_relaxed) != INIT_OK)
		return false;
	if (!(e->caps.operations & PV_OP_BIT(op->type)))
		return false;
	const criteria *c = &ctx->crit;
	if (!c->set)
		return true;
	if ((e->caps.operations & c->required_operations) != c->required_operations)
		return false;
	if (c->required_features && !pv_capabilities_has_features(&e->caps, c->required_features))
		return false;
	if (c->n_exclude && name_in(c->exclude, c->n_exclude, e->s->name))
		return false;
	if (c->require_healthy &&
	    atomic_load_explicit(&e->health_state, memory_order_relaxed) == HEALTH_DOWN)
		return false;
	if (c->min_success_rate > 0 || c->max_response_ns > 0) {
		/* Rate and time only judge a strategy that has a track record, so a
		 * new strategy is never excluded before it could prove itself. */
		if (pv_metrics_total(&e->metrics) >= c->min_samples) {
			if (c->min_success_rate > 0 &&
			    pv_metrics_success_rate(&e->metrics) < c->min_success_rate)
				return false;
			if (c->max_response_ns > 0 &&
			    (double)pv_metrics_ewma_ns(&e->metrics) > c->max_response_ns)
				return false;
		}
	}
	return true;
}

/* ---- policies ------------------------------------------------------------ */

static uint64_t next_cursor(pv_context *ctx)
{
	return atomic_fetch_add_explicit(&ctx->cursor, 1, memory_order_relaxed);
}

static int64_t in_flight(const entry *e)
{
	return (int64_t)atomic_load_explicit(&e->refs, memory_order_relaxed) - 1;
}

/* Lowest `key` wins; the scan starts at a rotating offset so ties spread. */
typedef double (*key_fn)(const entry *e);

static entry *pick_min(pv_context *ctx, entry **cands, size_t nc, key_fn key)
{
	size_t start = (size_t)(next_cursor(ctx) % nc);
	entry *best = NULL;
	double best_key = INFINITY;
	for (size_t k = 0; k < nc; k++) {
		entry *e = cands[(start + k) % nc];
		double v = key(e);
		if (!best || v < best_key) {
			best = e;
			best_key = v;
		}
	}
	return best;
}

static double key_connections(const entry *e) { return (double)in_flight(e); }

static double key_latency(const entry *e)
{
	uint64_t ewma = pv_metrics_ewma_ns(&e->metrics);
	return ewma ? (double)ewma : -1.0; /* unmeasured first */
}

static double key_success(const entry *e)
{
	double rate = pv_metrics_success_rate(&e->metrics);
	return isnan(rate) ? -101.0 : -rate; /* unmeasured first, then highest rate */
}

static double key_capability(const entry *e) { return -(double)e->capability_score; }

static double key_performance(const entry *e)
{
	double rate = pv_metrics_success_rate(&e->metrics);
	double ok = isnan(rate) ? 1.0 : rate / 100.0;
	double ms = (double)pv_metrics_ewma_ns(&e->metrics) / 1e6;
	return -(ok / (1.0 + ms / PERF_LATENCY_REF_MS));
}

static entry *pick_health(entry **cands, size_t nc)
{
	entry *unknown = NULL;
	for (size_t i = 0; i < nc; i++) {
		int h = atomic_load_explicit(&cands[i]->health_state, memory_order_relaxed);
		if (h == HEALTH_UP)
			return cands[i];
		if (h == HEALTH_UNKNOWN && !unknown)
			unknown = cands[i];
	}
	return unknown;
}

static entry *pick_weighted(pv_context *ctx, entry **cands, size_t nc)
{
	if (!ctx->wrr_len)
		return cands[0];
	uint64_t k = next_cursor(ctx);
	for (size_t i = 0; i < ctx->wrr_len; i++) {
		entry *e = ctx->entries[ctx->wrr[(k + i) % ctx->wrr_len]];
		for (size_t j = 0; j < nc; j++)
			if (cands[j] == e)
				return e;
	}
	return cands[0];
}

static entry *pick_custom(pv_context *ctx, entry **cands, size_t nc, const pv_operation *op)
{
	if (!ctx->custom)
		return NULL;
	pv_candidate stack[STACK_CANDIDATES];
	pv_candidate *view = nc <= STACK_CANDIDATES ? stack : calloc(nc, sizeof *view);
	if (!view)
		return NULL;
	for (size_t i = 0; i < nc; i++) {
		entry *e = cands[i];
		view[i] = (pv_candidate){
			.name = e->s->name,
			.type = e->s->type,
			.weight = e->weight,
			.health = atomic_load_explicit(&e->health_state, memory_order_relaxed),
			.metrics = &e->metrics,
			.capabilities = &e->caps,
		};
	}
	int idx = ctx->custom(ctx->custom_user, view, nc, op);
	if (view != stack)
		free(view);
	return idx >= 0 && (size_t)idx < nc ? cands[idx] : NULL;
}

static entry *apply_policy(pv_context *ctx, entry **cands, size_t nc, const pv_operation *op)
{
	switch (ctx->policy) {
	case PV_POLICY_NONE:
	case PV_POLICY_FIRST_AVAILABLE:
		return cands[0];
	case PV_POLICY_ROUND_ROBIN:
		return cands[next_cursor(ctx) % nc];
	case PV_POLICY_WEIGHTED_ROUND_ROBIN:
		return pick_weighted(ctx, cands, nc);
	case PV_POLICY_LEAST_CONNECTIONS:
		return pick_min(ctx, cands, nc, key_connections);
	case PV_POLICY_FASTEST_RESPONSE:
		return pick_min(ctx, cands, nc, key_latency);
	case PV_POLICY_HIGHEST_SUCCESS_RATE:
		return pick_min(ctx, cands, nc, key_success);
	case PV_POLICY_CAPABILITY_BASED:
		return pick_min(ctx, cands, nc, key_capability);
	case PV_POLICY_HEALTH_BASED:
		return pick_health(cands, nc);
	case PV_POLICY_RANDOM:
		return cands[pv_mix64(ctx->seed ^ next_cursor(ctx)) % nc];
	case PV_POLICY_PERFORMANCE_BASED:
		return pick_min(ctx, cands, nc, key_performance);
	case PV_POLICY_CUSTOM:
		return pick_custom(ctx, cands, nc, op);
	default:
		return NULL;
	}
}

entry *pv_select_entry(pv_context *ctx, const pv_operation *op)
{
	entry *stack[STACK_CANDIDATES];
	entry **cands = ctx->n <= STACK_CANDIDATES ? stack : calloc(ctx->n, sizeof *cands);
	if (!cands)
		return NULL;
	size_t nc = 0;
	const criteria *c = &ctx->crit;
	/* Preferred strategies first: the policy chooses among them when any is
	 * eligible, and among all the others only when none is. */
	for (size_t p = 0; p < c->n_prefer; p++)
		for (size_t i = 0; i < ctx->n; i++)
			if (strcmp(ctx->entries[i]->s->name, c->prefer[p]) == 0 &&
			    eligible(ctx, ctx->entries[i], op))
				cands[nc++] = ctx->entries[i];
	if (nc == 0)
		for (size_t i = 0; i < ctx->n; i++)
			if (eligible(ctx, ctx->entries[i], op))
				cands[nc++] = ctx->entries[i];
	entry *chosen = nc ? apply_policy(ctx, cands, nc, op) : NULL;
	if (cands != stack)
		free(cands);
	return chosen;
}

/* ---- smooth weighted round robin ------------------------------------------ */

#define WRR_MAX_LEN 4096

/* Rebuilds the schedule (util/swrr.h) from the entries' weights. */
int pv_select_rebuild_schedule(pv_context *ctx)
{
	free(ctx->wrr);
	ctx->wrr = NULL;
	ctx->wrr_len = 0;
	if (!ctx->n)
		return 0;
	double *weights = malloc(ctx->n * sizeof *weights);
	if (!weights)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->n; i++)
		weights[i] = ctx->entries[i]->weight;
	int rc = pv_swrr_schedule(weights, ctx->n, WRR_MAX_LEN, &ctx->wrr, &ctx->wrr_len);
	free(weights);
	return rc;
}
