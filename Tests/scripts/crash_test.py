"""Crash test: kill -9 the server at random moments under a steady submit load, restart it on
the same store each time, stop it once with SIGTERM under the same load, then check that every
job answered with 202 exists, reaches a final state, and has at most one final result in its
attempt history.

Usage: python3 crash_test.py JOBPOOL_BINARY [CYCLES]
"""
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

from jobpool_harness import Server

binary = sys.argv[1]
cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 5
workdir = tempfile.mkdtemp(prefix="jobpool-crash-")
store = os.path.join(workdir, "jobs.sqlite")
args = ["--store", f"sqlite:{store}", "--workers", "8"]
acknowledged = set()
lock = threading.Lock()


def submit_until(server, stop):
    while not stop.is_set():
        try:
            status, job, _ = server.request("POST", "/v1/jobs", {
                "kind": "write_code", "input": {"name": "crash", "min_seconds": 0, "max_seconds": 0.05}}, timeout=5)
        except Exception:
            return  # the server is gone
        if status == 202:
            with lock:
                acknowledged.add(job["id"])


random.seed(os.getpid())
for cycle in range(1, cycles + 1):
    server = Server(binary, *args)
    stop = threading.Event()
    threads = [threading.Thread(target=submit_until, args=(server, stop)) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(random.uniform(0.5, 2.0))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    print(f"cycle {cycle}: killed with SIGKILL; acknowledged so far: {len(acknowledged)}", flush=True)

# One graceful stop under the same load: SIGTERM while submissions keep coming. The drain must
# refuse new work cleanly, lose nothing acknowledged, and exit 0.
server = Server(binary, *args)
stop = threading.Event()
threads = [threading.Thread(target=submit_until, args=(server, stop)) for _ in range(4)]
for thread in threads:
    thread.start()
time.sleep(1.0)
graceful_exit = server.stop()
stop.set()
for thread in threads:
    thread.join(timeout=10)
print(f"graceful stop under load: exit code {graceful_exit}; acknowledged so far: {len(acknowledged)}", flush=True)

server = Server(binary, *args)
try:
    pending = set(acknowledged)
    missing = set()
    deadline = time.time() + 240
    while pending and time.time() < deadline:
        for job_id in list(pending):
            status, job, _ = server.request("GET", f"/v1/jobs/{job_id}")
            if status == 404:
                missing.add(job_id)
                pending.discard(job_id)
            elif job["status"] in ("succeeded", "failed", "cancelled"):
                pending.discard(job_id)
        if pending:
            time.sleep(0.5)
finally:
    code = server.stop()

database = sqlite3.connect(store)
double_final = database.execute("""
    SELECT count(*) FROM (SELECT job_id FROM job_attempts
                          WHERE outcome IN ('succeeded', 'failed', 'cancelled')
                          GROUP BY job_id HAVING count(*) > 1)""").fetchone()[0]
reruns = database.execute("SELECT count(*) FROM jobs WHERE attempt > 1").fetchone()[0]
print(f"crash test: cycles={cycles} acknowledged={len(acknowledged)} recovered={len(acknowledged) - len(missing) - len(pending)} "
      f"lost={len(missing)} unfinished={len(pending)} rerun_after_crash={reruns} double_final_results={double_final} "
      f"graceful_exit_code={graceful_exit} final_exit_code={code}")
database.close()
if not acknowledged or missing or pending or double_final or code != 0 or graceful_exit != 0:
    print(f"crash test: the store is kept in {workdir}")
    sys.exit(1)
shutil.rmtree(workdir, ignore_errors=True)
