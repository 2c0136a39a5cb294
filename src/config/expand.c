/*
 * expand.c - ${VAR} and ${VAR:-default} in every string of a document,
 * environment overlays (deep merge) and secret redaction.
 *
 * An unset variable without a default is an error naming the variable and
 * the JSON path, and the string is left unexpanded but marked invalid: a
 * literal "${PROVIDER1_API_KEY}" must never reach a provider as a key.
 * "$$" writes a literal "$". "$NAME" without braces is left as written with
 * a warning: the Python original expanded it, so a file brought from there
 * would otherwise send "$HOME/..." on without a word.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/config.h"

typedef struct buf {
	char *s;
	size_t len, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 64) + n;
		char *grown = realloc(b->s, cap);
		if (!grown)
			return -1;
		b->s = grown;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

static bool name_start(char c) { return isalpha((unsigned char)c) || c == '_'; }

/* Warns once per string about "$NAME" left as written. The name is quoted
 * only where it cannot be part of a secret (a secret key's value, a URL's
 * password). */
static void warn_bare_variable(const char *in, const char *at, const char *path, bool secret,
			       pv_diags *diags)
{
	if (secret || pv_config_url_has_password(in)) {
		pv_diags_add(diags, PV_DIAG_WARNING, path,
			     "a '$' followed by a name is left as written: only ${NAME} is expanded "
			     "(write $$ for a literal '$')");
		return;
	}
	int n = 1;
	while (isalnum((unsigned char)at[n]) || at[n] == '_')
		n++;
	pv_diags_add(diags, PV_DIAG_WARNING, path,
		     "'%.*s' is left as written: only ${%.*s} is expanded (write $$ for a literal '$')",
		     n, at, n - 1, at + 1);
}

/* Expands one string; NULL when a variable is missing (diag added). */
static char *expand_string(const char *in, const char *path, bool secret, pv_diags *diags)
{
	buf b = {0};
	bool ok = true, warned = false;
	buf_add(&b, "", 0);
	for (const char *p = in; *p;) {
		if (p[0] == '$' && p[1] == '$') {
			buf_add(&b, "$", 1);
			p += 2;
			continue;
		}
		if (p[0] == '$' && name_start(p[1]) && !warned) {
			warn_bare_variable(in, p, path, secret, diags);
			warned = true;
		}
		if (p[0] != '$' || p[1] != '{') {
			const char *next = strchr(p + 1, '$');
			size_t n = next ? (size_t)(next - p) : strlen(p);
			buf_add(&b, p, n);
			p += n;
			continue;
		}
		const char *close = strchr(p + 2, '}');
		if (!close) {
			pv_diags_add(diags, PV_DIAG_ERROR, path, "unterminated '${' in a string");
			ok = false;
			break;
		}
		char name[256];
		size_t n = (size_t)(close - (p + 2));
		if (n >= sizeof name)
			n = sizeof name - 1;
		memcpy(name, p + 2, n);
		name[n] = '\0';
		char *dflt = strstr(name, ":-");
		if (dflt) {
			*dflt = '\0';
			dflt += 2;
		}
		bool valid = name_start(name[0]);
		for (char *c = name; valid && *c; c++)
			valid = isalnum((unsigned char)*c) || *c == '_';
		if (!valid) {
			pv_diags_add(diags, PV_DIAG_ERROR, path,
				     "'${%s}' is not a variable reference: names are letters, digits and _",
				     name);
			ok = false;
		} else {
			const char *v = getenv(name);
			if (v && !(dflt && !*v))
				buf_add(&b, v, strlen(v));
			else if (dflt)
				buf_add(&b, dflt, strlen(dflt));
			else {
				pv_diags_add(diags, PV_DIAG_ERROR, path,
					     "environment variable %s is not set and has no default "
					     "(write ${%s:-default} to give one)",
					     name, name);
				ok = false;
			}
		}
		p = close + 1;
	}
	if (!ok) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* `secret`: the node is (under) a secret key's value. */
static void expand_node(json_t *node, const char *path, bool secret, pv_diags *diags)
{
	char sub[1024];
	if (json_is_object(node)) {
		const char *key;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(node, tmp, key, v) {
			snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
			bool hidden = secret || pv_config_is_secret_key(key);
			if (json_is_string(v) && strchr(json_string_value(v), '$')) {
				char *s = expand_string(json_string_value(v), sub, hidden, diags);
				/* On error the value becomes null so nothing can use the literal. */
				json_object_set_new(node, key, s ? json_string(s) : json_null());
				free(s);
			} else {
				expand_node(v, sub, hidden, diags);
			}
		}
	} else if (json_is_array(node)) {
		size_t i;
		json_t *v;
		json_array_foreach(node, i, v) {
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			if (json_is_string(v) && strchr(json_string_value(v), '$')) {
				char *s = expand_string(json_string_value(v), sub, secret, diags);
				json_array_set_new(node, i, s ? json_string(s) : json_null());
				free(s);
			} else {
				expand_node(v, sub, secret, diags);
			}
		}
	}
}

void pv_config_expand(json_t *doc, pv_diags *diags) { expand_node(doc, "", false, diags); }

void pv_config_merge(json_t *base, const json_t *overlay)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)overlay, key, v) {
		json_t *old = json_object_get(base, key);
		if (json_is_object(old) && json_is_object(v))
			pv_config_merge(old, v);
		else
			json_object_set_new(base, key, json_deep_copy(v));
	}
}

bool pv_config_is_secret_key(const char *key)
{
	static const char *const secret_words[] = {
		"secret", "password", "passwd", "api_key", "apikey", "private_key", "credential",
	};
	for (size_t i = 0; i < sizeof secret_words / sizeof secret_words[0]; i++)
		if (strcasestr(key, secret_words[i]))
			return true;
	/* "token", "session_token", "tokens" (bearer lists), not "token_bucket". */
	size_t n = strlen(key);
	return strcasecmp(key, "tokens") == 0 ||
	       (n >= 5 && strcasecmp(key + n - 5, "token") == 0);
}

/* A copy of URL `s` with the password of its user info ("scheme://user:PASSWORD@host")
 * as "***"; NULL when it has none (or out of memory). Database and proxy
 * URLs carry passwords under keys that are not secret words ("url"). */
static char *redact_url_password(const char *s)
{
	const char *scheme_end = strstr(s, "://");
	if (!scheme_end)
		return NULL;
	const char *user = scheme_end + 3;
	size_t authority = strcspn(user, "/?#");
	const char *at = memrchr(user, '@', authority);
	const char *colon = at ? memchr(user, ':', (size_t)(at - user)) : NULL;
	if (!colon || colon + 1 == at)
		return NULL;
	char *out = NULL;
	if (asprintf(&out, "%.*s***%s", (int)(colon + 1 - s), s, at) < 0)
		return NULL;
	return out;
}

bool pv_config_url_has_password(const char *value)
{
	char *clean = value ? redact_url_password(value) : NULL;
	free(clean);
	return clean != NULL;
}

/* Under a secret key everything is hidden but names and roles (token
 * lists: [{"name": "ops", "hash": "***", "role": "admin"}]). */
static void redact_secret(json_t *v)
{
	size_t i;
	const char *key;
	json_t *x;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			if (json_is_string(x))
				json_array_set_new(v, i, json_string("***"));
			else
				redact_secret(x);
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, x) {
			if (strcmp(key, "name") == 0 || strcmp(key, "role") == 0)
				continue;
			if (json_is_string(x))
				json_object_set_new(v, key, json_string("***"));
			else
				redact_secret(x);
		}
	}
}

static void redact_node(json_t *node)
{
	const char *key;
	json_t *v;
	size_t i;
	if (json_is_object(node)) {
		json_object_foreach(node, key, v) {
			if (pv_config_is_secret_key(key) && json_is_string(v))
				json_object_set_new(node, key, json_string("***"));
			else if (pv_config_is_secret_key(key))
				redact_secret(v);
			else if (json_is_string(v)) {
				char *clean = redact_url_password(json_string_value(v));
				if (clean)
					json_object_set_new(node, key, json_string(clean));
				free(clean);
			} else {
				redact_node(v);
			}
		}
	} else if (json_is_array(node)) {
		json_array_foreach(node, i, v) redact_node(v);
	}
}

json_t *pv_config_redact(const json_t *doc)
{
	json_t *copy = json_deep_copy(doc);
	if (copy)
		redact_node(copy);
	return copy;
}
