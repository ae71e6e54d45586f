#!/bin/sh
# Start one Janus of Hetang's media tree. The configuration comes from $HETANG_JANUS_CONF
# (/etc/hetang-janus in the image); the event handler's address ($HETANG_EVENTS_URL) and password
# (the server's $HETANG_METRICS_TOKEN) are filled in here, so the token never sits in the image.
# Arguments: the instance's name, its RTP port range, and its public address (optional).
set -eu
name="$1" ports="$2" public_ip="${3:-}"
source="${HETANG_JANUS_CONF:-/etc/hetang-janus}"
conf=$(mktemp -d "${TMPDIR:-/tmp}/hetang-janus.XXXXXX")
cp "$source"/*.jcfg "$conf"/
sed -i -e "s|@CONF@|$conf|" "$conf/janus.jcfg"
sed -i -e "s|@PORT@|${HETANG_JANUS_API_PORT:-8088}|" "$conf/janus.transport.http.jcfg"
sed -e "s|@METRICS_TOKEN@|${HETANG_METRICS_TOKEN:-}|" -e "s|@SERVER@|${HETANG_EVENTS_URL:?set HETANG_EVENTS_URL}|" \
    "$source/janus.eventhandler.sampleevh.jcfg.in" > "$conf/janus.eventhandler.sampleevh.jcfg"
set -- -F "$conf" -n "$name" -r "$ports" -e -o
if [ -n "$public_ip" ]; then
    set -- "$@" --nat-1-1="$public_ip" --keep-private-host
fi
exec janus "$@"
