#!/bin/bash
# deb.sh SOURCE_DIR - the Debian package as CI (root in a container, no
# systemd running) can check it:
# - `scripts/build-deb` (make deb) builds provisio and libprovisio-dev;
# - lintian finds no error (warnings are fixed or overridden with a reason
#   in debian/*.lintian-overrides);
# - the package installs into a temporary root with the real dpkg
#   (--root, --force-script-chrootless: the maintainer scripts run with
#   DPKG_ROOT set, as in a chroot-less bootstrap): files in place, the
#   configuration registered as conffiles, the provisio system user in the
#   root's passwd, /var/lib/provisio owned by it (0750), the unit enabled
#   in the root (deb-systemd-helper honours DPKG_ROOT);
# - remove keeps /var/lib/provisio and /etc/provisio; purge removes both.
# Not checked here: starting the unit (no systemd as PID 1 in CI); the
# unit itself is verified by tests/integration/install.sh.
set -u
SRC=$(realpath "$1")
T=$(mktemp -d /tmp/pv_deb.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
for tool in dpkg-buildpackage dh lintian useradd; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed (scripts/install-deps)"; exit 77; }
done

start=$(date +%s)
if ! "$SRC/scripts/build-deb" "$T/out" >"$T/build.out" 2>&1; then
	cat "$T/build.out"
	fail "make deb"
	exit 1
fi
ok "make deb built $(cd "$T/out" && ls *.deb | tr '\n' ' ')in $(($(date +%s) - start)) s"
deb=$(ls "$T"/out/provisio_*.deb)
dev=$(ls "$T"/out/libprovisio-dev_*.deb)

lintian --fail-on error "$deb" "$dev" >"$T/lintian.out" 2>&1
rc=$?
sed 's/^/  lintian: /' "$T/lintian.out"
[ $rc -eq 0 ] && ok "lintian: no error" || fail "lintian reports errors"

# ---- into a temporary root ------------------------------------------------------------------------
R=$T/root
mkdir -p "$R/etc" "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/usr/sbin"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
echo "root:*:19000:0:99999:7:::" >"$R/etc/shadow"
echo "root:*::" >"$R/etc/gshadow"
cp /etc/login.defs "$R/etc/login.defs"
DPKG="dpkg --root=$R --force-not-root --force-script-chrootless --force-depends --log=$T/dpkg.log"
if $DPKG -i "$deb" "$dev" >"$T/install.out" 2>&1; then
	ok "dpkg -i into $R"
else
	cat "$T/install.out"
	fail "dpkg -i"
fi
status=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status}' provisio 2>&1)
[ "$status" = "install ok installed" ] && ok "dpkg says: $status" || fail "dpkg status: $status"
for f in usr/bin/provisio usr/share/provisio/hostfactory/requestMachines.sh etc/provisio/provisio.json \
	lib/systemd/system/provisio.service usr/include/provisio/provisio.h usr/share/man/man1/provisio.1.gz \
	usr/share/man/man5/provisio.json.5.gz usr/share/bash-completion/completions/provisio \
	usr/share/zsh/vendor-completions/_provisio; do
	[ -e "$R/$f" ] && ok "installed /$f" || fail "not installed: /$f"
done
# the package's pages name the package's paths
zcat "$R/usr/share/man/man1/provisio.1.gz" 2>/dev/null | grep -q '^\.I /etc/provisio/provisio.json' &&
	zcat "$R/usr/share/man/man1/provisio.1.gz" | grep -q '^\.I /var/lib/provisio/provisio.db' &&
	ok "provisio(1) names /etc/provisio/provisio.json and /var/lib/provisio" ||
	fail "provisio(1) of the package does not name /etc/provisio and /var/lib/provisio"
ls "$R"/usr/lib/*/provisio/modules/provisio-serve.so >/dev/null 2>&1 && ok "modules installed" || fail "no modules"
grep -qx /etc/provisio/provisio.json "$R/var/lib/dpkg/info/provisio.conffiles" &&
	ok "/etc/provisio/provisio.json is a conffile" || fail "provisio.json is not a conffile"
user=$(grep '^provisio:' "$R/etc/passwd")
case "$user" in
*:/var/lib/provisio:/usr/sbin/nologin) ok "system user: $user" ;;
*) fail "no provisio system user in the root's passwd: '$user'" ;;
esac
uid=$(echo "$user" | cut -d: -f3)
[ -n "$uid" ] && [ "$uid" -lt 1000 ] && ok "uid $uid is a system uid" || fail "uid '$uid' is not a system uid"
owner=$(stat -c '%u %a' "$R/var/lib/provisio" 2>&1)
[ "$owner" = "$uid 750" ] && ok "/var/lib/provisio owned by provisio, 0750" || fail "/var/lib/provisio: $owner"
[ -L "$R/etc/systemd/system/multi-user.target.wants/provisio.service" ] &&
	ok "unit enabled in the root" || fail "unit not enabled in the root"
[ ! -e /etc/systemd/system/multi-user.target.wants/provisio.service ] ||
	fail "the host's systemd was touched"

# ---- remove keeps the data, purge removes it ---------------------------------------------------------
echo '{"kept": true}' >"$R/var/lib/provisio/provisio.db"
$DPKG -r libprovisio-dev provisio >"$T/remove.out" 2>&1 || { cat "$T/remove.out"; fail "dpkg -r"; }
[ ! -e "$R/usr/bin/provisio" ] && ok "removed: the program is gone" || fail "the program stayed after remove"
[ -f "$R/var/lib/provisio/provisio.db" ] && ok "removed: the state is kept" || fail "remove deleted the state"
[ -f "$R/etc/provisio/provisio.json" ] && ok "removed: the configuration is kept" ||
	fail "remove deleted the configuration"
$DPKG -P provisio >"$T/purge.out" 2>&1 || { cat "$T/purge.out"; fail "dpkg -P"; }
[ ! -e "$R/var/lib/provisio" ] && ok "purged: the state is gone" || fail "purge kept /var/lib/provisio"
[ ! -e "$R/etc/provisio/provisio.json" ] && ok "purged: the configuration is gone" || fail "purge kept /etc/provisio"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/provisio.service" ] && ok "purged: the unit is disabled" ||
	fail "purge left the unit enabled"
status=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status}' provisio 2>/dev/null)
[ -z "$status" ] || [ "$status" = "unknown ok not-installed" ] && ok "dpkg forgot provisio" ||
	fail "dpkg status after purge: $status"
[ $fails -eq 0 ] && echo "deb: all passed" || echo "deb: $fails failure(s)"
exit $((fails > 0))
