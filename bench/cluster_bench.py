#!/usr/bin/env python3
"""bench/cluster_bench.py - jobpool on PostgreSQL against SQLite, measured end to end (issue 16).

Started by bench/cluster.sh, which says what is measured and how to run it. This file owns every
process it starts: a private PostgreSQL cluster (Unix socket only, in a temporary folder, with
PostgreSQL's durable defaults: fsync and synchronous_commit on) and the jobpool nodes. All of them
are stopped, by PID, on every path (exit, SIGTERM, SIGINT). Traffic goes to 127.0.0.1 only.
"""
import argparse
import glob
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# The worker count of every node in the throughput runs (the same for SQLite and PostgreSQL).
WORKERS = ["--workers", os.environ["WORKERS"]] if os.environ.get("WORKERS") else []
STARTED = []  # (Popen, label) of everything this script started, newest last


def log(message):
    print(f"cluster-bench: {message}", file=sys.stderr, flush=True)


def stop_process(process, sig=signal.SIGTERM, timeout=15):
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_everything():
    for process, _ in reversed(STARTED):
        stop_process(process)
    STARTED.clear()


class Postgres:
    """A private cluster: initdb in a temporary folder, socket only, durable defaults."""

    def __init__(self, work):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        if os.environ.get("JOBPOOL_PG_BIN"):
            bins.insert(0, os.environ["JOBPOOL_PG_BIN"])
        bins = [b for b in bins if os.path.exists(f"{b}/initdb")]
        if not bins:
            sys.exit("cluster-bench: PostgreSQL's programs are not installed (apt-get install postgresql)")
        self.bin = bins[0]
        self.folder = tempfile.mkdtemp(prefix="jobpool-pgb-", dir="/tmp")
        self.run_as = ["/usr/sbin/runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if self.run_as:
            shutil.chown(self.folder, "postgres")
        subprocess.run(self.run_as + [f"{self.bin}/initdb", "-D", f"{self.folder}/data", "-A", "trust",
                                      "-U", "postgres"], check=True, stdout=subprocess.DEVNULL)
        # Durable defaults on purpose: no fsync=off, no synchronous_commit=off. More connections
        # than the default 100, for three nodes' pools.
        subprocess.run(self.run_as + [f"{self.bin}/pg_ctl", "-D", f"{self.folder}/data", "-l",
                                      f"{self.folder}/pg.log", "-w", "start", "-o",
                                      f"-k {self.folder} -c listen_addresses='' -c max_connections=200"],
                       check=True, stdout=subprocess.DEVNULL)
        self.work = work

    def psql(self, database, sql):
        out = subprocess.run(self.run_as + [f"{self.bin}/psql", "-h", self.folder, "-U", "postgres", "-d",
                                            database, "-At", "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def make_database(self, name):
        self.psql("postgres", f"DROP DATABASE IF EXISTS {name}")
        self.psql("postgres", f"CREATE DATABASE {name}")
        return f"postgresql://postgres@/{name}?host={self.folder}"

    def settings(self):
        return {name: self.psql("postgres", f"SHOW {name}") for name in
                ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")}

    def stop(self):
        subprocess.run(self.run_as + [f"{self.bin}/pg_ctl", "-D", f"{self.folder}/data", "-m", "fast", "-w",
                                      "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.folder, ignore_errors=True)


def quiet_disk(postgres):
    """Each setup starts from a quiet machine: no autovacuum still at work on the previous
    setup's database (each is dropped after its run), PostgreSQL checkpointed, and the kernel
    has written back what the previous setup left dirty. Both stores fsync every commit, so without this the
    setup that follows another pays for its write-back (measured: SQLite's rounds ranged from
    17k to 43k jobs/s depending on what ran before them)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and postgres.psql(
            "postgres", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'") != "0":
        time.sleep(0.2)
    postgres.psql("postgres", "CHECKPOINT")
    os.sync()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary, store, label, work, extra=(), pin=None):
        self.port = free_port()
        self.label = label
        self.log_path = f"{work}/{label}.log"
        command = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                   "--max-queued", "10000000", "--store", store, *WORKERS, *extra]
        if pin:
            command = ["taskset", "-c", pin] + command
        self.process = subprocess.Popen(command, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        STARTED.append((self.process, label))
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                sys.exit(f"cluster-bench: {label} exited at start; see {self.log_path}")
            try:
                status, _ = request(self.port, "GET", "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"cluster-bench: {label} not ready within 60 s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self):
        stop_process(self.process)


def request(port, method, path, body=None, connection=None, timeout=30):
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if own:
            connection.close()


def succeeded_count(port):
    status, body = request(port, "GET", "/v1/stats")
    assert status == 200, body
    return json.loads(body)["by_state"]["succeeded"]


def batch_body(size):
    spec = {"kind": "write_code", "input": {"name": "bench", "max_seconds": 0}}
    return json.dumps({"jobs": [spec] * size}).encode()


def throughput(nodes, jobs, batch, clients, label):
    """Submits `jobs` write_code jobs (max_seconds 0) as batches spread over the nodes, and waits
    until every one has succeeded: jobs per second from the first submit to the last finish."""
    base = succeeded_count(nodes[0].port)
    body = batch_body(batch)
    batches = jobs // batch
    next_batch = iter(range(batches))
    lock = threading.Lock()
    errors = []
    latencies = []

    def client(index):
        node = nodes[index % len(nodes)]
        connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        while True:
            with lock:
                number = next(next_batch, None)
            if number is None:
                break
            started = time.monotonic()
            status, reply = request(node.port, "POST", "/v1/jobs/batch", body, connection)
            elapsed = time.monotonic() - started
            with lock:
                latencies.append(elapsed)
                if status != 202:
                    errors.append((status, reply[:200]))
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    submitted = time.monotonic() - started
    if errors:
        sys.exit(f"cluster-bench: {label}: {len(errors)} batches refused, first {errors[0]}")
    deadline = time.monotonic() + 600
    while succeeded_count(nodes[0].port) - base < batches * batch:
        if time.monotonic() > deadline:
            sys.exit(f"cluster-bench: {label}: jobs did not all finish within 600 s")
        time.sleep(0.05)
    finished = time.monotonic() - started
    total = batches * batch
    print(f"CLUSTER label={label} phase=throughput nodes={len(nodes)} jobs={total} batch={batch} "
          f"clients={clients} submit_jobs_per_s={total / submitted:.0f} end_to_end_jobs_per_s={total / finished:.0f} "
          f"batch_p50_ms={percentile(latencies, 50) * 1000:.1f} batch_p99_ms={percentile(latencies, 99) * 1000:.1f}",
          flush=True)
    return total / finished


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def submit_latency(node, rate, seconds, label):
    """POST /v1/jobs at a fixed rate from one paced client; latency counted from when each request
    was due, so a stall counts against every request it delays."""
    body = json.dumps({"kind": "write_code", "input": {"name": "bench", "max_seconds": 0}}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    latencies = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        status, reply = request(node.port, "POST", "/v1/jobs", body, connection)
        if status != 202:
            sys.exit(f"cluster-bench: {label}: POST /v1/jobs answered {status}: {reply[:200]}")
        latencies.append(time.monotonic() - due)
    connection.close()
    print(f"CLUSTER label={label} phase=submit_latency rate={rate} requests={len(latencies)} "
          f"p50_ms={percentile(latencies, 50) * 1000:.2f} p99_ms={percentile(latencies, 99) * 1000:.2f}", flush=True)


def job(port, job_id):
    status, body = request(port, "GET", f"/v1/jobs/{job_id}")
    assert status == 200, body
    return json.loads(body)


def rescue_time(binary, postgres, work, lease, heartbeat, pin):
    """kill -9 the node running a job; time until another node runs attempt 2."""
    store = postgres.make_database("rescue")
    timing = ["--lease-seconds", str(lease), "--heartbeat-seconds", str(heartbeat)]
    victim = Node(binary, store, "rescue-victim", work, ["--workers", "1", *timing], pin)
    body = json.dumps({"kind": "write_code", "input": {"name": "rescue", "min_seconds": 600, "max_seconds": 600},
                       "max_attempts": 3}).encode()
    status, reply = request(victim.port, "POST", "/v1/jobs", body)
    assert status == 202, reply
    job_id = json.loads(reply)["id"]
    deadline = time.monotonic() + 30
    while job(victim.port, job_id)["status"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    # The survivor starts once the job runs on the victim, so that it cannot be the one to claim it.
    survivor = Node(binary, store, "rescue-survivor", work, ["--workers", "1", *timing], pin)
    killed = time.monotonic()
    victim.process.kill()
    victim.process.wait()
    deadline = killed + lease + 10 * heartbeat + 30
    while True:
        state = job(survivor.port, job_id)
        if state["attempt"] >= 2 and state["status"] == "running":
            break
        assert time.monotonic() < deadline, f"not rescued in time: {state}"
        time.sleep(0.05)
    seconds = time.monotonic() - killed
    target = lease + 2 * heartbeat
    print(f"CLUSTER label=rescue phase=rescue lease_s={lease} heartbeat_s={heartbeat} seconds={seconds:.1f} "
          f"target_s={target} met={'yes' if seconds <= target else 'no'}", flush=True)
    survivor.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", 20000)))
    parser.add_argument("--batch", type=int, default=int(os.environ.get("BATCH", 100)))
    parser.add_argument("--clients", type=int, default=int(os.environ.get("CLIENTS", 8)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)))
    parser.add_argument("--latency-rate", type=int, default=int(os.environ.get("LATENCY_RATE", 50)))
    parser.add_argument("--latency-seconds", type=int, default=int(os.environ.get("LATENCY_SECONDS", 10)))
    parser.add_argument("--rescue", default=os.environ.get("RESCUE", "1"))
    args = parser.parse_args()
    pin = os.environ.get("SERVER_CPUS") or None
    setups = os.environ.get("SETUPS", "sqlite pg1 pg2 pg3").split()

    def terminate(signum, _frame):
        stop_everything()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)

    work = tempfile.mkdtemp(prefix="bench-cluster.", dir=os.environ.get("TMPDIR", "/tmp"))
    completed = False
    postgres = Postgres(work)
    try:
        settings = postgres.settings()
        print(f"CLUSTER label=machine date={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cpus={os.cpu_count()} "
              + " ".join(f"pg_{k}={v.replace(' ', '_')}" for k, v in settings.items()), flush=True)
        results = {}
        for round_number in range(1, args.rounds + 1):
            # SQLite first in odd rounds, last in even ones: drift hits both the same.
            order = list(setups)
            if round_number % 2 == 0:
                order.reverse()
            for setup in order:
                quiet_disk(postgres)
                if setup == "sqlite":
                    path = f"{work}/jobs-{round_number}.sqlite"
                    nodes = [Node(args.binary, f"sqlite:{path}", "sqlite", work, pin=pin)]
                else:
                    count = int(setup[2:])
                    store = postgres.make_database(f"bench_{setup}_{round_number}")
                    nodes = [Node(args.binary, store, f"{setup}-{i}", work, pin=pin) for i in range(count)]
                rate = throughput(nodes, args.jobs, args.batch, args.clients, f"{setup} round={round_number}")
                results.setdefault(setup, []).append(rate)
                if len(nodes) == 1 and round_number == 1:
                    submit_latency(nodes[0], args.latency_rate, args.latency_seconds, f"{setup}")
                for node in nodes:
                    node.stop()
                if setup != "sqlite":
                    postgres.psql("postgres", f"DROP DATABASE bench_{setup}_{round_number} WITH (FORCE)")
        sqlite = statistics.median(results["sqlite"]) if "sqlite" in results else None
        for setup in setups:
            median = statistics.median(results[setup])
            ratio = f"{median / sqlite:.3f}" if sqlite else "n/a"
            print(f"MEDIAN label={setup} end_to_end_jobs_per_s={median:.0f} ratio_to_sqlite={ratio} "
                  f"rounds={','.join(f'{r:.0f}' for r in results[setup])}", flush=True)
        if args.rescue == "1":
            rescue_time(args.binary, postgres, work, lease=30, heartbeat=5, pin=pin)
        completed = True
    finally:
        stop_everything()
        postgres.stop()
        # The nodes' logs and SQLite files stay for a look after a failed run (or KEEP_WORK=1).
        if completed and os.environ.get("KEEP_WORK") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"CLUSTER label=work folder={work}", flush=True)


if __name__ == "__main__":
    main()
