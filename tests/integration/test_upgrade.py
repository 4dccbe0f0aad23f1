"""Binary upgrade, nginx's way (wharf(8) UPGRADING): USR2 execs the binary at
the path wharf was started from with every listening socket inherited, WINCH
drains the old workers, QUIT ends the old master, HUP before that rolls back.

The upgrade test runs long streams through tcp, ws+TLS, h2, quic and mKCP
(the Debian v2ray client for all but tcp) and a connect loop on a TCP and a
unix listener across the whole sequence: nothing may be refused or broken,
and every byte must come back. The "new binary" is objs/wharf copied over the
path the master was started from, so the exec'ed file is the new one.
"""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (INTEROP, PYTHON, WHARF, children_of, datagram_stats, echo_roundtrip,
                      free_port, listener, pid_alive, udp_bound, wait_for)
from test_interop import case_env, server_stream_settings
from test_quic import render
from test_tcp_relay import fetch_metrics

V2RAY = shutil.which("v2ray")
CASES = ["ws-tls", "h2", "quic", "kcp"]
CHUNK = 4096


def until(pred, timeout, what):
    assert wait_for(pred, timeout, what=what), "timed out (%ss) waiting for %s" % (timeout, what)


def install_binary(path):
    """Puts objs/wharf at path as `install` does (a new file renamed over
    the old one: a running binary cannot be written)."""
    tmp = path.with_name(path.name + ".new")
    shutil.copy2(WHARF, tmp)
    os.replace(tmp, path)


def at_path(w, binary):
    """Run w's master from binary instead of objs/wharf."""
    w.cmd = lambda *args: [str(binary), "-p", str(w.prefix), "-c", str(w.conf_path)] + list(args)


def read_pid(path):
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Stream(threading.Thread):
    """One connection that writes CHUNK bytes every 20 ms until stopped and
    checks that exactly what it wrote comes back."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr = addr
        self.stop = threading.Event()
        self.sent = bytearray()
        self.got = bytearray()
        self.error = None

    def run(self):
        fam = socket.AF_UNIX if isinstance(self.addr, str) else socket.AF_INET
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(15)
            s.connect(self.addr)
            while not self.stop.is_set():
                d = os.urandom(CHUNK)
                s.sendall(d)
                self.sent += d
                s.settimeout(0.02)
                try:
                    while True:
                        r = s.recv(65536)
                        if not r:
                            raise OSError("EOF after %d of %d bytes" % (len(self.got), len(self.sent)))
                        self.got += r
                except socket.timeout:
                    pass
            s.settimeout(15)
            while len(self.got) < len(self.sent):
                r = s.recv(65536)
                if not r:
                    raise OSError("EOF after %d of %d bytes" % (len(self.got), len(self.sent)))
                self.got += r
            s.close()
        except OSError as e:
            self.error = "%s: %s" % (self.addr, e)

    def ok(self):
        return self.error is None and bytes(self.got) == bytes(self.sent)


class ConnectLoop(threading.Thread):
    """Connects, echoes a line and closes, over and over, counting refusals."""

    def __init__(self, addrs):
        super().__init__(daemon=True)
        self.addrs = addrs
        self.stop = threading.Event()
        self.tried = self.refused = 0
        self.failures = []

    def run(self):
        while not self.stop.is_set():
            for addr in self.addrs:
                self.tried += 1
                try:
                    r = echo_roundtrip(addr, b"loop-%d" % self.tried, timeout=10)
                except ConnectionRefusedError:
                    self.refused += 1
                    continue
                except OSError as e:
                    self.failures.append("%s: %s" % (addr, e))
                    continue
                if not r["ok"]:
                    if "refused" in str(r["error"]).lower():
                        self.refused += 1
                    else:
                        self.failures.append(r["error"])
            time.sleep(0.01)


def transport(case, base, spawn, up_port):
    """A listener for the interop case and its v2ray client; returns
    (listener dict, client's local address)."""
    d = base / case
    d.mkdir()
    port, local = free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(port),
               LOCAL_PORT=str(local), UPSTREAM_PORT=str(up_port),
               QUIC_KEY="wharf-interop-quic-key", KCP_SEED="wharf-interop-kcp-seed")
    case_env(case, d, env)
    ss = server_stream_settings(case, env, d)
    client = render(case, "client.json", env, d)
    spawn([V2RAY, "-config", client], "v2ray-" + case)
    ls = {"tag": case.replace("-", "_"), "listen": "127.0.0.1", "port": port,
          "upstream": "127.0.0.1:%d" % up_port, "streamSettings": ss}
    return ls, ("127.0.0.1", local)


def start(w, udp_ports=(), workers=2):
    w.start(wait=False)
    def tcp_missing():
        # _listening knows TCP and unix listeners only
        return [m for m in w._listening(w.conf)
                if not any(m.endswith(":%d" % p) for p in udp_ports)]

    until(lambda: all(udp_bound(p) for p in udp_ports) and not tcp_missing()
          and w.pid_file.exists() and len(w.workers()) >= workers, 10,
          what="wharf ready")
    return read_pid(w.pid_file)


def oldbin(w):
    return w.pid_file.with_name(w.pid_file.name + ".oldbin")


def workers_of(master):
    return [p for p in children_of(master) if (read_comm(p) or "").startswith("wharf: worker")]


def read_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def usr2(w, old, workers=2):
    """USR2 to old: returns the new master's pid once it and its workers run."""
    os.kill(old, signal.SIGUSR2)
    until(lambda: oldbin(w).exists() and read_pid(w.pid_file) not in (None, old)
          and len(workers_of(read_pid(w.pid_file))) >= workers, 10,
          what="new master and its workers")
    new = read_pid(w.pid_file)
    w.known_pids.add(new)
    assert read_pid(oldbin(w)) == old
    return new


def wait_exit(pid, timeout):
    until(lambda: not pid_alive(pid), timeout, what="process %d exits" % pid)


@pytest.mark.deadline(60)
@pytest.mark.skipif(V2RAY is None, reason="v2ray is not installed")
def test_upgrade_under_load(wharf, spawn, upstream, tmp_path, sockdir):
    echo = upstream("echo")
    up_port = free_port()
    echo_proc = spawn([PYTHON, INTEROP / "echo.py", up_port, "--lifetime", "120"], "echo",
                      stdout=subprocess.PIPE)
    assert echo_proc.stdout.readline().startswith(b"ready")
    lss, locals_ = [], {}
    for case in CASES:
        ls, local = transport(case, tmp_path, spawn, up_port)
        lss.append(ls)
        locals_[case] = local
    tcp_port = free_port()
    unix_path = str(sockdir / "u.sock")
    lss.append(listener("tcp", echo.spec, port=tcp_port))
    lss.append(listener("unix", echo.spec, listen=unix_path))
    binary = tmp_path / "sbin" / "wharf"
    binary.parent.mkdir()
    shutil.copy2(WHARF, binary)
    w = wharf({"worker_processes": 2, "shutdown_timeout": 6, "listeners": lss}, start=False)
    at_path(w, binary)
    udp = [ls["port"] for ls in lss if ls["streamSettings"]["network"] in ("quic", "kcp")]
    old = start(w, udp)
    old_workers = workers_of(old)

    streams = [Stream(("127.0.0.1", tcp_port)) for _ in range(2)] + [Stream(unix_path)]
    for case in CASES:
        streams += [Stream(locals_[case]) for _ in range(2)]
    for s in streams:
        s.start()
    until(lambda: all(len(s.got) > 0 or s.error for s in streams), 20,
          what="every stream echoes")
    assert not [s.error for s in streams if s.error]
    loop = ConnectLoop([("127.0.0.1", tcp_port), unix_path])
    loop.start()

    install_binary(binary)
    new = usr2(w, old)
    # the new master runs the file now at that path, not the replaced one
    assert os.readlink("/proc/%d/exe" % new) == str(binary)
    assert os.readlink("/proc/%d/exe" % old).endswith("(deleted)")
    assert "binary upgrade: started new master %d" % new in w.log()
    time.sleep(1.0)
    os.kill(old, signal.SIGWINCH)
    until(lambda: "binary upgrade: gracefully shutting down" in w.log(), 5,
          what="WINCH logged")
    time.sleep(1.0)
    for s in streams:
        s.stop.set()
    for s in streams:
        s.join(20)
    broken = [s.error or "%s: %d sent, %d back, equal: %s"
              % (s.addr, len(s.sent), len(s.got), s.ok()) for s in streams if not s.ok()]
    assert not broken, broken
    # an mKCP session lingers until shutdown_timeout; a QUIC connection
    # closes 2 s after its last stream (wh_quic_conn.c), well before
    until(lambda: not set(workers_of(old)) & set(old_workers), 15,
          what="old workers drained")
    os.kill(old, signal.SIGQUIT)
    assert w.proc.wait(10) == 0
    loop.stop.set()
    loop.join(15)
    print("binary upgrade: %d connects tried, %d refused, %d failed, %d streams broken of %d"
          % (loop.tried, loop.refused, len(loop.failures), len(broken), len(streams)))
    assert loop.refused == 0 and not loop.failures, (loop.refused, loop.failures[:5])
    assert loop.tried > 20

    assert not oldbin(w).exists()
    assert read_pid(w.pid_file) == new and pid_alive(new)
    assert os.path.exists(unix_path) and os.path.exists(unix_path + ".lock")
    # the new workers passed the old sessions' datagrams to their owners
    d = datagram_stats(w)
    assert d["quic"]["passed"] > 0 and d["kcp"]["passed"] > 0, d
    # and they serve every transport themselves
    after = {case: Stream(locals_[case]) for case in CASES}
    after["unix"] = Stream(unix_path)
    for s in after.values():
        s.start()
    time.sleep(0.5)
    for case, s in after.items():
        s.stop.set()
        s.join(20)
        assert s.ok(), (case, s.error)
    r = w.run("-s", "quit")
    assert r.returncode == 0, r.stderr
    wait_exit(new, 15)
    assert not os.path.exists(unix_path) and not w.pid_file.exists()


@pytest.mark.deadline(40)
def test_rollback_and_failed_exec(wharf, upstream, tmp_path, sockdir):
    echo = upstream("echo")
    tcp_port, unix_path = free_port(), str(sockdir / "r.sock")
    binary = tmp_path / "wharf"
    shutil.copy2(WHARF, binary)
    w = wharf({"worker_processes": 2, "listeners": [listener("tcp", echo.spec, port=tcp_port),
                                                     listener("unix", echo.spec,
                                                              listen=unix_path)]},
              start=False)
    at_path(w, binary)
    old = start(w)
    loop = ConnectLoop([("127.0.0.1", tcp_port), unix_path])
    loop.start()

    new = usr2(w, old)
    os.kill(old, signal.SIGWINCH)
    until(lambda: not workers_of(old), 10, what="old workers drained")
    os.kill(old, signal.SIGHUP)       # rollback: the old master's workers again
    until(lambda: len(workers_of(old)) == 2, 10, what="old workers restarted")
    os.kill(new, signal.SIGQUIT)
    wait_exit(new, 10)
    until(lambda: read_pid(w.pid_file) == old and not oldbin(w).exists(), 5,
          what="pid file given back")
    assert "new binary process %d exited" % new in w.log()

    # a binary that cannot start: the old master takes its pid file back
    tmp = tmp_path / "failing"
    tmp.write_text("#!/bin/sh\nexit 3\n")
    tmp.chmod(0o755)
    os.replace(tmp, binary)
    os.kill(old, signal.SIGUSR2)
    until(lambda: "exited with code 3" in w.log(), 5, what="failed upgrade logged")
    until(lambda: read_pid(w.pid_file) == old and not oldbin(w).exists(), 5,
          what="pid file given back")
    until(lambda: len(workers_of(old)) == 2, 10, what="workers restarted")
    # no binary at all: the exec fails, in the child, and the same happens
    os.unlink(binary)
    os.kill(old, signal.SIGUSR2)
    until(lambda: "execv() \"%s\" failed" % binary in w.log(), 5, what="failed exec logged")
    until(lambda: w.log().count("binary upgrade undone") == 3, 5, what="upgrade undone")
    until(lambda: read_pid(w.pid_file) == old and not oldbin(w).exists(), 5,
          what="pid file given back")
    time.sleep(0.3)
    loop.stop.set()
    loop.join(15)
    assert loop.refused == 0 and not loop.failures, (loop.refused, loop.failures[:5])
    assert loop.tried > 10
    assert echo_roundtrip(unix_path)["ok"] and echo_roundtrip(("127.0.0.1", tcp_port))["ok"]
    assert w.alive() and os.path.exists(unix_path)


@pytest.mark.deadline(30)
def test_stray_signals(wharf, upstream):
    echo = upstream("echo")
    stats_port = free_port()
    w = wharf({"worker_processes": 2, "stats": {"listen": "127.0.0.1", "port": stats_port},
               "listeners": [listener("tcp", echo.spec, port=free_port())]})
    addr = w.addr("tcp")
    master, workers = w.pid, sorted(workers_of(w.pid))

    def logged(text):
        until(lambda: text in w.log(), 5, what="log line %r" % text)

    os.kill(master, signal.SIGWINCH)
    logged("WINCH ignored: no binary upgrade in progress")
    for sig in (signal.SIGIO, signal.SIGPWR, signal.SIGRTMIN + 2, signal.SIGPIPE):
        os.kill(master, sig)
    logged("signal %d (" % signal.SIGIO)
    logged("signal %d (" % signal.SIGPWR)
    logged("signal %d (" % (signal.SIGRTMIN + 2))
    for sig in (signal.SIGHUP, signal.SIGUSR2, signal.SIGALRM, signal.SIGPWR):
        os.kill(workers[0], sig)
        logged("signal %d (%s) ignored by the worker" % (sig, signal.strsignal(sig)))
    os.kill(workers[1], signal.SIGWINCH)    # no UDP listener: nothing to leave
    time.sleep(0.3)
    assert w.alive() and sorted(workers_of(master)) == workers
    assert echo_roundtrip(addr)["ok"]

    new = usr2(w, master)
    os.kill(master, signal.SIGUSR2)
    logged("USR2 ignored: the new binary %d runs already" % new)
    os.kill(new, signal.SIGUSR2)
    logged("USR2 ignored: the old master %d still runs" % master)
    os.kill(new, signal.SIGWINCH)
    logged("WINCH ignored: no binary upgrade in progress")
    assert pid_alive(new) and w.alive() and echo_roundtrip(addr)["ok"]
    # QUIT without WINCH: the old master drains its workers and leaves
    os.kill(master, signal.SIGQUIT)
    assert w.proc.wait(10) == 0
    assert read_pid(w.pid_file) == new and not oldbin(w).exists()
    assert echo_roundtrip(addr)["ok"]
    # the stats listener was inherited too: the new workers serve it
    assert fetch_metrics(stats_port)[0] == 200
    os.kill(new, signal.SIGTERM)
    wait_exit(new, 10)


@pytest.mark.deadline(30)
def test_stale_pid_and_shm(wharf, upstream):
    echo = upstream("echo")
    w = wharf({"listeners": [listener("tcp", echo.spec, port=free_port())]})
    dead = w.pid
    shm = "/dev/shm/wharf.%d" % dead
    assert os.path.exists(shm)
    workers = workers_of(dead)
    w.proc.kill()
    w.proc.wait(5)
    for p in workers:
        os.kill(p, signal.SIGKILL)
    until(lambda: not any(pid_alive(p) for p in workers), 5, what="workers gone")
    # (any master started meanwhile, this test's or not, may remove the
    # dead one's segment already)
    assert read_pid(w.pid_file) == dead
    for args in (("-s", "quit"), ("-s", "reload"), ("-S",)):
        r = w.run(*args)
        assert r.returncode != 0, (args, r.stdout)
        assert "is not running" in r.stderr and "stale pid file" in r.stderr, r.stderr
        assert "No such process" not in r.stderr and "accepted" not in r.stdout
    w.start()
    assert read_pid(w.pid_file) == w.pid != dead
    assert not os.path.exists(shm)
    assert echo_roundtrip(w.addr("tcp"))["ok"]
    assert w.run("-S").returncode == 0
