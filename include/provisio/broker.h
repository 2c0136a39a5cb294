/*
 * broker.h - templates, requests and machines: the application service
 * Host Factory drives (the spec's StrategyIntegratedApplicationService).
 *
 * A broker joins three things: the strategy graph (who provisions), the
 * store (what was asked and what exists, shared by every process) and the
 * templates (what may be asked for). Each Host Factory call is one short
 * process: open a broker, do one thing, close it. Opening loads every
 * strategy's kernel state (circuit breakers) from the store; closing saves
 * it, so a breaker that tripped in one call is still open in the next.
 *
 * Machines remember the leaf provider that created them; status and
 * termination always go back to that provider, whatever strategy (a
 * fallback, a balancer) chose it.
 *
 * With `provisio serve` running on the same store, the short processes make
 * no provider calls at all (PV_BROKER_DEFERRED): the daemon announces itself
 * with a heartbeat row, new requests and returns are queued in the store,
 * and the daemon provisions and terminates them (pv_broker_run_queue). A
 * daemon that stopped or died leaves its queue to whoever comes next.
 */
#ifndef PROVISIO_BROKER_H
#define PROVISIO_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "clock.h"
#include "config.h"
#include "context.h"
#include "limiter.h"
#include "store.h"
#include "strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pv_broker pv_broker;

/* Behaviour; every field has a default when 0 (docs/broker.md). */
typedef struct pv_broker_settings {
	double status_max_age_seconds;   /* refresh stored status older than this; 0 = 2; < 0 = always */
	double pending_timeout_seconds;  /* a machine pending longer fails; 0 = 600 */
	double creating_timeout_seconds; /* a "creating" request older than this is recovered even
					    if its process looks alive; 0 = 300 */
	int64_t grace_period_seconds;    /* gracePeriod of reclaimed machines; 0 = 120 (-1 = 0) */
	unsigned max_create_rounds;      /* create calls per request (spill-over); 0 = 8 */
	uint64_t call_timeout_ms;        /* deadline of each provider call; 0 = 60000 */
} pv_broker_settings;

/* What tests and embedders hand to pv_broker_new. */
typedef struct pv_broker_setup {
	pv_context *ctx;                 /* borrowed; must outlive the broker */
	pv_strategy *const *strategies;  /* every strategy whose state persists (refs taken) */
	size_t n_strategies;
	const char *const *providers;    /* leaf provider names (crash recovery asks them) */
	size_t n_providers;
	const json_t *leaves;            /* optional: {strategy: [its providers]}
					    (pv_config_leaves), copied; a request's
					    machines are looked for under its strategy's
					    providers only (NULL: under every provider) */
	pv_store *store;                 /* borrowed; must outlive the broker */
	const json_t *templates;         /* {"templates": [...]} or the array; copied */
	pv_broker_settings settings;
	const pv_clock *clock;           /* NULL = system (monotonic; wall time is the system's) */
	const char *const *disabled;     /* providers configured but disabled: a template naming
					    one is refused as such, not as unknown */
	size_t n_disabled;
	pv_limiter *limiter;             /* optional: handed to every strategy (a reference each),
					    so paced providers share their API budget */
} pv_broker_setup;

/* A broker over objects the caller owns. Loads kernel state from the store.
 * 0, PV_EINVAL (templates malformed; message names the field) or PV_ENOMEM.
 * Free with pv_broker_close. */
int pv_broker_new(pv_broker **out, const pv_broker_setup *setup);

/* Where things are when opened from files. NULL = found as below. */
typedef struct pv_broker_open_options {
	pv_config_options config;        /* provisio.json (pv_config_find's search) */
	const char *templates_path;      /* else broker.templates_file, $PROVISIO_TEMPLATES,
					    $HF_PROVIDER_CONFDIR/{provisio_templates,templates,
					    *_templates}.json, ./config/templates.json */
	const char *store_path;          /* else store.path, $HF_PROVIDER_WORKDIR/provisio.db,
					    ./var/provisio.db */
} pv_broker_open_options;

/*
 * Everything from files: the configuration (its "broker" and "store"
 * blocks too), the strategy graph, the templates, the store. `diags`
 * collects configuration problems. 0 or PV_E*. The broker owns all of it.
 */
int pv_broker_open(pv_broker **out, const pv_broker_open_options *opts, pv_diags *diags);

/* Saves kernel state (only what changed), frees. NULL is fine. */
void pv_broker_close(pv_broker *b);

/* A broker like `model` (its context, templates, settings, providers) on
 * another store connection, for another thread: it persists no kernel
 * state (the model does). Same returns as pv_broker_new. */
int pv_broker_new_like(pv_broker **out, pv_broker *model, pv_store *store);

/*
 * A limiter (limiter.h) whose token buckets live in the store at
 * `location` (a SQLite path or a postgresql:// URL, as pv_store_open), so
 * every process on that store spends one budget. It opens its own
 * connection at the first call and may be called from any thread.
 * pv_broker_open makes one for its store and hands it to the strategies.
 * 0, PV_EINVAL or PV_ENOMEM; *out owned by the caller (pv_limiter_unref).
 */
int pv_broker_limiter_new(pv_limiter **out, const char *location, const pv_store_options *opts);

/*
 * Writes every strategy's kernel state that changed since it was loaded or
 * last saved, and every health checked since (newer than the store's
 * record), in one transaction (what pv_broker_close does for a process
 * that called a provider or learned health). For long-running processes,
 * whose strategies run through other brokers sharing the context. 0 or the
 * store's PV_E*.
 */
int pv_broker_save_state(pv_broker *b);

pv_context *pv_broker_context(pv_broker *b);
pv_store *pv_broker_store(pv_broker *b);
/* The disabled providers it knows (for a broker sharing its context).
 * Borrowed; *n set. */
const char *const *pv_broker_disabled(pv_broker *b, size_t *n);
/* Path of the templates file used ("" when given in memory). Borrowed. */
const char *pv_broker_templates_path(pv_broker *b);

/* ---- templates ------------------------------------------------------------ */

/* The templates as configured (array, borrowed, valid while b lives). */
const json_t *pv_broker_templates(pv_broker *b);
/* One template by id (borrowed) or NULL. */
const json_t *pv_broker_template(pv_broker *b, const char *template_id);
/* The strategy serving a template: its "provider" field, else the
 * context's current strategy. Copied into buf; 0 or PV_ENOTFOUND. */
int pv_broker_template_strategy(pv_broker *b, const json_t *tmpl, char *buf, size_t size);
/* Why the template's provider refuses it ("field: reason; ..."), checked
 * when the broker opened from files: such a template is left out of
 * getAvailableTemplates and refused by requestMachines. NULL when it is not
 * refused. Owned by the broker. */
const char *pv_broker_template_refused(pv_broker *b, const char *template_id);

/* `config validate`'s check of the templates file: found and read as
 * pv_broker_open does (no store opened), each template checked, without any
 * call, on the providers of ctx under its strategy (`graph`:
 * pv_config_normalize's) that can: a refused field is an error in `diags`,
 * an unknown one a warning. *path_out (caller frees) names the file.
 * 0, or PV_E* when the file cannot be read (also in diags). */
int pv_broker_validate_templates_file(const pv_config_options *cfg, pv_context *ctx, const json_t *graph,
				      pv_diags *diags, char **path_out);
/* How many more machines of the template may be requested now (INT64_MAX
 * when unlimited). */
int pv_broker_available(pv_broker *b, const char *template_id, int64_t *out);

/* ---- requests ------------------------------------------------------------- */

/* The most machines one request may ask for, whatever the front end
 * (Host Factory's machineCount, REST's count, the CLI's COUNT) and even for
 * a template without maxNumber. */
#define PV_BROKER_MAX_MACHINE_COUNT 100000

/*
 * Provisions `count` machines of a template: validates (unknown template,
 * count outside 1..PV_BROKER_MAX_MACHINE_COUNT or over the available
 * number, a template naming a provider that is disabled or not configured:
 * PV_EINVAL, nothing written), records the request, asks the template's
 * strategy — its "provider", else the one the context's selection policy
 * picks (the current one when there is no policy; a policy that reads health
 * learns it first, from the store's records or a check) — (again for the rest
 * when a provider delivers part, so a fallback spills over), records the
 * machines. 0 and the id in id_out (req-<uuid>) when at least one machine
 * was created; PV_ERROR with the providers' message when none was (the
 * request is kept as "failed").
 */
int pv_broker_request_machines(pv_broker *b, const char *template_id, int64_t count,
			       char id_out[PV_STORE_SHORT_MAX]);

/*
 * The request and its machines, refreshed from the providers first when
 * the stored status is older than status_max_age_seconds (one batched
 * get_instance_status per provider). `machines` is appended to (the caller
 * clears it; an empty list is filled in place, so a caller that keeps one
 * list, n set to 0 between calls, reuses its memory). Asked by someone
 * holding the id, it marks the id delivered (one write, the first time).
 * In DEFERRED mode the store is otherwise only read. 0 or PV_ENOTFOUND.
 */
int pv_broker_request_status(pv_broker *b, const char *id, pv_request_rec *req,
			     pv_machine_list *machines);

/* pv_broker_request_status for the reconciler: the same refresh, without
 * marking the id delivered (the reconciler never got it from anyone). */
int pv_broker_request_refresh(pv_broker *b, const char *id, pv_request_rec *req,
			      pv_machine_list *machines);

/*
 * Records that an acquire request's id reached its caller: a front end
 * calls it once it has written the id out (Host Factory's answer flushed,
 * the CLI's line printed). A request whose id nobody got (the process died
 * after committing it, before printing it) is reclaimed by
 * pv_broker_recover once creating_timeout_seconds + pending_timeout_seconds
 * have passed since it was made with neither this nor a status read. 0,
 * PV_ENOTFOUND, or the store's PV_E*.
 */
int pv_broker_request_delivered(pv_broker *b, const char *id);

/* A machine named by id, or by host name when id is NULL or empty. */
typedef struct pv_machine_ref {
	const char *machine_id;
	const char *name;
} pv_machine_ref;

/*
 * Returns machines: records a return request, terminates the machines
 * grouped by owning provider, tracks them until gone. Machines unknown to
 * the store are left out and named in the return request's message ("N
 * machine(s) unknown to provisio, not returned: ..."), which then ends
 * complete_with_error; when none is known: PV_EINVAL naming them, nothing
 * written. 0 and ret-<uuid> in id_out.
 */
int pv_broker_return_machines(pv_broker *b, const pv_machine_ref *refs, size_t n,
			      char id_out[PV_STORE_SHORT_MAX]);

/*
 * Reconciliation: of the machines given (NULL/0 = every live machine in
 * the store), those their provider is taking back or has already removed
 * (terminated, stopping, unknown to it) without a return request. Appends
 * them to `out`, with the store updated. In DIRECT mode it first runs
 * pv_broker_recover, and terminates again the machines the broker released
 * itself that are not gone yet.
 */
int pv_broker_reclaimed(pv_broker *b, const pv_machine_ref *refs, size_t n, pv_machine_list *out);

/* Finishes what crashes left: requests left in "creating" by a process
 * that died (finds the machines their providers made, describe by request
 * id, releases them, marks the request failed), and requests whose id was
 * never delivered (pv_broker_request_delivered: their machines are
 * released, the request says it was reclaimed). Returns how many requests
 * it finished (>= 0). DIRECT mode only. */
int pv_broker_recover(pv_broker *b);

/* The Host Factory view of a request's state: running, complete,
 * complete_with_error. Static. */
const char *pv_broker_hf_status(pv_request_state s);

/* Settings in effect (defaults applied). */
const pv_broker_settings *pv_broker_get_settings(pv_broker *b);

/* Host Factory's machine status (pending, running, stopping, stopped,
 * shutting-down, terminated) for a provider's instance state: its own
 * spellings ("shutting_down", "active", "booting", ...) mapped, anything
 * unknown (failed, error, deleted) is "terminated". NULL is "pending".
 * Static string. */
const char *pv_machine_status_from_state(const char *state);

/* ---- the REST API's documents (docs/api.md) -------------------------------- */
/* The server and the CLI's --format json print these, so both speak one
 * vocabulary. Each returns a new reference. */

/* {machine_id, name, provider, template_id, request_id, state, result,
 * private_ip, public_ip, launch_time, message}. */
json_t *pv_broker_machine_json(const pv_machine_rec *m);
/* {request_id, kind, template_id, count, status, state, message,
 * created_at, machines: [machine...]}; `ms` may be NULL. */
json_t *pv_broker_request_json(const pv_request_rec *q, const pv_machine_list *ms);
/* A copy of template `t` with availableNumber (-1: unlimited) and provider
 * (the strategy serving it). Reads the store: inside a transaction. */
json_t *pv_broker_template_json(pv_broker *b, const json_t *t);
/* A requests list's status filter: a Host Factory status (running,
 * complete, complete_with_error) or a stored state (queued, creating, ...). */
bool pv_broker_status_filter_valid(const char *status);
/* Whether `q` passes the filter (NULL passes everything). */
bool pv_broker_status_filter_matches(const pv_request_rec *q, const char *status);
/* A machine state of Host Factory's: pending, running, stopping, stopped,
 * shutting-down, terminated. */
bool pv_broker_machine_state_valid(const char *state);

/* ---- the daemon, the queue ----------------------------------------------- */

/* Who calls the providers for this broker's requests. */
typedef enum pv_broker_mode {
	PV_BROKER_DIRECT = 0, /* this process (the default) */
	PV_BROKER_DEFERRED,   /* a live daemon: requests and returns are queued,
				 status is read from the store as the daemon
				 keeps it; no provider call, no recovery */
	PV_BROKER_MODE_COUNT
} pv_broker_mode;

/* "direct", "deferred". Static. */
const char *pv_broker_mode_name(pv_broker_mode m);
/* 0 or PV_EINVAL listing the valid names. */
int pv_broker_mode_parse(const char *name, pv_broker_mode *out);
void pv_broker_set_mode(pv_broker *b, pv_broker_mode m);
pv_broker_mode pv_broker_get_mode(const pv_broker *b);

/*
 * Where the store is and how to open it, from `location` (a --store flag: a
 * file path or a postgresql:// URL), else the configuration's "store" block:
 * its "url", else its "path", else $HF_PROVIDER_WORKDIR/provisio.db, else
 * ./var/provisio.db. `store_block` may be NULL. Writes the location to
 * `out` and the options to `opts`. PV_EINVAL naming the field for an
 * unknown key, a url that is not postgresql://, a busy_timeout_ms outside
 * 1..3600000, or a location longer than `size`.
 */
int pv_broker_store_config(const char *location, const json_t *store_block, char *out, size_t size,
			   pv_store_options *opts);

/* Where this process's pids mean something: "<host name> <pid namespace>"
 * (a request's owner_node). */
void pv_broker_this_node(char *buf, size_t size);

/* A daemon's announcement, the store's "daemon/heartbeat" row. */
typedef struct pv_daemon_info {
	int64_t pid;
	char host[256];        /* gethostname() of the daemon */
	char listen[300];      /* its URL, "" when unknown */
	int64_t interval_ms;   /* how often it beats (its reconciler tick) */
	int64_t started_ms;    /* wall clock, epoch ms */
	int64_t updated_ms;    /* last beat; set by pv_broker_daemon_beat */
} pv_daemon_info;

/* Writes (replaces) the heartbeat with updated_ms = now. interval_ms must
 * be 1..86,400,000 (PV_EINVAL). 0 or the store's PV_E*. */
int pv_broker_daemon_beat(pv_broker *b, const pv_daemon_info *info);

/* Marks the heartbeat of process `pid` stopped (a graceful stop); a row
 * written by another process is left alone. 0 or the store's PV_E*. */
int pv_broker_daemon_clear(pv_broker *b, int64_t pid);

/*
 * The live daemon, if any: 0 and *out filled (out may be NULL) when the
 * heartbeat says running and is fresher than 3 intervals plus 2 s, and its
 * process still exists when it runs on this host; PV_ENOTFOUND when there
 * is none, it stopped, or it is stale (crashed); another PV_E* when the
 * store cannot be read.
 */
int pv_broker_daemon_get(pv_broker *b, pv_daemon_info *out);

/*
 * Sets the mode a short-lived process should run in: DEFERRED when a live
 * daemon serves the store (no provider call from this process), else
 * DIRECT, finishing first what a gone daemon left queued. `who` names the
 * caller in the log lines ("hostfactory", "machines request"). Every
 * front end that is not the daemon calls it before its work.
 */
pv_broker_mode pv_broker_choose_mode(pv_broker *b, const char *who);

/*
 * A lease in the store: several daemons sharing one (PostgreSQL) store
 * elect one of them for work that needs doing once, not once per node (the
 * reconciler's provider-wide passes). Takes or renews lease `name` for
 * `holder` (any string naming one daemon for its life) until now + ttl_ms,
 * when it is free, expired, or already the holder's, in one write
 * transaction: *held says whether `holder` has it now. ttl_ms must be
 * 1..86,400,000 (PV_EINVAL). 0 or the store's PV_E*.
 */
int pv_broker_lease(pv_broker *b, const char *name, const char *holder, int64_t ttl_ms, bool *held);

/* Gives lease `name` up if `holder` has it (a graceful stop), so another
 * daemon takes over at once. 0 or the store's PV_E*. */
int pv_broker_lease_release(pv_broker *b, const char *name, const char *holder);

/*
 * Works the queue (DIRECT mode only; 0 in DEFERRED): provisions every
 * queued acquire request and terminates the machines of every queued
 * return, each claimed first so two processes never both do one; a queued
 * request a dead process had claimed is done again (creation is idempotent
 * per request id and round: nothing is made twice). Returns how many
 * requests it finished (>= 0).
 */
int pv_broker_run_queue(pv_broker *b);

#ifdef __cplusplus
}
#endif
#endif
