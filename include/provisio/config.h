/*
 * config.h - configuration: JSON files that build the strategy graph.
 *
 * Three input formats are accepted and normalised into one explicit graph
 * (docs/configuration.md): the spec's `provider` block format, provisio's own
 * `providers` + `strategies` format, and the Python original's
 * `provider.providers[]` list. Loading expands ${VAR} / ${VAR:-default} in
 * every string, deep-merges an environment overlay, validates everything at
 * once (each problem with its JSON path), and builds strategies through
 * provider factories registered by type name.
 */
#ifndef PROVISIO_CONFIG_H
#define PROVISIO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "clock.h"
#include "context.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- diagnostics ---------------------------------------------------------- */

typedef enum pv_diag_level { PV_DIAG_WARNING, PV_DIAG_ERROR } pv_diag_level;

typedef struct pv_diag {
	pv_diag_level level;
	char *path;    /* JSON path, e.g. "provider.fallback.mode" */
	char *message; /* what is wrong and what is allowed; never a secret */
} pv_diag;

typedef struct pv_diags {
	pv_diag *items;
	size_t n, cap;
	size_t errors;
} pv_diags;

void pv_diags_init(pv_diags *d);
void pv_diags_clear(pv_diags *d);
void pv_diags_add(pv_diags *d, pv_diag_level level, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* One line per diagnostic: "error: PATH: MESSAGE". Caller frees. */
char *pv_diags_format(const pv_diags *d);
/* [{"level": "error", "path": ..., "message": ...}]. New reference. */
json_t *pv_diags_to_json(const pv_diags *d);

/* ---- provider factories ------------------------------------------------------ */

/* Builds a provider strategy of one type from its config block. Returns 0
 * or PV_E* with pv_error_set naming the field. */
typedef int (*pv_provider_factory)(pv_strategy **out, const char *name, const json_t *config,
				   const pv_clock *clock);

/* Registers a factory for `type` (replacing one of the same type). The
 * built-in types (sim, local, and those of provisio's modules: libvirt,
 * aws, rest) are always there. */
int pv_provider_register_type(const char *type, pv_provider_factory factory);
/* Whether `type` is registered or built in; loads nothing. */
bool pv_provider_type_known(const char *type);
/* The factory of `type`, loading the module that has it on first use
 * (util/module.h); NULL with pv_error_last saying why (an unknown type, a
 * module missing or failing to load). */
pv_provider_factory pv_provider_factory_find(const char *type);
/* Known type names, new JSON array. */
json_t *pv_provider_types(void);

/*
 * Out-of-tree providers: a shared object exporting
 *     int provisio_plugin_register(int abi_version);
 * which checks abi_version == PV_PLUGIN_ABI_VERSION and calls
 * pv_provider_register_type for its types. 0 or PV_E*.
 */
#define PV_PLUGIN_ABI_VERSION 1
#define PV_PLUGIN_SYMBOL "provisio_plugin_register"
int pv_plugin_load(const char *path);

/* ---- loading ------------------------------------------------------------------ */

typedef struct pv_config_options {
	const char *path;     /* explicit file; NULL = search (see pv_config_find) */
	const char *env_name; /* overlay <dir>/<env_name>.json; NULL = $PROVISIO_ENV */
	bool strict;          /* unknown keys are errors, not warnings */
	const pv_clock *clock;
} pv_config_options;

/*
 * The file to load: `explicit_path`, else $PROVISIO_CONFIG, else
 * $HF_PROVIDER_CONFDIR/provisio.json, else ./config/provisio.json (the first
 * that exists after the explicit ones). Caller frees. NULL (PV_ENOTFOUND)
 * when none exists.
 */
char *pv_config_find(const char *explicit_path);

/*
 * Reads the file, merges the overlay, expands variables. `out` receives the
 * effective document (new reference) even when there are errors in `diags`.
 * Returns 0, or PV_EINVAL when diags has errors, PV_EIO when the file
 * cannot be read or parsed (the message says where).
 */
int pv_config_load_file(const pv_config_options *opts, json_t **out, pv_diags *diags);

/* ${VAR} / ${VAR:-default} expansion of every string in `doc`, in place.
 * Unset variables without default are errors naming the variable and path. */
void pv_config_expand(json_t *doc, pv_diags *diags);

/* Deep merge: objects merged key by key, everything else replaced. */
void pv_config_merge(json_t *base, const json_t *overlay);

/* A copy of `doc` with secrets (api_key, secret_access_key, password,
 * token, ...) replaced by "***". New reference. */
json_t *pv_config_redact(const json_t *doc);
/* Whether a key names a secret. */
bool pv_config_is_secret_key(const char *key);
/* True when `value` is a URL with a password in its user info
 * ("postgresql://user:PASSWORD@host/db"): a secret whatever its key. */
bool pv_config_url_has_password(const char *value);

/* ---- the graph --------------------------------------------------------------------- */

/*
 * Normalises any accepted format into the explicit graph:
 *   {"providers": [{name, type, enabled, priority, weight, config}],
 *    "strategies": [{name, kind, children | primary + fallbacks, config}],
 *    "default_strategy": NAME, "context": {selection_policy, selection_criteria,
 *    health_check_interval_seconds, metrics_collection_enabled}, "plugins": [...]}
 * and validates it. New reference (NULL when the document is not an object).
 */
json_t *pv_config_normalize(const json_t *doc, bool strict, pv_diags *diags);

/* GET /api/v1/providers's document: pv_context_to_json(ctx) with each
 * strategy's "kind" (provider, fallback, ...) and "children" from `graph`
 * (pv_config_normalize's). New reference. config/view.c. */
json_t *pv_config_providers_view(pv_context *ctx, const json_t *graph);

/* The providers under each strategy of a normalised graph (a provider is
 * its own): {"fallback-1": ["aws-east", "sim"], "aws-east": ["aws-east"]}.
 * New reference. */
json_t *pv_config_leaves(const json_t *graph);

/* Builds every strategy of a normalised, valid graph and registers them in
 * a new context; the default strategy becomes current. 0 or PV_E*. */
int pv_config_build(const json_t *graph, const pv_clock *clock, pv_context **out,
		    pv_diags *diags);

/*
 * Runtime updates of a live graph (the spec's "Runtime Configuration
 * Updates"), validated like the file before anything changes:
 *   {"selection_policy": "least_connections",
 *    "selection_criteria": {"min_success_rate": 99, ...},
 *    "weights": {"<balancer or composite>": {"<child>": 0.8, ...},
 *                "context": {"<strategy>": 2.0}}}
 * Either everything applies or nothing does (PV_EINVAL with diags).
 */
int pv_config_update(pv_context *ctx, const json_t *update, pv_diags *diags);

/* Everything in one call: find, load, normalise, validate, build. On
 * failure `diags` says why (every problem found). */
int pv_config_open(const pv_config_options *opts, pv_context **ctx, json_t **graph,
		   pv_diags *diags);

#ifdef __cplusplus
}
#endif
#endif
