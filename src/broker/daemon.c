/*
 * daemon.c - how short Host Factory processes learn that `provisio serve`
 * runs on their store, and the broker's mode that follows from it.
 *
 * The daemon writes one heartbeat row ("daemon/heartbeat" in the store's
 * key/value table) every reconciler tick. A process that finds a fresh one
 * leaves the providers to the daemon (PV_BROKER_DEFERRED): requests are
 * queued in the store, status is what the reconciler last wrote. Why a row
 * in the store and not a pid file or a socket: the store is the one thing
 * every Host Factory process and the daemon already share, on any host
 * that reaches it, and reading one key costs a primary-key lookup.
 *
 * Freshness is judged on the wall clock (the row is read by other
 * processes, maybe other hosts): a beat older than three intervals plus
 * two seconds is a daemon that hangs or died. On its own host, in its own
 * pid namespace (containers may share a host name but not pids), a dead
 * pid is believed at once, so a crash is noticed without waiting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "broker/broker_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"
#include "util/names.h"

#define HEARTBEAT_KEY "daemon/heartbeat"

static const char *const mode_names[PV_BROKER_MODE_COUNT] = {"direct", "deferred"};

const char *pv_broker_mode_name(pv_broker_mode m)
{
	return (unsigned)m < PV_BROKER_MODE_COUNT ? mode_names[m] : "unknown";
}

int pv_broker_mode_parse(const char *name, pv_broker_mode *out)
{
	int i = pv_names_find(mode_names, PV_BROKER_MODE_COUNT, name, "broker mode");
	if (i < 0)
		return i;
	*out = (pv_broker_mode)i;
	return 0;
}

void pv_broker_set_mode(pv_broker *b, pv_broker_mode m)
{
	b->mode = (unsigned)m < PV_BROKER_MODE_COUNT ? m : PV_BROKER_DIRECT;
}

pv_broker_mode pv_broker_get_mode(const pv_broker *b) { return b->mode; }

static void this_host(char *buf, size_t size)
{
	if (gethostname(buf, size) < 0)
		buf[0] = '\0';
	buf[size - 1] = '\0';
}

/* This process's pid namespace ("pid:[4026531836]"), "" when unknown. */
static void this_pid_namespace(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/ns/pid", buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
}

void pv_broker_this_node(char *buf, size_t size)
{
	char host[256], ns[64];
	this_host(host, sizeof host);
	this_pid_namespace(ns, sizeof ns);
	snprintf(buf, size, "%s %s", host, ns);
}

/* Whether pids in `row` are this process's pids: same host and, when both
 * know it, same pid namespace. */
static bool same_pid_space(const json_t *row)
{
	char host[256], ns[64];
	this_host(host, sizeof host);
	this_pid_namespace(ns, sizeof ns);
	const char *h = json_string_value(json_object_get(row, "host"));
	const char *n = json_string_value(json_object_get(row, "pid_namespace"));
	return h && strcmp(h, host) == 0 && (!n || !*n || !ns[0] || strcmp(n, ns) == 0);
}

static int put_row(pv_broker *b, json_t *row)
{
	char *text = row ? json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(row);
	if (!text)
		return pv_error_set(PV_ENOMEM, "out of memory");
	int rc = pv_store_begin(b->store, true);
	if (rc == 0)
		rc = pv_store_kv_put(b->store, HEARTBEAT_KEY, text);
	if (rc == 0)
		rc = pv_store_commit(b->store);
	else
		pv_store_rollback(b->store);
	free(text);
	return rc;
}

int pv_broker_daemon_beat(pv_broker *b, const pv_daemon_info *info)
{
	if (!info || info->interval_ms < 1 || info->interval_ms > 86400000)
		return pv_error_set(PV_EINVAL, "daemon.interval_ms: must be 1..86400000 (got %lld)",
				    info ? (long long)info->interval_ms : 0LL);
	char host[256], ns[64];
	if (info->host[0])
		snprintf(host, sizeof host, "%s", info->host);
	else
		this_host(host, sizeof host);
	this_pid_namespace(ns, sizeof ns);
	return put_row(b, json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "state", "running",
				    "pid", (json_int_t)info->pid, "host", host, "pid_namespace", ns,
				    "listen", info->listen, "interval_ms", (json_int_t)info->interval_ms,
				    "started_ms", (json_int_t)info->started_ms, "updated_ms",
				    (json_int_t)pv_broker_now_ms()));
}

/* The row as stored; 0, PV_ENOTFOUND (never written) or the store's error. */
static int read_row(pv_broker *b, json_t **out)
{
	*out = NULL;
	char *text = NULL;
	int rc = pv_store_begin(b->store, false);
	if (rc < 0)
		return rc;
	rc = pv_store_kv_get(b->store, HEARTBEAT_KEY, &text);
	pv_store_commit(b->store);
	if (rc < 0)
		return rc;
	*out = json_loads(text, 0, NULL);
	free(text);
	return *out ? 0 : PV_ENOTFOUND;
}

static void row_info(const json_t *row, pv_daemon_info *d)
{
	memset(d, 0, sizeof *d);
	const char *host = json_string_value(json_object_get(row, "host"));
	const char *listen = json_string_value(json_object_get(row, "listen"));
	d->pid = json_integer_value(json_object_get(row, "pid"));
	snprintf(d->host, sizeof d->host, "%s", host ? host : "");
	snprintf(d->listen, sizeof d->listen, "%s", listen ? listen : "");
	d->interval_ms = json_integer_value(json_object_get(row, "interval_ms"));
	d->started_ms = json_integer_value(json_object_get(row, "started_ms"));
	d->updated_ms = json_integer_value(json_object_get(row, "updated_ms"));
}

int pv_broker_daemon_clear(pv_broker *b, int64_t pid)
{
	json_t *row = NULL;
	int rc = read_row(b, &row);
	if (rc == PV_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	pv_daemon_info d;
	row_info(row, &d);
	if (d.pid != pid || !same_pid_space(row)) {
		json_decref(row); /* another daemon's announcement */
		return 0;
	}
	json_object_set_new(row, "state", json_string("stopped"));
	json_object_set_new(row, "updated_ms", json_integer(pv_broker_now_ms()));
	return put_row(b, row);
}


int pv_broker_daemon_get(pv_broker *b, pv_daemon_info *out)
{
	json_t *row = NULL;
	int rc = read_row(b, &row);
	if (rc < 0)
		return rc;
	pv_daemon_info d;
	row_info(row, &d);
	const char *state = json_string_value(json_object_get(row, "state"));
	bool running = state && strcmp(state, "running") == 0;
	/* a crash on this host, in this pid namespace, is known at once */
	bool dead_here = same_pid_space(row) && !pv_broker_pid_alive(d.pid);
	json_decref(row);
	int64_t age = pv_broker_now_ms() - d.updated_ms;
	if (!running || d.interval_ms <= 0 || age > 3 * d.interval_ms + 2000 || dead_here)
		return PV_ENOTFOUND;
	if (out)
		*out = d;
	return 0;
}

/* ---- leases -------------------------------------------------------------------------------- */

/* Reads, decides and writes in one write transaction: two daemons never
 * both take a free lease (the store serialises writers). `take`: take or
 * renew; else release. */
static int lease_update(pv_broker *b, const char *name, const char *holder, int64_t ttl_ms, bool take,
			bool *held)
{
	char key[160];
	snprintf(key, sizeof key, "lease/%s", name);
	int rc = pv_store_begin(b->store, true);
	if (rc < 0)
		return rc;
	char *text = NULL;
	rc = pv_store_kv_get(b->store, key, &text);
	json_t *row = rc == 0 ? json_loads(text, 0, NULL) : NULL;
	free(text);
	const char *owner = json_string_value(json_object_get(row, "holder"));
	int64_t until = json_integer_value(json_object_get(row, "until_ms"));
	int64_t now = pv_broker_now_ms();
	bool mine = owner && strcmp(owner, holder) == 0;
	bool free_now = !owner || until <= now;
	json_decref(row);
	rc = rc == PV_ENOTFOUND ? 0 : rc;
	json_t *next = NULL;
	if (rc == 0 && take && (mine || free_now))
		next = json_pack("{s:s, s:I, s:I}", "holder", holder, "until_ms", (json_int_t)(now + ttl_ms),
				 "taken_ms", (json_int_t)now);
	else if (rc == 0 && !take && mine)
		next = json_pack("{s:s, s:I}", "holder", "", "until_ms", (json_int_t)0);
	char *out = next ? json_dumps(next, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(next);
	if (out)
		rc = pv_store_kv_put(b->store, key, out);
	free(out);
	if (rc == 0)
		rc = pv_store_commit(b->store);
	else
		pv_store_rollback(b->store);
	if (held)
		*held = rc == 0 && take && (mine || free_now);
	return rc;
}

int pv_broker_lease(pv_broker *b, const char *name, const char *holder, int64_t ttl_ms, bool *held)
{
	*held = false;
	if (!name || !*name || !holder || !*holder)
		return pv_error_set(PV_EINVAL, "lease: name and holder must be non-empty");
	if (ttl_ms < 1 || ttl_ms > 86400000)
		return pv_error_set(PV_EINVAL, "lease.ttl_ms: must be 1..86400000 (got %lld)", (long long)ttl_ms);
	return lease_update(b, name, holder, ttl_ms, true, held);
}

int pv_broker_lease_release(pv_broker *b, const char *name, const char *holder)
{
	if (!name || !*name || !holder || !*holder)
		return pv_error_set(PV_EINVAL, "lease: name and holder must be non-empty");
	return lease_update(b, name, holder, 0, false, NULL);
}

pv_broker_mode pv_broker_choose_mode(pv_broker *b, const char *who)
{
	pv_daemon_info d;
	if (pv_broker_daemon_get(b, &d) == 0) {
		pv_broker_set_mode(b, PV_BROKER_DEFERRED);
		pv_log(PV_LOG_INFO, "%s: deferred to provisio serve (pid %lld on %s): no provider call", who,
		       (long long)d.pid, d.host);
		return PV_BROKER_DEFERRED;
	}
	/* the lookup's "not found" is no error of the caller's: forget it, so a
	 * later failure is not reported with this message */
	pv_error_clear();
	pv_broker_set_mode(b, PV_BROKER_DIRECT);
	int n = pv_broker_run_queue(b);
	if (n > 0)
		pv_log(PV_LOG_WARN, "%s: no live daemon; finished %d queued request(s)", who, n);
	return PV_BROKER_DIRECT;
}
