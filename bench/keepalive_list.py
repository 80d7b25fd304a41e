#!/usr/bin/env python3
"""Latency of GET /v1/jobs?limit=100 (a page of about 44 KB) on one kept-alive connection.

Usage: bench/keepalive_list.py JOBPOOL_BINARY [ROUNDS]

Starts `JOBPOOL_BINARY serve` on 127.0.0.1 (a free port, memory store), submits 100 jobs, then
times ROUNDS (default 200) list requests on one connection and as many on a new connection
each, and prints the medians and 90th percentiles. Stops the server it started by its PID.
"""
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    server = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", "0", "--store", "memory",
                               "--log-level", "info"], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 30
        while port is None and time.time() < deadline:
            line = server.stderr.readline()
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
        if port is None:
            raise SystemExit("jobpool did not start")
        # Keep reading the access log, so that a full pipe never blocks the server.
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"kind": "write_code", "input": {"name": "bench", "max_seconds": 0}})
        for _ in range(100):
            connection.request("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
            connection.getresponse().read()

        def timed(conn):
            started = time.perf_counter()
            conn.request("GET", "/v1/jobs?limit=100")
            response = conn.getresponse()
            size = len(response.read())
            assert response.status == 200, response.status
            return (time.perf_counter() - started) * 1000, size

        kept = [timed(connection) for _ in range(rounds)]
        fresh = []
        for _ in range(rounds):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            fresh.append(timed(conn))
            conn.close()
        for label, samples in (("kept-alive", kept), ("new-connection", fresh)):
            times = sorted(t for t, _ in samples)
            print(f"LIST {label} bytes={samples[0][1]} n={len(times)} median_ms={statistics.median(times):.2f} "
                  f"p90_ms={times[int(len(times) * 0.9)]:.2f} max_ms={times[-1]:.2f}")
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    main()
