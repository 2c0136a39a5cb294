/*
 * hosts.c - the pool of hypervisor hosts behind one libvirt strategy.
 *
 * Each host keeps one libvirt connection, opened on first use and again
 * after a connection error, so a host that was down when provisio started
 * (or restarted since) comes back without rebuilding the strategy. libvirt
 * connections are thread-safe and reference counted: callers take their own
 * reference for the length of a call, and the host's lock covers only
 * swapping the pointer, never a libvirt call made with it - except opening,
 * which must happen once.
 *
 * Capacity is the number of provisio's domains (by name prefix) a host may
 * hold. Reservations make concurrent creates safe without a lock around the
 * slow define/start calls: see lv_host_reserve.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "provisio/error.h"
#include "providers/libvirt/lv.h"

void lv_host_init(lv_host *h, const lv_host_config *cfg)
{
	memset(h, 0, sizeof *h);
	h->cfg = cfg;
	pthread_mutex_init(&h->lock, NULL);
}

void lv_host_fini(lv_host *h)
{
	if (h->conn)
		virConnectClose(h->conn);
	h->conn = NULL;
	pthread_mutex_destroy(&h->lock);
}

/* "auto" follows the driver: QEMU hosts run kvm domains, the test driver
 * test domains, others their own lower-cased type. */
static void detect_domain_type(virConnectPtr c, const char *cfg, char *buf, size_t len)
{
	if (cfg && strcmp(cfg, "auto") != 0) {
		snprintf(buf, len, "%s", cfg);
		return;
	}
	const char *t = virConnectGetType(c);
	if (!t || strcasecmp(t, "QEMU") == 0) {
		snprintf(buf, len, "kvm");
		return;
	}
	size_t i = 0;
	for (; t[i] && i + 1 < len; i++)
		buf[i] = (char)((t[i] >= 'A' && t[i] <= 'Z') ? t[i] + 32 : t[i]);
	buf[i] = '\0';
}

virConnectPtr lv_host_connect(lv_host *h, const lv_connect_policy *pol, bool force, lv_err *err)
{
	pthread_mutex_lock(&h->lock);
	if (!h->conn) {
		uint64_t now = pv_clock_now(pol->clock);
		if (!force && h->last_err.set && now < h->retry_at_ns) {
			*err = h->last_err;
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		virConnectPtr c = virConnectOpen(h->cfg->uri);
		if (!c) {
			lv_err_capture_open(err, h->cfg->uri);
			h->last_err = *err;
			h->retry_at_ns = now + pol->retry_interval_ns;
			atomic_fetch_add(&h->connect_failures, 1);
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		detect_domain_type(c, pol->domain_type_cfg, h->domain_type, sizeof h->domain_type);
		h->conn = c;
		h->last_err.set = false;
		atomic_fetch_add(&h->connects, 1);
	}
	virConnectPtr c = h->conn;
	virConnectRef(c);
	pthread_mutex_unlock(&h->lock);
	return c;
}

void lv_host_drop(lv_host *h, virConnectPtr conn, const lv_err *err)
{
	pthread_mutex_lock(&h->lock);
	if (h->conn == conn) {
		virConnectClose(h->conn);
		h->conn = NULL;
		atomic_fetch_add(&h->drops, 1);
	}
	if (err)
		h->last_err = *err;
	h->retry_at_ns = 0; /* a dropped connection may reopen at once */
	pthread_mutex_unlock(&h->lock);
}

void lv_host_domain_type(lv_host *h, char *buf, size_t len)
{
	pthread_mutex_lock(&h->lock);
	snprintf(buf, len, "%s", h->domain_type[0] ? h->domain_type : "kvm");
	pthread_mutex_unlock(&h->lock);
}

int64_t lv_host_count_ours(virConnectPtr conn, const char *prefix, lv_err *err)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(conn, &doms, 0);
	if (n < 0) {
		lv_err_capture(err, "cannot list domains");
		return -1;
	}
	size_t plen = strlen(prefix);
	int64_t ours = 0;
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);
		if (name && strncmp(name, prefix, plen) == 0)
			ours++;
		virDomainFree(doms[i]);
	}
	free(doms);
	return ours;
}

int64_t lv_host_reserve(lv_host *h, virConnectPtr conn, const char *prefix, int64_t want,
			lv_err *err)
{
	if (h->cfg->capacity < 0) {
		atomic_fetch_add(&h->inflight, want);
		return want;
	}
	/* Reserve first, then count: a concurrent create is either still in
	 * `before` or already in the list, so room is never overstated. */
	int64_t before = atomic_fetch_add(&h->inflight, want);
	int64_t live = lv_host_count_ours(conn, prefix, err);
	if (live < 0) {
		atomic_fetch_sub(&h->inflight, want);
		return -1;
	}
	int64_t room = h->cfg->capacity - live - before;
	int64_t granted = room < 0 ? 0 : (room > want ? want : room);
	atomic_fetch_sub(&h->inflight, want - granted);
	return granted;
}

void lv_host_release(lv_host *h, int64_t n)
{
	if (n > 0)
		atomic_fetch_sub(&h->inflight, n);
}

/* ---- the connections of one operation ----------------------------------- */

int lv_conns_init(lv_conns *cs, lv_host *hosts, size_t n, const lv_connect_policy *pol)
{
	memset(cs, 0, sizeof *cs);
	cs->hosts = hosts;
	cs->n = n;
	cs->pol = pol;
	cs->conn = calloc(n, sizeof *cs->conn);
	cs->err = calloc(n, sizeof *cs->err);
	cs->tried = calloc(n, sizeof *cs->tried);
	if (!cs->conn || !cs->err || !cs->tried) {
		lv_conns_fini(cs);
		return pv_error_set(PV_ENOMEM, "out of memory");
	}
	return 0;
}

virConnectPtr lv_conns_get(lv_conns *cs, size_t i)
{
	if (!cs->tried[i]) {
		cs->tried[i] = true;
		cs->conn[i] = lv_host_connect(&cs->hosts[i], cs->pol, false, &cs->err[i]);
	}
	return cs->conn[i];
}

void lv_conns_fail(lv_conns *cs, size_t i, const lv_err *err)
{
	virConnectPtr c = cs->conn[i];
	if (!c)
		return;
	if (lv_err_is_connection(err) || virConnectIsAlive(c) == 0) {
		/* Broken: forget it here and for the host; later calls in this
		 * operation skip the host instead of waiting on it again. */
		lv_host_drop(&cs->hosts[i], c, err);
		virConnectClose(c);
		cs->conn[i] = NULL;
		cs->err[i] = *err;
	}
}

void lv_conns_fini(lv_conns *cs)
{
	for (size_t i = 0; cs->conn && i < cs->n; i++)
		if (cs->conn[i])
			virConnectClose(cs->conn[i]);
	free(cs->conn);
	free(cs->err);
	free(cs->tried);
	memset(cs, 0, sizeof *cs);
}
