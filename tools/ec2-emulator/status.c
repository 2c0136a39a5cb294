/*
 * status.c - DescribeInstanceStatus.
 *
 * As EC2: running instances only unless IncludeAllInstances=true; at most
 * 100 InstanceId.N, not with MaxResults; its own filters (no tag filters:
 * EC2 answers "The filter 'tag:Name' is invalid" to those). A running
 * instance's system and instance status checks are "initializing" for
 * `status_ms` after it came up, then "ok" with reachability "passed"; any
 * other state has "not-applicable" and no details. No scheduled events are
 * modelled, so the event.* filters match nothing.
 */
#include <string.h>
#include "emu.h"

#define MAX_IDS 100

static const char *const status_filters[] = {
	"availability-zone", "event.code", "event.description", "event.instance-event-id",
	"event.not-after", "event.not-before", "event.not-before-deadline", "instance-state-code",
	"instance-state-name", "instance-status.reachability", "instance-status.status",
	"system-status.reachability", "system-status.status", NULL,
};

/* The status checks' summary; *reach gets the reachability detail, NULL
 * when there is none. */
static const char *checks(emu *e, json_t *in, const char **reach)
{
	int code;
	emu_state_of(e, in, &code);
	if (code != 16) {
		*reach = NULL;
		return "not-applicable";
	}
	uint64_t up = (uint64_t)json_integer_value(json_object_get(in, "launch_ms")) + e->boot_ms;
	bool init = emu_now_ms() < up + e->status_ms;
	*reach = init ? "initializing" : "passed";
	return init ? "initializing" : "ok";
}

static const char *status_field(emu *e, json_t *in, const char *name, char *buf, size_t size)
{
	const char *reach;
	const char *status = checks(e, in, &reach);
	if (strcmp(name, "instance-status.status") == 0 || strcmp(name, "system-status.status") == 0)
		return status;
	if (strcmp(name, "instance-status.reachability") == 0 || strcmp(name, "system-status.reachability") == 0)
		return reach;
	if (strncmp(name, "event.", 6) == 0)
		return NULL;
	return emu_instance_field(e, in, name, buf, size);
}

static void summary_xml(emu_buf *b, const char *elem, const char *status, const char *reach)
{
	eb_printf(b, "<%s><status>%s</status>", elem, status);
	if (reach)
		eb_printf(b, "<details><item><name>reachability</name><status>%s</status></item></details>", reach);
	eb_printf(b, "</%s>", elem);
}

static void status_xml(emu *e, emu_buf *b, json_t *in)
{
	int code;
	const char *state = emu_state_of(e, in, &code), *reach;
	const char *status = checks(e, in, &reach);
	eb_add(b, "<item>");
	eb_elem(b, "instanceId", param(in, "id"));
	eb_elem(b, "availabilityZone", param(in, "az"));
	eb_printf(b, "<instanceState><code>%d</code><name>%s</name></instanceState>", code, state);
	summary_xml(b, "systemStatus", status, reach);
	summary_xml(b, "instanceStatus", status, reach);
	eb_add(b, "</item>");
}

void emu_describe_instance_status(emu *e, json_t *p, const char *rid, emu_reply *r)
{
	if (paramf(p, "InstanceId.%d", MAX_IDS + 1))
		return emu_error(r, 400, "InvalidParameterValue",
				 "The maximum number of instance IDs in one request is 100", rid);
	long max = emu_max_results(p, rid, r);
	if (max == 0)
		return;
	json_t *filters = emu_filters(p, status_filters, rid, r);
	if (!filters)
		return;
	json_t *pool = param(p, "InstanceId.1") ? emu_ids_param(e, p, rid, r) : json_incref(e->instances);
	long start = pool ? emu_describe_start(e, "DescribeInstanceStatus", p, rid, r) : -1;
	if (start < 0) {
		json_decref(pool);
		json_decref(filters);
		return;
	}
	bool all = is_true(p, "IncludeAllInstances");
	emu_head(&r->body, "DescribeInstanceStatus", rid);
	eb_add(&r->body, "<instanceStatusSet>");
	long seen = 0, shown = 0, next = -1;
	size_t i;
	json_t *in;
	json_array_foreach(pool, i, in) {
		int code;
		emu_state_of(e, in, &code);
		if ((!all && code != 16) || !emu_filters_match(e, filters, in, status_field) || seen++ < start)
			continue;
		if (max > 0 && shown == max) {
			next = seen - 1;
			break;
		}
		status_xml(e, &r->body, in);
		shown++;
	}
	eb_add(&r->body, "</instanceStatusSet>");
	emu_page_next(e, "DescribeInstanceStatus", p, next, &r->body);
	eb_add(&r->body, "</DescribeInstanceStatusResponse>");
	json_decref(pool);
	json_decref(filters);
	r->status = 200;
}
