#!/usr/bin/env bash
# bench/events.sh - what open dashboards cost: POST throughput of jobpool alone, and with STREAMS
# (100) GET /v1/events streams held open, each measured against the C reference in alternating
# rounds in the same session (bench/compare.sh, POST phase only). Prints both RATIO lines, the
# streams' cost as a share of POST throughput, and the readers' verdict: every stream must have
# received every event (no gap in the IDs), or a reset after which it reconnected.
#
# Usage: bench/events.sh            (ROUNDS, DURATION, SERVER_CPUS, LOAD_CPUS, ... as compare.sh)
#        STREAMS=10 bench/events.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export STREAMS="${STREAMS:-100}"
export MODES="${MODES:-post}"

if [[ -z "${JOBPOOL_BINARY:-}" ]]; then
    swift build -c release --package-path "$repo" >&2
    JOBPOOL_BINARY="$(swift build -c release --package-path "$repo" --show-bin-path)/jobpool"
fi
export JOBPOOL_BINARY
work="$(mktemp -d /tmp/bench-events-XXXXXX)"
export STREAM_READER="$work/stream_reader"
export STREAMS_SUMMARY_DIR="$work"
cc -O2 -Wall -o "$STREAM_READER" "$here/events/stream_reader.c"

echo "== jobpool alone" >&2
STREAMS=0 CAND_LABEL=jobpool JOBPOOL_WRAPPER="$here/events/with_streams.sh" "$here/compare.sh" | tee "$work/alone.txt"
echo "== jobpool with $STREAMS open event streams" >&2
CAND_LABEL="jobpool+${STREAMS}streams" JOBPOOL_WRAPPER="$here/events/with_streams.sh" "$here/compare.sh" | tee "$work/streams.txt"

alone="$(sed -n 's/^RATIO mode=post .* rps=\([0-9.]*\) .*/\1/p' "$work/alone.txt")"
with="$(sed -n 's/^RATIO mode=post .* rps=\([0-9.]*\) .*/\1/p' "$work/streams.txt")"
echo "STREAMS verdicts (one per round):"
cat "$work"/streams-*.json
python3 - "$alone" "$with" "$work" <<'PY'
import glob, json, statistics, sys
alone, with_streams, work = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
verdicts = [json.loads(open(path).read()) for path in sorted(glob.glob(f"{work}/streams-*.json"))]
servers = [json.loads(open(path).read()) for path in sorted(glob.glob(f"{work}/server-*.json"))]
def cpu_per_job(streams):
    """The server's CPU microseconds per job submitted (and run), per round."""
    rounds = [1e6 * s["cpu_seconds"] / s["jobs"] for s in servers if s["streams"] == streams and s["jobs"] > 0]
    return (statistics.median(rounds) if rounds else float("nan")), rounds
cpu_alone, rounds_alone = cpu_per_job(0)
cpu_with, rounds_with = cpu_per_job(verdicts[0]["streams"] if verdicts else -1)
ok = bool(verdicts) and all(v["gaps"] == 0 and v["refused"] == 0 and v["fewest_per_stream"] > 0 for v in verdicts)
print(f"EVENTS streams={verdicts[0]['streams'] if verdicts else 0} ratio_alone={alone:.3f} ratio_with_streams={with_streams:.3f} "
      f"throughput_cost={100 * (1 - with_streams / alone):.1f}%")
print(f"EVENTS server_cpu_us_per_job alone={cpu_alone:.1f} {['%.1f' % r for r in rounds_alone]} "
      f"with_streams={cpu_with:.1f} {['%.1f' % r for r in rounds_with]} server_cost={100 * (cpu_with / cpu_alone - 1):.1f}%")
print(f"EVENTS every_event_or_reset={'yes' if ok else 'NO'} resets={sum(v['resets'] for v in verdicts)} "
      f"reconnects={sum(v['reconnects'] for v in verdicts)} events_per_stream={[v['most_per_stream'] for v in verdicts]} "
      f"MB_per_stream={[round(v['bytes'] / v['streams'] / 1e6, 1) for v in verdicts]}")
sys.exit(0 if ok else 1)
PY
