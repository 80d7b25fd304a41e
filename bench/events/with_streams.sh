#!/usr/bin/env bash
# bench/events/with_streams.sh COMMAND...: runs COMMAND (a `jobpool serve` on $PORT) and, once it
# answers, holds $STREAMS GET /v1/events streams open against it with stream_reader, as that many
# open dashboards would. Used by bench/events.sh as a wrapper around compare.sh's candidate.
#
# compare.sh stops the candidate by its process group, so the server and the reader get TERM
# together; the reader then writes its verdict (a JSON line) into $STREAMS_SUMMARY_DIR.
set -u
: "${PORT:?set by the bench harness}" "${STREAMS:?}" "${STREAM_READER:?}" "${STREAMS_SUMMARY_DIR:?}"
"$@" &
server=$!
reader=""
trap '[ -n "$reader" ] && kill -TERM "$reader" 2>/dev/null; kill -TERM "$server" 2>/dev/null' TERM INT
for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    kill -0 "$server" 2>/dev/null || exit 1
    sleep 0.1
done
# The readers are clients: they share the load generator's cores, not the server's.
pin=()
[ -z "${LOAD_CPUS:-}" ] || pin=(taskset -c "$LOAD_CPUS")
"${pin[@]}" "$STREAM_READER" "$PORT" "$STREAMS" "$STREAMS_SUMMARY_DIR/streams-$(date +%s%N).json" &
reader=$!
wait "$server"
status=$?
[ -z "$reader" ] || { kill -TERM "$reader" 2>/dev/null; wait "$reader"; }
exit "$status"
