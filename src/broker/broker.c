/*
 * broker.c - the broker object: opening (from objects or from files), the
 * templates, kernel state persisted around each process, and small helpers
 * the request code shares.
 */
#include <dirent.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "config/keys.h"
#include "broker/broker_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"
#include "util/paths.h"

int64_t pv_broker_now_ms(void) { return pv_wall_ms(); }

void pv_broker_new_id(const char *prefix, char *buf, size_t size)
{
	unsigned char u[16];
	if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u) {
		/* no entropy source: time and pid still make collisions unlikely */
		uint64_t t = pv_now_ns() ^ ((uint64_t)getpid() << 32), w = (uint64_t)pv_wall_ms();
		memcpy(u, &t, 8);
		memcpy(u + 8, &w, 8);
	}
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(buf, size,
		 "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", prefix,
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

void pv_broker_run(pv_broker *b, const char *name, pv_op_type type, json_t *params, pv_result *out)
{
	pv_operation op = {.type = type, .params = params};
	op.deadline_ns = pv_clock_now(b->clock) + b->set.call_timeout_ms * PV_NS_PER_MS;
	b->calls++;
	pv_context_execute_on(b->ctx, name, &op, out);
	json_decref(params);
}

const char *pv_broker_hf_status(pv_request_state s)
{
	switch (s) {
	case PV_REQ_COMPLETE:
		return "complete";
	case PV_REQ_COMPLETE_WITH_ERROR:
	case PV_REQ_FAILED:
		return "complete_with_error";
	default:
		return "running";
	}
}

/* ---- settings ------------------------------------------------------------- */

static void apply_defaults(pv_broker_settings *s)
{
	if (s->status_max_age_seconds == 0)
		s->status_max_age_seconds = 2;
	if (s->pending_timeout_seconds <= 0)
		s->pending_timeout_seconds = 600;
	if (s->creating_timeout_seconds <= 0)
		s->creating_timeout_seconds = 300;
	if (s->grace_period_seconds == 0)
		s->grace_period_seconds = 120;
	else if (s->grace_period_seconds < 0)
		s->grace_period_seconds = 0;
	if (s->max_create_rounds == 0)
		s->max_create_rounds = 8;
	if (s->call_timeout_ms == 0)
		s->call_timeout_ms = 60000;
}

const pv_broker_settings *pv_broker_get_settings(pv_broker *b) { return &b->set; }

/* ---- templates ------------------------------------------------------------ */

static int set_templates(pv_broker *b, const json_t *doc)
{
	const json_t *list = json_is_array(doc) ? doc : json_object_get(doc, "templates");
	if (!json_is_array(list))
		return pv_error_set(PV_EINVAL, "templates: expected {\"templates\": [...]}");
	size_t i, j;
	json_t *t, *u;
	json_array_foreach(list, i, t) {
		const char *id = json_string_value(json_object_get(t, "templateId"));
		json_t *max = json_object_get(t, "maxNumber");
		json_t *prov = json_object_get(t, "provider");
		if (!json_is_object(t) || !id || !*id)
			return pv_error_set(PV_EINVAL, "templates[%zu].templateId: must be a non-empty string", i);
		if (max && (!json_is_integer(max) || json_integer_value(max) < -1))
			return pv_error_set(PV_EINVAL, "templates[%zu].maxNumber: must be an integer >= 0, "
						       "or -1 for unlimited", i);
		if (prov && !json_is_string(prov))
			return pv_error_set(PV_EINVAL, "templates[%zu].provider: must be a strategy name", i);
		json_array_foreach(list, j, u) if (j < i && strcmp(id, json_string_value(json_object_get(u, "templateId"))) == 0)
			return pv_error_set(PV_EINVAL, "templates[%zu].templateId: '%s' is defined twice", i, id);
	}
	b->templates = json_deep_copy(list);
	return b->templates ? 0 : pv_error_set(PV_ENOMEM, "out of memory");
}

const json_t *pv_broker_templates(pv_broker *b) { return b->templates; }
const char *pv_broker_templates_path(pv_broker *b) { return b->templates_path ? b->templates_path : ""; }
pv_context *pv_broker_context(pv_broker *b) { return b->ctx; }

const char *const *pv_broker_disabled(pv_broker *b, size_t *n)
{
	*n = b->n_disabled;
	return (const char *const *)b->disabled;
}
pv_store *pv_broker_store(pv_broker *b) { return b->store; }

const json_t *pv_broker_template(pv_broker *b, const char *template_id)
{
	size_t i;
	json_t *t;
	json_array_foreach(b->templates, i, t) {
		const char *id = json_string_value(json_object_get(t, "templateId"));
		if (id && template_id && strcmp(id, template_id) == 0)
			return t;
	}
	return NULL;
}

int pv_template_strategy(pv_context *ctx, const json_t *tmpl, char *buf, size_t size)
{
	const char *p = json_string_value(json_object_get(tmpl, "provider"));
	if (p && *p) {
		snprintf(buf, size, "%s", p);
		return 0;
	}
	return pv_context_current(ctx, buf, size);
}

int pv_broker_template_strategy(pv_broker *b, const json_t *tmpl, char *buf, size_t size)
{
	return pv_template_strategy(b->ctx, tmpl, buf, size);
}

static bool is_disabled(const pv_broker *b, const char *name)
{
	for (size_t i = 0; i < b->n_disabled; i++)
		if (strcmp(b->disabled[i], name) == 0)
			return true;
	return false;
}

int pv_broker_choose_strategy(pv_broker *b, const json_t *tmpl, char *buf, size_t size)
{
	const char *id = json_string_value(json_object_get(tmpl, "templateId"));
	const char *p = json_string_value(json_object_get(tmpl, "provider"));
	if (p && *p) {
		pv_strategy *s = pv_context_strategy(b->ctx, p);
		pv_strategy_unref(s);
		if (!s && is_disabled(b, p))
			return pv_error_set(PV_EINVAL, "template '%s': provider '%s' is disabled (\"enabled\": "
						       "false in the configuration)", id, p);
		if (!s)
			return pv_error_set(PV_EINVAL, "template '%s': provider '%s' is not configured", id, p);
		snprintf(buf, size, "%s", p);
		return 0;
	}
	if (pv_context_picks_read_health(b->ctx))
		pv_broker_learn_health(b);
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES};
	if (pv_context_select(b->ctx, &op, buf, size) < 0)
		return pv_error_set(PV_EINVAL, "template '%s' names no provider, and %s", id,
				    pv_context_policy(b->ctx) == PV_POLICY_NONE
					    ? "no default strategy is configured"
					    : "the selection policy finds no strategy that can create machines now");
	return 0;
}

int pv_broker_available(pv_broker *b, const char *template_id, int64_t *out)
{
	const json_t *t = pv_broker_template(b, template_id);
	if (!t)
		return pv_error_set(PV_ENOTFOUND, "no template '%s'", template_id);
	json_t *max = json_object_get(t, "maxNumber");
	int64_t m = max ? json_integer_value(max) : -1;
	if (m < 0) {
		*out = INT64_MAX;
		return 0;
	}
	int64_t used = 0;
	int rc = pv_store_template_in_use(b->store, template_id, &used);
	*out = used >= m ? 0 : m - used;
	return rc;
}

/* ---- kernel state ----------------------------------------------------------- */

static void state_key(const pv_strategy *s, char *buf, size_t size)
{
	snprintf(buf, size, "state/%s", pv_strategy_name(s));
}

/* Health records: one per strategy, written by whoever checked last. */
static void health_key(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "health/%s", name);
}

/* The stored health record of `name`; 0, or < 0 when there is none or it
 * is unreadable (an unreadable one is logged and treated as none). */
static int read_health(pv_broker *b, const char *name, pv_health *out)
{
	char key[128], *text = NULL;
	health_key(name, key, sizeof key);
	memset(out, 0, sizeof *out);
	int rc = pv_store_kv_get(b->store, key, &text);
	if (rc < 0)
		return rc;
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	rc = pv_health_from_json(j, out);
	json_decref(j);
	if (rc < 0)
		pv_log(PV_LOG_WARN, "broker: stored health of '%s' ignored: %s", name, pv_error_last());
	return rc;
}

static persisted *persisted_of(pv_broker *b, const char *name)
{
	for (size_t i = 0; i < b->n_state; i++)
		if (strcmp(pv_strategy_name(b->state[i].s), name) == 0)
			return &b->state[i];
	return NULL;
}

void pv_broker_learn_health(pv_broker *b)
{
	if (b->health_learned || !b->store)
		return;
	b->health_learned = true;
	json_t *names = pv_context_names(b->ctx);
	if (pv_store_begin(b->store, false) == 0) {
		size_t i;
		json_t *nm;
		json_array_foreach(names, i, nm) {
			pv_health h;
			if (read_health(b, json_string_value(nm), &h) < 0)
				continue;
			pv_context_put_health(b->ctx, json_string_value(nm), &h);
			persisted *p = persisted_of(b, json_string_value(nm));
			if (p)
				p->health_ms = h.checked_at_ms;
			pv_health_clear(&h);
		}
		pv_store_commit(b->store);
	}
	json_decref(names);
}

/* Writes the health this process knows that is newer than the store's
 * record (write transaction open); how many it wrote, or PV_E*. */
static int save_health(pv_broker *b, int64_t *saved_ms)
{
	int written = 0;
	for (size_t i = 0; i < b->n_state; i++) {
		const char *name = pv_strategy_name(b->state[i].s);
		pv_health mine, stored = {0};
		saved_ms[i] = 0;
		if (pv_context_cached_health(b->ctx, name, &mine) < 0)
			continue;
		bool newer = mine.checked_at_ms > b->state[i].health_ms &&
			     (read_health(b, name, &stored) < 0 || stored.checked_at_ms < mine.checked_at_ms);
		pv_health_clear(&stored);
		int rc = 0;
		if (newer) {
			json_t *j = pv_health_to_json(&mine);
			char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS), key[128];
			json_decref(j);
			health_key(name, key, sizeof key);
			rc = text ? pv_store_kv_put(b->store, key, text) : pv_error_set(PV_ENOMEM, "out of memory");
			free(text);
			saved_ms[i] = mine.checked_at_ms;
			written++;
		}
		pv_health_clear(&mine);
		if (rc < 0)
			return rc;
	}
	return written;
}

/* Reads every strategy's saved state in one read transaction. A state the
 * strategy refuses is logged and ignored: a stale breaker is not worth
 * failing a Host Factory call for. */
static int load_state(pv_broker *b)
{
	if (!b->n_state)
		return 0;
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < b->n_state; i++) {
		char key[128], *text = NULL;
		state_key(b->state[i].s, key, sizeof key);
		if (pv_store_kv_get(b->store, key, &text) < 0)
			continue;
		json_t *j = json_loads(text, 0, NULL);
		if (j && pv_strategy_state_load(b->state[i].s, j) < 0)
			pv_log(PV_LOG_WARN, "broker: state of '%s' not loaded: %s",
			       pv_strategy_name(b->state[i].s), pv_error_last());
		json_decref(j);
		b->state[i].loaded = text;
	}
	pv_store_commit(b->store);
	return 0;
}

/* Writes the states that changed since loading (or the last save), in one
 * transaction. The last process to save wins: breakers see every call's
 * outcome within a process, and the freshest view across processes. */
static int save_state(pv_broker *b)
{
	size_t n = b->n_state, changed = 0;
	/* every strategy's, however many */
	char **texts = calloc(n, sizeof *texts);
	int64_t *health_ms = calloc(n, sizeof *health_ms);
	if (!texts || !health_ms) {
		free(texts);
		free(health_ms);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *j = pv_strategy_state_save(b->state[i].s);
		texts[i] = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(j);
		if (texts[i] && b->state[i].loaded && strcmp(texts[i], b->state[i].loaded) == 0) {
			free(texts[i]);
			texts[i] = NULL;
		}
		changed += texts[i] != NULL;
		pv_health h;
		if (pv_context_cached_health(b->ctx, pv_strategy_name(b->state[i].s), &h) == 0)
			changed += h.checked_at_ms > b->state[i].health_ms;
		pv_health_clear(&h);
	}
	int rc = 0;
	if (changed && (rc = pv_store_begin(b->store, true)) == 0) {
		for (size_t i = 0; i < n && rc == 0; i++) {
			char key[128];
			state_key(b->state[i].s, key, sizeof key);
			if (texts[i])
				rc = pv_store_kv_put(b->store, key, texts[i]);
		}
		if (rc == 0 && (rc = save_health(b, health_ms)) >= 0)
			rc = pv_store_commit(b->store);
		if (rc < 0) {
			pv_store_rollback(b->store);
			pv_log(PV_LOG_WARN, "broker: kernel state not saved: %s", pv_error_last());
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && texts[i]) {
			/* saved: the baseline of the next save */
			free(b->state[i].loaded);
			b->state[i].loaded = texts[i];
		} else {
			free(texts[i]);
		}
		if (rc == 0 && health_ms[i])
			b->state[i].health_ms = health_ms[i];
	}
	free(texts);
	free(health_ms);
	return rc;
}

int pv_broker_save_state(pv_broker *b)
{
	return b && b->store && b->n_state ? save_state(b) : 0;
}

/* ---- life ------------------------------------------------------------------- */

static int copy_names(char ***dst, size_t *n_dst, const char *const *names, size_t n)
{
	*dst = calloc(n + 1, sizeof **dst);
	if (!*dst)
		return pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!((*dst)[(*n_dst)++] = strdup(names[i])))
			return pv_error_set(PV_ENOMEM, "out of memory");
	return 0;
}

int pv_broker_new(pv_broker **out, const pv_broker_setup *setup)
{
	*out = NULL;
	if (!setup || !setup->ctx || !setup->store || !setup->templates)
		return pv_error_set(PV_EINVAL, "broker: ctx, store and templates are required");
	pv_broker *b = calloc(1, sizeof *b);
	if (!b)
		return pv_error_set(PV_ENOMEM, "out of memory");
	b->ctx = setup->ctx;
	b->store = setup->store;
	b->clock = setup->clock;
	b->set = setup->settings;
	pv_broker_this_node(b->node, sizeof b->node);
	apply_defaults(&b->set);
	int rc = set_templates(b, setup->templates);
	if (rc == 0)
		rc = copy_names(&b->providers, &b->n_providers, setup->providers, setup->n_providers);
	if (rc == 0)
		rc = copy_names(&b->disabled, &b->n_disabled, setup->disabled, setup->n_disabled);
	if (rc == 0 && setup->leaves && !(b->leaves = json_deep_copy(setup->leaves)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	if (rc == 0 && setup->n_strategies &&
	    !(b->state = calloc(setup->n_strategies, sizeof *b->state)))
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < setup->n_strategies; i++)
		b->state[b->n_state++].s = pv_strategy_ref(setup->strategies[i]);
	b->limiter = pv_limiter_ref(setup->limiter);
	for (size_t i = 0; rc == 0 && b->limiter && i < setup->n_strategies; i++)
		rc = pv_strategy_set_limiter(setup->strategies[i], b->limiter);
	if (rc == 0)
		rc = load_state(b);
	if (rc < 0) {
		pv_broker_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

void pv_broker_close(pv_broker *b)
{
	if (!b)
		return;
	/* A process that called no strategy changed no kernel state (only the
	 * clock moved) and checked no health: a status read stays a read, with
	 * no write transaction. */
	if (b->store && b->n_state && (b->calls || b->health_learned))
		(void)save_state(b);
	for (size_t i = 0; i < b->n_state; i++) {
		pv_strategy_unref(b->state[i].s);
		free(b->state[i].loaded);
	}
	free(b->state);
	pv_limiter_unref(b->limiter);
	json_decref(b->leaves);
	for (size_t i = 0; i < b->n_providers; i++)
		free(b->providers[i]);
	free(b->providers);
	for (size_t i = 0; i < b->n_disabled; i++)
		free(b->disabled[i]);
	free(b->disabled);
	json_decref(b->templates);
	json_decref(b->refused);
	free(b->templates_path);
	if (b->owns_store)
		pv_store_close(b->store);
	pv_graph_free(b->graph);
	free(b);
}

int pv_broker_new_like(pv_broker **out, pv_broker *model, pv_store *store)
{
	pv_broker_setup setup = {.ctx = model->ctx, .store = store, .templates = model->templates,
				 .settings = model->set, .clock = model->clock,
				 .providers = (const char *const *)model->providers,
				 .n_providers = model->n_providers, .leaves = model->leaves,
				 .disabled = (const char *const *)model->disabled, .n_disabled = model->n_disabled};
	int rc = pv_broker_new(out, &setup);
	/* the model's verdict on its templates, not checked (and logged) again */
	if (rc == 0 && model->refused && !((*out)->refused = json_deep_copy(model->refused))) {
		pv_broker_close(*out);
		*out = NULL;
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	}
	return rc;
}

bool pv_broker_leaf_of(const pv_broker *b, const char *strategy, const char *provider)
{
	json_t *leaves = b->leaves ? json_object_get(b->leaves, strategy) : NULL;
	if (!leaves)
		return true; /* unknown: any provider may */
	size_t i;
	json_t *v;
	json_array_foreach(leaves, i, v) if (strcmp(json_string_value(v), provider) == 0) return true;
	return false;
}

/* ---- opening from files -------------------------------------------------------- */

static char *existing(const char *path)
{
	return path && access(path, R_OK) == 0 ? strdup(path) : NULL;
}

/* The first *_templates.json in dir (sorted by name, so the choice is stable). */
static char *glob_templates(const char *dir)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, NULL, alphasort);
	char *found = NULL;
	for (int i = 0; i < n; i++) {
		if (!found && fnmatch("*_templates.json", list[i]->d_name, 0) == 0) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
			found = existing(path);
		}
		free(list[i]);
	}
	free(list);
	return found;
}

static char *find_templates(const char *explicit_path, const json_t *broker_cfg)
{
	if (explicit_path)
		return strdup(explicit_path);
	const char *cfg = json_string_value(json_object_get(broker_cfg, "templates_file"));
	if (cfg)
		return strdup(cfg);
	if (getenv("PROVISIO_TEMPLATES"))
		return strdup(getenv("PROVISIO_TEMPLATES"));
	const char *dir = getenv("HF_PROVIDER_CONFDIR");
	if (dir && *dir) {
		static const char *const names[] = {"provisio_templates.json", "templates.json"};
		for (size_t i = 0; i < 2; i++) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			char *p = existing(path);
			if (p)
				return p;
		}
		char *p = glob_templates(dir);
		if (p)
			return p;
	}
	if (pv_paths_installed(NULL)) { /* next to the installed configuration */
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/templates.json", pv_paths_config_dir());
		return strdup(path);
	}
	return strdup("config/templates.json");
}

int pv_broker_store_config(const char *location, const json_t *store_block, char *out, size_t size,
			   pv_store_options *opts)
{
	*opts = (pv_store_options){0};
	if (store_block && !json_is_object(store_block))
		return pv_error_set(PV_EINVAL, "store: must be an object");
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)store_block, key, v) {
		int k = 0;
		while (pv_config_keys_store[k] && strcmp(pv_config_keys_store[k], key) != 0)
			k++;
		if (!pv_config_keys_store[k])
			return pv_error_set(PV_EINVAL, "store.%s: unknown key (known: url, path, busy_timeout_ms)",
					    key);
	}
	const json_t *url = json_object_get(store_block, "url");
	const json_t *path = json_object_get(store_block, "path");
	const json_t *bt = json_object_get(store_block, "busy_timeout_ms");
	/* the URL may hold a password: never quoted back */
	if (url && (!json_is_string(url) || !pv_store_location_is_postgres(json_string_value(url))))
		return pv_error_set(PV_EINVAL, "store.url: must be a postgresql:// (or postgres://) URL");
	if (path && (!json_is_string(path) || !*json_string_value(path)))
		return pv_error_set(PV_EINVAL, "store.path: must be a non-empty file path");
	if (bt && (!json_is_integer(bt) || json_integer_value(bt) < 1 || json_integer_value(bt) > 3600000))
		return pv_error_set(PV_EINVAL, "store.busy_timeout_ms: must be an integer from 1 to 3600000");
	opts->busy_timeout_ms = (int)json_integer_value(bt);
	const char *dir = getenv("HF_PROVIDER_WORKDIR");
	int n = location ? snprintf(out, size, "%s", location)
	      : url      ? snprintf(out, size, "%s", json_string_value(url))
	      : path     ? snprintf(out, size, "%s", json_string_value(path))
			 : snprintf(out, size, "%s/provisio.db", dir && *dir ? dir : pv_paths_state_dir());
	if (n < 0 || (size_t)n >= size)
		return pv_error_set(PV_EINVAL, "store: the location is longer than %zu bytes", size - 1);
	return 0;
}

static double num(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static int read_settings(const json_t *cfg, pv_broker_settings *s)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)cfg, key, v) {
		bool known = false;
		for (const char *const *k = pv_config_keys_broker; *k; k++)
			known |= strcmp(*k, key) == 0;
		if (!known)
			return pv_error_set(PV_EINVAL, "broker.%s: unknown key (valid: status_max_age_seconds, "
						       "pending_timeout_seconds, creating_timeout_seconds, "
						       "grace_period_seconds, max_create_rounds, call_timeout_ms, "
						       "templates_file)", key);
		if (strcmp(key, "templates_file") && !json_is_number(v))
			return pv_error_set(PV_EINVAL, "broker.%s: must be a number", key);
	}
	s->status_max_age_seconds = num(cfg, "status_max_age_seconds");
	s->pending_timeout_seconds = num(cfg, "pending_timeout_seconds");
	s->creating_timeout_seconds = num(cfg, "creating_timeout_seconds");
	s->grace_period_seconds = (int64_t)num(cfg, "grace_period_seconds");
	double rounds = num(cfg, "max_create_rounds"), timeout = num(cfg, "call_timeout_ms");
	if (rounds < 0 || rounds > 1000)
		return pv_error_set(PV_EINVAL, "broker.max_create_rounds: must be 1..1000");
	if (timeout < 0)
		return pv_error_set(PV_EINVAL, "broker.call_timeout_ms: must be >= 0");
	s->max_create_rounds = (unsigned)rounds;
	s->call_timeout_ms = (uint64_t)timeout;
	return 0;
}

static int load_json_file(const char *path, const char *what, json_t **out)
{
	json_error_t err;
	*out = json_load_file(path, 0, &err);
	if (!*out)
		return pv_error_set(PV_EIO, "%s %s: %s (line %d)", what, path, err.text, err.line);
	return 0;
}

/* Builds a broker from the opened graph, store and templates (taking them). */
static int assemble(pv_broker **out, pv_graph *g, pv_store *st, json_t *templates,
		    const pv_broker_settings *set, const pv_clock *clock, pv_limiter *limiter,
		    const json_t *leaves)
{
	/* every strategy of the graph: a leaf left out would be one crash
	 * recovery never asks for the machines it made */
	pv_strategy **all = calloc(g->n + 1, sizeof *all);
	const char **providers = calloc(g->n + 1, sizeof *providers);
	size_t n = 0, nl = 0;
	for (size_t i = 0; all && providers && i < g->n; i++) {
		all[n++] = g->items[i].s;
		if (g->items[i].provider)
			providers[nl++] = g->items[i].name;
	}
	pv_broker_setup setup = {.ctx = g->ctx, .strategies = all, .n_strategies = n,
				 .providers = providers, .n_providers = nl, .store = st,
				 .templates = templates, .settings = *set, .clock = clock,
				 .disabled = (const char *const *)g->disabled, .n_disabled = g->n_disabled,
				 .limiter = limiter, .leaves = leaves};
	int rc = all && providers ? pv_broker_new(out, &setup) : pv_error_set(PV_ENOMEM, "out of memory");
	free(all);
	free(providers);
	json_decref(templates);
	if (rc < 0) {
		pv_store_close(st);
		pv_graph_free(g);
		return rc;
	}
	(*out)->graph = g;
	(*out)->owns_store = true;
	return 0;
}

int pv_broker_open(pv_broker **out, const pv_broker_open_options *opts, pv_diags *diags)
{
	*out = NULL;
	pv_broker_open_options none = {0};
	if (!opts)
		opts = &none;
	json_t *doc = NULL, *graph = NULL, *templates = NULL;
	pv_graph *g = NULL;
	pv_store *st = NULL;
	pv_limiter *limiter = NULL;
	json_t *leaves = NULL;
	char *tpath = NULL;
	pv_broker_settings set = {0};
	int rc = pv_config_load_file(&opts->config, &doc, diags);
	if (rc == 0) {
		graph = pv_config_normalize(doc, opts->config.strict, diags);
		rc = graph && !diags->errors ? 0 : pv_error_set(PV_EINVAL, "%zu configuration error(s)",
								diags->errors);
	}
	if (rc == 0)
		rc = read_settings(json_object_get(doc, "broker"), &set);
	if (rc == 0)
		rc = pv_graph_build(graph, opts->config.clock, &g, diags);
	if (rc == 0) {
		tpath = find_templates(opts->templates_path, json_object_get(doc, "broker"));
		rc = tpath ? load_json_file(tpath, "templates file", &templates)
			   : pv_error_set(PV_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		char where[PV_STORE_LOCATION_MAX];
		pv_store_options so;
		rc = pv_broker_store_config(opts->store_path, json_object_get(doc, "store"), where,
					    sizeof where, &so);
		if (rc == 0)
			rc = pv_store_open(&st, where, &so);
		/* the strategies' buckets on the same store, so every process on
		 * it spends one API budget */
		if (rc == 0)
			rc = pv_broker_limiter_new(&limiter, where, &so);
	}
	if (rc == 0)
		leaves = pv_config_leaves(graph);
	json_decref(doc);
	json_decref(graph);
	if (rc < 0) {
		json_decref(templates);
		pv_store_close(st);
		pv_graph_free(g);
		free(tpath);
		return rc;
	}
	rc = assemble(out, g, st, templates, &set, opts->config.clock, limiter, leaves);
	pv_limiter_unref(limiter); /* the broker and the strategies hold theirs */
	json_decref(leaves);
	if (rc == 0) {
		(*out)->templates_path = tpath;
		pv_broker_refuse_templates(*out);
	} else {
		free(tpath);
	}
	return rc;
}

int pv_broker_validate_templates_file(const pv_config_options *cfg, pv_context *ctx, const json_t *graph,
				      pv_diags *diags, char **path_out)
{
	pv_diags scratch; /* the configuration's own problems are the caller's */
	pv_diags_init(&scratch);
	json_t *doc = NULL, *templates = NULL;
	pv_config_load_file(cfg, &doc, &scratch);
	pv_diags_clear(&scratch);
	const json_t *broker_cfg = json_object_get(doc, "broker");
	bool named = json_object_get(broker_cfg, "templates_file") || getenv("PROVISIO_TEMPLATES");
	char *path = find_templates(NULL, broker_cfg);
	json_decref(doc);
	*path_out = path;
	if (!path)
		return pv_error_set(PV_ENOMEM, "out of memory");
	if (!named && access(path, F_OK) != 0) {
		/* a configuration used without Host Factory has none */
		pv_diags_add(diags, PV_DIAG_WARNING, "templates", "no templates file (looked for %s): not checked", path);
		return 0;
	}
	int rc = load_json_file(path, "templates file", &templates);
	if (rc == 0) {
		/* the structure pv_broker_new checks, then the providers' checks */
		pv_broker probe = {0};
		rc = set_templates(&probe, templates);
		if (rc == 0) {
			json_t *leaves = pv_config_leaves(graph);
			json_decref(pv_broker_check_templates(ctx, leaves, probe.templates, PV_DIAG_ERROR, diags));
			json_decref(leaves);
		}
		json_decref(probe.templates);
	}
	if (rc < 0)
		pv_diags_add(diags, PV_DIAG_ERROR, "templates", "%s", pv_error_last());
	json_decref(templates);
	return rc;
}
