/*
 * names.h - the parse half of every enum's name()/parse() pair.
 *
 * Each enum keeps a table of names indexed by value; its _parse calls
 * pv_names_find, whose error lists the valid names from that same table,
 * so a value added to the enum can never be missing from the message.
 */
#ifndef PV_UTIL_NAMES_H
#define PV_UTIL_NAMES_H

#include <stddef.h>

/*
 * The index of `name` in names[0..n) (ASCII case-insensitive), or
 * PV_EINVAL with "<what> '<name>' is not one of a, b, c" set.
 */
int pv_names_find(const char *const *names, size_t n, const char *name, const char *what);

#endif
