/*
 * machines.c - provider instances turned into machine records.
 *
 * Providers answer with their own instance JSON (sim, local, aws differ in
 * the details); Host Factory wants one shape. This is the one place that
 * knows both, so a new provider only has to use one of the key spellings
 * below.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "broker/broker_internal.h"

static const char *first_string(const json_t *o, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = json_string_value(json_object_get(o, *keys));
		if (v && *v)
			return v;
	}
	return NULL;
}

const char *pv_machine_status_from_state(const char *state)
{
	static const char *const hf[] = {"pending", "running", "stopping", "stopped",
					 "shutting-down", "terminated"};
	if (!state)
		return "pending";
	for (size_t i = 0; i < sizeof hf / sizeof hf[0]; i++)
		if (strcmp(state, hf[i]) == 0)
			return hf[i];
	if (strcmp(state, "shutting_down") == 0 || strcmp(state, "terminating") == 0)
		return "shutting-down";
	if (strcmp(state, "starting") == 0 || strcmp(state, "booting") == 0 ||
	    strcmp(state, "creating") == 0)
		return "pending";
	if (strcmp(state, "active") == 0 || strcmp(state, "ready") == 0)
		return "running";
	return "terminated"; /* failed, error, gone, deleted: not usable and not coming back */
}

/* Host names, best first: what a provider calls the machine, else EC2's
 * private DNS name (HF's "name" is the host it will use). */
static const char *const host_keys[] = {"name", "hostname", "private_dns", NULL};

const char *pv_machine_host_name(const json_t *inst) { return first_string(inst, host_keys); }

/* Host Factory's priceType (ondemand, spot) from the provider's own words:
 * price_type / priceType as given, else EC2's instance lifecycle. */
static const char *price_type_of(const json_t *inst)
{
	static const char *const price_keys[] = {"price_type", "priceType", NULL};
	const char *v = first_string(inst, price_keys);
	if (v)
		return v;
	const char *life = json_string_value(json_object_get(inst, "lifecycle"));
	if (life && strcmp(life, "spot") == 0)
		return "spot";
	if (life && (strcmp(life, "on-demand") == 0 || strcmp(life, "ondemand") == 0))
		return "ondemand";
	return NULL;
}

/* Epoch seconds of an ISO 8601 UTC time ("2026-11-27T10:00:00.000Z", EC2's
 * launchTime); -1 when it is not one. */
static int64_t iso_utc_seconds(const char *text)
{
	struct tm tm = {0};
	const char *rest = text ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!rest)
		return -1;
	if (*rest == '.')
		while (*++rest >= '0' && *rest <= '9')
			;
	if (*rest != 'Z' && *rest != '\0')
		return -1;
	return (int64_t)timegm(&tm);
}

void pv_machine_from_instance(pv_machine_rec *m, const json_t *inst, const char *provider)
{
	static const char *const id_keys[] = {"instance_id", "machineId", "id", NULL};
	static const char *const ip_keys[] = {"private_ip", "privateIpAddress", "private_ip_address", NULL};
	static const char *const pub_keys[] = {"public_ip", "publicIpAddress", "public_ip_address", NULL};
	static const char *const type_keys[] = {"instance_type", "instanceType", "vm_type", NULL};
	const char *id = first_string(inst, id_keys);
	const char *owner = json_string_value(json_object_get(inst, "provider"));
	const char *name = first_string(inst, host_keys);
	if (!name)
		name = first_string(inst, ip_keys);
	snprintf(m->machine_id, sizeof m->machine_id, "%s", id ? id : "");
	snprintf(m->provider, sizeof m->provider, "%s", owner && *owner ? owner : provider);
	snprintf(m->name, sizeof m->name, "%s", name ? name : m->machine_id);
	const char *v = first_string(inst, ip_keys);
	snprintf(m->private_ip, sizeof m->private_ip, "%s", v ? v : "");
	v = first_string(inst, pub_keys);
	snprintf(m->public_ip, sizeof m->public_ip, "%s", v ? v : "");
	v = first_string(inst, type_keys);
	snprintf(m->instance_type, sizeof m->instance_type, "%s", v ? v : "");
	v = price_type_of(inst);
	snprintf(m->price_type, sizeof m->price_type, "%s", v ? v : "");
	snprintf(m->status, sizeof m->status, "%s",
		 pv_machine_status_from_state(json_string_value(json_object_get(inst, "state"))));
	json_t *lt = json_object_get(inst, "launch_time_ms");
	int64_t iso = iso_utc_seconds(json_string_value(json_object_get(inst, "launch_time")));
	if (json_is_integer(lt))
		m->launch_time = json_integer_value(lt) / 1000;
	else if (json_is_integer(json_object_get(inst, "launch_time")))
		m->launch_time = json_integer_value(json_object_get(inst, "launch_time"));
	else if (iso >= 0)
		m->launch_time = iso;
	else if (!m->launch_time)
		m->launch_time = pv_broker_now_ms() / 1000;
}
