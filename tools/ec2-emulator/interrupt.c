/*
 * interrupt.c - spot interruptions: EC2 taking spot capacity back.
 *
 * An interrupted instance shuts down like a terminated one, with EC2's
 * stateReason Server.SpotInstanceTermination, which is how a client tells
 * it from its own terminate. A maintain fleet, Spot Fleet or Auto Scaling
 * group it belonged to replaces it (groups.c). Driven by the admin endpoint
 * (POST /_emu/interrupt), as a test decides when capacity goes.
 */
#include <string.h>
#include "emu.h"

static bool spot_live(json_t *in)
{
	const char *l = param(in, "lifecycle");
	return in && emu_live(in) && l && strcmp(l, "spot") == 0;
}

static void take_back(emu *e, json_t *in)
{
	emu_terminate(e, in, "Server.SpotInstanceTermination", "Server.SpotInstanceTermination: Spot instance termination");
}

json_t *emu_interrupt_spot(emu *e, long count, json_t *ids)
{
	json_t *done = json_array();
	size_t i;
	json_t *v;
	if (ids) {
		json_array_foreach(ids, i, v) {
			json_t *in = emu_find(e, json_string_value(v));
			if (spot_live(in)) {
				take_back(e, in);
				json_array_append(done, v);
			}
		}
		return done;
	}
	json_array_foreach(e->instances, i, v) {
		if ((long)json_array_size(done) >= count)
			break;
		if (spot_live(v)) {
			take_back(e, v);
			json_array_append(done, json_object_get(v, "id"));
		}
	}
	return done;
}
