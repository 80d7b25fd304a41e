#!/usr/bin/env bash
# The whole test suite: the README's test command, and what CI runs.
#
# 1. `swift test`: every unit and integration test. All traffic stays on 127.0.0.0/8 and ::1.
# 2. (last) The tests that could make the server reach further (a DNS lookup of a name under
#    .invalid, fuzzed URLs with the address guard opened) run again inside a new network
#    namespace that has only loopback, where they are enabled by JOBPOOL_NETNS_TESTS=1.
#    Outside such a namespace they are skipped.
# 3. With CI=true (or JOBPOOL_SLOW_TESTS=1): the crash test (kill -9 under load, five times)
#    and the fault test (full disk and read-only store, in a private mount namespace), against
#    the jobpool binary. They take about a minute together.
# 4. With CI=true (or JOBPOOL_SLOW_TESTS=1): schemathesis against the live server and
#    openapi/openapi.yaml, in the loopback-only namespace (fuzzed bodies hold URLs the server
#    would fetch). It needs schemathesis: JOBPOOL_SCHEMATHESIS names the executable, or it is
#    installed into a virtual environment under .build-venv. About six minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

swift test "$@"

if [ "${CI:-}" = "true" ] || [ "${JOBPOOL_SLOW_TESTS:-}" = "1" ]; then
    swift build --product jobpool
    binary="$(swift build --show-bin-path)/jobpool"
    echo "Tests/run.sh: crash test (kill -9 under load)"
    (cd Tests/scripts && timeout 600 python3 -u crash_test.py "$binary" 5)
    echo "Tests/run.sh: fault test (full disk, read-only store)"
    timeout 600 Tests/scripts/faults.sh "$binary"
fi

if [ "$(id -u)" -eq 0 ]; then unshare=(unshare --net); else unshare=(unshare --net --map-root-user); fi
if "${unshare[@]}" true 2>/dev/null; then
    echo "Tests/run.sh: running the network-namespace tests (loopback only)"
    "${unshare[@]}" -- sh -c 'ip link set lo up && JOBPOOL_NETNS_TESTS=1 exec swift test --skip-build --filter NetworkNamespaceTests'
    if [ "${CI:-}" = "true" ] || [ "${JOBPOOL_SLOW_TESTS:-}" = "1" ]; then
        schemathesis="${JOBPOOL_SCHEMATHESIS:-}"
        if [ -z "$schemathesis" ]; then
            # Installed before entering the namespace, which has no network.
            python3 -m venv .build-venv
            .build-venv/bin/pip install --quiet schemathesis
            schemathesis="$PWD/.build-venv/bin/schemathesis"
        fi
        echo "Tests/run.sh: schemathesis against the live server (loopback only)"
        (cd Tests/scripts && timeout 1200 "${unshare[@]}" -- sh -c \
            "ip link set lo up && exec python3 -u contract_fuzz.py '$binary' '$schemathesis'")
    fi
else
    echo "Tests/run.sh: cannot create a network namespace here; the namespace tests were skipped" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
