/*
 * load.c - finding, reading and preparing a configuration file: the search
 * order, the environment overlay, variable expansion, and the warning for a
 * readable file that holds a literal secret.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "provisio/config.h"
#include "provisio/error.h"
#include "util/paths.h"

static bool exists(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *pv_config_find(const char *explicit_path)
{
	if (explicit_path)
		return strdup(explicit_path); /* asked for: a missing file is an error later */
	const char *env = getenv("PROVISIO_CONFIG");
	if (env && *env)
		return strdup(env);
	const char *hf = getenv("HF_PROVIDER_CONFDIR");
	if (hf && *hf) {
		char *p;
		if (asprintf(&p, "%s/provisio.json", hf) >= 0) {
			if (exists(p))
				return p;
			free(p);
		}
	}
	if (exists("config/provisio.json"))
		return strdup("config/provisio.json");
	char *sys;
	if (asprintf(&sys, "%s/provisio.json", pv_paths_config_dir()) >= 0) {
		if (exists(sys))
			return sys;
		free(sys);
	}
	pv_error_set(PV_ENOTFOUND,
		     "no configuration found: give --config FILE, or set PROVISIO_CONFIG, or put "
		     "provisio.json in $HF_PROVIDER_CONFDIR, ./config/ or %s/", pv_paths_config_dir());
	return NULL;
}

static json_t *read_json(const char *path, int *rc)
{
	json_error_t err;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!doc) {
		if (err.line < 1)
			*rc = pv_error_set(PV_EIO, "cannot read %s: %s", path, err.text);
		else
			*rc = pv_error_set(PV_EIO, "%s:%d:%d: invalid JSON: %s", path, err.line,
					   err.column, err.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		*rc = pv_error_set(PV_EINVAL, "%s: the configuration must be a JSON object", path);
		return NULL;
	}
	return doc;
}

/* The path of the first secret written literally (not ${VAR}): a string
 * under a secret key, or a URL with a password; or false: worth a warning when others can read the file. */
static bool find_literal_secret(const json_t *node, char *path, size_t size)
{
	const char *key;
	json_t *v;
	size_t i, len = strlen(path);
	if (json_is_object(node)) {
		json_object_foreach((json_t *)node, key, v) {
			snprintf(path + len, size - len, "%s%s", len ? "." : "", key);
			const char *text = json_string_value(v);
			if (text && *text && !strstr(text, "${") &&
			    (pv_config_is_secret_key(key) || pv_config_url_has_password(text)))
				return true;
			if (find_literal_secret(v, path, size))
				return true;
		}
	} else if (json_is_array(node)) {
		json_array_foreach(node, i, v) {
			snprintf(path + len, size - len, "[%zu]", i);
			if (find_literal_secret(v, path, size))
				return true;
		}
	}
	path[len] = '\0';
	return false;
}

static void check_secret_permissions(const char *path, const json_t *doc, pv_diags *diags)
{
	struct stat st;
	char where[256] = "";
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) &&
	    find_literal_secret(doc, where, sizeof where))
		pv_diags_add(diags, PV_DIAG_WARNING, where,
			     "%s holds a literal secret here and is readable by group or others "
			     "(mode %03o): chmod 600 it, or use ${VAR} references",
			     path, (unsigned)(st.st_mode & 0777));
}

int pv_config_load_file(const pv_config_options *opts, json_t **out, pv_diags *diags)
{
	*out = NULL;
	char *path = pv_config_find(opts ? opts->path : NULL);
	if (!path)
		return PV_ENOTFOUND;
	int rc = 0;
	json_t *doc = read_json(path, &rc);
	if (!doc) {
		free(path);
		return rc;
	}
	check_secret_permissions(path, doc, diags);

	const char *env = opts && opts->env_name ? opts->env_name : getenv("PROVISIO_ENV");
	if (env && *env) {
		if (strchr(env, '/') || strcmp(env, "..") == 0) {
			rc = pv_error_set(PV_EINVAL, "environment name '%s' must be a plain name", env);
			goto done;
		}
		char *copy = strdup(path), *overlay = NULL;
		if (!copy || asprintf(&overlay, "%s/%s.json", dirname(copy), env) < 0) {
			free(copy);
			rc = pv_error_set(PV_ENOMEM, "out of memory");
			goto done;
		}
		free(copy);
		json_t *over = read_json(overlay, &rc);
		if (over) {
			check_secret_permissions(overlay, over, diags);
			pv_config_merge(doc, over);
			json_decref(over);
		} else {
			rc = pv_error_set(PV_EIO, "environment '%s': %s", env, pv_error_last());
		}
		free(overlay);
		if (rc < 0)
			goto done;
	}
	pv_config_expand(doc, diags);
	if (diags && diags->errors)
		rc = pv_error_set(PV_EINVAL, "%zu configuration error(s) in %s", diags->errors, path);
done:
	free(path);
	*out = doc;
	return rc;
}
