/*
 * broker_internal.h - what broker.c (object, templates, kernel state,
 * opening from files), requests.c (acquire, status, return) and
 * machines.c (instance JSON to machine records) share.
 */
#ifndef PV_BROKER_INTERNAL_H
#define PV_BROKER_INTERNAL_H

#include "broker/graph.h"
#include "provisio/broker.h"

typedef struct persisted {
	pv_strategy *s;    /* referenced */
	char *loaded;      /* state as loaded (serialised), NULL when none */
	int64_t health_ms; /* checked_at_ms of its health as loaded or saved; 0 = none */
} persisted;

struct pv_broker {
	char node[PV_STORE_NAME_MAX]; /* pv_broker_this_node(), read once */
	pv_context *ctx;
	pv_store *store;
	pv_graph *graph;  /* owned when opened from files */
	bool owns_store;
	json_t *templates; /* array, owned */
	json_t *refused;   /* {templateId: "field: reason; ..."} its provider refuses (template_checks.c) */
	char *templates_path;
	persisted *state;
	size_t n_state;
	char **providers;
	size_t n_providers;
	json_t *leaves; /* {strategy: [providers]}, owned; NULL = every provider */
	char **disabled;   /* configured, "enabled": false */
	size_t n_disabled;
	bool health_learned; /* the store's health records were read (at the first pick needing them) */
	pv_broker_settings set;
	const pv_clock *clock;
	unsigned long calls; /* provider calls made by this broker */
	pv_broker_mode mode;
	pv_limiter *limiter; /* referenced; the strategies' shared buckets */
};

/* pv_broker_template_strategy for a context without a broker (`config
 * validate`): the template's "provider", else the current strategy. */
int pv_template_strategy(pv_context *ctx, const json_t *tmpl, char *buf, size_t size);

/* template_checks.c: each template checked on the providers under its
 * strategy that check fields without a call; {templateId: "field: reason;
 * ..."} of the refused ones (new reference). Every problem goes to `d`
 * (when not NULL): refusals at `refused_level`, the rest as warnings. */
json_t *pv_broker_check_templates(pv_context *ctx, const json_t *leaves, const json_t *templates,
				  pv_diag_level refused_level, pv_diags *d);
/* Sets b->refused from the check above and logs each refused template. */
void pv_broker_refuse_templates(pv_broker *b);

/* A machine's message under a provider's interruption notice starts so
 * (requests.c): "interruption notice: marked-for-termination: ...". */
#define PV_NOTICE_PREFIX "interruption notice: "
bool pv_machine_under_notice(const pv_machine_rec *m);

/* A new id "<prefix>-<uuid v4>" in buf (>= 41 bytes). */
void pv_broker_new_id(const char *prefix, char *buf, size_t size);

/* Fills `m` from one instance of a provider answer. `provider` is the
 * answering leaf (used when the instance does not name its own). */
void pv_machine_from_instance(pv_machine_rec *m, const json_t *inst, const char *provider);
/* The instance's host name (name, hostname, private_dns), NULL when it
 * gives none (a gone EC2 instance has no private DNS name). Borrowed. */
const char *pv_machine_host_name(const json_t *inst);

/* Runs an operation on the named strategy with the broker's deadline.
 * Takes the reference on `params`. */
void pv_broker_run(pv_broker *b, const char *name, pv_op_type type, json_t *params, pv_result *out);

int64_t pv_broker_now_ms(void);

/* Whether `provider` may hold machines made through `strategy`. */
bool pv_broker_leaf_of(const pv_broker *b, const char *strategy, const char *provider);

/* The strategy that serves a new request of `tmpl`: its "provider" (PV_EINVAL
 * naming it when disabled or not configured), else the context's pick for
 * create_instances. Copied into buf. */
int pv_broker_choose_strategy(pv_broker *b, const json_t *tmpl, char *buf, size_t size);

/* Before the first pick that reads health: the health other processes
 * recorded in the store, handed to the context (once per broker). */
void pv_broker_learn_health(pv_broker *b);

/* Whether process `pid` (of this host) exists and is not a zombie. */
bool pv_broker_pid_alive(int64_t pid);

#endif
