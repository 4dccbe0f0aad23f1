"""The websocket transport (spec 4) seen from clients: raw sockets, the
python websockets client, and the real V2Ray 4.34 server as the reference.

- every handshake answer of spec 4.3 compared byte for byte (Date masked)
  with what Debian's v2ray server sends for the same request, keep-alive
  after the answers that keep the connection, and the header timeout;
- data transfer with the websockets client (mixed sizes, ping, fragments,
  text, close codes), raw frames (masking, protocol violations, a ping
  between fragments, the server's own frames), the close after the
  upstream ended;
- TLS (ALPN http/1.1 only), X-Forwarded-For in the log, early data
  (path suffix and header), reload during a transfer, 1000 stalled
  handshakes beside a 10 MiB echo.

The V2Ray client cases (ws, ws-tls) are in test_interop.py.
"""
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import selectors
import shutil
import socket
import ssl
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (INTEROP, Upstream, Wharf, connect, free_port, listener, record_until_eof,
                      recv_until_eof, wait_for)
from test_tls import cert_entry, make_cert

websockets = pytest.importorskip("websockets")

V2RAY = shutil.which("v2ray")
MiB = 1 << 20
PATH = "/wharf-ws"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_SETTINGS = {"path": PATH, "acceptProxyProtocol": False, "maxEarlyData": 0,
               "earlyDataHeaderName": ""}
DATE_RX = re.compile(rb"\r\nDate: [^\r\n]*\r\n")
CLOSE_1000 = b"\x03\xe8"
CLOSE_1001 = b"\x03\xe9"
CLOSE_1002 = b"\x03\xea"


# --------------------------------------------------------------------------
# helpers: requests, responses, frames

def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(path=PATH, method="GET", proto="HTTP/1.1", key=None, drop=(),
                    replace=None, add=()):
    """An upgrade request as a V2Ray client sends it (spec 4.2), with
    headers dropped (by name), replaced ({name: value}) or added."""
    key = key or new_key()
    hdrs = [("Host", "127.0.0.1"), ("User-Agent", "Go-http-client/1.1"),
            ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")]
    replace = replace or {}
    out = ["%s %s %s\r\n" % (method, path, proto)]
    for name, value in hdrs:
        if name in drop:
            continue
        out.append("%s: %s\r\n" % (name, replace.get(name, value)))
    for name, value in add:
        out.append("%s: %s\r\n" % (name, value))
    out.append("\r\n")
    return "".join(out).encode("latin-1")


def padded_request(total):
    """A valid upgrade request whose head is exactly `total` bytes long."""
    base = upgrade_request(key="dGhlIHNhbXBsZSBub25jZQ==", add=[("X-Pad", "")])
    assert len(base) < total
    return base.replace(b"X-Pad: \r\n", b"X-Pad: " + b"p" * (total - len(base)) + b"\r\n")


def read_response(sock, deadline, head_only=False):
    """One HTTP response from sock: the head, then a Content-Length body
    (unless head_only: the answer to HEAD), or everything up to EOF when
    there is no length (Go's plain answers). Returns (bytes, eof)."""
    buf = bytearray()
    eof = False

    def more():
        nonlocal eof
        while time.monotonic() < deadline:
            try:
                c = sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ConnectionAbortedError):
                c = b""
            if not c:
                eof = True
                return False
            buf.extend(c)
            return True
        return False

    sock.settimeout(0.2)
    while b"\r\n\r\n" not in buf:
        if not more():
            return bytes(buf), eof
    head_len = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:head_len])
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head, re.I)
    if head.startswith(b"HTTP/1.1 101 ") or head_only:
        return bytes(buf), eof
    if m:
        while len(buf) < head_len + int(m.group(1)):
            if not more():
                break
        return bytes(buf), eof
    while more():
        pass
    return bytes(buf), eof


def converse(addr, requests, timeout=8, linger=0.25):
    """Sends each request on one connection and reads its answer (a request
    given as a 1-tuple is only sent, to split a request across sends).
    Returns a list of (response, eof) and, at the end, whether the
    connection was closed (within `linger` s after the last answer)."""
    s = connect(addr, timeout=timeout)
    out = []
    deadline = time.monotonic() + timeout
    try:
        eof = False
        for req in requests:
            if isinstance(req, tuple):
                s.sendall(req[0])
                time.sleep(0.1)
                continue
            try:
                s.sendall(req)
            except OSError:
                out.append((b"", True))
                break
            resp, eof = read_response(s, deadline, head_only=req.startswith(b"HEAD "))
            out.append((resp, eof))
            if eof:
                break
        if not eof:
            rest, how = recv_until_eof(s, timeout=linger)
            if rest:
                out.append((rest, how != "timeout"))
            eof = how != "timeout"
        return out, eof
    finally:
        s.close()


def mask_date(b):
    return DATE_RX.sub(b"\r\nDate: <date>\r\n", b)


def show(conv):
    resps, eof = conv
    return "\n".join("  %r (eof %s)" % r for r in resps) + "\n  connection closed: %s" % eof


def frame(opcode, payload=b"", fin=True, mask=True, key=None, rsv=0):
    """One client frame (masked unless mask=False)."""
    n = len(payload)
    h = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        h += bytes([m | n])
    elif n < 65536:
        h += bytes([m | 126]) + struct.pack(">H", n)
    else:
        h += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return h + payload
    key = key or os.urandom(4)
    k = (key * (n // 4 + 1))[:n]
    return h + key + (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


class Frames:
    """Reads server frames from a raw socket."""

    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = bytearray(buf)
        self.eof = None         # None, "eof" or "reset"

    def _fill(self, deadline):
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                c = self.sock.recv(262144)
            except socket.timeout:
                continue
            except (ConnectionResetError, ConnectionAbortedError):
                self.eof = "reset"
                return False
            if not c:
                self.eof = "eof"
                return False
            self.buf += c
            return True
        raise TimeoutError("no frame within the time (%d bytes buffered)" % len(self.buf))

    def next(self, timeout=10):
        """(fin, rsv, opcode, masked, payload), or None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.buf
            if len(b) >= 2:
                n = b[1] & 0x7f
                off = 2
                if n == 126 and len(b) >= 4:
                    n, off = struct.unpack(">H", b[2:4])[0], 4
                elif n == 127 and len(b) >= 10:
                    n, off = struct.unpack(">Q", b[2:10])[0], 10
                if (b[1] & 0x7f) < 126 or off > 2:
                    masked = bool(b[1] & 0x80)
                    off += 4 if masked else 0
                    if len(b) >= off + n:
                        f = (bool(b[0] & 0x80), (b[0] >> 4) & 7, b[0] & 0x0f, masked,
                             bytes(b[off:off + n]))
                        del self.buf[:off + n]
                        return f
            if self.eof or not self._fill(deadline):
                if self.buf:
                    raise AssertionError("EOF inside a frame: %r" % bytes(self.buf[:64]))
                return None

    def data(self, n, timeout=10):
        """Reads data frames until n payload bytes; checks each is a server
        data frame as spec 4.4 wants (FIN, no RSV, unmasked, binary)."""
        got = bytearray()
        deadline = time.monotonic() + timeout
        while len(got) < n:
            f = self.next(max(0.1, deadline - time.monotonic()))
            assert f is not None, "EOF after %d of %d bytes" % (len(got), n)
            fin, rsv, op, masked, payload = f
            assert (fin, rsv, op, masked) == (True, 0, 2, False), \
                "not an unmasked final binary frame: %r" % (f[:4],)
            got += payload
        return bytes(got)

    def until_eof(self, timeout=5):
        """The frames left before EOF; raises when the connection stays open."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.next(max(0.1, deadline - time.monotonic()))
            if f is None:
                return frames
            frames.append(f)


def ws_open(addr, path=PATH, extra=(), timeout=10):
    """Raw upgrade: returns (sock, 101 head, Frames)."""
    key = new_key()
    s = connect(addr, timeout=timeout)
    s.sendall(upgrade_request(path=path, key=key, add=extra))
    resp, eof = read_response(s, time.monotonic() + timeout)
    head, _, rest = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), (resp, eof)
    assert ("\r\nSec-WebSocket-Accept: %s" % accept_of(key)).encode() in head, head
    return s, head + b"\r\n\r\n", Frames(s, rest)


# --------------------------------------------------------------------------
# websockets (asyncio API: Debian's python3-websockets may predate the sync one)

def run(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(uri, **kw):
    for k, v in (("compression", None), ("max_size", None), ("ping_interval", None),
                 ("open_timeout", 10), ("close_timeout", 5), ("max_queue", 64)):
        kw.setdefault(k, v)
    return websockets.connect(uri, **kw)


async def ws_echo(ws, messages, delay=0.0, midway=None):
    """Sends the messages while reading the echo; returns the bytes read
    (binary messages only) once as many bytes as were sent came back."""
    total = sum(len(m) if isinstance(m, (bytes, bytearray)) else
                len(m.encode()) if isinstance(m, str) else sum(len(x) for x in m)
                for m in messages)
    got = bytearray()

    async def reader():
        while len(got) < total:
            m = await ws.recv()
            assert isinstance(m, bytes), "a text message from the server: %r" % m[:40]
            got.extend(m)

    async def writer():
        for i, m in enumerate(messages):
            await ws.send(m)
            if midway is not None and i == len(messages) // 2:
                await midway()
            if delay:
                await asyncio.sleep(delay)

    await asyncio.gather(reader(), writer())
    return bytes(got)


# --------------------------------------------------------------------------
# fixtures

def ws_listener(tag, up, port, tls=None, **ws):
    settings = dict(WS_SETTINGS)
    settings.update(ws)
    ss = {"wsSettings": settings}
    if tls is not None:
        ss["security"] = "tls"
        ss["tlsSettings"] = tls
    return listener(tag, up, port=port, network="ws", stream_settings=ss)


def start_ws(wharf, up, conf=None, **ws):
    port = free_port()
    c = {"listeners": [ws_listener("ws", up, port, **ws)]}
    c.update(conf or {})
    return wharf(c), ("127.0.0.1", port)


class Pair:
    """The V2Ray server and wharf, same wsSettings, same echo upstream."""
    v2ray = None
    wharf = None
    w = None


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the master switches its workers to nobody")
    d = tmp_path_factory.mktemp("ws-pair")
    up = Upstream("echo")
    v2_port, wh_port = free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(v2_port),
               UPSTREAM_PORT=str(up.port))
    server_json = d / "server.json"
    r = subprocess.run(["sh", str(INTEROP / "render.sh"),
                        str(INTEROP / "cases" / "ws" / "server.json"), str(server_json)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stdout
    ws = json.loads(server_json.read_text())["inbounds"][0]["streamSettings"]["wsSettings"]
    assert ws.get("path") == PATH, ws
    log = open(d / "v2ray.log", "wb")
    v2 = subprocess.Popen([V2RAY, "-config", str(server_json)], stdin=subprocess.DEVNULL,
                          stdout=log, stderr=subprocess.STDOUT)
    w = Wharf(d / "wharf", {"listeners": [ws_listener("ws", up.spec, wh_port)]})
    try:
        w.start()

        def v2_up():
            try:
                connect(("127.0.0.1", v2_port), timeout=1).close()
                return True
            except OSError:
                return v2.poll() is not None
        assert wait_for(v2_up, 10) and v2.poll() is None, \
            (d / "v2ray.log").read_text(errors="replace")
        p = Pair()
        p.v2ray, p.wharf, p.w = ("127.0.0.1", v2_port), ("127.0.0.1", wh_port), w
        yield p
    finally:
        w.cleanup()
        if v2.poll() is None:
            v2.terminate()
            try:
                v2.wait(3)
            except subprocess.TimeoutExpired:
                v2.kill()
                v2.wait(3)
        log.close()
        up.close()


def both(pair, fn):
    """fn(addr) for V2Ray and wharf at the same time: (v2ray's, wharf's)."""
    with ThreadPoolExecutor(2) as ex:
        a, b = ex.submit(fn, pair.v2ray), ex.submit(fn, pair.wharf)
        return a.result(), b.result()


# --------------------------------------------------------------------------
# 1. the handshake answers, byte for byte against V2Ray

K = "dGhlIHNhbXBsZSBub25jZQ=="
GOOD = upgrade_request(key=K)
HANDSHAKE_CASES = {
    # name: (requests on one connection, the status codes V2Ray answers them with;
    #        b"" for no answer)
    "wrong-path-then-keepalive-upgrade": (
        [upgrade_request(path="/nope", key=K), GOOD], [b"404", b"101"]),
    "percent-encoded-path": ([upgrade_request(path="/wharf%2Dws", key=K)], [b"101"]),
    "query-ignored": ([upgrade_request(path=PATH + "?x=1", key=K)], [b"101"]),
    "trailing-slash": ([upgrade_request(path=PATH + "/", key=K), GOOD], [b"404", b"101"]),
    "case-sensitive-path": ([upgrade_request(path="/Wharf-ws", key=K), GOOD],
                            [b"404", b"101"]),
    "post": ([upgrade_request(method="POST", key=K), GOOD], [b"405", b"101"]),
    "no-connection-upgrade": (
        [upgrade_request(key=K, replace={"Connection": "keep-alive"}), GOOD],
        [b"400", b"101"]),
    "no-connection": ([upgrade_request(key=K, drop=("Connection",)), GOOD], [b"400", b"101"]),
    "no-upgrade-websocket": (
        [upgrade_request(key=K, replace={"Upgrade": "h2c"}), GOOD], [b"400", b"101"]),
    "no-upgrade": ([upgrade_request(key=K, drop=("Upgrade",)), GOOD], [b"400", b"101"]),
    "version-12": (
        [upgrade_request(key=K, replace={"Sec-WebSocket-Version": "12"}), GOOD],
        [b"400", b"101"]),
    "no-key": ([upgrade_request(key=K, drop=("Sec-WebSocket-Key",)), GOOD], [b"400", b"101"]),
    "empty-key": ([upgrade_request(key=K, replace={"Sec-WebSocket-Key": ""}), GOOD],
                  [b"400", b"101"]),
    "no-host-http11": ([upgrade_request(key=K, drop=("Host",))], [b"400"]),
    "no-host-http10": ([upgrade_request(key=K, drop=("Host",), proto="HTTP/1.0")], [b"101"]),
    "header-8k": ([upgrade_request(key=K, add=[("X-Big", "b" * 8000)])], [b"431"]),
    "head-6144-bytes": ([padded_request(6144)], [b"101"]),
    "head-6145-bytes": ([padded_request(6145)], [b"431"]),
    "garbage-request-line": ([b"HELLO WORLD\r\n\r\n"], [b"400"]),
    "binary-garbage": ([b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"], [b"400"]),
    "transfer-encoding-gzip": ([upgrade_request(key=K, add=[("Transfer-Encoding", "gzip")])],
                               [b"501"]),
    "extra-bytes-after-head": ([GOOD + b"\x82\x85early"], [b""]),
    "connection-keep-alive-upgrade": (
        [upgrade_request(key=K, replace={"Connection": "keep-alive, Upgrade"})], [b"101"]),
    "tokens-case-insensitive": (
        [upgrade_request(key=K, replace={"Connection": "UPGRADE", "Upgrade": "WebSocket"})],
        [b"101"]),
    "two-connection-lines": (
        [upgrade_request(key=K, replace={"Connection": "keep-alive"},
                         add=[("Connection", "upgrade")])], [b"101"]),
    "101": ([GOOD], [b"101"]),
    # more of Go's HTTP/1.1 server around the upgrade
    "pipelined-404-and-upgrade": ([upgrade_request(path="/nope", key=K) + GOOD],
                                  [b"404", b"101"]),
    "split-across-sends": ([(GOOD[:20],), (GOOD[20:70],), GOOD[70:]], [b"101"]),
    "absolute-form": ([upgrade_request(path="http://127.0.0.1" + PATH, key=K)], [b"101"]),
    "double-slash": ([upgrade_request(path="/" + PATH, key=K), GOOD], [b"404", b"101"]),
    "fragment-in-path": ([upgrade_request(path=PATH + "#x", key=K), GOOD], [b"404", b"101"]),
    "bad-escape": ([upgrade_request(path=PATH + "%zz", key=K)], [b"400"]),
    "version-list": ([upgrade_request(key=K, replace={"Sec-WebSocket-Version": "8, 13"})],
                     [b"101"]),
    "lowercase-method": ([upgrade_request(method="get", key=K), GOOD], [b"405", b"101"]),
    "http-2.0": ([upgrade_request(key=K, proto="HTTP/2.0")], [b"505"]),
    "two-hosts": ([upgrade_request(key=K, add=[("Host", "other")])], [b"400"]),
    "bad-header-name": ([upgrade_request(key=K, add=[("Bad Name", "x")])], [b"400"]),
    "expect-unknown": ([upgrade_request(key=K, add=[("Expect", "magic")]), GOOD], [b"417"]),
    "404-with-body": ([upgrade_request(path="/nope", key=K, add=[("Content-Length", "5")])
                       + b"hello", GOOD], [b"404", b"101"]),
    "404-chunked-body": ([upgrade_request(path="/nope", key=K,
                                          add=[("Transfer-Encoding", "chunked")])
                          + b"5\r\nhello\r\n0\r\n\r\n", GOOD], [b"404", b"101"]),
    "404-chunked-split": ([upgrade_request(path="/nope", key=K,
                                           add=[("Transfer-Encoding", "chunked")])
                           + b"5\r\nhel", (b"lo\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",), GOOD],
                          [b"404", b"101"]),
    "405-with-body": ([upgrade_request(method="POST", key=K, add=[("Content-Length", "4")])
                       + b"body", GOOD], [b"405", b"101"]),
    "upgrade-with-body": ([upgrade_request(key=K, add=[("Content-Length", "4")]) + b"body"],
                          [b""]),
    "404-connection-close": ([upgrade_request(path="/nope", key=K,
                                              replace={"Connection": "close"}), GOOD],
                             [b"404"]),
    "400-connection-close": ([upgrade_request(key=K, replace={"Connection": "close"}), GOOD],
                             [b"400"]),
    "404-http10": ([upgrade_request(path="/nope", key=K, proto="HTTP/1.0"), GOOD], [b"404"]),
    "404-http10-keep-alive": ([upgrade_request(path="/nope", key=K, proto="HTTP/1.0",
                                               replace={"Connection": "keep-alive"}), GOOD],
                              [b"404", b"101"]),
    "400-http10": ([upgrade_request(key=K, proto="HTTP/1.0", drop=("Upgrade",)), GOOD],
                   [b"400"]),
    "head-method": ([upgrade_request(method="HEAD", key=K), GOOD], [b"405", b"101"]),
    "options-star": ([upgrade_request(method="OPTIONS", path="*", key=K), GOOD],
                     [b"200", b"101"]),
    "bad-host": ([upgrade_request(key=K, replace={"Host": "a b"})], [b"400"]),
    "ctl-in-value": ([upgrade_request(key=K, add=[("X-Ctl", "a\x01b")])], [b"400"]),
    "bare-lf": ([GOOD.replace(b"\r\n", b"\n")], [b"101"]),
    "leading-crlf": ([b"\r\n" + GOOD], [b"400"]),
}


@pytest.mark.deadline(30)
@pytest.mark.parametrize("case", list(HANDSHAKE_CASES))
def test_handshake_answers_as_v2ray(pair, case):
    reqs, statuses = HANDSHAKE_CASES[case]
    v2, wh = both(pair, lambda addr: converse(addr, reqs))
    msg = "request(s):\n%s\n--- V2Ray 4.34 ---\n%s\n--- wharf ---\n%s" % (
        "\n".join("  %r" % r for r in reqs), show(v2), show(wh))
    # the reference first: V2Ray answers as the spec says (or the case is wrong)
    v2all = b"".join(r for r, _ in v2[0])
    whall = b"".join(r for r, _ in wh[0])
    got = re.findall(rb"HTTP/1\.[01] (\d{3}) ", v2all) or [v2all[:12]]
    assert got == statuses, "V2Ray itself answered unexpectedly\n" + msg
    # the same bytes (Date masked), and both closed or both kept the connection
    assert (mask_date(whall), wh[1]) == (mask_date(v2all), v2[1]), \
        "wharf's answer differs from V2Ray's\n" + msg
    for resp, _ in wh[0]:
        if resp.startswith(b"HTTP/1.1 101 "):
            assert resp == (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                            + accept_of(K).encode() + b"\r\n\r\n"), msg
        m = re.search(rb"\r\nDate: ([^\r\n]*)\r\n", resp)
        if m:
            t = time.strptime(m.group(1).decode(), "%a, %d %b %Y %H:%M:%S GMT")
            assert abs(time.mktime(t) - time.mktime(time.gmtime())) < 30, m.group(1)


@pytest.mark.deadline(20)
def test_101_accept_value(pair):
    """Headers of the 101 identical to V2Ray's but for the accept value,
    which is RFC 6455's for each key."""
    def one(addr):
        key = new_key()
        (resps, eof) = converse(addr, [upgrade_request(key=key)])
        return key, resps, eof
    (k1, r1, e1), (k2, r2, e2) = both(pair, one)
    for key, resps, eof in ((k1, r1, e1), (k2, r2, e2)):
        assert not eof and len(resps) == 1, resps
        assert ("Sec-WebSocket-Accept: %s\r\n" % accept_of(key)).encode() in resps[0][0], resps
    strip = lambda r: re.sub(rb"Sec-WebSocket-Accept: [^\r]*", b"", r)
    assert strip(r1[0][0]) == strip(r2[0][0]), (r1, r2)


# --------------------------------------------------------------------------
# 2. the 4 s header timeout, against V2Ray

@pytest.mark.deadline(30)
def test_header_timeout_as_v2ray(pair):
    before = pair.w.stats()["ws"]

    def stall(job):
        addr, data = job
        s = connect(addr, timeout=10)
        try:
            t0 = time.monotonic()
            if data:
                s.sendall(data)
            got, how = recv_until_eof(s, timeout=9)
            return time.monotonic() - t0, got, how
        finally:
            s.close()

    jobs = [(a, d) for d in (b"", b"GET /wharf-ws HT") for a in (pair.v2ray, pair.wharf)]
    with ThreadPoolExecutor(len(jobs)) as ex:
        (v_idle, w_idle, v_cut, w_cut) = list(ex.map(stall, jobs))
    report = ("idle: V2Ray %r\n      wharf %r\ncut:  V2Ray %r\n      wharf %r"
              % (v_idle, w_idle, v_cut, w_cut))
    plain400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\n\r\n400 Bad Request")
    # V2Ray: closed at 4 s, silent when idle, a 400 for a broken request line
    assert v_idle[1:] == (b"", "eof") and 3.5 < v_idle[0] < 5.5, report
    assert v_cut[1:] == (plain400, "eof") and 3.5 < v_cut[0] < 5.5, report
    assert w_idle[1:] == v_idle[1:] and 3.5 < w_idle[0] < 5.5, report
    assert w_cut[1:] == v_cut[1:] and 3.5 < w_cut[0] < 5.5, report
    after = pair.w.wait_stat("ws", "timeout", lambda v: v >= before["timeout"] + 2)
    assert after == before["timeout"] + 2, (before, pair.w.stats())


# --------------------------------------------------------------------------
# frame-level violations, against V2Ray (close codes; the reasons are free)

VIOLATIONS = {
    "unmasked": frame(2, b"hello", mask=False),
    "rsv1": frame(2, b"hello", rsv=4),
    "opcode-3": frame(3, b""),
    "opcode-11": frame(11, b""),
    "control-126-bytes": frame(9, b"x" * 126),
    "fragmented-ping": frame(9, b"x", fin=False),
    "continuation-first": frame(0, b"x"),
    "binary-inside-message": frame(2, b"a", fin=False) + frame(2, b"b"),
}


@pytest.mark.deadline(20)
@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_violation_close_code_as_v2ray(pair, case):
    def one(addr):
        s, _, fr = ws_open(addr)
        try:
            s.sendall(VIOLATIONS[case])
            frames = fr.until_eof(timeout=5)
            return [(op, p[:2]) for _, _, op, _, p in frames if op == 8], fr.eof
        finally:
            s.close()
    v2, wh = both(pair, one)
    assert v2 == ([(8, CLOSE_1002)], "eof"), "V2Ray: %r" % (v2,)
    assert wh == v2, "V2Ray %r, wharf %r" % (v2, wh)


# --------------------------------------------------------------------------
# 3. the python websockets client

@pytest.mark.deadline(40)
def test_websockets_client_echo(wharf, upstream):
    up = upstream("echo")
    w, (host, port) = start_ws(wharf, up.spec)
    uri = "ws://%s:%d%s" % (host, port, PATH)
    rnd = random.Random(4)
    sizes = [1, 2, 7, 125, 126, 127, 1000, 16379, 16380, 16381, 65535, 65536, 65537,
             100000, 3, MiB, 1, 333333]
    msgs = [rnd.randbytes(n) for n in sizes]

    async def main():
        async with ws_connect(uri) as ws:
            got = await ws_echo(ws, msgs)
            assert got == b"".join(msgs), "mixed sizes: %d bytes back, not byte-exact" % len(got)
            pong = await ws.ping(b"wharf-ping")
            await asyncio.wait_for(pong, 5)
            got = await ws_echo(ws, [[b"frag-one|", b"frag-two|", b"frag-three"]])
            assert got == b"frag-one|frag-two|frag-three"
            got = await ws_echo(ws, ["text message \u00e9"])
            assert got == "text message \u00e9".encode()
            await ws.close(code=1001, reason="going away")
            return ws.close_code, ws.close_reason

    code, reason = run(main(), 30)
    assert code == 1001, (code, reason)
    assert reason == "", reason
    st = w.wait_stat("ws", "active", lambda v: v == 0)
    st = w.stats()["ws"]
    assert st["accepted"] == 1 and st["bad_input"] == 0 and st["error"] == 0, st
    total = sum(sizes) + len(b"frag-one|frag-two|frag-three") + len("text message \u00e9".encode())
    assert st["bytes_up"] == total and st["bytes_down"] == total, (st, total)


# --------------------------------------------------------------------------
# 4. raw frames

@pytest.mark.deadline(30)
def test_raw_frames(wharf, upstream):
    up = upstream("echo")
    w, addr = start_ws(wharf, up.spec)

    def bad_input():
        return w.stats()["ws"]["bad_input"]

    # an unmasked client frame: close 1002, then the TCP connection ends
    b0 = bad_input()
    s, _, fr = ws_open(addr)
    s.sendall(frame(2, b"not masked", mask=False))
    frames = fr.until_eof()
    s.close()
    assert [f[2] for f in frames] == [8], frames
    assert frames[0][4][:2] == CLOSE_1002 and frames[0][3] is False, frames
    assert frames[0][4][2:] in (b"", b"bad MASK"), frames
    assert fr.eof == "eof", fr.eof
    assert w.wait_stat("ws", "bad_input", lambda v: v == b0 + 1) == b0 + 1

    # random bytes after the 101 (the first byte has RSV bits: never a frame)
    b0 = bad_input()
    s, _, fr = ws_open(addr)
    junk = bytearray(random.Random(9).randbytes(300))
    junk[0] |= 0x70
    s.sendall(junk)
    frames = fr.until_eof()
    s.close()
    assert all(f[2] == 8 and f[4][:2] == CLOSE_1002 for f in frames), frames
    assert w.wait_stat("ws", "bad_input", lambda v: v == b0 + 1) == b0 + 1

    # a 64-bit length of 2^63 (its top bit must be 0): close 1002.
    # (V2Ray 4.34 answers close 1000 here: gorilla takes it for a read-limit
    # error, not a protocol error, and V2Ray's own Close then says 1000;
    # RFC 6455 5.2 and spec 4.4 want 1002.)
    s, _, fr = ws_open(addr)
    s.sendall(b"\x82\xff" + struct.pack(">Q", 1 << 63) + b"\x01\x02\x03\x04")
    frames = fr.until_eof()
    s.close()
    assert [(f[2], f[4][:2]) for f in frames] == [(8, CLOSE_1002)], frames

    # a ping between two fragments: the pong comes before the rest is echoed
    s, _, fr = ws_open(addr)
    s.sendall(frame(2, b"part-one|", fin=False))
    assert fr.data(9) == b"part-one|"
    s.sendall(frame(9, b"between") + frame(0, b"part-two"))
    f = fr.next()
    assert f == (True, 0, 10, False, b"between"), f
    assert fr.data(8) == b"part-two"
    # the same with everything in one send: pong first, then all the data
    s.sendall(frame(1, b"t1-", fin=False) + frame(9, b"p2") + frame(0, b"t2-", fin=False)
              + frame(10, b"unsolicited pong") + frame(0, b"t3"))
    f = fr.next()
    assert f == (True, 0, 10, False, b"p2"), f
    assert fr.data(8) == b"t1-t2-t3"
    # server frames: unmasked, binary, FIN (checked by Frames.data) also for
    # a write larger than one frame
    big = random.Random(5).randbytes(200000)
    s.sendall(frame(2, big))
    assert fr.data(len(big), timeout=15) == big
    # a close without a code gets an empty close, then the end
    s.sendall(frame(8, b""))
    frames = fr.until_eof()
    s.close()
    assert frames == [(True, 0, 8, False, b"")], frames


# --------------------------------------------------------------------------
# 5. the upstream closes first

@pytest.mark.deadline(20)
def test_upstream_close_sends_close_1000(wharf, upstream):
    """The upstream answers and closes: once the client has acknowledged
    everything, one ping asks whether its reader has read it all (a V2Ray
    client drops what it buffers on a close frame); only after the pong
    comes the close 1000."""
    def handler(conn, rec):
        conn.sendall(b"goodbye from upstream")
        conn.close()

    up = upstream(handler=handler)
    w, addr = start_ws(wharf, up.spec)
    s, _, fr = ws_open(addr)
    try:
        assert fr.data(21) == b"goodbye from upstream"
        assert fr.next(timeout=5) == (True, 0, 9, False, b""), "a ping first"
        with pytest.raises(TimeoutError):
            fr.next(timeout=1.5)        # no close while the pong is owed
        s.sendall(frame(0xa))
        frames = fr.until_eof(timeout=5)
    finally:
        s.close()
    assert frames == [(True, 0, 8, False, CLOSE_1000)], frames
    assert fr.eof == "eof", fr.eof


# --------------------------------------------------------------------------
# 6. over TLS

@pytest.mark.deadline(40)
def test_ws_over_tls(wharf, upstream, tmp_path):
    up = upstream("echo")
    crt = make_cert(tmp_path / "pki", "ws", "localhost", sans=["localhost"])
    w, (host, port) = start_ws(wharf, up.spec, tls={"certificates": [cert_entry(crt)]})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    data = random.Random(6).randbytes(MiB)
    msgs = [data[i:i + 50000] for i in range(0, len(data), 50000)]

    async def main():
        async with ws_connect("wss://%s:%d%s" % (host, port, PATH), ssl=ctx) as ws:
            alpn = ws.transport.get_extra_info("ssl_object").selected_alpn_protocol()
            got = await ws_echo(ws, msgs)
            return alpn, got

    alpn, got = run(main(), 30)
    assert alpn == "http/1.1", alpn
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)


# --------------------------------------------------------------------------
# 7. X-Forwarded-For

@pytest.mark.deadline(20)
def test_x_forwarded_for_in_log(wharf, upstream):
    up = upstream("echo")
    w, (host, port) = start_ws(wharf, up.spec, conf={"log_level": "info"})
    uri = "ws://%s:%d%s" % (host, port, PATH)

    async def main(headers):
        async with ws_connect(uri, extra_headers=headers) as ws:
            assert await ws_echo(ws, [b"xff"]) == b"xff"

    run(main({"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}), 10)
    line = wait_for(lambda: [l for l in w.log().splitlines()
                             if "stream closed" in l and "listener: ws" in l], 5)
    assert line and len(line) == 1, w.log()
    assert re.search(r"client: 203\.0\.113\.9(:\d+)?, ", line[0]), line
    run(main({}), 10)
    lines = wait_for(lambda: [l for l in w.log().splitlines() if "stream closed" in l][1:], 5)
    assert lines and re.search(r"client: 127\.0\.0\.1(:\d+)?, ", lines[0]), w.log()


# --------------------------------------------------------------------------
# 8. early data

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@pytest.mark.deadline(30)
def test_early_data(wharf, upstream):
    def handler(conn, rec):
        record_until_eof(conn, rec, echo=True)

    up = upstream(handler=handler)
    ports = [free_port() for _ in range(3)]
    w = wharf({"listeners": [
        ws_listener("ed", up.spec, ports[0], maxEarlyData=2048),
        ws_listener("edh", up.spec, ports[1], maxEarlyData=2048,
                    earlyDataHeaderName="Sec-WebSocket-Protocol"),
        ws_listener("noed", up.spec, ports[2]),
    ]})
    early = b"hello early"

    # the path suffix: delivered (and echoed) before the client sent any frame
    s, head, fr = ws_open(("127.0.0.1", ports[0]), path=PATH + b64url(early))
    assert fr.data(len(early)) == early
    s.sendall(frame(2, b"|then a frame"))
    assert fr.data(13) == b"|then a frame"
    s.close()
    assert b"Sec-WebSocket-Protocol" not in head, head
    assert wait_for(lambda: up.conns and bytes(up.conns[0]["data"]) == early + b"|then a frame",
                    5), up.conns

    # the header, echoed in the 101 as browsers want it
    value = b64url(b"\x00\xffearly via header\xfe")
    s, head, fr = ws_open(("127.0.0.1", ports[1]),
                          extra=[("Sec-WebSocket-Protocol", value)])
    assert ("\r\nSec-WebSocket-Protocol: %s\r\n" % value).encode() in head, head
    assert fr.data(19) == b"\x00\xffearly via header\xfe"
    s.sendall(frame(2, b"!"))
    assert fr.data(1) == b"!"
    s.close()
    # without the header: a plain upgrade on that listener
    s, head, fr = ws_open(("127.0.0.1", ports[1]))
    s.sendall(frame(2, b"plain"))
    assert fr.data(5) == b"plain"
    s.close()

    # more than maxEarlyData in the path: no match, 404
    resps, eof = converse(("127.0.0.1", ports[0]),
                          [upgrade_request(path=PATH + b64url(b"x" * 2049))])
    assert resps[0][0].startswith(b"HTTP/1.1 404 Not Found\r\n"), resps
    # maxEarlyData = 0 (the default): the suffixed path is a 404
    resps, eof = converse(("127.0.0.1", ports[2]),
                          [upgrade_request(path=PATH + b64url(early)), upgrade_request()])
    assert resps[0][0].startswith(b"HTTP/1.1 404 Not Found\r\n"), resps
    assert resps[1][0].startswith(b"HTTP/1.1 101 "), resps
    st = w.stats()
    # the one refused (404) request counts as bad input, the rest relayed
    assert st["ed"]["bad_input"] == 1 and st["edh"]["bad_input"] == 0, st


# --------------------------------------------------------------------------
# 9. reload during a transfer

@pytest.mark.deadline(40)
def test_reload_during_transfer(wharf, upstream):
    up = upstream("echo")
    w, (host, port) = start_ws(wharf, up.spec)
    data = random.Random(8).randbytes(2 * MiB)
    msgs = [data[i:i + 32768] for i in range(0, len(data), 32768)]
    reloaded = []

    async def midway():
        old, new = await asyncio.get_running_loop().run_in_executor(None, w.reload)
        reloaded.append((old, new))

    async def main():
        async with ws_connect("ws://%s:%d%s" % (host, port, PATH)) as ws:
            got = await ws_echo(ws, msgs, delay=0.02, midway=midway)
            await ws.close()
            return got, ws.close_code

    got, code = run(main(), 30)
    assert reloaded and set(reloaded[0][0]).isdisjoint(reloaded[0][1]), reloaded
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)
    assert code == 1000, code
    st = w.wait_stat("ws", "active", lambda v: v == 0)
    assert st == 0, w.stats()
    st = w.stats()["ws"]
    assert st["error"] == 0 and st["bad_input"] == 0 and st["shutdown"] == 0, st


# --------------------------------------------------------------------------
# 10. 1000 stalled handshakes beside a good transfer

@pytest.mark.deadline(60)
def test_stalled_handshakes_beside_transfer(wharf, upstream):
    up = upstream("echo")
    w, (host, port) = start_ws(wharf, up.spec, conf={"worker_processes": 2})
    workers = sorted(w.workers())
    before = w.stats()["ws"]
    n = 1000
    stallers = {}
    sel = selectors.DefaultSelector()
    try:
        t0 = time.monotonic()
        for i in range(n):
            s = connect((host, port), timeout=10)
            half = bool(i % 2)
            if half:
                s.sendall(b"GET /wharf-ws HT")
            s.setblocking(False)
            stallers[s] = {"half": half, "t": time.monotonic(), "got": bytearray(),
                           "closed": None}
            sel.register(s, selectors.EVENT_READ)
        opened = time.monotonic() - t0

        data = random.Random(10).randbytes(10 * MiB)
        msgs = [data[i:i + 65536] for i in range(0, len(data), 65536)]

        async def main():
            async with ws_connect("ws://%s:%d%s" % (host, port, PATH)) as ws:
                t = time.monotonic()
                got = await ws_echo(ws, msgs)
                return got, time.monotonic() - t

        got, secs = run(main(), 30)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)
        print("\n10 MiB websocket echo beside %d stalled handshakes: %.2f s, %.1f MiB/s "
              "each way (stallers opened in %.2f s)" % (n, secs, 10 / secs, opened))

        # every staller is closed at ~4 s; the half request lines get a 400
        left = n
        deadline = time.monotonic() + 15
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                rec = stallers[key.fileobj]
                try:
                    c = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    c = b""
                if c:
                    rec["got"] += c
                    continue
                rec["closed"] = time.monotonic() - rec["t"]
                sel.unregister(key.fileobj)
                left -= 1
        assert left == 0, "%d stalled connections still open" % left
    finally:
        for s in stallers:
            s.close()
        sel.close()
    plain400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\n\r\n400 Bad Request")
    recs = list(stallers.values())
    wrong = [r for r in recs if bytes(r["got"]) != (plain400 if r["half"] else b"")]
    assert not wrong, "%d stallers got an unexpected answer, e.g. %r" % (len(wrong), wrong[0])
    times = sorted(r["closed"] for r in recs)
    print("stallers closed after %.2f .. %.2f s" % (times[0], times[-1]))
    assert 3.5 < times[0] and times[-1] < 8, (times[0], times[-1])
    timeout = w.wait_stat("ws", "timeout", lambda v: v >= before["timeout"] + n, timeout=5)
    assert timeout == before["timeout"] + n, w.stats()
    st = w.stats()["ws"]
    assert st["accepted"] == before["accepted"] + n + 1 and st["active"] == 0, st
    assert st["bytes_up"] == 10 * MiB and st["bytes_down"] == 10 * MiB, st
    assert sorted(w.workers()) == workers, (workers, w.workers())


# --------------------------------------------------------------------------
# regressions

def ws_listener_conf(up, **ws):
    settings = dict(WS_SETTINGS, **ws)
    return {"log_level": "info",
            "listeners": [listener("ws", up.spec, port=free_port(), network="ws",
                                   stream_settings={"wsSettings": settings})]}


@pytest.mark.deadline(20)
def test_decoded_nul_does_not_end_the_path(wharf, upstream):
    """"/wharf-ws%00x" decodes to a path longer than "/wharf-ws": 404, as Go."""
    w = wharf(ws_listener_conf(upstream()))
    resps, eof = converse(w.addr("ws"), [upgrade_request(path=PATH + "%00x")])
    assert resps[0][0].startswith(b"HTTP/1.1 404 Not Found\r\n"), resps


@pytest.mark.deadline(20)
def test_long_early_data_header_echoed_whole(wharf, upstream):
    """The Sec-WebSocket-Protocol value is echoed whole, however long."""
    w = wharf(ws_listener_conf(upstream(), maxEarlyData=2048,
                               earlyDataHeaderName="Sec-WebSocket-Protocol"))
    value = b64url(os.urandom(1500))
    resps, eof = converse(w.addr("ws"), [upgrade_request(
        add=[("Sec-WebSocket-Protocol", value)])])
    assert resps[0][0].startswith(b"HTTP/1.1 101 "), resps
    assert ("Sec-WebSocket-Protocol: %s\r\n" % value).encode() in resps[0][0]


@pytest.mark.deadline(20)
def test_close_frame_ends_the_connection_at_once(wharf, upstream):
    """Spec 4.4: the peer's close is answered with its code, then the TCP
    connection ends; it does not wait for the stream's timers."""
    w = wharf(ws_listener_conf(upstream()))
    s, head, fr = ws_open(w.addr("ws"))
    s.sendall(frame(2, b"abc"))
    assert fr.data(3) == b"abc"
    t0 = time.monotonic()
    s.sendall(frame(8, struct.pack("!H", 1001)))
    got = fr.next(timeout=5)
    assert got is not None and got[2] == 8 and got[4][:2] == struct.pack("!H", 1001), got
    assert fr.next(timeout=5) is None                   # EOF follows
    assert time.monotonic() - t0 < 0.9
    s.close()
