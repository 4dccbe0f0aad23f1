"""Shared fixtures of wharf's integration suite.

Run as root from the repository root:

    /usr/bin/python3 -m pytest -q tests/integration

Everything here uses the Python standard library and pytest only. A test
starts the real `objs/wharf` master (daemon = false, so the process we start
IS the master) with a configuration written under pytest's tmp_path, talks
to it over 127.0.0.1, ::1 or unix sockets, and stops every process it
started, by pid, in fixture teardown (also when the test failed).

Environment: WHARF_SHARED overrides the shared folder (default: ../shared
next to the repository; the V2Ray interop fixtures are in its interop/);
WHARF_BIN overrides the binary under test (default: objs/wharf).

A sanitizer build (./configure --with-asan; make test-asan) is recognised
by its ASan runtime: every wharf process then writes its ASan, UBSan or
LSan report to a file in a session folder, and a test during which a report
file appeared fails in its teardown, with the report, whichever process
(master, worker, `wharf -S`) wrote it and whether or not it died of it.
"""
import faulthandler
import hashlib
import os
import pwd
import shutil
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("WHARF_SHARED") or (REPO.parent / "shared")).resolve()
INTEROP = SHARED / "interop"
# interop/push.py with a writer that survives a slow peer (see the file)
PUSH = Path(__file__).resolve().parent / "push.py"
WHARF = Path(os.path.abspath(os.environ.get("WHARF_BIN") or (REPO / "objs" / "wharf")))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

STAT_COLUMNS = ("accepted", "active", "done", "timeout", "upstream",
                "bad_input", "error", "shutdown", "limit", "bytes_up", "bytes_down")
CAUSES = ("done", "timeout", "upstream", "bad_input", "error", "shutdown", "limit")

DEFAULT_TEST_TIMEOUT = 60


# --------------------------------------------------------------------------
# sanitizer builds

def _sanitized(binary):
    """A --with-asan build names the ASan runtime's entry point."""
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _sanitized(WHARF)
SAN_DIR = None        # the session's folder: lsan.supp and reports/
SAN_REPORTS = None    # reports/NAME.PID, one per process that reported

if SANITIZED:
    SAN_DIR = Path(tempfile.mkdtemp(prefix="wharf-asan-"))
    os.chmod(SAN_DIR, 0o755)
    SAN_REPORTS = SAN_DIR / "reports"
    SAN_REPORTS.mkdir()
    # workers report as nobody, and LSan reads its suppressions only at
    # exit, so both must be reachable outside pytest's 0700 tmp_path
    os.chmod(SAN_REPORTS, 0o1777)
    shutil.copy(REPO / "tests" / "lsan.supp", SAN_DIR / "lsan.supp")
    os.chmod(SAN_DIR / "lsan.supp", 0o644)
    # set here, not per Popen: `wharf -S`, `-t` and `-s` runs inherit it too
    os.environ["ASAN_OPTIONS"] = ":".join((
        "halt_on_error=1", "abort_on_error=1", "detect_leaks=1",
        "log_path=%s" % (SAN_REPORTS / "asan")))
    os.environ["UBSAN_OPTIONS"] = ":".join((
        "halt_on_error=1", "print_stacktrace=1",
        "log_path=%s" % (SAN_REPORTS / "ubsan")))
    os.environ["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % (
        SAN_DIR / "lsan.supp")


# --------------------------------------------------------------------------
# pytest hooks: markers, skip when the binary is missing, per-test deadline

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deadline(seconds): per-test time limit enforced with SIGALRM "
        "(default %d s)" % DEFAULT_TEST_TIMEOUT)


def pytest_collection_modifyitems(config, items):
    if os.access(WHARF, os.X_OK):
        return
    skip = pytest.mark.skip(reason="%s is missing: build it first "
                                   "(./configure && make)" % WHARF)
    for item in items:
        if Path(str(item.fspath)).resolve().parent == Path(__file__).resolve().parent:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so fixtures can see a failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


class DeadlineExceeded(Exception):
    """Raised in the main thread by SIGALRM when a test runs too long."""


@pytest.fixture(autouse=True)
def _deadline(request):
    """A global per-test time limit (pytest-timeout is not installed)."""
    marker = request.node.get_closest_marker("deadline")
    seconds = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        sys.stderr.write("\n*** test exceeded its %d s deadline; thread stacks:\n" % seconds)
        try:
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        except Exception:
            pass
        raise DeadlineExceeded("test exceeded its %d s deadline" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_report_header(config):
    if SANITIZED:
        return "sanitizer build %s: reports in %s" % (WHARF, SAN_REPORTS)
    return None


_san_seen = set()


def _new_san_reports():
    """Report files not looked at before (they are looked at now)."""
    try:
        new = sorted(set(SAN_REPORTS.iterdir()) - _san_seen)
    except OSError:
        return []
    _san_seen.update(new)
    return new


def _san_text(paths):
    text = []
    for path in paths:
        try:
            body = path.read_text(errors="replace")
        except OSError as e:
            body = "(unreadable: %s)" % e
        text.append("--- %s ---\n%s" % (path, body[-8000:]))
    return "\n".join(text)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Fail a test during which a sanitizer report appeared. Looked at after
    its teardown, which also ends the module fixtures it was the last user
    of: every wharf it used was stopped by then, and its leak check done."""
    yield
    if SANITIZED:
        new = _new_san_reports()
        if new:
            pytest.fail("%d sanitizer report(s) during this test:\n%s"
                        % (len(new), _san_text(new)), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    if not SANITIZED:
        return
    # written outside any test (a session fixture's teardown, a process
    # that outlived its test): fail the run all the same
    stray = _new_san_reports()
    if stray:
        sys.stderr.write("\n%d sanitizer report(s) outside the tests:\n%s\n"
                         % (len(stray), _san_text(stray)))
        session.exitstatus = 1
    # a report stays for whoever reads the CI log; an empty folder does not
    if not any(SAN_REPORTS.iterdir()):
        shutil.rmtree(SAN_DIR, ignore_errors=True)


# --------------------------------------------------------------------------
# small helpers

def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; returns it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HANDED_OUT = set()


def free_port(host="127.0.0.1"):
    """A port free a moment ago for both TCP and UDP, below the kernel's
    ephemeral range: a port the kernel hands out (port 0, outgoing
    connections) cannot take it between this call and the bind that
    follows, which made a v2ray client fail to listen now and then.
    Never the same port twice in one run: a test takes several ports
    before it binds any of them."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10000, low)
        if port in _HANDED_OUT:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(fam, kind) as s:
                    s.bind((host, port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port below %d" % low)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def unix_address(listen):
    """Socket address of a unix listener value: "/path" or "@abstract"."""
    if listen.startswith("@"):
        return "\0" + listen[1:]
    return listen


def connect(addr, timeout=10):
    """Connect to ("host", port) (IPv4 or IPv6) or a unix address (str)."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(addr)
        except BaseException:
            s.close()
            raise
        return s
    host, port = addr
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def recv_until_eof(sock, timeout=10, limit=1 << 30):
    """Read until EOF. Returns (data, how) with how in "eof", "reset", "timeout"."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while True:
        if time.monotonic() >= deadline:
            return bytes(buf), "timeout"
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return bytes(buf), "reset"
        if not chunk:
            return bytes(buf), "eof"
        buf += chunk
        if len(buf) > limit:
            return bytes(buf), "limit"


def recv_exact(sock, n, timeout=10):
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        if time.monotonic() >= deadline:
            raise TimeoutError("got %d of %d bytes" % (len(buf), n))
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        if not chunk:
            raise EOFError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def wait_closed(sock, timeout):
    """Wait until the peer closes (EOF or RST). Returns (seconds, how, data)."""
    t0 = time.monotonic()
    data, how = recv_until_eof(sock, timeout=timeout)
    return time.monotonic() - t0, how, data


def echo_stream(sock, data, chunk=65536, delay=0.0, timeout=60, half_close=True):
    """Send `data` from a thread while reading the echo concurrently.

    Returns a dict: ok (echo byte-exact, and when half_close the peer then
    closed with EOF), received (bytes), error (str or None). `delay` sleeps
    between chunks so that a transfer spans some wall-clock time.
    """
    result = {"ok": False, "received": b"", "error": None, "sent": 0}
    send_err = []

    def writer():
        try:
            view = memoryview(data)
            off = 0
            while off < len(view):
                n = sock.send(view[off:off + chunk])
                off += n
                result["sent"] = off
                if delay:
                    time.sleep(delay)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            send_err.append("send: %s" % e)

    sock.settimeout(0.5)
    wt = threading.Thread(target=writer, daemon=True)
    wt.start()
    buf = bytearray()
    deadline = time.monotonic() + timeout
    err = None
    try:
        while len(buf) < len(data):
            if time.monotonic() > deadline:
                err = "timeout after %d of %d bytes" % (len(buf), len(data))
                break
            try:
                c = sock.recv(262144)
            except socket.timeout:
                continue
            if not c:
                err = "EOF after %d of %d bytes" % (len(buf), len(data))
                break
            buf += c
        if err is None and half_close:
            rest, how = recv_until_eof(sock, timeout=max(1.0, deadline - time.monotonic()))
            if rest:
                err = "%d extra bytes after the echo" % len(rest)
                buf += rest
            elif how != "eof":
                err = "no EOF after the echo (%s)" % how
    except OSError as e:
        err = "recv: %s (after %d of %d bytes)" % (e, len(buf), len(data))
    wt.join(5)
    result["received"] = bytes(buf)
    if err is None and send_err:
        err = send_err[0]
    if err is None and hashlib.sha256(buf).digest() != hashlib.sha256(data).digest():
        err = "sha256 mismatch (%d bytes received)" % len(buf)
    result["error"] = err
    result["ok"] = err is None
    return result


def echo_roundtrip(addr, payload=b"ping-wharf", timeout=10, prefix=b""):
    """One short connection: send payload, read it back, half-close, expect
    EOF. prefix goes first and is not echoed (a PROXY header); the result's
    "client" is the connection's local address."""
    s = connect(addr, timeout=timeout)
    try:
        if prefix:
            s.sendall(prefix)
        r = echo_stream(s, payload, timeout=timeout)
        r["client"] = s.getsockname()
    finally:
        s.close()
    return r


def proc_stat(pid):
    """(comm, state, ppid) from /proc/PID/stat, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            raw = f.read()
    except OSError:
        return None
    lp, rp = raw.index("("), raw.rindex(")")
    comm = raw[lp + 1:rp]
    rest = raw[rp + 2:].split()
    return comm, rest[0], int(rest[1])


def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st and st[2] == ppid and st[1] != "Z":
            out.append(int(d))
    return sorted(out)


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


def proc_uids(pid):
    """(real, effective, saved, fs) uids from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError("no Uid line for pid %d" % pid)


def nobody_uid():
    return pwd.getpwnam("nobody").pw_uid


def _tcp_listen_ports():
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "0A":
                        ports.add(int(p[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def _unix_listen_paths():
    paths = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            p = line.split(None, 7)
            if len(p) >= 8 and int(p[3], 16) & 0x10000:
                paths.add(p[7].rstrip("\n"))
    return paths


def socket_inode_owner(pids):
    """{socket inode: pid} for the sockets held by the given pids."""
    owner = {}
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                owner[int(link[8:-1])] = pid
    return owner


def server_side_inode(listen_port, client_port):
    """Inode of the accepted (server-side) TCP socket listen_port <- client_port."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                p = line.split()
                lport = int(p[1].rsplit(":", 1)[1], 16)
                rport = int(p[2].rsplit(":", 1)[1], 16)
                if lport == listen_port and rport == client_port and p[3] != "0A":
                    return int(p[9])
    return None


# --------------------------------------------------------------------------
# libconfig rendering

def _lc_value(v, indent):
    pad = "  " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        inner = "".join("%s  %s = %s;\n" % (pad, k, _lc_value(x, indent + 1))
                        for k, x in v.items())
        return "{\n" + inner + pad + "}"
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):
            return "(\n" + ",\n".join(pad + "  " + _lc_value(x, indent + 1)
                                      for x in v) + "\n" + pad + ")"
        return "[ " + ", ".join(_lc_value(x, indent) for x in v) + " ]"
    raise TypeError("cannot render %r" % (v,))


def render_conf(conf):
    return "".join("%s = %s;\n" % (k, _lc_value(v, 0)) for k, v in conf.items())


def listener(tag, upstream, listen="127.0.0.1", port=None, network="tcp",
             proxy_protocol=None, stream_settings=None, **extra):
    """A listener group as a dict (for render_conf)."""
    d = {"tag": tag, "listen": listen}
    if port is not None:
        d["port"] = port
    d["upstream"] = upstream
    ss = {"network": network, "security": "none"}
    if proxy_protocol is not None:
        ss["tcpSettings"] = {"acceptProxyProtocol": bool(proxy_protocol),
                             "header": {"type": "none"}}
    if stream_settings:
        ss.update(stream_settings)
    d["streamSettings"] = ss
    d.update(extra)
    return d


# --------------------------------------------------------------------------
# upstream helpers (in-process, threaded)

def record_until_eof(conn, rec, echo=False):
    """An upstream handler's first part: record (and echo, if asked) what the
    client sends until its EOF, then note the EOF in rec["eof"]."""
    while True:
        d = conn.recv(65536)
        if not d:
            rec["eof"] = True
            return
        rec["data"] += d
        if echo:
            conn.sendall(d)


class Upstream:
    """A threaded TCP or unix server in this process.

    handler(conn, rec) runs in its own thread per connection; `rec` is a
    dict this object keeps in self.conns (keys: data, eof, closed, ...).
    The built-in modes are "echo" (echo until EOF, then half-close and close)
    and "sink" (record until EOF, then close, optionally sending `reply`).
    """

    def __init__(self, mode="echo", host="127.0.0.1", port=0, unix=None,
                 handler=None, reply=None, prefix=b""):
        self.mode = mode
        self.reply = reply
        self.prefix = prefix
        self.handler = handler
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        if unix is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix)
            if not unix.startswith("\0"):
                os.chmod(unix, 0o777)
            self.unix = unix
            self.port = None
            self.host = None
        else:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.host = host
            self.port = self.sock.getsockname()[1]
            self.unix = None
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def spec(self):
        """The value for a listener's `upstream`."""
        if self.unix is not None:
            return "unix:" + ("@" + self.unix[1:] if self.unix.startswith("\0") else self.unix)
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    @property
    def accepted(self):
        with self.lock:
            return len(self.conns)

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            rec = {"data": bytearray(), "eof": False, "closed": False,
                   "error": None, "t_accept": time.monotonic()}
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._serve, args=(conn, rec), daemon=True).start()

    def _serve(self, conn, rec):
        conn.settimeout(120)
        try:
            if self.handler is not None:
                self.handler(conn, rec)
            elif self.mode == "echo":
                if self.prefix:
                    conn.sendall(self.prefix)
                while True:
                    d = conn.recv(262144)
                    if not d:
                        rec["eof"] = True
                        break
                    rec["bytes"] = rec.get("bytes", 0) + len(d)
                    conn.sendall(d)
                conn.shutdown(socket.SHUT_WR)
            elif self.mode == "sink":
                while True:
                    d = conn.recv(262144)
                    if not d:
                        rec["eof"] = True
                        break
                    rec["data"] += d
                if self.reply:
                    conn.sendall(self.reply)
        except OSError as e:
            rec["error"] = str(e)
        finally:
            try:
                conn.close()
            except OSError:
                pass
            rec["closed"] = True
            rec["t_closed"] = time.monotonic()

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)
        if self.unix and not self.unix.startswith("\0"):
            try:
                os.unlink(self.unix)
            except OSError:
                pass


@pytest.fixture
def upstream():
    """Factory: upstream(mode="echo"|"sink", ...) -> Upstream, closed at teardown."""
    made = []

    def make(*a, **kw):
        u = Upstream(*a, **kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


@pytest.fixture
def sockdir():
    """A short directory that workers (running as nobody) can traverse.

    pytest's tmp_path sits under a 0700 directory owned by root, where an
    unprivileged worker cannot reach a unix socket.
    """
    d = tempfile.mkdtemp(prefix="wharf-it-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# the wharf master

class WharfError(AssertionError):
    pass


class Wharf:
    """One wharf master started from a configuration in its own prefix."""

    def __init__(self, prefix, conf):
        self.prefix = Path(prefix)
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        self.conf_path = self.prefix / "wharf.conf"
        self.proc = None
        self.known_pids = set()
        self.token = uuid.uuid4().hex
        self.output_path = self.prefix / "master.out"
        self._output = None
        self.set_conf(conf)

    # configuration -------------------------------------------------------
    def _full_conf(self, conf):
        full = {
            "daemon": False,
            "user": "nobody",
            "worker_processes": 1,
            "pid": "logs/wharf.pid",
            "error_log": "logs/error.log",
            "log_level": "info",
        }
        full.update(conf)
        return full

    def set_conf(self, conf):
        """conf: a dict (merged over the defaults) or raw libconfig text."""
        if isinstance(conf, str):
            # raw text (e.g. a deliberately broken file): keep the last dict,
            # which describes what the running master still serves
            if not hasattr(self, "conf"):
                self.conf = {}
            text = conf
        else:
            self.conf = self._full_conf(conf)
            text = render_conf(self.conf)
        self.conf_text = text
        self.conf_path.write_text(text)

    @property
    def pid_file(self):
        p = Path((self.conf or {}).get("pid", "logs/wharf.pid"))
        return p if p.is_absolute() else self.prefix / p

    @property
    def error_log(self):
        p = Path((self.conf or {}).get("error_log", "logs/error.log"))
        return p if p.is_absolute() else self.prefix / p

    def expected_workers(self, conf=None):
        conf = conf or self.conf
        n = conf.get("worker_processes", 1)
        if n == "auto":
            return os.cpu_count() or 1
        return int(n)

    def listeners(self, conf=None):
        conf = conf or self.conf
        return list(conf.get("listeners", ()))

    def addr(self, tag):
        """Client address of the listener with this tag."""
        for l in self.listeners():
            if l["tag"] == tag:
                listen = l.get("listen", "0.0.0.0")
                if listen.startswith("/") or listen.startswith("@"):
                    return unix_address(listen)
                host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen, listen)
                return (host, l["port"])
        raise KeyError(tag)

    def stats_port(self):
        st = (self.conf or {}).get("stats")
        return st.get("port") if st else None

    # process -------------------------------------------------------------
    def cmd(self, *args):
        return [str(WHARF), "-p", str(self.prefix), "-c", str(self.conf_path)] + list(args)

    def run(self, *args, timeout=10):
        """Run `objs/wharf -p PREFIX -c CONF ARGS` to completion."""
        return subprocess.run(self.cmd(*args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout,
                              stdin=subprocess.DEVNULL, text=True, errors="replace")

    def start(self, wait=True, timeout=10):
        self._output = open(self.output_path, "ab")
        # every process of this instance inherits the token: teardown finds
        # (and kills) them by it even after they were reparented
        env = dict(os.environ, WHARF_IT_TOKEN=self.token)
        self.proc = subprocess.Popen(self.cmd(), stdin=subprocess.DEVNULL, env=env,
                                     stdout=self._output, stderr=subprocess.STDOUT)
        self.known_pids.add(self.proc.pid)
        if wait:
            self.wait_ready(timeout=timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def workers(self):
        """Pids of the master's children (workers, including draining old ones)."""
        if not self.alive():
            return []
        w = children_of(self.proc.pid)
        self.known_pids.update(w)
        return w

    def log(self):
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def output(self):
        try:
            return self.output_path.read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self):
        return ("--- master stdout/stderr ---\n%s\n--- error log (%s) ---\n%s"
                % (self.output()[-4000:], self.error_log, self.log()[-6000:]))

    def _fail(self, msg):
        raise WharfError("%s\n%s" % (msg, self.diagnostics()))

    def _listening(self, conf):
        tcp = _tcp_listen_ports()
        unix = None
        missing = []
        for l in self.listeners(conf):
            if "listen" not in l and "port" not in l:
                continue        # it takes only hand-offs from fallbacks
            listen = l.get("listen", "0.0.0.0")
            if listen.startswith("/") or listen.startswith("@"):
                if unix is None:
                    unix = _unix_listen_paths()
                if listen not in unix:
                    missing.append(listen)
            elif l.get("port") not in tcp:
                missing.append("%s:%s" % (listen, l.get("port")))
        st = conf.get("stats")
        if st and st.get("port") not in tcp:
            missing.append("stats port %s" % st.get("port"))
        return missing

    def wait_ready(self, timeout=10, old_workers=None):
        """Wait until the pid file exists, every listener is listening and
        the configured number of (new) workers runs."""
        deadline = time.monotonic() + timeout
        want = self.expected_workers()
        old = set(old_workers or ())
        missing = ["?"]
        new = []
        while time.monotonic() < deadline:
            if not self.alive():
                self._fail("wharf exited with status %s while starting" % self.proc.returncode)
            missing = self._listening(self.conf)
            new = [p for p in self.workers() if p not in old]
            if not missing and len(new) >= want and self.pid_file.exists():
                return new
            time.sleep(0.05)
        self._fail("wharf not ready after %ss: not listening: %s; new workers %s "
                   "(want %d); pid file %s exists: %s"
                   % (timeout, missing, new, want, self.pid_file, self.pid_file.exists()))

    def stats(self):
        """{tag: {column: int}} from `wharf -S`."""
        r = self.run("-S", timeout=10)
        if r.returncode != 0:
            raise WharfError("wharf -S exited %d: %s" % (r.returncode, r.stderr))
        return parse_stats(r.stdout)

    def stat(self, tag, column):
        return self.stats()[tag][column]

    def wait_stat(self, tag, column, pred, timeout=5):
        """Poll stats until pred(value) holds; returns the last value."""
        last = [None]

        def check():
            try:
                last[0] = self.stats().get(tag, {}).get(column)
            except (WharfError, subprocess.TimeoutExpired):
                return False
            return last[0] is not None and pred(last[0])

        wait_for(check, timeout, interval=0.1)
        return last[0]

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def reload(self, new_conf=None, expect_change=True, timeout=10):
        """Rewrite the conf (dict or text), send SIGHUP; when expect_change,
        wait until the set of workers changed and the new ones are ready.
        Returns (old_workers, new_workers)."""
        old = self.workers()
        if new_conf is not None:
            self.set_conf(new_conf)
        self.send_signal(signal.SIGHUP)
        if not expect_change:
            return old, None
        new = self.wait_ready(timeout=timeout, old_workers=old)
        return old, new

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Signal the master and wait for it; returns the exit status (None if it
        did not exit in time)."""
        if not self.alive():
            return self.proc.returncode
        self.workers()
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _leftovers(self):
        left = set()
        for pid in self.known_pids:
            st = proc_stat(pid)
            if pid != self.proc.pid and st and st[1] != "Z" and st[0].startswith("wharf"):
                left.add(pid)
        mark = ("WHARF_IT_TOKEN=%s" % self.token).encode()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == self.proc.pid:
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if mark in env.split(b"\0") and pid_alive(int(d)):
                left.add(int(d))
        return sorted(left)

    def cleanup(self):
        """Teardown: stop the master and every worker we have seen, by pid."""
        if self.proc is None:
            return
        if self.alive():
            self.workers()
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.workers()
                self.proc.kill()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    pass
        # workers normally exit with the master; give them a moment, then
        # kill what is left of ours (known pids, or pids carrying our token)
        wait_for(lambda: not self._leftovers(), 2)
        for pid in self._leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self._output:
            self._output.close()
            self._output = None



def render(template, out, env):
    """An interop template (INTEROP/render.sh) filled from env into out."""
    r = subprocess.run(["sh", str(INTEROP / "render.sh"), str(template), str(out)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stdout


def udp_bound(port):
    """Some socket is bound to UDP port (any address), per /proc/net/udp*."""
    want = ":%04X" % port
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                for line in f.readlines()[1:]:
                    if line.split()[1].endswith(want):
                        return True
        except OSError:
            pass
    return False


def datagram_stats(w):
    """{tag: {datagrams_in, datagrams_out, passed, auth, malformed, refused,
    send}} from the second table of `wharf -S` (UDP listeners)."""
    r = w.run("-S", timeout=10)
    assert r.returncode == 0, r.stderr
    out, header = {}, None
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "listener":
            header = parts[1:] if "datagrams_in" in parts else None
            continue
        if header and len(parts) == len(header) + 1:
            out[parts[0]] = {c: int(v) for c, v in zip(header, parts[1:])}
    return out


def parse_stats(text):
    """Parse `wharf -S` output into {tag: {column: int}}."""
    lines = [l.split() for l in text.splitlines() if l.strip()]
    header = None
    out = {}
    for parts in lines:
        if header is None:
            if parts and parts[0] == "listener":
                header = parts[1:]
            continue
        if len(parts) != len(header) + 1:
            continue
        try:
            out[parts[0]] = {c: int(v) for c, v in zip(header, parts[1:])}
        except ValueError:
            continue
    if header is None:
        raise WharfError("no header line in wharf -S output:\n%s" % text)
    missing = [c for c in STAT_COLUMNS if c not in header]
    if missing:
        raise WharfError("wharf -S header lacks %s:\n%s" % (missing, text))
    return out


@pytest.fixture
def wharf(tmp_path, request):
    """Factory: wharf(conf_dict_or_text, start=True, ...) -> a started Wharf.

    Every instance is stopped (TERM, then KILL by pid) at teardown.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root: the master switches its workers to nobody")
    made = []

    def make(conf, start=True, **kw):
        w = Wharf(tmp_path / ("w%d" % len(made)), conf)
        made.append(w)
        if start:
            w.start(**kw)
        return w

    yield make
    failed = _test_failed(request)
    for w in made:
        w.cleanup()
        if failed:
            print("\n=== wharf %s (pid %s) ===\n%s"
                  % (w.prefix.name, w.proc.pid if w.proc else None, w.diagnostics()))


@pytest.fixture
def spawn(tmp_path):
    """Factory: spawn(argv, name) -> Popen with stdout+stderr in tmp_path/name.log;
    every process is killed by pid at teardown."""
    procs = []

    def start(argv, name, **kw):
        out = open(tmp_path / ("%s.log" % name), "wb")
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                             stdout=kw.pop("stdout", out), stderr=subprocess.STDOUT, **kw)
        p.log_path = tmp_path / ("%s.log" % name)
        procs.append((p, out))
        return p

    yield start
    for p, out in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(3)
        out.close()
