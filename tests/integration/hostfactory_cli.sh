#!/bin/bash
# hostfactory_cli.sh PROVISIO SOURCE_DIR - the Host Factory commands as Host
# Factory runs them: one process per call, through scripts/hostfactory/*.sh,
# with HF_PROVIDER_{CONFDIR,WORKDIR,LOGDIR} set. Checks the contract, bad
# input (message, non-zero exit, nothing written), 20 processes at once on
# one SQLite file (and maxNumber under that race), a process killed with
# SIGKILL during requestMachines (consistent store, its machines released by
# the next call), a crash at each step of a local machine's creation
# (recorded, recovered, no process left), spill-over from a full provider,
# an unknown id among known ones, and the return
# cycle; then the same scripts next to a running `provisio serve` on the same
# store (loopback, a free port): the commands only queue and read, the daemon
# provisions and terminates, and a daemon killed with work queued loses
# nothing. Every machine process it starts is stopped before it exits.
#
# hostfactory_cli.sh PROVISIO SOURCE_DIR postgres: all of it again on the
# PostgreSQL store named by PV_TEST_POSTGRES_URL (a schema of its own,
# dropped at the end); exits 77 (skipped) when that is not set.
set -u
BIN=$(realpath "$1")
SRC=$(realpath "${2:-$(dirname "$0")/../..}")
ENGINE=${3:-sqlite}
if [ "$ENGINE" = postgres ] && [ -z "${PV_TEST_POSTGRES_URL:-}" ]; then
	echo "skipped: PV_TEST_POSTGRES_URL is not set (make test sets it)"
	exit 77
fi
T=$(mktemp -d /tmp/pv_hf_cli.XXXXXX)
export HF_PROVIDER_CONFDIR=$T/conf HF_PROVIDER_WORKDIR=$T/work HF_PROVIDER_LOGDIR=$T/log
export PROVISIO_BIN=$BIN
unset PROVISIO_CONFIG PROVISIO_TEMPLATES PROVISIO_ENV
mkdir -p "$HF_PROVIDER_CONFDIR" "$HF_PROVIDER_WORKDIR" "$HF_PROVIDER_LOGDIR"
fails=0
HF=$SRC/scripts/hostfactory

# the pid of a machine record, only while that process is still the one the
# record names (same start time): a reused pid is never signalled
live_pid() {
	local pid st
	pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$1")
	st=$(sed -n 's/.*"start_time": *\([0-9]*\).*/\1/p' "$1")
	[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
	[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)" = "$st" ] && echo "$pid"
}

# true when no record of any local provider names a live process
none_alive() {
	local rec
	for rec in "$HF_PROVIDER_WORKDIR"/*/machines/*.json; do
		[ -f "$rec" ] && live_pid "$rec" >/dev/null && return 1
	done
	return 0
}
# live_in PROVIDER: how many of its records name a live process
live_in() {
	local n=0 rec
	for rec in "$HF_PROVIDER_WORKDIR/$1"/machines/*.json; do
		[ -f "$rec" ] && live_pid "$rec" >/dev/null && n=$((n + 1))
	done
	echo $n
}

SERVE_PID=
NODE_PIDS=()
cleanup() {
	[ -n "$SERVE_PID" ] && { kill -KILL "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; }
	for p in "${NODE_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	# stop every machine of every local provider, then wait until gone (bounded)
	for rec in "$HF_PROVIDER_WORKDIR"/*/machines/*.json; do
		[ -f "$rec" ] || continue
		pid=$(live_pid "$rec") && kill -TERM "$pid" 2>/dev/null
	done
	wait_until none_alive
	[ "$ENGINE" = postgres ] && psql -q "$PV_TEST_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# The store's block of the configuration, and one of its key/value rows.
STORE_BLOCK=
if [ "$ENGINE" = postgres ]; then
	PG_SCHEMA=pv_hf_cli_$$
	psql -q "$PV_TEST_POSTGRES_URL" -c "CREATE SCHEMA $PG_SCHEMA" || exit 1
	case $PV_TEST_POSTGRES_URL in *\?*) sep='&' ;; *) sep='?' ;; esac
	STORE_BLOCK="\"store\": {\"url\": \"$PV_TEST_POSTGRES_URL${sep}options=-csearch_path%3D$PG_SCHEMA\"},"
fi
kv_value() {
	if [ "$ENGINE" = postgres ]; then
		psql -qAt "$PV_TEST_POSTGRES_URL" -c "SELECT value FROM $PG_SCHEMA.kv WHERE key = '$1'"
	else
		sqlite3 "$HF_PROVIDER_WORKDIR/provisio.db" "SELECT value FROM kv WHERE key = '$1'"
	fi
}

# wait_until CMD...: runs CMD until it succeeds (every 0.1 s); fails only past
# $PATIENCE seconds, a safety bound for a broken program, never the expected
# time: the suite must pass on a loaded 2-core machine
PATIENCE=${PV_TEST_PATIENCE_S:-120}
wait_until() {
	local end=$((SECONDS + PATIENCE))
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

CRASHY_SLEEP=$((300000 + $$)) # a command line no other run has: its processes are countable
cat > "$HF_PROVIDER_CONFDIR/provisio.json" <<JSON
{
  "providers": [
    {"name": "local", "type": "local",
     "config": {"workdir": "\${HF_PROVIDER_WORKDIR}/local", "capacity": 60,
                "command": "sleep 300", "grace_period_ms": 300}},
    {"name": "small", "type": "local",
     "config": {"workdir": "\${HF_PROVIDER_WORKDIR}/small", "capacity": 2,
                "command": "sleep 300", "grace_period_ms": 300}},
    {"name": "slow", "type": "local",
     "config": {"workdir": "\${HF_PROVIDER_WORKDIR}/slow", "capacity": 10,
                "command": "sleep 300", "grace_period_ms": 300, "answer_delay_ms": 600000}},
    {"name": "sim", "type": "sim", "config": {"capacity": 100}},
    {"name": "broken", "type": "sim", "config": {"failure_rate": 1.0}},
    {"name": "crashy", "type": "local",
     "config": {"workdir": "\${HF_PROVIDER_WORKDIR}/crashy", "capacity": 4,
                "command": "exec sleep $CRASHY_SLEEP", "grace_period_ms": 300}},
    {"name": "backup", "type": "local",
     "config": {"workdir": "\${HF_PROVIDER_WORKDIR}/backup", "capacity": 10,
                "command": "sleep 300", "grace_period_ms": 300}}
  ],
  "strategies": [
    {"name": "small-then-sim", "kind": "fallback", "primary": "small", "fallbacks": ["sim"]},
    {"name": "guarded", "kind": "fallback", "primary": "broken", "fallbacks": ["backup"],
     "config": {"mode": "circuit_breaker", "circuit_breaker_threshold": 2,
                "circuit_breaker_timeout_seconds": 600}}
  ],
  "default_strategy": "local",
  $STORE_BLOCK
  "broker": {"status_max_age_seconds": 0.2}
}
JSON
cat > "$HF_PROVIDER_CONFDIR/mycluster_templates.json" <<'JSON'
{"templates": [
  {"templateId": "OnDemand-Minimal", "maxNumber": 10, "provider": "local",
   "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "1"],
                  "ncores": ["Numeric", "1"], "nram": ["Numeric", "1024"]}},
  {"templateId": "conc", "maxNumber": 40, "provider": "local"},
  {"templateId": "tight", "maxNumber": 5, "provider": "local"},
  {"templateId": "spill", "maxNumber": 10, "provider": "small-then-sim"},
  {"templateId": "slow", "maxNumber": 3, "provider": "slow"},
  {"templateId": "guarded", "maxNumber": 10, "provider": "guarded"},
  {"templateId": "crashy", "maxNumber": 4, "provider": "crashy"}
]}
JSON

# hf NAME JSON: runs the script with -f, like Host Factory; stdout in $T/out, exit in $rc
hf() {
	local in
	in=$(mktemp "$T/hf_in_XXXX")
	printf '%s' "$2" > "$in"
	"$HF/$1.sh" -f "$in" > "$T/out" 2> "$T/err"
	rc=$?
}
field() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" "$T/out" | head -n 1; }
is_json() {
	if command -v python3 >/dev/null; then python3 -m json.tool "$1" >/dev/null 2>&1; else grep -q '^{' "$1"; fi
}
nrequests() { "$BIN" requests list --limit 0 2>/dev/null | tail -n +2 | wc -l; }
status_of() { # status_of ID: getRequestStatus, prints the request's status
	hf getRequestStatus "{\"requests\": [{\"requestId\": \"$1\"}]}"
	field status
}
status_is() { [ "$(status_of "$1")" = "$2" ]; }
wait_status() { # wait_status ID WANT: polls until it is (or the patience ends)
	wait_until status_is "$1" "$2" && return 0
	echo "  $1 is '$(status_of "$1")', wanted '$2'"
	return 1
}

# ---- the contract ----------------------------------------------------------------
hf getAvailableTemplates '{}'
if [ $rc = 0 ] && is_json "$T/out" && grep -q '"availableNumber": 10' "$T/out" &&
   grep -q '"templateId": "OnDemand-Minimal"' "$T/out" && ! grep -q '"provider"' "$T/out" &&
   [ "$(field message)" = "Get available templates success." ]; then
	ok "getAvailableTemplates"
else fail "getAvailableTemplates: rc=$rc $(cat "$T/out")"; fi

hf requestMachines '{"template": {"templateId": "OnDemand-Minimal", "machineCount": 2}}'
req=$(field requestId)
if [ $rc = 0 ] && is_json "$T/out" && [[ $req == req-* ]]; then ok "requestMachines $req"
else fail "requestMachines: rc=$rc $(cat "$T/out")"; fi

if wait_status "$req" complete && is_json "$T/out" && grep -q '"launchtime": [0-9][0-9]*,' "$T/out" &&
   [ "$(grep -c '"result": "succeed"' "$T/out")" = 2 ] && grep -q '"privateIpAddress": "127.0.0.1"' "$T/out"; then
	ok "getRequestStatus complete with 2 machines"
else fail "getRequestStatus: $(cat "$T/out")"; fi
ids=$(sed -n 's/.*"machineId": "\([^"]*\)".*/{"machineId": "\1"}/p' "$T/out" | paste -sd, -)
names=$(sed -n 's/.*"name": "\([^"]*\)".*/\1/p' "$T/out")

hf getReturnRequests "{\"machines\": [$ids]}"
if [ $rc = 0 ] && [ "$(field status)" = complete ] && grep -q '"requests": \[\]' "$T/out"; then
	ok "getReturnRequests: nothing reclaimed"
else fail "getReturnRequests: $(cat "$T/out")"; fi

# a machine stopped outside Host Factory is reported with a grace period
victim=$(echo "$names" | head -n 1)
rec=$(grep -l "\"name\": *\"$victim\"" "$HF_PROVIDER_WORKDIR"/local/machines/*.json)
kill -TERM "$(live_pid "$rec")"
reports_victim() { hf getReturnRequests "{\"machines\": [$ids]}"; grep -q "\"machine\": \"$victim\"" "$T/out"; }
wait_until reports_victim
if grep -q "\"machine\": \"$victim\"" "$T/out" && grep -q '"gracePeriod": 0' "$T/out"; then
	ok "getReturnRequests reports a machine gone outside Host Factory"
else fail "getReturnRequests after outside kill: $(cat "$T/out")"; fi

hf requestReturnMachines "{\"machines\": [$ids]}"
ret=$(field requestId)
if [ $rc = 0 ] && [[ $ret == ret-* ]] && wait_status "$ret" complete &&
   [ "$(grep -c '"status": "terminated"' "$T/out")" = 2 ]; then
	ok "requestReturnMachines $ret: terminated"
else fail "return cycle: $(cat "$T/out")"; fi

# input on stdin, as some wrappers pass it
if echo '{}' | "$BIN" hostfactory getAvailableTemplates > "$T/out" 2>/dev/null && grep -q '"templates"' "$T/out"; then
	ok "input on stdin"
else fail "input on stdin: $(cat "$T/out")"; fi

# ---- bad input -----------------------------------------------------------------------
before=$(nrequests)
check_bad() { # check_bad SCRIPT INPUT WORD
	hf "$1" "$2"
	if [ $rc != 0 ] && is_json "$T/out" && grep -q '"message"' "$T/out" && grep -qi "$3" "$T/out"; then
		ok "bad input to $1 -> $3"
	else fail "bad input to $1 ($2): rc=$rc $(cat "$T/out")"; fi
}
check_bad requestMachines 'not json' "not valid JSON"
check_bad requestMachines '{"template": {"machineCount": 1}}' templateId
check_bad requestMachines '{"template": {"templateId": "nope", "machineCount": 1}}' "unknown template"
check_bad requestMachines '{"template": {"templateId": "conc", "machineCount": 0}}' machineCount
check_bad requestMachines '{"template": {"templateId": "conc", "machineCount": 41}}' "available number"
# an unknown id among known ones: answered for each, the unknown one done with the reason
hf getRequestStatus "{\"requests\": [{\"requestId\": \"req-nope\"}, {\"requestId\": \"$req\"}]}"
if [ $rc = 0 ] && is_json "$T/out" && grep -q "\"message\": \"unknown request id 'req-nope'\"" "$T/out" &&
   grep -q '"status": "complete_with_error"' "$T/out" && grep -q "\"requestId\": \"$req\"" "$T/out"; then
	ok "getRequestStatus answers known ids and reports an unknown one"
else fail "getRequestStatus with an unknown id: rc=$rc $(cat "$T/out")"; fi
check_bad requestReturnMachines '{"machines": [{"machineId": "i-nope"}]}' "unknown machine"
"$HF/getRequestStatus.sh" -f "$T/does-not-exist" > "$T/out" 2>/dev/null; rc=$?
if [ $rc != 0 ] && grep -q "cannot read input file" "$T/out"; then ok "missing input file"
else fail "missing input file: rc=$rc $(cat "$T/out")"; fi
[ "$(nrequests)" = "$before" ] && ok "bad input wrote nothing" || fail "bad input changed the store"

# ---- 20 processes at once ----------------------------------------------------------------
pids=()
for i in $(seq 20); do
	"$HF/requestMachines.sh" -d '{"template": {"templateId": "conc", "machineCount": 2}}' \
		> "$T/conc.$i" 2>&1 & pids+=($!)
done
okc=0
for p in "${pids[@]}"; do wait "$p" && okc=$((okc + 1)); done
uniq=$(sed -n 's/.*"requestId": "\(req-[^"]*\)".*/\1/p' "$T"/conc.* | sort -u | wc -l)
alive=$("$BIN" machines list 2>/dev/null | awk '$6 == "conc" && $3 == "running"' | wc -l)
if [ $okc = 20 ] && [ "$uniq" = 20 ] && [ "$alive" = 40 ]; then ok "20 concurrent requestMachines: 20 requests, 40 machines"
else fail "concurrency: $okc ok, $uniq ids, $alive machines"; cat "$T"/conc.* | grep message; fi

pids=()
for i in $(seq 20); do
	"$HF/requestMachines.sh" -d '{"template": {"templateId": "tight", "machineCount": 1}}' \
		> "$T/tight.$i" 2>&1 & pids+=($!)
done
won=0
for p in "${pids[@]}"; do wait "$p" && won=$((won + 1)); done
over=$(grep -l "available number" "$T"/tight.* | wc -l)
if [ $won = 5 ] && [ "$over" = 15 ]; then ok "maxNumber holds under 20 concurrent requests (5 won, 15 refused)"
else fail "maxNumber race: $won won, $over refused"; fi

# return everything of both templates in one call, then follow it
all=$("$BIN" machines list 2>/dev/null | awk '($6 == "conc" || $6 == "tight") && $3 == "running" {printf "%s{\"machineId\": \"%s\"}", sep, $1; sep=","}')
hf requestReturnMachines "{\"machines\": [$all]}"
ret=$(field requestId)
if [ $rc = 0 ] && wait_status "$ret" complete; then ok "45 machines returned and terminated"
else fail "bulk return: $(head -c 600 "$T/out")"; fi

# ---- SIGKILL during requestMachines ----------------------------------------------------------
# The slow provider answers 10 minutes after it made the machines: the call
# is surely killed with its 3 machines made and nothing written or printed.
"$HF/requestMachines.sh" -d '{"template": {"templateId": "slow", "machineCount": 3}}' > "$T/killed" 2>&1 &
victim=$!
three_live() { [ "$(live_in slow)" = 3 ]; }
wait_until three_live || fail "the slow call never made its 3 machines"
kill -KILL $victim; wait $victim 2>/dev/null
creating=$("$BIN" requests list --status creating 2>/dev/null | tail -n +2 | wc -l)
[ "$creating" = 1 ] && ok "killed call left one 'creating' request" || fail "after SIGKILL: $creating creating"
[ -s "$T/killed" ] && fail "the killed call printed: $(cat "$T/killed")"
hf requestMachines '{"template": {"templateId": "tight", "machineCount": 1}}'
again=$(field requestId)
failed=$("$BIN" requests list --status failed 2>/dev/null | grep -c slow)
if [ $rc = 0 ] && [ -n "$again" ] && [ "$failed" = 1 ]; then ok "next call recovered the killed request and provisioned"
else fail "recovery: rc=$rc failed=$failed $(cat "$T/out")"; fi
none_live() { [ "$(live_in slow)" = 0 ]; }
wait_until none_live
hf getReturnRequests '{}' # Host Factory's periodic call records the released machines' end
inuse=$("$BIN" machines list 2>/dev/null | awk '$6 == "slow" && $3 != "terminated"' | wc -l)
if [ "$(live_in slow)" = 0 ] && [ "$inuse" = 0 ]; then ok "the killed call's machines released: no live process, none in use"
else fail "after recovery: $(live_in slow) live processes, $inuse machines in use"; fi

# ---- a crash at each step of a local machine's creation ----------------------------------
# PROVISIO_TEST_LOCAL_CRASH_AT kills requestMachines right after that step.
# Whatever the step, the machine has a record: recovery (a status of the
# request left "creating") finds it and releases it, and no process runs
# that a record does not name.
crashy_gone() { [ "$(pgrep -c -f "^sleep $CRASHY_SLEEP\$")" = 0 ] && [ "$(live_in crashy)" = 0 ]; }
for step in intent spawned recorded started; do
	{ # (bash's "Killed" notice goes to /dev/null, the call's output to $T/crash)
		PROVISIO_TEST_LOCAL_CRASH_AT=$step "$HF/requestMachines.sh" \
			-d '{"template": {"templateId": "crashy", "machineCount": 1}}' > "$T/crash" 2>&1
		crc=$?
	} 2>/dev/null
	cid=$("$BIN" requests list --status creating 2>/dev/null | awk '$4 == "crashy" {print $1}')
	if [ $crc != 137 ] || [ -s "$T/crash" ] || [ -z "$cid" ]; then
		fail "crash at $step: exit $crc, creating '$cid', printed: $(cat "$T/crash")"
		continue
	fi
	hf getRequestStatus "{\"requests\": [{\"requestId\": \"$cid\"}]}"
	if ! grep -q 'interrupted before Host Factory got the request id; 1 machine(s) released' "$T/out"; then
		fail "crash at $step: recovery did not find the machine: $(cat "$T/out")"
		continue
	fi
	# no process runs the crashy command but a recorded machine, and the released one ends
	if wait_until crashy_gone; then
		ok "crash at $step: recorded, recovered, released; no process left"
	else fail "crash at $step: $(pgrep -c -f "^sleep $CRASHY_SLEEP\$") processes, $(live_in crashy) live records"; fi
done

# ---- spill-over through a fallback ---------------------------------------------------------------
hf requestMachines '{"template": {"templateId": "spill", "machineCount": 4}}'
sp=$(field requestId)
"$BIN" requests show "$sp" > "$T/spill" 2>/dev/null
on_small=$("$BIN" machines list 2>/dev/null | awk -v r=1 '$5 == "small" && $6 == "spill"' | wc -l)
on_sim=$("$BIN" machines list 2>/dev/null | awk '$5 == "sim" && $6 == "spill"' | wc -l)
if [ $rc = 0 ] && [ "$on_small" = 2 ] && [ "$on_sim" = 2 ] && grep -q '"state": "complete"' "$T/spill"; then
	ok "spill-over: 2 on the full local provider, 2 on sim"
else fail "spill-over: rc=$rc small=$on_small sim=$on_sim"; fi

# ---- a circuit breaker trips across Host Factory calls -------------------------------------------------
for i in 1 2 3; do
	hf requestMachines '{"template": {"templateId": "guarded", "machineCount": 1}}'
	[ $rc = 0 ] || fail "guarded request $i: $(cat "$T/out")"
done
if command -v sqlite3 >/dev/null; then
	st=$(kv_value state/guarded)
	if echo "$st" | grep -q '"broken":{[^}]*"state":"open"' && echo "$st" | grep -q '"broken":{[^}]*"rejected_requests":1'; then
		ok "breaker opened by two processes rejected the third process's call"
	else fail "breaker state across processes: $st"; fi
fi

# ---- the commands for people ------------------------------------------------------------------------
if "$BIN" machines request OnDemand-Minimal 2 --wait > "$T/wait" 2>/dev/null &&
   grep -q '"status": "complete"' "$T/wait" && [ "$(grep -c '"result": "succeed"' "$T/wait")" = 2 ]; then
	ok "machines request --wait"
else fail "machines request --wait: $(cat "$T/wait")"; fi
mids=$(sed -n 's/.*"machine_id": "\([^"]*\)".*/\1/p' "$T/wait")
# shellcheck disable=SC2086
if "$BIN" machines return $mids --wait > "$T/wait" 2>/dev/null &&
   [ "$(grep -c '"state": "terminated"' "$T/wait")" = 2 ]; then ok "machines return --wait"
else fail "machines return --wait: $(cat "$T/wait")"; fi
"$BIN" templates list > "$T/tl" 2>&1 && grep -q "^tight .* 5 " "$T/tl" && ok "templates list" || fail "templates list: $(cat "$T/tl")"
"$BIN" templates show spill > "$T/ts" 2>&1 && grep -q '"provider": "small-then-sim"' "$T/ts" && ok "templates show" || fail "templates show"
"$BIN" requests status "$sp" > "$T/rs" 2>&1 && grep -q "complete" "$T/rs" && ok "requests status" || fail "requests status: $(cat "$T/rs")"
for c in hostfactory templates machines requests; do
	"$BIN" $c --help | grep -q "example" || fail "$c --help has no examples"
done

# ---- next to provisio serve ------------------------------------------------------------------------------
start_serve() {
	rm -f "$T/url"
	"$BIN" serve --listen 127.0.0.1:0 --url-file "$T/url" > "$T/serve.out" 2> "$T/serve.log" &
	SERVE_PID=$!
	wait_until test -s "$T/url"
}
deferred_calls() { grep -c "deferred to provisio serve (pid $SERVE_PID " "$HF_PROVIDER_LOGDIR/provisio.log"; }
if start_serve; then ok "provisio serve on $(head -1 "$T/url")"; else fail "serve did not start: $(cat "$T/serve.log")"; fi
d0=$(deferred_calls)
hf requestMachines '{"template": {"templateId": "OnDemand-Minimal", "machineCount": 2}}'
dreq=$(field requestId)
keys=$(grep -c '^  "' "$T/out")
if [ $rc = 0 ] && [[ $dreq == req-* ]] && [ "$keys" = 2 ] &&
   [ "$(field message)" = "Request VM success from provisio." ]; then ok "requestMachines with serve: $dreq, same answer"
else fail "requestMachines with serve: rc=$rc $(cat "$T/out")"; fi
if wait_status "$dreq" complete && [ "$(grep -c '"result": "succeed"' "$T/out")" = 2 ]; then
	ok "the daemon provisioned the queued request"
else fail "queued request: $(cat "$T/out")"; fi
grep -q "queued request(s) done" "$T/serve.log" && ok "serve logged the queued work" || fail "serve log: $(tail -5 "$T/serve.log")"
dids=$(sed -n 's/.*"machineId": "\([^"]*\)".*/{"machineId": "\1"}/p' "$T/out" | paste -sd, -)
hf requestReturnMachines "{\"machines\": [$dids]}"
dret=$(field requestId)
if [ $rc = 0 ] && [[ $dret == ret-* ]] && wait_status "$dret" complete &&
   [ "$(grep -c '"status": "terminated"' "$T/out")" = 2 ]; then ok "requestReturnMachines with serve: terminated by the daemon"
else fail "return with serve: $(cat "$T/out")"; fi
hf getReturnRequests "{\"machines\": [$dids]}"
[ $rc = 0 ] && [ "$(field status)" = complete ] && ok "getReturnRequests with serve" || fail "getReturnRequests with serve: $(cat "$T/out")"
d1=$(deferred_calls)
[ $((d1 - d0)) -ge 5 ] && ok "$((d1 - d0)) Host Factory calls deferred to the daemon" || fail "deferred calls: $((d1 - d0))"

# the daemon freezes, a request is queued, the daemon dies: the next call does the work
kill -STOP "$SERVE_PID"
hf requestMachines '{"template": {"templateId": "OnDemand-Minimal", "machineCount": 1}}'
lost=$(field requestId)
kill -KILL "$SERVE_PID"; kill -CONT "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; SERVE_PID=
if [ $rc = 0 ] && wait_status "$lost" complete &&
   grep -q "no live daemon; finished 1 queued request" "$HF_PROVIDER_LOGDIR/provisio.log"; then ok "request queued for a daemon that died was provisioned by the next call"
else fail "queued request after daemon death: $(cat "$T/out")"; fi

# a graceful stop clears the heartbeat: the commands call the providers again
start_serve || fail "serve did not restart"
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null; SERVE_PID=
d2=$(deferred_calls)
hf requestMachines '{"template": {"templateId": "OnDemand-Minimal", "machineCount": 1}}'
after=$(field requestId)
"$BIN" requests show "$after" > "$T/after" 2>/dev/null
if [ $rc = 0 ] && [ "$(deferred_calls)" = "$d2" ] && grep -q '"state": "complete"' "$T/after"; then
	ok "after a graceful stop requestMachines provisions itself"
else fail "after stop: rc=$rc $(cat "$T/after")"; fi

# ---- two daemons on one PostgreSQL store (several broker nodes) ---------------------------------------
# Each queued request is done by exactly one node; one node leads the
# reconciler's provider passes and hands over on a graceful stop.
if [ "$ENGINE" = postgres ]; then
	sed 's/"broker": {/"server": {"reconcile_interval_seconds": 0.5}, "broker": {/' \
		"$HF_PROVIDER_CONFDIR/provisio.json" > "$T/node.json"
	chmod 600 "$T/node.json" # it holds the store's password
	# the daemon SIGKILLed above still holds the reconciler lease (until 3
	# intervals + 2 s after its last pass): start the nodes without it
	psql -q "$PV_TEST_POSTGRES_URL" -c "DELETE FROM $PG_SCHEMA.kv WHERE key = 'lease/reconciler'"
	for n in 1 2; do
		"$BIN" --config "$T/node.json" serve --listen 127.0.0.1:0 --url-file "$T/url$n" \
			> "$T/node$n.out" 2> "$T/node$n.log" & NODE_PIDS+=($!)
	done
	wait_until test -s "$T/url1" -a -s "$T/url2"
	pids=()
	for i in $(seq 8); do
		"$HF/requestMachines.sh" -d '{"template": {"templateId": "conc", "machineCount": 2}}' \
			> "$T/node-req.$i" 2>&1 & pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	done_ok=0 once=0
	for i in $(seq 8); do
		id=$(sed -n 's/.*"requestId": "\(req-[^"]*\)".*/\1/p' "$T/node-req.$i")
		if [ -n "$id" ] && wait_status "$id" complete && [ "$(grep -c '"result": "succeed"' "$T/out")" = 2 ]; then
			done_ok=$((done_ok + 1))
		fi
		[ "$(cat "$T/node1.log" "$T/node2.log" | grep -c "queued $id of")" = 1 ] && once=$((once + 1))
	done
	by1=$(grep -c "queued req-" "$T/node1.log")
	by2=$(grep -c "queued req-" "$T/node2.log")
	if [ $done_ok = 8 ] && [ $once = 8 ]; then ok "two nodes: 8 queued requests each done once (node 1: $by1, node 2: $by2)"
	else fail "two nodes: $done_ok complete, $once done exactly once"; fi
	leaders=$(grep -l "leading the reconciler" "$T/node1.log" "$T/node2.log" | wc -l)
	[ "$leaders" = 1 ] && ok "two nodes: one leads the reconciler" || fail "two nodes: $leaders leaders: $(grep -h reconciler "$T/node1.log" "$T/node2.log" | head -5)"
	lead=1; follow=2
	grep -q "leading the reconciler" "$T/node2.log" && { lead=2; follow=1; }
	kill -TERM "${NODE_PIDS[$((lead - 1))]}"; wait "${NODE_PIDS[$((lead - 1))]}" 2>/dev/null
	wait_until grep -q "leading the reconciler" "$T/node$follow.log"
	grep -q "leading the reconciler" "$T/node$follow.log" && ok "two nodes: a graceful stop hands the lead over" ||
		fail "two nodes: node $follow never took the lead"
	kill -TERM "${NODE_PIDS[$((follow - 1))]}"; wait "${NODE_PIDS[$((follow - 1))]}" 2>/dev/null
fi

# ---- logs, and nothing but JSON on stdout -------------------------------------------------------------
if [ -s "$HF_PROVIDER_LOGDIR/provisio.log" ] && grep -q "requestMachines" "$HF_PROVIDER_LOGDIR/provisio.log"; then
	ok "log file under HF_PROVIDER_LOGDIR"
else fail "no log in $HF_PROVIDER_LOGDIR"; fi

echo "$fails failure(s)"
[ $fails = 0 ]
