/*
 * strategy.c - the strategy base: setup, reference counting, and the
 * checked direct call wrappers use to run their children.
 */
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "core/strategy_internal.h"
#include "provisio/strategy.h"

int pv_strategy_setup(pv_strategy *s, const pv_strategy_methods *methods, const char *name,
		      const char *type)
{
	if (!s || !methods)
		return pv_error_set(PV_EINVAL, "strategy setup: NULL strategy or methods");
	if (!name || !*name)
		return pv_error_set(PV_EINVAL, "strategy setup: name must be a non-empty string");
	if (!type || !*type)
		return pv_error_set(PV_EINVAL, "strategy '%s': type must be a non-empty string", name);
	if (methods->version < 1 || !methods->execute || !methods->capabilities || !methods->health)
		return pv_error_set(PV_EINVAL,
				    "strategy '%s': methods need version >= 1 and execute, "
				    "capabilities and health",
				    name);
	s->methods = methods;
	s->name = strdup(name);
	s->type = strdup(type);
	if (!s->name || !s->type) {
		free(s->name);
		free(s->type);
		s->name = s->type = NULL;
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	atomic_init(&s->refs, 1);
	atomic_init(&s->initialized, methods->init ? 0 : 1);
	return 0;
}

void *pv_strategy_alloc(size_t size, const pv_strategy_methods *methods, const char *name,
			const char *type)
{
	pv_strategy *s = size >= sizeof *s ? calloc(1, size) : NULL;
	if (!s) {
		pv_error_set(size < sizeof *s ? PV_EINVAL : PV_ENOMEM, size < sizeof *s
				     ? "strategy '%s': object smaller than the pv_strategy base"
				     : "out of memory", name ? name : "");
		return NULL;
	}
	if (pv_strategy_setup(s, methods, name, type) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

pv_strategy *pv_strategy_ref(pv_strategy *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void pv_strategy_unref(pv_strategy *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->methods->destroy)
		s->methods->destroy(s);
	free(s->name);
	free(s->type);
	free(s);
}

int pv_strategy_initialize(pv_strategy *s)
{
	if (pv_strategy_is_initialized(s))
		return 0;
	int rc = s->methods->init ? s->methods->init(s) : 0;
	if (rc == 0)
		atomic_store_explicit(&s->initialized, 1, memory_order_release);
	else if (rc > 0)
		rc = PV_ERROR; /* an init must not report success with a positive code */
	return rc;
}

/* The checked call, from `start` (0: read here when the call is timed);
 * returns the time it ended when it read one, else 0. Inlined into both
 * entries so that the plain one costs what it did. */
static inline __attribute__((always_inline)) uint64_t
execute(pv_strategy *s, const pv_operation *op, pv_result *out, const pv_clock *clock, bool timed,
	uint64_t start, bool want_end)
{
	pv_result_init(out);
	if (timed && !start)
		start = pv_clock_now(clock);
	if (!pv_strategy_is_initialized(s)) {
		pv_result_fail(out, PV_ERR_NOT_INITIALIZED, PV_CLASS_PERMANENT,
			       "strategy '%s' is not initialized", s->name);
	} else if (op->deadline_ns && start >= op->deadline_ns) {
		pv_result_fail(out, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT,
			       "deadline passed before strategy '%s' was called", s->name);
	} else if (s->methods->execute(s, op, out) < 0) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL,
			       "strategy '%s' failed internally: %s", s->name, pv_error_last());
	}
	if (!out->provider[0])
		pv_result_set_provider(out, s->name);
	if (out->attempts == 0)
		out->attempts = 1;
	/* A strategy may report its own latency (a wrapper: its leaf's); then
	 * the end is read only for a caller that asked for it. */
	if (!timed || (out->latency_ns && !want_end))
		return 0;
	uint64_t end = pv_clock_now(clock);
	if (out->latency_ns == 0)
		out->latency_ns = end - start;
	return end;
}

void pv_strategy_execute(pv_strategy *s, const pv_operation *op, pv_result *out,
			 const pv_clock *clock)
{
	bool timed = !(s->methods->flags & PV_STRATEGY_TIMED_BY_CHILD) || op->deadline_ns;
	execute(s, op, out, clock, timed, 0, false);
}

uint64_t pv_strategy_execute_from(pv_strategy *s, const pv_operation *op, pv_result *out,
				  const pv_clock *clock, uint64_t start)
{
	return execute(s, op, out, clock, true, start ? start : pv_clock_now(clock), true);
}

int pv_strategy_capabilities(pv_strategy *s, pv_capabilities *out)
{
	memset(out, 0, sizeof *out);
	return s->methods->capabilities(s, out);
}

int pv_strategy_health(pv_strategy *s, pv_health *out)
{
	memset(out, 0, sizeof *out);
	return s->methods->health(s, out);
}

json_t *pv_strategy_stats(pv_strategy *s)
{
	return s->methods->stats ? s->methods->stats(s) : NULL;
}

json_t *pv_strategy_state_save(pv_strategy *s)
{
	return s->methods->state_save ? s->methods->state_save(s) : NULL;
}

int pv_strategy_state_load(pv_strategy *s, const json_t *state)
{
	if (!s->methods->state_load)
		return pv_error_set(PV_EUNSUPPORTED, "strategy '%s' (%s) keeps no state", s->name,
				    s->type);
	return s->methods->state_load(s, state);
}

int pv_strategy_set_limiter(pv_strategy *s, pv_limiter *l)
{
	if (s->methods->version < 2 || !s->methods->set_limiter)
		return 0;
	return s->methods->set_limiter(s, l);
}
