#!/usr/bin/env bash
# docker/smoke.sh - the container image's runtime, checked without a Docker engine.
#
# 1. Builds the release binary with the same flags as docker/Dockerfile's builder stage.
# 2. Makes a minimal Debian bookworm root (debootstrap --variant=minbase) holding only the
#    packages in docker/runtime-packages.txt, the same list the Dockerfile installs.
# 3. Runs the binary inside that root (chroot), submits a job over 127.0.0.1 and polls it to
#    success: a missing runtime library would fail here.
# Every step is bounded in time; the server is stopped by PID and the root removed on exit.
# Nothing is cached between runs. Needs root, debootstrap and python3.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

work="$(mktemp -d "${TMPDIR:-/tmp}/jobpool-smoke.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    umount "$work/root/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The image's builder stage sees only what its COPY lines name, less what .dockerignore leaves
# out: SwiftPM must find every target's folder there (Package.swift names the test targets too).
echo "smoke: checking the Dockerfile's build context holds the whole package"
mkdir -p "$work/context"
for source in $(awk '/^FROM / { stage++ } stage == 1 && /^COPY / && !/--from/ { print $2 }' docker/Dockerfile); do
    if grep -qx "$source" .dockerignore; then
        echo "smoke: docker/Dockerfile copies $source, which .dockerignore leaves out" >&2
        exit 1
    fi
    cp -r "$source" "$work/context/"
done
(cd "$work/context" && timeout 600 swift package describe --type json >/dev/null) ||
    { echo "smoke: SwiftPM cannot load the package from the Dockerfile's build context" >&2; exit 1; }

echo "smoke: building the release binary (--static-swift-stdlib, as the Dockerfile does)"
timeout 1800 swift build -c release --static-swift-stdlib --product jobpool --scratch-path .build-static >&2
binary="$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/jobpool"

# The Debian mirror this machine's apt already uses, so that no host is hard-coded here.
mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)"
packages="$(grep -v '^#' docker/runtime-packages.txt | grep -v '^$' | paste -sd, -)"
echo "smoke: debootstrap bookworm (minbase) with: $packages"
timeout 1200 debootstrap --variant=minbase --include="$packages" bookworm "$work/root" ${mirror:+"$mirror"} >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

install -D -m 0755 "$binary" "$work/root/usr/local/bin/jobpool"
mount -t proc proc "$work/root/proc"
echo "smoke: starting jobpool in the minimal root"
chroot "$work/root" /usr/local/bin/jobpool serve --host 127.0.0.1 --port 0 --store sqlite:/data/jobpool.sqlite \
    >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 300); do
    port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "smoke: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

python3 - "$port" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
# urllib would declare the body a form (application/x-www-form-urlencoded), which jobpool refuses.
request = urllib.request.Request(base + "/v1/jobs", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"kind": "write_code", "input": {"name": "smoke", "max_seconds": 0.2}}).encode())
with urllib.request.urlopen(request, timeout=10) as response:
    job = json.loads(response.read())
deadline = time.time() + 30
while time.time() < deadline:
    with urllib.request.urlopen(f"{base}/v1/jobs/{job['id']}?wait=5", timeout=10) as response:
        job = json.loads(response.read())
    if job["status"] == "succeeded":
        print(f"smoke: job {job['id']} succeeded in the minimal root: {job['result']}")
        sys.exit(0)
print(f"smoke: job did not succeed: {job}", file=sys.stderr)
sys.exit(1)
PY
chroot "$work/root" /usr/local/bin/jobpool healthcheck --url "http://127.0.0.1:$port/healthz"
echo "smoke: healthcheck passed"
