#!/bin/bash
# modules.sh PROVISIO BUILD_DIR CMAKE - the program loads its heavy parts
# only when a configuration or command asks for them (src/util/module.h):
# - the program links only libc, libm, jansson and SQLite (readelf -d; SQLite
#   is linked in by default), and none of libvirt, libpq, libcurl, libxml2,
#   libevent, OpenSSL comes in behind them (ldd);
# - a Host Factory call on a sim configuration loads no module (LD_DEBUG);
# - a configuration naming libvirt loads provisio-libvirt.so and creates
#   machines on libvirt's test:///default driver; a postgresql:// store
#   loads provisio-postgres.so; `serve` loads provisio-serve.so;
# - a missing module is an error naming the module, every path tried and
#   what builds it; nothing else is loaded in its place;
# - installed with `cmake --install` into a fresh prefix, the program finds
#   its modules under <prefix>/<libdir>/provisio/modules.
set -u
BIN=$(realpath "$1")
BUILD=$(realpath "$2")
CMAKE=${3:-cmake}
T=$(mktemp -d /tmp/pv_modules.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HF_PROVIDER_CONFDIR=$T/conf HF_PROVIDER_WORKDIR=$T/work HF_PROVIDER_LOGDIR=$T/log
unset PROVISIO_CONFIG PROVISIO_TEMPLATES PROVISIO_ENV PROVISIO_MODULE_PATH
mkdir -p "$HF_PROVIDER_CONFDIR" "$HF_PROVIDER_WORKDIR" "$HF_PROVIDER_LOGDIR" "$T/empty"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# ---- what the program links ----------------------------------------------------------------------------
needed=$(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
# (SQLite is linked in unless PV_STATIC_SQLITE is off; a sanitizer build adds its runtimes)
extra=$(echo "$needed" | tr ' ' '\n' |
	grep -v -E '^(libc\.so\.6|libm\.so\.6|libjansson\.so\.4|libsqlite3\.so\.0|libasan\.so\.[0-9]+|libubsan\.so\.[0-9]+|)$')
[ -z "$extra" ] && ok "the program needs only: $needed" ||
	fail "the program links $(echo $extra) (move it into a module: src/util/module.h)"
heavy='libvirt|libpq|libcurl|libxml2|libevent|libssl|libcrypto|libglib|libgnutls'
behind=$(ldd "$BIN" | grep -E "$heavy")
[ -z "$behind" ] && ok "nothing heavy behind the program (ldd)" || fail "ldd: $behind"

# Which provisio modules and heavy libraries a run of the program loaded.
loaded() { grep -oE "file=[^ ]*(provisio-[a-z]+\.so|($heavy)[^ /]*\.so[.0-9]*)" "$1" | sed 's|.*/||; s|file=||' | sort -u | tr '\n' ' '; }

# ---- a Host Factory call on sim loads nothing ----------------------------------------------------------
cat > "$HF_PROVIDER_CONFDIR/provisio.json" <<'JSON'
{"providers": [{"name": "sim", "type": "sim"}], "default_strategy": "sim"}
JSON
cat > "$HF_PROVIDER_CONFDIR/provisio_templates.json" <<'JSON'
{"templates": [{"templateId": "t", "maxNumber": 5, "provider": "sim"}]}
JSON
echo '{}' > "$T/in.json"
LD_DEBUG=files "$BIN" hostfactory getAvailableTemplates -f "$T/in.json" > "$T/out" 2> "$T/debug"
rc=$?
if [ $rc = 0 ] && grep -q '"templateId": "t"' "$T/out" && [ -z "$(loaded "$T/debug")" ]; then
	ok "getAvailableTemplates on sim: answered, no module loaded"
else fail "getAvailableTemplates on sim: rc=$rc, loaded: $(loaded "$T/debug")"; fi

# ---- a libvirt provider loads the libvirt module and works --------------------------------------------
cat > "$T/libvirt.json" <<'JSON'
{"providers": [{"name": "lab", "type": "libvirt", "config": {"uri": "test:///default"}}],
 "default_strategy": "lab"}
JSON
exec_libvirt() { # exec_libvirt BIN: two machines on test:///default, output in $T/out
	LD_DEBUG=files "$1" --config "$T/libvirt.json" providers exec create_instances --provider lab \
		--params '{"count": 2, "request_id": "req-mod"}' > "$T/out" 2> "$T/debug"
}
exec_libvirt "$BIN"
rc=$?
if [ $rc = 0 ] && grep -q '"pv-lab-req-mod-1"' "$T/out" && loaded "$T/debug" | grep -q 'provisio-libvirt.so' &&
	grep -q "file=$BUILD/modules/provisio-libvirt.so" "$T/debug"; then
	ok "a libvirt provider: $BUILD/modules/provisio-libvirt.so loaded, 2 domains created"
else fail "a libvirt provider: rc=$rc, loaded: $(loaded "$T/debug"), $(head -c 400 "$T/out")"; fi
if loaded "$T/debug" | grep -qE 'provisio-(postgres|serve|aws|rest)\.so|libpq|libevent'; then
	fail "a libvirt provider loaded more: $(loaded "$T/debug")"
else ok "a libvirt provider loads no other module"; fi

# ---- a PostgreSQL store loads the postgres module -------------------------------------------------------
# No server on port 1: the module loads, then the connection is refused.
sed 's|"default_strategy"|"store": {"url": "postgresql://pv@127.0.0.1:1/pv"}, "default_strategy"|' \
	"$HF_PROVIDER_CONFDIR/provisio.json" > "$T/pg.json"
LD_DEBUG=files "$BIN" --config "$T/pg.json" hostfactory getAvailableTemplates -f "$T/in.json" \
	> "$T/out" 2> "$T/debug"
rc=$?
if [ $rc != 0 ] && loaded "$T/debug" | grep -q 'provisio-postgres.so' && grep -q 'libpq' <(loaded "$T/debug") &&
	grep -q "127.0.0.1" "$T/out" "$T/debug"; then
	ok "a postgresql:// store: the postgres module and libpq loaded, the connection refused"
else fail "a postgresql:// store: rc=$rc, loaded: $(loaded "$T/debug"); $(grep -v '^ *[0-9]*:' "$T/debug" | head -3)"; fi

# ---- serve and top are in the serve module -------------------------------------------------------------
LD_DEBUG=files "$BIN" serve --help > "$T/out" 2> "$T/debug"
rc=$?
if [ $rc = 0 ] && grep -q "usage: provisio serve" "$T/out" && loaded "$T/debug" | grep -q 'provisio-serve.so'; then
	ok "serve --help: from the serve module"
else fail "serve --help: rc=$rc, loaded: $(loaded "$T/debug")"; fi

# ---- a missing module is a clear error -----------------------------------------------------------------
missing() { # missing MODULE DESCRIPTION COMMAND...: run with no modules to find
	local module=$1 what=$2
	shift 2
	# (a Host Factory call answers on stdout, the others on stderr)
	PROVISIO_MODULE_PATH=$T/empty "$@" > "$T/err" 2>&1
	local rc=$?
	if [ $rc != 0 ] && grep -q "module '$module'" "$T/err" && grep -q "$T/empty/provisio-$module.so" "$T/err" &&
		grep -q "PROVISIO_MODULE_PATH" "$T/err" && grep -q "CMake target provisio-$module" "$T/err"; then
		ok "$what without its module: $(grep -m 1 "module '$module'" "$T/err" | cut -c1-150)..."
	else fail "$what without its module: rc=$rc, $(cat "$T/err")"; fi
}
missing libvirt "a libvirt provider" "$BIN" --config "$T/libvirt.json" providers list
missing postgres "a postgresql:// store" "$BIN" --config "$T/pg.json" hostfactory getAvailableTemplates -f "$T/in.json"
missing serve "provisio serve" "$BIN" serve --help
# the defaults: the build tree's modules folder is searched first, and said
PROVISIO_MODULE_PATH= "$BIN" --version > /dev/null && cp "$BIN" "$T/provisio" &&
	"$T/provisio" --config "$T/libvirt.json" providers list > "$T/out" 2> "$T/err"
if grep -q "$T/modules/provisio-libvirt.so" "$T/err" && grep -q "provisio/modules/provisio-libvirt.so" "$T/err"; then
	ok "a program copied away from its modules says where it looked: $(grep -o 'tried [^;]*' "$T/err")"
else fail "a copied program: $(cat "$T/err" "$T/out" | head -c 600)"; fi

# ---- the installed layout ------------------------------------------------------------------------------
if "$CMAKE" --install "$BUILD" --prefix "$T/prefix" > "$T/install.log" 2>&1; then
	exec_libvirt "$T/prefix/bin/provisio"
	rc=$?
	if [ $rc = 0 ] && grep -q '"pv-lab-req-mod-1"' "$T/out" &&
		grep -qE "file=$T/prefix/[^ ]*/provisio/modules/provisio-libvirt.so" "$T/debug"; then
		ok "installed: $(grep -oE "$T/prefix/[^ ]*/provisio/modules/provisio-libvirt.so" "$T/debug" | head -n 1 | sed "s|$T/prefix|<prefix>|")"
	else fail "installed: rc=$rc, loaded: $(loaded "$T/debug")"; fi
else fail "cmake --install: $(tail -n 5 "$T/install.log")"; fi

echo "$fails failure(s)"
[ $fails = 0 ]
