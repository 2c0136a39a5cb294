#!/bin/sh
# Instructions per call of every row of a kernel benchmark, counted by
# callgrind: exact and repeatable however busy the machine is (the ns
# tables are not). Rows that need threads running at once are skipped: under
# valgrind only one thread runs at a time.
#
# Usage: bench/callgrind.sh build-rel/bench_fallback [more benchmarks...]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BENCH..." >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=0
for bench in "$@"; do
	i=$((i + 1))
	name=$i-$(basename "$bench")
	valgrind --tool=callgrind --callgrind-out-file="$out/$name.%p" "$bench" >/dev/null 2>"$out/$name.log" ||
		{ cat "$out/$name.log" >&2; exit 1; }
	echo "| $bench (callgrind) | instructions/call | × floor |"
	echo "|---|---:|---:|"
	# Each row's dump says "Trigger: Client Request: <row>|<calls>|<floor>"
	# and its total; a row with a floor is divided by that row's count.
	for f in $(ls "$out/$name".*.* 2>/dev/null | sort -V); do
		awk '/^desc: Trigger: Client Request: /{sub(/^desc: Trigger: Client Request: /,""); label=$0}
		     /^totals: /{print label "\t" $2}' "$f"
	done | awk -F'\t' '{
		split($1, p, "|"); per = $2 / p[2]; rows[NR] = per;
		ratio = p[3] > 0 ? sprintf("%.2f (row %d)", per / rows[p[3]], p[3]) : "";
		printf "| %d. %s | %.0f | %s |\n", NR, p[1], per, ratio }'
	echo
done
