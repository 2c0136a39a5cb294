/*
 * bench_aws.c - the AWS provider against the EC2 emulator.
 *
 * 1) Provision 1,000 instances through RunInstances with 50 ms injected
 *    latency and EC2's throttle buckets enforced by the emulator: API calls
 *    by action, RequestLimitExceeded received, wall time against the bound
 *    the buckets impose. Then describe and terminate them, and the same
 *    1,000 through one CreateFleet.
 * 2) get_instance_status over 2,500 ids with 50 ms latency: DescribeInstances
 *    batches one after another (describe_max_in_flight 1) against the curl
 *    multi default (8 in flight), wall time and the ratio.
 * 3) Fleets and groups: 1,000 instances through SpotFleet, EC2 Fleet
 *    request and maintain, and an Auto Scaling group (50 ms latency, EC2's
 *    buckets enforced), then a part of them returned and the rest: calls
 *    made against the fewest that can do it, RequestLimitExceeded sent.
 * 4) Per-call overhead: health_check (DescribeRegions) against the emulator
 *    with no latency and no throttling, against a direct call to a
 *    zero-latency sim as the baseline.
 * A program, not a test; uses the system clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/provisio.h"
#include "provisio/aws.h"
#include "../tests/integration/emu_harness.h"

#ifndef PV_EC2_EMULATOR
#define PV_EC2_EMULATOR "build/ec2-emulator"
#endif

static double ms_since(uint64_t t0) { return (double)(pv_now_ns() - t0) / 1e6; }

static pv_strategy *provider_n(const emu_proc *e, bool buckets, int per_call, int in_flight)
{
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i}", "region", "us-east-1", "endpoint_url", e->url,
				"access_key_id", "AKIDEXAMPLE", "secret_access_key",
				"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "imds", 0, "max_instances_per_call",
				per_call);
	if (in_flight > 0)
		json_object_set_new(cfg, "describe_max_in_flight", json_integer(in_flight));
	/* The per-call measurement must not be paced by the describe bucket. */
	json_object_set_new(cfg, "throttle", json_pack("{s:b}", "enabled", buckets));
	pv_strategy *s = NULL;
	if (pv_aws_new(&s, "aws-bench", cfg, NULL) != 0 || pv_strategy_initialize(s) != 0) {
		fprintf(stderr, "provider: %s\n", pv_error_last());
		exit(1);
	}
	json_decref(cfg);
	return s;
}

static pv_strategy *provider(const emu_proc *e, bool buckets) { return provider_n(e, buckets, 100, 0); }

static json_t *run(pv_strategy *s, pv_op_type type, json_t *params)
{
	pv_operation op = {.type = type, .params = params};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(s, &op, &r, NULL);
	json_decref(params);
	if (!r.success) {
		fprintf(stderr, "%s failed: %s\n", pv_op_name(type), pv_result_message(&r) ? pv_result_message(&r) : r.error_code);
		exit(1);
	}
	json_t *data = json_incref(r.data);
	pv_result_clear(&r);
	return data;
}

static void print_calls(const emu_proc *e)
{
	json_t *st = emu_admin(e, "/_emu/stats", NULL);
	const char *k;
	json_t *v;
	printf("  emulator calls:");
	json_object_foreach(json_object_get(st, "calls"), k, v) printf(" %s=%lld", k, (long long)json_integer_value(v));
	printf("; RequestLimitExceeded sent: %lld\n", (long long)json_integer_value(json_object_get(st, "throttled")));
	json_decref(st);
}

static void provision(const emu_proc *e, pv_strategy *s)
{
	const int N = 1000, per = 100;
	json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "templateId", "bench", "imageId", "ami-12345678", "vmType",
			      "t3.micro", "instanceTags", "bench=1");
	uint64_t t0 = pv_now_ns();
	json_t *d = run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:O, s:s}", "count", N, "template", t,
							     "request_id", "bench-run"));
	double create_ms = ms_since(t0);
	long long got = json_integer_value(json_object_get(d, "count"));
	json_t *ids = json_incref(json_object_get(d, "instance_ids"));
	json_decref(d);
	/* EC2's RunInstances bucket: 5 at once, then 2 a second. */
	int calls_min = (N + per - 1) / per;
	double bound_ms = calls_min > 5 ? (calls_min - 5) * 500.0 : 0;
	json_t *ps = pv_strategy_stats(s);
	long long run_calls = json_integer_value(json_object_get(json_object_get(ps, "calls"), "RunInstances"));
	long long lre = json_integer_value(json_object_get(ps, "throttled_received"));
	json_decref(ps);
	printf("create_instances x%d via RunInstances (50 ms latency, EC2 buckets)\n", N);
	printf("  instances %lld, RunInstances calls %lld (minimum %d, ratio %.2f), RequestLimitExceeded received %lld\n",
	       got, run_calls, calls_min, (double)run_calls / calls_min, lre);
	printf("  wall %.0f ms; bucket bound %.0f ms + one latency 50 ms = %.0f ms; ratio %.2f\n", create_ms,
	       bound_ms, bound_ms + 50, create_ms / (bound_ms + 50));

	t0 = pv_now_ns();
	d = run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids));
	printf("get_instance_status x%d: %lld instances, %.0f ms (DescribeInstances batches of 200)\n", N,
	       (long long)json_integer_value(json_object_get(d, "count")), ms_since(t0));
	json_decref(d);
	t0 = pv_now_ns();
	d = run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids));
	printf("terminate_instances x%d: %zu terminated, %.0f ms (one call: batches of 1000)\n", N,
	       json_array_size(json_object_get(d, "terminated")), ms_since(t0));
	json_decref(d);
	json_decref(ids);

	json_t *ft = json_pack("{s:s, s:s, s:s, s:{s:i, s:i}}", "templateId", "bench-fleet", "providerApi", "EC2Fleet",
			       "launchTemplateId", "lt-0123456789abcdef0", "vmTypes", "t3.micro", 1, "t3.small", 1);
	t0 = pv_now_ns();
	d = run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", N, "template", ft, "request_id",
						     "bench-fleet"));
	printf("create_instances x%d via CreateFleet instant: %lld instances, %.0f ms\n", N,
	       (long long)json_integer_value(json_object_get(d, "count")), ms_since(t0));
	json_decref(d);
	json_decref(t);
	print_calls(e);
}

static long long total_calls(const emu_proc *e, long long *throttled)
{
	json_t *st = emu_admin(e, "/_emu/stats", NULL);
	long long n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(st, "calls"), k, v) n += json_integer_value(v);
	*throttled = json_integer_value(json_object_get(st, "throttled"));
	json_decref(st);
	return n;
}

/* One row: create N through `api` / `fleet_type`, return `part` of them,
 * then the rest. The fewest calls: make the request's launch template,
 * create the group, list its instances (one page of 1,000); a part back:
 * lower the target and terminate (maintain), terminate (request), or one
 * TerminateInstanceInAutoScalingGroup each; the rest back: end the group
 * with its instances and delete the launch template. */
static void group_row(const emu_proc *e, const char *api, const char *fleet_type, int part)
{
	const int N = 1000;
	json_decref(emu_admin(e, "/_emu/reset", ""));
	json_decref(emu_admin(e, "/_emu/config", "{\"latency_ms\": 50, \"throttle\": true}"));
	pv_strategy *s = NULL;
	json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "region", "us-east-1", "endpoint_url", e->url,
				"autoscaling_endpoint_url", e->url, "access_key_id", "AKIDEXAMPLE", "secret_access_key",
				"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "imds", 0);
	if (pv_aws_new(&s, "aws-bench", cfg, NULL) != 0 || pv_strategy_initialize(s) != 0) {
		fprintf(stderr, "provider: %s\n", pv_error_last());
		exit(1);
	}
	json_decref(cfg);
	json_t *t = json_pack("{s:s, s:s, s:s, s:s}", "templateId", "bench-group", "providerApi", api, "imageId",
			      "ami-12345678", "vmType", "t3.micro");
	if (fleet_type)
		json_object_set_new(t, "fleetType", json_string(fleet_type));
	if (strcmp(api, "SpotFleet") == 0)
		json_object_set_new(t, "fleetRole", json_string("arn:aws:iam::123456789012:role/fleet"));
	long long lre0, calls0 = total_calls(e, &lre0), lre1;
	uint64_t t0 = pv_now_ns();
	json_t *d = run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", N, "template", t, "request_id",
							     "bench-group"));
	double create_ms = ms_since(t0);
	long long got = json_integer_value(json_object_get(d, "count"));
	json_t *ids = json_incref(json_object_get(d, "instance_ids"));
	json_decref(d);
	json_t *some = json_array(), *rest = json_array();
	for (size_t i = 0; i < json_array_size(ids); i++)
		json_array_append(i < (size_t)part ? some : rest, json_array_get(ids, i));
	t0 = pv_now_ns();
	json_decref(run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:o}", "instance_ids", some)));
	json_decref(run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:o}", "instance_ids", rest)));
	double return_ms = ms_since(t0);
	long long calls = total_calls(e, &lre1) - calls0;
	bool asg = strcmp(api, "ASG") == 0, maintain = fleet_type && strcmp(fleet_type, "maintain") == 0;
	long long fewest = 3 + (asg ? part : maintain ? 2 : 1) + 2;
	char name[48];
	snprintf(name, sizeof name, "%s%s%s", api, fleet_type ? " " : "", fleet_type ? fleet_type : "");
	printf("%-20s %9lld %6d %8lld %8lld %6.2f %8lld %10.0f %10.0f\n", name, got, part, calls, fewest,
	       (double)calls / (double)fewest, lre1 - lre0, create_ms, return_ms);
	json_decref(ids);
	pv_strategy_unref(s);
}

static void groups(const emu_proc *e)
{
	printf("\nfleets and groups: 1,000 instances each, a part returned then the rest (50 ms latency, EC2 buckets)\n");
	printf("%-20s %9s %6s %8s %8s %6s %8s %10s %10s\n", "api", "instances", "part", "calls", "fewest", "ratio",
	       "RLE", "create ms", "return ms");
	group_row(e, "SpotFleet", "request", 100);
	group_row(e, "SpotFleet", "maintain", 100);
	group_row(e, "EC2Fleet", "request", 100);
	group_row(e, "EC2Fleet", "maintain", 100);
	group_row(e, "ASG", NULL, 50);
}

/* get_instance_status over N ids: one DescribeInstances batch after
 * another (describe_max_in_flight 1) against the default 8 in flight. */
static void describe_many(const emu_proc *e)
{
	const int N = 2500;
	json_decref(emu_admin(e, "/_emu/reset", ""));
	json_decref(emu_admin(e, "/_emu/config", "{\"latency_ms\": 0, \"throttle\": false}"));
	pv_strategy *seq = provider_n(e, true, 1000, 1), *multi = provider_n(e, true, 1000, 0);
	json_t *t = json_pack("{s:s, s:s, s:s}", "templateId", "bench-many", "imageId", "ami-12345678", "vmType",
			      "t3.micro");
	json_t *d = run(seq, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:o, s:s}", "count", N, "template", t,
							       "request_id", "bench-many"));
	json_t *ids = json_incref(json_object_get(d, "instance_ids"));
	json_decref(d);
	json_decref(emu_admin(e, "/_emu/config", "{\"latency_ms\": 50, \"throttle\": true}"));
	double ms[2];
	long long got[2];
	pv_strategy *who[2] = {seq, multi};
	for (int k = 0; k < 2; k++) {
		uint64_t t0 = pv_now_ns();
		d = run(who[k], PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids));
		ms[k] = ms_since(t0);
		got[k] = json_integer_value(json_object_get(d, "count"));
		json_decref(d);
	}
	int batches = (N + 199) / 200;
	printf("\nget_instance_status x%d (%d DescribeInstances batches of 200, 50 ms latency)\n", N, batches);
	printf("%-44s %10s %10s\n", "", "instances", "wall ms");
	printf("%-44s %10lld %10.0f\n", "sequential (describe_max_in_flight 1)", got[0], ms[0]);
	printf("%-44s %10lld %10.0f\n", "curl multi (describe_max_in_flight 8)", got[1], ms[1]);
	printf("%-44s %21.2f\n", "speed-up (sequential / multi)", ms[0] / ms[1]);
	json_decref(ids);
	pv_strategy_unref(seq);
	pv_strategy_unref(multi);
}

static double ns_per_op(pv_strategy *s, int iters)
{
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	uint64_t t0 = pv_now_ns();
	for (int i = 0; i < iters; i++) {
		pv_result r = PV_RESULT_INIT;
		pv_strategy_execute(s, &op, &r, NULL);
		if (!r.success) {
			fprintf(stderr, "health failed: %s\n", pv_result_message(&r));
			exit(1);
		}
		pv_result_clear(&r);
	}
	return (double)(pv_now_ns() - t0) / iters;
}

int main(int argc, char **argv)
{
	/* `bench_aws groups`: the fleets and groups table alone. */
	bool only_groups = argc > 1 && strcmp(argv[1], "groups") == 0;
	/* The fleet step names this launch template: the emulator, like EC2,
	 * refuses one it does not know. */
	const char *args[] = {"--latency-ms", "50", "--launch-template",
			      "lt-0123456789abcdef0:bench-fleet-lt:ami-12345678:t3.micro", NULL};
	emu_proc e;
	if (emu_start(&e, PV_EC2_EMULATOR, args) != 0) {
		fprintf(stderr, "cannot start %s\n", PV_EC2_EMULATOR);
		return 1;
	}
	if (only_groups) {
		groups(&e);
		emu_stop(&e);
		return 0;
	}
	pv_strategy *s = provider(&e, true);
	provision(&e, s);
	pv_strategy_unref(s);
	describe_many(&e);
	groups(&e);

	json_decref(emu_admin(&e, "/_emu/config", "{\"latency_ms\": 0, \"throttle\": false}"));
	s = provider(&e, false);
	json_t *simcfg = json_pack("{s:{s:s, s:i}}", "latency", "distribution", "fixed", "mean_ms", 0);
	pv_strategy *sim = NULL;
	pv_sim_new(&sim, "sim0", simcfg, NULL);
	pv_strategy_initialize(sim);
	json_decref(simcfg);
	ns_per_op(s, 20); /* warm up */
	double aws_ns = ns_per_op(s, 2000), sim_ns = ns_per_op(sim, 200000);
	printf("\n%-44s %12s\n", "health_check (DescribeRegions), no latency", "ns/op");
	printf("%-44s %12.0f\n", "sim direct call (baseline)", sim_ns);
	printf("%-44s %12.0f\n", "aws provider -> emulator over loopback", aws_ns);
	printf("%-44s %12.0f\n", "overhead (sign, HTTP, XML, emulator)", aws_ns - sim_ns);
	pv_strategy_unref(sim);
	pv_strategy_unref(s);
	emu_stop(&e);
	return 0;
}
