/*
 * views.c - the REST API's documents for templates, requests and machines
 * (docs/api.md): one place builds them, so `provisio serve` and the CLI's
 * --format json print the same fields under the same names.
 */
#include <string.h>
#include "broker/broker_internal.h"
#include "provisio/error.h"

json_t *pv_broker_machine_json(const pv_machine_rec *m)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:s}", "machine_id",
			 m->machine_id, "name", m->name, "provider", m->provider, "template_id",
			 m->template_id, "request_id", m->request_id, "state", m->status, "result",
			 m->result, "private_ip", m->private_ip, "public_ip",
			 m->public_ip[0] ? json_string(m->public_ip) : json_null(), "launch_time",
			 (json_int_t)m->launch_time, "message", m->message);
}

json_t *pv_broker_request_json(const pv_request_rec *q, const pv_machine_list *ms)
{
	json_t *list = json_array();
	for (size_t i = 0; ms && i < ms->n; i++)
		json_array_append_new(list, pv_broker_machine_json(&ms->items[i]));
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:o}", "request_id", q->id, "kind",
			 pv_request_kind_name(q->kind), "template_id", q->template_id, "count",
			 (json_int_t)q->requested, "status", pv_broker_hf_status(q->state), "state",
			 pv_request_state_name(q->state), "message", q->message, "created_at",
			 (json_int_t)(q->created_ms / 1000), "machines", list);
}

json_t *pv_broker_template_json(pv_broker *b, const json_t *t)
{
	json_t *v = json_deep_copy(t);
	const char *id = json_string_value(json_object_get(t, "templateId"));
	int64_t avail = 0;
	if (pv_broker_available(b, id, &avail) == 0)
		json_object_set_new(v, "availableNumber", avail == INT64_MAX ? json_integer(-1)
									      : json_integer(avail));
	char strategy[PV_RESULT_NAME_MAX] = "";
	if (pv_broker_template_strategy(b, t, strategy, sizeof strategy) == 0)
		json_object_set_new(v, "provider", json_string(strategy));
	const char *refused = pv_broker_template_refused(b, id);
	if (refused)
		json_object_set_new(v, "refused", json_string(refused));
	return v;
}

bool pv_broker_status_filter_valid(const char *status)
{
	pv_request_state st;
	return strcmp(status, "running") == 0 || strcmp(status, "complete") == 0 ||
	       strcmp(status, "complete_with_error") == 0 || pv_request_state_parse(status, &st) == 0;
}

bool pv_broker_status_filter_matches(const pv_request_rec *q, const char *status)
{
	return !status || strcmp(status, pv_broker_hf_status(q->state)) == 0 ||
	       strcmp(status, pv_request_state_name(q->state)) == 0;
}

bool pv_broker_machine_state_valid(const char *state)
{
	static const char *const states[] = {"pending", "running", "stopping", "stopped",
					     "shutting-down", "terminated", NULL};
	for (const char *const *s = states; *s; s++)
		if (strcmp(*s, state) == 0)
			return true;
	return false;
}
