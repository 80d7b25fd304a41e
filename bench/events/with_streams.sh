#!/usr/bin/env bash
# bench/events/with_streams.sh COMMAND...: runs COMMAND (a `jobpool serve` on $PORT) and, once it
# answers, holds $STREAMS GET /v1/events streams open against it with stream_reader, as that many
# open dashboards would (STREAMS=0: none, for the baseline). Used by bench/events.sh as a wrapper
# around compare.sh's candidate.
#
# compare.sh stops the candidate by its process group, so the server and the reader get TERM
# together. The reader then writes its verdict (a JSON line) into $STREAMS_SUMMARY_DIR, and this
# script writes the server's CPU time and job count there: CPU per job is the server's own cost,
# apart from what the readers take from the load generator's core.
set -u
: "${PORT:?set by the bench harness}" "${STREAMS:?}" "${STREAM_READER:?}" "${STREAMS_SUMMARY_DIR:?}"
stamp="$(date +%s%N)"
"$@" &
server=$!
reader=""
poller=""
finish() {
    # utime and stime, fields 14 and 15 of /proc/PID/stat (the name, field 2, has no spaces here).
    local ticks jobs
    ticks="$(awk '{print $14 + $15}' "/proc/$server/stat" 2>/dev/null || echo 0)"
    jobs="$(cat "$STREAMS_SUMMARY_DIR/jobs-$stamp" 2>/dev/null || echo 0)"
    echo "{\"streams\":$STREAMS,\"cpu_seconds\":$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{print t/hz}'),\"jobs\":$jobs}" \
        >"$STREAMS_SUMMARY_DIR/server-$stamp.json"
    for pid in $reader $poller; do kill -TERM "$pid" 2>/dev/null; done
    kill -TERM "$server" 2>/dev/null
}
trap finish TERM INT
for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    kill -0 "$server" 2>/dev/null || exit 1
    sleep 0.1
done
# The readers are clients: they share the load generator's cores, not the server's.
pin=()
[ -z "${LOAD_CPUS:-}" ] || pin=(taskset -c "$LOAD_CPUS")
if [ "$STREAMS" -gt 0 ]; then
    "${pin[@]}" "$STREAM_READER" "$PORT" "$STREAMS" "$STREAMS_SUMMARY_DIR/streams-$stamp.json" &
    reader=$!
fi
# Every job ever submitted, twice a second, so that the count is at hand when TERM comes.
(
    while sleep 0.5; do
        curl -s "http://127.0.0.1:$PORT/v1/stats" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["by_state"].values()))' \
            >"$STREAMS_SUMMARY_DIR/jobs-$stamp.new" 2>/dev/null && mv "$STREAMS_SUMMARY_DIR/jobs-$stamp.new" "$STREAMS_SUMMARY_DIR/jobs-$stamp"
    done
) &
poller=$!
wait "$server"
status=$?
for pid in $reader $poller; do kill -TERM "$pid" 2>/dev/null; done
[ -z "$reader" ] || wait "$reader"
exit "$status"
