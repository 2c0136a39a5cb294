/*
 * paths.c - the install-time conventions of paths.h. The folders come from
 * CMake's GNUInstallDirs (CMakeLists.txt) so the program knows its own
 * installation without being told at run time.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/paths.h"

#ifndef PV_INSTALL_BINDIR
#define PV_INSTALL_BINDIR "/usr/local/bin"
#endif
#ifndef PV_INSTALL_STATEDIR
#define PV_INSTALL_STATEDIR "/var/lib/provisio"
#endif
#ifndef PV_INSTALL_CONFDIR
#define PV_INSTALL_CONFDIR "/etc/provisio"
#endif

bool pv_paths_installed(const char *program)
{
	char exe[PATH_MAX], bindir[PATH_MAX];
	if (program) {
		if (!realpath(program, exe))
			return false;
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n <= 0)
			return false;
		exe[n] = '\0';
	}
	char *slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	/* the configured folder may itself be reached through a symlink (/bin -> /usr/bin) */
	const char *want = realpath(PV_INSTALL_BINDIR, bindir) ? bindir : PV_INSTALL_BINDIR;
	return strcmp(exe, want) == 0;
}

const char *pv_paths_state_dir(void)
{
	return pv_paths_installed(NULL) ? PV_INSTALL_STATEDIR : "./var";
}

const char *pv_paths_config_dir(void) { return PV_INSTALL_CONFDIR; }

const char *pv_paths_installed_state_dir(void) { return PV_INSTALL_STATEDIR; }
