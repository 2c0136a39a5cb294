/*
 * hf.c - the five Host Factory commands: input validated and translated to
 * broker calls, answers shaped exactly as Host Factory reads them.
 *
 * Validation happens here, before the broker writes anything, so a bad
 * input never leaves half a request behind.
 *
 * Each command first looks for a live `provisio serve` on the store (its
 * heartbeat row). With one, the broker runs deferred: no provider call,
 * requests and returns are queued for the daemon, status is read as the
 * daemon's reconciler keeps it. Without one, the command calls the
 * providers itself and first finishes whatever a stopped or crashed daemon
 * left queued. The answers have the same shape either way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "provisio/hostfactory.h"
#include "provisio/log.h"
#include "util/names.h"
#include "util/utf8.h"

static const char *const names[PV_HF_COMMAND_COUNT] = {
	"getAvailableTemplates", "requestMachines", "getRequestStatus", "requestReturnMachines",
	"getReturnRequests"};

const char *pv_hf_command_name(pv_hf_command c)
{
	return (unsigned)c < PV_HF_COMMAND_COUNT ? names[c] : "unknown";
}

int pv_hf_command_parse(const char *name, pv_hf_command *out)
{
	int i = pv_names_find(names, PV_HF_COMMAND_COUNT, name, "command");
	if (i < 0)
		return i;
	*out = (pv_hf_command)i;
	return 0;
}

/* A JSON string of stored or provider text: bytes that are not UTF-8 (a
 * message cut by a fixed-size field, a provider's Latin-1) become U+FFFD
 * instead of making jansson refuse the string and the answer lose it. */
static json_t *text_json(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (pv_utf8_valid(s, n))
		return json_stringn(s ? s : "", n);
	char *clean = malloc(3 * n + 1);
	if (!clean)
		return json_string("");
	pv_utf8_clean(clean, 3 * n + 1, s, n);
	json_t *j = json_string(clean);
	free(clean);
	return j;
}

/* The contract's failure answer, {"message": ...}: never NULL, whatever
 * bytes the message holds. */
static json_t *message(const char *text)
{
	json_t *j = json_object();
	if (j)
		json_object_set_new(j, "message", text_json(text));
	return j;
}

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
	/* a template its provider refuses is left out (logged at open, by id
	 * and field): offered, it would fail at every requestMachines */
	json_array_foreach(pv_broker_templates(b), i, t)
		if (!pv_broker_template_refused(b, json_string_value(json_object_get(t, "templateId"))))
			json_array_append_new(list, template_view(b, t));
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
	if (!json_is_integer(count)) {
		*out = message("template.machineCount is required and must be an integer");
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
	json_t *j = json_object();
	json_object_set_new(j, "machineId", text_json(m->machine_id));
	json_object_set_new(j, "name", text_json(m->name));
	json_object_set_new(j, "result", text_json(m->result));
	json_object_set_new(j, "status", text_json(m->status));
	json_object_set_new(j, "privateIpAddress", text_json(m->private_ip));
	if (m->public_ip[0])
		json_object_set_new(j, "publicIpAddress", text_json(m->public_ip));
	json_object_set_new(j, "launchtime", json_integer(m->launch_time));
	json_object_set_new(j, "message", text_json(m->message));
	if (m->instance_type[0])
		json_object_set_new(j, "instanceType", text_json(m->instance_type));
	if (m->price_type[0])
		json_object_set_new(j, "priceType", text_json(m->price_type));
	return j;
}

/* What getRequestStatus answers, before it is written either way. */
typedef struct status_set {
	const char **asked;  /* the ids as given (borrowed from the input) */
	pv_request_rec *reqs;
	pv_machine_list *machines;
	size_t n;
} status_set;

static void status_set_clear(status_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		pv_machine_list_clear(&s->machines[i]);
	free(s->asked);
	free(s->reqs);
	free(s->machines);
	memset(s, 0, sizeof *s);
}

/* The entry of an id nobody knows: done, with the reason, so Host Factory
 * gets its answer for the other ids and stops asking about this one. */
static void unknown_request(pv_request_rec *r, const char *id)
{
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%s", id);
	r->state = PV_REQ_FAILED;
	snprintf(r->message, sizeof r->message, "%s", pv_error_last());
}

/* Validates the input and reads (refreshing) every request asked for; an
 * unknown id gets an entry of its own. On failure (bad input, the store)
 * *err receives the {"message"} answer. */
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
	s->asked = calloc(n, sizeof *s->asked);
	s->reqs = calloc(n, sizeof *s->reqs);
	s->machines = calloc(n, sizeof *s->machines);
	if (!s->asked || !s->reqs || !s->machines) {
		status_set_clear(s);
		*err = message("out of memory");
		return PV_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *id = json_string_value(json_object_get(one ? one : json_array_get(reqs, i), "requestId"));
		s->n = i + 1;
		s->asked[i] = id;
		int rc = pv_broker_request_status(b, id, &s->reqs[i], &s->machines[i]);
		if (rc == PV_ENOTFOUND) {
			pv_log(PV_LOG_WARN, "hostfactory: getRequestStatus: %s", pv_error_last());
			unknown_request(&s->reqs[i], id);
		} else if (rc < 0) {
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
		json_array_append_new(list, json_pack("{s:o, s:s, s:o, s:o}", "requestId", text_json(s.asked[i]),
						      "status", pv_broker_hf_status(s.reqs[i].state),
						      "message", text_json(s.reqs[i].message), "machines", machines));
	}
	status_set_clear(&s);
	*out = json_pack("{s:o}", "requests", list);
	return 0;
}

/* ---- streaming getRequestStatus ---------------------------------------------------- */

/* The answer is appended to one buffer and written with a single fwrite:
 * cheaper than stdio call by call, and Host Factory never reads half an
 * answer from a process that dies while writing. */
typedef struct outbuf {
	char *p;
	size_t n, cap;
	bool failed;
} outbuf;

static void put_n(outbuf *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->n + n + 1)
			cap *= 2;
		char *grown = realloc(o->p, cap);
		if (!grown) {
			o->failed = true;
			return;
		}
		o->p = grown;
		o->cap = cap;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

#define PUT_LIT(o, lit) put_n((o), (lit), sizeof(lit) - 1)

/* A JSON string (quotes included), escaped as jansson escapes it; runs of
 * plain bytes are copied at once, bytes that are not UTF-8 become U+FFFD
 * (as text_json makes them). */
static void put_str(outbuf *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s, *p = s;
	PUT_LIT(o, "\"");
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80) {
			size_t n = pv_utf8_char((const unsigned char *)p, strnlen(p, 4));
			if (n) {
				p += n - 1;
				continue;
			}
			put_n(o, run, (size_t)(p - run));
			run = p + 1;
			PUT_LIT(o, "\xef\xbf\xbd");
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put_n(o, run, (size_t)(p - run));
		run = p + 1;
		char esc[6] = {'\\', 0, 0, 0, 0, 0};
		size_t len = 2;
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
			len = 6;
		}
		put_n(o, esc, len);
	}
	put_n(o, run, (size_t)(p - run));
	PUT_LIT(o, "\"");
}

/* `prefix` is the indent, the quoted key and ": ". */
static void put_field(outbuf *o, const char *prefix, const char *value, bool last)
{
	put_n(o, prefix, strlen(prefix));
	put_str(o, value);
	if (last)
		PUT_LIT(o, "\n");
	else
		PUT_LIT(o, ",\n");
}

#define M "          \""
#define R "      \""

/* Exactly the layout (and key order) json_dumpf gives pv_hf_machine_json
 * with JSON_INDENT(2), written without building the tree. */
static void put_machine(outbuf *o, const pv_machine_rec *m, bool last)
{
	PUT_LIT(o, "        {\n");
	put_field(o, M "machineId\": ", m->machine_id, false);
	put_field(o, M "name\": ", m->name, false);
	put_field(o, M "result\": ", m->result, false);
	put_field(o, M "status\": ", m->status, false);
	put_field(o, M "privateIpAddress\": ", m->private_ip, false);
	if (m->public_ip[0])
		put_field(o, M "publicIpAddress\": ", m->public_ip, false);
	char num[64];
	int len = snprintf(num, sizeof num, M "launchtime\": %lld,\n", (long long)m->launch_time);
	put_n(o, num, (size_t)len);
	bool more = m->instance_type[0] || m->price_type[0];
	put_field(o, M "message\": ", m->message, !more);
	if (m->instance_type[0])
		put_field(o, M "instanceType\": ", m->instance_type, !m->price_type[0]);
	if (m->price_type[0])
		put_field(o, M "priceType\": ", m->price_type, true);
	if (last)
		PUT_LIT(o, "        }\n");
	else
		PUT_LIT(o, "        },\n");
}

static void put_status(outbuf *o, const status_set *s)
{
	PUT_LIT(o, "{\n  \"requests\": [\n");
	for (size_t i = 0; i < s->n; i++) {
		const pv_request_rec *r = &s->reqs[i];
		PUT_LIT(o, "    {\n");
		put_field(o, R "requestId\": ", s->asked[i], false);
		put_field(o, R "status\": ", pv_broker_hf_status(r->state), false);
		put_field(o, R "message\": ", r->message, false);
		if (s->machines[i].n == 0) {
			PUT_LIT(o, R "machines\": []\n");
		} else {
			PUT_LIT(o, R "machines\": [\n");
			for (size_t k = 0; k < s->machines[i].n; k++)
				put_machine(o, &s->machines[i].items[k], k + 1 == s->machines[i].n);
			PUT_LIT(o, "      ]\n");
		}
		if (i + 1 == s->n)
			PUT_LIT(o, "    }\n");
		else
			PUT_LIT(o, "    },\n");
	}
	PUT_LIT(o, "  ]\n}\n");
}

#undef M
#undef R

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
	/* the machines nobody knew are named in the request's message */
	pv_request_rec r = {0};
	pv_store *st = pv_broker_store(b);
	if (pv_store_begin(st, false) == 0) {
		pv_store_request_get(st, rid, &r);
		pv_store_commit(st);
	}
	char text[PV_STORE_MESSAGE_MAX + 32];
	snprintf(text, sizeof text, "Delete VM success%s%s.", r.message[0] ? "; " : "", r.message);
	*out = json_pack("{s:s, s:s}", "requestId", rid, "message", text);
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

static int run(pv_broker *b, pv_hf_command cmd, const json_t *in, json_t **out);

/* A failed call's reason is what its answer says: pv_error_last() must say
 * it too, or the caller's log shows whatever an earlier lookup left there
 * (an input error once was logged as "no key 'daemon/heartbeat'"). */
static int keep_reason(int rc, const json_t *out)
{
	const char *text = json_string_value(json_object_get(out, "message"));
	if (rc >= 0 || !text || text == pv_error_last())
		return rc;
	char copy[1024];
	snprintf(copy, sizeof copy, "%s", text);
	pv_error_set(rc, "%s", copy);
	return rc;
}

int pv_hf_write(pv_broker *b, pv_hf_command cmd, const json_t *in, FILE *f)
{
	json_t *out = NULL;
	int rc;
	pv_broker_choose_mode(b, "hostfactory");
	if (cmd == PV_HF_GET_REQUEST_STATUS && json_is_object(in)) {
		status_set s;
		rc = collect_status(b, in, &s, &out);
		if (rc == 0) {
			outbuf o = {0};
			put_status(&o, &s);
			status_set_clear(&s);
			if (!o.failed && fwrite(o.p, 1, o.n, f) == o.n) {
				free(o.p);
				return 0;
			}
			free(o.p);
			rc = pv_error_set(PV_ENOMEM, "out of memory writing the answer");
			out = message(pv_error_last());
		}
	} else {
		rc = run(b, cmd, in, &out);
	}
	if (!out) /* an answer that could not be built is still an answer */
		out = message(rc < 0 ? pv_error_last() : "the answer could not be built");
	keep_reason(rc, out);
	json_dumpf(out, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	/* a new request's id is Host Factory's once it is out of this process:
	 * until then, a crash leaves a request nobody knows (reclaimed later) */
	const char *id = json_string_value(json_object_get(out, "requestId"));
	if (cmd == PV_HF_REQUEST_MACHINES && rc == 0 && id && fflush(f) == 0 && !ferror(f) &&
	    pv_broker_request_delivered(b, id) < 0)
		pv_log(PV_LOG_WARN, "hostfactory: %s not marked delivered: %s", id, pv_error_last());
	json_decref(out);
	return rc;
}

int pv_hf_run(pv_broker *b, pv_hf_command cmd, const json_t *in, json_t **out)
{
	pv_broker_choose_mode(b, "hostfactory");
	return run(b, cmd, in, out);
}

static int run(pv_broker *b, pv_hf_command cmd, const json_t *in, json_t **out)
{
	*out = NULL;
	if (!json_is_object(in)) {
		*out = message("the input must be a JSON object");
		return keep_reason(PV_EINVAL, *out);
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
		return keep_reason(PV_EINVAL, *out);
	}
	if (!*out)
		*out = message(rc < 0 ? pv_error_last() : "");
	return keep_reason(rc, *out);
}
