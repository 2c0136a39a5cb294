/*
 * strategy_internal.h - the checked call as the kernel's wrappers use it
 * when they run several children in a row.
 */
#ifndef PV_CORE_STRATEGY_INTERNAL_H
#define PV_CORE_STRATEGY_INTERNAL_H

#include <stdint.h>
#include "provisio/strategy.h"

/*
 * pv_strategy_execute, always timed, from `start`: a time on `clock` the
 * caller has just read (the end of the previous child's call, or of its own
 * setup). Returns the time the call ended, read once, which the caller
 * passes on as the next call's start: children called one after another
 * then cost one clock read each instead of two (a read is about a third of
 * a zero-latency call). The child's latency includes whatever the caller
 * did since `start`, a few nanoseconds of bookkeeping. 0: read it here.
 */
uint64_t pv_strategy_execute_from(pv_strategy *s, const pv_operation *op, pv_result *out,
				  const pv_clock *clock, uint64_t start);

#endif
