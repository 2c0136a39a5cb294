/*
 * bench_libvirt.c - what the libvirt provider costs per operation, measured
 * on libvirt's in-process test driver (test:///default): no daemon and no
 * hypervisor, so the numbers are provisio's work plus libvirt's client-side
 * work (XML parse and format, driver locking), not a real boot.
 *
 * Rows: a create/status/terminate round trip of a zero-latency sim (the
 * baseline), the same round trip on libvirt without and with a qcow2
 * overlay, then status, validate_template and health_check alone. Each row
 * is one process-local loop on the system clock. Not a test: it asserts
 * nothing.
 *
 * Usage: bench_libvirt [seconds-per-row]   (default 0.4)
 */
#include <stdio.h>
#include <stdlib.h>
#include "provisio/provisio.h"
#include "provisio/libvirt.h"

static double row_seconds = 0.4;

typedef void (*body_fn)(pv_strategy *s, uint64_t i);

static void exec(pv_strategy *s, pv_op_type type, json_t *params)
{
	pv_operation op = {.type = type, .params = params};
	pv_result r;
	pv_result_init(&r);
	s->methods->execute(s, &op, &r);
	if (!r.success) {
		fprintf(stderr, "bench: %s failed: %s\n", pv_op_name(type), pv_result_message(&r) ? pv_result_message(&r) : r.error_code);
		exit(1);
	}
	pv_result_clear(&r);
}

/* create 1 -> status -> terminate, with the id the create returned. */
static void round_trip(pv_strategy *s, uint64_t i)
{
	char req[32];
	snprintf(req, sizeof req, "bench-%llu", (unsigned long long)i);
	json_t *params = json_pack("{s:i, s:s}", "count", 1, "request_id", req);
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .params = params};
	pv_result r;
	pv_result_init(&r);
	s->methods->execute(s, &op, &r);
	if (!r.success) {
		fprintf(stderr, "bench: create failed: %s\n", pv_result_message(&r) ? pv_result_message(&r) : r.error_code);
		exit(1);
	}
	json_t *ids = json_pack("{s:O}", "instance_ids", json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);
	json_decref(params);
	exec(s, PV_OP_GET_INSTANCE_STATUS, ids);
	exec(s, PV_OP_TERMINATE_INSTANCES, ids);
	json_decref(ids);
}

static json_t *status_params;
static void status_only(pv_strategy *s, uint64_t i)
{
	(void)i;
	exec(s, PV_OP_GET_INSTANCE_STATUS, status_params);
}

static json_t *validate_params;
static void validate_only(pv_strategy *s, uint64_t i)
{
	(void)i;
	exec(s, PV_OP_VALIDATE_TEMPLATE, validate_params);
}

static void health_only(pv_strategy *s, uint64_t i)
{
	(void)i;
	exec(s, PV_OP_HEALTH_CHECK, NULL);
}

static double measure(pv_strategy *s, body_fn body)
{
	static uint64_t seq;
	for (int i = 0; i < 20; i++) /* warm up */
		body(s, seq++);
	uint64_t n = 0, t0 = pv_now_ns(), t1;
	do {
		for (int i = 0; i < 20; i++)
			body(s, seq++);
		n += 20;
		t1 = pv_now_ns();
	} while ((double)(t1 - t0) < row_seconds * 1e9);
	return (double)(t1 - t0) / (double)n;
}

static pv_strategy *make(const char *json, int libvirt)
{
	json_t *cfg = json ? json_loads(json, 0, NULL) : NULL;
	pv_strategy *s = NULL;
	int rc = libvirt ? pv_libvirt_new(&s, "lv", cfg, NULL) : pv_sim_new(&s, "sim", cfg, NULL);
	json_decref(cfg);
	if (rc < 0 || pv_strategy_initialize(s) < 0) {
		fprintf(stderr, "bench: %s\n", pv_error_last());
		exit(1);
	}
	return s;
}

static void row(const char *name, double ns, double base)
{
	if (base > 0)
		printf("%-44s %12.0f %12.0f\n", name, ns, ns - base);
	else
		printf("%-44s %12.0f %12s\n", name, ns, "-");
}

int main(int argc, char **argv)
{
	if (argc > 1)
		row_seconds = atof(argv[1]);
	pv_strategy *sim = make(NULL, 0);
	pv_strategy *plain = make("{\"uri\": \"test:///default\"}", 1);
	pv_strategy *overlay = make("{\"uri\": \"test:///default\", \"name_prefix\": \"pv-ov-\", \"storage\": "
				    "{\"pool\": \"default-pool\", \"base_image\": \"/default-pool/base.qcow2\","
				    " \"overlay\": \"required\"}}", 1);
	status_params = json_pack("{s:[s]}", "instance_ids", "pv-lv-status-0");
	validate_params = json_pack("{s:{s:s, s:{s:[s,s], s:[s,s]}}}", "template", "templateId", "t",
				    "attributes", "ncpus", "Numeric", "2", "nram", "Numeric", "4096");
	json_t *made = json_pack("{s:i, s:s}", "count", 1, "request_id", "status");
	exec(plain, PV_OP_CREATE_INSTANCES, made);
	json_decref(made);

	printf("%-44s %12s %12s\n", "operation (test:///default driver)", "ns/op", "overhead");
	double base = measure(sim, round_trip);
	row("sim round trip create/status/terminate", base, 0);
	row("libvirt round trip create/status/terminate", measure(plain, round_trip), base);
	row("libvirt round trip with qcow2 overlay", measure(overlay, round_trip), base);
	double sim_status = measure(sim, status_only);
	row("sim get_instance_status (1 id)", sim_status, 0);
	row("libvirt get_instance_status (1 id)", measure(plain, status_only), sim_status);
	row("libvirt validate_template (render + parse)", measure(plain, validate_only), 0);
	row("libvirt health_check (node info)", measure(plain, health_only), 0);

	json_decref(status_params);
	json_decref(validate_params);
	pv_strategy_unref(overlay);
	pv_strategy_unref(plain);
	pv_strategy_unref(sim);
	return 0;
}
