#!/usr/bin/env bash
# bench/slowloris.sh - normal requests while --max-connections + 1,000 clients trickle a byte a second.
#
# Starts a release `jobpool serve` on 127.0.0.1 (a free port, memory store, default
# --max-connections), opens MAX_CONNECTIONS + EXTRA connections that each send one request-head
# byte a second and reconnect when closed, waits WARMUP seconds for them to take every slot,
# then sends PROBES normal requests, each on a new connection, and counts those answered
# within PROBE_TIMEOUT seconds. Traffic goes only to 127.0.0.1; every process started here is
# stopped by its PID on exit.
#
# Usage: bench/slowloris.sh [BINARY]       (default: a release build of this package)
# Knobs: MAX_CONNECTIONS (10000, jobpool's default), EXTRA (1000), WARMUP (20), PROBES (100),
#        PROBE_TIMEOUT (2), SERVER_CPUS / LOAD_CPUS (taskset CPU lists, e.g. 0 and 1)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
binary="${1:-}"
if [ -z "$binary" ]; then
    swift build -c release --package-path "$repo" --product jobpool >&2
    binary="$(swift build -c release --package-path "$repo" --show-bin-path)/jobpool"
fi
max_connections="${MAX_CONNECTIONS:-10000}"
extra="${EXTRA:-1000}"
warmup="${WARMUP:-20}"
probes="${PROBES:-100}"
probe_timeout="${PROBE_TIMEOUT:-2}"
attackers=$((max_connections + extra))
# Runs a command in place of the calling (sub)shell, so that `pin ... &` leaves in $! the PID of
# the command itself, which cleanup can stop.
pin() { local cpus="$1"; shift; if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi; }

# The attacker holds one descriptor per connection.
ulimit -n "$(( attackers + 1024 > $(ulimit -Hn) ? $(ulimit -Hn) : attackers + 1024 ))"
work="$(mktemp -d /tmp/bench-slowloris.XXXXXX)"
server_pid=""
attack_pid=""
cleanup() {
    for pid in $attack_pid $server_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $attack_pid $server_pid; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

pin "${SERVER_CPUS:-}" "$binary" serve --host 127.0.0.1 --port 0 --store memory --log-level info \
    --max-connections "$max_connections" --max-waiters $((max_connections * 45 / 100)) >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 300); do
    port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "slowloris: the server did not start" >&2; exit 1; }

attack_seconds=$((warmup + probes * (probe_timeout + 1) + 30))
pin "${LOAD_CPUS:-}" python3 -u "$here/slowloris.py" attack "$port" "$attackers" "$attack_seconds" >"$work/attack.log" 2>&1 &
attack_pid=$!
sleep "$warmup"
tail -n 1 "$work/attack.log" >&2
open_fds="$(ls /proc/"$server_pid"/fd | wc -l)"
echo "slowloris: server holds $open_fds descriptors with $attackers clients trickling (--max-connections $max_connections)" >&2
result="$(pin "${LOAD_CPUS:-}" python3 -u "$here/slowloris.py" probe "$port" "$probes" "$probe_timeout")"
tail -n 1 "$work/attack.log" >&2
echo "BENCH slowloris max_connections=$max_connections trickling=$attackers $result"
