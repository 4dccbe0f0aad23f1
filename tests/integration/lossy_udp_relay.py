#!/usr/bin/env python3
"""A userspace UDP relay that drops and reorders datagrams (the kernel here
has no netem), for the mKCP tests and bench/kcp.sh.

usage: lossy_udp_relay.py --listen HOST:PORT --to HOST:PORT
                          [--loss P] [--reorder P] [--delay MS] [--seed N]
                          [--lifetime SECONDS]

Every client address that sends to --listen gets its own socket towards
--to (so the server sees one peer per client socket, as without the
relay). Each datagram, either way, is dropped with probability P (--loss),
or held back by --delay ms with probability --reorder (so later ones
overtake it), or passed on at once. Exits after --lifetime seconds
(default 300) so a forgotten relay never lingers. Prints "ready" once
listening. Standard library only.
"""
import argparse
import heapq
import random
import selectors
import socket
import sys
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, type=hostport)
    ap.add_argument("--to", required=True, type=hostport)
    ap.add_argument("--loss", type=float, default=0.02)
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--delay", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--lifetime", type=float, default=300.0)
    a = ap.parse_args()
    rnd = random.Random(a.seed)

    sel = selectors.DefaultSelector()
    front = socket.socket(socket.AF_INET6 if ":" in a.listen[0] else socket.AF_INET,
                          socket.SOCK_DGRAM)
    front.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    front.bind(a.listen)
    front.setblocking(False)
    sel.register(front, selectors.EVENT_READ, None)
    backs = {}          # client address -> socket towards the server
    held = []           # (due, seq, sock, data, addr)
    seq = 0
    print("ready", flush=True)
    end = time.monotonic() + a.lifetime

    def forward(sock, data, addr):
        nonlocal seq
        r = rnd.random()
        if r < a.loss:
            return
        if r < a.loss + a.reorder:
            seq += 1
            heapq.heappush(held, (time.monotonic() + a.delay / 1000.0, seq, sock, data, addr))
            return
        try:
            if addr is None:
                sock.send(data)
            else:
                sock.sendto(data, addr)
        except OSError:
            pass

    while time.monotonic() < end:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
        for key, _ in sel.select(timeout):
            sock = key.fileobj
            for _ in range(64):
                try:
                    data, addr = sock.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if key.data is None:            # from a client
                    back = backs.get(addr)
                    if back is None:
                        back = socket.socket(front.family, socket.SOCK_DGRAM)
                        back.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                        back.connect(a.to)
                        back.setblocking(False)
                        backs[addr] = back
                        sel.register(back, selectors.EVENT_READ, addr)
                    forward(back, data, None)
                else:                           # from the server, for client key.data
                    forward(front, data, key.data)
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, sock, data, addr = heapq.heappop(held)
            try:
                if addr is None:
                    sock.send(data)
                else:
                    sock.sendto(data, addr)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
