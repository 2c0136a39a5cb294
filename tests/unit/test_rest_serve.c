/*
 * test_rest_serve.c - the rest provider against a real `provisio serve`:
 * one provisio brokering for another (a site broker in front of a central
 * one), on 127.0.0.1 only.
 *
 * The group starts the real program (PV_CLI_BIN serve) on an ephemeral
 * loopback port, backed by a sim provider, with bearer-token auth on. The
 * site side is built from configuration the way a user writes it (api_key
 * from ${PV_TEST_CENTRAL_TOKEN}), and driven through the kernel: every
 * operation; a fallback rest -> libvirt (libvirt's test:///default driver)
 * when the central server is unreachable; a balancer over rest + libvirt +
 * sim driven by `provisio providers exec --repeat`; and TLS verification
 * against a second instance serving HTTPS with a self-signed certificate
 * (made with the openssl command at setup).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "child_process.h"
#include "provisio/provisio.h"
#include "provisio/server.h"
#include "run_cli.h"
#include "wait.h"

#define TOKEN "site-broker-token-0123456789"

static char dir[64];
static char url[128], tls_url[128];
static pid_t serve_pid = -1, tls_pid = -1;

static void write_file(const char *name, const char *text)
{
	char path[160];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool read_url(const char *file, char *buf, size_t len, const char *scheme)
{
	char path[160];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return ok && strncmp(buf, scheme, strlen(scheme)) == 0;
}

/* Starts `provisio --config <dir>/<config> serve` and waits for its URL. */
static pid_t spawn_serve(const char *config, const char *name, char *url_out, size_t len,
			 const char *scheme)
{
	char a[5][200];
	snprintf(a[0], sizeof a[0], "%s/%s", dir, config);
	snprintf(a[1], sizeof a[1], "%s/templates.json", dir);
	snprintf(a[2], sizeof a[2], "%s/%s.db", dir, name);
	snprintf(a[3], sizeof a[3], "%s/%s.url", dir, name);
	snprintf(a[4], sizeof a[4], "%s/%s.log", dir, name);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		pv_test_die_with_parent(parent);
		if (!freopen(a[4], "w", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(PV_CLI_BIN, "provisio", "--config", a[0], "serve", "--templates", a[1], "--store", a[2],
		      "--url-file", a[3], (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	char file[64];
	snprintf(file, sizeof file, "%s.url", name);
	bool died = false;
	PV_TEST_WAIT_UNTIL(read_url(file, url_out, len, scheme) || (died = waitpid(pid, NULL, WNOHANG) == pid));
	return url_out[0] && !died ? pid : -1;
}

static int start_serve(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/pv-test-rest-serve-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char hash[PV_SERVER_TOKEN_HASH_MAX], cfg[1024], cmd[512];
	pv_server_hash_token(TOKEN, 1000, hash, sizeof hash);
	static const char shape[] =
		"{\"providers\": [{\"name\": \"sim-central\", \"type\": \"sim\","
		"  \"config\": {\"seed\": 1, \"capacity\": 200}}],"
		" \"default_strategy\": \"sim-central\","
		" \"server\": {\"listen\": \"127.0.0.1:0\", \"threads\": 1,%s"
		"  \"auth\": {\"tokens\": [{\"name\": \"site\", \"hash\": \"%s\", \"role\": \"admin\"}]}}}";
	snprintf(cfg, sizeof cfg, shape, "", hash);
	write_file("central.json", cfg);
	/* The same server over TLS, with a self-signed certificate for
	 * 127.0.0.1: what verify_tls and ca_file are for. */
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1"
		 " -addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem"
		 " >/dev/null 2>&1", dir, dir);
	if (system(cmd) != 0)
		return -1;
	char tls[300];
	snprintf(tls, sizeof tls, " \"tls\": {\"cert_file\": \"%s/cert.pem\", \"key_file\": \"%s/key.pem\"},",
		 dir, dir);
	snprintf(cfg, sizeof cfg, shape, tls, hash);
	write_file("central-tls.json", cfg);
	write_file("templates.json",
		   "{\"templates\": [{\"templateId\": \"t-small\", \"maxNumber\": 500, \"attributes\":"
		   " {\"type\": [\"String\", \"X86_64\"], \"ncpus\": [\"Numeric\", \"1\"],"
		   " \"nram\": [\"Numeric\", \"1024\"]}, \"provider\": \"sim-central\"}]}");
	serve_pid = spawn_serve("central.json", "central", url, sizeof url, "http://127.0.0.1:");
	tls_pid = spawn_serve("central-tls.json", "central-tls", tls_url, sizeof tls_url, "https://127.0.0.1:");
	setenv("PV_TEST_CENTRAL_TOKEN", TOKEN, 1);
	return serve_pid > 0 && tls_pid > 0 ? 0 : -1;
}

static void end_serve(pid_t pid, const char *name)
{
	if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid) {
		/* It died under the tests: say why. */
		char cmd[160];
		snprintf(cmd, sizeof cmd, "tail -c 4000 '%s/%s.log'", dir, name);
		print_message("provisio serve (%s) exited early; its log ends:\n", name);
		if (system(cmd) != 0)
			print_message("(no log)\n");
	} else if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

static int stop_serve(void **state)
{
	(void)state;
	end_serve(serve_pid, "central");
	end_serve(tls_pid, "central-tls");
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A context from a configuration document in the explicit format, with
 * ${VAR} expanded as the loader does. */
static pv_context *context_from(const char *json)
{
	json_error_t err;
	json_t *doc = json_loads(json, 0, &err);
	if (!doc)
		fail_msg("bad test JSON: %s", err.text);
	pv_diags d;
	pv_diags_init(&d);
	pv_config_expand(doc, &d);
	json_t *graph = pv_config_normalize(doc, true, &d);
	pv_context *ctx = NULL;
	if (!graph || pv_config_build(graph, NULL, &ctx, &d) != 0 || d.errors) {
		char *text = json_dumps(pv_diags_to_json(&d), 0);
		fail_msg("configuration refused: %s", text);
	}
	json_t *report = NULL;
	pv_context_initialize(ctx, &report);
	json_decref(report);
	json_decref(graph);
	json_decref(doc);
	pv_diags_clear(&d);
	return ctx;
}

static void exec_on(pv_context *ctx, const char *name, pv_op_type type, json_t *params, pv_result *r)
{
	pv_operation op = {.type = type, .params = params, .deadline_ns = pv_now_ns() + PV_TEST_PATIENCE_S * PV_NS_PER_S};
	pv_result_init(r);
	pv_context_execute_on(ctx, name, &op, r);
	json_decref(params);
}

static const char *inst_str(const pv_result *r, size_t i, const char *key)
{
	json_t *inst = json_array_get(json_object_get(r->data, "instances"), i);
	return json_string_value(json_object_get(inst, key));
}

static pv_context *site_context(void)
{
	char cfg[512];
	snprintf(cfg, sizeof cfg,
		 "{\"providers\": [{\"name\": \"central\", \"type\": \"rest\", \"config\":"
		 " {\"endpoint_url\": \"%s\", \"api_key\": \"${PV_TEST_CENTRAL_TOKEN}\","
		 "  \"region\": \"hq\", \"timeout\": 10}}], \"default_strategy\": \"central\"}",
		 url);
	return context_from(cfg);
}

static void test_every_operation_through_the_kernel(void **state)
{
	(void)state;
	pv_context *ctx = site_context();
	pv_result r;
	exec_on(ctx, "central", PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "ready")));
	pv_result_clear(&r);

	exec_on(ctx, "central", PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	json_t *t0 = json_array_get(json_object_get(r.data, "templates"), 0);
	assert_string_equal(json_string_value(json_object_get(t0, "templateId")), "t-small");
	pv_result_clear(&r);

	exec_on(ctx, "central", PV_OP_VALIDATE_TEMPLATE, json_pack("{s:s}", "template_id", "t-small"), &r);
	assert_true(r.success);
	pv_result_clear(&r);

	exec_on(ctx, "central", PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:s}", "count", 2, "template_id", "t-small", "request_id", "site-req-1"), &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "central");
	assert_int_equal(json_integer_value(json_object_get(r.data, "count")), 2);
	assert_string_equal(inst_str(&r, 0, "provider"), "central");
	assert_string_equal(inst_str(&r, 0, "remote_provider"), "sim-central");
	json_t *ids = json_incref(json_object_get(r.data, "instance_ids"));
	pv_result_clear(&r);

	/* The same request again (a retry after a lost answer) is replayed
	 * by the server's idempotency keys: still two machines. */
	exec_on(ctx, "central", PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:s}", "count", 2, "template_id", "t-small", "request_id", "site-req-1"), &r);
	assert_true(r.success);
	assert_true(json_equal(json_object_get(r.data, "instance_ids"), ids));
	assert_true(json_is_true(json_object_get(r.data, "replayed")));
	pv_result_clear(&r);

	exec_on(ctx, "central", PV_OP_GET_INSTANCE_STATUS, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 2);
	assert_int_equal(json_array_size(json_object_get(r.data, "not_found")), 0);
	assert_string_equal(inst_str(&r, 0, "state"), "running");
	pv_result_clear(&r);

	exec_on(ctx, "central", PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", "site-req-1"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 2);
	assert_string_equal(inst_str(&r, 0, "request_id"), "site-req-1");
	pv_result_clear(&r);

	exec_on(ctx, "central", PV_OP_TERMINATE_INSTANCES, json_pack("{s:O}", "instance_ids", ids), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 2);
	pv_result_clear(&r);

	pv_health h = {0};
	assert_int_equal(pv_context_check_health(ctx, "central", &h), 0);
	assert_true(h.healthy);
	pv_health_clear(&h);
	json_decref(ids);
	pv_context_free(ctx);
}

static void test_failures_map_to_classes(void **state)
{
	(void)state;
	char cfg[512];
	snprintf(cfg, sizeof cfg,
		 "{\"providers\": [{\"name\": \"central\", \"type\": \"rest\", \"config\":"
		 " {\"endpoint_url\": \"%s\", \"api_key\": \"not-the-token\"}}]}", url);
	pv_context *ctx = context_from(cfg);
	pv_result r;
	exec_on(ctx, "central", PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "AUTH_FAILED");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_int_equal(r.attempts, 1);
	pv_result_clear(&r);
	pv_context_free(ctx);

	ctx = site_context();
	exec_on(ctx, "central", PV_OP_CREATE_INSTANCES, json_pack("{s:s}", "template_id", "no-such"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	pv_result_clear(&r);
	exec_on(ctx, "central", PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "i-nobody"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "NOT_FOUND");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

/* rest -> libvirt: the central server is unreachable, the site's own
 * hypervisors take the request; when it is back, rest answers first. */
static void test_fallback_rest_to_libvirt(void **state)
{
	(void)state;
	static const char shape[] =
		"{\"providers\": ["
		" {\"name\": \"central\", \"type\": \"rest\", \"config\": {\"endpoint_url\": \"%s\","
		"  \"api_key\": \"${PV_TEST_CENTRAL_TOKEN}\", \"max_retries\": 1, \"connect_timeout\": 2}},"
		" {\"name\": \"lab\", \"type\": \"libvirt\", \"config\": {\"uri\": \"test:///default\","
		"  \"templates\": [{\"templateId\": \"t-small\"}]}}],"
		" \"strategies\": [{\"name\": \"site\", \"kind\": \"fallback\", \"primary\": \"central\","
		"  \"fallbacks\": [\"lab\"], \"config\": {\"mode\": \"immediate\"}}],"
		" \"default_strategy\": \"site\"}";
	char cfg[1024], down[64];
	snprintf(down, sizeof down, "http://127.0.0.1:%d", 1);
	snprintf(cfg, sizeof cfg, shape, down);
	pv_context *ctx = context_from(cfg);
	pv_result r;
	exec_on(ctx, "site", PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:s}", "count", 1, "template_id", "t-small", "request_id", "fb-1"), &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "lab");
	assert_string_equal(inst_str(&r, 0, "provider"), "lab");
	pv_result_clear(&r);
	pv_context_free(ctx);

	snprintf(cfg, sizeof cfg, shape, url);
	ctx = context_from(cfg);
	exec_on(ctx, "site", PV_OP_CREATE_INSTANCES,
		json_pack("{s:i, s:s, s:s}", "count", 1, "template_id", "t-small", "request_id", "fb-2"), &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "central");
	pv_result_clear(&r);
	pv_context_free(ctx);
}

/* A balancer over rest + libvirt + sim, driven by the CLI. */
static void test_balancer_over_rest_libvirt_sim_with_cli(void **state)
{
	(void)state;
	char cfg[1024];
	snprintf(cfg, sizeof cfg,
		 "{\"providers\": ["
		 " {\"name\": \"central\", \"type\": \"rest\", \"config\": {\"endpoint_url\": \"%s\","
		 "  \"api_key\": \"${PV_TEST_CENTRAL_TOKEN}\"}},"
		 " {\"name\": \"lab\", \"type\": \"libvirt\", \"config\": {\"uri\": \"test:///default\","
		 "  \"templates\": [{\"templateId\": \"t-small\"}]}},"
		 " {\"name\": \"sim-site\", \"type\": \"sim\", \"config\": {\"seed\": 5}}],"
		 " \"strategies\": [{\"name\": \"lb\", \"kind\": \"balancer\","
		 "  \"children\": [\"central\", \"lab\", \"sim-site\"], \"config\": {\"algorithm\": \"round_robin\"}}],"
		 " \"default_strategy\": \"lb\"}",
		 url);
	write_file("site.json", cfg);
	char args[512], env[128];
	snprintf(env, sizeof env, "PV_TEST_CENTRAL_TOKEN=%s", TOKEN);
	snprintf(args, sizeof args,
		 "--config %s/site.json providers exec create_instances"
		 " --params '{\"count\": 1, \"template_id\": \"t-small\"}' --repeat 30 --threads 3",
		 dir);
	cli_run run = cli(env, args);
	if (run.status != 0 || !run.json)
		fail_msg("exit %d: %s %s", run.status, run.out, run.err);
	json_t *sum = json_object_get(run.json, "summary");
	assert_int_equal(json_integer_value(json_object_get(sum, "succeeded")), 30);
	json_t *by = json_object_get(sum, "by_provider");
	assert_true(json_integer_value(json_object_get(by, "central")) >= 5);
	assert_true(json_integer_value(json_object_get(by, "lab")) >= 5);
	assert_true(json_integer_value(json_object_get(by, "sim-site")) >= 5);
	/* The rest provider's own counters came back in the stats. */
	json_t *http = json_object_get(json_object_get(json_object_get(run.json, "stats"), "central"), "http");
	assert_true(json_integer_value(json_object_get(http, "requests")) >= 5);
	assert_null(strstr(run.out, TOKEN));
	assert_null(strstr(run.err, TOKEN));
	cli_free(&run);
}

static void tls_health(const char *extra, pv_result *r)
{
	char cfg[768];
	snprintf(cfg, sizeof cfg,
		 "{\"providers\": [{\"name\": \"central\", \"type\": \"rest\", \"config\":"
		 " {\"endpoint_url\": \"%s\", \"api_key\": \"${PV_TEST_CENTRAL_TOKEN}\","
		 " \"connect_timeout\": %d, \"timeout\": %d%s}}]}",
		 tls_url, PV_TEST_PATIENCE_S, PV_TEST_PATIENCE_S, extra);
	pv_context *ctx = context_from(cfg);
	exec_on(ctx, "central", PV_OP_GET_AVAILABLE_TEMPLATES, NULL, r);
	pv_context_free(ctx);
}

/* A certificate nobody vouches for is refused (permanent: asking again
 * cannot change who answers); the site's CA file or verify_tls off let the
 * same server through. */
static void test_tls_is_verified_by_default(void **state)
{
	(void)state;
	pv_result r;
	tls_health("", &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "TLS_ERROR");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_int_equal(r.attempts, 1);
	pv_result_clear(&r);

	char extra[256];
	snprintf(extra, sizeof extra, ", \"ca_file\": \"%s/cert.pem\"", dir);
	tls_health(extra, &r);
	assert_true(r.success);
	pv_result_clear(&r);

	tls_health(", \"verify_tls\": false", &r);
	assert_true(r.success);
	pv_result_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_operation_through_the_kernel),
		cmocka_unit_test(test_failures_map_to_classes),
		cmocka_unit_test(test_fallback_rest_to_libvirt),
		cmocka_unit_test(test_balancer_over_rest_libvirt_sim_with_cli),
		cmocka_unit_test(test_tls_is_verified_by_default),
	};
	return cmocka_run_group_tests(tests, start_serve, stop_serve);
}
