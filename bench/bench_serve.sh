#!/bin/bash
# bench_serve.sh - load test of provisio serve on loopback with wrk, next to
# nginx returning a fixed 41-byte JSON reply in the same run (the ceiling).
#   bench/bench_serve.sh [BUILD_DIR] [SECONDS]
# Targets (issue 9): GET /api/v1/requests/{id} at >= 35% of nginx's
# requests/s, p99 <= 10 ms, no errors. 64 connections, wrk -t1.
# Then (issue 16) the same honest load while 3,000 slowloris connections
# (bench/slowloris.py, from 16 loopback addresses) are held open: the
# connections the server holds, its RSS, and the honest requests/s and p99.
# "cpu/req" is the server's CPU time (user + system, /proc) per answered
# request: on a shared machine requests/s and p99 move with the other
# load, the CPU a request costs much less, so it is what compares builds.
set -euo pipefail
BUILD=${1:-build}
SECS=${2:-5}
BIN=$(cd "$BUILD" && pwd)/provisio
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx-light (scripts/install-deps)"; exit 1; }
DIR=$(mktemp -d /tmp/pv_bench_serve.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx: fixed JSON on a loopback port, one worker a core
NPORT=$(free_port)
mkdir -p "$DIR/nginx"
cat > "$DIR/nginx/nginx.conf" <<NG
worker_processes auto;
daemon off;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx; proxy_temp_path $DIR/nginx; fastcgi_temp_path $DIR/nginx;
  uwsgi_temp_path $DIR/nginx; scgi_temp_path $DIR/nginx;
  server { listen 127.0.0.1:$NPORT;
    location / { default_type application/json; return 200 '{"status":"ok","message":"fixed reply!!"}'; } }
}
NG
nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" &
PIDS+=($!)

# provisio serve: sim provider, SQLite in the temp dir, no access log
TOKEN=bench-token-$$
HASH=$("$BIN" serve --hash-token "$TOKEN")
cat > "$DIR/templates.json" <<T
{"templates": [{"templateId": "t1", "maxNumber": -1}]}
T
cat > "$DIR/provisio.json" <<C
{"providers": [{"name": "sim", "type": "sim", "config": {"seed": 1}}],
 "store": {"path": "$DIR/provisio.db"},
 "broker": {"templates_file": "$DIR/templates.json", "status_max_age_seconds": 3600},
 "server": {"listen": "127.0.0.1:0", "access_log": false, "logging": {"level": "warn"},
            "auth": {"tokens": [{"name": "bench", "hash": "$HASH", "role": "admin"}]}}}
C
"$BIN" --config "$DIR/provisio.json" serve --url-file "$DIR/url" >/dev/null 2>"$DIR/serve.log" &
SERVE=$!
PIDS+=($SERVE)
for _ in $(seq 100); do [ -s "$DIR/url" ] && break; sleep 0.05; done
URL=$(head -1 "$DIR/url")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NPORT/" >/dev/null && break; sleep 0.05; done
ID=$(curl -s -H "Authorization: Bearer $TOKEN" -d '{"template_id": "t1", "count": 2}' "$URL/api/v1/requests" |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["request_id"])')

cpu_ticks() { # user + system clock ticks of a process (0 when not ours to read)
	awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

run() { # key name url [auth] [pid whose CPU to count]
	local key=$1; shift
	local out t0 t1
	t0=$(cpu_ticks "${4:-$SERVE}")
	if [ -n "${3:-}" ]; then
		out=$(wrk -t1 -c64 -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$2")
	else
		out=$(wrk -t1 -c64 -d"${SECS}s" --latency "$2")
	fi
	t1=$(cpu_ticks "${4:-$SERVE}")
	local rps p99 errs n cpu
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
	cpu=$(python3 -c "import os; n=$n; t=$t1-$t0; print('%.1f us' % (1e6*t/os.sysconf('SC_CLK_TCK')/n) if n and t else '-')")
	printf "%-34s %12s %10s %10s  %s\n" "$1" "$rps" "$p99" "$cpu" "${errs:-no errors}"
	echo "$rps" > "$DIR/rps.$key"
}

echo "wrk -t1 -c64 -d${SECS}s on $(nproc) cores; provisio serve $(nproc) loops"
printf "%-34s %12s %10s %10s  %s\n" "endpoint" "requests/s" "p99" "cpu/req" "errors"
run nginx nginx-fixed-json "http://127.0.0.1:$NPORT/" "" -
run req "GET /api/v1/requests/{id}" "$URL/api/v1/requests/$ID" auth
run metrics "GET /metrics" "$URL/metrics" auth
run health "GET /health" "$URL/health"
N=$(cat "$DIR/rps.nginx"); R=$(cat "$DIR/rps.req")
python3 -c "n=float('$N'); r=float('$R'); print('requests/{id} at %.1f%% of nginx (target >= 35%%)' % (100*r/n))"

# ---- under 3,000 slowloris connections ---------------------------------------------
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVE/status"; }
held() { curl -s -H "Authorization: Bearer $TOKEN" "$URL/metrics" | awk '$1 == "provisio_http_connections" {print $2}'; }
SLOW=${SLOW:-3000}
PORT=${URL##*:}
RSS0=$(rss)
python3 "$(dirname "$0")/slowloris.py" 127.0.0.1 "$PORT" "$SLOW" >"$DIR/slowloris.out" &
PIDS+=($!)
for _ in $(seq 300); do [ "$(held)" -ge "$SLOW" ] 2>/dev/null && break; sleep 0.1; done
echo
echo "under $SLOW slowloris connections (held by the server: $(held); RSS $((RSS0 / 1024)) MiB before, $(( $(rss) / 1024 )) MiB now)"
printf "%-34s %12s %10s %10s  %s\n" "endpoint" "requests/s" "p99" "cpu/req" "errors"
run slowreq "GET /api/v1/requests/{id}" "$URL/api/v1/requests/$ID" auth
run slowhealth "GET /health" "$URL/health"
echo "held after: $(held); RSS $(( $(rss) / 1024 )) MiB"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
for _ in $(seq 300); do [ "$(held)" -le 1 ] 2>/dev/null && break; sleep 0.1; done
echo "slowloris gone: held $(held); RSS $(( $(rss) / 1024 )) MiB"

