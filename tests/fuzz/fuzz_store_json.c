/*
 * fuzz_store_json.c - libFuzzer target for what the store gives back as
 * JSON text, which another process (or a hand, or a disk) may have
 * written: the input is split at NUL bytes into a strategy's kernel state
 * (state/sim, read when a broker starts), the daemon heartbeat
 * (daemon/heartbeat), the reconciler lease (lease/reconciler) and an
 * Idempotency-Key record. Each is written to a SQLite store and read back
 * the way the daemon and Host Factory read it.
 */
#include <stdint.h>
#include "fuzz_support.h"
#include "server/server_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pv_broker *main_broker;
static pv_store *store;

static void setup(void)
{
	char tmpl[300], db[300];
	static const char t[] = "{\"templates\": [{\"templateId\": \"t1\"}]}";
	fz_write("templates.json", t, sizeof t - 1, tmpl, sizeof tmpl);
	main_broker = fz_broker(tmpl, "store.db");
	snprintf(db, sizeof db, "%s/store.db", fz_dir());
	if (!main_broker || pv_store_open(&store, db, NULL) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!store)
		setup();
	static const char *const keys[] = {"state/sim", "daemon/heartbeat", "lease/reconciler", "idem/k"};
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	const char *part[4] = {"", "", "", ""};
	char *p = text, *end = text + size;
	for (int i = 0; i < 4 && p <= end; i++) {
		part[i] = p;
		p += strlen(p) + 1;
	}
	if (pv_store_begin(store, true) < 0)
		abort();
	for (int i = 0; i < 4; i++)
		pv_store_kv_put(store, keys[i], part[i]);
	if (pv_store_commit(store) < 0)
		abort();
	/* a broker starting reads the kernel state */
	pv_broker_setup s = {.ctx = pv_broker_context(main_broker), .store = store,
			     .templates = pv_broker_templates(main_broker),
			     .settings = *pv_broker_get_settings(main_broker)};
	pv_broker *b = NULL;
	if (pv_broker_new(&b, &s) == 0) {
		pv_daemon_info d;
		pv_broker_daemon_get(b, &d);
		bool held = false;
		pv_broker_lease(b, "reconciler", "fuzz-node 1 1", 30000, &held);
		pv_broker_close(b);
	}
	char id[PV_STORE_SHORT_MAX];
	srv_idem_verdict v = srv_idem_judge(part[3], "0123", pv_wall_ms(), id, sizeof id);
	if (v != SRV_IDEM_REPLAY && id[0])
		abort();
	free(text);
	return 0;
}
