#!/usr/bin/env python3
"""bench/store_scale.py - jobpool on a SQLite store holding a million finished jobs.

Run through bench/store-scale.sh, which picks the binary. The steps:

1. A real `jobpool serve --store sqlite:FILE` start makes the file (its own schema version),
   then stops. The finished jobs are written straight into that file with Python's sqlite3
   in one transaction (random v4 UUIDs, created over the last hour, 1 % failed and all of them
   among the oldest), which takes under a minute where a million POSTs would take an hour.
2. Start-up: the file's pages are read once (a warm page cache, as after a restart), then the
   server is started START_ROUNDS times; each time, the seconds from spawn until it answers
   GET /healthz, and the RSS after IDLE_SECONDS of idleness. Medians are reported.
3. Paced GETs at a fixed rate (an open-loop schedule: request i is due at t0 + i/rate; a late
   reply delays nothing, and its latency counts from when it was due, so a pause is not
   hidden): GET /v1/jobs/{id} of random old jobs, GET /v1/jobs?status=failed&limit=100,
   GET /v1/stats.
4. Mixed load at a fixed rate for MIXED_SECONDS (POST, GET of new and old jobs, lists,
   stats), sampling RSS every few seconds; the slope is fitted over the samples after the
   first WARM_FRACTION of the run (the cache filling up), in MB per minute.

Traffic goes to 127.0.0.1 only. Every server is started in its own session and stopped by
its process group (TERM, then KILL), on every path out, including Ctrl-C and SIGTERM.
Wrk is not used: it cannot hold a fixed rate.

Output: one `SCALE key=value ...` line per measurement, also written to --out.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid

STARTED = []  # Popen objects of servers started here


def stop(process, timeout=30):
    """TERM to the server's process group, then KILL if it has not exited."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process in STARTED:
        STARTED.remove(process)


def stop_all(*_):
    for process in list(STARTED):
        stop(process)


def on_signal(number, _frame):
    stop_all()
    sys.exit(128 + number)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def warm(path):
    """Reads the store's files once, so that a start finds them in the page cache."""
    for name in (path, path + "-wal"):
        if os.path.exists(name):
            with open(name, "rb") as f:
                while f.read(1 << 22):
                    pass


class Server:
    """One jobpool process on 127.0.0.1:port, pinned with taskset when SERVER_CPUS is set."""

    def __init__(self, binary, store, log, extra):
        self.port = free_port()
        command = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--store", store,
                   "--log-level", "warning"] + extra
        cpus = os.environ.get("SERVER_CPUS")
        if cpus:
            command = ["taskset", "-c", cpus] + command
        self.log = open(log, "ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        STARTED.append(self.process)
        self.startup = self.wait_ready()

    def wait_ready(self, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited during start-up (status {self.process.returncode}); see {self.log.name}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                connection.close()
                return time.monotonic() - self.started
            except OSError:
                time.sleep(0.005)
        raise SystemExit(f"the server did not answer within {timeout} s; see {self.log.name}")

    @property
    def pid(self):
        # taskset execs the server, so the PID is the server's own.
        return self.process.pid

    def stop(self):
        stop(self.process)
        self.log.close()


# --- the fill ---------------------------------------------------------------------------------

def fill(path, count, failed_fraction, ids_path, sample):
    """Writes `count` finished jobs into the jobs table of an existing jobpool file."""
    database = sqlite3.connect(path, isolation_level=None)
    database.execute("PRAGMA synchronous = OFF")
    columns = {row[1] for row in database.execute("PRAGMA table_info(jobs)")}
    now = int(time.time() * 1_000_000)
    spacing = 3_000  # microseconds between creations: a million jobs over the last 50 minutes
    first = now - count * spacing - 60_000_000
    failed = int(count * failed_fraction)
    wanted = ["created_at", "id", "kind", "status", "input", "result", "error_code", "error_message", "started_at",
              "finished_at", "attempt", "max_attempts"]
    if "error_status" in columns:
        wanted.append("error_status")
    sql = f"INSERT INTO jobs ({', '.join(wanted)}) VALUES ({', '.join('?' * len(wanted))})"
    rng = random.Random(15)
    sample_every = max(1, count // sample)
    chosen = []

    def rows():
        for i in range(count):
            created = first + i * spacing
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            name = f"job-{i}"
            if i % sample_every == 0:
                chosen.append(job_id)
            if i < failed:
                row = [created, job_id, "write_code", "failed", json.dumps({"name": name}), None, "http_status",
                       "The target answered 503.", created + 1000, created + 900_000, 1, 3]
            else:
                row = [created, job_id, "write_code", "succeeded", json.dumps({"name": name}),
                       json.dumps({"name": name, "lines": 3 + i % 40}), None, None, created + 1000, created + 900_000, 1, 3]
            if "error_status" in columns:
                row.append(503 if i < failed else None)
            yield row

    started = time.monotonic()
    database.execute("BEGIN")
    database.executemany(sql, rows())
    tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    triggers = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    if "job_counts" in tables and not triggers:
        # Since v6 the store's writer counts finished jobs; rows written here bypass it.
        for status, number in (("failed", failed), ("succeeded", count - failed)):
            database.execute("INSERT INTO job_counts (owner, kind, status, count) VALUES ('', 'write_code', ?, ?) "
                             "ON CONFLICT (owner, kind, status) DO UPDATE SET count = count + excluded.count", (status, number))
    database.execute("COMMIT")
    database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    rng.shuffle(chosen)
    with open(ids_path, "w") as f:
        f.write("\n".join(chosen) + "\n")
    return time.monotonic() - started


# --- the paced client -------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {}  # kind -> [seconds from due to reply]
        self.service = {}  # kind -> [seconds from send to reply]
        self.errors = {}
        self.statuses = {}
        self.unsent = 0

    def add(self, kind, due, sent, done, status):
        with self.lock:
            self.latencies.setdefault(kind, []).append(done - due)
            self.service.setdefault(kind, []).append(done - sent)
            self.statuses.setdefault(kind, {}).setdefault(status, 0)
            self.statuses[kind][status] += 1

    def fail(self, kind, error):
        with self.lock:
            self.errors.setdefault(kind, []).append(repr(error))


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Traffic:
    """What each kind of request asks."""

    POST_BODY = json.dumps({"kind": "write_code", "input": {"name": "alex", "max_seconds": 0}}).encode()

    def __init__(self, old_ids):
        self.old_ids = old_ids
        self.new_ids = []
        self.lock = threading.Lock()
        self.rng = random.Random(7)

    def request(self, kind):
        with self.lock:
            if kind == "get_old":
                return "GET", f"/v1/jobs/{self.rng.choice(self.old_ids)}", None
            if kind == "get_new":
                if self.new_ids:
                    return "GET", f"/v1/jobs/{self.rng.choice(self.new_ids[-5000:])}", None
                return "GET", f"/v1/jobs/{self.rng.choice(self.old_ids)}", None
        if kind == "reference_get":
            return "GET", "/jobs/1", None
        if kind == "list_failed":
            return "GET", "/v1/jobs?status=failed&limit=100", None
        if kind == "list_recent":
            return "GET", "/v1/jobs?limit=20", None
        if kind == "stats":
            return "GET", "/v1/stats", None
        if kind == "post":
            return "POST", "/v1/jobs", self.POST_BODY
        raise ValueError(kind)

    def answered(self, kind, body):
        if kind == "post":
            try:
                job_id = json.loads(body).get("id")
            except ValueError:
                return
            if job_id:
                with self.lock:
                    self.new_ids.append(job_id)
                    del self.new_ids[:-20000]


def pace(port, mix, rate, seconds, traffic, connections=4, on_tick=None):
    """Sends `rate` requests a second for `seconds`, spread over `connections` keep-alive
    connections, each holding its share of one open-loop schedule. `mix` maps a kind to its
    share. A server that cannot keep up falls behind the schedule; what is still unsent
    GRACE_SECONDS after the schedule's end is counted as `unsent`, so that a phase ends in
    bounded time. Returns the Recorder."""
    recorder = Recorder()
    kinds = [kind for kind, share in mix.items() for _ in range(max(1, round(share * 100)))]
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    deadline = start + seconds + float(os.environ.get("GRACE_SECONDS", 15))

    def worker(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rng = random.Random(index)
        for number in range(index, total, connections):
            if time.monotonic() > deadline:
                with recorder.lock:
                    recorder.unsent += len(range(number, total, connections))
                break
            due = start + number / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            kind = rng.choice(kinds)
            method, path, body = traffic.request(kind)
            sent = time.monotonic()
            try:
                headers = {"Content-Type": "application/json"} if body else {}
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                recorder.add(kind, due, sent, time.monotonic(), response.status)
                traffic.answered(kind, payload)
            except (OSError, http.client.HTTPException) as error:
                recorder.fail(kind, error)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        if on_tick:
            on_tick()
        for thread in threads:
            thread.join(timeout=0.5)
    return recorder


def report(out, phase, label, recorder, rate, seconds):
    lines = []
    for kind, values in sorted(recorder.latencies.items()):
        service = recorder.service[kind]
        statuses = ",".join(f"{status}:{n}" for status, n in sorted(recorder.statuses[kind].items()))
        lines.append(
            f"SCALE label={label} phase={phase} kind={kind} rate={rate:g} seconds={seconds:g} n={len(values)} "
            f"p50_ms={percentile(values, 0.5) * 1000:.3f} p99_ms={percentile(values, 0.99) * 1000:.3f} "
            f"max_ms={max(values) * 1000:.3f} service_p99_ms={percentile(service, 0.99) * 1000:.3f} "
            f"statuses={statuses} errors={len(recorder.errors.get(kind, []))} unsent_all_kinds={recorder.unsent}")
    for kind, errors in recorder.errors.items():
        if kind not in recorder.latencies:
            lines.append(f"SCALE label={label} phase={phase} kind={kind} n=0 errors={len(errors)} first_error={errors[0]!r}")
    emit(out, lines)


def emit(out, lines):
    for line in lines:
        print(line, flush=True)
        out.write(line + "\n")
        out.flush()


def slope_mb_per_minute(samples):
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 3:
        return float("nan")
    xs = [t for t, _ in samples]
    ys = [m for _, m in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    return 60 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else float("nan")


def measure_floor(out, reference, rate, seconds):
    """The client's own floor: the same paced GETs against the C reference server of
    ../shared/bench (one evhttp thread, a lookup in an array), in the same run, so that the
    jobpool figures can be read against what this machine and client give at best."""
    if not os.path.exists(reference):
        emit(out, [f"SCALE label=reference phase=floor skipped=no-{reference}"])
        return
    port = free_port()
    command = [reference, str(port)]
    cpus = os.environ.get("SERVER_CPUS")
    if cpus:
        command = ["taskset", "-c", cpus] + command
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    STARTED.append(process)
    try:
        deadline = time.monotonic() + 120  # the first use builds it
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("POST", "/jobs", body=b'{"n":1}', headers={"Content-Type": "application/json"})
                connection.getresponse().read()
                connection.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    emit(out, ["SCALE label=reference phase=floor skipped=did-not-start"])
                    return
                time.sleep(0.05)
        recorder = pace(port, {"reference_get": 1}, rate, seconds, Traffic([]))
        report(out, "floor", "reference", recorder, rate, seconds)
    finally:
        stop(process)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--label", default="jobpool")
    parser.add_argument("--work", required=True, help="folder for the store file and logs")
    parser.add_argument("--out", required=True, help="file the SCALE lines are appended to")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", 1_000_000)))
    parser.add_argument("--reuse", action="store_true", help="keep a filled store file from an earlier run")
    args = parser.parse_args()
    env = os.environ
    start_rounds = int(env.get("START_ROUNDS", 3))
    idle = float(env.get("IDLE_SECONDS", 3))
    get_rate, get_seconds = float(env.get("GET_RATE", 500)), float(env.get("GET_SECONDS", 30))
    list_rate, list_seconds = float(env.get("LIST_RATE", 50)), float(env.get("LIST_SECONDS", 30))
    stats_rate, stats_seconds = float(env.get("STATS_RATE", 100)), float(env.get("STATS_SECONDS", 20))
    mixed_rate, mixed_seconds = float(env.get("MIXED_RATE", 400)), float(env.get("MIXED_SECONDS", 300))
    warm_fraction = float(env.get("WARM_FRACTION", 0.4))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.work, "jobs.sqlite")
    ids_path = path + ".ids"
    log = os.path.join(args.work, f"{args.label}.log")
    help_text = subprocess.run([args.binary, "serve", "--help"], capture_output=True, text=True).stdout
    extra = []
    if "--cache-mb" in help_text and env.get("CACHE_MB"):
        extra += ["--cache-mb", env["CACHE_MB"]]
    out = open(args.out, "a")
    try:
        if not (args.reuse and os.path.exists(path) and os.path.exists(ids_path)):
            for name in (path, path + "-wal", path + "-shm", ids_path):
                if os.path.exists(name):
                    os.remove(name)
            Server(args.binary, "sqlite:" + path, log, extra).stop()  # the binary's own schema
            took = fill(path, args.jobs, 0.01, ids_path, 20_000)
            emit(out, [f"SCALE label={args.label} phase=fill jobs={args.jobs} seconds={took:.1f} "
                       f"file_mb={os.path.getsize(path) / 1e6:.0f}"])
        old_ids = [line.strip() for line in open(ids_path) if line.strip()]
        if env.get("FLOOR", "1") == "1":
            measure_floor(out, env.get("REFERENCE_SERVER", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench",
                                                                         "reference", "c", "serve.sh")), get_rate, get_seconds)

        startups, rsses = [], []
        server = None
        for round_number in range(start_rounds):
            if server:
                server.stop()
            warm(path)
            server = Server(args.binary, "sqlite:" + path, log, extra)
            time.sleep(idle)
            startups.append(server.startup)
            rsses.append(rss_mb(server.pid))
            emit(out, [f"SCALE label={args.label} phase=start round={round_number + 1} startup_s={server.startup:.3f} "
                       f"idle_rss_mb={rsses[-1]:.1f}"])
        emit(out, [f"SCALE label={args.label} phase=start median_startup_s={statistics.median(startups):.3f} "
                   f"median_idle_rss_mb={statistics.median(rsses):.1f} rounds={start_rounds}"])

        traffic = Traffic(old_ids)
        for phase, mix, rate, seconds in [("get_old", {"get_old": 1}, get_rate, get_seconds),
                                          ("list_failed", {"list_failed": 1}, list_rate, list_seconds),
                                          ("stats", {"stats": 1}, stats_rate, stats_seconds)]:
            recorder = pace(server.port, mix, rate, seconds, traffic)
            report(out, phase, args.label, recorder, rate, seconds)
        emit(out, [f"SCALE label={args.label} phase=after_reads rss_mb={rss_mb(server.pid):.1f}"])

        samples = []
        began = time.monotonic()
        next_sample = [began]

        def sample():
            now = time.monotonic()
            if now >= next_sample[0]:
                samples.append((now - began, rss_mb(server.pid)))
                next_sample[0] = now + 5

        mixed = {"post": 0.3, "get_new": 0.3, "get_old": 0.3, "list_recent": 0.05, "list_failed": 0.02, "stats": 0.03}
        recorder = pace(server.port, mixed, mixed_rate, mixed_seconds, traffic, on_tick=sample)
        sample()
        report(out, "mixed", args.label, recorder, mixed_rate, mixed_seconds)
        settled = [s for s in samples if s[0] >= warm_fraction * mixed_seconds]
        emit(out, [f"SCALE label={args.label} phase=mixed rss_start_mb={samples[0][1]:.1f} rss_end_mb={samples[-1][1]:.1f} "
                   f"rss_max_mb={max(m for _, m in samples):.1f} "
                   f"slope_mb_per_min={slope_mb_per_minute(settled):.2f} slope_from_s={warm_fraction * mixed_seconds:.0f} "
                   f"slope_whole_mb_per_min={slope_mb_per_minute(samples):.2f} samples={len(samples)}",
                   f"SCALE label={args.label} phase=mixed rss_series=" + ",".join(f"{t:.0f}:{m:.0f}" for t, m in samples)])
        server.stop()
    finally:
        stop_all()
        out.close()


if __name__ == "__main__":
    main()
