#!/usr/bin/env python3
"""Downloads whose upstream answers and closes, as real upstreams do.

usage: download.py serve PORT [--lifetime SECONDS]
       download.py fetch PORT [--streams K] [--bytes N] [--slow | --upload]
                              [--timeout SECONDS] [--wait-port SECONDS]
       download.py loop PORT [--streams K] [--bytes N] [--timeout SECONDS]
                             [--progress FILE] [--wait-port SECONDS]

Every interop test echoes, so the client always ends the stream first. A
V2Ray server, a web server or a shadowsocks server sends its response and
closes first: serve answers a request line "SEED SIZE\\n" with SIZE bytes
(a function of SEED) and closes at once, often with the last bytes still
in flight. fetch opens K parallel connections (to a V2Ray client's local
port), asks each for N bytes and reads until end of stream; with --slow
the reader takes 64 KiB and sleeps 20 ms (DOWNLOAD_SLOW_SLEEP seconds), so
the server's side has to wait for it. Exit 0 when every stream got exactly its bytes; one line per
failed stream and a summary line are printed.

An upload goes the other way, as a file posted through the tunnel does:
with --upload, fetch sends "SEED SIZE up\n" and SIZE bytes, and serve
reads exactly SIZE bytes, answers with their SHA-256 in hex and closes at
once; the stream is exact when the answer is the digest of what was sent.
The answer can only come once the upload's last byte has reached the
upstream, so a server that holds the tail of an upload fails it.

loop (bench/soak.sh) keeps K streams going, one after another on each of K
threads, each asking for between N/2 and N bytes, until SIGTERM or SIGINT;
then every thread ends the stream it is in and the summary line reads
"loop: streams=S exact=E broken=B bytes=T seconds=D". A stream is broken
when it ends with other bytes than asked for: a mismatch, a short read, a
reset, an early EOF, or no end within --timeout; each is printed with its
wall-clock time. --progress appends "TIME BYTES EXACT BROKEN" (wall clock,
totals so far) to FILE twice a second, for throughput over a time window.
"""
import argparse
import hashlib
import os
import random
import signal
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
            line, rest = line.split(b"\n", 1)     # an upload's first bytes may be in rest
            words = line.split()
            seed, size = int(words[0]), int(words[1])
            if words[2:] == [b"up"]:
                got = hashlib.sha256(rest)
                size -= len(rest)
                while size > 0:
                    b = c.recv(min(size, 65536))
                    if not b:
                        return
                    got.update(b)
                    size -= len(b)
                c.sendall(got.hexdigest().encode() + b"\n")
            else:
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


def upload_once(port, seed, size, timeout):
    """One upload of size bytes of seed's content: (exact, bytes the
    upstream acknowledged, how it ended)."""
    data = content(seed, size)
    want = hashlib.sha256(data).hexdigest().encode() + b"\n"
    answer = b""
    err = "end of stream"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(b"%d %d up\n" % (seed, size) + data)
        while True:
            b = s.recv(256)
            if not b:
                break
            answer += b
        s.close()
    except OSError as e:
        err = repr(e)
    return answer == want, size if answer == want else 0, err


def stream_once(port, seed, size, slow, timeout, counted=None):
    """One download of size bytes of seed's content: (exact, bytes, how it
    ended); counted(n) is told of every n bytes as they arrive."""
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
            if counted:
                counted(len(b))
            if slow:
                time.sleep(SLOW_SLEEP)
        s.close()
    except OSError as e:
        err = repr(e)
    return n == size and got.hexdigest() == want, n, err


def fetch_one(idx, port, size, slow, timeout, results, upload):
    if upload:
        ok, n, err = upload_once(port, random.getrandbits(48), size, timeout)
    else:
        ok, n, err = stream_once(port, random.getrandbits(48), size, slow, timeout)
    results[idx] = (ok, "stream %d: %d of %d bytes, %s, %s" % (
        idx, n, size, "exact" if ok else "WRONG", err))


def fetch(port, streams, size, slow, timeout, upload=False):
    results = [None] * streams
    threads = [threading.Thread(target=fetch_one,
                                args=(i, port, size, slow, timeout, results, upload))
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


def loop(port, streams, size, timeout, progress):
    stop = threading.Event()
    got = [0] * streams         # bytes, per thread: no lock, the main thread only sums
    exact = [0] * streams
    broken = [0] * streams
    lock = threading.Lock()     # for the lines about broken streams

    def run(i):
        k = 0
        while not stop.is_set():
            k += 1
            n = random.randint(size // 2, size)

            def counted(b):
                got[i] += b
            ok, m, err = stream_once(port, random.getrandbits(48), n, False, timeout, counted)
            if ok:
                exact[i] += 1
                continue
            broken[i] += 1
            with lock:
                print("%.3f broken stream %d.%d: %d of %d bytes, %s, %s" % (
                    time.time(), i, k, m, n, "content differs" if m == n else "short", err),
                    flush=True)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(streams)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    out = open(progress, "a") if progress else None
    while any(t.is_alive() for t in threads):
        if out:
            out.write("%.3f %d %d %d\n" % (time.time(), sum(got), sum(exact), sum(broken)))
            out.flush()
        for t in threads:
            t.join(0.5 / streams)
    if out:
        out.write("%.3f %d %d %d\n" % (time.time(), sum(got), sum(exact), sum(broken)))
        out.close()
    print("loop: streams=%d exact=%d broken=%d bytes=%d seconds=%.1f" % (
        sum(exact) + sum(broken), sum(exact), sum(broken), sum(got),
        time.monotonic() - t0), flush=True)
    return sum(broken) == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("serve", "fetch", "loop"))
    ap.add_argument("port", type=int)
    ap.add_argument("--lifetime", type=float, default=300)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--bytes", type=int, default=4 << 20)
    ap.add_argument("--slow", action="store_true")
    ap.add_argument("--upload", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--wait-port", type=float, default=0)
    ap.add_argument("--progress")
    a = ap.parse_args()
    if a.mode == "serve":
        serve(a.port, a.lifetime)
        return 0
    if a.wait_port and not wait_port(a.port, a.wait_port):
        print("port %d not open" % a.port)
        return 1
    if a.mode == "loop":
        return 0 if loop(a.port, a.streams, a.bytes, a.timeout, a.progress) else 1
    return 0 if fetch(a.port, a.streams, a.bytes, a.slow, a.timeout, a.upload) else 1


if __name__ == "__main__":
    sys.exit(main())
