"""Reload (SIGHUP): open streams survive, the new configuration takes effect,
a bad configuration is refused with file:line and the old one keeps serving,
and the listening sockets never refuse a connection."""
import errno
import os
import threading
import time

import pytest

from conftest import (connect, echo_roundtrip, echo_stream, free_port, listener,
                      pid_alive, wait_closed, wait_for)

MiB = 1 << 20


def refused(addr):
    try:
        s = connect(addr, timeout=2)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


@pytest.mark.deadline(90)
def test_reload_during_transfers(wharf, upstream):
    a = upstream("echo")
    b = upstream("echo")
    p_main, p_gone, p_added = free_port(), free_port(), free_port()
    conf = {"worker_processes": 2, "shutdown_timeout": 60,
            "listeners": [listener("main", a.spec, port=p_main),
                          listener("gone", a.spec, port=p_gone)]}
    w = wharf(conf)
    addr_main, addr_gone = w.addr("main"), w.addr("gone")
    r = echo_roundtrip(addr_gone)
    assert r["ok"], r["error"]

    n = 20
    payloads = [os.urandom(4 * MiB) for _ in range(n)]
    socks = [connect(addr_main, timeout=10) for _ in range(n)]
    results = [None] * n

    def run(i):
        results[i] = echo_stream(socks[i], payloads[i], chunk=65536, delay=0.04, timeout=70)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    assert all(t.is_alive() for t in threads), "transfers ended before the reload"

    new_conf = {"worker_processes": 2, "shutdown_timeout": 60,
                "listeners": [listener("main", b.spec, port=p_main),
                              listener("added", a.spec, port=p_added)]}
    old, new = w.reload(new_conf)
    assert sum(t.is_alive() for t in threads) > 0, "the reload did not overlap the transfers"

    # the new configuration is in effect
    r = echo_roundtrip(w.addr("added"), os.urandom(50000))
    assert r["ok"], "new listener 'added': %s" % r["error"]
    assert wait_for(lambda: refused(addr_gone), 5), "removed listener 'gone' still accepts"
    a_before = a.accepted
    r = echo_roundtrip(addr_main, os.urandom(50000))
    assert r["ok"], "listener 'main' after reload: %s" % r["error"]
    assert b.accepted == 1, "'main' does not relay to its new upstream"
    assert a.accepted == a_before, "'main' still relays to its old upstream"

    for t in threads:
        t.join(75)
    for s in socks:
        s.close()
    broken = {i: (res or {}).get("error", "no result") for i, res in enumerate(results)
              if not (res and res["ok"])}
    assert not broken, "%d of %d transfers broke across the reload: %s" % (
        len(broken), n, broken)
    assert wait_for(lambda: not any(pid_alive(p) for p in old), 10), \
        "old workers did not exit after draining"
    assert w.alive()


@pytest.mark.deadline(30)
def test_reload_drain_bounded_by_shutdown_timeout(wharf, upstream):
    """A stream idle across a reload keeps working on its old worker, which
    closes it after shutdown_timeout (cause shutdown) and exits; counters
    survive the reload."""
    up = upstream("echo")
    conf = {"shutdown_timeout": 2, "listeners": [listener("t", up.spec, port=free_port())]}
    w = wharf(conf)
    s = connect(w.addr("t"))
    try:
        r = echo_stream(s, b"before", half_close=False, timeout=5)
        assert r["ok"], r["error"]
        t0 = time.monotonic()
        old, new = w.reload(conf)
        r = echo_stream(s, b"after the reload", half_close=False, timeout=5)
        assert r["ok"], "stream broke by the reload: %s" % r["error"]
        _, how, _ = wait_closed(s, timeout=10)
        closed_after = time.monotonic() - t0
    finally:
        s.close()
    assert how in ("eof", "reset"), "stream still open 10 s after the reload"
    assert 1.5 <= closed_after <= 6, "stream closed %.2fs after the reload" % closed_after
    assert wait_for(lambda: not any(pid_alive(p) for p in old), 3), "old worker did not exit"
    assert w.workers() == new
    v = w.wait_stat("t", "shutdown", lambda v: v >= 1)
    assert v == 1, "stats column shutdown = %r, want 1" % v
    st = w.stats()["t"]
    assert st["accepted"] == 1 and st["active"] == 0, st
    assert st["bytes_up"] == len(b"before" + b"after the reload"), st


def test_reload_bad_config_keeps_old(wharf, upstream):
    up = upstream("echo")
    w = wharf({"worker_processes": 2,
               "listeners": [listener("t", up.spec, port=free_port())]})
    before = w.workers()
    good_text = w.conf_text
    lines = good_text.rstrip("\n").split("\n")
    bad_text = "\n".join(lines + ["no_such_directive = 1;"]) + "\n"
    bad_line = len(lines) + 1

    w.reload(bad_text, expect_change=False)
    where = "in %s:%d" % (w.conf_path, bad_line)
    assert wait_for(lambda: where in w.log(), 5), \
        "error log lacks %r after a bad reload:\n%s" % (where, w.log()[-3000:])
    time.sleep(0.5)
    assert w.alive()
    assert w.workers() == before, "workers changed after a refused reload"
    r = echo_roundtrip(w.addr("t"), os.urandom(100000))
    assert r["ok"], "old listener after a refused reload: %s" % r["error"]


@pytest.mark.deadline(90)
@pytest.mark.parametrize("kind", ["directory", "empty", "nul", "fifo", "missing"])
def test_reload_bad_include_keeps_old(wharf, upstream, kind):
    """libconfig's scanner exits the process when an @include names
    something it cannot read as a file (a directory, also what an empty or
    NUL-cut name names), and blocks on a FIFO: each must be a refused
    reload at file:line, never the end of the running master."""
    up = upstream("echo")
    w = wharf({"worker_processes": 1,
               "listeners": [listener("t", up.spec, port=free_port())]})
    before = w.workers()
    folder = os.path.dirname(w.conf_path)
    name = {"directory": "sub", "empty": "", "nul": "\0sub", "fifo": "pipe",
            "missing": "/etc/wharf-none.conf"}[kind]
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    if kind == "fifo":
        os.mkfifo(os.path.join(folder, "pipe"))
    with open(os.path.join(folder, "empty.conf"), "w"):
        pass
    # a good include first, so that the line the error names is counted
    # across an include
    lines = w.conf_text.rstrip("\n").split("\n") + ['@include "empty.conf"']
    bad_text = "\n".join(lines + ['  @include "%s"' % name]) + "\n"
    where = "in %s:%d" % (w.conf_path, len(lines) + 1)

    w.reload(bad_text, expect_change=False)
    assert wait_for(lambda: where in w.log(), 5), \
        "error log lacks %r after a bad reload:\n%s" % (where, w.log()[-3000:])
    time.sleep(0.5)
    assert w.alive(), "the master ended on an @include of a %s" % kind
    assert w.workers() == before, "workers changed after a refused reload"
    r = echo_roundtrip(w.addr("t"), os.urandom(100000))
    assert r["ok"], "old listener after a refused reload: %s" % r["error"]


@pytest.mark.deadline(60)
def test_listener_never_refuses_during_reload(wharf, upstream):
    up = upstream("echo")
    w = wharf({"worker_processes": 2,
               "listeners": [listener("t", up.spec, port=free_port())]})
    addr = w.addr("t")
    stop = threading.Event()
    counts = {"ok": 0, "refused": 0, "other": []}
    lock = threading.Lock()

    def hammer():
        while not stop.is_set():
            try:
                r = echo_roundtrip(addr, b"are you there?", timeout=10)
                err = r["error"]
            except ConnectionRefusedError:
                with lock:
                    counts["refused"] += 1
                continue
            except OSError as e:
                err = "%s: %s" % (errno.errorcode.get(e.errno, e.errno), e)
            with lock:
                if err is None:
                    counts["ok"] += 1
                else:
                    counts["other"].append(err)
            time.sleep(0.002)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    for i in range(3):
        w.reload({"worker_processes": 1 + i % 2,
                  "listeners": [listener("t", up.spec, port=addr[1])]})
        time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(15)
    assert counts["refused"] == 0, "ECONNREFUSED %d times during reloads" % counts["refused"]
    assert not counts["other"], "failed connections during reloads: %s" % counts["other"][:5]
    assert counts["ok"] > 20, counts
