/*
 * postgres.c - provisio-postgres.so: the PostgreSQL store (store/postgres.c),
 * so libpq and the LDAP, Kerberos and TLS libraries behind it load only
 * where the store is a postgresql:// URL.
 */
#include "provisio/store.h"
#include "util/module.h"

PV_MODULE("postgres")

static int module_register(void) { return pv_store_register_postgres(pv_store_open_postgres); }
