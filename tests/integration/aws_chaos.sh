#!/bin/bash
# aws_chaos.sh PROVISIO EC2_EMULATOR SOURCE_DIR [postgres] - no machine is
# lost or leaked on AWS under chaos (issue 14's acceptance test).
#
# The EC2 emulator answers with 10 % RequestLimitExceeded, 10 % 5xx, 10 %
# connections reset after the action ran, 2 % answers never sent (lost:
# the client times out), 20 ms latency, and EC2's token buckets. Against
# it, whole provisio processes as Host Factory runs them:
#   1. one `provisio machines request chaos 400`, SIGKILLed after its first
#      launches, then asked again (the next process recovers the killed
#      request and releases what it made);
#   2. `provisio serve` starts; 8 Host Factory requesters ask for 150 each at
#      once (queued for the daemon) and poll getRequestStatus; serve is
#      SIGKILLed while it provisions, so the pollers' own processes take
#      the queue over (each runs it when no daemon is live: 8 processes on
#      EC2 at once, on one set of buckets in the store); those processes
#      are SIGKILLed too in the middle of their launches, and others take
#      their requests over;
#   3. a new serve; every machine is returned (9 returns at once), that
#      serve is SIGKILLed while it terminates, a third one finishes;
#   4. 3 instances launched through the aws provider outside any request
#      (no store knows them): serve's orphan sweep finds and terminates
#      them (terminate_orphans is on from the start, so a machine of a
#      request taken for an orphan would be missing from its count).
# Then, after one more full reconciler pass: every request that gave its
# requester an id is complete with exactly its count, every request in the
# store is terminal, EC2 launched no instance the store does not know (0
# duplicates), none is left running (0 orphans). The figures are printed
# (docs/aws.md quotes a run). Everything waits for events (a port file, a
# URL file, the emulator's call counts, request states, the reconciler's
# pass counter), bounded by generous limits, never for a time window.
#
# With "postgres": the same on the PostgreSQL store of PV_TEST_POSTGRES_URL
# (a schema of its own, dropped at the end); exits 77 (skipped) without it.
# PV_CHAOS_KEEP=1 keeps the scratch directory (logs, answers, the SQLite
# store) for a look after a failure.
set -u
BIN=$(realpath "$1")
EMU=$(realpath "$2")
SRC=$(realpath "${3:-$(dirname "$0")/../..}")
ENGINE=${4:-sqlite}
if [ "$ENGINE" = postgres ] && [ -z "${PV_TEST_POSTGRES_URL:-}" ]; then
	echo "skipped: PV_TEST_POSTGRES_URL is not set (make test sets it)"
	exit 77
fi
for tool in jq curl; do
	command -v $tool >/dev/null || { echo "skipped: $tool is not installed (scripts/install-deps)"; exit 77; }
done
T=$(mktemp -d /tmp/pv_aws_chaos.XXXXXX)
export HF_PROVIDER_CONFDIR=$T/conf HF_PROVIDER_WORKDIR=$T/work HF_PROVIDER_LOGDIR=$T/log
export PROVISIO_BIN=$BIN
unset PROVISIO_CONFIG PROVISIO_TEMPLATES PROVISIO_ENV AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION
mkdir -p "$HF_PROVIDER_CONFDIR" "$HF_PROVIDER_WORKDIR" "$HF_PROVIDER_LOGDIR"
HF=$SRC/scripts/hostfactory
START=$(date +%s)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
elapsed() { echo $(($(date +%s) - START)); }

EMU_PID= SERVE_PID=
REQUESTERS=()
cleanup() {
	for p in "${REQUESTERS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for f in "$T"/pid.*; do [ -f "$f" ] && kill_ours "$(cat "$f")"; done
	[ -n "$SERVE_PID" ] && { kill -KILL "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; }
	[ -n "$EMU_PID" ] && { kill -TERM "$EMU_PID" 2>/dev/null; wait "$EMU_PID" 2>/dev/null; }
	[ "$ENGINE" = postgres ] && psql -q "$PV_TEST_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" 2>/dev/null
	[ -n "${PV_CHAOS_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# kill_ours PID: SIGKILL, only when PID is a provisio process this script
# started (its parent is one of ours: this shell or a requester)
kill_ours() {
	local pid=$1 ppid
	[ -r "/proc/$pid/status" ] || return 1
	ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
	grep -q provisio "/proc/$pid/cmdline" 2>/dev/null || return 1
	[ "$ppid" = $$ ] || printf '%s\n' "${REQUESTERS[@]}" | grep -qx "$ppid" || return 1
	kill -KILL "$pid" 2>/dev/null
}

# until SECONDS CMD...: runs CMD until it succeeds, at most SECONDS
until_() {
	local limit=$(($(date +%s) + $1)); shift
	while ! "$@"; do
		[ "$(date +%s)" -ge $limit ] && return 1
		sleep 0.05
	done
}

# ---- the emulator ---------------------------------------------------------------------
"$EMU" --port 0 --port-file "$T/emu.port" --seed 14 --latency-ms 20 --throttle-rate 0.1 \
	--error-rate 0.1 --drop-rate 0.1 --lose-rate 0.02 > /dev/null 2>&1 &
EMU_PID=$!
until_ 10 test -s "$T/emu.port" || { echo "FAIL: the emulator did not start"; exit 1; }
EMU_URL="http://127.0.0.1:$(cat "$T/emu.port")"
stats() { curl -s --noproxy '*' "$EMU_URL/_emu/stats"; }
emu() { stats | jq -r "$1"; }
runs_at_least() { [ "$(emu '.calls.RunInstances // 0')" -ge "$1" ]; }
terminates_at_least() { [ "$(emu '.calls.TerminateInstances // 0')" -ge "$1" ]; }

# ---- provisio's configuration ------------------------------------------------------------
STORE_BLOCK=
if [ "$ENGINE" = postgres ]; then
	PG_SCHEMA=pv_aws_chaos_$$
	psql -q "$PV_TEST_POSTGRES_URL" -c "CREATE SCHEMA $PG_SCHEMA" || exit 1
	case $PV_TEST_POSTGRES_URL in *\?*) sep='&' ;; *) sep='?' ;; esac
	STORE_BLOCK="\"store\": {\"url\": \"$PV_TEST_POSTGRES_URL${sep}options=-csearch_path%3D$PG_SCHEMA\"},"
fi
sql() {
	if [ "$ENGINE" = postgres ]; then
		psql -qAt -F'|' "$PV_TEST_POSTGRES_URL" -c "SET search_path TO $PG_SCHEMA; $1"
	else
		sqlite3 -cmd ".timeout 10000" "$HF_PROVIDER_WORKDIR/provisio.db" "$1"
	fi
}
cat > "$HF_PROVIDER_CONFDIR/provisio.json" <<JSON
{
  "providers": [
    {"name": "aws", "type": "aws",
     "config": {"region": "us-east-1", "endpoint_url": "$EMU_URL/", "imds": false,
                "access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "timeout_ms": 1000, "connect_timeout_ms": 1000, "max_retries": 8,
                "retry_base_ms": 20, "retry_max_ms": 400}}
  ],
  "default_strategy": "aws",
  $STORE_BLOCK
  "broker": {"status_max_age_seconds": 0.5},
  "server": {"listen": "127.0.0.1:0", "threads": 1, "auth": {"enabled": false}, "access_log": false,
             "reconcile_interval_seconds": 1, "queue_poll_seconds": 0.1, "terminate_orphans": true}
}
JSON
chmod 600 "$HF_PROVIDER_CONFDIR/provisio.json"
cat > "$HF_PROVIDER_CONFDIR/chaos_templates.json" <<'JSON'
{"templates": [{"templateId": "chaos", "maxNumber": -1, "provider": "aws", "imageId": "ami-12345678",
                "vmType": "t3.micro", "instanceTags": "team=chaos"}]}
JSON

serve_up() { # serve_up NAME: starts provisio serve, waits for its URL
	rm -f "$T/url"
	"$BIN" serve --url-file "$T/url" > "$T/$1.log" 2>&1 &
	SERVE_PID=$!
	until_ 20 test -s "$T/url" || { fail "$1 did not start: $(tail -n 5 "$T/$1.log")"; return 1; }
	SERVE_URL=$(cat "$T/url")
}
serve_kill() {
	kill -KILL "$SERVE_PID" 2>/dev/null
	wait "$SERVE_PID" 2>/dev/null
	SERVE_PID=
}
metric() { curl -s --noproxy '*' "$SERVE_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
passes_at_least() { [ "$(metric provisio_reconciler_passes_total)" -ge "$1" ] 2>/dev/null; }

# ---- 1. one process asks for 400, killed in the middle, asks again ---------------------------------
# its second launch's answer is lost: it waits for its timeout, and is
# killed meanwhile (its first two launches happened, nobody recorded them)
curl -s --noproxy '*' -d '{"faults_next": {"RunInstances": ["none", "lose"]}}' "$EMU_URL/_emu/config" > /dev/null
"$BIN" machines request chaos 400 > "$T/first.out" 2> "$T/first.err" &
first=$!
until_ 60 runs_at_least 2
if kill -KILL $first 2>/dev/null; then wait $first 2>/dev/null; ok "SIGKILL of the CLI asking for 400 after $(emu .calls.RunInstances) launch call(s)"
else wait $first; fail "the first CLI ended before it could be killed: $(cat "$T/first.err")"; fi
if "$BIN" machines request chaos 400 > "$T/second.out" 2> "$T/second.err"; then
	ID0=$(jq -r .request_id "$T/second.out")
	ok "asked again: $ID0"
else fail "the second request for 400 failed: $(cat "$T/second.err")"; ID0=; fi
killed_state=$(sql "SELECT state FROM requests WHERE kind = 'acquire' AND id <> '$ID0'")
[ "$killed_state" = failed ] && ok "the killed request was recovered: $(sql "SELECT message FROM requests WHERE kind = 'acquire' AND id <> '$ID0'")" ||
	fail "the killed request is '$killed_state'"

# ---- 2. serve; 8 requesters at once; serve killed; their processes killed ---------------------------
serve_up serveA || exit 1
# follow N SCRIPT INPUT NAME WANT: asks with SCRIPT -f INPUT until an id
# comes back (as Host Factory asks again after a failed or killed call),
# then polls getRequestStatus until the status matches WANT (a regex); each
# provisio process it starts is named in pid.NAME.N while it runs; the id
# is left in NAME.id.N, the last answer in NAME.status.N
follow() {
	local n=$1 script=$2 input=$3 name=$4 want=$5 p
	while :; do
		"$HF/$script.sh" -f "$input" > "$T/$name.asked.$n" 2>/dev/null & p=$!
		echo $p > "$T/pid.$name.$n"; wait $p 2>/dev/null
		# a process killed mid-answer leaves an empty file, which jq -e
		# (1.6) accepts: only a non-empty id counts
		jq -e -r '.requestId // empty' "$T/$name.asked.$n" > "$T/$name.id.$n" 2>/dev/null &&
			[ -s "$T/$name.id.$n" ] && break
	done
	printf '{"requests": [{"requestId": "%s"}]}' "$(cat "$T/$name.id.$n")" > "$T/$name.poll.$n"
	while :; do
		"$HF/getRequestStatus.sh" -f "$T/$name.poll.$n" > "$T/$name.tmp.$n" 2>/dev/null & p=$!
		echo $p > "$T/pid.$name.$n"; wait $p 2>/dev/null
		[[ $(jq -r '.requests[0].status // empty' "$T/$name.tmp.$n" 2>/dev/null) =~ ^($want)$ ]] && break
		sleep 0.5
	done
	mv "$T/$name.tmp.$n" "$T/$name.status.$n"
	rm -f "$T/pid.$name.$n"
}
requester() { # requester N: 150 machines
	printf '{"template": {"templateId": "chaos", "machineCount": 150}}' > "$T/ask.$1"
	follow "$1" requestMachines "$T/ask.$1" acq 'complete|complete_with_error'
}
runs0=$(emu '.calls.RunInstances')
for n in $(seq 8); do
	requester $n & REQUESTERS+=($!)
done
if until_ 60 runs_at_least $((runs0 + 2)); then
	serve_kill
	ok "SIGKILL of serve after $(($(emu .calls.RunInstances) - runs0)) launch call(s) for the queue"
else fail "serve made no launch for the 8 queued requests"; serve_kill; fi
runs1=$(emu '.calls.RunInstances')
killed=0
if until_ 60 runs_at_least $((runs1 + 3)); then
	for f in "$T"/pid.*; do
		[ -f "$f" ] && kill_ours "$(cat "$f")" && killed=$((killed + 1))
	done
fi
[ $killed -gt 0 ] && ok "SIGKILL of $killed Host Factory process(es) working the queue themselves" ||
	fail "no Host Factory process was killed while working the queue"
# a requester that did not finish is stopped with what it runs (the test
# fails and reports; it must not hang until ctest's timeout)
stop_requesters() {
	for f in "$T"/pid.*; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
	for p in "${REQUESTERS[@]}"; do kill -9 "$p" 2>/dev/null; done
}
done_requesters() { for p in "${REQUESTERS[@]}"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
until_ 150 done_requesters || { fail "the requesters did not finish in 150 s"; stop_requesters; }
for p in "${REQUESTERS[@]}"; do wait "$p" 2>/dev/null; done
REQUESTERS=()
for n in $(seq 8); do
	id=$(cat "$T/acq.id.$n" 2>/dev/null)
	f="$T/acq.status.$n"
	st=$(jq -r '.requests[0].status' "$f" 2>/dev/null)
	got=$(jq '[.requests[0].machines[] | select(.result == "succeed")] | length' "$f" 2>/dev/null)
	ids=$(jq '[.requests[0].machines[].machineId] | unique | length' "$f" 2>/dev/null)
	if [ "$st" = complete ] && [ "$got" = 150 ] && [ "$ids" = 150 ]; then :
	else fail "requester $n ($id): $st, $got machines succeeded, $ids distinct: $(jq -r '.requests[0].message' "$f" 2>/dev/null)"; fi
done
first_got=$(sql "SELECT count(*) FROM machines WHERE request_id = '$ID0' AND result = 'succeed'")
[ "$first_got" = 400 ] && [ "$(sql "SELECT state FROM requests WHERE id = '$ID0'")" = complete ] ||
	fail "the 400 request: $first_got machines, $(sql "SELECT state, message FROM requests WHERE id = '$ID0'")"
[ $fails = 0 ] && ok "every request with an id is complete with exactly its count (400 + 8 x 150) ($(elapsed) s)"

# ---- 3. everything returned; the returning serve killed; a third finishes ---------------------------
serve_up serveB || exit 1
terms0=$(emu '.calls.TerminateInstances // 0')
returner() { # returner N REQUEST_ID: returns the request's machines
	sql "SELECT machine_id FROM machines WHERE request_id = '$2' AND result = 'succeed'" |
		jq -R -s '{machines: [split("\n")[] | select(length > 0) | {machineId: .}]}' > "$T/give.$1"
	follow "$1" requestReturnMachines "$T/give.$1" ret complete
}
n=0
for id in $(sql "SELECT DISTINCT request_id FROM machines WHERE result = 'succeed' AND return_id = ''"); do
	n=$((n + 1))
	returner $n "$id" & REQUESTERS+=($!)
done
if until_ 60 terminates_at_least $((terms0 + 1)); then
	serve_kill
	ok "SIGKILL of serve after its first TerminateInstances"
else fail "serve terminated nothing"; serve_kill; fi
serve_up serveC || exit 1
until_ 120 done_requesters || { fail "the returns did not finish in 120 s"; stop_requesters; }
for p in "${REQUESTERS[@]}"; do wait "$p" 2>/dev/null; done
REQUESTERS=()
returned=$(sql "SELECT count(*) FROM machines WHERE return_id <> '' AND status = 'terminated'")
ok "returned: $returned machine(s) terminated ($(elapsed) s)"
# ---- 4. instances provisio launched that no store knows: the sweep ends them -----------------------
# (terminate_orphans was on all along: no machine of a request was taken for one)
found0=$(metric provisio_orphans_found_total)
"$BIN" providers exec create_instances --provider aws --params \
	'{"count": 3, "template": {"templateId": "stray", "imageId": "ami-12345678", "vmType": "t3.micro"}}' \
	> "$T/stray.out" 2> "$T/stray.err"
stray=$(jq '[.data.instances[]?] | length' "$T/stray.out" 2>/dev/null)
[ "${stray:-0}" -ge 1 ] || fail "no stray instance launched: $(cat "$T/stray.err")"
orphans_at_least() { [ "$(metric provisio_orphans_found_total)" -ge "$1" ] 2>/dev/null; }
nothing_live() { [ "$(emu .instances.live)" = 0 ]; }
if until_ 60 orphans_at_least $((found0 + ${stray:-0})) && until_ 60 nothing_live; then
	ok "serve's orphan sweep found and terminated the ${stray:-0} stray instance(s)"
else fail "orphan sweep: $(($(metric provisio_orphans_found_total) - found0)) of ${stray:-0} stray instance(s) found"; fi
# one whole reconciler pass after the returns
passes=$(metric provisio_reconciler_passes_total)
until_ 30 passes_at_least $((passes + 2)) || fail "no reconciler pass"

# ---- the figures ----------------------------------------------------------------------------------
S=$(stats)
requested=$(sql "SELECT coalesce(sum(requested), 0) FROM requests WHERE kind = 'acquire'")
delivered=$(sql "SELECT coalesce(sum(requested), 0) FROM requests WHERE kind = 'acquire' AND state = 'complete'")
created=$(echo "$S" | jq '.instances.total')
recorded=$(sql "SELECT count(*) FROM machines")
duplicates=$((created - ${stray:-0} - recorded)) # the stray ones are the orphans, not duplicates
live=$(echo "$S" | jq '.instances.live')
orphans_found=$(metric provisio_orphans_found_total)
sweep_failures=$(metric provisio_orphan_sweep_failures_total)
not_terminal=$(sql "SELECT count(*) FROM requests WHERE state NOT IN ('complete', 'complete_with_error', 'failed')")
released=$(sql "SELECT count(*) FROM machines WHERE result = 'fail'")
echo "---- figures (issue 14 acceptance, $ENGINE store, $(elapsed) s) ----"
echo "requested (acquire, incl. the killed one): $requested; delivered complete: $delivered"
echo "instances created at EC2: $created (${stray:-0} of them stray); recorded in the store: $recorded; duplicates: $duplicates"
echo "released by recovery (killed before the id was given): $released"
echo "left running after return and a reconciler pass (orphans): $live; stray instances launched outside the store:" \
     "${stray:-0}; orphans found by serve: ${orphans_found:-?};" \
     "failed orphan sweeps: ${sweep_failures:-?}"
echo "requests: $(sql "SELECT kind || ' ' || state || ' ' || count(*) FROM requests GROUP BY kind, state" | paste -sd, -)"
echo "EC2 calls by action: $(echo "$S" | jq -c .calls)"
echo "RequestLimitExceeded sent: $(echo "$S" | jq .throttled) (injected $(echo "$S" | jq '.faults.throttle // 0')," \
     "bucket $(echo "$S" | jq '.faults.bucket_throttle // 0')); other faults: $(echo "$S" | jq -c '.faults | del(.throttle, .bucket_throttle)')"
echo "---------------------------------------------------------------"
[ "$delivered" = 1600 ] || fail "delivered $delivered of 1600"
[ "$duplicates" = 0 ] || fail "$duplicates instance(s) EC2 launched that the store does not know"
[ "$live" = 0 ] || fail "$live instance(s) left running"
[ "$not_terminal" = 0 ] || fail "$not_terminal request(s) not terminal: $(sql "SELECT id, state, message FROM requests WHERE state NOT IN ('complete', 'complete_with_error', 'failed')")"
if [ $fails = 0 ]; then echo "PASS: aws chaos ($(elapsed) s)"; exit 0; fi
echo "---- serve logs (tail) ----"
tail -n 20 "$T"/serve*.log
echo "FAILED: $fails check(s)"
exit 1
