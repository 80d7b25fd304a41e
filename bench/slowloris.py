#!/usr/bin/env python3
"""Slowloris against jobpool, and normal requests during it. Used by bench/slowloris.sh.

  slowloris.py attack PORT COUNT SECONDS   hold COUNT connections to 127.0.0.1:PORT, each sending
                                           one header byte a second, reconnecting any the server
                                           closes, for SECONDS; prints 'HOLDING n' lines
  slowloris.py probe PORT COUNT TIMEOUT    COUNT normal requests (GET /healthz, each on a new
                                           connection), one after another; prints one RESULT line

Only 127.0.0.1 is ever contacted, and both modes end on their own.
"""
import errno
import selectors
import socket
import sys
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def connect(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return sock


def attack(port, count, seconds):
    end = time.monotonic() + seconds
    sockets = [connect(port) for _ in range(count)]
    sent_head = [False] * count
    reconnects = 0
    next_report = time.monotonic()
    while time.monotonic() < end:
        started = time.monotonic()
        held = 0
        for index, sock in enumerate(sockets):
            try:
                if not sent_head[index]:
                    sock.send(HEAD)
                    sent_head[index] = True
                else:
                    sock.send(b"X")
                held += 1
            except BlockingIOError:
                pass          # still in the accept queue (handshake done, buffer full) or connecting
            except OSError as error:
                if error.errno in (errno.ENOTCONN, errno.EAGAIN):
                    continue  # the handshake has not completed yet
                sock.close()  # closed by the server: reconnect, as an attacker would
                sockets[index] = connect(port)
                sent_head[index] = False
                reconnects += 1
        if time.monotonic() >= next_report:
            print(f"HOLDING sent_to={held} of={count} reconnects={reconnects}", flush=True)
            next_report = time.monotonic() + 5
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    for sock in sockets:
        sock.close()


def probe(port, count, timeout):
    latencies = []
    answered = 0
    for _ in range(count):
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                sock.settimeout(max(0.01, timeout - (time.monotonic() - started)))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                reply = b""
                while b"ok" not in reply:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                    sock.settimeout(max(0.01, timeout - (time.monotonic() - started)))
            elapsed = time.monotonic() - started
            if reply.startswith(b"HTTP/1.1 200") and elapsed <= timeout:
                answered += 1
                latencies.append(elapsed)
        except OSError:
            pass
    latencies.sort()
    median = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    worst = latencies[-1] * 1000 if latencies else float("nan")
    print(f"RESULT answered_within_{timeout:g}s={answered} of={count} median_ms={median:.1f} max_ms={worst:.1f}", flush=True)
    return answered


if __name__ == "__main__":
    mode, port, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if mode == "attack":
        attack(port, count, limit)
    else:
        probe(port, count, limit)
