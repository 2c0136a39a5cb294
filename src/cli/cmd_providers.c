/*
 * cmd_providers.c - `provisio providers list|health|metrics|capabilities|exec`:
 * the strategy graph of the configuration, seen and exercised in one
 * process (balancing, fallback and breakers at work).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

static void help(FILE *f)
{
	fprintf(f,
		"usage: provisio providers list [--format table|json] [--json]\n"
		"       provisio providers health [--provider NAME] [--format table|json] [--json]\n"
		"       provisio providers metrics [--provider NAME] [--format table|json] [--json]\n"
		"       provisio providers capabilities [--provider NAME] [--format table|json] [--json]\n"
		"       provisio providers exec OPERATION [--provider NAME] [--params JSON]\n"
		"                               [--context JSON] [--repeat N] [--threads T]\n"
		"                               [--deadline-ms MS] [--format table|json] [--json]\n"
		"\n"
		"list          every provider and strategy: name, type, kind, children, initialized, health\n"
		"              (default table; --json prints GET /api/v1/providers's document)\n"
		"health        checks health now (all, or one)\n"
		"metrics       per-strategy metrics after initialization (all, or one)\n"
		"capabilities  supported operations, features and limitations\n"
		"exec          runs OPERATION (create_instances, terminate_instances, get_instance_status,\n"
		"              describe_resource_instances, validate_template, get_available_templates,\n"
		"              health_check) through the configured graph, or on --provider NAME.\n"
		"              Once: prints the result and exits 1 if it failed. With --repeat N (over\n"
		"              --threads T): prints a summary (operations, succeeded, failed, count by\n"
		"              answering provider and by error, latency percentiles, the last result),\n"
		"              then the metrics and each strategy's stats (breakers, balancer weights).\n"
		"              health, metrics, capabilities and exec print JSON unless --format table.\n"
		"\n"
		"examples:\n"
		"  provisio providers list\n"
		"  provisio providers exec health_check --repeat 1000 --threads 4\n"
		"  provisio providers exec create_instances --params '{\"count\": 2, \"template_id\": \"t1\"}'\n"
		"  provisio providers exec get_available_templates --provider aws\n");
}

typedef struct exec_opts {
	const char *provider;
	json_t *params, *context;
	long repeat, threads;
	long deadline_ms;
} exec_opts;

static int parse_json_arg(const char *flag, const char *text, json_t **out)
{
	json_error_t err;
	*out = json_loads(text, 0, &err);
	if (!*out || !json_is_object(*out)) {
		pv_cli_error("%s: expected a JSON object: %s", flag, *out ? "not an object" : err.text);
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int parse_long(const char *flag, const char *text, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (*end || v < lo || v > hi) {
		pv_cli_error("%s: '%s' is not an integer from %ld to %ld", flag, text, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static const pv_cli_flag one_flags[] = {
	{"--provider", "NAME", NULL},
	{NULL, NULL, NULL},
};

static const pv_cli_flag exec_flags[] = {
	{"--provider", "NAME", NULL}, {"--params", "JSON", NULL},      {"--context", "JSON", NULL},
	{"--repeat", "N", NULL},      {"--threads", "T", NULL},        {"--deadline-ms", "MS", NULL},
	{NULL, NULL, NULL},
};

static const pv_cli_sub subs[] = {
	{"list", NULL, true, PV_WORDS_NONE},
	{"health", one_flags, true, PV_WORDS_NONE},
	{"metrics", one_flags, true, PV_WORDS_NONE},
	{"capabilities", one_flags, true, PV_WORDS_NONE},
	{"exec", exec_flags, true, PV_WORDS_OPERATION},
	{NULL, NULL, false, PV_WORDS_NONE},
};

const pv_cli_command_info pv_cli_info_providers = {.usage = help, .subs = subs};

/* exec's options from the parsed command line; -1 after saying what is wrong. */
static int exec_opts_of(const pv_cli_args *a, exec_opts *o)
{
	const char *v;
	o->provider = pv_cli_arg(a, "--provider");
	if ((v = pv_cli_arg(a, "--params")) && parse_json_arg("--params", v, &o->params) < 0)
		return -1;
	if ((v = pv_cli_arg(a, "--context")) && parse_json_arg("--context", v, &o->context) < 0)
		return -1;
	if ((v = pv_cli_arg(a, "--repeat")) && parse_long("--repeat", v, 1, 100000000, &o->repeat) < 0)
		return -1;
	if ((v = pv_cli_arg(a, "--threads")) && parse_long("--threads", v, 1, 256, &o->threads) < 0)
		return -1;
	if ((v = pv_cli_arg(a, "--deadline-ms")) && parse_long("--deadline-ms", v, 1, 86400000, &o->deadline_ms) < 0)
		return -1;
	return 0;
}

/* Names to report: the one asked for, or every registered one. */
static json_t *names_for(pv_context *ctx, const char *one)
{
	if (!one)
		return pv_context_names(ctx);
	pv_metrics m;
	if (pv_context_metrics(ctx, one, &m) < 0) {
		pv_cli_error("%s", pv_error_last());
		return NULL;
	}
	return json_pack("[s]", one);
}

static const pv_cli_column columns[] = {
	{"NAME", "", PV_COL_TEXT},
	{"TYPE", "type", PV_COL_TEXT},
	{"KIND", "kind", PV_COL_TEXT},
	{"INITIALIZED", "initialized", PV_COL_TEXT},
	{"HEALTHY", "health.healthy", PV_COL_TEXT},
	{"CHILDREN", "children", PV_COL_TEXT},
	{NULL, NULL, 0},
};

static int list(pv_context *ctx, const json_t *graph, pv_cli_format format)
{
	pv_context_initialize(ctx, NULL);
	pv_context_refresh_health(ctx, true);
	pv_cli_output(pv_config_providers_view(ctx, graph), format, &(pv_cli_table){"strategies", columns});
	return PV_EXIT_OK;
}

static int per_name(pv_context *ctx, const char *verb, const char *one, pv_cli_format format)
{
	pv_context_initialize(ctx, NULL);
	json_t *names = names_for(ctx, one);
	if (!names)
		return PV_EXIT_FAIL;
	json_t *out = json_object();
	bool all_healthy = true;
	size_t i;
	json_t *nm;
	json_array_foreach(names, i, nm) {
		const char *name = json_string_value(nm);
		if (strcmp(verb, "health") == 0) {
			pv_health h;
			pv_context_check_health(ctx, name, &h);
			all_healthy &= h.healthy;
			json_object_set_new(out, name, pv_health_to_json(&h));
			pv_health_clear(&h);
		} else if (strcmp(verb, "metrics") == 0) {
			pv_metrics m;
			pv_context_metrics(ctx, name, &m);
			json_object_set_new(out, name, pv_metrics_to_json(&m));
		} else {
			pv_capabilities c;
			pv_context_capabilities(ctx, name, &c);
			json_object_set_new(out, name, pv_capabilities_to_json(&c));
			pv_capabilities_clear(&c);
		}
	}
	json_decref(names);
	pv_cli_output(out, format, NULL);
	return all_healthy ? PV_EXIT_OK : PV_EXIT_FAIL;
}

/* ---- exec ----------------------------------------------------------------- */

typedef struct run_state {
	pv_context *ctx;
	const exec_opts *o;
	pv_operation op;
	pthread_mutex_t lock;
	long next;
	json_t *by_provider, *by_error;
	uint64_t ok, failed;
	pv_metrics_recorder latency;
	pv_result last;
} run_state;

static void run_one(run_state *st, pv_result *r)
{
	pv_operation op = st->op;
	if (st->o->deadline_ms)
		op.deadline_ns = pv_now_ns() + (uint64_t)st->o->deadline_ms * PV_NS_PER_MS;
	uint64_t t0 = pv_now_ns();
	if (st->o->provider)
		pv_context_execute_on(st->ctx, st->o->provider, &op, r);
	else
		pv_context_execute(st->ctx, &op, r);
	pv_metrics_record(&st->latency, r, pv_now_ns() - t0, 0);
}

static void *worker(void *arg)
{
	run_state *st = arg;
	for (;;) {
		pthread_mutex_lock(&st->lock);
		bool more = st->next < st->o->repeat;
		st->next++;
		pthread_mutex_unlock(&st->lock);
		if (!more)
			break;
		pv_result r;
		run_one(st, &r);
		pthread_mutex_lock(&st->lock);
		const char *who = r.provider[0] ? r.provider : "(none)";
		json_object_set_new(st->by_provider, who,
				    json_integer(json_integer_value(json_object_get(st->by_provider, who)) + 1));
		if (r.success) {
			st->ok++;
		} else {
			st->failed++;
			json_object_set_new(st->by_error, r.error_code,
					    json_integer(json_integer_value(json_object_get(st->by_error, r.error_code)) + 1));
		}
		pv_result_move(&st->last, &r);
		pthread_mutex_unlock(&st->lock);
	}
	return NULL;
}

static json_t *stats_of_all(pv_context *ctx)
{
	json_t *whole = pv_context_to_json(ctx), *out = json_object();
	const char *name;
	json_t *info;
	json_object_foreach(json_object_get(whole, "strategies"), name, info)
		if (json_object_get(info, "stats"))
			json_object_set(out, name, json_object_get(info, "stats"));
	json_decref(whole);
	return out;
}

static int exec_op(pv_context *ctx, const char *opname, exec_opts *o, pv_cli_format format)
{
	pv_op_type type;
	if (pv_op_parse(opname, &type) < 0) {
		pv_cli_error("%s", pv_error_last());
		return PV_EXIT_USAGE;
	}
	json_t *report = NULL;
	if (pv_context_initialize(ctx, &report) < 0)
		pv_cli_error("%s", pv_error_last());
	json_decref(report);
	run_state st = {.ctx = ctx, .o = o, .op = {.type = type, .params = o->params, .context = o->context}};
	pthread_mutex_init(&st.lock, NULL);
	pv_metrics_recorder_init(&st.latency);
	st.by_provider = json_object();
	st.by_error = json_object();
	bool repeated = o->repeat > 0;
	if (!repeated)
		o->repeat = 1;
	long threads = o->threads > 0 ? o->threads : 1;
	if (threads > o->repeat)
		threads = o->repeat;
	pthread_t t[256];
	for (long i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, &st);
	for (long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);

	int rc = st.ok ? PV_EXIT_OK : PV_EXIT_FAIL;
	if (!repeated) {
		rc = st.last.success ? PV_EXIT_OK : PV_EXIT_FAIL;
		pv_cli_output(pv_result_to_json(&st.last), format, NULL);
	} else {
		pv_metrics lat;
		pv_metrics_snapshot(&st.latency, &lat);
		json_t *metrics = pv_context_metrics_json(ctx);
		pv_cli_output(json_pack("{s:{s:I, s:I, s:I, s:I, s:o, s:o, s:{s:f, s:f, s:f, s:f}, s:o}, s:o, s:o}",
				       "summary", "operations", (json_int_t)o->repeat, "threads", (json_int_t)threads,
				       "succeeded", (json_int_t)st.ok, "failed", (json_int_t)st.failed,
				       "by_provider", st.by_provider, "by_error", st.by_error, "latency_ms",
				       "mean", lat.mean_latency_ms, "p50", lat.p50_ms, "p95", lat.p95_ms, "p99",
				       lat.p99_ms, "last_result", pv_result_to_json(&st.last), "metrics", metrics,
				       "stats", stats_of_all(ctx)), format, NULL);
		st.by_provider = st.by_error = NULL;
	}
	json_decref(st.by_provider);
	json_decref(st.by_error);
	pv_result_clear(&st.last);
	pthread_mutex_destroy(&st.lock);
	return rc;
}

int cmd_providers(const pv_cli *cli, int argc, char **argv)
{
	if (argc < 2 || pv_cli_wants_help(argc, argv)) {
		help(argc < 2 ? stderr : stdout);
		return argc < 2 ? PV_EXIT_USAGE : PV_EXIT_OK;
	}
	const pv_cli_sub *sub = pv_cli_sub_find(&pv_cli_info_providers, "providers", argv[1]);
	if (!sub)
		return PV_EXIT_USAGE;
	const char *verb = sub->name;
	bool is_exec = strcmp(verb, "exec") == 0;
	char command[48];
	snprintf(command, sizeof command, "providers %s", verb);
	pv_cli_args a;
	exec_opts o = {0};
	if (pv_cli_parse(&a, command, sub->flags, sub->formats,
			 strcmp(verb, "list") ? PV_FORMAT_JSON : PV_FORMAT_TABLE, argc, argv, 2) < 0 ||
	    pv_cli_words(&a, is_exec, is_exec, "OPERATION") < 0 || exec_opts_of(&a, &o) < 0) {
		pv_cli_args_clear(&a);
		json_decref(o.params);
		json_decref(o.context);
		return PV_EXIT_USAGE;
	}
	pv_context *ctx = NULL;
	json_t *graph = NULL;
	int rc = PV_EXIT_FAIL;
	if (pv_cli_open(cli, &ctx, &graph) == 0) {
		if (is_exec)
			rc = exec_op(ctx, a.words[0], &o, a.format);
		else if (strcmp(verb, "list") == 0)
			rc = list(ctx, graph, a.format);
		else
			rc = per_name(ctx, verb, o.provider, a.format);
		pv_context_free(ctx);
	}
	json_decref(graph);
	json_decref(o.params);
	json_decref(o.context);
	pv_cli_args_clear(&a);
	return rc;
}
