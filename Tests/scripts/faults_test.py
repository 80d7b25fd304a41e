"""Fault test, run by faults.sh inside a private mount namespace: a full disk (a small tmpfs)
and a read-only file system (a read-only bind mount). While writes fail, submissions get 503
problem+json with Retry-After and nothing is acknowledged; when writes work again, the
server recovers by itself. A store on a read-only file system stops the start.

Usage: python3 faults_test.py JOBPOOL_BINARY FULL_DIR RO_DIR
"""
import os
import subprocess
import sys
import time

from jobpool_harness import Server

binary, full_dir, ro_dir = sys.argv[1:4]
failures = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message, flush=True)
    if not condition:
        failures.append(message)


def submit(server):
    return server.request("POST", "/v1/jobs", {"kind": "write_code", "input": {"name": "x" * 150, "max_seconds": 0}})


def eventually(predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


# Full disk: fill the tmpfs with a filler file, then submit until the store cannot grow.
server = Server(binary, "--store", f"sqlite:{full_dir}/jobs.sqlite")
try:
    filler = os.path.join(full_dir, "filler")
    # Leave about a megabyte free on the 4 MiB tmpfs, so some jobs are stored before it fills.
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=40"], stderr=subprocess.DEVNULL, check=False)
    accepted, refused = [], None
    for _ in range(20000):
        status, body, headers = submit(server)
        if status == 202:
            accepted.append(body["id"])
        else:
            refused = (status, body, headers)
            break
    check(refused is not None and refused[0] == 503, f"a full disk refuses submissions with 503 (got {refused and refused[0]})")
    if refused:
        check(refused[1].get("type", "").endswith("store-unavailable") and "Retry-After" in refused[2],
              "the refusal is problem+json with Retry-After")
        check("full" in refused[1].get("detail", ""), "the detail says the disk is full")
    status, page, _ = server.request("GET", "/v1/jobs?limit=500")
    check(status == 200, "reads still work while the disk is full")
    os.remove(filler)
    check(eventually(lambda: submit(server)[0] == 202), "after space is freed, submissions are accepted again")
finally:
    server.stop()
server = Server(binary, "--store", f"sqlite:{full_dir}/jobs.sqlite")
try:
    lost = [job_id for job_id in accepted if server.request("GET", f"/v1/jobs/{job_id}")[0] != 200]
    check(not lost, f"all {len(accepted)} jobs acknowledged before the disk filled are there after a restart")
finally:
    server.stop()

# Read-only: Linux refuses to make a mount read-only while a file on it is open for writing,
# so the store is made first, the mount is then switched to read-only, and the server must
# refuse to start with a message that names the file, rather than run without a store.
server = Server(binary, "--store", f"sqlite:{ro_dir}/jobs.sqlite")
check(submit(server)[0] == 202, "a writable store accepts submissions")
server.stop()
subprocess.run(["mount", "-o", "remount,bind,ro", ro_dir], check=True)
try:
    Server(binary, "--store", f"sqlite:{ro_dir}/jobs.sqlite").stop()
    check(False, "a read-only store stops the start")
except RuntimeError as error:
    check(f"{ro_dir}/jobs.sqlite" in str(error), "a read-only store stops the start with a message naming the file")
subprocess.run(["mount", "-o", "remount,bind,rw", ro_dir], check=True)
server = Server(binary, "--store", f"sqlite:{ro_dir}/jobs.sqlite")
try:
    check(server.request("GET", "/v1/jobs")[1]["jobs"] != [], "once writable again, the server starts with its jobs")
finally:
    server.stop()

print(f"faults test: {len(failures)} failed")
sys.exit(1 if failures else 0)
