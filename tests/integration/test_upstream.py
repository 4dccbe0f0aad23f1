"""The upstream side: a PROXY header to the upstream (a listener's xver) and
upstream groups (upstream as a list, upstreamFailTimeout).

xver: an upstream written here reads the header (v1 or v2, parsed by this
file, not by wharf's parser) and checks that it names the real client (the
one that connected, or the source of the PROXY header wharf accepted) and
the address the client connected to, then echoes; through plain TCP (with
enough bytes after the header for splice(2) to take over), IPv6, a unix
socket listener, the real V2Ray client over WebSocket, and over QUIC.

Groups: a member that refuses is skipped and retried after the fail
timeout; one that never answers gets its share of policy.handshake and the
stream goes on to the next; one whose connect completes only later (most
connects to this host are over when connect() returns) carries what the
client sent meanwhile; live members split streams evenly; `wharf -S` and
/metrics show each member; bad groups are refused with FILE:LINE.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import time

import pytest

from conftest import (INTEROP, WHARF, Upstream, connect, echo_roundtrip, echo_stream, free_port,
                      have_ipv6_loopback, listener, render, server_side_inode, udp_bound,
                      wait_for)
from test_interop import case_env, server_stream_settings
from test_quic import push
from test_tcp_relay import fetch_metrics, parse_metrics

V2RAY = shutil.which("v2ray")
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# --------------------------------------------------------------------------
# an upstream that reads a PROXY header, then echoes

def read_proxy_header(conn):
    """Reads one PROXY header (v1 or v2) off conn. Returns (header, rest):
    header is {"version", "local"} and, unless local, "family" (4 or 6),
    "src" and "dst" as (ip, port); rest is what came after it."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            d = conn.recv(4096)
            if not d:
                raise EOFError("EOF in the PROXY header after %r" % buf)
            buf += d

    need(1)
    if buf[:1] == b"P":
        while b"\r\n" not in buf:
            need(len(buf) + 1)
        line, rest = buf.split(b"\r\n", 1)
        parts = line.decode("ascii").split(" ")
        assert parts[0] == "PROXY", line
        if parts[1] == "UNKNOWN":
            return {"version": 1, "local": True}, rest
        assert parts[1] in ("TCP4", "TCP6") and len(parts) == 6, line
        return {"version": 1, "local": False, "family": int(parts[1][3]),
                "src": (parts[2], int(parts[4])), "dst": (parts[3], int(parts[5]))}, rest
    need(16)
    assert buf[:12] == V2_SIG, buf[:16]
    ver_cmd, fam = buf[12], buf[13]
    length = struct.unpack("!H", buf[14:16])[0]
    need(16 + length)
    body, rest = buf[16:16 + length], buf[16 + length:]
    assert ver_cmd >> 4 == 2, hex(ver_cmd)
    if ver_cmd & 0xf == 0:
        assert fam == 0 and length == 0, (fam, length)
        return {"version": 2, "local": True}, rest
    assert ver_cmd & 0xf == 1, hex(ver_cmd)
    if fam == 0x11:
        af, alen = socket.AF_INET, 4
    else:
        assert fam == 0x21, "family byte %#x (want TCP over IPv4 or IPv6)" % fam
        af, alen = socket.AF_INET6, 16
    assert length == 2 * alen + 4, length
    sport, dport = struct.unpack("!HH", body[2 * alen:2 * alen + 4])
    return {"version": 2, "local": False, "family": 4 if af == socket.AF_INET else 6,
            "src": (socket.inet_ntop(af, body[:alen]), sport),
            "dst": (socket.inet_ntop(af, body[alen:2 * alen]), dport)}, rest


def proxy_echo(on_header=None):
    """A handler for Upstream: reads the header into rec["proxy"] (and what
    on_header(header) returns into rec["check"], while the client is still
    connected), then echoes until EOF."""
    def handler(conn, rec):
        hdr, rest = read_proxy_header(conn)
        if on_header is not None:
            rec["check"] = on_header(hdr)
        rec["proxy"] = hdr          # last: headers() waits for it
        if rest:
            conn.sendall(rest)
        while True:
            d = conn.recv(262144)
            if not d:
                break
            conn.sendall(d)
        conn.shutdown(socket.SHUT_WR)
    return handler


@pytest.fixture
def proxy_upstream():
    made = []

    def make(on_header=None, **kw):
        u = Upstream(handler=proxy_echo(on_header), **kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


def headers(up, n=1, timeout=5):
    assert wait_for(lambda: len([c for c in up.conns if "proxy" in c]) >= n, timeout), \
        "the upstream got %d connection(s), %d header(s): %r" % (
            up.accepted, len([c for c in up.conns if "proxy" in c]),
            [c.get("error") for c in up.conns])
    return [c["proxy"] for c in up.conns if "proxy" in c]


# --------------------------------------------------------------------------
# xver over plain TCP

@pytest.mark.parametrize("xver", [1, 2])
def test_xver_tcp(xver, wharf, proxy_upstream):
    up = proxy_upstream()
    port = free_port()
    w = wharf({"listeners": [listener("x", up.spec, port=port, xver=xver)]})
    s = connect(w.addr("x"))
    try:
        client = s.getsockname()
        # enough after the header for the relay to splice the rest
        r = echo_stream(s, os.urandom(4 << 20))
    finally:
        s.close()
    assert r["ok"], r["error"]
    (h,) = headers(up)
    assert h == {"version": xver, "local": False, "family": 4, "src": client,
                 "dst": ("127.0.0.1", port)}, h
    # the header is the relay's, not the client's: not counted
    assert w.wait_stat("x", "done", lambda v: v == 1) == 1
    assert w.stats()["x"]["bytes_up"] == 4 << 20


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")
@pytest.mark.parametrize("xver", [1, 2])
def test_xver_ipv6(xver, wharf, proxy_upstream):
    up = proxy_upstream()
    port = free_port("::1")
    w = wharf({"listeners": [listener("x6", up.spec, listen="::1", port=port, xver=xver)]})
    s = connect(w.addr("x6"))
    try:
        client = s.getsockname()[:2]
        r = echo_stream(s, b"over six")
    finally:
        s.close()
    assert r["ok"], r["error"]
    (h,) = headers(up)
    assert h["family"] == 6 and h["src"] == client and h["dst"] == ("::1", port), h


@pytest.mark.parametrize("xver", [1, 2])
def test_xver_names_the_proxy_source(xver, wharf, proxy_upstream):
    """A listener that accepts a PROXY header passes its source on."""
    up = proxy_upstream()
    port = free_port()
    w = wharf({"listeners": [listener("pp", up.spec, port=port, proxy_protocol=True,
                                      xver=xver)]})
    s = connect(w.addr("pp"))
    try:
        s.sendall(b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n")
        r = echo_stream(s, b"behind a balancer")
    finally:
        s.close()
    assert r["ok"], r["error"]
    (h,) = headers(up)
    # the destination is where wharf was reached, not the balancer's
    assert h == {"version": xver, "local": False, "family": 4, "src": ("203.0.113.7", 56324),
                 "dst": ("127.0.0.1", port)}, h


@pytest.mark.parametrize("xver", [1, 2])
def test_xver_unix_client(xver, wharf, proxy_upstream, sockdir):
    """A client on a unix socket has no address: UNKNOWN, LOCAL (haproxy's)."""
    up = proxy_upstream()
    path = str(sockdir / "front.sock")
    w = wharf({"listeners": [listener("ux", up.spec, listen=path, xver=xver)]})
    r = echo_roundtrip(w.addr("ux"), b"from a unix socket")
    assert r["ok"], r["error"]
    (h,) = headers(up)
    assert h == {"version": xver, "local": True}, h


# --------------------------------------------------------------------------
# xver through the real V2Ray client: WebSocket (TCP) and QUIC (UDP)

def tcp_peer_of(server_port):
    """on_header check: the source is a client connected to server_port now."""
    def check(h):
        return h["src"][0] == "127.0.0.1" and server_side_inode(server_port, h["src"][1]) is not None
    return check


def udp_peer_of(h):
    """on_header check: the source is a UDP socket of this machine (the V2Ray
    client's) bound at that port, which V2Ray binds to the wildcard."""
    return h["src"][0] == "127.0.0.1" and udp_bound(h["src"][1])


def v2ray_push(case, xver, wharf, spawn, tmp_path, proxy_upstream, on_header_of, udp=False):
    server_port, local_port = free_port(), free_port()
    up = proxy_upstream(on_header=on_header_of(server_port))
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(server_port),
               LOCAL_PORT=str(local_port), UPSTREAM_PORT=str(up.port))
    case_env(case, tmp_path, env)
    ss = server_stream_settings(case, env, tmp_path)
    client_json = tmp_path / "client.json"
    render(INTEROP / "cases" / case / "client.json", client_json, env)
    ls = {"tag": "v2", "listen": "127.0.0.1", "port": server_port, "upstream": up.spec,
          "xver": xver, "streamSettings": ss}
    w = wharf({"listeners": [ls]}, start=False)
    w.start(wait=not udp)
    if udp:
        assert wait_for(lambda: udp_bound(server_port) and len(w.workers()) >= 1, 10), \
            w.diagnostics()
    v2 = spawn([V2RAY, "-config", client_json], "v2ray")
    p = push(local_port, nbytes=1 << 20, streams=2, timeout=60)
    v2log = v2.log_path.read_text(errors="replace") if v2.log_path.exists() else ""
    assert p.returncode == 0, "push.py failed:\n%s\n--- v2ray ---\n%s\n%s" % (
        p.stdout, v2log[-3000:], w.diagnostics())
    hs = headers(up, 2)
    for h in hs:
        assert h["version"] == xver and not h["local"] and h["family"] == 4, h
        assert h["dst"] == ("127.0.0.1", server_port), h
    checks = [c.get("check") for c in up.conns if "proxy" in c]
    assert all(checks), "a header named no client of this listener: %r %r" % (hs, checks)
    return w


@pytest.mark.skipif(V2RAY is None, reason="v2ray is not installed")
@pytest.mark.deadline(120)
@pytest.mark.parametrize("xver", [1, 2])
def test_xver_ws_v2ray(xver, wharf, spawn, tmp_path, proxy_upstream):
    v2ray_push("ws", xver, wharf, spawn, tmp_path, proxy_upstream, tcp_peer_of)


@pytest.mark.skipif(V2RAY is None, reason="v2ray is not installed")
@pytest.mark.deadline(120)
def test_xver_quic_v2ray(wharf, spawn, tmp_path, proxy_upstream):
    v2ray_push("quic", 1, wharf, spawn, tmp_path, proxy_upstream, lambda port: udp_peer_of,
               udp=True)


# --------------------------------------------------------------------------
# groups

def member_stats(w):
    """{(group, member): {connects, failures, down}} from `wharf -S`."""
    r = w.run("-S", timeout=10)
    assert r.returncode == 0, r.stderr
    out, cols = {}, None
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["group", "upstream"]:
            cols = parts[2:]
            continue
        if cols and len(parts) == len(cols) + 2:
            out[(parts[0], parts[1])] = {c: int(v) for c, v in zip(cols, parts[2:])}
    assert cols == ["connects", "failures", "down"], r.stdout
    return out


def roundtrips(w, tag, n):
    for i in range(n):
        r = echo_roundtrip(w.addr(tag), b"stream %d" % i)
        assert r["ok"], "stream %d: %s\n%s" % (i, r["error"], w.diagnostics())


@pytest.mark.deadline(60)
def test_group_skips_a_refusing_member_and_retries_it(wharf, upstream):
    live = upstream("echo")
    dead_port = free_port()
    dead = "127.0.0.1:%d" % dead_port
    w = wharf({"upstreamFailTimeout": 1,
               "listeners": [listener("g", [dead, live.spec], port=free_port())]})

    t0 = time.monotonic()
    roundtrips(w, "g", 6)
    assert live.accepted == 6
    st = member_stats(w)
    # the first stream found it refusing; the next ones, within the fail
    # timeout, did not try it again
    if time.monotonic() - t0 < 0.9:
        assert st[("g", dead)] == {"connects": 0, "failures": 1, "down": 1}, st
    assert st[("g", live.spec)]["connects"] == 6, st
    assert "connect() to upstream %s failed" % dead in w.log()
    s = w.stats()["g"]
    assert s["upstream"] == 0 and s["done"] == 6, s

    # it comes back; after the fail timeout it gets its turn again
    revived = upstream("echo", port=dead_port)
    time.sleep(1.2)
    roundtrips(w, "g", 4)
    assert revived.accepted == 2 and live.accepted == 8, (revived.accepted, live.accepted)
    st = member_stats(w)
    assert st[("g", dead)]["connects"] == 2 and st[("g", dead)]["down"] == 0, st


@pytest.mark.deadline(60)
def test_group_all_down_tries_every_member(wharf, upstream):
    """Every member refuses: each is tried once, then the stream closes as
    an upstream failure; the next stream tries them again (least recently
    failed first) rather than being refused outright."""
    dead = ["127.0.0.1:%d" % free_port() for _ in range(3)]
    w = wharf({"upstreamFailTimeout": 30,
               "listeners": [listener("alldown", dead, port=free_port())]})
    for i in range(2):
        s = connect(w.addr("alldown"))
        try:
            s.sendall(b"x")
            s.settimeout(5)
            assert s.recv(10) == b""
        except ConnectionResetError:
            pass
        finally:
            s.close()
    assert w.wait_stat("alldown", "upstream", lambda v: v == 2) == 2
    st = member_stats(w)
    for d in dead:
        assert st[("alldown", d)] == {"connects": 0, "failures": 2, "down": 1}, st


@pytest.mark.deadline(60)
def test_group_member_that_never_answers(wharf, upstream):
    """A member whose SYNs are dropped (its accept queue is full) gets half
    of policy.handshake (two members), then the stream goes on to the next."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname(), timeout=5)
    hole_spec = "127.0.0.1:%d" % hole.getsockname()[1]
    live = upstream("echo")
    try:
        w = wharf({"policy": {"handshake": 2}, "upstreamFailTimeout": 30,
                   "listeners": [listener("slow", [hole_spec, live.spec], port=free_port())]})
        t0 = time.monotonic()
        r = echo_roundtrip(w.addr("slow"), b"eventually", timeout=10)
        took = time.monotonic() - t0
        assert r["ok"], r["error"]
        assert 0.8 < took < 1.9, took
        assert "upstream %s timed out connecting" % hole_spec in w.log()
        st = member_stats(w)
        assert st[("slow", hole_spec)]["failures"] == 1, st
        # down now: the next stream does not wait for it
        t0 = time.monotonic()
        r = echo_roundtrip(w.addr("slow"), b"at once", timeout=10)
        assert r["ok"] and time.monotonic() - t0 < 0.5, (r, time.monotonic() - t0)
    finally:
        filler.close()
        hole.close()


@pytest.mark.deadline(60)
def test_connect_that_completes_later(wharf):
    """A loopback connect is usually over when connect() returns, and the
    relay starts at once. This one's first SYN is dropped (the accept queue
    is full until the test takes the connection that fills it), so it
    completes a second later, reported by the writable event: the client's
    early bytes reach the upstream then, and the answer comes back."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname(), timeout=5)
    spec = "127.0.0.1:%d" % hole.getsockname()[1]
    w = wharf({"policy": {"handshake": 10},
               "listeners": [listener("late", spec, port=free_port())]})
    c = connect(w.addr("late"))
    try:
        c.settimeout(10)
        c.sendall(b"early bytes")
        time.sleep(0.3)
        first, _ = hole.accept()        # the filler's: the queue has room again
        first.close()
        hole.settimeout(10)
        t0 = time.monotonic()
        up, _ = hole.accept()
        up.settimeout(10)
        got = b""
        while len(got) < 11:
            d = up.recv(64)
            assert d, got
            got += d
        assert got == b"early bytes"
        assert time.monotonic() - t0 > 0.2   # it did wait for the SYN sent again
        up.sendall(b"answer")
        assert c.recv(64) == b"answer"
        up.close()
        assert c.recv(64) == b""
    finally:
        c.close()
        filler.close()
        hole.close()
    assert member_stats(w)[("late", spec)] == {"connects": 1, "failures": 0, "down": 0}


@pytest.mark.deadline(60)
def test_group_round_robin_and_stats(wharf, upstream):
    a, b = upstream("echo"), upstream("echo")
    sport = free_port()
    w = wharf({"stats": {"listen": "127.0.0.1", "port": sport},
               "listeners": [listener("rr", [a.spec, b.spec], port=free_port()),
                             listener("one", "localhost:%d" % a.port, port=free_port())]})
    roundtrips(w, "rr", 20)
    assert (a.accepted, b.accepted) == (10, 10)
    roundtrips(w, "one", 3)

    st = member_stats(w)
    assert st[("rr", a.spec)] == {"connects": 10, "failures": 0, "down": 0}, st
    assert st[("rr", b.spec)] == {"connects": 10, "failures": 0, "down": 0}, st
    # a name is resolved at load; its address is the member
    assert st[("one", "127.0.0.1:%d" % a.port)]["connects"] == 3, st

    status, body = fetch_metrics(sport)
    assert status == 200, body
    m = parse_metrics(body)
    for spec in (a.spec, b.spec):
        labels = (("group", "rr"), ("upstream", spec))
        assert m[("wharf_upstream_connects_total", labels)] == 10, body
        assert m[("wharf_upstream_connect_failures_total", labels)] == 0, body
        assert m[("wharf_upstream_down", labels)] == 0, body


@pytest.mark.deadline(60)
def test_group_two_workers_split(wharf, upstream):
    """Each worker keeps its own rotation and down state; over two workers
    the members still share the streams, and a refusing member costs each
    worker one failed connect."""
    a, b = upstream("echo"), upstream("echo")
    dead = "127.0.0.1:%d" % free_port()
    w = wharf({"worker_processes": 2, "upstreamFailTimeout": 30,
               "listeners": [listener("w2", [a.spec, dead, b.spec], port=free_port())]})
    roundtrips(w, "w2", 40)
    assert a.accepted + b.accepted == 40
    assert a.accepted >= 10 and b.accepted >= 10, (a.accepted, b.accepted)
    st = member_stats(w)
    assert 1 <= st[("w2", dead)]["failures"] <= 2, st
    assert st[("w2", dead)]["down"] == st[("w2", dead)]["failures"], st


# --------------------------------------------------------------------------
# configuration errors

CONF_HEAD = """\
daemon = false;
user = "nobody";
pid = "logs/wharf.pid";
error_log = "logs/error.log";
listeners = (
  { tag = "a"; listen = "127.0.0.1"; port = %d;
"""


@pytest.mark.parametrize("body,line,what", [
    ('    upstream = [ "127.0.0.1:1",\n      "127.0.0.1" ]; }\n);\n', 8,
     '"upstream" member "127.0.0.1" has no port'),
    ('    upstream = ( "127.0.0.1:1",\n      "nohost.invalid:80" ); }\n);\n', 8,
     'does not resolve'),
    ('    upstream = [ ]; }\n);\n', 7, '"upstream" is an empty list'),
    ('    upstream = [ "127.0.0.1:1",\n      "echo" ]; }\n);\n', 8,
     '"upstream" member "echo" cannot be in a group'),
    ('    upstream = [ "127.0.0.1:1",\n      "127.0.0.1:1" ]; }\n);\n', 8, 'repeats a member'),
    ('    upstream = "echo";\n    xver = 3; }\n);\n', 8, '"xver"'),
    ('    upstream = "echo"; }\n);\nupstreamFailTimeout = -2;\n', 9, '"upstreamFailTimeout"'),
], ids=["bad_member", "unresolvable", "empty", "echo_in_group", "repeated", "xver_range",
        "fail_timeout"])
def test_config_errors(body, line, what, tmp_path):
    conf = tmp_path / "wharf.conf"
    conf.write_text(CONF_HEAD % free_port() + body)
    r = subprocess.run([str(WHARF), "-t", "-p", str(tmp_path), "-c", str(conf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    assert r.returncode != 0, r.stdout
    assert what in r.stdout, r.stdout
    assert re.search(r" in %s:%d\b" % (re.escape(str(conf)), line), r.stdout), r.stdout
