/*
 * sim.c - the simulated provider (see include/provisio/sim.h).
 *
 * A complete strategy whose "cloud" is a table in memory. It exists so the
 * kernel, the wrappers and the broker can be tested and measured against
 * exact, repeatable behaviour: scripted outcomes first, then seeded random
 * failures and latency, and a capacity that makes creation partial.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "provisio/error.h"
#include "provisio/sim.h"
#include "util/counters.h"
#include "util/frozen.h"
#include "util/rng.h"

typedef enum { DIST_FIXED, DIST_NORMAL, DIST_LOGNORMAL } latency_dist;
typedef enum { STEP_OK, STEP_FAIL, STEP_LATENCY } step_kind;

typedef struct script_step {
	step_kind kind;
	char code[PV_RESULT_CODE_MAX];
	pv_error_class cls;
	uint64_t latency_ns;
	unsigned remaining;
} script_step;

typedef struct sim {
	pv_strategy base;
	const pv_clock *clock;
	pthread_mutex_t lock; /* rng, script, instances, templates */
	pv_rng rng;

	latency_dist dist;
	_Atomic double mean_ns;
	double stddev_ns;
	_Atomic double failure_rate;
	char failure_code[PV_RESULT_CODE_MAX];
	pv_error_class failure_class;
	int64_t capacity; /* -1 = unlimited */
	uint64_t boot_delay_ns;
	atomic_int healthy;
	pv_op_set operations;
	json_t *features;
	json_t *templates; /* array */

	script_step *script;
	size_t script_len, script_cap;
	atomic_size_t script_pending; /* steps left; read without the lock */

	json_t *instances; /* object: id -> instance */
	uint64_t next_id;
	uint32_t nonce; /* in every id: short-lived processes never reuse one */
	atomic_int_fast64_t live;
	pv_counters calls; /* by operation (PV_OP_COUNT <= PV_COUNTERS_MAX), split by thread: the floor of the kernel's benchmarks */
} sim;

static sim *as_sim(pv_strategy *s) { return (sim *)s; }

/* ---- configuration ---------------------------------------------------- */

static int field_error(const char *name, const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "sim '%s': field '%s': %s", name, field, why);
}

static int get_number(const json_t *obj, const char *key, double *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

static int parse_latency(sim *m, const json_t *lat)
{
	const char *name = m->base.name;
	if (!json_is_object(lat))
		return field_error(name, "latency", "must be an object");
	json_t *d = json_object_get(lat, "distribution");
	if (d) {
		const char *ds = json_string_value(d);
		if (ds && strcmp(ds, "fixed") == 0)
			m->dist = DIST_FIXED;
		else if (ds && strcmp(ds, "normal") == 0)
			m->dist = DIST_NORMAL;
		else if (ds && strcmp(ds, "lognormal") == 0)
			m->dist = DIST_LOGNORMAL;
		else
			return field_error(name, "latency.distribution",
					   "must be one of fixed, normal, lognormal");
	}
	double mean = 0, sd = 0;
	if (get_number(lat, "mean_ms", &mean) < 0 || mean < 0 || !isfinite(mean))
		return field_error(name, "latency.mean_ms", "must be a number >= 0");
	if (get_number(lat, "stddev_ms", &sd) < 0 || sd < 0 || !isfinite(sd))
		return field_error(name, "latency.stddev_ms", "must be a number >= 0");
	if (m->dist == DIST_LOGNORMAL && mean <= 0)
		return field_error(name, "latency.mean_ms", "must be > 0 for a lognormal distribution");
	atomic_store(&m->mean_ns, mean * 1e6);
	m->stddev_ns = sd * 1e6;
	return 0;
}

static int parse_script_entry(sim *m, const char *entry);

static int parse_config(sim *m, const json_t *cfg)
{
	const char *name = m->base.name;
	double v;
	int rc;
	if (!cfg)
		return 0;
	if (!json_is_object(cfg))
		return pv_error_set(PV_EINVAL, "sim '%s': config must be a JSON object", name);

	static const char *const keys[] = {"seed", "latency", "failure_rate", "failure_code",
					   "failure_class", "capacity", "boot_delay_ms", "healthy",
					   "operations", "features", "templates", "script", NULL};
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)cfg, key, val) {
		bool known = false;
		for (const char *const *k = keys; *k && !known; k++)
			known = strcmp(*k, key) == 0;
		if (!known)
			return pv_error_set(PV_EINVAL,
					    "sim '%s': unknown field '%s' (valid: seed, latency, failure_rate, "
					    "failure_code, failure_class, capacity, boot_delay_ms, healthy, "
					    "operations, features, templates, script)",
					    name, key);
	}
	json_t *seed = json_object_get(cfg, "seed");
	if (seed && !json_is_integer(seed))
		return field_error(name, "seed", "must be an integer");
	pv_rng_seed(&m->rng, seed ? (uint64_t)json_integer_value(seed) : 1);

	json_t *lat = json_object_get(cfg, "latency");
	if (lat && (rc = parse_latency(m, lat)) < 0)
		return rc;
	if ((rc = get_number(cfg, "failure_rate", &v)) < 0 || (rc > 0 && !(v >= 0 && v <= 1)))
		return field_error(name, "failure_rate", "must be a number from 0 to 1");
	if (rc > 0)
		atomic_store(&m->failure_rate, v);

	json_t *code = json_object_get(cfg, "failure_code");
	if (code) {
		if (!json_is_string(code) || !json_string_length(code) ||
		    json_string_length(code) >= PV_RESULT_CODE_MAX)
			return field_error(name, "failure_code", "must be a non-empty string under 48 characters");
		snprintf(m->failure_code, sizeof m->failure_code, "%s", json_string_value(code));
		m->failure_class = pv_error_code_class(m->failure_code);
	}
	json_t *cls = json_object_get(cfg, "failure_class");
	if (cls && (!json_is_string(cls) ||
		    pv_error_class_parse(json_string_value(cls), &m->failure_class) < 0 ||
		    m->failure_class == PV_CLASS_NONE))
		return field_error(name, "failure_class",
				   "must be one of transient, throttled, capacity, permanent, internal");

	json_t *cap = json_object_get(cfg, "capacity");
	if (cap && (!json_is_integer(cap) || json_integer_value(cap) < -1))
		return field_error(name, "capacity", "must be an integer >= 0, or -1 for unlimited");
	if (cap)
		m->capacity = json_integer_value(cap);
	if ((rc = get_number(cfg, "boot_delay_ms", &v)) < 0 || (rc > 0 && !(v >= 0 && isfinite(v))))
		return field_error(name, "boot_delay_ms", "must be a number >= 0");
	if (rc > 0)
		m->boot_delay_ns = (uint64_t)(v * 1e6);
	json_t *healthy = json_object_get(cfg, "healthy");
	if (healthy && !json_is_boolean(healthy))
		return field_error(name, "healthy", "must be true or false");
	if (healthy)
		atomic_store(&m->healthy, json_is_true(healthy));

	json_t *ops = json_object_get(cfg, "operations");
	if (ops) {
		size_t i;
		json_t *o;
		pv_op_type t;
		if (!json_is_array(ops))
			return field_error(name, "operations", "must be an array of operation names");
		m->operations = 0;
		json_array_foreach(ops, i, o) {
			if (!json_is_string(o) || pv_op_parse(json_string_value(o), &t) < 0)
				return field_error(name, "operations", pv_error_last());
			m->operations |= PV_OP_BIT(t);
		}
	}
	json_t *features = json_object_get(cfg, "features");
	if (features) {
		if (!json_is_object(features))
			return field_error(name, "features", "must be an object");
		json_decref(m->features);
		m->features = json_deep_copy(features);
	}
	json_t *templates = json_object_get(cfg, "templates");
	if (templates) {
		if (!json_is_array(templates))
			return field_error(name, "templates", "must be an array of template objects");
		json_decref(m->templates);
		m->templates = json_deep_copy(templates);
	}
	json_t *script = json_object_get(cfg, "script");
	if (script) {
		size_t i;
		json_t *e;
		if (!json_is_array(script))
			return field_error(name, "script", "must be an array of strings");
		json_array_foreach(script, i, e) {
			if (!json_is_string(e))
				return field_error(name, "script", "entries must be strings");
			if ((rc = parse_script_entry(m, json_string_value(e))) < 0)
				return rc;
		}
	}
	return 0;
}

/* ---- script ------------------------------------------------------------ */

static int parse_script_entry(sim *m, const char *entry)
{
	script_step st = {.remaining = 1};
	char buf[128];
	snprintf(buf, sizeof buf, "%s", entry ? entry : "");
	char *star = strrchr(buf, '*');
	if (star) {
		char *end;
		long n = strtol(star + 1, &end, 10);
		if (*end || n < 1 || n > 100000000)
			return pv_error_set(PV_EINVAL, "sim '%s': script entry '%s': repeat count must be 1..1e8",
					    m->base.name, entry);
		st.remaining = (unsigned)n;
		*star = '\0';
	}
	if (strcmp(buf, "ok") == 0) {
		st.kind = STEP_OK;
	} else if (strncmp(buf, "latency:", 8) == 0) {
		char *end;
		double ms = strtod(buf + 8, &end);
		if (*end || !(ms >= 0) || !isfinite(ms))
			return pv_error_set(PV_EINVAL, "sim '%s': script entry '%s': latency must be ms >= 0",
					    m->base.name, entry);
		st.kind = STEP_LATENCY;
		st.latency_ns = (uint64_t)(ms * 1e6);
	} else if (strcmp(buf, "fail") == 0 || strncmp(buf, "fail:", 5) == 0) {
		st.kind = STEP_FAIL;
		const char *code = buf[4] ? buf + 5 : m->failure_code;
		char *colon = buf[4] ? strchr(buf + 5, ':') : NULL;
		if (colon)
			*colon = '\0';
		if (!*code || strlen(code) >= PV_RESULT_CODE_MAX)
			return pv_error_set(PV_EINVAL, "sim '%s': script entry '%s': empty or long code",
					    m->base.name, entry);
		snprintf(st.code, sizeof st.code, "%s", code);
		st.cls = buf[4] ? pv_error_code_class(st.code) : m->failure_class;
		if (colon && (pv_error_class_parse(colon + 1, &st.cls) < 0 || st.cls == PV_CLASS_NONE))
			return pv_error_set(PV_EINVAL, "sim '%s': script entry '%s': %s", m->base.name,
					    entry, "class must be transient, throttled, capacity, permanent or internal");
	} else {
		return pv_error_set(PV_EINVAL,
				    "sim '%s': script entry '%s': expected ok, fail[:CODE[:class]] or "
				    "latency:MS, optionally followed by *N",
				    m->base.name, entry);
	}
	if (m->script_len == m->script_cap) {
		size_t cap = m->script_cap ? m->script_cap * 2 : 8;
		script_step *grown = realloc(m->script, cap * sizeof *grown);
		if (!grown)
			return pv_error_set(PV_ENOMEM, "out of memory");
		m->script = grown;
		m->script_cap = cap;
	}
	m->script[m->script_len++] = st;
	atomic_fetch_add(&m->script_pending, 1);
	return 0;
}

int pv_sim_script(pv_strategy *s, const char *entry)
{
	sim *m = as_sim(s);
	pthread_mutex_lock(&m->lock);
	int rc = parse_script_entry(m, entry);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Takes the next scripted step (lock held). false when the script is empty. */
static bool script_next(sim *m, script_step *out)
{
	if (m->script_len == 0)
		return false;
	script_step *st = &m->script[0];
	*out = *st;
	if (--st->remaining == 0) {
		memmove(m->script, m->script + 1, (m->script_len - 1) * sizeof *st);
		m->script_len--;
		atomic_fetch_sub(&m->script_pending, 1);
	}
	return true;
}

/* ---- the decision of one call ------------------------------------------ */

typedef struct outcome {
	bool fail;
	char code[PV_RESULT_CODE_MAX];
	pv_error_class cls;
	uint64_t latency_ns;
} outcome;

static uint64_t draw_latency(sim *m, double mean)
{
	double ns = mean;
	switch (m->dist) {
	case DIST_FIXED:
		break;
	case DIST_NORMAL:
		ns = mean + m->stddev_ns * pv_rng_normal(&m->rng);
		break;
	case DIST_LOGNORMAL: {
		double var = log(1.0 + (m->stddev_ns * m->stddev_ns) / (mean * mean));
		ns = exp(log(mean) - var / 2 + sqrt(var) * pv_rng_normal(&m->rng));
		break;
	}
	}
	return ns > 0 ? (uint64_t)ns : 0;
}

static void decide(sim *m, outcome *o)
{
	memset(o, 0, sizeof *o);
	double rate = atomic_load_explicit(&m->failure_rate, memory_order_relaxed);
	double mean = atomic_load_explicit(&m->mean_ns, memory_order_relaxed);
	bool scripted = atomic_load_explicit(&m->script_pending, memory_order_relaxed) != 0;
	if (!scripted && rate <= 0 && (m->dist == DIST_FIXED || mean <= 0)) {
		o->latency_ns = (uint64_t)mean; /* the lock-free fast path */
		return;
	}
	pthread_mutex_lock(&m->lock);
	script_step st;
	bool have_step = scripted && script_next(m, &st);
	o->latency_ns = mean > 0 ? draw_latency(m, mean) : 0;
	if (have_step) {
		if (st.kind == STEP_LATENCY)
			o->latency_ns = st.latency_ns;
		o->fail = st.kind == STEP_FAIL;
		memcpy(o->code, st.code, sizeof o->code);
		o->cls = st.cls;
	} else if (rate > 0 && pv_rng_double(&m->rng) < rate) {
		o->fail = true;
		memcpy(o->code, m->failure_code, sizeof o->code);
		o->cls = m->failure_class;
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- operations -------------------------------------------------------- */

static const char *instance_state(sim *m, json_t *inst, uint64_t now)
{
	if (json_is_true(json_object_get(inst, "terminated")))
		return "terminated";
	uint64_t launched = (uint64_t)json_integer_value(json_object_get(inst, "launch_ns"));
	return now >= launched + m->boot_delay_ns ? "running" : "pending";
}

/* A public copy of an instance with its current state (lock held). */
static json_t *instance_view(sim *m, json_t *inst, uint64_t now)
{
	json_t *v = json_deep_copy(inst);
	json_object_del(v, "launch_ns");
	json_object_del(v, "terminated");
	json_object_set_new(v, "state", json_string(instance_state(m, inst, now)));
	return v;
}

static void op_create(sim *m, const pv_operation *op, pv_result *out)
{
	json_t *p = op->params;
	json_t *jc = p ? json_object_get(p, "count") : NULL;
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'count' must be an integer >= 1");
		return;
	}
	int64_t want = jc ? json_integer_value(jc) : 1;
	const char *tmpl = p ? json_string_value(json_object_get(p, "template_id")) : NULL;
	const char *req = p ? json_string_value(json_object_get(p, "request_id")) : NULL;

	pthread_mutex_lock(&m->lock);
	int64_t live = atomic_load(&m->live);
	int64_t room = m->capacity < 0 ? want : (m->capacity > live ? m->capacity - live : 0);
	int64_t n = want < room ? want : room;
	if (n == 0) {
		pthread_mutex_unlock(&m->lock);
		pv_result_fail(out, PV_ERR_CAPACITY, PV_CLASS_CAPACITY,
			       "sim '%s' has no capacity: %lld of %lld instances in use", m->base.name,
			       (long long)live, (long long)m->capacity);
		pv_result_meta_set(out, "requested", json_integer(want));
		return;
	}
	json_t *data = json_object();
	if (pv_operation_dry_run(op)) {
		pthread_mutex_unlock(&m->lock);
		json_object_set_new(data, "dry_run", json_true());
		json_object_set_new(data, "would_create", json_integer(n));
		json_object_set_new(data, "requested", json_integer(want));
		pv_result_ok(out, data);
		return;
	}
	json_t *list = json_array(), *ids = json_array();
	uint64_t now = pv_clock_now(m->clock);
	for (int64_t i = 0; i < n; i++) {
		char id[96];
		uint64_t seq = ++m->next_id;
		snprintf(id, sizeof id, "%s-i-%08x-%06llu", m->base.name, m->nonce,
			 (unsigned long long)seq);
		char ip[32];
		snprintf(ip, sizeof ip, "10.%u.%u.%u", (unsigned)(seq >> 16) & 255,
			 (unsigned)(seq >> 8) & 255, (unsigned)seq & 255);
		json_t *inst = json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:I, s:s, s:b}", "instance_id", id,
					 "provider", m->base.name, "template_id", tmpl, "request_id", req,
					 "launch_ns", (json_int_t)now, "launch_time_ms",
					 (json_int_t)pv_wall_ms(), "private_ip", ip, "terminated", 0);
		json_object_set_new(m->instances, id, inst);
		json_array_append_new(list, instance_view(m, inst, now));
		json_array_append_new(ids, json_string(id));
	}
	atomic_fetch_add(&m->live, n);
	pthread_mutex_unlock(&m->lock);
	json_object_set_new(data, "instances", list);
	json_object_set_new(data, "instance_ids", ids);
	json_object_set_new(data, "count", json_integer(n));
	json_object_set_new(data, "requested", json_integer(want));
	json_object_set_new(data, "partial", json_boolean(n < want));
	pv_result_ok(out, data);
}

/* The instance_ids parameter: an array of strings, or NULL when absent. */
static int get_ids(const pv_operation *op, json_t **ids, pv_result *out, bool required)
{
	*ids = op->params ? json_object_get(op->params, "instance_ids") : NULL;
	if (!*ids && !required)
		return 0;
	size_t i;
	json_t *v;
	if (!json_is_array(*ids))
		goto bad;
	json_array_foreach(*ids, i, v) if (!json_is_string(v)) goto bad;
	return 0;
bad:
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
		       "parameter 'instance_ids' must be an array of instance id strings");
	return -1;
}

static void op_terminate(sim *m, const pv_operation *op, pv_result *out)
{
	json_t *ids;
	if (get_ids(op, &ids, out, true) < 0)
		return;
	json_t *done = json_array(), *missing = json_array();
	size_t i;
	json_t *v;
	pthread_mutex_lock(&m->lock);
	json_array_foreach(ids, i, v) {
		json_t *inst = json_object_get(m->instances, json_string_value(v));
		if (!inst) {
			json_array_append(missing, v);
			continue;
		}
		if (!json_is_true(json_object_get(inst, "terminated")) && !pv_operation_dry_run(op)) {
			json_object_set_new(inst, "terminated", json_true());
			atomic_fetch_sub(&m->live, 1);
		}
		json_array_append(done, v);
	}
	pthread_mutex_unlock(&m->lock);
	if (json_array_size(done) == 0 && json_array_size(missing) > 0) {
		pv_result_fail(out, PV_ERR_NOT_FOUND, PV_CLASS_PERMANENT,
			       "sim '%s' knows none of the %zu instance ids", m->base.name,
			       json_array_size(missing));
		pv_result_meta_set(out, "not_found", missing);
		json_decref(done);
		return;
	}
	pv_result_ok(out, json_pack("{s:o, s:o, s:b}", "terminated", done, "not_found", missing,
				    "dry_run", pv_operation_dry_run(op)));
}

static void op_status(sim *m, const pv_operation *op, pv_result *out, bool describe)
{
	json_t *ids = NULL;
	if (!describe && get_ids(op, &ids, out, false) < 0)
		return;
	const char *req = describe && op->params
				  ? json_string_value(json_object_get(op->params, "request_id"))
				  : NULL;
	json_t *list = json_array(), *missing = json_array();
	uint64_t now = pv_clock_now(m->clock);
	pthread_mutex_lock(&m->lock);
	if (ids) {
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v) {
			json_t *inst = json_object_get(m->instances, json_string_value(v));
			if (inst)
				json_array_append_new(list, instance_view(m, inst, now));
			else
				json_array_append(missing, v);
		}
	} else {
		const char *id;
		json_t *inst;
		json_object_foreach(m->instances, id, inst) {
			const char *r = json_string_value(json_object_get(inst, "request_id"));
			if (!req || (r && strcmp(r, req) == 0))
				json_array_append_new(list, instance_view(m, inst, now));
		}
	}
	pthread_mutex_unlock(&m->lock);
	pv_result_ok(out, json_pack("{s:o, s:o}", "instances", list, "not_found", missing));
}

static void op_validate(sim *m, const pv_operation *op, pv_result *out)
{
	json_t *p = op->params;
	json_t *t = p ? json_object_get(p, "template") : NULL;
	const char *id = p ? json_string_value(json_object_get(p, "template_id")) : NULL;
	if (t) {
		if (!json_is_object(t)) {
			pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
				       "parameter 'template' must be an object");
			return;
		}
		id = json_string_value(json_object_get(t, "templateId"));
		if (!id)
			id = json_string_value(json_object_get(t, "template_id"));
		if (!id || !*id) {
			pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
				       "field 'template.templateId' is required and must be a non-empty string");
			return;
		}
		pv_result_ok(out, json_pack("{s:b, s:s}", "valid", 1, "template_id", id));
		return;
	}
	if (!id) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "give parameter 'template' (object) or 'template_id' (string)");
		return;
	}
	size_t i;
	json_t *v;
	json_array_foreach(m->templates, i, v) {
		const char *tid = json_string_value(json_object_get(v, "templateId"));
		if (tid && strcmp(tid, id) == 0) {
			pv_result_ok(out, json_pack("{s:b, s:s}", "valid", 1, "template_id", id));
			return;
		}
	}
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
		       "template '%s' is not offered by sim '%s'", id, m->base.name);
}

/* health_check's answers without latency, [unhealthy, healthy]: the same
 * two objects for every sim of the process, frozen (the result's
 * provider names the sim). A composite over zero-latency sims then merges
 * or compares one answer with itself, as it would their equal contents. */
static json_t *shared_answer[2];
static pthread_once_t shared_answer_once = PTHREAD_ONCE_INIT;

static void make_shared_answers(void)
{
	shared_answer[0] = pv_health_answer(false, "unhealthy", 0);
	shared_answer[1] = pv_health_answer(true, "healthy", 0);
	/* Never changed, never freed (frozen.h): sharing them costs no
	 * reference counting, and readers may trust them not to change. */
	pv_json_freeze(shared_answer[0]);
	pv_json_freeze(shared_answer[1]);
}

/* The health the sim knows. Without latency the answer is a shared object
 * (a reference, no allocation), so the kernel's benchmarks keep a
 * zero-latency sim's health_check as their floor. */
static void op_health(sim *m, uint64_t latency_ns, pv_result *out)
{
	int ok = atomic_load_explicit(&m->healthy, memory_order_relaxed) != 0;
	json_t *answer = latency_ns ? pv_health_answer(ok, ok ? "healthy" : "unhealthy", latency_ns)
				    : json_incref(shared_answer[ok]);
	if (!answer) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
	} else if (ok) {
		pv_result_ok(out, answer);
	} else {
		pv_result_fail(out, "UNHEALTHY", PV_CLASS_TRANSIENT, "sim '%s' is unhealthy", m->base.name);
		pv_result_meta_set(out, "health", answer);
	}
}

static int sim_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	sim *m = as_sim(s);
	if ((unsigned)op->type >= PV_OP_COUNT) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "unknown operation type %d", (int)op->type);
		return 0;
	}
	pv_counters_add(&m->calls, op->type, 1);
	if (!(m->operations & PV_OP_BIT(op->type))) {
		pv_result_fail(out, PV_ERR_OPERATION_NOT_SUPPORTED, PV_CLASS_PERMANENT,
			       "sim '%s' does not support %s", s->name, pv_op_name(op->type));
		return 0;
	}
	outcome o;
	decide(m, &o);
	if (o.latency_ns) {
		uint64_t now = pv_clock_now(m->clock);
		if (op->deadline_ns && now + o.latency_ns > op->deadline_ns) {
			pv_clock_sleep(m->clock, op->deadline_ns > now ? op->deadline_ns - now : 0);
			pv_result_fail(out, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT,
				       "sim '%s' did not answer before the deadline", s->name);
			return 0;
		}
		pv_clock_sleep(m->clock, o.latency_ns);
	}
	if (o.fail) {
		pv_result_fail(out, o.code, o.cls, "sim '%s': injected failure %s", s->name, o.code);
		return 0;
	}
	switch (op->type) {
	case PV_OP_CREATE_INSTANCES:
		op_create(m, op, out);
		break;
	case PV_OP_TERMINATE_INSTANCES:
		op_terminate(m, op, out);
		break;
	case PV_OP_GET_INSTANCE_STATUS:
		op_status(m, op, out, false);
		break;
	case PV_OP_DESCRIBE_RESOURCE_INSTANCES:
		op_status(m, op, out, true);
		break;
	case PV_OP_VALIDATE_TEMPLATE:
		op_validate(m, op, out);
		break;
	case PV_OP_GET_AVAILABLE_TEMPLATES:
		pthread_mutex_lock(&m->lock);
		pv_result_ok(out, json_pack("{s:O}", "templates", m->templates));
		pthread_mutex_unlock(&m->lock);
		break;
	case PV_OP_HEALTH_CHECK:
		op_health(m, o.latency_ns, out);
		break;
	default:
		break;
	}
	return 0;
}

static int sim_capabilities(pv_strategy *s, pv_capabilities *out)
{
	sim *m = as_sim(s);
	snprintf(out->type, sizeof out->type, "sim");
	out->operations = m->operations;
	out->features = json_deep_copy(m->features);
	int64_t live = atomic_load(&m->live);
	int64_t room = m->capacity < 0 ? -1 : (m->capacity > live ? m->capacity - live : 0);
	out->limitations = json_pack("{s:I, s:I}", "capacity", (json_int_t)m->capacity,
				     "available_capacity", (json_int_t)room);
	return 0;
}

static int sim_health(pv_strategy *s, pv_health *out)
{
	sim *m = as_sim(s);
	uint64_t t0 = pv_clock_now(m->clock);
	bool ok = atomic_load(&m->healthy);
	pv_health_set(out, ok, "sim '%s' %s", s->name, ok ? "healthy" : "unhealthy");
	out->details = json_pack("{s:I, s:I}", "live_instances", (json_int_t)atomic_load(&m->live),
				 "capacity", (json_int_t)m->capacity);
	out->checked_at_ms = pv_wall_ms();
	out->response_ns = pv_clock_now(m->clock) - t0;
	return 0;
}

static json_t *sim_stats(pv_strategy *s)
{
	sim *m = as_sim(s);
	json_t *calls = json_object();
	for (unsigned i = 0; i < PV_OP_COUNT; i++)
		json_object_set_new(calls, pv_op_name((pv_op_type)i),
				    json_integer((json_int_t)pv_counters_get(&m->calls, i)));
	return json_pack("{s:o, s:I}", "calls", calls, "live_instances", (json_int_t)atomic_load(&m->live));
}

static void sim_destroy(pv_strategy *s)
{
	sim *m = as_sim(s);
	json_decref(m->features);
	json_decref(m->templates);
	json_decref(m->instances);
	free(m->script);
	pv_counters_destroy(&m->calls);
	pthread_mutex_destroy(&m->lock);
}

static const pv_strategy_methods sim_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = sim_execute,
	.capabilities = sim_capabilities,
	.health = sim_health,
	.destroy = sim_destroy,
	.stats = sim_stats,
};

int pv_sim_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	*out = NULL;
	sim *m = pv_strategy_alloc(sizeof *m, &sim_methods, name, "sim");
	if (!m)
		return pv_error_last_code();
	pthread_mutex_init(&m->lock, NULL);
	m->clock = clock;
	m->dist = DIST_FIXED;
	snprintf(m->failure_code, sizeof m->failure_code, "%s", PV_ERR_EXECUTION_ERROR);
	m->failure_class = PV_CLASS_TRANSIENT;
	m->capacity = -1;
	atomic_init(&m->healthy, 1);
	m->operations = PV_OP_SET_ALL;
	m->features = json_pack("{s:b}", "instance_management", 1);
	m->templates = json_pack("[{s:s, s:i, s:{s:[s,s], s:[s,s], s:[s,s]}}]", "templateId", "sim-small",
				 "maxNumber", -1, "attributes", "type", "String", "X86_64", "ncpus",
				 "Numeric", "2", "nram", "Numeric", "4096");
	m->instances = json_object();
	pthread_once(&shared_answer_once, make_shared_answers);
	m->nonce = (uint32_t)pv_mix64(pv_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)m);
	pv_rng_seed(&m->rng, 1);
	bool made = m->features && m->templates && m->instances && shared_answer[0] &&
		    shared_answer[1] && pv_counters_init(&m->calls) == 0;
	int rc = made ? parse_config(m, config) : pv_error_set(PV_ENOMEM, "out of memory");
	if (rc < 0) {
		pv_strategy_unref(&m->base);
		return rc;
	}
	*out = &m->base;
	return 0;
}

void pv_sim_set_failure_rate(pv_strategy *s, double rate) { atomic_store(&as_sim(s)->failure_rate, rate); }
void pv_sim_set_latency_ms(pv_strategy *s, double mean_ms) { atomic_store(&as_sim(s)->mean_ns, mean_ms * 1e6); }
void pv_sim_set_healthy(pv_strategy *s, int healthy) { atomic_store(&as_sim(s)->healthy, healthy != 0); }
int64_t pv_sim_live_instances(pv_strategy *s) { return atomic_load(&as_sim(s)->live); }

uint64_t pv_sim_calls(pv_strategy *s, pv_op_type type)
{
	sim *m = as_sim(s);
	if ((unsigned)type < PV_OP_COUNT)
		return pv_counters_get(&m->calls, type);
	uint64_t total = 0;
	for (unsigned i = 0; i < PV_OP_COUNT; i++)
		total += pv_counters_get(&m->calls, i);
	return total;
}
