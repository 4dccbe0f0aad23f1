"""Connection limits (worker_connections, maxConnections,
maxConnectionsPerAddress) and what happens when the master dies.

Clients come from several loopback addresses (127.0.0.0/8 is all local) so
that per-address caps can be told apart from per-listener ones.
"""
import os
import signal
import socket
import struct
import time

import pytest

from conftest import (Wharf, connect, echo_roundtrip, free_port, listener, pid_alive,
                      recv_exact, wait_for)


def conf(up_spec, port, workers=1, **ls_extra):
    return {"worker_processes": workers, "shutdown_timeout": 20,
            "listeners": [listener("t", up_spec, port=port, **ls_extra)]}


def client(addr, source="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(addr)
    return s


def echoes(s, data=b"ping", timeout=5):
    """True when data comes back within timeout."""
    s.settimeout(timeout)
    s.sendall(data)
    try:
        return recv_exact(s, len(data), timeout=timeout) == data
    except (OSError, AssertionError, Exception):
        return False


def closed_at_once(s, timeout=3):
    """The server closed s without a byte (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        s.sendall(b"x")
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False


@pytest.mark.deadline(40)
def test_worker_connections_backlog_then_served(wharf, upstream):
    """At worker_connections the next client waits in the listen backlog
    (not accepted, not dropped) and is served as soon as a slot frees."""
    up = upstream("echo")
    port = free_port()
    c = conf(up.spec, port)
    c["worker_connections"] = 3
    w = wharf(c)
    held = [connect(w.addr("t")) for _ in range(3)]
    for s in held:
        assert echoes(s), "a client below the limit was not served"

    waiting = connect(w.addr("t"))          # completes in the kernel's backlog
    waiting.sendall(b"queued")
    waiting.settimeout(1.5)
    with pytest.raises(socket.timeout):
        waiting.recv(16)
    st = w.stats()["t"]
    assert st["paused"] == 1 and st["clients"] == 3 and st["limit"] == 0, st
    assert "3 worker_connections are not enough: accepting paused" in w.log()

    held.pop().close()
    assert recv_exact(waiting, 6, timeout=5) == b"queued", "the waiting client was not served"
    assert echoes(waiting)
    for s in held + [waiting]:
        s.close()
    assert w.wait_stat("t", "clients", lambda v: v == 0) == 0
    st = w.stats()["t"]
    assert st["accepted"] == 4 and st["done"] == 4 and st["error"] == 0, st
    assert wait_for(lambda: "worker_connections: accepting again" in w.log(), 5)


@pytest.mark.deadline(40)
def test_max_connections_per_address_across_workers(wharf, upstream):
    """The per-address cap holds for all workers together; other addresses
    are not affected; a refused client is closed at once, counted, logged."""
    up = upstream("echo")
    port = free_port()
    w = wharf(conf(up.spec, port, workers=2, maxConnectionsPerAddress=3))
    addr = w.addr("t")
    held = []
    for _ in range(3):
        s = client(addr, "127.0.0.1")
        assert echoes(s)
        held.append(s)
    for _ in range(3):
        extra = client(addr, "127.0.0.1")
        assert closed_at_once(extra), "a 4th client of 127.0.0.1 was not refused"
        extra.close()
    other = client(addr, "127.0.0.2")
    assert echoes(other), "another address was refused"
    st = w.stats()["t"]
    assert st["limit"] == 3 and st["clients"] == 4, st
    assert ("limiting connections by maxConnectionsPerAddress (3), client: 127.0.0.1:"
            in w.log())

    held.pop().close()
    assert wait_for(lambda: w.stats()["t"]["clients"] == 3, 5)
    again = client(addr, "127.0.0.1")
    assert echoes(again), "a slot freed by a closed client was not reused"
    for s in held + [other, again]:
        s.close()


@pytest.mark.deadline(40)
def test_max_connections_per_listener(wharf, upstream):
    up = upstream("echo")
    port = free_port()
    w = wharf(conf(up.spec, port, workers=2, maxConnections=2))
    addr = w.addr("t")
    held = [client(addr, "127.0.0.%d" % i) for i in (3, 4)]
    for s in held:
        assert echoes(s)
    extra = client(addr, "127.0.0.5")
    assert closed_at_once(extra)
    extra.close()
    assert "limiting connections by maxConnections (2), client: 127.0.0.5:" in w.log()
    held.pop().close()
    assert wait_for(lambda: w.stats()["t"]["clients"] == 1, 5)
    s = client(addr, "127.0.0.5")
    assert echoes(s)
    for x in held + [s]:
        x.close()
    assert w.stats()["t"]["limit"] == 1


def proxy_v1(src):
    return ("PROXY TCP4 %s 127.0.0.1 40000 443\r\n" % src).encode()


@pytest.mark.deadline(40)
def test_per_address_cap_uses_the_proxy_header_address(wharf, upstream):
    """Behind a PROXY-speaking balancer every connection comes from its
    address: the cap applies to the client the header names."""
    up = upstream("echo")
    port = free_port()
    w = wharf(conf(up.spec, port, proxy_protocol=True, maxConnectionsPerAddress=1))
    addr = w.addr("t")
    a = connect(addr)
    a.sendall(proxy_v1("198.51.100.1"))
    assert echoes(a)
    b = connect(addr)
    b.sendall(proxy_v1("198.51.100.2"))
    assert echoes(b), "a second client behind the same balancer was refused"
    c = connect(addr)
    c.sendall(proxy_v1("198.51.100.1"))
    assert closed_at_once(c), "a second connection of 198.51.100.1 was not refused"
    assert "client: 198.51.100.1:40000" in w.log()
    for s in (a, b, c):
        s.close()
    assert w.wait_stat("t", "clients", lambda v: v == 0) == 0


def test_limit_directives_are_checked(wharf, tmp_path):
    for bad, msg in (("worker_connections = 0;", "worker_connections"),
                     ("worker_rlimit_nofile = \"many\";", "worker_rlimit_nofile")):
        w = Wharf(tmp_path / ("p%d" % len(msg)), {"listeners": []})
        w.conf_path.write_text(bad + "\n")
        r = w.run("-t")
        assert r.returncode != 0 and msg in r.stderr and "wharf.conf:1" in r.stderr, r.stderr


@pytest.mark.deadline(60)
def test_master_killed_workers_free_the_port_and_drain(wharf, upstream, tmp_path):
    """kill -9 of the master: its workers close the listening sockets at
    once (a new master binds the same port at once) and finish their
    streams; the live stream keeps working until its client closes it."""
    up = upstream("echo")
    port = free_port()
    w = wharf(conf(up.spec, port, workers=2))
    workers = w.workers()
    live = connect(w.addr("t"))
    assert echoes(live)

    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait(5)

    def port_free():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    assert wait_for(port_free, 2), "the port stayed bound after the master died"
    # the worker with the live stream stays to drain it; an idle one exits
    assert any(pid_alive(p) for p in workers), "no worker stayed to drain"

    again = Wharf(tmp_path / "again", conf(up.spec, port, workers=2))
    again.start()
    try:
        r = echo_roundtrip(("127.0.0.1", port))
        assert r["ok"], "the new master does not serve: %s" % r["error"]
        for _ in range(3):
            assert echoes(live, os.urandom(1000)), "the draining stream broke"
        live.close()
        assert wait_for(lambda: not any(pid_alive(p) for p in workers), 5), \
            "old workers did not exit after their last stream"
        assert "the master process has gone" in w.log()
        # the new master removed the dead one's statistics object
        assert not os.path.exists("/dev/shm/wharf.%d" % w.pid), "stats object left behind"
    finally:
        again.cleanup()


@pytest.mark.deadline(60)
def test_quic_sessions_count_against_the_caps(wharf, tmp_path, spawn):
    """A UDP transport's sessions are clients too: QUIC connections over
    maxConnectionsPerAddress are not opened (their Initials are dropped as
    refused), and the V2Ray client of another address still gets in."""
    from test_quic import setup_case, start_wharf
    from test_quic_retry import FLOOD, client_pushes, flood, quic_listener
    from conftest import datagram_stats
    if not os.access(FLOOD, os.X_OK):
        pytest.skip("no quic-flood next to wharf")
    s = setup_case("quic", tmp_path, spawn)
    ls = dict(quic_listener(s, retry=1000000), maxConnectionsPerAddress=4)
    w = start_wharf(wharf, {"listeners": [ls]}, s["server_port"])
    # every Initial from 127.0.0.1, each from a new port: only 4 connections
    r = flood(s["server_port"], "-r", 200, "-n", 40, "-d", 1)
    assert r["sent"] == 40 and r["handshake"] == 4, r
    assert datagram_stats(w)["q"]["refused"] >= 36
    assert "limiting connections by maxConnectionsPerAddress (4), client: 127.0.0.1:" in w.log()
    assert w.stats()["q"]["clients"] == 4
    # the flood's connections time out (8 s handshake); then a real client fits
    assert w.wait_stat("q", "clients", lambda v: v == 0, timeout=15) == 0
    client_pushes(w, s, spawn)
