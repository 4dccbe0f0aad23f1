#!/usr/bin/env python3
"""Downloads whose upstream answers and closes, as real upstreams do.

usage: download.py serve PORT [--lifetime SECONDS]
       download.py fetch PORT [--streams K] [--bytes N] [--slow]
                              [--timeout SECONDS] [--wait-port SECONDS]

Every interop test echoes, so the client always ends the stream first. A
V2Ray server, a web server or a shadowsocks server sends its response and
closes first: serve answers a request line "SEED SIZE\\n" with SIZE bytes
(a function of SEED) and closes at once, often with the last bytes still
in flight. fetch opens K parallel connections (to a V2Ray client's local
port), asks each for N bytes and reads until end of stream; with --slow
the reader takes 64 KiB and sleeps 20 ms (DOWNLOAD_SLOW_SLEEP seconds), so
the server's side has to wait for it. Exit 0 when every stream got exactly its bytes; one line per
failed stream and a summary line are printed.
"""
import argparse
import hashlib
import os
import random
import socket
import sys
import threading
import time

SLOW_SLEEP = float(os.environ.get("DOWNLOAD_SLOW_SLEEP", "0.02"))


def content(seed, size):
    return random.Random(seed).randbytes(size)


def serve(port, lifetime):
    srv = socket.create_server(("127.0.0.1", port), backlog=256)
    srv.settimeout(1)
    print("ready", flush=True)
    end = time.monotonic() + lifetime

    def answer(c):
        try:
            c.settimeout(60)
            line = b""
            while not line.endswith(b"\n"):
                b = c.recv(64)
                if not b:
                    return
                line += b
            seed, size = (int(x) for x in line.split())
            c.sendall(content(seed, size))
        except (OSError, ValueError):
            pass
        finally:
            c.close()       # at once: no waiting for the client to read

    while time.monotonic() < end:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=answer, args=(c,), daemon=True).start()


def wait_port(port, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def fetch_one(idx, port, size, slow, timeout, results):
    seed = random.getrandbits(48)
    want = hashlib.sha256(content(seed, size)).hexdigest()
    got = hashlib.sha256()
    n = 0
    deadline = time.monotonic() + timeout
    err = "end of stream"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"%d %d\n" % (seed, size))
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            b = s.recv(65536)
            if not b:
                break
            got.update(b)
            n += len(b)
            if slow:
                time.sleep(SLOW_SLEEP)
        s.close()
    except OSError as e:
        err = repr(e)
    ok = n == size and got.hexdigest() == want
    results[idx] = (ok, "stream %d: %d of %d bytes, %s, %s" % (
        idx, n, size, "exact" if ok else "WRONG", err))


def fetch(port, streams, size, slow, timeout):
    results = [None] * streams
    threads = [threading.Thread(target=fetch_one, args=(i, port, size, slow, timeout, results))
               for i in range(streams)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    good = sum(1 for r in results if r and r[0])
    for r in results:
        if r is None or not r[0]:
            print(r[1] if r else "a stream did not finish", flush=True)
    print("%d of %d streams exact, %d bytes each, %.1fs" % (
        good, streams, size, time.monotonic() - t0), flush=True)
    return good == streams


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("serve", "fetch"))
    ap.add_argument("port", type=int)
    ap.add_argument("--lifetime", type=float, default=300)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--bytes", type=int, default=4 << 20)
    ap.add_argument("--slow", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--wait-port", type=float, default=0)
    a = ap.parse_args()
    if a.mode == "serve":
        serve(a.port, a.lifetime)
        return 0
    if a.wait_port and not wait_port(a.port, a.wait_port):
        print("port %d not open" % a.port)
        return 1
    return 0 if fetch(a.port, a.streams, a.bytes, a.slow, a.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
