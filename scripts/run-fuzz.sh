#!/bin/bash
# run-fuzz.sh BUILD_DIR SECONDS [NAME...] - runs each libFuzzer target of
# BUILD_DIR (all of tests/fuzz/fuzz_*.c, or the NAMEs given) for SECONDS,
# seeded with tests/fuzz/corpus/<name> and the test data tests/fuzz/<name>.seeds
# names (and tests/fuzz/<name>.dict when there is one), on a copy of the corpus so the tree is not written to.
# Prints one line a target: executions, executions a second, corpus size.
# Exits non-zero when a target crashed, leaked or timed out; its output and
# the crashing input are kept in BUILD_DIR/fuzz-out/<name>.
set -uo pipefail
BUILD=${1:?usage: run-fuzz.sh BUILD_DIR SECONDS [NAME...]}
SECS=${2:?usage: run-fuzz.sh BUILD_DIR SECONDS [NAME...]}
shift 2
BUILD=$(cd "$BUILD" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -eq 0 ]; then
	set -- $(cd "$SRC/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
fi
OUT="$BUILD/fuzz-out"
mkdir -p "$OUT"
fail=0
printf '%-16s %12s %10s %8s  %s\n' target executions exec/s corpus result
for name in "$@"; do
	bin="$BUILD/fuzz_$name"
	[ -x "$bin" ] || { echo "$name: $bin not built"; fail=1; continue; }
	corpus="$OUT/$name/corpus"
	rm -rf "$OUT/$name" && mkdir -p "$corpus"
	[ -d "$SRC/tests/fuzz/corpus/$name" ] && cp -r "$SRC/tests/fuzz/corpus/$name/." "$corpus/"
	# more seeds from the test data: tests/fuzz/<name>.seeds lists globs
	if [ -f "$SRC/tests/fuzz/$name.seeds" ]; then
		while read -r glob; do (cd "$SRC" && cp $glob "$corpus/"); done <"$SRC/tests/fuzz/$name.seeds"
	fi
	dict=()
	[ -f "$SRC/tests/fuzz/$name.dict" ] && dict=(-dict="$SRC/tests/fuzz/$name.dict")
	( cd "$OUT/$name" && "$bin" -max_total_time="$SECS" -max_len=8192 -timeout=25 -rss_limit_mb=4096 \
		-print_final_stats=1 "${dict[@]}" "$corpus" >log 2>&1 )
	rc=$?
	runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$OUT/$name/log")
	speed=$(awk '/stat::average_exec_per_sec/ {print $2}' "$OUT/$name/log")
	size=$(ls "$corpus" | wc -l)
	if [ $rc -eq 0 ]; then result=ok; else result="FAILED (see $OUT/$name/log)"; fail=1; fi
	printf '%-16s %12s %10s %8s  %s\n' "$name" "${runs:-?}" "${speed:-?}" "$size" "$result"
	[ $rc -eq 0 ] || tail -40 "$OUT/$name/log"
done
exit $fail
