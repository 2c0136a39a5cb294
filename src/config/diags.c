/*
 * diags.c - a list of configuration problems, each with its JSON path, so
 * validation reports every problem at once instead of the first one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/config.h"

void pv_diags_init(pv_diags *d) { memset(d, 0, sizeof *d); }

void pv_diags_clear(pv_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].path);
		free(d->items[i].message);
	}
	free(d->items);
	memset(d, 0, sizeof *d);
}

void pv_diags_add(pv_diags *d, pv_diag_level level, const char *path, const char *fmt, ...)
{
	if (!d)
		return;
	if (level == PV_DIAG_ERROR)
		d->errors++; /* counted even if the text cannot be stored */
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		pv_diag *grown = realloc(d->items, cap * sizeof *grown);
		if (!grown)
			return;
		d->items = grown;
		d->cap = cap;
	}
	pv_diag *g = &d->items[d->n];
	g->level = level;
	g->path = strdup(path && *path ? path : "(root)");
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&g->message, fmt, ap) < 0)
		g->message = NULL;
	va_end(ap);
	if (!g->path || !g->message) {
		free(g->path);
		free(g->message);
		return;
	}
	d->n++;
}

char *pv_diags_format(const pv_diags *d)
{
	size_t len = 1;
	for (size_t i = 0; i < d->n; i++)
		len += strlen(d->items[i].path) + strlen(d->items[i].message) + 16;
	char *out = malloc(len), *p = out;
	if (!out)
		return NULL;
	*p = '\0';
	for (size_t i = 0; i < d->n; i++)
		p += sprintf(p, "%s: %s: %s\n", d->items[i].level == PV_DIAG_ERROR ? "error" : "warning",
			     d->items[i].path, d->items[i].message);
	return out;
}

json_t *pv_diags_to_json(const pv_diags *d)
{
	json_t *a = json_array();
	for (size_t i = 0; i < d->n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "level",
						   d->items[i].level == PV_DIAG_ERROR ? "error" : "warning",
						   "path", d->items[i].path, "message", d->items[i].message));
	return a;
}
