/*
 * local.c - the local provider (see include/provisio/local.h).
 *
 * State lives in the work directory, not in memory, because every Host
 * Factory call is a new process: machines/<id>.json per machine, `next`
 * (the machine counter) and `lock`. Creation holds an exclusive flock on
 * `lock` while it checks idempotency and capacity and spawns, so concurrent
 * processes neither exceed the capacity nor reuse a number.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "provisio/error.h"
#include "provisio/local.h"
#include "providers/local/spawn.h"
#include "util/paths.h"

typedef struct local {
	pv_strategy base;
	const pv_clock *clock;
	char workdir[PATH_MAX - 64];
	char hostname[128];
	char *command;
	bool template_commands; /* a template's "command" may replace it */
	int64_t capacity;
	long grace_ms;
	uint64_t answer_delay_ns;
} local;

static local *as_local(pv_strategy *s) { return (local *)s; }

/* ---- work directory ---------------------------------------------------------- */

static int mkdirs(const char *dir)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static void record_path(const local *l, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%s/machines/%s.json", l->workdir, id);
}

static json_t *record_read(const local *l, const char *id)
{
	char path[PATH_MAX];
	if (strchr(id, '/'))
		return NULL;
	record_path(l, id, path, sizeof path);
	return json_load_file(path, 0, NULL);
}

/* Atomic replace: a reader never sees half a record. */
static int record_write(const local *l, const json_t *rec)
{
	const char *id = json_string_value(json_object_get(rec, "instance_id"));
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	record_path(l, id, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	if (json_dump_file(rec, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return pv_error_set(PV_EIO, "local '%s': cannot write %s: %s", l->base.name, path,
				    strerror(errno));
	}
	return 0;
}

/* Every record, in name order. New array. */
static json_t *records_all(const local *l)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/machines", l->workdir);
	json_t *all = json_array();
	struct dirent **list = NULL;
	int n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(list[i]->d_name);
		if (len > 5 && strcmp(list[i]->d_name + len - 5, ".json") == 0) {
			char path[PATH_MAX + 260];
			snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
			json_t *rec = json_load_file(path, 0, NULL);
			if (rec)
				json_array_append_new(all, rec);
		}
		free(list[i]);
	}
	free(list);
	return all;
}

static bool rec_alive(const json_t *rec)
{
	return pv_local_alive((pid_t)json_integer_value(json_object_get(rec, "pid")),
			      (unsigned long long)json_integer_value(json_object_get(rec, "start_time")));
}

/* The public view: the record with its state now. */
static json_t *view(const json_t *rec)
{
	json_t *v = json_deep_copy(rec);
	bool alive = rec_alive(rec);
	const char *state = !alive ? "terminated"
			    : json_object_get(rec, "terminate_ms") ? "shutting-down" : "running";
	json_object_del(v, "start_time");
	json_object_del(v, "client_token");
	json_object_set_new(v, "state", json_string(state));
	return v;
}

static int lock_workdir(const local *l)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/lock", l->workdir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		if (fd >= 0)
			close(fd);
		return pv_error_set(PV_EIO, "local '%s': cannot lock %s: %s", l->base.name, path,
				    strerror(errno));
	}
	return fd;
}

/* The next machine number (lock held). Written by rename, and never a
 * number whose record exists: a counter lost to a crash cannot make two
 * machines share an id. */
static int64_t next_number(const local *l)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], rec[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/next", l->workdir);
	long long n = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lld", &n) != 1)
			n = 0;
		fclose(f);
	}
	do {
		n++;
		char id[96];
		snprintf(id, sizeof id, "%s-%lld", l->base.name, n);
		record_path(l, id, rec, sizeof rec);
	} while (access(rec, F_OK) == 0);
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "%lld\n", n);
		if (fclose(f) != 0 || rename(tmp, path) != 0)
			unlink(tmp);
	}
	return n;
}

/* Forgets machines gone for more than an hour (lock held), so the work
 * directory, scanned on every create, does not grow without end. The
 * broker has long recorded their end; a later status answers not_found,
 * which it reads as gone too. */
static void prune(const local *l, const json_t *all)
{
	size_t i;
	json_t *rec;
	time_t now = time(NULL);
	json_array_foreach(all, i, rec) {
		if (rec_alive(rec))
			continue;
		char path[PATH_MAX];
		struct stat st;
		record_path(l, json_string_value(json_object_get(rec, "instance_id")), path, sizeof path);
		if (stat(path, &st) == 0 && now - st.st_mtime > 3600)
			unlink(path);
	}
}

/* ---- operations ---------------------------------------------------------------- */

/* A template's own command, if it has one. */
static const char *template_command(const json_t *params)
{
	const char *c = json_string_value(json_object_get(json_object_get(params, "template"), "command"));
	return c && *c ? c : NULL;
}

static const char *command_for(const local *l, const json_t *params)
{
	const char *c = template_command(params);
	return c && l->template_commands ? c : l->command;
}

/* A test hook: PROVISIO_TEST_LOCAL_CRASH_AT=<step> kills this process
 * (SIGKILL) right after that step of a machine's creation, so tests can
 * show that a crash anywhere leaves no machine its record does not name. */
static void crash_point(const char *step)
{
	const char *at = getenv("PROVISIO_TEST_LOCAL_CRASH_AT");
	if (at && strcmp(at, step) == 0)
		raise(SIGKILL);
}

static void record_forget(const local *l, const char *id)
{
	char path[PATH_MAX + 128];
	record_path(l, id, path, sizeof path);
	unlink(path);
}

static void create_failed(const local *l, const char *id, pv_result *out, const char *why)
{
	record_forget(l, id);
	pv_result_fail(out, PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT, "%s", why);
}

/*
 * One machine (lock held), in the order that keeps every process
 * accounted for: its record first (the intent, no pid yet: a crash now
 * leaves a machine that never ran), then the supervisor, held before its
 * command; its pid into the record; only then the go. A caller killed
 * before the go leaves a supervisor that exits unstarted (spawn.c), so
 * whatever the record says is the truth. The record, or NULL (`out` says
 * why).
 */
static json_t *spawn_one(local *l, const json_t *params, const char *token, pv_result *out)
{
	const char *cmd = command_for(l, params);
	int64_t n = next_number(l);
	char id[96], name[200];
	snprintf(id, sizeof id, "%s-%lld", l->base.name, (long long)n);
	snprintf(name, sizeof name, "%s-%lld", l->hostname, (long long)n);
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:s?, s:i, s:i, s:s}", "instance_id",
				id, "provider", l->base.name, "name", name, "private_ip", "127.0.0.1",
				"launch_time_ms", (json_int_t)pv_wall_ms(), "template_id",
				json_string_value(json_object_get(params, "template_id")), "request_id",
				json_string_value(json_object_get(params, "request_id")), "client_token",
				token, "pid", 0, "start_time", 0, "command", cmd);
	if (!rec || record_write(l, rec) < 0) {
		create_failed(l, id, out, rec ? pv_error_last() : "out of memory");
		json_decref(rec);
		return NULL;
	}
	crash_point("intent");
	pid_t pid;
	int go;
	if (pv_local_spawn(cmd, l->grace_ms, &pid, &go) < 0) {
		char why[256];
		snprintf(why, sizeof why, "local '%s': cannot start a process: %s", l->base.name, strerror(errno));
		create_failed(l, id, out, why);
		json_decref(rec);
		return NULL;
	}
	crash_point("spawned");
	json_object_set_new(rec, "pid", json_integer(pid));
	json_object_set_new(rec, "start_time", json_integer((json_int_t)pv_local_start_time(pid)));
	if (record_write(l, rec) < 0) {
		pv_local_go(go, false); /* never named: it must never run */
		create_failed(l, id, out, pv_error_last());
		json_decref(rec);
		return NULL;
	}
	crash_point("recorded");
	if (pv_local_go(go, true) < 0) {
		/* the supervisor died before its go (killed from outside): its
		 * record shows a machine that ended */
		pv_result_fail(out, PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT,
			       "local '%s': %s ended before it started", l->base.name, id);
		json_decref(rec);
		return NULL;
	}
	crash_point("started");
	return rec;
}

static void op_create(local *l, const pv_operation *op, pv_result *out)
{
	const json_t *p = op->params;
	json_t *jc = json_object_get(p, "count");
	if (jc && (!json_is_integer(jc) || json_integer_value(jc) < 1)) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'count' must be an integer >= 1");
		return;
	}
	int64_t want = jc ? json_integer_value(jc) : 1;
	/* a shell command per template runs whatever the templates file says:
	 * only when the provider's own configuration allows it */
	if (template_command(p) && !l->template_commands) {
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "local '%s': template '%s' sets a command; commands from templates are off "
			       "unless the provider's config has \"template_commands\": true", l->base.name,
			       json_string_value(json_object_get(p, "template_id")) ?
				       json_string_value(json_object_get(p, "template_id")) : "?");
		return;
	}
	const char *token = json_string_value(json_object_get(p, "client_token"));
	int fd = lock_workdir(l);
	if (fd < 0) {
		pv_result_fail(out, PV_ERR_EXECUTION_ERROR, PV_CLASS_TRANSIENT, "%s", pv_error_last());
		return;
	}
	json_t *all = records_all(l), *made = json_array(), *rec;
	prune(l, all);
	int64_t live = 0;
	size_t i;
	json_array_foreach(all, i, rec) {
		live += rec_alive(rec);
		const char *t = json_string_value(json_object_get(rec, "client_token"));
		if (token && t && strcmp(t, token) == 0)
			json_array_append_new(made, view(rec)); /* asked before: same answer */
	}
	bool replay = json_array_size(made) > 0;
	int64_t room = l->capacity < 0 ? want : l->capacity > live ? l->capacity - live : 0;
	int64_t n = replay ? 0 : want < room ? want : room;
	if (!replay && n == 0) {
		pv_result_fail(out, PV_ERR_CAPACITY, PV_CLASS_CAPACITY,
			       "local '%s' has no capacity: %lld of %lld machines in use", l->base.name,
			       (long long)live, (long long)l->capacity);
	}
	for (int64_t k = 0; k < n && !pv_operation_dry_run(op); k++) {
		json_t *r = spawn_one(l, p, token, out);
		if (!r)
			break;
		json_array_append_new(made, view(r));
		json_decref(r);
	}
	flock(fd, LOCK_UN);
	close(fd);
	json_decref(all);
	if (out->error_code[0] && json_array_size(made) == 0) {
		json_decref(made);
		return;
	}
	if (l->answer_delay_ns)
		pv_clock_sleep(l->clock, l->answer_delay_ns);
	size_t got = json_array_size(made);
	pv_result_ok(out, json_pack("{s:o, s:I, s:I, s:b, s:b}", "instances", made, "count",
				    (json_int_t)got, "requested", (json_int_t)want, "partial",
				    (int64_t)got < want && !replay, "replayed", replay));
}

static int get_ids(const pv_operation *op, json_t **ids, pv_result *out)
{
	*ids = json_object_get(op->params, "instance_ids");
	size_t i;
	json_t *v;
	bool ok = json_is_array(*ids);
	json_array_foreach(*ids, i, v) ok &= json_is_string(v);
	if (!ok)
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "parameter 'instance_ids' must be an array of instance id strings");
	return ok ? 0 : -1;
}

static void op_terminate(local *l, const pv_operation *op, pv_result *out)
{
	json_t *ids;
	if (get_ids(op, &ids, out) < 0)
		return;
	json_t *done = json_array(), *missing = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		json_t *rec = record_read(l, json_string_value(v));
		if (!rec) {
			json_array_append(missing, v);
			continue;
		}
		if (rec_alive(rec) && !pv_operation_dry_run(op)) {
			kill((pid_t)json_integer_value(json_object_get(rec, "pid")), SIGTERM);
			if (!json_object_get(rec, "terminate_ms")) {
				json_object_set_new(rec, "terminate_ms", json_integer(pv_wall_ms()));
				record_write(l, rec);
			}
		}
		json_array_append(done, v);
		json_decref(rec);
	}
	if (json_array_size(done) == 0 && json_array_size(missing) > 0) {
		pv_result_fail(out, PV_ERR_NOT_FOUND, PV_CLASS_PERMANENT,
			       "local '%s' knows none of the %zu instance ids", l->base.name,
			       json_array_size(missing));
		pv_result_meta_set(out, "not_found", missing);
		json_decref(done);
		return;
	}
	pv_result_ok(out, json_pack("{s:o, s:o, s:b}", "terminated", done, "not_found", missing,
				    "dry_run", pv_operation_dry_run(op)));
}

static void op_status(local *l, const pv_operation *op, pv_result *out, bool describe)
{
	json_t *list = json_array(), *missing = json_array();
	if (!describe) {
		json_t *ids;
		if (get_ids(op, &ids, out) < 0) {
			json_decref(list);
			json_decref(missing);
			return;
		}
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v) {
			json_t *rec = record_read(l, json_string_value(v));
			if (rec)
				json_array_append_new(list, view(rec));
			else
				json_array_append(missing, v);
			json_decref(rec);
		}
	} else {
		const char *req = json_string_value(json_object_get(op->params, "request_id"));
		json_t *all = records_all(l), *rec;
		size_t i;
		json_array_foreach(all, i, rec) {
			const char *r = json_string_value(json_object_get(rec, "request_id"));
			if (!req || (r && strcmp(r, req) == 0))
				json_array_append_new(list, view(rec));
		}
		json_decref(all);
	}
	pv_result_ok(out, json_pack("{s:o, s:o}", "instances", list, "not_found", missing));
}

static int live_count(local *l)
{
	json_t *all = records_all(l), *rec;
	size_t i;
	int n = 0;
	json_array_foreach(all, i, rec) n += rec_alive(rec);
	json_decref(all);
	return n;
}

static int local_health(pv_strategy *s, pv_health *out);

/* What the provider knows of its health: status, message, latency and the
 * details of a health check. */
static void op_health(pv_strategy *s, pv_result *out)
{
	pv_health h = {0};
	uint64_t t0 = pv_now_ns();
	local_health(s, &h);
	json_t *answer = pv_health_answer(h.healthy, h.message, pv_now_ns() - t0);
	if (answer && h.details)
		json_object_set(answer, "details", h.details);
	if (h.healthy) {
		pv_result_ok(out, answer);
	} else {
		pv_result_fail(out, "UNHEALTHY", PV_CLASS_TRANSIENT, "%s", h.message ? h.message : "unhealthy");
		pv_result_meta_set(out, "health", answer);
	}
	pv_health_clear(&h);
}

static int local_execute(pv_strategy *s, const pv_operation *op, pv_result *out)
{
	local *l = as_local(s);
	switch (op->type) {
	case PV_OP_CREATE_INSTANCES:
		op_create(l, op, out);
		break;
	case PV_OP_TERMINATE_INSTANCES:
		op_terminate(l, op, out);
		break;
	case PV_OP_GET_INSTANCE_STATUS:
		op_status(l, op, out, false);
		break;
	case PV_OP_DESCRIBE_RESOURCE_INSTANCES:
		op_status(l, op, out, true);
		break;
	case PV_OP_VALIDATE_TEMPLATE:
		pv_result_ok(out, json_pack("{s:b}", "valid", 1));
		break;
	case PV_OP_GET_AVAILABLE_TEMPLATES:
		pv_result_ok(out, json_pack("{s:[]}", "templates"));
		break;
	case PV_OP_HEALTH_CHECK:
		op_health(s, out);
		break;
	default:
		pv_result_fail(out, PV_ERR_INVALID_PARAMETERS, PV_CLASS_PERMANENT,
			       "unknown operation type %d", (int)op->type);
	}
	return 0;
}

static int local_capabilities(pv_strategy *s, pv_capabilities *out)
{
	local *l = as_local(s);
	snprintf(out->type, sizeof out->type, "local");
	out->operations = PV_OP_SET_ALL;
	out->features = json_pack("{s:b, s:b}", "instance_management", 1, "idempotent_create", 1);
	out->limitations = json_pack("{s:I}", "capacity", (json_int_t)l->capacity);
	return 0;
}

static int local_health(pv_strategy *s, pv_health *out)
{
	local *l = as_local(s);
	bool ok = access(l->workdir, W_OK) == 0;
	pv_health_set(out, ok, "local '%s': work directory %s %s", s->name, l->workdir,
		      ok ? "writable" : "not writable");
	out->details = json_pack("{s:i, s:I, s:s}", "live_machines", live_count(l), "capacity",
				 (json_int_t)l->capacity, "workdir", l->workdir);
	out->checked_at_ms = pv_wall_ms();
	return 0;
}

static json_t *local_stats(pv_strategy *s)
{
	local *l = as_local(s);
	return json_pack("{s:i, s:I}", "live_machines", live_count(l), "capacity", (json_int_t)l->capacity);
}

static void local_destroy(pv_strategy *s) { free(as_local(s)->command); }

static const pv_strategy_methods local_methods = {
	.version = PV_STRATEGY_METHODS_VERSION,
	.execute = local_execute,
	.capabilities = local_capabilities,
	.health = local_health,
	.destroy = local_destroy,
	.stats = local_stats,
};

/* ---- configuration ------------------------------------------------------------- */

static int bad(const char *name, const char *field, const char *why)
{
	return pv_error_set(PV_EINVAL, "local '%s': field '%s': %s", name, field, why);
}

static int parse_ms(const char *name, const json_t *cfg, const char *key, long *out)
{
	json_t *v = json_object_get(cfg, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 600000)
		return bad(name, key, "must be an integer from 0 to 600000 (milliseconds)");
	*out = (long)json_integer_value(v);
	return 0;
}

static int parse_config(local *l, const json_t *cfg)
{
	const char *name = l->base.name;
	static const char *const known[] = {"workdir", "capacity", "command", "template_commands",
					    "grace_period_ms", "hostname", "answer_delay_ms", NULL};
	if (cfg && !json_is_object(cfg))
		return pv_error_set(PV_EINVAL, "local '%s': config must be a JSON object", name);
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)cfg, key, v) {
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok |= strcmp(*k, key) == 0;
		if (!ok)
			return bad(name, key, "unknown (valid: workdir, capacity, command, template_commands, "
					      "grace_period_ms, hostname, answer_delay_ms)");
	}
	const char *wd = json_string_value(json_object_get(cfg, "workdir"));
	const char *hf = getenv("HF_PROVIDER_WORKDIR");
	if (json_object_get(cfg, "workdir") && (!wd || !*wd))
		return bad(name, "workdir", "must be a non-empty directory path");
	if (wd)
		snprintf(l->workdir, sizeof l->workdir, "%s", wd);
	else
		snprintf(l->workdir, sizeof l->workdir, "%s/local", hf && *hf ? hf : pv_paths_state_dir());
	json_t *cap = json_object_get(cfg, "capacity");
	if (cap && (!json_is_integer(cap) || json_integer_value(cap) < -1))
		return bad(name, "capacity", "must be an integer >= 0, or -1 for unlimited");
	l->capacity = cap ? json_integer_value(cap) : 16;
	json_t *cmd = json_object_get(cfg, "command");
	if (cmd && (!json_is_string(cmd) || !json_string_length(cmd)))
		return bad(name, "command", "must be a non-empty shell command");
	l->command = strdup(cmd ? json_string_value(cmd) : "sleep 86400");
	json_t *tc = json_object_get(cfg, "template_commands");
	if (tc && !json_is_boolean(tc))
		return bad(name, "template_commands", "must be true or false");
	l->template_commands = json_is_true(tc);
	json_t *host = json_object_get(cfg, "hostname");
	if (host && (!json_is_string(host) || !json_string_length(host)))
		return bad(name, "hostname", "must be a non-empty string");
	if (host)
		snprintf(l->hostname, sizeof l->hostname, "%s", json_string_value(host));
	else if (gethostname(l->hostname, sizeof l->hostname - 1) < 0 || !l->hostname[0])
		snprintf(l->hostname, sizeof l->hostname, "localhost");
	long delay = 0;
	l->grace_ms = 2000;
	int rc = parse_ms(name, cfg, "grace_period_ms", &l->grace_ms);
	if (rc == 0)
		rc = parse_ms(name, cfg, "answer_delay_ms", &delay);
	l->answer_delay_ns = (uint64_t)delay * PV_NS_PER_MS;
	if (rc == 0 && !l->command)
		rc = pv_error_set(PV_ENOMEM, "out of memory");
	return rc;
}

int pv_local_new(pv_strategy **out, const char *name, const json_t *config, const pv_clock *clock)
{
	*out = NULL;
	local *l = pv_strategy_alloc(sizeof *l, &local_methods, name, "local");
	if (!l)
		return pv_error_last_code();
	l->clock = clock;
	int rc = parse_config(l, config);
	char machines[PATH_MAX];
	snprintf(machines, sizeof machines, "%s/machines", l->workdir);
	if (rc == 0 && mkdirs(machines) < 0)
		rc = pv_error_set(PV_EIO, "local '%s': cannot create work directory %s: %s", name,
				  machines, strerror(errno));
	if (rc < 0) {
		pv_strategy_unref(&l->base);
		return rc;
	}
	*out = &l->base;
	return 0;
}
