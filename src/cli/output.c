/*
 * output.c - how a command prints its data: the REST API's JSON document
 * (--format json), or a table for people (--format table) made from the
 * same document, so the two never disagree on what a field holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"

/* The value at a dotted path ("attributes.ncpus.1"): object keys and
 * array indexes. */
static const json_t *at(const json_t *v, const char *path)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", path);
	char *save = NULL;
	for (char *seg = strtok_r(buf, ".", &save); seg && v; seg = strtok_r(NULL, ".", &save))
		v = json_is_array(v) ? json_array_get(v, strtoul(seg, NULL, 10)) : json_object_get(v, seg);
	return v;
}

/* One cell's text (caller frees): "-" for nothing, so columns stay words. */
static char *cell(const json_t *v, pv_cli_column_kind kind)
{
	char buf[64];
	if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)) ||
	    (json_is_array(v) && !json_array_size(v)))
		return strdup("-");
	if (json_is_integer(v)) {
		long long n = (long long)json_integer_value(v);
		if (kind == PV_COL_UNLIMITED && n < 0)
			return strdup("unlimited");
		if (kind == PV_COL_TIME) {
			time_t t = (time_t)n;
			struct tm tm;
			strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
			return strdup(buf);
		}
		snprintf(buf, sizeof buf, "%lld", n);
		return strdup(buf);
	}
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_array(v) && json_array_size(v) > 0 && !json_is_object(json_array_get(v, 0)) &&
	    !json_is_array(json_array_get(v, 0))) {
		size_t cap = 1, i;
		const json_t *x;
		json_array_foreach(v, i, x) {
			char *c = cell(x, PV_COL_TEXT);
			cap += strlen(c) + 1;
			free(c);
		}
		char *out = calloc(1, cap);
		json_array_foreach(v, i, x) {
			char *c = cell(x, PV_COL_TEXT);
			if (out) {
				strcat(out, i ? "," : "");
				strcat(out, c);
			}
			free(c);
		}
		return out;
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
}

static void print_table(const json_t *doc, const pv_cli_table *t)
{
	const json_t *rows = t->rows && *t->rows ? json_object_get(doc, t->rows) : doc;
	size_t ncol = 0;
	while (t->columns[ncol].title)
		ncol++;
	size_t nrow = json_is_array(rows) ? json_array_size(rows) : json_object_size(rows);
	char **cells = calloc((nrow + 1) * ncol + 1, sizeof *cells);
	size_t *width = calloc(ncol + 1, sizeof *width);
	if (!cells || !width) {
		free(cells);
		free(width);
		pv_cli_error("out of memory");
		return;
	}
	for (size_t c = 0; c < ncol; c++)
		cells[c] = strdup(t->columns[c].title);
	size_t r = 1;
	const char *key;
	const json_t *row;
	void *iter = json_is_object(rows) ? json_object_iter((json_t *)rows) : NULL;
	for (size_t i = 0; r <= nrow; i++, r++) {
		if (json_is_array(rows)) {
			row = json_array_get(rows, i);
			key = NULL;
		} else {
			key = json_object_iter_key(iter);
			row = json_object_iter_value(iter);
			iter = json_object_iter_next((json_t *)rows, iter);
		}
		for (size_t c = 0; c < ncol; c++) {
			const pv_cli_column *col = &t->columns[c];
			json_t *name = key && !*col->path ? json_string(key) : NULL;
			cells[r * ncol + c] = cell(name ? name : at(row, col->path), col->kind);
			json_decref(name);
		}
	}
	for (size_t i = 0; i < (nrow + 1) * ncol; i++) {
		size_t n = cells[i] ? strlen(cells[i]) : 1;
		if (n > width[i % ncol])
			width[i % ncol] = n;
	}
	for (size_t i = 0; i < (nrow + 1) * ncol; i++) {
		size_t c = i % ncol;
		bool last = c + 1 == ncol;
		if (last)
			printf("%s\n", cells[i] ? cells[i] : "-");
		else
			printf("%-*s  ", (int)width[c], cells[i] ? cells[i] : "-");
		free(cells[i]);
	}
	free(cells);
	free(width);
}

/* A document that is no list, for people: one "path  value" line a leaf. */
static void print_flat(const json_t *v, const char *prefix)
{
	if (json_is_object(v) && json_object_size(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) {
			char p[512];
			snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", k);
			print_flat(x, p);
		}
		return;
	}
	if (json_is_array(v) && json_array_size(v) && (json_is_object(json_array_get(v, 0)) ||
						       json_is_array(json_array_get(v, 0)))) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) {
			char p[512];
			snprintf(p, sizeof p, "%s%s%zu", prefix, *prefix ? "." : "", i);
			print_flat(x, p);
		}
		return;
	}
	char *c = cell(v, PV_COL_TEXT);
	printf("%-40s %s\n", *prefix ? prefix : "value", c ? c : "-");
	free(c);
}

void pv_cli_output(json_t *doc, pv_cli_format format, const pv_cli_table *table)
{
	if (!doc)
		return;
	if (format == PV_FORMAT_JSON) {
		pv_cli_print(doc);
		return;
	}
	if (table)
		print_table(doc, table);
	else
		print_flat(doc, "");
	json_decref(doc);
}
