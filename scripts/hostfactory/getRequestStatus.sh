#!/bin/sh
# getRequestStatus.sh -f INPUT_FILE: Host Factory's getRequestStatus call, answered by provisio.
# Drop the five scripts into the Host Factory provider directory. provisio is
# found as $PROVISIO_BIN, else next to this script, else on $PATH; its
# configuration and templates come from $HF_PROVIDER_CONFDIR, its store from
# $HF_PROVIDER_WORKDIR, its log goes to $HF_PROVIDER_LOGDIR/provisio.log.
dir=$(cd "$(dirname "$0")" && pwd)
bin=${PROVISIO_BIN:-}
if [ -z "$bin" ]; then
	if [ -x "$dir/provisio" ]; then bin=$dir/provisio; else bin=provisio; fi
fi
exec "$bin" hostfactory getRequestStatus "$@"
