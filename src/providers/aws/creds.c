/*
 * creds.c - where the AWS credentials and region come from.
 *
 * The same chain the AWS CLI and SDKs walk, so users need no new habits:
 * explicit configuration, then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, then the shared credentials file for the profile
 * (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), then the instance role from
 * IMDSv2 (a PUT for a session token, then the role's temporary keys).
 * Secrets stay in fixed buffers that are wiped; no message names them.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "provisio/clock.h"
#include "provisio/error.h"
#include "providers/aws/aws_internal.h"

void aws_creds_wipe(aws_creds *c)
{
	volatile unsigned char *p = (volatile unsigned char *)c;
	for (size_t i = 0; i < sizeof *c; i++)
		p[i] = 0;
}

/* Credentials and regions go into HTTP headers (X-Amz-Security-Token),
 * URLs and the signature: one with a control character (a CR LF would add
 * a header) is none at all. */
static bool no_controls(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool set_field(char *dst, size_t size, const char *src)
{
	if (!src || !*src || strlen(src) >= size || !no_controls(src))
		return false;
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* The path of a shared file: the env override, else ~/.aws/<name>. */
static void shared_path(const char *env, const char *name, char *out, size_t size)
{
	const char *p = getenv(env);
	if (p && *p) {
		snprintf(out, size, "%s", p);
		return;
	}
	const char *home = getenv("HOME");
	snprintf(out, size, "%s/.aws/%s", home ? home : ".", name);
}

typedef void (*ini_cb)(void *user, const char *key, const char *value);

/* Calls `cb` for each key of section `section` of an INI file. 1 when the
 * section exists, 0 when not (or no file). */
static int ini_section(const char *file, const char *section, ini_cb cb, void *user)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return 0;
	char line[4096];
	bool in = false, found = false;
	while (fgets(line, sizeof line, f)) {
		char *s = trim(line);
		if (*s == '#' || *s == ';' || !*s)
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (end)
				*end = '\0';
			in = strcmp(trim(s + 1), section) == 0;
			found |= in;
			continue;
		}
		char *eq = strchr(s, '=');
		if (in && eq) {
			*eq = '\0';
			cb(user, trim(s), trim(eq + 1));
		}
	}
	memset(line, 0, sizeof line);
	fclose(f);
	return found;
}

typedef struct creds_ctx {
	aws_creds c;
	const char *bad; /* the first key whose value is no credential */
} creds_ctx;

static void creds_cb(void *user, const char *key, const char *value)
{
	creds_ctx *x = user;
	aws_creds *c = &x->c;
	bool ok = true;
	if (strcmp(key, "aws_access_key_id") == 0)
		ok = set_field(c->access_key_id, sizeof c->access_key_id, value);
	else if (strcmp(key, "aws_secret_access_key") == 0)
		ok = set_field(c->secret_access_key, sizeof c->secret_access_key, value);
	else if (strcmp(key, "aws_session_token") == 0)
		ok = set_field(c->session_token, sizeof c->session_token, value);
	if (!ok && !x->bad)
		x->bad = strcmp(key, "aws_access_key_id") == 0 ? "aws_access_key_id"
			 : strcmp(key, "aws_secret_access_key") == 0 ? "aws_secret_access_key" : "aws_session_token";
}

static const char *profile_name(const char *profile)
{
	if (profile && *profile)
		return profile;
	const char *p = getenv("AWS_PROFILE");
	return p && *p ? p : "default";
}

int aws_creds_from_shared_file(const char *profile, aws_creds *out)
{
	char file[1024];
	shared_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", file, sizeof file);
	creds_ctx x;
	memset(&x, 0, sizeof x);
	int found = ini_section(file, profile_name(profile), creds_cb, &x);
	if (found && x.bad) { /* never half a credential: say which value is wrong */
		aws_creds_wipe(&x.c);
		return pv_error_set(PV_EINVAL, "%s, profile '%s': %s is empty, too long or holds a control "
				    "character", file, profile_name(profile), x.bad);
	}
	if (!found || !x.c.access_key_id[0] || !x.c.secret_access_key[0]) {
		aws_creds_wipe(&x.c);
		return 0;
	}
	snprintf(x.c.source, sizeof x.c.source, "shared-file");
	*out = x.c;
	aws_creds_wipe(&x.c);
	return 1;
}

typedef struct region_ctx {
	char *out;
	size_t size;
	bool found;
} region_ctx;

static void region_cb(void *user, const char *key, const char *value)
{
	region_ctx *r = user;
	if (strcmp(key, "region") == 0 && *value && strlen(value) < r->size && no_controls(value)) {
		snprintf(r->out, r->size, "%s", value);
		r->found = true;
	}
}

int aws_region_resolve(const char *profile, char *out, size_t size)
{
	const char *envs[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
	for (int i = 0; i < 2; i++) {
		const char *v = getenv(envs[i]);
		if (v && *v && strlen(v) < size) {
			snprintf(out, size, "%s", v);
			return 1;
		}
	}
	char file[1024], section[300];
	shared_path("AWS_CONFIG_FILE", "config", file, sizeof file);
	const char *p = profile_name(profile);
	/* The config file names sections "profile x", except "default". */
	if (strcmp(p, "default") == 0)
		snprintf(section, sizeof section, "default");
	else
		snprintf(section, sizeof section, "profile %s", p);
	region_ctx r = {out, size, false};
	ini_section(file, section, region_cb, &r);
	return r.found;
}

/* ---- IMDSv2 ---------------------------------------------------------------- */

static int64_t parse_iso8601_ms(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000;
}

int aws_creds_from_imds_json(const char *body, size_t len, aws_creds *out)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	aws_creds c;
	memset(&c, 0, sizeof c);
	bool ok = j && set_field(c.access_key_id, sizeof c.access_key_id,
				 json_string_value(json_object_get(j, "AccessKeyId"))) &&
		  set_field(c.secret_access_key, sizeof c.secret_access_key,
			    json_string_value(json_object_get(j, "SecretAccessKey")));
	json_t *token = json_object_get(j, "Token");
	if (ok && token)
		ok = set_field(c.session_token, sizeof c.session_token, json_string_value(token));
	if (ok) {
		c.expires_wall_ms = parse_iso8601_ms(json_string_value(json_object_get(j, "Expiration")));
		snprintf(c.source, sizeof c.source, "imds");
		*out = c;
	}
	aws_creds_wipe(&c);
	json_decref(j);
	return ok ? 0 : pv_error_set(PV_EIO, "IMDS: the role credentials document is not valid");
}

static int imds_role_creds(const char *base, const char *hdr, const char *role, long tmo,
			   aws_creds *out)
{
	char url[1024];
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
	aws_http_reply r;
	if (aws_http_plain("GET", url, hdr, tmo, &r) < 0 || r.status != 200) {
		aws_http_reply_free(&r);
		return pv_error_set(PV_EIO, "IMDS: no credentials for the instance role");
	}
	int rc = aws_creds_from_imds_json(r.body, r.len, out);
	memset(r.body, 0, r.len);
	aws_http_reply_free(&r);
	return rc;
}

static int imds_resolve(const aws_creds_opts *o, aws_creds *out)
{
	const char *env = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *base = o->imds_endpoint ? o->imds_endpoint
			   : env && *env    ? env
					    : "http://169.254.169.254";
	long tmo = o->imds_timeout_ms > 0 ? o->imds_timeout_ms : 1000;
	char url[1024], hdr[1200];
	snprintf(url, sizeof url, "%s/latest/api/token", base);
	aws_http_reply r;
	if (aws_http_plain("PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", tmo, &r) < 0 ||
	    r.status != 200 || !r.body || r.len >= 1000) {
		aws_http_reply_free(&r);
		return pv_error_set(PV_ENOTFOUND, "IMDSv2 at %s did not give a session token", base);
	}
	snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", trim(r.body));
	aws_http_reply_free(&r);
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
	if (aws_http_plain("GET", url, hdr, tmo, &r) < 0 || r.status != 200 || !r.body) {
		aws_http_reply_free(&r);
		return pv_error_set(PV_ENOTFOUND, "IMDSv2 at %s: the instance has no role", base);
	}
	char role[256];
	snprintf(role, sizeof role, "%s", trim(r.body));
	char *nl = strchr(role, '\n');
	if (nl)
		*nl = '\0';
	aws_http_reply_free(&r);
	int rc = imds_role_creds(base, hdr, role, tmo, out);
	memset(hdr, 0, sizeof hdr);
	return rc;
}

int aws_creds_resolve(const aws_creds_opts *o, aws_creds *out)
{
	memset(out, 0, sizeof *out);
	if (o->access_key_id || o->secret_access_key) {
		if (!set_field(out->access_key_id, sizeof out->access_key_id, o->access_key_id) ||
		    !set_field(out->secret_access_key, sizeof out->secret_access_key, o->secret_access_key))
			return pv_error_set(PV_EINVAL, "fields 'access_key_id' and 'secret_access_key' "
						       "must both be given, non-empty");
		if (o->session_token &&
		    !set_field(out->session_token, sizeof out->session_token, o->session_token))
			return pv_error_set(PV_EINVAL, "field 'session_token' is empty, too long or holds a control character");
		snprintf(out->source, sizeof out->source, "config");
		return 0;
	}
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	if (ak && *ak && sk && *sk) {
		if (!set_field(out->access_key_id, sizeof out->access_key_id, ak) ||
		    !set_field(out->secret_access_key, sizeof out->secret_access_key, sk))
			return pv_error_set(PV_EINVAL, "AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is too long or "
					    "holds a control character");
		const char *tok = getenv("AWS_SESSION_TOKEN");
		if (tok && *tok && !set_field(out->session_token, sizeof out->session_token, tok))
			return pv_error_set(PV_EINVAL, "AWS_SESSION_TOKEN is too long or holds a control character");
		snprintf(out->source, sizeof out->source, "env");
		return 0;
	}
	int rc = aws_creds_from_shared_file(o->profile, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	const char *off = getenv("AWS_EC2_METADATA_DISABLED");
	if (o->imds_enabled && !(off && strcasecmp(off, "true") == 0) && imds_resolve(o, out) == 0)
		return 0;
	return pv_error_set(PV_ENOTFOUND,
			    "no AWS credentials: give access_key_id/secret_access_key, set "
			    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, add profile '%s' to the shared "
			    "credentials file, or run on an instance with a role",
			    profile_name(o->profile));
}
