/*
 * ops.c - terminate_instances, get_instance_status,
 * describe_resource_instances and health_check for the AWS provider.
 *
 * TerminateInstances takes at most 1000 ids a call; DescribeInstances is
 * asked by ids in batches of 200 (EC2's filter value limit, and ids cannot
 * be combined with MaxResults) or by a tag / reservation / fleet filter,
 * following NextToken until the last page. Without an id at all,
 * describe_resource_instances lists every instance this provider tagged
 * that is not gone (the reconciler's orphan sweep). The batches run concurrently
 * from the calling thread (many.c), and the instances come back in the
 * order of the ids given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "providers/aws/aws_strategy.h"
#include "providers/aws/groups.h"

#define TERMINATE_BATCH 1000
#define DESCRIBE_ID_BATCH 200

const json_t *aws_template(aws *a, const pv_operation *op, pv_result *out)
{
	json_t *p = op->params;
	json_t *t = json_object_get(p, "template");
	if (t) {
		if (json_is_object(t))
			return t;
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'template' must be an object");
		return NULL;
	}
	const char *id = json_string_value(json_object_get(p, "template_id"));
	if (!id) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "give parameter 'template' (object) or 'template_id' (string)");
		return NULL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(a->templates, i, v) {
		const char *tid = json_string_value(json_object_get(v, "templateId"));
		if (tid && strcmp(tid, id) == 0)
			return v;
	}
	pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
		       "template '%s' is not assigned to aws provider '%s'", id, a->base.name);
	return NULL;
}

void aws_annotate(aws *a, json_t *instances)
{
	size_t i;
	json_t *v;
	json_array_foreach(instances, i, v) {
		json_object_set_new(v, "provider", json_string(a->base.name));
		json_t *tags = json_object_get(v, "tags");
		json_t *req = json_object_get(tags, "provisio:request-id");
		json_t *tmpl = json_object_get(tags, "provisio:template-id");
		if (req)
			json_object_set(v, "request_id", req);
		if (tmpl)
			json_object_set(v, "template_id", tmpl);
		json_object_del(v, "client_token");
	}
}

/* The instance_ids parameter: a non-empty array of strings, or NULL. */
static json_t *get_ids(const pv_operation *op, pv_result *out, bool required)
{
	json_t *ids = json_object_get(op->params, "instance_ids");
	if (!ids && !required)
		return NULL;
	size_t i;
	json_t *v;
	bool ok = json_is_array(ids) && json_array_size(ids) > 0;
	json_array_foreach(ids, i, v) ok = ok && json_is_string(v) && json_string_length(v) > 0;
	if (!ok)
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'instance_ids' must be a non-empty array of instance id strings");
	return ok ? ids : NULL;
}

/* ---- terminate --------------------------------------------------------------- */

void aws_op_terminate(aws *a, const pv_operation *op, pv_result *out)
{
	json_t *ids = get_ids(op, out, true);
	if (!ids)
		return;
	json_t *done = json_array(), *plain = NULL;
	unsigned calls = 0;
	bool dry = pv_operation_dry_run(op);
	if (!dry) {
		/* A fleet's or group's instances go back through it. */
		plain = aws_groups_release(a, op, ids, done, &calls, out);
		if (!plain) {
			pv_result_meta_set(out, "terminated", done);
			return;
		}
		ids = plain;
	}
	for (size_t start = 0; start < json_array_size(ids); start += TERMINATE_BATCH) {
		aws_form f;
		aws_form_init(&f, "TerminateInstances");
		for (size_t i = start; i < json_array_size(ids) && i < start + TERMINATE_BATCH; i++)
			aws_form_addf(&f, json_string_value(json_array_get(ids, i)), "InstanceId.%zu",
				      i - start + 1);
		if (dry)
			aws_form_add(&f, "DryRun", "true");
		aws_call c;
		bool ok = !f.oom && aws_do(a, ACT_TERMINATE_INSTANCES, f.buf, op->deadline_ns, &c);
		aws_form_free(&f);
		calls += c.attempts;
		if (dry && !ok && strcmp(c.ec2_code, "DryRunOperation") == 0) {
			aws_call_free(&c);
			continue;
		}
		if (!ok) {
			aws_call_fail(a, ACT_TERMINATE_INSTANCES, &c, out);
			pv_result_meta_set(out, "terminated", done);
			aws_call_free(&c);
			json_decref(plain);
			return;
		}
		json_t *got = aws_xml_terminated(c.reply.body, c.reply.len);
		if (got) {
			json_array_extend(done, got);
			json_decref(got);
		}
		aws_call_free(&c);
	}
	json_t *data = json_pack("{s:o, s:b}", "instances", done, "dry_run", dry);
	json_t *tids = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(done, i, v) json_array_append(tids, json_object_get(v, "instance_id"));
	json_object_set_new(data, "terminated", tids);
	pv_result_ok(out, data);
	pv_result_meta_set(out, "api_calls", json_integer(calls));
	json_decref(plain);
}

/* ---- describe ---------------------------------------------------------------- */

/* One DescribeInstances query (a batch of ids, or a filter) and the
 * instances its pages gave. */
typedef struct describe_job {
	aws_form sel;  /* selectors only: the raw encoded pairs */
	bool paged;    /* MaxResults (not allowed with ids) */
	json_t *found; /* owned */
} describe_job;

/* The body of a query's call: selectors, then the page's NextToken. */
static char *describe_form(const describe_job *d, const char *next)
{
	aws_form f;
	aws_form_init(&f, "DescribeInstances");
	aws_form_append(&f, &d->sel);
	if (d->paged)
		aws_form_add(&f, "MaxResults", "1000");
	if (next)
		aws_form_add(&f, "NextToken", next);
	if (f.oom) {
		aws_form_free(&f);
		return NULL;
	}
	return f.buf;
}

static aws_job_next describe_page_done(aws *a, aws_job *j, void *ctx)
{
	(void)a;
	(void)ctx;
	describe_job *d = j->user;
	if (!j->call.ok)
		return AWS_JOB_STOP;
	char *next = NULL;
	json_t *got = aws_xml_instances(j->call.reply.body, j->call.reply.len, &next);
	if (got) {
		json_array_extend(d->found, got);
		json_decref(got);
	}
	if (!next)
		return AWS_JOB_DONE;
	char *form = describe_form(d, next);
	free(next);
	if (!form) {
		j->call.ok = false;
		j->call.cls = PV_CLASS_INTERNAL;
		snprintf(j->call.reply.error, sizeof j->call.reply.error, "out of memory");
		return AWS_JOB_STOP;
	}
	free(j->form);
	j->form = form;
	return AWS_JOB_AGAIN;
}

/* Orders `list` as `ids` were given (EC2 answers by reservation). */
static json_t *in_given_order(json_t *list, json_t *ids)
{
	json_t *by_id = json_object(), *out = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		const char *id = json_string_value(json_object_get(v, "instance_id"));
		if (id)
			json_object_set(by_id, id, v);
	}
	json_array_foreach(ids, i, v) {
		json_t *in = json_object_get(by_id, json_string_value(v));
		if (in) {
			json_array_append(out, in);
			json_object_del(by_id, json_string_value(v)); /* a repeated id once */
		}
	}
	json_decref(by_id);
	json_decref(list);
	return out;
}

/* Runs the queries concurrently (up to describe_max_in_flight calls),
 * appending what they found to `list` in query order. false with `out`
 * failed. */
static bool describe_run(aws *a, const pv_operation *op, describe_job *d, size_t n, json_t *list,
			 unsigned *calls, pv_result *out)
{
	aws_job *jobs = calloc(n, sizeof *jobs);
	bool ok = jobs != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		jobs[i].user = &d[i];
		jobs[i].form = describe_form(&d[i], NULL);
		ok = jobs[i].form != NULL && !d[i].sel.oom;
	}
	if (!ok) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
	} else {
		ssize_t bad = aws_do_many(a, ACT_DESCRIBE_INSTANCES, jobs, n, a->describe_max_in_flight,
					  op->deadline_ns, describe_page_done, NULL);
		for (size_t i = 0; i < n; i++)
			*calls += jobs[i].calls;
		if (bad >= 0) {
			aws_call_fail(a, ACT_DESCRIBE_INSTANCES, &jobs[bad].call, out);
			pv_result_meta_set(out, "api_calls", json_integer(*calls));
			ok = false;
		}
		for (size_t i = 0; ok && i < n; i++)
			json_array_extend(list, d[i].found);
	}
	for (size_t i = 0; jobs && i < n; i++) {
		free(jobs[i].form);
		aws_call_free(&jobs[i].call);
	}
	free(jobs);
	return ok;
}

static void describe_jobs_free(describe_job *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++) {
		aws_form_free(&d[i].sel);
		json_decref(d[i].found);
	}
	free(d);
}

static bool describe_ids(aws *a, const pv_operation *op, json_t *ids, json_t *list,
			 unsigned *calls, pv_result *out)
{
	size_t nids = json_array_size(ids), n = (nids + DESCRIBE_ID_BATCH - 1) / DESCRIBE_ID_BATCH;
	describe_job *d = calloc(n, sizeof *d);
	if (!d) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return false;
	}
	for (size_t b = 0; b < n; b++) {
		d[b].found = json_array();
		for (size_t i = b * DESCRIBE_ID_BATCH; i < nids && i < (b + 1) * DESCRIBE_ID_BATCH; i++)
			aws_form_addf(&d[b].sel, json_string_value(json_array_get(ids, i)), "InstanceId.%zu",
				      i - b * DESCRIBE_ID_BATCH + 1);
	}
	bool ok = describe_run(a, op, d, n, list, calls, out);
	describe_jobs_free(d, n);
	return ok;
}

bool aws_describe_filters(aws *a, const pv_operation *op, const char *const *filters, json_t *list,
			  unsigned *calls, pv_result *out)
{
	describe_job *d = calloc(1, sizeof *d);
	if (!d) {
		pv_result_fail(out, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
		return false;
	}
	d->paged = true;
	d->found = json_array();
	for (int f = 0; filters[2 * f]; f++) {
		aws_form_addf(&d->sel, filters[2 * f], "Filter.%d.Name", f + 1);
		char values[512];
		snprintf(values, sizeof values, "%s", filters[2 * f + 1]);
		char *save = NULL;
		int k = 0;
		for (char *v = strtok_r(values, ",", &save); v; v = strtok_r(NULL, ",", &save))
			aws_form_addf(&d->sel, v, "Filter.%d.Value.%d", f + 1, ++k);
	}
	bool ok = describe_run(a, op, d, 1, list, calls, out);
	describe_jobs_free(d, 1);
	return ok;
}

static bool describe_filter(aws *a, const pv_operation *op, const char *name, const char *value,
			    json_t *list, unsigned *calls, pv_result *out)
{
	const char *const filters[] = {name, value, NULL};
	return aws_describe_filters(a, op, filters, list, calls, out);
}

/* Every instance this provider launched that is not gone: the orphan
 * sweep's question (describe_resource_instances without an id). */
static bool describe_managed(aws *a, const pv_operation *op, json_t *list, unsigned *calls, pv_result *out)
{
	const char *const filters[] = {"tag:provisio:provider", a->base.name, "instance-state-name",
				       "pending,running,shutting-down,stopping,stopped", NULL};
	return aws_describe_filters(a, op, filters, list, calls, out);
}

void aws_op_status(aws *a, const pv_operation *op, pv_result *out, bool by_resource)
{
	json_t *p = op->params;
	json_t *ids = by_resource ? NULL : get_ids(op, out, false);
	if (!ids && out->error_code[0])
		return;
	const char *req = json_string_value(json_object_get(p, "request_id"));
	const char *res = json_string_value(json_object_get(p, "resource_id"));
	json_t *list = json_array();
	unsigned calls = 0;
	bool ok;
	if (ids) {
		ok = describe_ids(a, op, ids, list, &calls, out);
		if (ok)
			list = in_given_order(list, ids);
	}
	else if (res && strncmp(res, "r-", 2) == 0)
		ok = describe_filter(a, op, "reservation-id", res, list, &calls, out);
	else if (res && strncmp(res, "fleet-", 6) == 0)
		ok = describe_filter(a, op, "tag:aws:ec2:fleet-id", res, list, &calls, out);
	else if (res && strncmp(res, "sfr-", 4) == 0)
		ok = describe_filter(a, op, "tag:aws:ec2spot:fleet-request-id", res, list, &calls, out);
	else if (res && strncmp(res, "provisio-", 9) == 0) /* the Auto Scaling groups groups.c names */
		ok = describe_filter(a, op, "tag:aws:autoscaling:groupName", res, list, &calls, out);
	else if (res || req)
		ok = describe_filter(a, op, "tag:provisio:request-id", res ? res : req, list, &calls, out);
	else if (by_resource)
		ok = describe_managed(a, op, list, &calls, out);
	else {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "give parameter 'instance_ids' (array) or 'request_id' (string)");
		ok = false;
	}
	if (!ok) {
		json_decref(list);
		return;
	}
	/* the two-minute warning of spot interruptions (notices.c): a status
	 * pass only; the orphan sweep has no use for it */
	char *notice_error = by_resource ? NULL : aws_spot_notices(a, op, list, &calls);
	aws_annotate(a, list);
	pv_result_ok(out, json_pack("{s:o, s:I}", "instances", list, "count", (json_int_t)json_array_size(list)));
	pv_result_meta_set(out, "api_calls", json_integer(calls));
	if (notice_error)
		pv_result_meta_set(out, "spot_notices_error", json_string(notice_error));
	free(notice_error);
}

/* ---- health ------------------------------------------------------------------ */

void aws_op_health(aws *a, const pv_operation *op, pv_result *out)
{
	aws_form f;
	aws_form_init(&f, "DescribeRegions");
	aws_call c;
	uint64_t t0 = pv_clock_now(a->clock);
	bool ok = !f.oom && aws_do(a, ACT_DESCRIBE_REGIONS, f.buf, op->deadline_ns, &c);
	uint64_t dt = pv_clock_now(a->clock) - t0;
	aws_form_free(&f);
	if (!ok) {
		aws_call_fail(a, ACT_DESCRIBE_REGIONS, &c, out);
		aws_call_free(&c);
		return;
	}
	json_t *regions = aws_xml_regions(c.reply.body, c.reply.len);
	pv_result_ok(out, json_pack("{s:b, s:f, s:I, s:s}", "healthy", 1, "latency_ms",
				    (double)dt / 1e6, "regions", (json_int_t)json_array_size(regions),
				    "region", a->region));
	json_decref(regions);
	aws_call_free(&c);
}
