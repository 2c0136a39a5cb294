#!/bin/bash
# bench_hostfactory.sh [PROVISIO]: each Host Factory command as a whole
# process (what Host Factory pays per call), measured with hyperfine
# (Debian package) or, without it, a plain loop. Includes getRequestStatus
# of a request of 1,000 machines (sim provider). Target: every call <= 10 ms
# mean and <= 4x /bin/true, the first row of the same run (any process's
# start and exit); `provisio --version` is the program's own start and exit.
# Each sim provider serves one template: a sim numbers its instances from 1
# in every process, so two processes' machines of one sim would share ids.
# With PV_TEST_POSTGRES_URL set (scripts/with-postgres /tmp/pg bench/...)
# the store is that PostgreSQL server (a schema of its own) instead of SQLite.
set -eu
BIN=$(realpath "${1:-build/provisio}")
T=$(mktemp -d /tmp/pv_bench_hf.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HF_PROVIDER_CONFDIR=$T/conf HF_PROVIDER_WORKDIR=$T/work HF_PROVIDER_LOGDIR=$T/log
unset PROVISIO_CONFIG PROVISIO_TEMPLATES PROVISIO_ENV
mkdir -p "$HF_PROVIDER_CONFDIR" "$HF_PROVIDER_WORKDIR" "$HF_PROVIDER_LOGDIR"
cat > "$HF_PROVIDER_CONFDIR/provisio.json" <<'JSON'
{"providers": [{"name": "sim", "type": "sim", "config": {"capacity": 100000}},
               {"name": "simsmall", "type": "sim", "config": {"capacity": -1}},
               {"name": "simreq", "type": "sim", "config": {"capacity": -1}}],
 "default_strategy": "sim",
 "broker": {"status_max_age_seconds": 2}}
JSON
if [ -n "${PV_TEST_POSTGRES_URL:-}" ]; then
	schema=pv_bench_hf_$$
	psql -q "$PV_TEST_POSTGRES_URL" -c "CREATE SCHEMA $schema"
	trap 'psql -q "$PV_TEST_POSTGRES_URL" -c "DROP SCHEMA $schema CASCADE" 2>/dev/null; rm -rf "$T"' EXIT
	case $PV_TEST_POSTGRES_URL in *\?*) sep='&' ;; *) sep='?' ;; esac
	sed -i "s|\"broker\":|\"store\": {\"url\": \"$PV_TEST_POSTGRES_URL${sep}options=-csearch_path%3D$schema\"}, \"broker\":|" \
		"$HF_PROVIDER_CONFDIR/provisio.json"
	chmod 600 "$HF_PROVIDER_CONFDIR/provisio.json"
	echo "store: PostgreSQL (schema $schema)"
fi
cat > "$HF_PROVIDER_CONFDIR/provisio_templates.json" <<'JSON'
{"templates": [
  {"templateId": "big", "maxNumber": 1010, "provider": "sim",
   "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]}},
  {"templateId": "small", "maxNumber": 10, "provider": "simsmall"},
  {"templateId": "bench", "maxNumber": -1, "provider": "simreq"}
]}
JSON
hf() { "$BIN" hostfactory "$@"; }
big=$(hf requestMachines -d '{"template": {"templateId": "big", "machineCount": 1000}}' |
      sed -n 's/.*"requestId": "\([^"]*\)".*/\1/p')
small=$(hf requestMachines -d '{"template": {"templateId": "small", "machineCount": 10}}' |
      sed -n 's/.*"requestId": "\([^"]*\)".*/\1/p')
n=$(hf getRequestStatus -d "{\"requests\": [{\"requestId\": \"$big\"}]}" | grep -c '"machineId"')
echo "setup: $big holds $n machines"
ten=$(hf getRequestStatus -d "{\"requests\": [{\"requestId\": \"$small\"}]}" |
      sed -n 's/.*"machineId": "\([^"]*\)".*/{"machineId": "\1"}/p' | paste -sd, -)
one=$(echo "$ten" | cut -d, -f1)

echo '{}' > "$T/templates.json"
echo '{"template": {"templateId": "bench", "machineCount": 1}}' > "$T/request.json"
echo "{\"requests\": [{\"requestId\": \"$small\"}]}" > "$T/status10.json"
echo "{\"requests\": [{\"requestId\": \"$big\"}]}" > "$T/status1000.json"
echo "{\"machines\": [$one]}" > "$T/return.json"
echo "{\"machines\": [$ten]}" > "$T/reclaim.json"

names=("/bin/true" "provisio --version" "getAvailableTemplates" "requestMachines (1 machine)"
       "getRequestStatus (10 machines)" "getRequestStatus (1000 machines)"
       "requestReturnMachines (1 machine)" "getReturnRequests (10 machines)")
cmds=("/bin/true" "$BIN --version" "$BIN hostfactory getAvailableTemplates -f $T/templates.json"
      "$BIN hostfactory requestMachines -f $T/request.json"
      "$BIN hostfactory getRequestStatus -f $T/status10.json"
      "$BIN hostfactory getRequestStatus -f $T/status1000.json"
      "$BIN hostfactory requestReturnMachines -f $T/return.json"
      "$BIN hostfactory getReturnRequests -f $T/reclaim.json")

if command -v hyperfine >/dev/null; then
	args=()
	for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
	out=(--export-markdown "$T/table.md" --export-csv "$T/table.csv")
	hyperfine -N --warmup 5 --runs 40 --style none "${out[@]}" "${args[@]}" >/dev/null 2>&1 ||
	hyperfine --warmup 5 --runs 40 --style none "${out[@]}" "${args[@]}" >/dev/null
	cat "$T/table.md"
	# the verdict against the target, row by row (the CSV's times are in seconds)
	echo
	awk -F, 'NR == 2 { base = $2 }
		NR > 2 { ms = $2 * 1000; x = $2 / base
			 printf "%-36s %6.2f ms  %4.1fx /bin/true  %s\n", $1, ms, x,
				(ms <= 10 && x <= 4) ? "ok" : "OVER the target (10 ms, 4x)" }' "$T/table.csv"
else
	printf '| %-36s | %10s |\n' command "mean ms"
	for i in "${!cmds[@]}"; do
		start=$(date +%s%N)
		for _ in $(seq 40); do ${cmds[$i]} >/dev/null; done
		end=$(date +%s%N)
		printf '| %-36s | %10.2f |\n' "${names[$i]}" "$(echo "($end - $start) / 40000000" | bc -l)"
	done
fi

# CPU time and page faults per call, less sensitive to other processes on
# a busy machine than wall time (a first touch of a page costs ~18 us on the
# project's VM: docs/hostfactory.md).
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
	echo
	printf '| %-36s | %12s | %12s |\n' command "CPU ms/call" "page faults"
	printf '|:---|---:|---:|\n'
	for i in "${!cmds[@]}"; do
		# shellcheck disable=SC2086
		perf stat -r 30 -x, -e task-clock,page-faults ${cmds[$i]} 2>&1 >/dev/null |
			awk -F, -v n="${names[$i]}" '/task-clock/ { ms = $1 } /page-faults/ { pf = $1 }
				END { printf "| %-36s | %12.2f | %12d |\n", n, ms, pf }'
	done
fi
