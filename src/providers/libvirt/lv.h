/*
 * lv.h - the inside of the libvirt provider, shared by its files.
 *
 * One file a concept: config.c (the JSON configuration and its enums),
 * errors.c (libvirt errors -> result codes and classes, state mapping),
 * render.c (domain XML templates and provisio's metadata in them), hosts.c
 * (the pool of hosts: connections, capacity reservations), domain.c (one
 * machine: overlay, define, start, view, destroy) and libvirt.c (the
 * strategy and its operations).
 */
#ifndef PV_PROVIDERS_LIBVIRT_LV_H
#define PV_PROVIDERS_LIBVIRT_LV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <libvirt/libvirt.h>
#include "provisio/libvirt.h"
#include "provisio/result.h"

/* ---- configuration (config.c) ------------------------------------------ */

typedef enum lv_overlay_mode {
	LV_OVERLAY_AUTO = 0, /* overlay when the host's pool allows, else note and attach the base */
	LV_OVERLAY_REQUIRED, /* no overlay, no machine */
	LV_OVERLAY_OFF,      /* attach the base image itself */
	LV_OVERLAY_COUNT
} lv_overlay_mode;

typedef enum lv_placement {
	LV_PLACE_SPREAD = 0, /* each request starts at the next host */
	LV_PLACE_PACK,       /* fill hosts in configuration order */
	LV_PLACE_COUNT
} lv_placement;

typedef enum lv_ip_source {
	LV_IP_LEASE = 0, /* the libvirt network's DHCP leases */
	LV_IP_AGENT,     /* the QEMU guest agent */
	LV_IP_ARP,       /* the host's ARP table */
	LV_IP_COUNT
} lv_ip_source;

const char *lv_overlay_mode_name(lv_overlay_mode m);
int lv_overlay_mode_parse(const char *s, lv_overlay_mode *out);
const char *lv_placement_name(lv_placement p);
int lv_placement_parse(const char *s, lv_placement *out);
const char *lv_ip_source_name(lv_ip_source s);
int lv_ip_source_parse(const char *s, lv_ip_source *out);

typedef struct lv_host_config {
	char *uri;
	char *name;       /* label in results; defaults to the URI */
	int64_t capacity; /* provisio domains it may hold; -1 = no limit */
} lv_host_config;

typedef struct lv_config {
	lv_host_config *hosts;
	size_t n_hosts;
	lv_placement placement;
	char *name_prefix;
	char *domain_type; /* "auto" = from the driver */
	char *domain_xml;
	int64_t memory_mb, vcpus;
	char *network;
	char *pool, *base_image, *base_format;
	int64_t size_gb; /* overlay size; 0 = the base image's */
	lv_overlay_mode overlay;
	lv_ip_source ip_sources[LV_IP_COUNT];
	size_t n_ip_sources;
	int64_t max_per_request;
	int64_t reconnect_interval_ms;
	json_t *templates; /* array, owned */
} lv_config;

/* Fills `c` from JSON (NULL = defaults) for the strategy `name`. 0 or
 * PV_EINVAL naming the field / PV_ENOMEM. `c` must be zeroed; free it with
 * lv_config_free even on failure. */
int lv_config_parse(lv_config *c, const char *name, const json_t *cfg);
void lv_config_free(lv_config *c);

/* The built-in domain XML template. Static. */
const char *lv_default_domain_xml(void);

/* ---- errors (errors.c) ------------------------------------------------- */

/* A libvirt failure, captured right after the call (libvirt's last error is
 * per thread and the next call overwrites it). */
typedef struct lv_err {
	bool set;
	int vir_code;   /* virErrorNumber, 0 when not from libvirt */
	int vir_domain; /* virErrorDomain */
	char code[PV_RESULT_CODE_MAX];
	pv_error_class cls;
	bool host_scoped; /* about one host (its pool, its start): others may work */
	char message[512];
} lv_err;

/* Codes the provider adds to the kernel's. */
#define LV_ERR_CONNECTION "CONNECTION_ERROR"
#define LV_ERR_AUTH "AUTH_FAILED"
#define LV_ERR_UNHEALTHY "UNHEALTHY"

/* Installs the quiet error handler and initializes libvirt and libxml2
 * once per process. 0 or PV_ERROR. */
int lv_global_init(void);

/* Captures virGetLastError() with a printf prefix saying what was tried. */
void lv_err_capture(lv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same for a failure to open a connection (always a connection error
 * unless libvirt said it was about credentials). */
void lv_err_capture_open(lv_err *e, const char *uri);
/* A failure that did not come from libvirt. */
void lv_err_set(lv_err *e, const char *code, pv_error_class cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* True when the connection behind the error should be reopened. */
bool lv_err_is_connection(const lv_err *e);
/* Fails `out` with the error. */
void lv_err_to_result(const lv_err *e, pv_result *out);
/* {"code", "class", "message"} of the error, new reference. */
json_t *lv_err_to_json(const lv_err *e);

/* "running", "paused", ... for a virDomainState. Static. */
const char *lv_domain_state_name(int vir_state);

/* ---- rendering (render.c) ---------------------------------------------- */

/* What one machine looks like; every string borrowed. */
typedef struct lv_spec {
	const char *name;
	const char *request_id;
	const char *template_id;
	int64_t index;
	int64_t memory_mb, vcpus;
	const char *network;
	const char *domain_type;
	const char *disk;        /* path, or NULL for no disk */
	const char *disk_format;
	/* Where the overlay lives, recorded so terminate can remove it. */
	const char *overlay_pool;
	const char *overlay_volume;
	int64_t launch_time_ms;
} lv_spec;

/* Renders a template's {{placeholders}} (values XML-escaped), parses the
 * result, checks it is a <domain> named spec->name with a <memory>, and adds
 * provisio's <metadata>. Returns a new string the caller frees with free(),
 * or NULL with pv_error_set(PV_EINVAL, ...) naming the placeholder or the
 * XML problem. */
char *lv_render_domain(const char *tmpl, const lv_spec *spec);

/* `s` with XML's five special characters escaped, into buf (truncated to
 * fit, always terminated). Returns buf. */
char *lv_xml_escape(const char *s, char *buf, size_t len);

/* The namespace of provisio's domain metadata. */
#define LV_METADATA_URI "https://provisio.dev/xmlns/libvirt/1"

/* What provisio recorded in a domain at creation. */
typedef struct lv_meta {
	char request_id[128];
	char template_id[128];
	char pool[128];
	char volume[256];
	int64_t launch_time_ms;
} lv_meta;

/* Parses the element virDomainGetMetadata returns. 0 or PV_EINVAL. */
int lv_meta_parse(const char *xml, lv_meta *out);

/* ---- hosts (hosts.c) --------------------------------------------------- */

typedef struct lv_host {
	const lv_host_config *cfg;
	pthread_mutex_t lock; /* conn, domain_type, last_err, retry_at_ns */
	virConnectPtr conn;
	char domain_type[32];
	lv_err last_err;      /* why the host was last unreachable */
	uint64_t retry_at_ns; /* no reconnect before this (clock time) */
	atomic_int_fast64_t inflight; /* reserved, not yet defined */
	atomic_uint_fast64_t connects, connect_failures, drops;
} lv_host;

void lv_host_init(lv_host *h, const lv_host_config *cfg);
void lv_host_fini(lv_host *h);

/* How connections are opened: the driver's domain type setting and how long
 * a host that failed to connect is left alone (so operations on a pool with
 * a dead host do not each wait for it to time out again). */
typedef struct lv_connect_policy {
	const char *domain_type_cfg;
	const pv_clock *clock;
	uint64_t retry_interval_ns;
} lv_connect_policy;

/* A connection with its own reference (release with virConnectClose), opened
 * if needed; NULL with `err` filled when the host cannot be reached. Within
 * the retry interval after a failed open, fails at once with that error
 * unless `force` (health checks always try). */
virConnectPtr lv_host_connect(lv_host *h, const lv_connect_policy *pol, bool force, lv_err *err);
/* Forgets `conn` after a connection error, so the next call reopens. */
void lv_host_drop(lv_host *h, virConnectPtr conn, const lv_err *err);
/* The domain type for templates on this host (copied into buf). */
void lv_host_domain_type(lv_host *h, char *buf, size_t len);

/* provisio's domains on a host (names starting with prefix), or -1. */
int64_t lv_host_count_ours(virConnectPtr conn, const char *prefix, lv_err *err);

/*
 * Reserves up to `want` places on the host for new domains. Returns the
 * number granted (0..want) or -1 with err filled. Never over-commits: a
 * domain being defined is counted in both `inflight` and the host's list for
 * a moment, which can only make the answer smaller. Release each reserved
 * place with lv_host_release once its domain is defined or abandoned.
 */
int64_t lv_host_reserve(lv_host *h, virConnectPtr conn, const char *prefix, int64_t want,
			lv_err *err);
void lv_host_release(lv_host *h, int64_t n);

/* Connections taken during one operation, at most one a host. */
typedef struct lv_conns {
	lv_host *hosts;
	size_t n;
	const lv_connect_policy *pol;
	virConnectPtr *conn;
	lv_err *err; /* why a host could not be reached */
	bool *tried;
} lv_conns;

int lv_conns_init(lv_conns *cs, lv_host *hosts, size_t n, const lv_connect_policy *pol);
/* The connection of host i for this operation, or NULL (see cs->err[i]). */
virConnectPtr lv_conns_get(lv_conns *cs, size_t i);
/* Records a failed call on host i; drops the connection when it is broken. */
void lv_conns_fail(lv_conns *cs, size_t i, const lv_err *err);
void lv_conns_fini(lv_conns *cs);

/* ---- the provider (libvirt.c) and one machine (domain.c) --------------- */

typedef struct lv_provider {
	pv_strategy base;
	const pv_clock *clock;
	lv_config cfg;
	lv_connect_policy policy;
	lv_host *hosts;
	atomic_uint_fast64_t next_start; /* spread placement */
	atomic_uint_fast64_t auto_ids;   /* request ids when none is given */
	atomic_uint_fast64_t calls[PV_OP_COUNT];
	atomic_uint_fast64_t created, reused, terminated, failed;
	atomic_uint_fast64_t overlays_created, overlays_skipped, overlays_removed;
} lv_provider;

/* The settings of one request, after template and defaults are merged. */
typedef struct lv_request {
	const char *request_id;
	const char *template_id;
	int64_t memory_mb, vcpus;
	const char *network;
	const char *base_image;
	const char *domain_xml;
	bool auto_request_id; /* no request id was given: not idempotent */
} lv_request;

/* The part of a request's domain names before the index, ending in '-'. */
void lv_domain_stem(const lv_provider *p, const char *request_id, char *buf, size_t len);
/* The domain name of index `i` of a request (deterministic). */
void lv_domain_name(const lv_provider *p, const char *request_id, int64_t i, char *buf,
		    size_t len);

/* Creates (overlay, define, start) index i of the request on host h. On
 * success returns the domain (caller frees with virDomainFree) and sets
 * *note when the overlay was skipped (static or in note_buf). NULL with err
 * filled on failure; nothing is left behind. */
virDomainPtr lv_domain_create(lv_provider *p, lv_host *h, virConnectPtr conn,
			      const lv_request *rq, int64_t i, char *note_buf, size_t note_len,
			      lv_err *err);

/* Starts a defined domain that is not running (a retried create). 0 or -1. */
int lv_domain_ensure_running(virDomainPtr dom, lv_err *err);

/* The public view of a domain: instance_id, provider, state, libvirt_state,
 * private_ip, host_name, launch_time_ms, host, request_id, template_id,
 * overlay. New reference, or NULL with err filled. */
json_t *lv_domain_view(lv_provider *p, lv_host *h, virDomainPtr dom, lv_err *err);

/* Destroys (if running) and undefines a domain, then removes its overlay.
 * 0 or -1 with err filled. */
int lv_domain_remove(lv_provider *p, virConnectPtr conn, virDomainPtr dom, lv_err *err);

/* Finds a domain by name on any reachable host: the domain (caller frees)
 * and its host index, or NULL. *unreachable is set when some host could not
 * be asked, so "not found" is not certain. */
virDomainPtr lv_domain_find(lv_conns *cs, const char *name, size_t *host_out,
			    bool *unreachable);

#endif
