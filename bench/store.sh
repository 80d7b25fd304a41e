#!/usr/bin/env bash
# bench/store.sh - durable submit throughput: --store sqlite against --store memory, same run.
#
# Starts a release build of jobpool twice per round, one store at a time, never together, in
# alternating order, and loads POST /v1/jobs with ../shared/bench/run.sh (wrk, 127.0.0.1 only).
# With SQLite every 202 is sent only after its row is committed with synchronous=FULL; group
# commit is what keeps that fast. Prints the medians and RATIO (sqlite / memory).
# Every server started here is stopped by process group on exit.
#
# Usage: bench/store.sh          (ROUNDS [3], DURATION [10s], CONNS [64], THREADS [2])
#        JOBPOOL_BINARY=/path/to/jobpool bench/store.sh   (an older build, for before/after)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
shared="${SHARED_BENCH:-$repo/../shared/bench}"
# shellcheck source=/dev/null
source "$shared/lib/servers.sh"
trap 'stop_all_servers' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${JOBPOOL_BINARY:-}" ]]; then
    binary="$JOBPOOL_BINARY" # an older build, for before/after in one session
else
    swift build -c release --package-path "$repo" >&2
    binary="$(swift build -c release --package-path "$repo" --show-bin-path)/jobpool"
fi
rounds="${ROUNDS:-3}"
port="${PORT_BASE:-18103}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-store.XXXXXX")"
export JOBS_PATH=/v1/jobs MODES=post
export JOB_BODY='{"kind":"write_code","input":{"name":"alex","max_seconds":0}}'

measure() { # LABEL STORE ROUND
    local label="$1" store="$2" round="$3" line
    start_server "$label" "$port" "$work/$label-$round.log" \
        "exec '$binary' serve --host 127.0.0.1 --port $port --max-queued 10000000 --log-level warning --store $store"
    line="$("$shared/run.sh" "http://127.0.0.1:$port" "$label" | grep '^BENCH')"
    stop_server "$SERVER_PID"
    echo "$line round=$round"
}

results="$work/results.txt"
for round in $(seq 1 "$rounds"); do
    rm -f "$work"/jobs.sqlite*
    if (( round % 2 )); then
        measure memory memory "$round" | tee -a "$results"
        measure sqlite "sqlite:$work/jobs.sqlite" "$round" | tee -a "$results"
    else
        measure sqlite "sqlite:$work/jobs.sqlite" "$round" | tee -a "$results"
        measure memory memory "$round" | tee -a "$results"
    fi
done
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
memory=$(grep 'label=memory' "$results" | sed 's/.*rps=\([0-9.]*\).*/\1/' | median)
sqlite=$(grep 'label=sqlite' "$results" | sed 's/.*rps=\([0-9.]*\).*/\1/' | median)
echo "MEDIAN label=memory mode=post rps=$memory n=$rounds"
echo "MEDIAN label=sqlite mode=post rps=$sqlite n=$rounds"
awk -v s="$sqlite" -v m="$memory" 'BEGIN { printf "RATIO mode=post label=sqlite/memory rps=%.3f\n", s / m }'
