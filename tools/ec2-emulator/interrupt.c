/*
 * interrupt.c - spot interruptions: EC2 taking spot capacity back.
 *
 * An interrupted instance shuts down like a terminated one, with EC2's
 * stateReason Server.SpotInstanceTermination, which is how a client tells
 * it from its own terminate. A maintain fleet, Spot Fleet or Auto Scaling
 * group it belonged to replaces it (groups.c). Driven by the admin endpoint
 * (POST /_emu/interrupt), as a test decides when capacity goes.
 *
 * EC2 warns two minutes ahead: the notice phase (`notice`) only marks the
 * instance's spot request (marked-for-termination, -stop or -hibernation,
 * spot_requests.c) and leaves it running; a second interruption, without
 * the notice, takes it back. The test plays the two minutes.
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

static void interrupt(emu *e, json_t *in, bool notice, const char *behaviour)
{
	if (notice)
		emu_spot_notice(e, in, behaviour);
	else
		take_back(e, in);
}

json_t *emu_interrupt_spot(emu *e, long count, json_t *ids, bool notice, const char *behaviour)
{
	json_t *done = json_array();
	size_t i;
	json_t *v;
	if (ids) {
		json_array_foreach(ids, i, v) {
			json_t *in = emu_find(e, json_string_value(v));
			if (spot_live(in)) {
				interrupt(e, in, notice, behaviour);
				json_array_append(done, v);
			}
		}
		return done;
	}
	json_array_foreach(e->instances, i, v) {
		if ((long)json_array_size(done) >= count)
			break;
		/* a notice goes to instances that have none yet */
		if (spot_live(v) && !(notice && param(v, "notice"))) {
			interrupt(e, v, notice, behaviour);
			json_array_append(done, json_object_get(v, "id"));
		}
	}
	return done;
}
