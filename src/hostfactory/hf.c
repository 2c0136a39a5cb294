/*
 * hf.c - the five Host Factory commands: input validated and translated to
 * broker calls, answers shaped exactly as Host Factory reads them.
 *
 * Validation happens here, before the broker writes anything, so a bad
 * input never leaves half a request behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "provisio/hostfactory.h"

static const char *const names[PV_HF_COMMAND_COUNT] = {
	"getAvailableTemplates", "requestMachines", "getRequestStatus", "requestReturnMachines",
	"getReturnRequests"};

const char *pv_hf_command_name(pv_hf_command c)
{
	return (unsigned)c < PV_HF_COMMAND_COUNT ? names[c] : "unknown";
}

int pv_hf_command_parse(const char *name, pv_hf_command *out)
{
	for (int i = 0; name && i < PV_HF_COMMAND_COUNT; i++)
		if (strcasecmp(name, names[i]) == 0) {
			*out = (pv_hf_command)i;
			return 0;
		}
	return pv_error_set(PV_EINVAL, "command '%s' is not one of getAvailableTemplates, "
				       "requestMachines, getRequestStatus, requestReturnMachines, "
				       "getReturnRequests", name ? name : "(null)");
}

static json_t *message(const char *text) { return json_pack("{s:s}", "message", text ? text : ""); }

/* ---- getAvailableTemplates ------------------------------------------------------ */

/* The template as configured (minus provisio's own "provider"), with
 * availableNumber right after maxNumber. */
static json_t *template_view(pv_broker *b, const json_t *t)
{
	json_t *v = json_object();
	const char *id = json_string_value(json_object_get(t, "templateId"));
	int64_t avail = 0;
	int rc = pv_broker_available(b, id, &avail);
	const char *key;
	json_t *val;
	if (!json_object_get(t, "maxNumber"))
		json_object_set_new(v, "maxNumber", json_integer(-1));
	json_object_foreach((json_t *)t, key, val) {
		if (strcmp(key, "provider") == 0)
			continue;
		json_object_set(v, key, val);
		if (strcmp(key, "templateId") == 0 && !json_object_get(t, "maxNumber"))
			json_object_set_new(v, "maxNumber", json_integer(-1));
	}
	if (rc == 0 && avail != INT64_MAX)
		json_object_set_new(v, "availableNumber", json_integer(avail));
	return v;
}

static int get_templates(pv_broker *b, json_t **out)
{
	json_t *list = json_array();
	size_t i;
	json_t *t;
	int rc = pv_store_begin(pv_broker_store(b), false);
	if (rc < 0) {
		json_decref(list);
		*out = message(pv_error_last());
		return rc;
	}
	json_array_foreach(pv_broker_templates(b), i, t) json_array_append_new(list, template_view(b, t));
	pv_store_commit(pv_broker_store(b));
	*out = json_pack("{s:s, s:o}", "message", "Get available templates success.", "templates", list);
	return 0;
}

/* ---- requestMachines ------------------------------------------------------------- */

static int request_machines(pv_broker *b, const json_t *in, json_t **out)
{
	json_t *t = json_object_get(in, "template");
	if (json_is_array(t) && json_array_size(t) == 1)
		t = json_array_get(t, 0); /* some HF versions send a one-element list */
	if (!json_is_object(t)) {
		*out = message("input needs \"template\": {\"templateId\": ..., \"machineCount\": N}");
		return PV_EINVAL;
	}
	const char *id = json_string_value(json_object_get(t, "templateId"));
	json_t *count = json_object_get(t, "machineCount");
	if (!id || !*id) {
		*out = message("template.templateId is required and must be a non-empty string");
		return PV_EINVAL;
	}
	if (!json_is_integer(count) || json_integer_value(count) <= 0) {
		*out = message("template.machineCount is required and must be an integer >= 1");
		return PV_EINVAL;
	}
	char rid[PV_STORE_SHORT_MAX];
	int rc = pv_broker_request_machines(b, id, json_integer_value(count), rid);
	if (rc < 0) {
		*out = message(pv_error_last());
		return rc;
	}
	*out = json_pack("{s:s, s:s}", "requestId", rid, "message", "Request VM success from provisio.");
	return 0;
}

/* ---- getRequestStatus ------------------------------------------------------------------ */

json_t *pv_hf_machine_json(const pv_machine_rec *m)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "machineId", m->machine_id, "name", m->name,
			      "result", m->result, "status", m->status, "privateIpAddress", m->private_ip);
	if (m->public_ip[0])
		json_object_set_new(j, "publicIpAddress", json_string(m->public_ip));
	json_object_set_new(j, "launchtime", json_integer(m->launch_time));
	json_object_set_new(j, "message", json_string(m->message));
	if (m->instance_type[0])
		json_object_set_new(j, "instanceType", json_string(m->instance_type));
	if (m->price_type[0])
		json_object_set_new(j, "priceType", json_string(m->price_type));
	return j;
}

/* What getRequestStatus answers, before it is written either way. */
typedef struct status_set {
	pv_request_rec *reqs;
	pv_machine_list *machines;
	size_t n;
} status_set;

static void status_set_clear(status_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		pv_machine_list_clear(&s->machines[i]);
	free(s->reqs);
	free(s->machines);
	memset(s, 0, sizeof *s);
}

/* Validates the input and reads (refreshing) every request asked for. On
 * failure *err receives the {"message"} answer. */
static int collect_status(pv_broker *b, const json_t *in, status_set *s, json_t **err)
{
	memset(s, 0, sizeof *s);
	json_t *reqs = json_object_get(in, "requests");
	json_t *one = json_is_object(reqs) ? reqs : NULL;
	size_t n = one ? 1 : json_array_size(reqs);
	if ((!one && !json_is_array(reqs)) || n == 0) {
		*err = message("input needs \"requests\": [{\"requestId\": \"req-...\"}, ...]");
		return PV_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_object_get(one ? one : json_array_get(reqs, i), "requestId"));
		if (!id || !*id) {
			char text[96];
			snprintf(text, sizeof text, "requests[%zu].requestId must be a non-empty string", i);
			*err = message(text);
			return PV_EINVAL;
		}
	}
	s->reqs = calloc(n, sizeof *s->reqs);
	s->machines = calloc(n, sizeof *s->machines);
	if (!s->reqs || !s->machines) {
		status_set_clear(s);
		*err = message("out of memory");
		return PV_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_object_get(one ? one : json_array_get(reqs, i), "requestId"));
		s->n = i + 1;
		int rc = pv_broker_request_status(b, id, &s->reqs[i], &s->machines[i]);
		if (rc < 0) {
			*err = message(pv_error_last());
			status_set_clear(s);
			return rc;
		}
	}
	return 0;
}

static int request_status(pv_broker *b, const json_t *in, json_t **out)
{
	status_set s;
	int rc = collect_status(b, in, &s, out);
	if (rc < 0)
		return rc;
	json_t *list = json_array();
	for (size_t i = 0; i < s.n; i++) {
		json_t *machines = json_array();
		for (size_t k = 0; k < s.machines[i].n; k++)
			json_array_append_new(machines, pv_hf_machine_json(&s.machines[i].items[k]));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "requestId", s.reqs[i].id,
						      "status", pv_broker_hf_status(s.reqs[i].state),
						      "message", s.reqs[i].message, "machines", machines));
	}
	status_set_clear(&s);
	*out = json_pack("{s:o}", "requests", list);
	return 0;
}

/* ---- streaming getRequestStatus ---------------------------------------------------- */

/* A JSON string (quotes included), escaped as jansson escapes it. Runs
 * of plain bytes go out in one write, and stdio's per-call locking is
 * skipped (one thread writes): this is the hot loop of a 1,000-machine
 * status. */
static void put_str(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	fputc_unlocked('"', f);
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fwrite_unlocked(run, 1, (size_t)(p - run), f);
		run = p + 1;
		char esc[7] = {'\\', 0};
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\t': esc[1] = 't'; break;
		case '\r': esc[1] = 'r'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
		}
		fputs_unlocked(esc, f);
	}
	fputs_unlocked(run, f);
	fputc_unlocked('"', f);
}

static void put_field(FILE *f, const char *indent, const char *key, const char *value, bool last)
{
	fputs_unlocked(indent, f);
	fputc_unlocked('"', f);
	fputs_unlocked(key, f);
	fputs_unlocked("\": ", f);
	put_str(f, value);
	fputs_unlocked(last ? "\n" : ",\n", f);
}

/* Exactly the layout (and key order) json_dumpf gives pv_hf_machine_json
 * with JSON_INDENT(2), written without building the tree. */
static void put_machine(FILE *f, const pv_machine_rec *m, bool last)
{
	const char *in = "          ";
	fputs_unlocked("        {\n", f);
	put_field(f, in, "machineId", m->machine_id, false);
	put_field(f, in, "name", m->name, false);
	put_field(f, in, "result", m->result, false);
	put_field(f, in, "status", m->status, false);
	put_field(f, in, "privateIpAddress", m->private_ip, false);
	if (m->public_ip[0])
		put_field(f, in, "publicIpAddress", m->public_ip, false);
	fprintf(f, "%s\"launchtime\": %lld,\n", in, (long long)m->launch_time); /* once a machine */
	bool more = m->instance_type[0] || m->price_type[0];
	put_field(f, in, "message", m->message, !more);
	if (m->instance_type[0])
		put_field(f, in, "instanceType", m->instance_type, !m->price_type[0]);
	if (m->price_type[0])
		put_field(f, in, "priceType", m->price_type, true);
	fputs_unlocked(last ? "        }\n" : "        },\n", f);
}

static void put_status(FILE *f, const status_set *s)
{
	fputs_unlocked("{\n  \"requests\": [\n", f);
	for (size_t i = 0; i < s->n; i++) {
		const pv_request_rec *r = &s->reqs[i];
		fputs_unlocked("    {\n", f);
		put_field(f, "      ", "requestId", r->id, false);
		put_field(f, "      ", "status", pv_broker_hf_status(r->state), false);
		put_field(f, "      ", "message", r->message, false);
		if (s->machines[i].n == 0) {
			fputs_unlocked("      \"machines\": []\n", f);
		} else {
			fputs_unlocked("      \"machines\": [\n", f);
			for (size_t k = 0; k < s->machines[i].n; k++)
				put_machine(f, &s->machines[i].items[k], k + 1 == s->machines[i].n);
			fputs_unlocked("      ]\n", f);
		}
		fputs_unlocked(i + 1 == s->n ? "    }\n" : "    },\n", f);
	}
	fputs_unlocked("  ]\n}\n", f);
}

/* ---- requestReturnMachines / getReturnRequests ------------------------------------------------- */

/* The machine references of "machines": [{"name", "machineId"}]. */
static int machine_refs(const json_t *in, pv_machine_ref **refs, size_t *n, bool required,
			json_t **out)
{
	json_t *ms = json_object_get(in, "machines");
	*refs = NULL;
	*n = 0;
	if (!ms && !required)
		return 0;
	if (!json_is_array(ms) || (required && json_array_size(ms) == 0)) {
		*out = message("input needs \"machines\": [{\"name\": ..., \"machineId\": ...}, ...]");
		return PV_EINVAL;
	}
	*refs = calloc(json_array_size(ms) + 1, sizeof **refs);
	if (!*refs) {
		*out = message("out of memory");
		return PV_ENOMEM;
	}
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m) {
		const char *id = json_string_value(json_object_get(m, "machineId"));
		const char *name = json_string_value(json_object_get(m, "name"));
		if ((!id || !*id) && (!name || !*name)) {
			char text[96];
			snprintf(text, sizeof text, "machines[%zu] needs a machineId or a name", i);
			*out = message(text);
			free(*refs);
			*refs = NULL;
			return PV_EINVAL;
		}
		(*refs)[(*n)++] = (pv_machine_ref){id, name};
	}
	return 0;
}

static int return_machines(pv_broker *b, const json_t *in, json_t **out)
{
	pv_machine_ref *refs;
	size_t n;
	int rc = machine_refs(in, &refs, &n, true, out);
	if (rc < 0)
		return rc;
	char rid[PV_STORE_SHORT_MAX];
	rc = pv_broker_return_machines(b, refs, n, rid);
	free(refs);
	if (rc < 0) {
		*out = message(pv_error_last());
		return rc;
	}
	*out = json_pack("{s:s, s:s}", "requestId", rid, "message", "Delete VM success.");
	return 0;
}

static int return_requests(pv_broker *b, const json_t *in, json_t **out)
{
	pv_machine_ref *refs;
	size_t n;
	int rc = machine_refs(in, &refs, &n, false, out);
	if (rc < 0)
		return rc;
	pv_machine_list ms = {0};
	rc = pv_broker_reclaimed(b, refs, n, &ms);
	free(refs);
	if (rc < 0) {
		pv_machine_list_clear(&ms);
		*out = message(pv_error_last());
		return rc;
	}
	json_t *list = json_array();
	int64_t grace = pv_broker_get_settings(b)->grace_period_seconds;
	for (size_t i = 0; i < ms.n; i++) {
		bool gone = strcmp(ms.items[i].status, "terminated") == 0;
		json_array_append_new(list, json_pack("{s:s, s:I}", "machine", ms.items[i].name,
						      "gracePeriod", (json_int_t)(gone ? 0 : grace)));
	}
	char text[128];
	snprintf(text, sizeof text, "%zu machine(s) being reclaimed by their provider.", ms.n);
	pv_machine_list_clear(&ms);
	*out = json_pack("{s:s, s:s, s:o}", "status", "complete", "message", text, "requests", list);
	return 0;
}

int pv_hf_write(pv_broker *b, pv_hf_command cmd, const json_t *in, FILE *f)
{
	json_t *out = NULL;
	int rc;
	if (cmd == PV_HF_GET_REQUEST_STATUS && json_is_object(in)) {
		status_set s;
		rc = collect_status(b, in, &s, &out);
		if (rc == 0) {
			put_status(f, &s);
			status_set_clear(&s);
			return 0;
		}
	} else {
		rc = pv_hf_run(b, cmd, in, &out);
	}
	json_dumpf(out, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(out);
	return rc;
}

int pv_hf_run(pv_broker *b, pv_hf_command cmd, const json_t *in, json_t **out)
{
	*out = NULL;
	if (!json_is_object(in)) {
		*out = message("the input must be a JSON object");
		return PV_EINVAL;
	}
	int rc;
	switch (cmd) {
	case PV_HF_GET_AVAILABLE_TEMPLATES:
		rc = get_templates(b, out);
		break;
	case PV_HF_REQUEST_MACHINES:
		rc = request_machines(b, in, out);
		break;
	case PV_HF_GET_REQUEST_STATUS:
		rc = request_status(b, in, out);
		break;
	case PV_HF_REQUEST_RETURN_MACHINES:
		rc = return_machines(b, in, out);
		break;
	case PV_HF_GET_RETURN_REQUESTS:
		rc = return_requests(b, in, out);
		break;
	default:
		*out = message("unknown command");
		return PV_EINVAL;
	}
	if (!*out)
		*out = message(rc < 0 ? pv_error_last() : "");
	return rc;
}
