"""Accepting: a TCP listener is one SO_REUSEPORT socket per worker (so a
connection wakes one worker), the sockets outlive reloads that change
worker_processes (none is closed while workers come and go: what is queued
on it would be reset), and every socket keeps a reader. A connection goes
to a worker asleep in its poll, never to one that is not accepting. With
worker_cpu_affinity each worker is bound to its CPU, and with
accept_by_cpu as well a connection goes to the worker on the CPU it
arrived on."""
import os
import socket

import pytest

from conftest import (connect, echo_roundtrip, free_port, listener, server_side_inode,
                      socket_inode_owner, wait_for)


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


def needs_steering(w):
    """The steering program needs root (CAP_BPF): without it the kernel's
    hash picks the worker, and the master says so. Any other reason for the
    hash is a failure."""
    if os.geteuid() != 0:
        pytest.skip("steering connections to idle workers needs root")
    hashed = [l for l in w.log().splitlines() if "by hash" in l]
    if hashed and all("Operation not permitted" in l for l in hashed):
        pytest.skip("this kernel lets no one load eBPF: %s" % hashed[0])
    assert not hashed, hashed


def owners(addr, workers, held):
    owner = socket_inode_owner(workers)
    return [owner.get(server_side_inode(addr[1], s.getsockname()[1])) for s in held]


@pytest.mark.deadline(40)
def test_connections_go_to_an_idle_worker(wharf, upstream):
    """Four workers of 5 worker_connections, 20 connections one after
    another, each held. A worker at its limit stops accepting, and says so
    at once: the next connections go to the others, to one asleep or else
    to one that accepts. Every one is served and each worker ends with
    exactly five. Handed out by hash, a connection would land on a full
    worker (unless the hash split them five by five: odds 1 in 94) and wait
    there until the client timed out."""
    up = upstream("echo")
    w = wharf({"worker_processes": 4, "worker_connections": 5,
               "listeners": [listener("t", up.spec, port=free_port())]})
    needs_steering(w)
    addr = w.addr("t")
    workers = w.workers()
    assert len(workers) == 4
    held = []
    try:
        for i in range(20):
            s = connect(addr, timeout=5)
            held.append(s)
            s.sendall(b"x")
            assert s.recv(1) == b"x", i
        got = owners(addr, workers, held)
        assert None not in got, got
        assert sorted(got.count(pid) for pid in workers) == [5, 5, 5, 5], got
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


def cpus_allowed(pid):
    """The CPUs pid may run on, from /proc/PID/status ("0-1,4")."""
    with open("/proc/%d/status" % pid) as f:
        text = [l.split()[1] for l in f if l.startswith("Cpus_allowed_list:")][0]
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def owners_from(cpu, addr, workers, n):
    """The workers that accepted n connections made from a thread on cpu
    (on loopback the SYN is taken on the connecting thread's CPU)."""
    before = os.sched_getaffinity(0)
    held = []
    try:
        os.sched_setaffinity(0, {cpu})
        for i in range(n):
            s = connect(addr, timeout=5)
            held.append(s)
            s.sendall(b"x")
            assert s.recv(1) == b"x"
        return owners(addr, workers, held)
    finally:
        os.sched_setaffinity(0, before)
        for s in held:
            s.close()


def bindings(w):
    """w's workers and the CPUs each may run on."""
    workers = w.workers()
    return workers, {pid: cpus_allowed(pid) for pid in workers}


def reload_bound(w, conf):
    """Reloads w to conf (two workers); the new workers' bindings."""
    w.reload(conf)
    wait_for(lambda: len(w.workers()) == 2, 10, what="old workers gone")
    return bindings(w)


@pytest.mark.deadline(60)
def test_worker_cpu_affinity_steers_connections(wharf, upstream):
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    up = upstream("echo")
    port = free_port()
    conf = lambda aff, steer=True: {"worker_processes": 2, "worker_cpu_affinity": aff,
                                    "accept_by_cpu": steer,
                                    "listeners": [listener("t", up.spec, port=port)]}
    w = wharf(conf("auto"))
    addr = ("127.0.0.1", port)

    # "auto": worker k on the k-th CPU; every connection made on a CPU is
    # accepted by the worker bound to it (hashed, 20 would all land on one
    # worker with odds 2^-19)
    workers, bound = bindings(w)
    assert sorted(bound.values(), key=min) == [{cpus[0]}, {cpus[1]}], bound
    for cpu in cpus[:2]:
        got = owners_from(cpu, addr, workers, 20)
        assert all(bound.get(pid) == {cpu} for pid in got), (cpu, got, bound)

    # masks, the other way round: still each connection to its CPU's worker
    mask = lambda c: "1" + "0" * c
    workers, bound = reload_bound(w, conf([mask(cpus[1]), mask(cpus[0])]))
    assert sorted(bound.values(), key=min) == [{cpus[0]}, {cpus[1]}], bound
    got = owners_from(cpus[0], addr, workers, 20)
    assert all(bound.get(pid) == {cpus[0]} for pid in got), (got, bound)

    # bound but not steering by CPU: the CPU program is gone, connections
    # from one CPU go to both workers again
    workers, bound = reload_bound(w, conf("auto", steer=False))
    assert sorted(bound.values(), key=min) == [{cpus[0]}, {cpus[1]}], bound
    got = owners_from(cpus[0], addr, workers, 40)
    assert None not in got and len(set(got)) == 2, got

    # "off": the workers run anywhere
    _, bound = reload_bound(w, conf("off", steer=False))
    assert all(b == set(cpus) for b in bound.values()), bound
