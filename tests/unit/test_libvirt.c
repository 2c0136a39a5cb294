/*
 * test_libvirt.c - the libvirt provider against libvirt's built-in test
 * driver: test:///default (one shared in-process host whose state lives as
 * long as a connection to it is open, so every test starts clean) and
 * test:///<file> hosts written by the test (each its own host, with or
 * without a storage pool), plus a refused TCP URI for an unreachable host.
 * The same code paths as a real qemu host; no daemon, no hypervisor.
 * Providers come from the libvirt module (provisio-libvirt.so), as in the
 * program; only pv_libvirt_machine_state is called in the test's own copy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <libvirt/libvirt.h>
#include "provisio/provisio.h"
#include "provisio/libvirt.h"
#include "providers/libvirt/lv.h"

#define REFUSED_URI "qemu+tcp://127.0.0.1:1/system"

static char host_dir[64];

static const char host_xml[] =
	"<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>"
	"<cores>4</cores><threads>1</threads><active>4</active></cpu><memory>8388608</memory>"
	"<network><name>default</name><bridge name='virbr0'/><forward/>"
	"<ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' "
	"end='192.168.122.254'/></dhcp></ip></network>%s</node>";
static const char pool_xml[] =
	"<pool type='dir'><name>images</name><target><path>/var/lib/images</path></target>"
	"<volume type='file'><name>base.qcow2</name><capacity unit='G'>20</capacity>"
	"<target><path>/var/lib/images/base.qcow2</path><format type='qcow2'/></target></volume></pool>";

/* Writes a test-driver host file; returns its URI in buf. */
static const char *host_uri(const char *name, bool with_pool, char *buf, size_t len)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s.xml", host_dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, host_xml, with_pool ? pool_xml : "");
	fclose(f);
	snprintf(buf, len, "test://%s", path);
	return buf;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(host_dir, sizeof host_dir, "/tmp/pv-test-libvirt-XXXXXX");
	return mkdtemp(host_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", host_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A libvirt provider as the program makes one: the factory its module
 * registers as it loads. */
static int libvirt_new(pv_strategy **out, const char *name, const json_t *config,
		       const pv_clock *clock)
{
	pv_provider_factory f = pv_provider_factory_find("libvirt");
	if (!f)
		fail_msg("the libvirt module: %s", pv_error_last());
	return f(out, name, config, clock);
}

static pv_strategy *lv_from(const char *json)
{
	json_error_t err;
	json_t *cfg = json_loads(json, 0, &err);
	if (!cfg)
		fail_msg("bad test JSON: %s", err.text);
	pv_strategy *s = NULL;
	int rc = libvirt_new(&s, "lv1", cfg, NULL);
	json_decref(cfg);
	if (rc != 0)
		fail_msg("libvirt_new: %s", pv_error_last());
	assert_int_equal(pv_strategy_initialize(s), 0);
	return s;
}

static void run(pv_strategy *s, pv_op_type type, json_t *params, pv_result *r)
{
	pv_operation op = {.type = type, .params = params};
	pv_strategy_execute(s, &op, r, NULL);
	json_decref(params);
}

static void create(pv_strategy *s, int count, const char *req, pv_result *r)
{
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i, s:s}", "count", count, "request_id", req), r);
}

static const char *inst_str(const pv_result *r, size_t i, const char *key)
{
	json_t *inst = json_array_get(json_object_get(r->data, "instances"), i);
	return json_string_value(json_object_get(inst, key));
}

static int64_t data_int(const pv_result *r, const char *key)
{
	return json_integer_value(json_object_get(r->data, key));
}

/* A second connection to the same test:///default host, to check what the
 * provider did from the outside. */
static virConnectPtr peek(void)
{
	virConnectPtr c = virConnectOpen("test:///default");
	assert_non_null(c);
	return c;
}

static bool domain_exists(virConnectPtr c, const char *name, int *active)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	if (!d)
		return false;
	if (active)
		*active = virDomainIsActive(d);
	virDomainFree(d);
	return true;
}

static int create_config_rejected(const char *json, const char *must_mention)
{
	json_t *cfg = json_loads(json, 0, NULL);
	assert_non_null(cfg);
	pv_strategy *s = NULL;
	int rc = libvirt_new(&s, "lv1", cfg, NULL);
	json_decref(cfg);
	assert_null(s);
	if (!strstr(pv_error_last(), must_mention))
		fail_msg("message '%s' does not mention '%s'", pv_error_last(), must_mention);
	return rc;
}

/* ---- configuration ------------------------------------------------------ */

static void test_config_errors_name_the_field_and_valid_values(void **state)
{
	(void)state;
	assert_int_equal(create_config_rejected("{\"uri\": 5}", "'uri'"), PV_EINVAL);
	create_config_rejected("{\"uri\": \"test:///default\", \"hosts\": [\"a\"]}", "not both");
	create_config_rejected("{\"hosts\": [\"test:///default\", {\"uri\": \"x\", \"capacity\": -5}]}",
			       "hosts[1].capacity");
	create_config_rejected("{\"hosts\": [{\"name\": \"x\"}]}", "hosts[0].uri");
	create_config_rejected("{\"hosts\": [\"a\", \"a\"]}", "unique");
	create_config_rejected("{\"placement\": \"random\"}", "spread, pack");
	create_config_rejected("{\"storage\": {\"overlay\": \"maybe\"}}", "auto, required, off");
	create_config_rejected("{\"ip_sources\": [\"dns\"]}", "lease, agent, arp");
	create_config_rejected("{\"memory_mb\": 1}", "'memory_mb': must be an integer from 16");
	create_config_rejected("{\"vcpus\": \"2\"}", "'vcpus'");
	create_config_rejected("{\"domain_xml\": \"<domain><name>{{name}}</name>{{colour}}</domain>\"}",
			       "unknown placeholder '{{colour}}'");
	create_config_rejected("{\"domain_xml\": \"<domain><name>fixed</name><memory>1</memory></domain>\"}",
			       "{{name}}");
	create_config_rejected("{\"domain_xml\": \"<domain><name>{{name}}</name>\"}", "well-formed");
	create_config_rejected("{\"domain_xml_file\": \"/nonexistent/domain.xml\"}", "domain_xml_file");
	create_config_rejected("{\"templates\": [{\"id\": 1}]}", "templateId");
}

/* ---- create --------------------------------------------------------------- */

static void test_create_defines_and_starts_domains_named_from_request(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "req-7", &r);
	assert_true(r.success);
	assert_string_equal(r.provider, "lv1");
	assert_int_equal(data_int(&r, "count"), 2);
	assert_int_equal(data_int(&r, "created"), 2);
	assert_false(json_is_true(json_object_get(r.data, "partial")));
	assert_string_equal(inst_str(&r, 0, "instance_id"), "pv-lv1-req-7-0");
	assert_string_equal(inst_str(&r, 1, "instance_id"), "pv-lv1-req-7-1");
	assert_string_equal(inst_str(&r, 0, "state"), "running");
	assert_string_equal(inst_str(&r, 0, "provider"), "lv1");
	assert_string_equal(inst_str(&r, 0, "host"), "test:///default");
	assert_string_equal(inst_str(&r, 0, "host_name"), "pv-lv1-req-7-0");
	assert_string_equal(inst_str(&r, 0, "request_id"), "req-7");
	assert_non_null(inst_str(&r, 0, "private_ip"));
	assert_int_equal(strncmp(inst_str(&r, 0, "private_ip"), "192.168.122.", 12), 0);
	assert_true(json_integer_value(json_object_get(json_array_get(json_object_get(r.data, "instances"), 0),
						       "launch_time_ms")) > 0);
	assert_int_equal(json_array_size(json_object_get(r.data, "instance_ids")), 2);

	virConnectPtr c = peek();
	int active = 0;
	assert_true(domain_exists(c, "pv-lv1-req-7-0", &active));
	assert_int_equal(active, 1);
	assert_true(domain_exists(c, "pv-lv1-req-7-1", &active));
	virConnectClose(c);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_retried_create_reuses_domains_instead_of_defining_twice(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "req-r", &r);
	assert_true(r.success);
	pv_result_clear(&r);

	/* Someone stopped one; the retry starts it again rather than redefining. */
	virConnectPtr c = peek();
	virDomainPtr d = virDomainLookupByName(c, "pv-lv1-req-r-1");
	assert_int_equal(virDomainDestroy(d), 0);
	virDomainFree(d);

	create(s, 3, "req-r", &r);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "reused"), 2);
	assert_int_equal(data_int(&r, "created"), 1);
	assert_int_equal(data_int(&r, "count"), 3);
	assert_string_equal(inst_str(&r, 1, "state"), "running");
	assert_string_equal(inst_str(&r, 2, "instance_id"), "pv-lv1-req-r-2");
	pv_result_clear(&r);

	int n = virConnectNumOfDefinedDomains(c) + virConnectNumOfDomains(c);
	assert_int_equal(n, 4); /* the driver's own "test" and our three */
	virConnectClose(c);
	pv_strategy_unref(s);
}

static void test_create_without_request_id_says_it_is_not_idempotent(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:i}", "count", 1), &r);
	assert_true(r.success);
	assert_true(json_is_false(json_object_get(r.data, "idempotent")));
	assert_int_equal(strncmp(inst_str(&r, 0, "instance_id"), "pv-lv1-auto-", 12), 0);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_request_ids_map_to_distinct_bounded_names(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	char a[200], b[200];
	memset(a, 'x', sizeof a - 1);
	a[sizeof a - 1] = '\0';
	memcpy(b, a, sizeof b);
	b[150] = 'y';
	pv_result r1 = PV_RESULT_INIT, r2 = PV_RESULT_INIT;
	create(s, 1, a, &r1);
	create(s, 1, b, &r2);
	assert_true(r1.success);
	assert_true(r2.success);
	assert_string_not_equal(inst_str(&r1, 0, "instance_id"), inst_str(&r2, 0, "instance_id"));
	assert_true(strlen(inst_str(&r1, 0, "instance_id")) < 80);
	pv_result_clear(&r1);
	pv_result_clear(&r2);

	/* Ids that differ only in characters a name cannot carry stay apart. */
	create(s, 1, "req-1", &r1);
	create(s, 1, "req/1", &r2);
	assert_int_equal(data_int(&r2, "created"), 1);
	assert_int_equal(data_int(&r2, "reused"), 0);
	assert_string_equal(inst_str(&r1, 0, "instance_id"), "pv-lv1-req-1-0");
	assert_string_not_equal(inst_str(&r2, 0, "instance_id"), "pv-lv1-req-1-0");
	pv_result_clear(&r1);
	pv_result_clear(&r2);
	pv_strategy_unref(s);
}

static void test_template_attributes_set_vcpus_and_memory(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:s, s:{s:s, s:{s:[s,s], s:[s,s]}}}", "count", 1, "request_id", "req-t",
		      "template", "templateId", "big", "attributes", "ncpus", "Numeric", "4", "nram",
		      "Numeric", "2048"),
	    &r);
	assert_true(r.success);
	assert_string_equal(inst_str(&r, 0, "template_id"), "big");
	virConnectPtr c = peek();
	virDomainPtr d = virDomainLookupByName(c, "pv-lv1-req-t-0");
	virDomainInfo info;
	assert_int_equal(virDomainGetInfo(d, &info), 0);
	assert_int_equal(info.nrVirtCpu, 4);
	assert_int_equal(info.maxMem, 2048 * 1024);
	virDomainFree(d);
	virConnectClose(c);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_bad_template_xml_is_permanent_and_defines_nothing(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_CREATE_INSTANCES,
	    json_pack("{s:i, s:s, s:{s:s, s:s}}", "count", 2, "request_id", "req-bad", "template",
		      "templateId", "broken", "domainXml", "<domain type='test'><name>{{name}}</name>"),
	    &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_non_null(strstr(pv_result_message(&r), "well-formed"));
	pv_result_clear(&r);
	virConnectPtr c = peek();
	assert_false(domain_exists(c, "pv-lv1-req-bad-0", NULL));
	virConnectClose(c);
	pv_strategy_unref(s);
}

static void test_xml_libvirt_rejects_is_permanent(void **state)
{
	(void)state;
	/* Well-formed, but not a domain libvirt accepts: libvirt's own check. */
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\", \"domain_xml\": "
				 "\"<domain type='nosuchhypervisor'><name>{{name}}</name>"
				 "<memory unit='MiB'>{{memory_mb}}</memory><os><type>hvm</type></os></domain>\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-x", &r);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

/* ---- status ------------------------------------------------------------- */

static void test_machine_state_mapping_covers_every_domain_state(void **state)
{
	(void)state;
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_NOSTATE, 0), "pending");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_RUNNING, 1), "running");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_BLOCKED, 0), "running");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER), "stopped");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP), "pending");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_SHUTDOWN, 0), "stopping");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_SHUTOFF, 0), "stopped");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_CRASHED, 0), "terminated");
	assert_string_equal(pv_libvirt_machine_state(VIR_DOMAIN_PMSUSPENDED, 0), "stopped");
}

static const char *status_of(pv_strategy *s, const char *id, const char *key)
{
	static char buf[64];
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", id), &r);
	assert_true(r.success);
	const char *v = inst_str(&r, 0, key);
	snprintf(buf, sizeof buf, "%s", v ? v : "(none)");
	pv_result_clear(&r);
	return buf;
}

static void test_status_follows_the_domain_through_its_states(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-s", &r);
	pv_result_clear(&r);
	const char *id = "pv-lv1-req-s-0";
	assert_string_equal(status_of(s, id, "state"), "running");

	virConnectPtr c = peek();
	virDomainPtr d = virDomainLookupByName(c, id);
	assert_int_equal(virDomainSuspend(d), 0);
	assert_string_equal(status_of(s, id, "state"), "stopped");
	assert_string_equal(status_of(s, id, "libvirt_state"), "paused");
	assert_int_equal(virDomainResume(d), 0);
	assert_string_equal(status_of(s, id, "state"), "running");
	assert_int_equal(virDomainShutdown(d), 0);
	assert_string_equal(status_of(s, id, "state"), "stopped");
	assert_string_equal(status_of(s, id, "libvirt_state"), "shutoff");
	assert_string_equal(status_of(s, id, "private_ip"), "(none)"); /* no IP when off */
	virDomainFree(d);
	virConnectClose(c);
	pv_strategy_unref(s);
}

static void test_status_reports_unknown_ids_as_not_found(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	/* "test" exists on the host but is not provisio's: it stays invisible. */
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s,s]}", "instance_ids", "pv-lv1-nope-0", "test"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 0);
	assert_int_equal(json_array_size(json_object_get(r.data, "not_found")), 2);
	pv_result_clear(&r);
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:s}", "instance_ids", "x"), &r);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_describe_lists_own_domains_of_a_request(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "req-a", &r);
	pv_result_clear(&r);
	create(s, 1, "req-b", &r);
	pv_result_clear(&r);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, json_pack("{s:s}", "request_id", "req-a"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 2);
	pv_result_clear(&r);
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &r);
	assert_int_equal(json_array_size(json_object_get(r.data, "instances")), 3); /* not "test" */
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

/* ---- terminate and overlays --------------------------------------------- */

static bool volume_exists(virConnectPtr c, const char *pool, const char *vol)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);
	virStorageVolPtr v = p ? virStorageVolLookupByName(p, vol) : NULL;
	bool found = v != NULL;
	if (v)
		virStorageVolFree(v);
	if (p)
		virStoragePoolFree(p);
	return found;
}

static void test_overlay_is_created_and_terminate_removes_everything(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\", \"storage\": {\"pool\": \"default-pool\","
				 " \"base_image\": \"/default-pool/base.qcow2\", \"overlay\": \"required\"}}");
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-o", &r);
	assert_true(r.success);
	assert_string_equal(inst_str(&r, 0, "overlay"), "pv-lv1-req-o-0.qcow2");
	pv_result_clear(&r);

	virConnectPtr c = peek();
	assert_true(volume_exists(c, "default-pool", "pv-lv1-req-o-0.qcow2"));
	virDomainPtr d = virDomainLookupByName(c, "pv-lv1-req-o-0");
	char *xml = virDomainGetXMLDesc(d, 0);
	assert_non_null(strstr(xml, "/default-pool/pv-lv1-req-o-0.qcow2"));
	free(xml);
	virDomainFree(d);

	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "pv-lv1-req-o-0"), &r);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 1);
	pv_result_clear(&r);
	assert_false(domain_exists(c, "pv-lv1-req-o-0", NULL));
	assert_false(volume_exists(c, "default-pool", "pv-lv1-req-o-0.qcow2"));

	/* Gone: a second terminate finds nothing. */
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "pv-lv1-req-o-0"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "NOT_FOUND");
	pv_result_clear(&r);
	virConnectClose(c);
	json_t *st = pv_strategy_stats(s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "overlays"), "created")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "overlays"), "removed")), 1);
	json_decref(st);
	pv_strategy_unref(s);
}

static void test_overlay_of_pool_volume_on_custom_host(void **state)
{
	(void)state;
	char uri[160], cfg[512];
	snprintf(cfg, sizeof cfg, "{\"uri\": \"%s\", \"storage\": {\"pool\": \"images\", \"base_image\": \"base.qcow2\"}}",
		 host_uri("withpool", true, uri, sizeof uri));
	pv_strategy *s = lv_from(cfg);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-v", &r);
	assert_true(r.success);
	assert_string_equal(inst_str(&r, 0, "overlay"), "pv-lv1-req-v-0.qcow2");
	assert_null(json_object_get(r.data, "notes"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_overlay_skipped_with_note_when_host_has_no_pool(void **state)
{
	(void)state;
	char uri[160], cfg[512];
	snprintf(cfg, sizeof cfg, "{\"uri\": \"%s\", \"storage\": {\"pool\": \"images\", "
		 "\"base_image\": \"/var/lib/images/base.qcow2\"}}", host_uri("nopool", false, uri, sizeof uri));
	pv_strategy *s = lv_from(cfg);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-n", &r);
	assert_true(r.success);
	assert_null(inst_str(&r, 0, "overlay"));
	const char *note = json_string_value(json_array_get(json_object_get(r.data, "notes"), 0));
	assert_non_null(note);
	assert_non_null(strstr(note, "overlay skipped"));
	assert_non_null(strstr(note, "images"));
	pv_result_clear(&r);
	pv_strategy_unref(s);

	/* required: refuse instead */
	snprintf(cfg, sizeof cfg, "{\"uri\": \"%s\", \"storage\": {\"pool\": \"images\", \"overlay\": \"required\","
		 " \"base_image\": \"/var/lib/images/base.qcow2\"}}", uri);
	s = lv_from(cfg);
	create(s, 1, "req-n", &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_int_equal(r.error_class, PV_CLASS_PERMANENT);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_required_overlay_moves_to_a_host_that_has_the_pool(void **state)
{
	(void)state;
	char a[160], b[160], cfg[640];
	snprintf(cfg, sizeof cfg, "{\"hosts\": [{\"uri\": \"%s\", \"name\": \"bare\"}, "
		 "{\"uri\": \"%s\", \"name\": \"stocked\"}], \"placement\": \"pack\", "
		 "\"storage\": {\"pool\": \"images\", \"base_image\": \"base.qcow2\", \"overlay\": \"required\"}}",
		 host_uri("bare", false, a, sizeof a), host_uri("stocked", true, b, sizeof b));
	pv_strategy *s = lv_from(cfg);
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "req-h", &r);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "count"), 2);
	assert_string_equal(inst_str(&r, 0, "host"), "stocked");
	assert_string_equal(inst_str(&r, 1, "host"), "stocked");
	json_t *err = json_array_get(json_object_get(r.data, "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(err, "host")), "bare");
	assert_string_equal(json_string_value(json_object_get(err, "code")), "INVALID_PARAMETERS");
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_terminate_never_touches_domains_it_did_not_create(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "test"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "NOT_FOUND");
	pv_result_clear(&r);
	virConnectPtr c = peek();
	assert_true(domain_exists(c, "test", NULL));
	virConnectClose(c);
	pv_strategy_unref(s);
}

static void test_terminate_mixed_ids_and_dry_run(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "req-m", &r);
	pv_result_clear(&r);
	json_t *ctx = json_pack("{s:b}", "dry_run", 1);
	json_t *params = json_pack("{s:[s,s]}", "instance_ids", "pv-lv1-req-m-0", "pv-lv1-gone-0");
	pv_operation op = {.type = PV_OP_TERMINATE_INSTANCES, .params = params, .context = ctx};
	pv_strategy_execute(s, &op, &r, NULL);
	assert_true(r.success);
	assert_true(json_is_true(json_object_get(r.data, "dry_run")));
	pv_result_clear(&r);
	virConnectPtr c = peek();
	assert_true(domain_exists(c, "pv-lv1-req-m-0", NULL)); /* dry run kept it */

	op.context = NULL;
	pv_strategy_execute(s, &op, &r, NULL);
	assert_true(r.success);
	assert_int_equal(json_array_size(json_object_get(r.data, "terminated")), 1);
	assert_int_equal(json_array_size(json_object_get(r.data, "not_found")), 1);
	assert_false(domain_exists(c, "pv-lv1-req-m-0", NULL));
	assert_true(domain_exists(c, "pv-lv1-req-m-1", NULL));
	pv_result_clear(&r);
	virConnectClose(c);
	json_decref(params);
	json_decref(ctx);
	pv_strategy_unref(s);
}

/* ---- hosts, capacity, failures ------------------------------------------ */

static void test_capacity_spreads_then_partial_then_capacity_error(void **state)
{
	(void)state;
	char a[160], b[160], cfg[512];
	snprintf(cfg, sizeof cfg, "{\"hosts\": [{\"uri\": \"%s\", \"name\": \"kvm-a\"}, "
		 "{\"uri\": \"%s\", \"name\": \"kvm-b\"}], \"capacity\": 2}",
		 host_uri("cap-a", false, a, sizeof a), host_uri("cap-b", false, b, sizeof b));
	pv_strategy *s = lv_from(cfg);
	pv_result r = PV_RESULT_INIT;
	create(s, 3, "req-1", &r);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "count"), 3);
	int on_a = 0;
	for (size_t i = 0; i < 3; i++)
		on_a += strcmp(inst_str(&r, i, "host"), "kvm-a") == 0;
	assert_true(on_a == 1 || on_a == 2); /* both hosts used */
	pv_result_clear(&r);

	create(s, 3, "req-2", &r);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "count"), 1);
	assert_int_equal(data_int(&r, "requested"), 3);
	assert_true(json_is_true(json_object_get(r.data, "partial")));
	pv_result_clear(&r);

	create(s, 1, "req-3", &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CAPACITY");
	assert_int_equal(r.error_class, PV_CLASS_CAPACITY);
	pv_result_clear(&r);

	/* Terminating frees room again. */
	run(s, PV_OP_TERMINATE_INSTANCES, json_pack("{s:[s]}", "instance_ids", "pv-lv1-req-1-0"), &r);
	assert_true(r.success);
	pv_result_clear(&r);
	create(s, 1, "req-3", &r);
	assert_true(r.success);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_pack_placement_fills_hosts_in_order(void **state)
{
	(void)state;
	char a[160], b[160], cfg[512];
	snprintf(cfg, sizeof cfg, "{\"hosts\": [{\"uri\": \"%s\", \"name\": \"a\", \"capacity\": 2}, "
		 "{\"uri\": \"%s\", \"name\": \"b\", \"capacity\": 5}], \"placement\": \"pack\"}",
		 host_uri("pack-a", false, a, sizeof a), host_uri("pack-b", false, b, sizeof b));
	pv_strategy *s = lv_from(cfg);
	pv_result r = PV_RESULT_INIT;
	create(s, 3, "req-p", &r);
	assert_true(r.success);
	assert_string_equal(inst_str(&r, 0, "host"), "a");
	assert_string_equal(inst_str(&r, 1, "host"), "a");
	assert_string_equal(inst_str(&r, 2, "host"), "b");
	pv_result_clear(&r);

	/* Status and terminate find each machine on its own host. */
	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s,s]}", "instance_ids", "pv-lv1-req-p-0", "pv-lv1-req-p-2"), &r);
	assert_string_equal(inst_str(&r, 0, "host"), "a");
	assert_string_equal(inst_str(&r, 1, "host"), "b");
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_unreachable_host_is_a_transient_connection_error(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"" REFUSED_URI "\"}");
	assert_true(pv_strategy_is_initialized(s)); /* a down host does not break init */
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-u", &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "CONNECTION_ERROR");
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	assert_non_null(strstr(pv_result_message(&r), "127.0.0.1"));
	pv_result_clear(&r);

	run(s, PV_OP_GET_INSTANCE_STATUS, json_pack("{s:[s]}", "instance_ids", "pv-lv1-req-u-0"), &r);
	assert_false(r.success);
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	pv_result_clear(&r);

	run(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "UNHEALTHY");
	assert_int_equal(r.error_class, PV_CLASS_TRANSIENT);
	pv_result_clear(&r);

	pv_health h = {0};
	assert_int_equal(pv_strategy_health(s, &h), 0);
	assert_false(h.healthy);
	pv_health_clear(&h);
	pv_strategy_unref(s);
}

static void test_pool_survives_one_unreachable_host(void **state)
{
	(void)state;
	char a[160], cfg[512];
	snprintf(cfg, sizeof cfg, "{\"hosts\": [{\"uri\": \"" REFUSED_URI "\", \"name\": \"down\"}, "
		 "{\"uri\": \"%s\", \"name\": \"up\"}], \"placement\": \"pack\"}",
		 host_uri("survivor", false, a, sizeof a));
	pv_strategy *s = lv_from(cfg);
	pv_result r = PV_RESULT_INIT;
	create(s, 2, "req-d", &r);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "count"), 2);
	assert_string_equal(inst_str(&r, 0, "host"), "up");
	json_t *err = json_array_get(json_object_get(r.data, "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(err, "host")), "down");
	assert_string_equal(json_string_value(json_object_get(err, "code")), "CONNECTION_ERROR");
	pv_result_clear(&r);

	pv_health h = {0};
	pv_strategy_health(s, &h);
	assert_true(h.healthy); /* degraded, but serving */
	assert_non_null(strstr(h.message, "1 of 2"));
	pv_health_clear(&h);

	json_t *st = pv_strategy_stats(s);
	json_t *down = json_array_get(json_object_get(st, "hosts"), 0);
	assert_true(json_integer_value(json_object_get(down, "connect_failures")) >= 2);
	assert_false(json_is_true(json_object_get(down, "connected")));
	json_decref(st);
	pv_strategy_unref(s);
}

static uint64_t connect_failures(pv_strategy *s)
{
	json_t *st = pv_strategy_stats(s);
	uint64_t n = (uint64_t)json_integer_value(
		json_object_get(json_array_get(json_object_get(st, "hosts"), 0), "connect_failures"));
	json_decref(st);
	return n;
}

static void test_dead_host_is_not_redialled_within_reconnect_interval(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(PV_NS_PER_S);
	json_t *cfg = json_pack("{s:s, s:i}", "uri", REFUSED_URI, "reconnect_interval_ms", 2000);
	pv_strategy *s = NULL;
	assert_int_equal(libvirt_new(&s, "lv1", cfg, pv_manual_clock_get(mc)), 0);
	json_decref(cfg);
	assert_int_equal(pv_strategy_initialize(s), 0);
	assert_int_equal(connect_failures(s), 1);
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-i", &r);
	assert_string_equal(r.error_code, "CONNECTION_ERROR"); /* the remembered error */
	assert_non_null(strstr(pv_result_message(&r), "Connection refused"));
	pv_result_clear(&r);
	assert_int_equal(connect_failures(s), 1);
	pv_manual_clock_advance(mc, 2 * PV_NS_PER_S);
	create(s, 1, "req-i", &r);
	assert_string_equal(r.error_code, "CONNECTION_ERROR");
	pv_result_clear(&r);
	assert_int_equal(connect_failures(s), 2); /* interval over: tried again */
	pv_strategy_unref(s);
	pv_manual_clock_free(mc);
}

static void test_libvirt_errors_never_reach_stderr(void **state)
{
	(void)state;
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), 2);
	pv_strategy *s = lv_from("{\"uri\": \"" REFUSED_URI "\"}");
	pv_result r = PV_RESULT_INIT;
	create(s, 1, "req-q", &r);
	pv_result_clear(&r);
	pv_strategy_unref(s);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
	long size = ftell(tmp);
	fclose(tmp);
	assert_int_equal(size, 0);
}

/* ---- validate, templates, health, capabilities --------------------------- */

static void test_validate_template_renders_and_parses_without_a_host(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"" REFUSED_URI "\"}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_VALIDATE_TEMPLATE,
	    json_pack("{s:{s:s, s:s, s:{s:[s,s], s:[s,s]}}}", "template", "templateId", "t1", "imageId",
		      "/img/base.qcow2", "attributes", "ncpus", "Numeric", "8", "nram", "Numeric", "8192"),
	    &r);
	assert_true(r.success);
	const char *xml = json_string_value(json_object_get(r.data, "domain_xml"));
	assert_non_null(strstr(xml, "<vcpu>8</vcpu>"));
	assert_non_null(strstr(xml, ">8192</memory>"));
	assert_non_null(strstr(xml, "/img/base.qcow2"));
	assert_non_null(strstr(xml, "provisio:instance"));
	pv_result_clear(&r);

	run(s, PV_OP_VALIDATE_TEMPLATE,
	    json_pack("{s:{s:s, s:{s:[s,s]}}}", "template", "templateId", "t2", "attributes", "nram",
		      "Numeric", "lots"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_non_null(strstr(pv_result_message(&r), "nram"));
	pv_result_clear(&r);

	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:s}", "template_id", "unknown"), &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	pv_result_clear(&r);

	run(s, PV_OP_VALIDATE_TEMPLATE, json_pack("{s:s}", "template_id", "libvirt-default"), &r);
	assert_true(r.success);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_available_templates_come_from_config(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\", \"templates\": [{\"templateId\": \"kvm-small\", "
				 "\"maxNumber\": 4, \"attributes\": {\"ncpus\": [\"Numeric\", \"1\"]}}]}");
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_GET_AVAILABLE_TEMPLATES, NULL, &r);
	assert_true(r.success);
	json_t *t = json_array_get(json_object_get(r.data, "templates"), 0);
	assert_string_equal(json_string_value(json_object_get(t, "templateId")), "kvm-small");
	pv_result_clear(&r);
	/* a configured template can be named by id alone */
	run(s, PV_OP_CREATE_INSTANCES, json_pack("{s:s, s:s}", "template_id", "kvm-small", "request_id", "req-k"), &r);
	assert_true(r.success);
	assert_string_equal(inst_str(&r, 0, "template_id"), "kvm-small");
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_health_opens_the_connection_and_reads_node_info(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	pv_health h = {0};
	assert_int_equal(pv_strategy_health(s, &h), 0);
	assert_true(h.healthy);
	json_t *host = json_array_get(json_object_get(h.details, "hosts"), 0);
	assert_int_equal(json_integer_value(json_object_get(host, "cpus")), 16);
	assert_true(json_is_true(json_object_get(host, "reachable")));
	pv_health_clear(&h);
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_HEALTH_CHECK, NULL, &r);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "reachable"), 1);
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_capabilities_describe_the_pool(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"hosts\": [{\"uri\": \"test:///default\", \"capacity\": 3}, "
				 "{\"uri\": \"" REFUSED_URI "\", \"capacity\": 4}]}");
	pv_capabilities c = {0};
	assert_int_equal(pv_strategy_capabilities(s, &c), 0);
	assert_string_equal(c.type, "libvirt");
	assert_true(pv_capabilities_supports(&c, PV_OP_CREATE_INSTANCES));
	assert_true(pv_capabilities_supports(&c, PV_OP_VALIDATE_TEMPLATE));
	assert_int_equal(json_integer_value(json_object_get(c.limitations, "capacity")), 7);
	assert_int_equal(json_integer_value(json_object_get(c.limitations, "hosts")), 2);
	assert_true(json_is_true(json_object_get(c.features, "idempotent_create")));
	pv_capabilities_clear(&c);
	pv_strategy_unref(s);
}

static void test_dry_run_create_defines_nothing(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\"}");
	json_t *ctx = json_pack("{s:b}", "dry_run", 1);
	json_t *params = json_pack("{s:i, s:s}", "count", 2, "request_id", "req-dry");
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .params = params, .context = ctx};
	pv_result r = PV_RESULT_INIT;
	pv_strategy_execute(s, &op, &r, NULL);
	assert_true(r.success);
	assert_int_equal(data_int(&r, "would_create"), 2);
	pv_result_clear(&r);
	virConnectPtr c = peek();
	assert_false(domain_exists(c, "pv-lv1-req-dry-0", NULL));
	virConnectClose(c);
	json_decref(params);
	json_decref(ctx);
	pv_strategy_unref(s);
}

static void test_create_count_out_of_range_is_invalid(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"uri\": \"test:///default\", \"max_instances_per_request\": 5}");
	pv_result r = PV_RESULT_INIT;
	create(s, 6, "req-big", &r);
	assert_string_equal(r.error_code, "INVALID_PARAMETERS");
	assert_non_null(strstr(pv_result_message(&r), "1 to 5"));
	pv_result_clear(&r);
	pv_strategy_unref(s);
}

static void test_passed_deadline_stops_before_creating(void **state)
{
	(void)state;
	pv_manual_clock *mc = pv_manual_clock_new(1000 * PV_NS_PER_S);
	json_t *cfg = json_pack("{s:s}", "uri", "test:///default");
	pv_strategy *s = NULL;
	assert_int_equal(libvirt_new(&s, "lv1", cfg, pv_manual_clock_get(mc)), 0);
	json_decref(cfg);
	pv_strategy_initialize(s);
	json_t *params = json_pack("{s:i, s:s}", "count", 2, "request_id", "req-late");
	/* Called directly: the kernel's own pre-check would catch this first;
	 * the provider must also stop between machines. */
	pv_operation op = {.type = PV_OP_CREATE_INSTANCES, .params = params,
			   .deadline_ns = 1000 * PV_NS_PER_S};
	pv_result r = PV_RESULT_INIT;
	s->methods->execute(s, &op, &r);
	assert_false(r.success);
	assert_string_equal(r.error_code, "TIMEOUT");
	pv_result_clear(&r);
	json_decref(params);
	pv_strategy_unref(s);
	pv_manual_clock_free(mc);
}

/* ---- concurrency ---------------------------------------------------------- */

typedef struct worker {
	pv_strategy *s;
	int id;
	int64_t made;
} worker;

static void *create_worker(void *arg)
{
	worker *w = arg;
	for (int k = 0; k < 3; k++) {
		char req[32];
		snprintf(req, sizeof req, "req-w%d-%d", w->id, k);
		pv_result r = PV_RESULT_INIT;
		create(w->s, 2, req, &r);
		if (r.success)
			w->made += data_int(&r, "count");
		pv_result_clear(&r);
	}
	return NULL;
}

static void test_concurrent_creates_never_exceed_host_capacity(void **state)
{
	(void)state;
	pv_strategy *s = lv_from("{\"hosts\": [{\"uri\": \"test:///default\", \"capacity\": 7}]}");
	worker w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){.s = s, .id = i};
		pthread_create(&t[i], NULL, create_worker, &w[i]);
	}
	int64_t made = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		made += w[i].made;
	}
	pv_result r = PV_RESULT_INIT;
	run(s, PV_OP_DESCRIBE_RESOURCE_INSTANCES, NULL, &r);
	int64_t listed = (int64_t)json_array_size(json_object_get(r.data, "instances"));
	pv_result_clear(&r);
	assert_true(made <= 7);
	assert_true(made >= 2);
	assert_int_equal(listed, made); /* every reported machine exists, nothing extra */
	json_t *st = pv_strategy_stats(s);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(st, "hosts"), 0),
							    "inflight")), 0);
	json_decref(st);
	pv_strategy_unref(s);
}

/* Metadata read back from a domain (anyone with access to the hypervisor
 * may have changed it): an attribute too long for its field is refused,
 * never cut into another request's id. */
static void metadata_too_long_is_refused_not_cut(void **state)
{
	(void)state;
	lv_meta m;
	assert_int_equal(lv_meta_parse("<provisio:instance xmlns:provisio='" LV_METADATA_URI "' request='req-1'"
				       " template='t1' launch_time_ms='12'/>", &m), 0);
	assert_string_equal(m.request_id, "req-1");
	assert_int_equal(m.launch_time_ms, 12);
	char xml[600];
	snprintf(xml, sizeof xml, "<provisio:instance xmlns:provisio='" LV_METADATA_URI "' request='req-%0200d'/>", 1);
	assert_int_equal(lv_meta_parse(xml, &m), PV_EINVAL);
	assert_non_null(strstr(pv_error_last(), "'request'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metadata_too_long_is_refused_not_cut),
		cmocka_unit_test(test_config_errors_name_the_field_and_valid_values),
		cmocka_unit_test(test_create_defines_and_starts_domains_named_from_request),
		cmocka_unit_test(test_retried_create_reuses_domains_instead_of_defining_twice),
		cmocka_unit_test(test_create_without_request_id_says_it_is_not_idempotent),
		cmocka_unit_test(test_request_ids_map_to_distinct_bounded_names),
		cmocka_unit_test(test_template_attributes_set_vcpus_and_memory),
		cmocka_unit_test(test_bad_template_xml_is_permanent_and_defines_nothing),
		cmocka_unit_test(test_xml_libvirt_rejects_is_permanent),
		cmocka_unit_test(test_machine_state_mapping_covers_every_domain_state),
		cmocka_unit_test(test_status_follows_the_domain_through_its_states),
		cmocka_unit_test(test_status_reports_unknown_ids_as_not_found),
		cmocka_unit_test(test_describe_lists_own_domains_of_a_request),
		cmocka_unit_test(test_overlay_is_created_and_terminate_removes_everything),
		cmocka_unit_test(test_overlay_of_pool_volume_on_custom_host),
		cmocka_unit_test(test_overlay_skipped_with_note_when_host_has_no_pool),
		cmocka_unit_test(test_required_overlay_moves_to_a_host_that_has_the_pool),
		cmocka_unit_test(test_terminate_never_touches_domains_it_did_not_create),
		cmocka_unit_test(test_terminate_mixed_ids_and_dry_run),
		cmocka_unit_test(test_capacity_spreads_then_partial_then_capacity_error),
		cmocka_unit_test(test_pack_placement_fills_hosts_in_order),
		cmocka_unit_test(test_unreachable_host_is_a_transient_connection_error),
		cmocka_unit_test(test_pool_survives_one_unreachable_host),
		cmocka_unit_test(test_dead_host_is_not_redialled_within_reconnect_interval),
		cmocka_unit_test(test_libvirt_errors_never_reach_stderr),
		cmocka_unit_test(test_validate_template_renders_and_parses_without_a_host),
		cmocka_unit_test(test_available_templates_come_from_config),
		cmocka_unit_test(test_health_opens_the_connection_and_reads_node_info),
		cmocka_unit_test(test_capabilities_describe_the_pool),
		cmocka_unit_test(test_dry_run_create_defines_nothing),
		cmocka_unit_test(test_create_count_out_of_range_is_invalid),
		cmocka_unit_test(test_passed_deadline_stops_before_creating),
		cmocka_unit_test(test_concurrent_creates_never_exceed_host_capacity),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
