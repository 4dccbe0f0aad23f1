"""Accepting: a TCP listener is one SO_REUSEPORT socket per worker (so a
connection wakes one worker), the sockets outlive reloads that change
worker_processes (none is closed while workers come and go: what is queued
on it would be reset), and every socket keeps a reader."""
import os
import socket

import pytest

from conftest import connect, echo_roundtrip, free_port, listener, wait_for


def listening_sockets(port):
    """Inodes of the TCP sockets listening on port."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                p = line.split()
                if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(int(p[9]))
    return inodes


def socket_count(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def all_echo(addr, n):
    """n connections one after another, each from a new source port (the
    kernel picks a socket by the 4-tuple's hash): every one is served."""
    for i in range(n):
        r = echo_roundtrip(addr, b"hello %d" % i, timeout=5)
        assert r["ok"], (i, r)


@pytest.mark.deadline(60)
def test_one_socket_per_worker_kept_across_reloads(wharf, upstream):
    up = upstream("echo")
    port = free_port()
    conf = lambda n: {"worker_processes": n, "listeners": [listener("t", up.spec, port=port)]}
    w = wharf(conf(3))
    addr = ("127.0.0.1", port)
    first = listening_sockets(port)
    assert len(first) == 3, first
    all_echo(addr, 30)

    # fewer workers: no socket closes, worker 0 reads sockets 0 and 2
    w.reload(conf(2))
    assert listening_sockets(port) == first
    all_echo(addr, 40)
    w.reload(conf(1))
    assert listening_sockets(port) == first
    all_echo(addr, 40)

    # more: the old sockets stay, one more joins the group
    w.reload(conf(4))
    now = listening_sockets(port)
    assert len(now) == 4 and first < now, (first, now)
    all_echo(addr, 40)

    # a listener the configuration drops is closed, all its sockets
    other = free_port()
    w.reload({"worker_processes": 4, "listeners": [listener("u", up.spec, port=other)]})
    wait_for(lambda: not listening_sockets(port), 10, what="old sockets closed")
    assert len(listening_sockets(other)) == 4
    with pytest.raises(ConnectionRefusedError):
        connect(addr, timeout=2)


@pytest.mark.deadline(40)
def test_connections_spread_over_workers(wharf, upstream):
    up = upstream("echo")
    w = wharf({"worker_processes": 2, "listeners": [listener("t", up.spec, port=free_port())]})
    addr = w.addr("t")
    workers = w.workers()
    assert len(workers) == 2
    before = {pid: socket_count(pid) for pid in workers}
    held = []
    try:
        for i in range(40):
            s = connect(addr, timeout=5)
            s.sendall(b"x")
            assert s.recv(1) == b"x"
            held.append(s)
        # each held stream is two sockets in the worker that accepted it;
        # 40 hashed over two sockets all land on one with odds 2^-39
        grown = {pid: socket_count(pid) - before[pid] for pid in workers}
        assert sum(grown.values()) == 80, grown
        assert all(g > 0 for g in grown.values()), grown
    finally:
        for s in held:
            s.close()


@pytest.mark.deadline(30)
def test_unix_listener_shared(wharf, upstream, sockdir):
    up = upstream("echo")
    path = str(sockdir / "a.sock")
    w = wharf({"worker_processes": 2, "listeners": [listener("u", up.spec, listen=path)]})
    for i in range(10):
        assert echo_roundtrip(path, b"u%d" % i, timeout=5)["ok"]
    w.reload({"worker_processes": 1, "listeners": [listener("u", up.spec, listen=path)]})
    for i in range(10):
        assert echo_roundtrip(path, b"v%d" % i, timeout=5)["ok"]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.close()
