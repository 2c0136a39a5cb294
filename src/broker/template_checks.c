/*
 * template_checks.c - the Host Factory templates file checked against the
 * providers that serve each template, without calling any of them out.
 *
 * A template whose fields its provider refuses can never run. Offered to
 * Host Factory it would fail at every requestMachines, and Host Factory
 * would keep asking. So at broker open (every Host Factory script, `serve`)
 * such a template is left out of getAvailableTemplates with a warning that
 * names it and its fields, and requestMachines refuses it with the same
 * reason; the other templates keep working. `config validate` reports it as
 * an error. Only providers with the capability feature "template_field_checks"
 * (their validate_template with check_only makes no call) are asked: others
 * would contact their service at every Host Factory call.
 */
#include <stdio.h>
#include <string.h>
#include "broker/broker_internal.h"
#include "provisio/log.h"

#define CHECK_DEADLINE_NS (10 * PV_NS_PER_S)

static bool checks_offline(pv_context *ctx, const char *provider)
{
	pv_capabilities caps = {0};
	if (pv_context_capabilities(ctx, provider, &caps) < 0)
		return false;
	json_t *want = json_pack("[s]", "template_field_checks");
	bool yes = pv_capabilities_has_features(&caps, want);
	json_decref(want);
	pv_capabilities_clear(&caps);
	return yes;
}

/* Appends "field: message" to `why` ("; " between). */
static void add_reason(char *why, size_t size, const char *field, const char *message)
{
	size_t len = strlen(why);
	if (len + 1 < size)
		snprintf(why + len, size - len, "%s%s: %s", len ? "; " : "", field ? field : "-",
			 message ? message : "");
}

static void report(const json_t *problems, const char *id, const char *provider, pv_diags *d,
		   pv_diag_level refused_level, char *why, size_t size)
{
	size_t i;
	json_t *p;
	json_array_foreach(problems, i, p) {
		const char *level = json_string_value(json_object_get(p, "level"));
		const char *field = json_string_value(json_object_get(p, "field"));
		const char *msg = json_string_value(json_object_get(p, "message"));
		bool error = level && strcmp(level, "error") == 0;
		if (error)
			add_reason(why, size, field, msg);
		if (d)
			pv_diags_add(d, error ? refused_level : PV_DIAG_WARNING, "templates", "template '%s' field '%s' (%s): %s",
				     id, field ? field : "-", provider, msg ? msg : "");
	}
}

/* One template on one provider: its reasons appended to `why` when refused. */
static void check_on(pv_context *ctx, const json_t *t, const char *id, const char *provider, pv_diags *d,
		     pv_diag_level refused_level, char *why, size_t size)
{
	json_t *params = json_pack("{s:O, s:s, s:b}", "template", t, "template_id", id, "check_only", 1);
	pv_operation op = {.type = PV_OP_VALIDATE_TEMPLATE, .params = params,
			   .deadline_ns = pv_now_ns() + CHECK_DEADLINE_NS};
	pv_result r = PV_RESULT_INIT;
	pv_context_execute_on(ctx, provider, &op, &r);
	if (r.success) {
		report(json_object_get(r.data, "problems"), id, provider, d, refused_level, why, size);
	} else {
		const json_t *problems = json_object_get(pv_result_meta(&r), "problems");
		size_t before = strlen(why);
		report(problems, id, provider, d, refused_level, why, size);
		if (strlen(why) == before) { /* refused without a field list */
			add_reason(why, size, "template", pv_result_message(&r));
			if (d)
				pv_diags_add(d, refused_level, "templates", "template '%s' (%s): %s", id, provider,
					     pv_result_message(&r) ? pv_result_message(&r) : r.error_code);
		}
	}
	pv_result_clear(&r);
	json_decref(params);
}

json_t *pv_broker_check_templates(pv_context *ctx, const json_t *leaves, const json_t *templates,
				  pv_diag_level refused_level, pv_diags *d)
{
	json_t *refused = json_object();
	size_t i, k;
	json_t *t, *leaf;
	json_array_foreach(templates, i, t) {
		const char *id = json_string_value(json_object_get(t, "templateId"));
		char strategy[PV_RESULT_NAME_MAX];
		if (pv_template_strategy(ctx, t, strategy, sizeof strategy) < 0)
			continue; /* no strategy to check against: requestMachines says so */
		json_t *under = leaves ? json_object_get(leaves, strategy) : NULL;
		json_t *own = under ? NULL : json_pack("[s]", strategy);
		char why[PV_STORE_MESSAGE_MAX] = "";
		json_array_foreach(under ? under : own, k, leaf) {
			const char *provider = json_string_value(leaf);
			if (provider && checks_offline(ctx, provider))
				check_on(ctx, t, id, provider, d, refused_level, why, sizeof why);
		}
		json_decref(own);
		if (why[0])
			json_object_set_new(refused, id, json_string(why));
	}
	return refused;
}

void pv_broker_refuse_templates(pv_broker *b)
{
	json_decref(b->refused);
	b->refused = pv_broker_check_templates(b->ctx, b->leaves, b->templates, PV_DIAG_ERROR, NULL);
	const char *id;
	json_t *why;
	json_object_foreach(b->refused, id, why)
		pv_log(PV_LOG_WARN, "templates: '%s' is left out of getAvailableTemplates and refused by "
				    "requestMachines (%s): %s", id, pv_broker_templates_path(b), json_string_value(why));
}

const char *pv_broker_template_refused(pv_broker *b, const char *template_id)
{
	return b->refused && template_id ? json_string_value(json_object_get(b->refused, template_id)) : NULL;
}
