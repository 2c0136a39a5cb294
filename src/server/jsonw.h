/*
 * jsonw.h - append-only JSON writer for hot answers (src/server/jsonw.c).
 * Usage: jsonw w = {0}; jw_open(&w, '{'); jw_str(&w, "k", "v"); ...
 * jw_close(&w, '}'); then jw_take gives the text (caller frees) or NULL
 * when memory ran out.
 */
#ifndef PV_SERVER_JSONW_H
#define PV_SERVER_JSONW_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jsonw {
	char *buf;
	size_t len, cap;
	bool need_comma;
	bool failed;
} jsonw;

void jw_raw(jsonw *w, const char *s, size_t n);
/* '{' or '['; inside an object, call jw_key first. */
void jw_open(jsonw *w, char c);
void jw_close(jsonw *w, char c);
void jw_key(jsonw *w, const char *key);
/* key NULL inside arrays. */
void jw_str(jsonw *w, const char *key, const char *value);
/* null for NULL or "". */
void jw_str_or_null(jsonw *w, const char *key, const char *value);
void jw_int(jsonw *w, const char *key, long long v);
/* The text (owned by the caller) and its length; NULL when out of memory. */
char *jw_take(jsonw *w, size_t *len);

#endif
