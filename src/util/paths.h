/*
 * paths.h - where provisio looks for its configuration and keeps its state
 * by default, by convention: an installed program (one running from the
 * folder it was built to be installed in) uses /etc/provisio and
 * /var/lib/provisio (the configured sysconfdir and localstatedir); a
 * program run from the build tree uses ./config and ./var.
 */
#ifndef PV_UTIL_PATHS_H
#define PV_UTIL_PATHS_H

#include <stdbool.h>

/* Whether `program` (a path; NULL: this process, /proc/self/exe) sits in
 * the configured install bindir (PV_INSTALL_BINDIR, known at build time). */
bool pv_paths_installed(const char *program);

/* The default state folder: PV_INSTALL_STATEDIR ("/var/lib/provisio")
 * when this program is installed, else "./var". Static string. */
const char *pv_paths_state_dir(void);

/* The state folder of an installation, installed or not: PV_INSTALL_STATEDIR
 * (what the manual page names). Static string. */
const char *pv_paths_installed_state_dir(void);

/* The configuration folder of an installation: PV_INSTALL_CONFDIR
 * ("/etc/provisio"). Static string. */
const char *pv_paths_config_dir(void);

#endif
