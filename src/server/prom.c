/*
 * prom.c - GET /metrics: the Prometheus text exposition (format 0.0.4).
 *
 * Per strategy: operations by type and outcome, the latency histogram, in
 * flight, success rate, health, weight, breaker states; broker: requests by
 * state and machines by provider and state (from the reconciler's last
 * pass, so a scrape never scans the store), provisioning time, orphans and
 * reclaimed machines; HTTP; process: the standard process_* metrics,
 * uptime, build info. Names follow Prometheus' conventions (base units,
 * ratios 0..1, _total on counters) and are in docs/metrics.md.
 *
 * The kernel's histogram has 8 buckets a power of two; Prometheus wants a
 * few fixed bounds, so kernel buckets are summed into the first bound at or
 * above their upper edge (never under-reporting a latency).
 */
#include <dirent.h>
#include <math.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "server/server_internal.h"

const double srv_provision_bounds_s[12] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600};

static const double op_bounds_s[] = {0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
				     0.25,   0.5,   1,     2.5,  5,     10,   30,  60};
#define N_OP_BOUNDS (sizeof op_bounds_s / sizeof op_bounds_s[0])

/* A label value with \, " and newline escaped. */
static void label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
	fputc('"', f);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A number from /proc/self/stat's fields after the command (1-based
 * among them: 12 utime, 13 stime); -1 when unreadable. */
static double proc_stat_field(int field)
{
	char buf[1024];
	FILE *p = fopen("/proc/self/stat", "r");
	if (!p)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, p);
	fclose(p);
	buf[n] = '\0';
	char *s = strrchr(buf, ')'); /* the command may hold spaces */
	if (!s)
		return -1;
	s += 2;
	for (int i = 1; i < field && s; i++) {
		s = strchr(s, ' ');
		s = s ? s + 1 : NULL;
	}
	return s ? strtod(s, NULL) : -1;
}

/* The standard process_* metrics (the Prometheus client libraries'
 * names), so dashboards made for any exporter work. */
static void standard_process_metrics(FILE *f, pv_server *srv)
{
	head(f, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
	fprintf(f, "process_start_time_seconds %.3f\n", (double)srv->started_ms / 1e3);
	long tick = sysconf(_SC_CLK_TCK);
	double ut = proc_stat_field(12), st = proc_stat_field(13);
	if (ut >= 0 && st >= 0 && tick > 0) {
		head(f, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
		fprintf(f, "process_cpu_seconds_total %.2f\n", (ut + st) / (double)tick);
	}
	long long pages_virt = 0, pages_res = 0;
	FILE *m = fopen("/proc/self/statm", "r");
	if (m && fscanf(m, "%lld %lld", &pages_virt, &pages_res) == 2) {
		long page = sysconf(_SC_PAGESIZE);
		head(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
		fprintf(f, "process_resident_memory_bytes %lld\n", pages_res * page);
		head(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
		fprintf(f, "process_virtual_memory_bytes %lld\n", pages_virt * page);
	}
	if (m)
		fclose(m);
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long n = -1; /* the directory's own descriptor */
		while (readdir(d))
			n++;
		closedir(d);
		head(f, "process_open_fds", "gauge", "Number of open file descriptors.");
		fprintf(f, "process_open_fds %ld\n", n - 2); /* less "." and ".." */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		head(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		fprintf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

static void process_metrics(FILE *f, pv_server *srv)
{
	standard_process_metrics(f, srv);
	head(f, "provisio_build_info", "gauge", "Version of the running provisio.");
	fprintf(f, "provisio_build_info{version=\"%s\"} 1\n", PROVISIO_VERSION);
	head(f, "provisio_uptime_seconds", "gauge", "Seconds since the server started.");
	fprintf(f, "provisio_uptime_seconds %.3f\n", (double)(pv_now_ns() - srv->started_ns) / 1e9);
	head(f, "provisio_config_reloads_total", "counter", "Configuration reloads by result.");
	fprintf(f, "provisio_config_reloads_total{result=\"success\"} %llu\n",
		(unsigned long long)atomic_load(&srv->reloads));
	fprintf(f, "provisio_config_reloads_total{result=\"failure\"} %llu\n",
		(unsigned long long)atomic_load(&srv->reload_failures));
}

static void histogram(FILE *f, const char *name, const char *labels, const atomic_uint_fast64_t *h,
		      const double *bounds, size_t n, double sum_s)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += atomic_load_explicit(&h[i], memory_order_relaxed);
		fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[i],
			(unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
		(unsigned long long)cum);
	fprintf(f, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, sum_s, name, labels,
		(unsigned long long)cum);
}

static unsigned long long load(atomic_uint_fast64_t *v)
{
	return (unsigned long long)atomic_load_explicit(v, memory_order_relaxed);
}

/* The door: connections held, refused, out of descriptors, too slow. */
static void connection_metrics(FILE *f, pv_server *srv)
{
	head(f, "provisio_http_connections", "gauge", "Client connections held now.");
	fprintf(f, "provisio_http_connections %u\n", atomic_load(&srv->conns_open));
	head(f, "provisio_http_connections_refused_total", "counter",
	     "Connections answered 503 at once: over server.max_connections or the per-client limit.");
	fprintf(f, "provisio_http_connections_refused_total{reason=\"max_connections\"} %llu\n",
		load(&srv->refused_max));
	fprintf(f, "provisio_http_connections_refused_total{reason=\"per_client\"} %llu\n",
		load(&srv->refused_per_client));
	head(f, "provisio_http_accept_errors_total", "counter",
	     "accept() failures; each pauses accepting briefly.");
	fprintf(f, "provisio_http_accept_errors_total{reason=\"out_of_descriptors\"} %llu\n",
		load(&srv->accept_fd_exhausted));
	fprintf(f, "provisio_http_accept_errors_total{reason=\"other\"} %llu\n", load(&srv->accept_errors));
	head(f, "provisio_http_request_timeouts_total", "counter",
	     "Requests answered 408: the head or the body came too slowly.");
	fprintf(f, "provisio_http_request_timeouts_total{phase=\"header\"} %llu\n", load(&srv->header_timeouts));
	fprintf(f, "provisio_http_request_timeouts_total{phase=\"body\"} %llu\n", load(&srv->body_timeouts));
	head(f, "provisio_http_auth_rate_limited_total", "counter",
	     "Requests answered 429: their address failed to authenticate too often.");
	fprintf(f, "provisio_http_auth_rate_limited_total %llu\n", load(&srv->auth_limited));
}

static void http_metrics(FILE *f, pv_server *srv)
{
	uint64_t by[SRV_CODE_BUCKETS] = {0}, hist[12] = {0}, sum_ns = 0, total = 0;
	for (unsigned t = 0; t < srv->n_threads; t++) {
		const srv_http_stats *st = &srv->threads[t].stats;
		for (int i = 0; i < SRV_CODE_BUCKETS; i++)
			by[i] += atomic_load_explicit(&st->by_class[i], memory_order_relaxed);
		for (int i = 0; i < 12; i++)
			hist[i] += atomic_load_explicit(&st->hist[i], memory_order_relaxed);
		sum_ns += atomic_load_explicit(&st->duration_ns_sum, memory_order_relaxed);
	}
	head(f, "provisio_http_requests_total", "counter", "HTTP answers by status class.");
	static const char *const cls[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
	for (int i = 0; i < SRV_CODE_BUCKETS; i++) {
		fprintf(f, "provisio_http_requests_total{code=\"%s\"} %llu\n", cls[i], (unsigned long long)by[i]);
		total += by[i];
	}
	head(f, "provisio_http_request_duration_seconds", "histogram", "Time to answer an HTTP request.");
	uint64_t cum = 0;
	for (int i = 0; i < 12; i++) {
		cum += hist[i];
		fprintf(f, "provisio_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", srv_http_bounds_s[i],
			(unsigned long long)cum);
	}
	/* answers slower than the last bound are only in +Inf */
	uint64_t all = total > cum ? total : cum;
	fprintf(f, "provisio_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)all);
	fprintf(f, "provisio_http_request_duration_seconds_sum %.6f\n", (double)sum_ns / 1e9);
	fprintf(f, "provisio_http_request_duration_seconds_count %llu\n", (unsigned long long)all);
	connection_metrics(f, srv);
}

static void op_histogram(FILE *f, const char *name, const pv_metrics *m)
{
	uint64_t per[N_OP_BOUNDS + 1] = {0}, count = 0;
	for (unsigned b = 0; b < PV_HIST_BUCKETS; b++) {
		if (!m->hist[b])
			continue;
		double upper = (double)pv_hist_bucket_upper(b) / 1e9;
		size_t i = 0;
		while (i < N_OP_BOUNDS && op_bounds_s[i] < upper)
			i++;
		per[i] += m->hist[b];
		count += m->hist[b];
	}
	uint64_t cum = 0;
	for (size_t i = 0; i < N_OP_BOUNDS; i++) {
		cum += per[i];
		fputs("provisio_strategy_operation_duration_seconds_bucket{strategy=", f);
		label(f, name);
		fprintf(f, ",le=\"%g\"} %llu\n", op_bounds_s[i], (unsigned long long)cum);
	}
	fputs("provisio_strategy_operation_duration_seconds_bucket{strategy=", f);
	label(f, name);
	fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)count);
	double sum = isnan(m->mean_latency_ms) ? 0 : m->mean_latency_ms * (double)count / 1e3;
	fputs("provisio_strategy_operation_duration_seconds_sum{strategy=", f);
	label(f, name);
	fprintf(f, "} %.6f\nprovisio_strategy_operation_duration_seconds_count{strategy=", sum);
	label(f, name);
	fprintf(f, "} %llu\n", (unsigned long long)count);
}

static int breaker_value(const char *state)
{
	return !state ? -1 : strcmp(state, "closed") == 0 ? 0 : strcmp(state, "half_open") == 0 ? 1
						     : strcmp(state, "open") == 0        ? 2
											 : -1;
}

/* {"closed_to_open": n, ...} of one breaker as counter samples with the
 * states the transition leaves and enters. */
static void transition_metrics(FILE *f, const char *name, const char *child, const json_t *t)
{
	static const char *const keys[][3] = {{"closed_to_open", "closed", "open"},
					       {"open_to_half_open", "open", "half_open"},
					       {"half_open_to_closed", "half_open", "closed"},
					       {"half_open_to_open", "half_open", "open"}};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		json_t *n = json_object_get(t, keys[i][0]);
		if (!json_is_integer(n))
			continue;
		fputs("provisio_breaker_transitions_total{strategy=", f);
		label(f, name);
		fputs(",child=", f);
		label(f, child);
		fprintf(f, ",from=\"%s\",to=\"%s\"} %lld\n", keys[i][1], keys[i][2],
			(long long)json_integer_value(n));
	}
}

/* Breaker states and transitions and balancer weights found in a
 * strategy's stats. */
static void stats_metrics(FILE *brk, FILE *btr, FILE *wts, const char *name, const json_t *stats)
{
	const char *child;
	json_t *v;
	json_t *cm = json_object_get(json_object_get(stats, "circuit_metrics"), "strategies");
	json_object_foreach(cm, child, v) {
		int st = breaker_value(json_string_value(json_object_get(v, "state")));
		if (st < 0)
			continue;
		fputs("provisio_breaker_state{strategy=", brk);
		label(brk, name);
		fputs(",child=", brk);
		label(brk, child);
		fprintf(brk, "} %d\n", st);
		transition_metrics(btr, name, child, json_object_get(v, "transitions"));
	}
	/* a balancer: {"algorithm", "strategies": {child: {"weight", "current_weight", ...}}} */
	if (!json_object_get(stats, "algorithm"))
		return;
	json_object_foreach(json_object_get(stats, "strategies"), child, v) {
		json_t *w = json_object_get(v, "current_weight");
		if (!json_is_number(w))
			w = json_object_get(v, "weight");
		if (!json_is_number(w))
			continue;
		fputs("provisio_balancer_weight{strategy=", wts);
		label(wts, name);
		fputs(",child=", wts);
		label(wts, child);
		fprintf(wts, "} %g\n", json_number_value(w));
	}
}

typedef struct sections {
	FILE *ops, *lat, *infl, *rate, *health, *weight, *current, *brk, *btr, *bw;
	char *buf[10];
	size_t len[10];
} sections;

static void strategy_metrics(FILE *f, pv_context *ctx)
{
	sections s = {0};
	FILE **fs[] = {&s.ops,    &s.lat,     &s.infl, &s.rate, &s.health,
		       &s.weight, &s.current, &s.brk,  &s.btr,  &s.bw};
	for (int i = 0; i < 10; i++)
		*fs[i] = open_memstream(&s.buf[i], &s.len[i]);
	json_t *all = pv_context_to_json(ctx);
	const char *cur = json_string_value(json_object_get(all, "current"));
	const char *name;
	json_t *info;
	json_object_foreach(json_object_get(all, "strategies"), name, info) {
		pv_metrics m;
		if (pv_context_metrics(ctx, name, &m) < 0)
			continue;
		for (int t = 0; t < PV_OP_COUNT; t++)
			for (int ok = 0; ok < 2; ok++) {
				if (!m.by_op[t][ok])
					continue;
				fputs("provisio_strategy_operations_total{strategy=", s.ops);
				label(s.ops, name);
				fprintf(s.ops, ",operation=\"%s\",outcome=\"%s\"} %llu\n", pv_op_name((pv_op_type)t),
					ok ? "success" : "failure", (unsigned long long)m.by_op[t][ok]);
			}
		op_histogram(s.lat, name, &m);
		fputs("provisio_strategy_in_flight{strategy=", s.infl);
		label(s.infl, name);
		fprintf(s.infl, "} %llu\n", (unsigned long long)m.in_flight);
		if (!isnan(m.success_rate)) {
			fputs("provisio_strategy_success_ratio{strategy=", s.rate);
			label(s.rate, name);
			fprintf(s.rate, "} %.6f\n", m.success_rate / 100.0); /* the kernel keeps percent */
		}
		json_t *h = json_object_get(info, "health");
		if (json_is_object(h)) {
			fputs("provisio_strategy_healthy{strategy=", s.health);
			label(s.health, name);
			fprintf(s.health, "} %d\n", json_is_true(json_object_get(h, "healthy")));
		}
		json_t *w = json_object_get(info, "weight");
		if (json_is_number(w)) {
			fputs("provisio_strategy_weight{strategy=", s.weight);
			label(s.weight, name);
			fprintf(s.weight, "} %g\n", json_number_value(w));
		}
		fputs("provisio_strategy_current{strategy=", s.current);
		label(s.current, name);
		fprintf(s.current, "} %d\n", cur && strcmp(cur, name) == 0);
		stats_metrics(s.brk, s.btr, s.bw, name, json_object_get(info, "stats"));
	}
	json_decref(all);
	static const char *const meta[10][3] = {
		{"provisio_strategy_operations_total", "counter", "Finished operations by strategy, type and outcome."},
		{"provisio_strategy_operation_duration_seconds", "histogram", "Operation latency by strategy."},
		{"provisio_strategy_in_flight", "gauge", "Operations running now."},
		{"provisio_strategy_success_ratio", "gauge", "Share of operations that succeeded, 0 to 1 (absent before the first)."},
		{"provisio_strategy_healthy", "gauge", "1 healthy, 0 unhealthy (absent until checked)."},
		{"provisio_strategy_weight", "gauge", "Weight for weighted selection."},
		{"provisio_strategy_current", "gauge", "1 for the current strategy."},
		{"provisio_breaker_state", "gauge", "Circuit breaker of a child: 0 closed, 1 half-open, 2 open."},
		{"provisio_breaker_transitions_total", "counter", "Circuit breaker state changes of a child, by the states left and entered."},
		{"provisio_balancer_weight", "gauge", "Effective weight of a balancer's child (configured x adaptive)."},
	};
	for (int i = 0; i < 10; i++) {
		fclose(*fs[i]);
		head(f, meta[i][0], meta[i][1], meta[i][2]);
		fwrite(s.buf[i], 1, s.len[i], f);
		free(s.buf[i]);
	}
}

static void broker_metrics(FILE *f, pv_server *srv)
{
	srv_broker_gauges *g = &srv->gauges;
	pthread_mutex_lock(&g->lock);
	head(f, "provisio_broker_requests", "gauge", "Requests in the store by state (last reconciler pass).");
	for (int i = 0; g->valid && i < PV_REQ_STATE_COUNT; i++)
		fprintf(f, "provisio_broker_requests{state=\"%s\"} %lld\n",
			pv_request_state_name((pv_request_state)i), (long long)g->requests[i]);
	head(f, "provisio_broker_machines", "gauge", "Machines in the store by provider and state.");
	const char *prov, *st;
	json_t *states, *n;
	json_object_foreach(g->machines, prov, states) json_object_foreach(states, st, n) {
		fputs("provisio_broker_machines{provider=", f);
		label(f, prov);
		fprintf(f, ",state=\"%s\"} %lld\n", st, (long long)json_integer_value(n));
	}
	pthread_mutex_unlock(&g->lock);
	head(f, "provisio_broker_provisioning_seconds", "histogram", "Time to answer a create (POST /api/v1/requests).");
	histogram(f, "provisio_broker_provisioning_seconds", "", srv->provision_hist, srv_provision_bounds_s, 12,
		  (double)atomic_load(&srv->provision_sum_ns) / 1e9);
	head(f, "provisio_reconciler_leader", "gauge",
	     "1 while this daemon leads the reconciler's provider passes (one of those sharing the store).");
	fprintf(f, "provisio_reconciler_leader %d\n", atomic_load(&srv->leading) ? 1 : 0);
	head(f, "provisio_orphans_found_total", "counter", "Managed instances no request knows, found by the reconciler.");
	fprintf(f, "provisio_orphans_found_total %llu\n", (unsigned long long)atomic_load(&srv->orphans_found));
	head(f, "provisio_orphan_sweep_failures_total", "counter",
	     "Orphan sweeps a provider failed (it could not list its managed instances).");
	fprintf(f, "provisio_orphan_sweep_failures_total %llu\n",
		(unsigned long long)atomic_load(&srv->orphan_sweep_failures));
	head(f, "provisio_reconciler_passes_total", "counter", "Reconciler passes completed.");
	fprintf(f, "provisio_reconciler_passes_total %llu\n", (unsigned long long)atomic_load(&srv->reconcile_passes));
	head(f, "provisio_reclaimed_machines_total", "counter", "Machines the provider took back.");
	fprintf(f, "provisio_reclaimed_machines_total %llu\n", (unsigned long long)atomic_load(&srv->reclaimed_found));
}

static void alert_metrics(FILE *f, pv_server *srv, srv_world *w)
{
	head(f, "provisio_alert_firing", "gauge", "1 while an alert rule fires.");
	pthread_mutex_lock(&srv->alert_lock);
	for (size_t i = 0; i < w->set.n_rules && i < srv->n_alerts; i++) {
		fputs("provisio_alert_firing{alert=", f);
		label(f, w->set.rules[i].name);
		fprintf(f, "} %d\n", srv->alerts[i].firing);
	}
	pthread_mutex_unlock(&srv->alert_lock);
}

char *srv_prom_render(pv_server *srv, srv_world *w, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	process_metrics(f, srv);
	http_metrics(f, srv);
	strategy_metrics(f, pv_broker_context(w->main));
	broker_metrics(f, srv);
	alert_metrics(f, srv, w);
	fclose(f);
	return buf;
}
