"""Accepting: a TCP listener is one SO_REUSEPORT socket per worker (so a
connection wakes one worker), the sockets outlive reloads that change
worker_processes (none is closed while workers come and go: what is queued
on it would be reset), and every socket keeps a reader. A connection goes
to a worker asleep in its poll, never to one that is not accepting; one
given to a busy worker is taken by another that is free. With
worker_cpu_affinity each worker is bound to its CPU, and with
accept_by_cpu as well a connection goes to the worker on the CPU it
arrived on."""
import os
import signal
import socket
import threading
import time

import pytest

from conftest import (connect, echo_roundtrip, free_port, listener, server_side_inode,
                      socket_inode_owner, wait_for)


def listening(port):
    """The /proc/net/tcp{,6} lines (split) of the sockets listening on port."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                p = line.split()
                if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                    yield p


def listening_sockets(port):
    """Inodes of the TCP sockets listening on port."""
    return {int(p[9]) for p in listening(port)}


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


# by machine, the system calls a worker may be in while it is marked asleep:
# its poll (poll, epoll_wait, epoll_pwait, epoll_pwait2), and the
# epoll_ctl() libev makes inside it for an event nobody wants
POLLS = {"x86_64": {7, 232, 233, 281, 441}, "aarch64": {21, 22, 73, 441}}


def stop_awake(pid):
    """SIGSTOP pid inside a system call other than those of its poll
    (retrying until it is): it is then marked awake in the steering words,
    as a worker in the middle of its events is. Stopped in its poll, or in
    its own code just before it, it could be marked asleep."""
    polls = POLLS.get(os.uname().machine)
    if polls is None:
        pytest.skip("no poll system call numbers for %s" % os.uname().machine)
    for _ in range(3000):
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "T",
                 5, what="worker %d stopped" % pid)
        with open("/proc/%d/syscall" % pid) as f:
            nr = f.read().split()[0]
        if nr not in ("running", "-1") and int(nr) not in polls:
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.001)
    pytest.fail("worker %d was never stopped outside its poll" % pid)


def accept_queues(port):
    """Connections queued on each socket listening on port."""
    return [int(p[4].split(":")[1], 16) for p in listening(port)]


def discard(conn, rec):
    while conn.recv(1 << 18):
        pass


@pytest.mark.deadline(90)
def test_a_busy_workers_connections_are_taken_by_another(wharf, upstream):
    """Both workers are stopped in the middle of their work (each moving
    an upload), so the steering program finds nobody asleep and gives the
    connections that come to either by hash, counting those of each. One
    worker resumes: it serves its own and, from the other's socket, the
    other's, while that one stays stopped. Without that every connection
    the hash gave the stopped worker would wait for it; with only one
    taken per mark, all but one of them would."""
    up, sink = upstream("echo"), upstream(handler=discard)
    w = wharf({"worker_processes": 2,
               "listeners": [listener("t", up.spec, port=free_port()),
                             listener("bulk", sink.spec, port=free_port())]})
    needs_steering(w)
    workers = w.workers()
    assert len(workers) == 2
    addr = w.addr("t")
    running, uploads, threads, probes, stopped = [True], [], [], [], []

    def upload(s):
        chunk = bytes(1 << 16)
        try:
            while running[0]:
                s.sendall(chunk)
        except OSError:
            pass

    try:
        # an upload on each worker keeps it in its system calls
        for _ in range(20):
            s = connect(w.addr("bulk"), timeout=60)
            uploads.append(s)
            t = threading.Thread(target=upload, args=(s,), daemon=True)
            t.start()
            threads.append(t)
            time.sleep(0.05)
            if set(owners(w.addr("bulk"), workers, uploads)) == set(workers):
                break
        assert set(owners(w.addr("bulk"), workers, uploads)) == set(workers)

        for pid in workers:
            stop_awake(pid)
            stopped.append(pid)
        while len(probes) < 64 and (len(probes) < 16 or 0 in accept_queues(addr[1])):
            s = connect(addr, timeout=5)
            s.sendall(b"probe %d" % len(probes))
            probes.append(s)
        assert 0 not in accept_queues(addr[1]), accept_queues(addr[1])

        os.kill(workers[0], signal.SIGCONT)
        stopped.remove(workers[0])
        for i, s in enumerate(probes):
            s.settimeout(10)
            want = b"probe %d" % i
            got = b""
            while len(got) < len(want):
                d = s.recv(64)
                assert d, i
                got += d
            assert got == want, i
        assert accept_queues(addr[1]) == [0, 0]
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        running[0] = False
        for s in uploads + probes:
            s.close()
        for t in threads:
            t.join(5)


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
