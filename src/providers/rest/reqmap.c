/*
 * reqmap.c - our request ids and the remote's.
 *
 * The remote service names each request itself (req-...), but the broker
 * asks describe_resource_instances with its own request id (crash recovery
 * finds what an interrupted create made). The contract has no field to carry
 * our id to the remote, so the provider remembers the pairs of its last
 * creates: a fixed ring, no allocation, saved with the strategy's state so
 * the next short-lived process (Host Factory starts one per call) knows them
 * too. An id that is not in the ring is passed to the remote as is.
 */
#include <stdio.h>
#include <string.h>
#include "provisio/error.h"
#include "providers/rest/rs.h"

void rs_reqmap_init(rs_reqmap *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->lock, NULL);
}

void rs_reqmap_fini(rs_reqmap *m) { pthread_mutex_destroy(&m->lock); }

static bool fits(const char *s) { return s && *s && strlen(s) < sizeof(((rs_reqmap_entry *)0)->ours); }

/* Index of slot k (0 = oldest) in the ring. */
static size_t slot(const rs_reqmap *m, size_t k)
{
	return (m->next + RS_REQMAP_SIZE - m->n + k) % RS_REQMAP_SIZE;
}

static void put_locked(rs_reqmap *m, const char *ours, const char *remote)
{
	for (size_t k = 0; k < m->n; k++) {
		rs_reqmap_entry *e = &m->e[slot(m, k)];
		if (strcmp(e->ours, ours) == 0) {
			snprintf(e->remote, sizeof e->remote, "%s", remote);
			return;
		}
	}
	rs_reqmap_entry *e = &m->e[m->next];
	snprintf(e->ours, sizeof e->ours, "%s", ours);
	snprintf(e->remote, sizeof e->remote, "%s", remote);
	m->next = (m->next + 1) % RS_REQMAP_SIZE;
	if (m->n < RS_REQMAP_SIZE)
		m->n++;
}

void rs_reqmap_put(rs_reqmap *m, const char *ours, const char *remote)
{
	if (!fits(ours) || !fits(remote))
		return;
	pthread_mutex_lock(&m->lock);
	put_locked(m, ours, remote);
	pthread_mutex_unlock(&m->lock);
}

static bool find(rs_reqmap *m, const char *key, bool by_ours, char *buf, size_t len)
{
	bool found = false;
	if (!key)
		return false;
	pthread_mutex_lock(&m->lock);
	/* Newest first: a request id reused by the caller means the latest. */
	for (size_t k = m->n; k-- > 0 && !found;) {
		const rs_reqmap_entry *e = &m->e[slot(m, k)];
		if (strcmp(by_ours ? e->ours : e->remote, key) == 0) {
			snprintf(buf, len, "%s", by_ours ? e->remote : e->ours);
			found = true;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

bool rs_reqmap_remote(rs_reqmap *m, const char *ours, char *buf, size_t len)
{
	return find(m, ours, true, buf, len);
}

bool rs_reqmap_ours(rs_reqmap *m, const char *remote, char *buf, size_t len)
{
	return find(m, remote, false, buf, len);
}

size_t rs_reqmap_count(rs_reqmap *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

json_t *rs_reqmap_save(rs_reqmap *m)
{
	json_t *a = json_array();
	pthread_mutex_lock(&m->lock);
	for (size_t k = 0; k < m->n; k++) {
		const rs_reqmap_entry *e = &m->e[slot(m, k)];
		json_array_append_new(a, json_pack("[s,s]", e->ours, e->remote));
	}
	pthread_mutex_unlock(&m->lock);
	return a;
}

int rs_reqmap_load(rs_reqmap *m, const json_t *saved)
{
	size_t i;
	json_t *e;
	if (!json_is_array(saved))
		return pv_error_set(PV_EINVAL, "rest state: 'requests' must be an array of [ours, remote]");
	json_array_foreach(saved, i, e) {
		if (!json_is_array(e) || json_array_size(e) != 2 ||
		    !fits(json_string_value(json_array_get(e, 0))) ||
		    !fits(json_string_value(json_array_get(e, 1))))
			return pv_error_set(PV_EINVAL,
					    "rest state: requests[%zu] must be [ours, remote], two ids "
					    "of 1 to 127 characters", i);
	}
	pthread_mutex_lock(&m->lock);
	m->n = m->next = 0;
	json_array_foreach(saved, i, e)
		put_locked(m, json_string_value(json_array_get(e, 0)), json_string_value(json_array_get(e, 1)));
	pthread_mutex_unlock(&m->lock);
	return 0;
}
