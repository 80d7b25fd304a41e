#!/usr/bin/env bash
# bench/compare.sh - jobpool against the C evhttp reference, same machine, same run.
#
# Runs ../shared/bench/compare.sh (alternating rounds, medians, RATIO lines) against a release
# build of `jobpool serve`. Every POST is a real write_code job with max_seconds 0, so jobs
# really run on the workers while the front end is measured. Load goes to 127.0.0.1 only, and
# the harness stops every server it started.
#
# Usage: bench/compare.sh            (ROUNDS, DURATION, ... as ../shared/bench/README.md says)
#        SHARED_BENCH=/path/to/shared/bench bench/compare.sh
#        LOG_LEVEL=info bench/compare.sh       (default warning: info adds the access log)
#        JOBPOOL_BINARY=/path/to/jobpool bench/compare.sh   (an older build, for before/after)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
shared="${SHARED_BENCH:-$repo/../shared/bench}"
[[ -x "$shared/compare.sh" ]] || { echo "bench: $shared/compare.sh not found; set SHARED_BENCH" >&2; exit 2; }

if [[ -n "${JOBPOOL_BINARY:-}" ]]; then
    binary="$JOBPOOL_BINARY"
else
    swift build -c release --package-path "$repo" >&2
    binary="$(swift build -c release --package-path "$repo" --show-bin-path)/jobpool"
fi

export JOBS_PATH=/v1/jobs
export JOB_BODY='{"kind":"write_code","input":{"name":"alex","max_seconds":0}}'
export CAND_LABEL="${CAND_LABEL:-jobpool}"
# A 10 s POST phase at ~50k req/s submits ~500k jobs: give the queue room so that no 429
# spoils a round (the harness discards any round with an error reply).
# JOBPOOL_WRAPPER: a command put before the candidate (bench/events.sh holds event streams open with it).
exec "$shared/compare.sh" "${JOBPOOL_WRAPPER:+$JOBPOOL_WRAPPER }$binary serve --host 127.0.0.1 --port {port} --max-queued 10000000 --log-level ${LOG_LEVEL:-warning} --store ${STORE:-memory}"
