/*
 * test_strategies.h - small real strategies the unit tests need beside sim:
 * one whose init can fail, and one that blocks inside execute until
 * released (to hold calls in flight).
 */
#ifndef PV_TEST_STRATEGIES_H
#define PV_TEST_STRATEGIES_H

#include <stdbool.h>
#include "provisio/provisio.h"

/* A strategy of type "initest" whose init fails when `fail_init`; it
 * supports all operations and answers success. `destroyed` (may be NULL)
 * is set to true when it is destroyed. */
pv_strategy *test_init_strategy(const char *name, bool fail_init, bool *destroyed);

/* A strategy of type "gate": execute blocks until test_gate_open; counts
 * how many calls are inside. */
pv_strategy *test_gate_strategy(const char *name, bool *destroyed);
void test_gate_wait_inside(pv_strategy *gate, int n); /* until n calls are inside */
void test_gate_open(pv_strategy *gate);

#endif
