#!/usr/bin/env bash
# bench/store-scale.sh - jobpool on a SQLite store of a million finished jobs (issue 15).
#
# Fills a store made by a real `jobpool serve --store sqlite:FILE` start with JOBS finished jobs
# (1 % failed, all among the oldest), restarts on it with a warm page cache, and measures:
#   - start-up to answering /healthz, and RSS after start, idle (START_ROUNDS starts, medians);
#   - GET /v1/jobs/{id} of random old jobs at a fixed GET_RATE (500/s);
#   - GET /v1/jobs?status=failed&limit=100 at a fixed LIST_RATE (50/s);
#   - GET /v1/stats at a fixed STATS_RATE (100/s);
#   - MIXED_SECONDS (300) of mixed load at a fixed MIXED_RATE (400/s): POST, GET of new and old
#     jobs, lists, stats; RSS sampled every 5 s and its slope fitted after the first
#     WARM_FRACTION (0.4) of the run, once the cache has filled.
# Latencies are p50/p99 from when each request was due on a fixed schedule (bench/store_scale.py
# paces its own client: wrk cannot hold a rate), so a stall counts against every request it
# delays. Targets (issue 15): RSS <= 150 MB, start <= 2 s, GET p99 <= 2 ms, list p99 <= 20 ms,
# stats p99 <= 5 ms, RSS slope < 1 MB/min.
#
# Usage: JOBPOOL_BINARY=/path/to/jobpool bench/store-scale.sh [LABEL]
#   JOBPOOL_BINARY  the server to measure (default: a release build of this checkout)
#   JOBS            finished jobs to store (1000000)
#   CACHE_MB        passed as --cache-mb when the binary has it (default: the binary's own)
#   REUSE=1         keep the filled file of an earlier run with the same WORK folder
#   WORK            folder for the store and logs (default: a new /tmp/bench-store-scale.*)
#   OUT             file the SCALE lines are appended to (default: WORK/results.txt)
#   SERVER_CPUS / LOAD_CPUS   taskset CPU lists for the server and for the client
#
# Traffic goes to 127.0.0.1 only; every server is stopped by its process group on exit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
label="${1:-jobpool}"
if [[ -z "${JOBPOOL_BINARY:-}" ]]; then
    swift build -c release --package-path "$repo" >&2
    JOBPOOL_BINARY="$(swift build -c release --package-path "$repo" --show-bin-path)/jobpool"
fi
work="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/bench-store-scale.XXXXXX")}"
mkdir -p "$work"
out="${OUT:-$work/results.txt}"
echo "store-scale: binary $JOBPOOL_BINARY, work $work, results $out" >&2
echo "SCALE label=$label phase=machine date=$(date -u +%FT%TZ) cpus=$(nproc) kernel=$(uname -r) binary=$JOBPOOL_BINARY" >>"$out"
pin=()
[[ -z "${LOAD_CPUS:-}" ]] || pin=(taskset -c "$LOAD_CPUS")
reuse=()
[[ "${REUSE:-}" != 1 ]] || reuse=(--reuse)
# exec: the Python process stops its servers on exit, TERM and INT.
exec "${pin[@]}" python3 "$here/store_scale.py" --binary "$JOBPOOL_BINARY" --label "$label" --work "$work" --out "$out" "${reuse[@]}"
