#!/usr/bin/env bash
# The whole test suite: the README's test command, and what CI runs.
#
# 1. `swift build --build-tests`: the tests and the `jobpool` binary that some tests start.
#    With CI=true, any compiler warning in the project's own code fails the run.
# 2. `swift test`: every unit and integration test, three times for the API tests: against the
#    in-memory store, against SQLite, and against PostgreSQL (JOBPOOL_TEST_STORE). Traffic stays
#    on 127.0.0.0/8, ::1 and Unix sockets. The PostgreSQL store tests and pass start a private
#    cluster of their own (one per test process, in a temporary folder, Unix socket only, stopped
#    at exit); without PostgreSQL's programs they are skipped and say so, except under CI=true,
#    where they fail instead.
# 3. With CI=true (or JOBPOOL_SLOW_TESTS=1): the crash test (kill -9 under load, five times)
#    and the fault test (full disk and read-only store, in a private mount namespace), against
#    the jobpool binary. They take about a minute together. Then the cluster tests
#    (Tests/JobAPITests/Cluster, enabled by JOBPOOL_CLUSTER_TESTS=1): three `jobpool serve`
#    processes on one PostgreSQL database, killed with -9, paused past their lease, cut off
#    from their listener, and the database stopped for 5 s, under load. A few minutes.
# 4. The tests that could make the server reach further (a DNS lookup of a name under
#    .invalid, fuzzed URLs with the address guard opened, the egress proxy) run again inside a
#    new network namespace that has only loopback, where they are enabled by
#    JOBPOOL_NETNS_TESTS=1. Outside such a namespace they are skipped.
# 5. With CI=true (or JOBPOOL_SLOW_TESTS=1): schemathesis against the live server and
#    openapi/openapi.yaml, in the loopback-only namespace (fuzzed bodies hold URLs the server
#    would fetch). It needs schemathesis: JOBPOOL_SCHEMATHESIS names the executable, or it is
#    installed into a virtual environment under .build-venv. About six minutes.
# 6. With CI=true (or JOBPOOL_BROWSER_TESTS=1): the dashboard at /ui/ in headless Chromium,
#    driven by Selenium, with axe-core (Tests/browser/dashboard_test.py), in the loopback-only
#    namespace (Chromium phones home on its own). It needs Debian's chromium and
#    chromium-driver; selenium and selenium-axe-python go into .build-venv first. About a
#    minute; screenshots land in Tests/artifacts/.
#
# Every part runs even when an earlier one failed (a build failure stops the rest, since they
# need it); the summary at the end names each part that failed, and the exit code is 1 if any did.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

slow=false
if [ "${CI:-}" = "true" ] || [ "${JOBPOOL_SLOW_TESTS:-}" = "1" ]; then slow=true; fi
failed=()

# Runs one part, timing it and noting a failure without stopping.
part() {
    local name="$1"; shift
    local started=$SECONDS
    echo "Tests/run.sh: == $name"
    if "$@"; then
        echo "Tests/run.sh: == $name: passed in $((SECONDS - started)) s"
    else
        echo "Tests/run.sh: == $name: FAILED (exit $?) after $((SECONDS - started)) s"
        failed+=("$name")
    fi
}

# Builds the tests and the binary; with CI=true, fails on a warning in the project's own code
# (dependencies' warnings, and the static linker's, are not ours to fix).
build() {
    local log
    log="$(mktemp)"
    swift build --build-tests 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || return "$status"
    if [ "${CI:-}" = "true" ]; then
        local warnings
        warnings="$(grep -E "^($PWD/(Sources|Tests)/[^:]+|macro expansion [^:]+):[0-9]+:[0-9]+: warning:" "$log" | sort -u)"
        if [ -n "$warnings" ]; then
            echo "Tests/run.sh: the project's own code has compiler warnings; fix them:" >&2
            echo "$warnings" >&2
            return 1
        fi
    fi
}

if [ "$(id -u)" -eq 0 ]; then unshare=(unshare --net); else unshare=(unshare --net --map-root-user); fi

in_namespace() {
    "${unshare[@]}" -- sh -c 'ip link set lo up && JOBPOOL_NETNS_TESTS=1 exec swift test --skip-build --filter NetworkNamespaceTests'
}

schemathesis_run() {
    local schemathesis="${JOBPOOL_SCHEMATHESIS:-}"
    if [ -z "$schemathesis" ]; then
        # Installed before entering the namespace, which has no network.
        python3 -m venv .build-venv && .build-venv/bin/pip install --quiet schemathesis || return 1
        schemathesis="$PWD/.build-venv/bin/schemathesis"
    fi
    (cd Tests/scripts && timeout 1200 "${unshare[@]}" -- sh -c \
        "ip link set lo up && exec python3 -u contract_fuzz.py '$binary' '$schemathesis'")
}

browser_run() {
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        echo "Tests/run.sh: the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2
        return 1
    fi
    # Installed before entering the namespace, which has no network. selenium-axe-python 2.2.0
    # bundles axe-core 4.9 (axe-selenium-python would bring a 2018 axe-core on Python 3.11).
    python3 -m venv .build-venv && .build-venv/bin/pip install --quiet selenium 'selenium-axe-python==2.2.0' || return 1
    timeout 900 "${unshare[@]}" -- sh -c \
        "ip link set lo up && SE_OFFLINE=true exec .build-venv/bin/python -u Tests/browser/dashboard_test.py '$binary'"
}

part "build" build
if [ ${#failed[@]} -gt 0 ]; then
    echo "Tests/run.sh: the build failed; nothing else can run" >&2
    exit 1
fi
binary="$(swift build --show-bin-path)/jobpool"

# The race stress tests spin and block threads on purpose; in a run of their own they cannot
# starve the timing of the integration tests that share the test process.
races="LifecycleRaceTests|CancelRacingRetryTests"
# One test at a time (about 95 s instead of 30): run together, 180 tests start dozens of servers
# and client processes at once on 2 cores, and tests that watch a job for a few seconds then
# missed their window now and then. Plain `swift test` still runs them in parallel.
# Every API test runs against each store through the real server: memory, SQLite, PostgreSQL.
part "swift test (memory store)" env JOBPOOL_TEST_STORE=memory swift test --skip-build --no-parallel --skip "$races" "$@"
part "swift test (SQLite store)" env JOBPOOL_TEST_STORE=sqlite swift test --skip-build --no-parallel --skip "$races" \
    --filter JobAPITests "$@"
# True if PostgreSQL's programs are installed; otherwise says that `$1` is skipped.
postgres_installed() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${JOBPOOL_PG_BIN:-}" ]; then
        echo "Tests/run.sh: PostgreSQL's programs are not installed (apt-get install postgresql libpq-dev); $1 is skipped" >&2
        return 1
    fi
}
# Runs a test command that uses the private PostgreSQL cluster, then checks that nothing of
# the cluster was left running: the cluster is stopped at exit (or by its watchdog within a
# second), and the jobpool processes that tests start name its folder in their --store.
with_test_cluster() {
    "$@"
    local status=$?
    sleep 2
    if pgrep -f 'jobpool-pg-' >/dev/null; then
        echo "Tests/run.sh: processes of the test cluster (PostgreSQL, or jobpool on it) were left running:" >&2
        pgrep -af 'jobpool-pg-' >&2
        return 1
    fi
    return "$status"
}
postgres_pass() {
    if ! postgres_installed "the PostgreSQL pass"; then [ "${CI:-}" != "true" ]; return; fi
    with_test_cluster env JOBPOOL_TEST_STORE=postgres swift test --skip-build --no-parallel --skip "$races" --filter JobAPITests "$@"
}
part "swift test (PostgreSQL store)" postgres_pass "$@"
part "race stress tests" swift test --skip-build --filter "$races"

if $slow; then
    part "crash test (kill -9 under load)" bash -c "cd Tests/scripts && timeout 600 python3 -u crash_test.py '$binary' 5"
    part "fault test (full disk, read-only store)" timeout 600 Tests/scripts/faults.sh "$binary"
    cluster_tests() {
        if ! postgres_installed "the cluster test"; then [ "${CI:-}" != "true" ]; return; fi
        with_test_cluster timeout 900 env JOBPOOL_CLUSTER_TESTS=1 swift test --skip-build --no-parallel --filter ClusterTests
    }
    part "cluster tests (three nodes on PostgreSQL)" cluster_tests
fi

if "${unshare[@]}" true 2>/dev/null; then
    part "network-namespace tests (loopback only)" in_namespace
    if $slow; then part "schemathesis (loopback only)" schemathesis_run; fi
    if $slow || [ "${JOBPOOL_BROWSER_TESTS:-}" = "1" ]; then part "browser tests (loopback only)" browser_run; fi
else
    echo "Tests/run.sh: cannot create a network namespace here; the namespace tests were skipped" >&2
    if [ "${CI:-}" = "true" ]; then failed+=("network namespace"); fi
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "Tests/run.sh: FAILED parts: $(IFS=,; echo "${failed[*]}")" >&2
    exit 1
fi
echo "Tests/run.sh: every part passed"
