"""The tcp transport (no header): byte-exact relay, half-close, unix and IPv6
sockets, upstream failures, timeouts, counters and the Prometheus endpoint."""
import http.client
import os
import re
import socket
import threading
import time
import uuid

import pytest

from conftest import (CAUSES, STAT_COLUMNS, connect, echo_roundtrip, echo_stream, free_port,
                      have_ipv6_loopback, listener, record_until_eof, recv_until_eof,
                      wait_closed, wait_for)

MiB = 1 << 20
POLICY = {"handshake": 60, "connIdle": 300, "uplinkOnly": 1, "downlinkOnly": 1}


def one_listener(up_spec, tag="t", listen="127.0.0.1", port=None, **conf):
    """A config dict with one tcp listener (unix listeners get a port too:
    the contract says it is ignored)."""
    if port is None:
        port = free_port("::1" if ":" in listen else "127.0.0.1")
    d = {"listeners": [listener(tag, up_spec, listen=listen, port=port)]}
    d.update(conf)
    return d


def check_big_echo(w, tag="t", nbytes=10 * MiB):
    data = os.urandom(nbytes)
    s = connect(w.addr(tag))
    try:
        r = echo_stream(s, data, timeout=45)
    finally:
        s.close()
    assert r["ok"], "%s (relay of %d bytes each way)" % (r["error"], nbytes)


@pytest.mark.deadline(60)
def test_10mib_each_way_python_echo(wharf, upstream):
    up = upstream("echo")
    w = wharf(one_listener(up.spec))
    check_big_echo(w)
    assert up.accepted == 1


@pytest.mark.deadline(60)
def test_10mib_each_way_builtin_echo(wharf):
    w = wharf(one_listener("echo"))
    check_big_echo(w)


def test_client_half_close_reaches_upstream(wharf, upstream):
    """Client shutdown(SHUT_WR) -> upstream sees EOF; upstream replies and
    closes -> the client gets the reply, then EOF."""
    def handler(conn, rec):
        record_until_eof(conn, rec)
        time.sleep(0.2)
        conn.sendall(b"reply:" + bytes(rec["data"]))

    up = upstream(handler=handler)
    w = wharf(one_listener(up.spec))
    s = connect(w.addr("t"))
    try:
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        data, how = recv_until_eof(s, timeout=8)
    finally:
        s.close()
    assert data == b"reply:hello", "client got %r (%s)" % (data, how)
    assert how == "eof", "the upstream's close did not reach the client as EOF (%s)" % how
    assert wait_for(lambda: up.conns and up.conns[0]["closed"], 5)
    assert up.conns[0]["eof"] and bytes(up.conns[0]["data"]) == b"hello"


def test_upstream_half_close_reaches_client(wharf, upstream):
    """Upstream sends then shutdown(SHUT_WR) -> the client reads the data and
    EOF, while its own direction still relays (within uplinkOnly)."""
    def handler(conn, rec):
        conn.sendall(b"banner\n")
        conn.shutdown(socket.SHUT_WR)
        record_until_eof(conn, rec)

    up = upstream(handler=handler)
    policy = dict(POLICY, uplinkOnly=5)
    w = wharf(one_listener(up.spec, policy=policy))
    s = connect(w.addr("t"))
    try:
        data, how = recv_until_eof(s, timeout=5)
        assert data == b"banner\n"
        assert how == "eof", "upstream FIN did not reach the client (%s)" % how
        s.sendall(b"still-writing")
        s.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: up.conns and up.conns[0]["closed"], 5), \
            "upstream connection not closed after the client's FIN"
    finally:
        s.close()
    assert bytes(up.conns[0]["data"]) == b"still-writing"
    assert up.conns[0]["eof"]


def hold_open(rec, seconds=8):
    t = time.monotonic() + seconds
    while time.monotonic() < t and not rec.get("stop"):
        time.sleep(0.05)


def test_downlink_only_after_client_fin(wharf, upstream):
    """Client half-closes, the upstream neither answers nor closes: the stream
    ends once the upstream direction was idle for downlinkOnly (1 s)."""
    def handler(conn, rec):
        while True:
            d = conn.recv(65536)
            if not d:
                rec["eof"] = True
                rec["t_eof"] = time.monotonic()
                break
            rec["data"] += d
        hold_open(rec)

    up = upstream(handler=handler)
    w = wharf(one_listener(up.spec, policy=POLICY))
    s = connect(w.addr("t"))
    try:
        s.sendall(b"abc")
        s.shutdown(socket.SHUT_WR)
        elapsed, how, data = wait_closed(s, timeout=8)
    finally:
        s.close()
    assert how in ("eof", "reset"), "stream still open 8 s after the client's FIN"
    assert data == b""
    assert 0.5 <= elapsed <= 4, "closed %.2fs after the client's FIN (downlinkOnly = 1)" % elapsed
    assert up.conns and up.conns[0]["eof"] and bytes(up.conns[0]["data"]) == b"abc"


def test_uplink_only_after_upstream_fin(wharf, upstream):
    """The upstream half-closes, the client stays silent: the stream ends
    (the upstream sees its connection closed) after uplinkOnly (1 s)."""
    def handler(conn, rec):
        conn.sendall(b"bye")
        conn.shutdown(socket.SHUT_WR)
        rec["t_fin"] = time.monotonic()
        try:
            record_until_eof(conn, rec)
        except OSError as e:
            rec["error"] = str(e)
        rec["t_end"] = time.monotonic()

    up = upstream(handler=handler)
    w = wharf(one_listener(up.spec, policy=POLICY))
    s = connect(w.addr("t"))
    try:
        data, how = recv_until_eof(s, timeout=5)
        assert data == b"bye" and how == "eof", (data, how)
        assert wait_for(lambda: up.conns and "t_end" in up.conns[0], 8), \
            "upstream connection still open 8 s after its FIN"
    finally:
        s.close()
    rec = up.conns[0]
    elapsed = rec["t_end"] - rec["t_fin"]
    assert 0.5 <= elapsed <= 4, "closed %.2fs after the upstream's FIN (uplinkOnly = 1)" % elapsed
    assert bytes(rec["data"]) == b""


@pytest.mark.deadline(60)
def test_100_concurrent_streams(wharf, upstream):
    up = upstream("echo")
    w = wharf(one_listener(up.spec))
    addr = w.addr("t")
    n = 100
    results = [None] * n
    barrier = threading.Barrier(n, timeout=20)

    def run(i):
        data = os.urandom(64 * 1024)
        try:
            barrier.wait()
            s = connect(addr, timeout=20)
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = "connect: %r" % e
            return
        try:
            r = echo_stream(s, data, timeout=40)
            results[i] = r["error"] or "ok"
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    bad = {i: r for i, r in enumerate(results) if r != "ok"}
    assert not bad, "%d of %d streams failed: %s" % (len(bad), n, dict(list(bad.items())[:5]))
    assert up.accepted == n


def test_ipv6_listener_and_upstream(wharf, upstream):
    if not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this host")
    up = upstream("echo", host="::1")
    assert up.spec.startswith("[::1]:")
    w = wharf(one_listener(up.spec, listen="::1", port=free_port("::1")))
    r = echo_roundtrip(w.addr("t"), os.urandom(200000))
    assert r["ok"], r["error"]


def test_unix_listener_path(wharf, upstream, tmp_path):
    up = upstream("echo")
    path = str(tmp_path / "l.sock")
    w = wharf(one_listener(up.spec, listen=path, port=free_port()))
    assert os.path.exists(path)
    r = echo_roundtrip(w.addr("t"), os.urandom(300000))
    assert r["ok"], r["error"]


def test_unix_listener_abstract(wharf, upstream):
    up = upstream("echo")
    name = "@wharf-it-" + uuid.uuid4().hex[:12]
    w = wharf(one_listener(up.spec, listen=name, port=free_port()))
    assert w.addr("t") == "\0" + name[1:]
    r = echo_roundtrip(w.addr("t"), os.urandom(300000))
    assert r["ok"], r["error"]


def test_unix_upstream_path(wharf, upstream, sockdir):
    up = upstream("echo", unix=str(sockdir / "up.sock"))
    assert up.spec == "unix:" + str(sockdir / "up.sock")
    w = wharf(one_listener(up.spec))
    r = echo_roundtrip(w.addr("t"), os.urandom(300000))
    assert r["ok"], r["error"]
    assert up.accepted == 1


def test_unix_upstream_abstract(wharf, upstream):
    name = "wharf-it-up-" + uuid.uuid4().hex[:12]
    up = upstream("echo", unix="\0" + name)
    assert up.spec == "unix:@" + name
    w = wharf(one_listener(up.spec))
    r = echo_roundtrip(w.addr("t"), os.urandom(100000))
    assert r["ok"], r["error"]


def test_upstream_down(wharf):
    dead = free_port()  # nothing listens there
    w = wharf(one_listener("127.0.0.1:%d" % dead))
    s = connect(w.addr("t"))
    try:
        try:
            s.sendall(b"hello?")
        except OSError:
            pass
        elapsed, how, data = wait_closed(s, timeout=8)
    finally:
        s.close()
    assert how in ("eof", "reset"), "client connection not closed (%s)" % how
    assert data == b""
    assert elapsed < 5, "closed only after %.1fs" % elapsed
    v = w.wait_stat("t", "upstream", lambda v: v >= 1)
    assert v == 1, "stats column upstream = %r, want 1" % v
    st = w.stats()["t"]
    assert st["accepted"] == 1 and st["active"] == 0 and st["done"] == 0, st


@pytest.mark.deadline(30)
def test_conn_idle_timeout(wharf, upstream):
    up = upstream("echo")
    w = wharf(one_listener(up.spec, policy=dict(POLICY, connIdle=2)))
    s = connect(w.addr("t"))
    try:
        r = echo_stream(s, b"x" * 10, half_close=False, timeout=5)
        assert r["ok"], r["error"]
        elapsed, how, data = wait_closed(s, timeout=10)
    finally:
        s.close()
    assert how in ("eof", "reset"), "idle stream still open after 10 s"
    assert data == b""
    assert 1.5 <= elapsed <= 5.5, "idle stream closed after %.2fs (connIdle = 2)" % elapsed
    v = w.wait_stat("t", "timeout", lambda v: v >= 1)
    assert v == 1, "stats column timeout = %r, want 1" % v
    assert wait_for(lambda: up.conns and up.conns[0]["closed"], 5), \
        "upstream connection not closed after the idle timeout"


def invariant_ok(st):
    return st["accepted"] == st["active"] + sum(st[c] for c in CAUSES)


def test_stats_counters_add_up(wharf, upstream):
    up = upstream("echo")
    w = wharf(one_listener(up.spec))
    st = w.stats()
    assert set(st) == {"t"}, st
    assert all(st["t"][c] == 0 for c in STAT_COLUMNS), st

    # one stream held open: active 1
    s = connect(w.addr("t"))
    try:
        r = echo_stream(s, b"0123456789", half_close=False, timeout=5)
        assert r["ok"], r["error"]
        assert w.wait_stat("t", "active", lambda v: v == 1) == 1
        st = w.stats()["t"]
        assert st["accepted"] == 1 and st["done"] == 0, st
        s.shutdown(socket.SHUT_WR)
        _, how = recv_until_eof(s, timeout=5)
        assert how == "eof"
    finally:
        s.close()

    sizes = [1, 1000, 65536, 300000, MiB]
    for n in sizes:
        r = echo_roundtrip(w.addr("t"), os.urandom(n), timeout=20)
        assert r["ok"], r["error"]
    total = sum(sizes) + 10
    st = None

    def settled():
        nonlocal st
        st = w.stats()["t"]
        return st["active"] == 0 and st["done"] == len(sizes) + 1 \
            and st["bytes_down"] == total

    wait_for(settled, 5, interval=0.1)
    assert st["accepted"] == len(sizes) + 1, st
    assert st["active"] == 0, st
    assert st["done"] == len(sizes) + 1, st
    for c in ("timeout", "upstream", "bad_input", "error", "shutdown"):
        assert st[c] == 0, (c, st)
    assert st["bytes_up"] == total, st
    assert st["bytes_down"] == total, st
    assert invariant_ok(st), st


def test_stats_directions(wharf, upstream):
    """bytes_up counts client -> upstream, bytes_down upstream -> client."""
    up = upstream("sink", reply=b"R" * 777)
    w = wharf(one_listener(up.spec))
    s = connect(w.addr("t"))
    try:
        s.sendall(os.urandom(5000))
        s.shutdown(socket.SHUT_WR)
        data, how = recv_until_eof(s, timeout=8)
    finally:
        s.close()
    assert data == b"R" * 777 and how == "eof", (len(data), how)
    st = None

    def settled():
        nonlocal st
        st = w.stats()["t"]
        return st["active"] == 0 and st["bytes_down"] == 777

    wait_for(settled, 5, interval=0.1)
    assert st["bytes_up"] == 5000, st
    assert st["bytes_down"] == 777, st
    assert st["accepted"] == 1 and st["done"] == 1, st


PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\s+(\S+)')
PROM_LABEL = re.compile(r'(\w+)="([^"]*)"')


def fetch_metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/metrics")
        resp = c.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, body
    finally:
        c.close()


def parse_metrics(body):
    out = {}
    for line in body.splitlines():
        m = PROM_LINE.match(line)
        if not m:
            continue
        labels = tuple(sorted(PROM_LABEL.findall(m.group(2))))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def test_prometheus_endpoint(wharf, upstream):
    up = upstream("sink", reply=b"r" * 4321)
    sport = free_port()
    w = wharf(one_listener(up.spec, tag="prom",
                           stats={"listen": "127.0.0.1", "port": sport}))
    s = connect(w.addr("prom"))
    try:
        s.sendall(os.urandom(12345))
        s.shutdown(socket.SHUT_WR)
        data, how = recv_until_eof(s, timeout=8)
    finally:
        s.close()
    assert len(data) == 4321 and how == "eof", (len(data), how)
    assert w.wait_stat("prom", "done", lambda v: v == 1) == 1

    status, body = fetch_metrics(sport)
    assert status == 200, body
    m = parse_metrics(body)

    def val(name, **labels):
        key = (name, tuple(sorted(dict(listener="prom", **labels).items())))
        assert key in m, "metric %s%s missing from:\n%s" % (name, labels, body)
        return m[key]

    assert val("wharf_streams_accepted_total") == 1
    assert val("wharf_streams_active") == 0
    for cause in CAUSES:
        assert val("wharf_streams_closed_total", cause=cause) == (1 if cause == "done" else 0)
    assert val("wharf_bytes_total", direction="up") == 12345
    assert val("wharf_bytes_total", direction="down") == 4321

    st = w.stats()["prom"]
    assert st["accepted"] == 1 and st["bytes_up"] == 12345 and st["bytes_down"] == 4321


LOG_LINE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[[a-z]+\] \d+#0: \S")


def test_log_format(wharf, upstream):
    up = upstream("echo")
    w = wharf(one_listener(up.spec, tag="logged"))
    r = echo_roundtrip(w.addr("logged"), b"log me")
    assert r["ok"], r["error"]
    stream_line = re.compile(r", client: 127\.0\.0\.1(:\d+)?, listener: logged\b")
    assert wait_for(lambda: stream_line.search(w.log()), 3), \
        "no stream line with ', client: 127.0.0.1, listener: logged':\n%s" % w.log()
    w.stop(timeout=5)
    lines = [l for l in w.log().splitlines() if l.strip()]
    assert lines
    bad = [l for l in lines if not LOG_LINE.match(l)]
    assert not bad, "log lines not in 'YYYY/MM/DD HH:MM:SS [level] PID#0: message' form:\n%s" \
        % "\n".join(bad[:10])
