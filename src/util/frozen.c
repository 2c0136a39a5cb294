/*
 * frozen.c - freezing a JSON value (frozen.h): every value in it gets
 * jansson's "not counted" mark, so it is never freed nor counted again.
 */
#include "util/frozen.h"

void pv_json_freeze(json_t *j)
{
	if (pv_json_frozen(j))
		return;
	if (json_is_object(j)) {
		const char *key;
		json_t *v;
		json_object_foreach(j, key, v)
			pv_json_freeze(v);
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			pv_json_freeze(v);
	}
	j->refcount = (size_t)-1;
}
