"""Handshake deadlines against slowloris clients.

For each stream transport a client sends its handshake one byte every
TRICKLE seconds and never finishes: wharf must close it at its deadline
(no later than deadline + MARGIN after the accept, or after the TLS
handshake where the transport's deadline starts again there), even though
bytes keep arriving, and count it as "timeout". At the same time a good
client moves 10 MiB through the same listener and gets it back intact: the
real V2Ray client (interop/push.py through its dokodemo-door) where V2Ray
speaks the transport, a Python client for PROXY and h2c.

Deadlines: policy.handshake (2 s here) for PROXY, TLS and the tcp "http"
header; the module's own 4 s for the ws head and for the h2 preface,
SETTINGS and first request. Also: an h2 connection that sends its preface
but never opens a stream is closed by the same deadline; the refused
requests of one ws connection are capped; an mKCP conversation that never
sends data is closed after policy.handshake and never reaches the upstream.
"""
import os
import select
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import INTEROP, PUSH, PYTHON, connect, echo_stream, free_port, recv_until_eof, wait_for
from test_h2 import H2Conn
from test_interop import V2RAY, case_env, server_stream_settings
from test_kcp import cmd_segment, simple_seal

TRICKLE = 0.5       # seconds between two bytes of a slowloris client
MARGIN = 1.0        # how late after its deadline a connection may close
HANDSHAKE = 2       # policy.handshake in these tests
MODULE_DEADLINE = 4.0   # ws and h2: Go's ReadHeaderTimeout, not policy.handshake
MiB = 1 << 20


# --------------------------------------------------------------------------
# helpers

def trickle(sock, data, limit):
    """Sends data one byte every TRICKLE s until the peer closes (EOF, a
    reset, or a failed send), reading whatever it answers meanwhile.
    Returns (time closed or None, bytes sent)."""
    sock.setblocking(False)
    sent, next_send = 0, time.monotonic()
    end = time.monotonic() + limit
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_send and sent < len(data):
            try:
                sock.send(data[sent:sent + 1])
                sent += 1
            except (ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError:
                return time.monotonic(), sent
            next_send = now + TRICKLE
        wait = max(0.0, min(next_send, end) - time.monotonic())
        if not select.select([sock], [], [], wait)[0]:
            continue
        try:
            d = sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            continue
        except OSError:
            return time.monotonic(), sent
        if not d:
            return time.monotonic(), sent
    return None, sent


class Slowloris(threading.Thread):
    """One slowloris connection in a thread. opener() -> (socket, t_lo,
    t_hi): the connection, and the earliest and latest moments its deadline
    can have started (around the connect, or around the TLS handshake)."""

    def __init__(self, opener, data, deadline):
        super().__init__(daemon=True)
        self.opener, self.data, self.deadline = opener, data, deadline
        self.t_lo = self.t_hi = self.closed = None
        self.sent = 0
        self.error = None

    def run(self):
        try:
            sock, self.t_lo, self.t_hi = self.opener()
            self.closed, self.sent = trickle(sock, self.data, self.deadline + MARGIN + 3)
            sock.close()
        except Exception as e:      # reported by check()
            self.error = repr(e)

    def check(self, w):
        self.join(self.deadline + MARGIN + 10)
        assert self.error is None, "%s\n%s" % (self.error, w.diagnostics())
        assert self.closed is not None, "not closed after %.1f s (%d bytes sent)\n%s" % (
            self.deadline + MARGIN + 3, self.sent, w.diagnostics())
        took = self.closed - self.t_hi
        assert took <= self.deadline + MARGIN, "closed %.2f s after its start (deadline %s)" % (
            took, self.deadline)
        # the deadline closed it, not a refusal of what was sent
        assert self.closed - self.t_lo >= self.deadline - 0.2, "closed after %.2f s only\n%s" % (
            self.closed - self.t_lo, w.diagnostics())
        assert self.sent < len(self.data), "the whole handshake went out"
        assert self.sent >= 2, "it did not trickle"
        return took


def plain_opener(addr, prefix=b""):
    def open_():
        t0 = time.monotonic()
        s = connect(addr)
        t1 = time.monotonic()
        if prefix:
            s.sendall(prefix)
        return s, t0, t1
    return open_


def tls_opener(addr, alpn=None):
    """The TLS handshake at full speed; the deadline starts again after it."""
    def open_():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(alpn)
        raw = connect(addr)
        t0 = time.monotonic()
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        return s, t0, time.monotonic()
    return open_


def client_hello():
    """A real TLS ClientHello, as bytes to trickle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    t = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        t.do_handshake()
    return out.read()


def push(local_port, nbytes=10 * MiB, timeout=40):
    return subprocess.run([PYTHON, str(PUSH), str(local_port),
                           "--bytes", str(nbytes), "--streams", "1",
                           "--timeout", str(timeout), "--wait-port", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout + 20, text=True)


def policy_conf(listener):
    return {"worker_processes": 1, "listeners": [listener],
            "policy": {"handshake": HANDSHAKE, "connIdle": 300}}


def v2ray_case(case, wharf, spawn, tmp_path):
    """wharf serving an interop case's server streamSettings with an echo
    upstream, and the V2Ray client in front: (wharf, server addr, local port)."""
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    server_port, local_port, up_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(server_port),
               LOCAL_PORT=str(local_port), UPSTREAM_PORT=str(up_port))
    case_env(case, tmp_path, env)
    ss = server_stream_settings(case, env, tmp_path)
    echo = spawn([PYTHON, INTEROP / "echo.py", up_port, "--lifetime", "60"], "echo",
                 stdout=subprocess.PIPE)
    assert echo.stdout.readline().startswith(b"ready")
    w = wharf(policy_conf({"tag": "dl", "listen": "127.0.0.1", "port": server_port,
                           "upstream": "127.0.0.1:%d" % up_port, "streamSettings": ss}))
    client_json = tmp_path / "client.json"
    r = subprocess.run(["sh", str(INTEROP / "render.sh"),
                        str(INTEROP / "cases" / case / "client.json"), str(client_json)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stdout
    spawn([V2RAY, "-config", client_json], "v2ray")
    return w, ("127.0.0.1", server_port), local_port


def good_v2ray(w, local_port):
    r = push(local_port)
    assert r.returncode == 0, "push.py failed:\n%s\n%s" % (r.stdout, w.diagnostics())


def expect_timeouts(w, n, before=0):
    v = w.wait_stat("dl", "timeout", lambda v: v >= before + n, timeout=3)
    assert v is not None and v >= before + n, "timeout counter %s, want %d\n%s" % (
        v, before + n, w.diagnostics())
    st = w.stats()["dl"]
    assert st["bad_input"] == 0 and st["upstream"] == 0, st


def h2_without_streams(addr, out):
    """An h2 connection (TLS) that sends its preface and SETTINGS, then
    waits: out gets the time from before the connect (lo) and from the end
    of TLS (hi) to the server's close."""
    try:
        t_lo = time.monotonic()
        c = H2Conn(addr, tls=True)
        t_hi = time.monotonic()
        try:
            if not c.handshake():
                out["error"] = "no SETTINGS from the server"
                return
            c.run_until(lambda: c.eof, MODULE_DEADLINE + MARGIN + 2)
            if not c.eof:
                out["error"] = "not closed"
                return
            out["goaway"] = c.goaway
            out["lo"], out["hi"] = time.monotonic() - t_lo, time.monotonic() - t_hi
            out["took"] = out["hi"]
        finally:
            c.close()
    except Exception as e:
        out["error"] = repr(e)


# --------------------------------------------------------------------------
# stream transports: slowloris beside a good client

# the tcp "http" header's request head, never ended: its start at once (a
# first read of exactly 4 bytes is refused at once, as V2Ray refuses it),
# then the rest trickled
# The head stops inside a header value and goes on a byte at a time: as
# V2Ray does, wharf answers 400 at once to a head whose text but its last
# 4 bytes cannot begin a request (a header line cut before its colon), so
# a slowloris that fits V2Ray's check trickles a value.
HTTP_START = b"GET /video HTTP/1.1\r\nHost: www.example.com\r\nX-Pad: aaaa"
HTTP_REST = b"a" * 64
# a ws upgrade head, never ended
WS_HEAD = (b"GET /wharf-ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           + b"".join(b"X-Pad-%d: trickle\r\n" % i for i in range(20)))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.mark.deadline(40)
@pytest.mark.parametrize("case", ["tcp-tls", "tcp-http", "ws", "ws-tls", "h2"])
def test_slowloris_beside_v2ray(case, wharf, spawn, tmp_path):
    w, addr, local_port = v2ray_case(case, wharf, spawn, tmp_path)
    if case == "tcp-tls":
        loris = [Slowloris(plain_opener(addr), client_hello(), HANDSHAKE)]
    elif case == "tcp-http":
        loris = [Slowloris(plain_opener(addr, HTTP_START), HTTP_REST, HANDSHAKE)]
    elif case == "ws":
        loris = [Slowloris(plain_opener(addr), WS_HEAD, MODULE_DEADLINE)]
    elif case == "ws-tls":
        loris = [Slowloris(tls_opener(addr, ["http/1.1"]), WS_HEAD, MODULE_DEADLINE),
                 # the TLS handshake itself, trickled: the 4 s from accept
                 Slowloris(plain_opener(addr), client_hello(), MODULE_DEADLINE)]
    else:
        # h2 over TLS: the preface trickled after a fast handshake
        loris = [Slowloris(tls_opener(addr, ["h2"]), PREFACE, MODULE_DEADLINE)]
    for s in loris:
        s.start()
    idle = None
    if case == "h2":
        # the preface and SETTINGS at once, then no stream ever: closed by the
        # same deadline, with a GOAWAY
        idle = {}
        threading.Thread(target=h2_without_streams, args=(addr, idle), daemon=True).start()
    good_v2ray(w, local_port)
    for s in loris:
        s.check(w)
    if idle is not None:
        assert wait_for(lambda: "took" in idle or "error" in idle, MODULE_DEADLINE + MARGIN + 5)
        assert "error" not in idle, idle
        assert idle["goaway"] is not None, idle
        assert idle["lo"] >= MODULE_DEADLINE - 0.2 and idle["hi"] <= MODULE_DEADLINE + MARGIN, idle
    expect_timeouts(w, len(loris) + (idle is not None))
    if case == "h2":
        assert "h2 first request timed out, client: 127.0.0.1" in w.log(), w.log()[-2000:]
    else:
        assert "failed: timed out, client: 127.0.0.1" in w.log(), w.log()[-2000:]


@pytest.mark.deadline(40)
def test_slowloris_proxy_header(wharf, upstream):
    """A PROXY v1 header trickled; a good client (PROXY header, then 10 MiB
    echoed) on the same listener meanwhile."""
    up = upstream("echo")
    port = free_port()
    w = wharf(policy_conf({"tag": "dl", "listen": "127.0.0.1", "port": port,
                           "upstream": up.spec,
                           "streamSettings": {"network": "tcp", "security": "none",
                                              "tcpSettings": {"acceptProxyProtocol": True}}}))
    addr = ("127.0.0.1", port)
    loris = Slowloris(plain_opener(addr), b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 80\r\n",
                      HANDSHAKE)
    loris.start()
    s = connect(addr, timeout=30)
    try:
        s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 80\r\n")
        data = os.urandom(10 * MiB)
        r = echo_stream(s, data, timeout=30)
    finally:
        s.close()
    assert r["ok"], r
    loris.check(w)
    expect_timeouts(w, 1)
    assert "PROXY header failed: timed out, client: 127.0.0.1" in w.log(), w.log()[-2000:]


@pytest.mark.deadline(40)
def test_slowloris_h2c(wharf, upstream):
    """h2c: the preface trickled (the handshake's deadline), and a preface
    sent at once with no stream after it (the h2 connection's deadline),
    while a good h2c client echoes 10 MiB."""
    up = upstream("echo")
    port = free_port()
    w = wharf(policy_conf({"tag": "dl", "listen": "127.0.0.1", "port": port,
                           "upstream": up.spec,
                           "streamSettings": {"network": "h2", "security": "none",
                                              "httpSettings": {"host": ["localhost"],
                                                               "path": "/wharf-h2"}}}))
    addr = ("127.0.0.1", port)
    loris = [Slowloris(plain_opener(addr), PREFACE, MODULE_DEADLINE),
             # preface at once, then SETTINGS trickled: taken by the h2 module
             Slowloris(plain_opener(addr, PREFACE), b"\0\0\0\4\0\0\0\0\0" * 4, MODULE_DEADLINE)]
    for s in loris:
        s.start()
    c = H2Conn(addr, tls=False, timeout=30)
    try:
        data = os.urandom(10 * MiB)
        st = c.request(path="/wharf-h2", authority="localhost", body=data)
        assert c.run_until(lambda: st.end or st.rst is not None or c.eof, 40)
        assert st.status == 200 and bytes(st.data) == data, (st.status, len(st.data))
    finally:
        c.close()
    for s in loris:
        s.check(w)
    expect_timeouts(w, 2)
    log = w.log()
    assert "handshake failed: timed out, client: 127.0.0.1" in log, log[-2000:]
    assert "h2 first request timed out, client: 127.0.0.1" in log, log[-2000:]


# --------------------------------------------------------------------------
# ws: refused keep-alive requests are capped

@pytest.mark.deadline(30)
def test_ws_refused_requests_capped(wharf, upstream):
    """A bad request every 3.9 s would renew the 4 s deadline for ever: the
    8th answered request on a connection says Connection: close and ends it."""
    up = upstream("echo")
    port = free_port()
    w = wharf(policy_conf({"tag": "dl", "listen": "127.0.0.1", "port": port,
                           "upstream": up.spec,
                           "streamSettings": {"network": "ws", "security": "none",
                                              "wsSettings": {"path": "/wharf-ws"}}}))
    s = connect(("127.0.0.1", port))
    try:
        answers = []
        for i in range(10):
            if answers and b"Connection: close" in answers[-1]:
                break
            s.sendall(b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n")
            buf = b""
            deadline = time.monotonic() + 5
            while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
                s.settimeout(0.5)
                try:
                    d = s.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not d:
                    break
                buf += d
            if not buf:
                break
            answers.append(buf)
            time.sleep(0.2)
        rest, how = recv_until_eof(s, timeout=3)
    finally:
        s.close()
    assert len(answers) == 8, [a[:40] for a in answers]
    assert all(a.startswith(b"HTTP/1.1 404") for a in answers), answers
    assert b"Connection: close" in answers[-1] and b"Connection: close" not in answers[0]
    assert how == "eof", how
    assert "too many requests" in w.log(), w.log()[-2000:]


# --------------------------------------------------------------------------
# mKCP: a conversation without data

@pytest.mark.deadline(30)
def test_kcp_conversation_without_data(wharf, upstream):
    """A conversation that only pings is closed after policy.handshake,
    counted as a timeout, and never connects the upstream; one that sends
    a byte is relayed."""
    from test_kcp import start_wharf
    up = upstream("echo")
    port = free_port()
    ls = {"tag": "dl", "listen": "127.0.0.1", "port": port, "upstream": up.spec,
          "streamSettings": {"network": "kcp"}}
    w = start_wharf(wharf, ls, workers=1, policy={"handshake": HANDSHAKE, "connIdle": 300})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as talker:
        mute.bind(("127.0.0.1", 0))
        talker.bind(("127.0.0.1", 0))
        mute_port, talker_port = mute.getsockname()[1], talker.getsockname()[1]
        t0 = time.monotonic()
        mute.sendto(simple_seal(cmd_segment(77, 3)), ("127.0.0.1", port))  # PING
        # DATA conv 78, sn 0, una 0, one byte
        talker.sendto(simple_seal(struct.pack(">HBBIIIH", 78, 1, 0, 0, 0, 0, 1) + b"x"),
                      ("127.0.0.1", port))
        assert wait_for(lambda: up.accepted >= 1, 3), "the conversation with data not relayed"
        # the talker never acknowledges the echo either: it ends as a
        # timeout too, after the same policy.handshake of silence
        v = w.wait_stat("dl", "timeout", lambda v: v >= 2, timeout=HANDSHAKE + MARGIN + 1)
        took = time.monotonic() - t0
        assert v == 2, "timeout counter %s\n%s" % (v, w.diagnostics())
        assert took <= HANDSHAKE + MARGIN + 0.5, took
    assert up.accepted == 1, "the silent conversation reached the upstream"
    log = w.log()
    assert "mKCP first data timed out, client: 127.0.0.1:%d" % mute_port in log, log
    assert "mKCP client never acknowledged, client: 127.0.0.1:%d" % talker_port in log, log


@pytest.mark.deadline(30)
def test_h2_idle_connection_closed(wharf, upstream):
    """After its streams ended, an h2 connection without streams is closed
    with a GOAWAY after policy.connIdle (Go's http2 idle timeout)."""
    up = upstream("echo")
    port = free_port()
    idle = 2
    w = wharf({"worker_processes": 1,
               "policy": {"handshake": HANDSHAKE, "connIdle": idle},
               "listeners": [{"tag": "dl", "listen": "127.0.0.1", "port": port,
                              "upstream": up.spec,
                              "streamSettings": {"network": "h2", "security": "none",
                                                 "httpSettings": {"host": ["localhost"],
                                                                  "path": "/wharf-h2"}}}]})
    c = H2Conn(("127.0.0.1", port), tls=False)
    try:
        st = c.request(path="/wharf-h2", authority="localhost", body=b"one stream")
        assert c.run_until(lambda: st.end or st.rst is not None, 10)
        assert st.status == 200 and bytes(st.data) == b"one stream", (st.status, st.data)
        t_end = time.monotonic()
        assert c.run_until(lambda: c.eof, idle + MARGIN + 3)
        took = time.monotonic() - t_end
    finally:
        c.close()
    assert c.goaway is not None, "closed without a GOAWAY"
    assert idle - 0.5 <= took <= idle + MARGIN, took
    expect_timeouts(w, 1)
    assert "h2 connection without streams timed out, client: 127.0.0.1" in w.log(), w.log()[-2000:]
