"""Start, stop and talk to a real jobpool process, for the crash and fault scripts.

Only 127.0.0.1 is ever contacted. Every process started here is stopped by PID.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request


class Server:
    def __init__(self, binary, *args):
        self.process = subprocess.Popen(
            # Info level at least: the "listening on" line is how the port is learnt.
            [binary, "serve", "--host", "127.0.0.1", "--port", "0", *args, "--log-level", "info"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        self.port = None
        self.log = []
        while time.time() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        if self.port is None:
            self.kill()
            raise RuntimeError("jobpool did not start:\n" + "".join(self.log))
        self.base = f"http://127.0.0.1:{self.port}"
        # Keep reading the log so that a full pipe never blocks the server.
        threading.Thread(target=self._drain_log, daemon=True).start()

    def _drain_log(self):
        for line in self.process.stderr:
            self.log.append(line)

    def request(self, method, path, body=None, headers=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        # urllib declares any body application/x-www-form-urlencoded, which jobpool refuses (415).
        headers = {"Content-Type": "application/json", **(headers or {})} if data is not None else (headers or {})
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null"), dict(response.headers)
        except urllib.error.HTTPError as error:
            payload = error.read()
            return error.code, (json.loads(payload) if payload else None), dict(error.headers)

    def kill(self):
        """SIGKILL: a crash."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        """SIGTERM, then SIGKILL after 30 s."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode
