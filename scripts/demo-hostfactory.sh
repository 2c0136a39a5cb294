#!/bin/sh
# demo-hostfactory.sh PROVISIO_BIN: the Host Factory cycle on the embedded
# defaults (config/provisio.json, config/templates.json, SQLite under ./var):
# templates, a request for 3 machines, status until complete, their return,
# status until terminated. Prints each call and its JSON answer, exactly as
# Host Factory would see it.
set -eu
bin=${1:-build/provisio}
export HF_PROVIDER_LOGDIR=${HF_PROVIDER_LOGDIR:-./var/log}
mkdir -p "$HF_PROVIDER_LOGDIR"

call() { # call COMMAND JSON: prints the call, runs it, prints the answer
	printf '\n$ provisio hostfactory %s -d %s\n' "$1" "'$2'" >&2
	"$bin" hostfactory "$1" -d "$2" | tee ./var/last.json
}
field() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" ./var/last.json | head -n 1; }
wait_done() { # wait_done REQUEST_ID: status until it is no longer running
	i=0
	while :; do
		call getRequestStatus "{\"requests\": [{\"requestId\": \"$1\"}]}" >/dev/null
		st=$(field status)
		printf '  %s: %s\n' "$1" "$st" >&2
		[ "$st" != running ] && break
		i=$((i + 1)); [ $i -lt 60 ] || { echo "still running after 30 s" >&2; return 1; }
		sleep 0.5
	done
	cat ./var/last.json
}

mkdir -p ./var
call getAvailableTemplates '{}'
call requestMachines '{"template": {"templateId": "local-small", "machineCount": 3}}'
req=$(field requestId)
[ -n "$req" ] || { echo "requestMachines failed" >&2; exit 1; }
wait_done "$req"
machines=$(sed -n 's/.*"machineId": "\([^"]*\)".*/{"machineId": "\1"}/p' ./var/last.json | paste -sd, -)
call getReturnRequests "{\"machines\": [$machines]}"
call requestReturnMachines "{\"machines\": [$machines]}"
ret=$(field requestId)
wait_done "$ret"
echo >&2
echo "demo: the Host Factory cycle completed (log: $HF_PROVIDER_LOGDIR/provisio.log)" >&2
