"""Master/worker process model: privileges, worker count, respawn, signals,
`-s SIGNAL` through the pid file."""
import os
import pwd
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (Wharf, connect, echo_roundtrip, echo_stream, free_port, listener,
                      pid_alive, proc_stat, proc_uids, server_side_inode,
                      socket_inode_owner, wait_closed, wait_for)


def conf_with(up_spec, port, **top):
    d = {"listeners": [listener("t", up_spec, port=port)]}
    d.update(top)
    return d


def proc_status_field(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1:]
    return None


def test_workers_run_as_nobody_master_as_root(wharf, upstream):
    up = upstream("echo")
    w = wharf(conf_with(up.spec, free_port(), worker_processes=2))
    nobody = pwd.getpwnam("nobody")

    assert proc_uids(w.pid) == (0, 0, 0, 0), "master is not running as root"
    assert proc_stat(w.pid)[0] == "wharf: master"

    workers = w.workers()
    assert len(workers) == 2, "worker_processes = 2 gave workers %s" % workers
    # a worker drops root first thing after fork(); a slow one (ASan) may not yet have
    wait_for(lambda: all(proc_uids(p)[1] != 0 for p in workers), 5)
    for p in workers:
        assert proc_stat(p)[0] == "wharf: worker", proc_stat(p)
        assert proc_uids(p) == (nobody.pw_uid,) * 4, \
            "worker %d: Uid %s, want nobody (%d)" % (p, proc_uids(p), nobody.pw_uid)
        gids = tuple(int(x) for x in proc_status_field(p, "Gid"))
        assert gids == (nobody.pw_gid,) * 4, "worker %d: Gid %s" % (p, gids)
        groups = [int(x) for x in proc_status_field(p, "Groups") or []]
        assert 0 not in groups, "worker %d kept root's supplementary group: %s" % (p, groups)
    r = echo_roundtrip(w.addr("t"), os.urandom(10000))
    assert r["ok"], r["error"]


class UnprivilegedWharf(Wharf):
    """Started, and signalled with -s, as systemd runs the packaged unit:
    User=nobody (the package's is wharf) with the ambient
    CAP_NET_BIND_SERVICE and nothing else."""

    def cmd(self, *args):
        return (["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 "--inh-caps=-all,+net_bind_service", "--ambient-caps=+net_bind_service"]
                + super().cmd(*args))


def free_low_port():
    for port in range(990, 600, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("no free port below 1024")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to start a master as nobody")
def test_master_started_unprivileged():
    """A master that is not root switches no user: it binds a low port with
    CAP_NET_BIND_SERVICE, says so at info, reopens and reloads as usual."""
    nobody = pwd.getpwnam("nobody")
    top = Path(tempfile.mkdtemp(prefix="wharf-it-"))
    os.chmod(top, 0o755)
    port = free_low_port()
    w = UnprivilegedWharf(top / "w", {
        "user": "nobody", "worker_processes": 2,
        "listeners": [listener("low", "echo", port=port),
                      listener("ux", "echo", listen=str(top / "w" / "front.sock"))]})
    os.chown(w.prefix, nobody.pw_uid, nobody.pw_gid)
    os.chown(w.prefix / "logs", nobody.pw_uid, nobody.pw_gid)
    try:
        w.start()
        assert proc_uids(w.pid) == (nobody.pw_uid,) * 4
        for p in w.workers():
            assert proc_uids(p) == (nobody.pw_uid,) * 4, p
        for tag in ("low", "ux"):
            r = echo_roundtrip(w.addr(tag), os.urandom(5000))
            assert r["ok"], (tag, r["error"])
        log = w.log()
        assert '[info]' in log and 'the master runs as "nobody"' in log, log
        assert "[warn]" not in log and "[emerg]" not in log, log

        # USR1 (logrotate's postrotate): a new file, made by nobody
        os.rename(w.error_log, str(w.error_log) + ".1")
        w.send_signal(signal.SIGUSR1)
        wait_for(lambda: "reopening logs" in w.log(), 5, what="reopened error log")
        assert os.stat(w.error_log).st_uid == nobody.pw_uid

        old, new = w.reload()
        assert not set(old) & set(new)
        r = echo_roundtrip(w.addr("low"), b"after reload")
        assert r["ok"], r["error"]

        r = w.run("-s", "quit")
        assert r.returncode == 0, r.stderr
        assert w.proc.wait(10) == 0
        assert not w.pid_file.exists()
    finally:
        w.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def test_worker_processes_auto(wharf):
    w = wharf(conf_with("echo", free_port(), worker_processes="auto"))
    assert len(w.workers()) == (os.cpu_count() or 1)


def stream_owners(w, socks, port, timeout=5):
    """{index: worker pid} of the accepted side of each client socket."""
    owners = {}

    def resolve():
        inode_owner = socket_inode_owner(w.workers())
        for i, s in enumerate(socks):
            if i in owners:
                continue
            ino = server_side_inode(port, s.getsockname()[1])
            if ino is not None and ino in inode_owner:
                owners[i] = inode_owner[ino]
        return len(owners) == len(socks)

    wait_for(resolve, timeout)
    return owners


@pytest.mark.deadline(60)
def test_killed_worker_is_respawned(wharf, upstream):
    up = upstream("echo")
    port = free_port()
    w = wharf(conf_with(up.spec, port, worker_processes=2))
    workers = w.workers()
    assert len(workers) == 2

    n = 8
    size = 1 << 20
    payloads = [os.urandom(size) for _ in range(n)]
    socks = []
    for i in range(n):
        socks.append(connect(w.addr("t")))
        time.sleep(0.02)
    results = [None] * n

    def run(i):
        results[i] = echo_stream(socks[i], payloads[i], chunk=16384, delay=0.04, timeout=40)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    owners = stream_owners(w, socks, port)
    assert len(owners) == n, "could not find the worker of every stream: %s" % owners

    by_worker = {p: [i for i in owners if owners[i] == p] for p in workers}
    # kill a worker that holds streams while the other one holds some too;
    # if one worker holds them all, kill the idle one (all must then survive)
    busy = [p for p in workers if by_worker[p]]
    victim = busy[0] if len(busy) == 2 else [p for p in workers if not by_worker[p]][0]
    survivor = [p for p in workers if p != victim][0]
    print("streams per worker %s; killing %d" % (by_worker, victim))
    time.sleep(0.3)
    assert all(t.is_alive() for t in threads), "transfers ended before the kill"
    os.kill(victim, signal.SIGKILL)

    def respawned():
        cur = w.workers()
        return len(cur) == 2 and victim not in cur and survivor in cur

    assert wait_for(respawned, 3), "workers after killing %d: %s" % (victim, w.workers())
    r = echo_roundtrip(w.addr("t"), os.urandom(100000))
    assert r["ok"], "new connection after the respawn: %s" % r["error"]

    for t in threads:
        t.join(45)
    for s in socks:
        s.close()
    for i in range(n):
        res = results[i]
        assert res is not None, "stream %d did not finish" % i
        got = res["received"]
        assert got == payloads[i][:len(got)], "stream %d received corrupt data" % i
        if owners[i] == survivor:
            assert res["ok"], "stream %d of the surviving worker broke: %s" % (i, res["error"])
        else:
            assert not res["ok"], "stream %d of the killed worker completed?" % i
    assert any(r["ok"] for r in results)
    assert w.alive()


@pytest.mark.deadline(40)
def test_quit_drains_open_stream(wharf, upstream):
    up = upstream("echo")
    w = wharf(conf_with(up.spec, free_port(), shutdown_timeout=20))
    workers = w.workers()
    data = os.urandom(512 * 1024)
    s = connect(w.addr("t"))
    res = {}
    t = threading.Thread(target=lambda: res.update(
        echo_stream(s, data, chunk=8192, delay=0.04, timeout=30)), daemon=True)
    t.start()
    time.sleep(0.5)
    assert t.is_alive()
    w.send_signal(signal.SIGQUIT)
    t.join(35)
    s.close()
    assert res.get("ok"), "stream open at QUIT broke: %s" % res.get("error")
    try:
        rc = w.proc.wait(10)
    except Exception:
        rc = None
    assert rc == 0, "master after QUIT: exit status %r\n%s" % (rc, w.diagnostics())
    assert not w.pid_file.exists(), "pid file left behind after QUIT"
    assert wait_for(lambda: not any(pid_alive(p) for p in workers), 2), "workers left"


@pytest.mark.deadline(30)
def test_quit_bounded_by_shutdown_timeout(wharf, upstream):
    """An idle stream keeps working after QUIT, but only for shutdown_timeout."""
    up = upstream("echo")
    w = wharf(conf_with(up.spec, free_port(), shutdown_timeout=2))
    s = connect(w.addr("t"))
    try:
        r = echo_stream(s, b"before", half_close=False, timeout=5)
        assert r["ok"], r["error"]
        t0 = time.monotonic()
        w.send_signal(signal.SIGQUIT)
        time.sleep(0.5)
        r = echo_stream(s, b"during the drain", half_close=False, timeout=5)
        assert r["ok"], "stream broke right after QUIT: %s" % r["error"]
        _, how, data = wait_closed(s, timeout=10)
        closed_after = time.monotonic() - t0
    finally:
        s.close()
    assert how in ("eof", "reset"), "stream still open 10 s after QUIT (shutdown_timeout = 2)"
    assert 1.5 <= closed_after <= 6, "stream closed %.2fs after QUIT" % closed_after
    try:
        rc = w.proc.wait(5)
    except Exception:
        rc = None
    assert rc == 0, "master after QUIT: exit status %r" % rc


def test_term_stops_fast(wharf, upstream):
    up = upstream("echo")
    w = wharf(conf_with(up.spec, free_port(), worker_processes=2))
    workers = w.workers()
    s = connect(w.addr("t"))  # an open, idle stream must not delay TERM
    try:
        r = echo_stream(s, b"hi", half_close=False, timeout=5)
        assert r["ok"], r["error"]
        t0 = time.monotonic()
        rc = w.stop(signal.SIGTERM, timeout=3)
        took = time.monotonic() - t0
        assert rc is not None, "master still running 3 s after TERM"
        assert took < 3
        assert wait_for(lambda: not any(pid_alive(p) for p in workers), 1), \
            "workers survive the master"
        _, how, _ = wait_closed(s, timeout=3)
        assert how in ("eof", "reset")
    finally:
        s.close()


def test_signal_option_reload_and_stop(wharf, upstream):
    up = upstream("echo")
    w = wharf(conf_with(up.spec, free_port()))
    old = w.workers()
    r = w.run("-s", "reload")
    assert r.returncode == 0, "wharf -s reload: %d %s" % (r.returncode, r.stderr)
    new = w.wait_ready(timeout=10, old_workers=old)
    assert not set(new) & set(old)
    assert wait_for(lambda: not any(pid_alive(p) for p in old), 5), "old workers did not exit"
    rr = echo_roundtrip(w.addr("t"))
    assert rr["ok"], rr["error"]

    r = w.run("-s", "stop")
    assert r.returncode == 0, "wharf -s stop: %d %s" % (r.returncode, r.stderr)
    try:
        w.proc.wait(3)
    except Exception:
        pass
    assert not w.alive(), "master still running 3 s after -s stop"


def test_signal_option_reopen(wharf, upstream):
    up = upstream("echo")
    w = wharf(conf_with(up.spec, free_port()))
    log = w.error_log
    assert wait_for(log.exists, 2)
    rotated = log.with_name(log.name + ".1")
    os.rename(log, rotated)
    assert not log.exists()
    r = w.run("-s", "reopen")
    assert r.returncode == 0, "wharf -s reopen: %d %s" % (r.returncode, r.stderr)
    assert wait_for(log.exists, 3), "no new %s after -s reopen" % log.name
    assert w.alive()
    rr = echo_roundtrip(w.addr("t"))
    assert rr["ok"], rr["error"]


@pytest.mark.deadline(30)
def test_second_instance_leaves_the_first_alone(wharf, upstream):
    """A second master with the same configuration cannot bind: it says so
    on stderr and exits 1, without removing the running master's pid file
    or touching its listeners (regression: it used to unlink the pid file)."""
    up = upstream()
    w = wharf({"listeners": [listener("a", up.spec, port=free_port())]})
    pid_before = w.pid_file.read_text()
    r = w.run(timeout=10)
    assert r.returncode == 1 and "bind()" in r.stderr, (r.returncode, r.stderr)
    assert w.pid_file.exists() and w.pid_file.read_text() == pid_before
    r = echo_roundtrip(w.addr("a"), b"still here")
    assert r["ok"] and r["received"] == b"still here", r
