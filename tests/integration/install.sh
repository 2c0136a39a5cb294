#!/bin/bash
# install.sh BUILD_DIR SOURCE_DIR - `make install` as an administrator (or
# a package build) runs it, into a DESTDIR:
# - every part lands where docs/packaging.md says: the program and its
#   modules, the Host Factory scripts under share/provisio, the
#   configuration under <sysconfdir>/provisio, the systemd unit, the static
#   library with its public headers and provisio.pc;
# - a program built only from the installed headers, library and
#   provisio.pc (pkg-config) compiles, links and runs the kernel;
# - the installed systemd unit passes `systemd-analyze verify` with no
#   word at all (it only warns on a misspelt directive: any output fails);
#   ExecStart is pointed at the DESTDIR's program, as it would be installed.
set -u
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
T=$(mktemp -d /tmp/pv_install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
DESTDIR=$T/root cmake --install "$BUILD" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "cmake --install"; }
R=$T/root$prefix
unit=$(find "$T/root" -name provisio.service)
conf=$(find "$T/root" -path '*/provisio/provisio.json')
for f in bin/provisio lib/provisio/modules/provisio-serve.so lib/provisio/modules/provisio-aws.so \
	lib/libprovisio.a lib/pkgconfig/provisio.pc include/provisio/provisio.h include/provisio/broker.h \
	share/provisio/hostfactory/requestMachines.sh share/man/man1/provisio.1 share/man/man5/provisio.json.5 \
	share/bash-completion/completions/provisio share/zsh/vendor-completions/_provisio; do
	# GNUInstallDirs may say lib64 or lib/<triplet>: look in any of them
	found=$(cd "$R" && ls -d ${f/#lib\//lib*/} ${f/#lib\//lib/*/} 2>/dev/null | head -1)
	[ -n "$found" ] && ok "installed $found" || fail "not installed: $f under $R"
done
[ -x "$R/share/provisio/hostfactory/requestMachines.sh" ] && ok "Host Factory scripts are executable" ||
	fail "Host Factory scripts not executable"
[ -n "$conf" ] && cmp -s "$conf" "$SRC/config/provisio.json" && ok "configuration installed: ${conf#$T/root}" ||
	fail "configuration not installed"
[ -n "$unit" ] && ok "systemd unit installed: ${unit#$T/root}" || fail "no systemd unit"

# ---- a program against the installed library, through pkg-config -------------------------------
pc=$(find "$T/root" -name provisio.pc)
sed -i "s|^prefix=.*|prefix=$R|; s|=$prefix/|=$R/|" "$pc" # relocated as DESTDIR moved it
cat >"$T/use.c" <<'C'
#include <stdio.h>
#include <provisio/provisio.h>
int main(void)
{
	pv_context *ctx;
	pv_strategy *s;
	if (pv_context_new(&ctx, NULL) < 0 || pv_sim_new(&s, "sim", NULL, NULL) < 0)
		return 1;
	pv_context_register(ctx, s);
	pv_strategy_unref(s);
	if (pv_context_initialize(ctx, NULL) < 0)
		return 2;
	pv_operation op = {.type = PV_OP_HEALTH_CHECK};
	pv_result r;
	pv_context_execute(ctx, &op, &r);
	printf("%s %s\n", r.provider, r.success ? "ok" : r.error_code);
	pv_result_clear(&r);
	pv_context_free(ctx);
	return 0;
}
C
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --static --cflags --libs provisio 2>"$T/pc.err")
[ -z "$flags" ] && fail "pkg-config provisio: $(cat "$T/pc.err")"
# a sanitizer build installs an instrumented library: its users link the runtimes too
san=""
grep -q '^PV_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" && san="-fsanitize=address,undefined"
if [ -z "$flags" ]; then
	:
elif ! cc -std=c11 $san -o "$T/use" "$T/use.c" $flags 2>"$T/cc.err"; then
	fail "a program on the installed library does not build ($flags): $(head -5 "$T/cc.err")"
else
	out=$("$T/use")
	[ "$out" = "sim ok" ] && ok "a program built with pkg-config provisio runs the kernel: $out" ||
		fail "the program on the installed library printed '$out'"
fi

# ---- the systemd unit ------------------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	sed "s|^ExecStart=$prefix/bin/provisio|ExecStart=$R/bin/provisio|" "$unit" >"$T/provisio.service"
	out=$(cd "$T" && systemd-analyze verify --man=no "$T/provisio.service" 2>&1)
	[ $? -eq 0 ] && [ -z "$out" ] && ok "systemd-analyze verify: clean" || fail "systemd-analyze verify: $out"
	for d in Type=notify WatchdogSec= ProtectSystem=strict ReadWritePaths= NoNewPrivileges=true PrivateTmp=true \
		ProtectHome=true 'CapabilityBoundingSet=$' RestrictAddressFamilies= User=provisio; do
		grep -q "^$d" "$unit" && ok "unit: $d" || fail "unit lacks $d"
	done
else
	fail "systemd-analyze is not installed (scripts/install-deps installs systemd)"
fi
[ $fails -eq 0 ] && echo "install: all passed" || echo "install: $fails failure(s)"
exit $((fails > 0))
