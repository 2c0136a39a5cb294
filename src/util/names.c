/*
 * names.c - see names.h.
 */
#include <stdio.h>
#include <strings.h>
#include "provisio/error.h"
#include "util/names.h"

int pv_names_find(const char *const *names, size_t n, const char *name, const char *what)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcasecmp(name, names[i]) == 0)
			return (int)i;
	char valid[512];
	size_t used = 0;
	valid[0] = '\0';
	for (size_t i = 0; i < n && used < sizeof valid; i++) {
		int k = snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", names[i]);
		used += k > 0 ? (size_t)k : 0;
	}
	return pv_error_set(PV_EINVAL, "%s '%s' is not one of %s", what, name ? name : "(null)", valid);
}
