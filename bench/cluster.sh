#!/usr/bin/env bash
# bench/cluster.sh - jobpool on PostgreSQL (1, 2 and 3 nodes) against single-node SQLite, end to end
# (issue 16).
#
# Each round runs, one setup at a time and in alternating order: one node on SQLite, then one, two
# and three nodes on one PostgreSQL database. Each submits JOBS write_code jobs (max_seconds 0) as
# POST /v1/jobs/batch of BATCH from CLIENTS connections, spread over the nodes, and counts jobs per
# second from the first submit until /v1/stats shows every one succeeded. Single nodes also get a
# paced POST /v1/jobs at LATENCY_RATE/s for LATENCY_SECONDS (p50/p99 from when each was due).
# Last, the rescue time after kill -9 with the default lease (30 s) and heartbeat (5 s): a job runs
# on one node, a second node starts, the first is killed, and the clock runs until the second runs
# attempt 2 (target: lease + 2 heartbeats).
#
# Durable on both sides: PostgreSQL keeps its defaults (fsync=on, synchronous_commit=on; the
# machine line prints them); SQLite runs with synchronous=FULL. A 202 is sent only after the commit.
#
# PostgreSQL is a private cluster in a temporary folder, on a Unix socket only (no TCP port). Every
# process is stopped by PID on exit; traffic goes to 127.0.0.1 only.
#
# Usage: bench/cluster.sh   (JOBS [20000], BATCH [100], CLIENTS [8], ROUNDS [3], RESCUE [1])
#        JOBPOOL_BINARY=/path/to/jobpool bench/cluster.sh
#        SERVER_CPUS / LOAD_CPUS: taskset lists for the nodes and for the load client (PostgreSQL
#        itself is not pinned)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
if [[ -z "${JOBPOOL_BINARY:-}" ]]; then
    swift build -c release --package-path "$repo" --product jobpool >&2
    JOBPOOL_BINARY="$(swift build -c release --package-path "$repo" --show-bin-path)/jobpool"
fi
pin=()
[[ -z "${LOAD_CPUS:-}" ]] || pin=(taskset -c "$LOAD_CPUS")
# exec: the Python process stops its servers and PostgreSQL on exit, TERM and INT.
exec "${pin[@]}" python3 -u "$here/cluster_bench.py" --binary "$JOBPOOL_BINARY"
