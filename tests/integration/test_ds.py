"""The domainsocket transport (spec 6): a unix stream socket named by
dsSettings.path (file-system path with its "<path>.lock", abstract, abstract
padded to 108 bytes, "@name"), TLS on top, stale and live socket files,
stop and reload. The V2Ray client cases are in test_interop.py.

The listener's listen/port are ignored for ds, so these listeners have
none; conftest's wait for listening cannot know the address: the tests
start wharf with wait=False and poll-connect.
"""
import errno
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import echo_stream, recv_exact, wait_for
from test_tls import TLSClient, cert_entry, make_cert

MiB = 1 << 20


def ds_listener(tag, upstream, path, tls=None, **ds):
    ss = {"network": "ds", "dsSettings": dict(path=path, **ds)}
    if tls is not None:
        ss["security"] = "tls"
        ss["tlsSettings"] = tls
    return {"tag": tag, "upstream": upstream, "streamSettings": ss}


def try_connect(addr):
    """None when a unix connect to addr (str or exact bytes) succeeds, else the errno."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
        return None
    except OSError as e:
        return e.errno
    finally:
        s.close()


def wait_up(w, addr, timeout=10):
    """Poll-connect until addr accepts and the workers run."""
    ok = wait_for(lambda: not w.alive() or try_connect(addr) is None, timeout)
    if not ok or not w.alive():
        raise AssertionError("ds listener %r not connectable\n%s" % (addr, w.diagnostics()))
    if not wait_for(lambda: len(w.workers()) >= w.expected_workers(), timeout):
        raise AssertionError("workers did not start\n%s" % w.diagnostics())


def start_ds(wharf, listeners, addr, conf=None):
    c = {"listeners": listeners}
    c.update(conf or {})
    w = wharf(c, start=False)
    w.start(wait=False)
    wait_up(w, addr)
    return w


def unix_connect(addr, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except BaseException:
        s.close()
        raise
    return s


def echo_ok(addr, data):
    s = unix_connect(addr)
    try:
        r = echo_stream(s, data, timeout=30)
    finally:
        s.close()
    return r


def abstract_name():
    return "wharf-it-ds-%d-%s" % (os.getpid(), uuid.uuid4().hex[:10])


def padded(name):
    raw = b"\0" + name.encode()
    return raw + b"\0" * (108 - len(raw))


# --------------------------------------------------------------------------
# file-system path

@pytest.mark.deadline(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT], ids=["TERM", "QUIT"])
def test_path_relay_lock_and_cleanup(wharf, upstream, sockdir, sig):
    up = upstream("echo")
    path = str(sockdir / "ds.sock")
    w = start_ds(wharf, [ds_listener("ds", up.spec, path)], path,
                 conf={"worker_processes": 2})
    data = os.urandom(MiB)
    r = echo_ok(path, data)
    assert r["ok"], r["error"]
    assert os.path.exists(path + ".lock"), "no %s.lock while listening" % path
    w.wait_stat("ds", "active", lambda v: v == 0, timeout=5)
    st = w.stats()["ds"]
    assert st["bytes_up"] >= MiB and st["bytes_down"] >= MiB and st["done"] >= 1, st

    rc = w.stop(sig, timeout=10)
    assert rc is not None, "wharf did not exit on %s" % sig.name
    left = [p for p in (path, path + ".lock") if os.path.lexists(p)]
    assert not left, "left behind after %s: %s" % (sig.name, left)


@pytest.mark.deadline(60)
def test_stale_socket_file_is_replaced(wharf, upstream, sockdir):
    up = upstream("echo")
    path = str(sockdir / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                           # the file stays, nobody listens
    assert os.path.exists(path) and try_connect(path) == errno.ECONNREFUSED
    w = start_ds(wharf, [ds_listener("ds", up.spec, path)], path)
    r = echo_ok(path, os.urandom(100000))
    assert r["ok"], r["error"]
    assert w.alive()
    w.stop()
    assert not os.path.lexists(path) and not os.path.lexists(path + ".lock")


@pytest.mark.deadline(60)
def test_live_socket_refuses_start(wharf, sockdir):
    path = str(sockdir / "live.sock")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(path)
    other.listen(8)
    try:
        w = wharf({"listeners": [ds_listener("ds", "echo", path)]}, start=False)
        w.start(wait=False)
        try:
            rc = w.proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        assert rc is not None, "wharf started over a live socket\n" + w.diagnostics()
        assert rc != 0, "wharf exited 0\n" + w.diagnostics()
        assert path in w.log() + w.output(), "the error does not name %s\n%s" % (
            path, w.diagnostics())
        # the other process's socket was left alone
        assert os.path.exists(path)
        c = unix_connect(path, timeout=2)
        a, _ = other.accept()
        a.close()
        c.close()
    finally:
        other.close()


# --------------------------------------------------------------------------
# abstract addresses

@pytest.mark.deadline(60)
def test_abstract_unpadded(wharf, upstream):
    up = upstream("echo")
    name = abstract_name()
    addr = b"\0" + name.encode()
    # two workers: an abstract name is one socket both watch (no SO_REUSEPORT group)
    w = start_ds(wharf, [ds_listener("ds", up.spec, name, abstract=True, padding=False)], addr,
                 conf={"worker_processes": 2})
    r = echo_ok(addr, os.urandom(200000))
    assert r["ok"], r["error"]
    assert try_connect(padded(name)) == errno.ECONNREFUSED, \
        "the padded address reached an unpadded listener"
    assert not os.path.exists(name) and not os.path.exists(name + ".lock")
    assert w.alive()


@pytest.mark.deadline(60)
def test_abstract_padded(wharf, upstream):
    up = upstream("echo")
    name = abstract_name()
    addr = padded(name)
    assert len(addr) == 108
    w = start_ds(wharf, [ds_listener("ds", up.spec, name, abstract=True, padding=True)], addr)
    r = echo_ok(addr, os.urandom(200000))
    assert r["ok"], r["error"]
    assert try_connect(b"\0" + name.encode()) == errno.ECONNREFUSED, \
        "the unpadded address reached a padded listener"
    with open("/proc/net/unix") as f:
        names = [l.split()[-1] for l in f if name in l]
    assert ("@" + name + "@" * (107 - len(name))) in names, names
    assert w.alive()


@pytest.mark.deadline(60)
def test_at_name_is_abstract(wharf, upstream):
    up = upstream("echo")
    name = abstract_name()
    addr = b"\0" + name.encode()
    w = start_ds(wharf, [ds_listener("ds", up.spec, "@" + name)], addr)
    r = echo_ok(addr, os.urandom(200000))
    assert r["ok"], r["error"]
    assert try_connect(padded(name)) == errno.ECONNREFUSED
    assert w.alive()


# --------------------------------------------------------------------------
# TLS on a domain socket

@pytest.mark.deadline(60)
def test_ds_tls_relay(wharf, upstream, sockdir, tmp_path):
    up = upstream("echo")
    pair = make_cert(tmp_path / "pki", "ds", "ds.example", sans=["ds.example"])
    path = str(sockdir / "tls.sock")
    w = start_ds(wharf, [ds_listener("ds", up.spec, path,
                                     tls={"certificates": [cert_entry(pair)]})], path)
    data = os.urandom(MiB)
    c = TLSClient(path, sni="ds.example", alpn=["h2", "http/1.1"])
    assert c.alpn() == "h2"
    got = c.echo(data, timeout=30)
    c.close()
    assert len(got) == len(data) and hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), \
        "%d of %d bytes, equal prefix %s" % (len(got), len(data), data[:len(got)] == got)
    # ds's default server ALPN is h2, http/1.1 (unlike tcp's h2 alone)
    c = TLSClient(path, sni="ds.example", alpn=["http/1.1"])
    assert c.alpn() == "http/1.1"
    assert c.echo(b"http/1.1 over ds") == b"http/1.1 over ds"
    c.close()
    w.wait_stat("ds", "active", lambda v: v == 0, timeout=5)
    st = w.stats()["ds"]
    assert st["bytes_up"] >= MiB and st["bad_input"] == 0, st


# --------------------------------------------------------------------------
# reload

@pytest.mark.deadline(60)
def test_reload_keeps_ds_socket(wharf, upstream, sockdir):
    up = upstream("echo")
    path = str(sockdir / "reload.sock")
    conf = {"worker_processes": 2, "listeners": [ds_listener("ds", up.spec, path)]}
    w = start_ds(wharf, conf["listeners"], path, conf={"worker_processes": 2})
    inode = os.stat(path).st_ino

    early = unix_connect(path)
    early.settimeout(10)
    early.sendall(b"before reload")
    assert recv_exact(early, 13) == b"before reload"

    stop = threading.Event()
    counts = {"ok": 0, "failed": []}

    def hammer():
        while not stop.is_set():
            try:
                s = unix_connect(path, timeout=5)
                s.sendall(b"ping")
                d = s.recv(16)
                s.close()
                if d == b"ping":
                    counts["ok"] += 1
                else:
                    counts["failed"].append("echo %r" % d)
            except OSError as e:
                counts["failed"].append("%s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
            time.sleep(0.002)

    t = threading.Thread(target=hammer, daemon=True)
    t.start()
    time.sleep(0.2)
    for i in range(2):
        prev = w.workers()
        w.reload(conf, expect_change=False)
        assert wait_for(lambda: len(set(w.workers()) - set(prev)) >= 2, 10), \
            "no new workers after reload %d\n%s" % (i, w.diagnostics())
        time.sleep(0.3)
    stop.set()
    t.join(10)
    assert not counts["failed"], "connections failed during reloads: %s" % counts["failed"][:5]
    assert counts["ok"] > 10, counts
    assert os.stat(path).st_ino == inode, "the socket file was replaced by the reload"
    assert os.path.exists(path + ".lock")

    early.sendall(b"after reload")
    assert recv_exact(early, 12) == b"after reload", "the stream from before the reload"
    early.close()
    r = echo_ok(path, os.urandom(100000))
    assert r["ok"], r["error"]
    assert w.alive()
