"""tcpSettings.acceptProxyProtocol = true: PROXY protocol v1 and v2 headers are
consumed (never relayed), anything else is refused as bad input."""
import os
import socket
import struct
import time

import pytest

from conftest import connect, free_port, listener, recv_until_eof, wait_closed, wait_for

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
POLICY = {"handshake": 2, "connIdle": 300, "uplinkOnly": 1, "downlinkOnly": 1}


def v1(proto="TCP4", src="203.0.113.7", dst="192.0.2.1", sport=56324, dport=443):
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


def v2(cmd=1, fam=0x11, src="198.51.100.9", dst="192.0.2.1", sport=40000, dport=443,
       tlvs=b""):
    if fam == 0x11:
        addr = (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
                + struct.pack("!HH", sport, dport))
    elif fam == 0x21:
        addr = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack("!HH", sport, dport))
    else:
        addr = b""
    body = addr + tlvs
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


@pytest.fixture
def pp(wharf, upstream):
    """A listener with acceptProxyProtocol = true relaying to a sink upstream."""
    up = upstream("sink")
    w = wharf({"log_level": "info", "policy": POLICY,
               "listeners": [listener("pp", up.spec, port=free_port(), proxy_protocol=True)]})
    return w, up


def relay_through(w, up, pieces):
    """Send the pieces (with a pause between them), half-close, expect EOF;
    returns what the upstream received."""
    s = connect(w.addr("pp"))
    try:
        for i, p in enumerate(pieces):
            if i:
                time.sleep(0.2)
            s.sendall(p)
        s.shutdown(socket.SHUT_WR)
        data, how = recv_until_eof(s, timeout=8)
    finally:
        s.close()
    assert how == "eof", "client saw %s instead of EOF" % how
    assert data == b""
    assert wait_for(lambda: up.conns and up.conns[-1]["closed"], 5), \
        "upstream connection not finished (connections: %d)" % up.accepted
    assert up.accepted == 1
    return bytes(up.conns[0]["data"])


def expect_refused(w, up, pieces, timeout=5):
    s = connect(w.addr("pp"))
    try:
        for i, p in enumerate(pieces):
            if i:
                time.sleep(0.2)
            try:
                s.sendall(p)
            except OSError:
                break
        elapsed, how, data = wait_closed(s, timeout=timeout + 3)
    finally:
        s.close()
    assert how in ("eof", "reset"), "connection still open after %ds" % (timeout + 3)
    assert data == b""
    assert elapsed < timeout, "closed only after %.1fs" % elapsed
    time.sleep(0.2)
    assert all(len(c["data"]) == 0 for c in up.conns), "bytes reached the upstream"
    return elapsed


def test_v1_tcp4(pp):
    w, up = pp
    # the payload itself starts like a PROXY header: only the first one is consumed
    payload = v1(src="10.9.9.9") + os.urandom(100000)
    got = relay_through(w, up, [v1(src="203.0.113.7") + payload])
    assert got == payload
    assert wait_for(lambda: "client: 203.0.113.7" in w.log(), 3), \
        "log lacks 'client: 203.0.113.7':\n%s" % w.log()[-3000:]
    assert "client: 10.9.9.9" not in w.log()


def test_v1_tcp6(pp):
    w, up = pp
    payload = os.urandom(5000)
    got = relay_through(w, up, [v1("TCP6", "2001:db8::7", "2001:db8::1", 1234, 443) + payload])
    assert got == payload


def test_v1_unknown(pp):
    w, up = pp
    payload = b"hello after UNKNOWN"
    assert relay_through(w, up, [v1("UNKNOWN") + payload]) == payload


def test_v1_split_across_sends(pp):
    w, up = pp
    hdr = v1(src="203.0.113.7")
    payload = os.urandom(3000)
    got = relay_through(w, up, [hdr[:9], hdr[9:20], hdr[20:] + payload])
    assert got == payload


def test_v2_inet_with_tlv(pp):
    w, up = pp
    payload = os.urandom(70000)
    hdr = v2(fam=0x11, tlvs=tlv(0x02, b"example.com") + tlv(0x04, b"\0" * 5))
    assert relay_through(w, up, [hdr + payload]) == payload
    assert wait_for(lambda: "client: 198.51.100.9" in w.log(), 3), \
        "log lacks 'client: 198.51.100.9':\n%s" % w.log()[-3000:]


def test_v2_inet6_with_tlv(pp):
    w, up = pp
    payload = os.urandom(70000)
    hdr = v2(fam=0x21, src="2001:db8::9", dst="2001:db8::1", tlvs=tlv(0x02, b"example.org"))
    assert relay_through(w, up, [hdr + payload]) == payload


def test_v2_local_command(pp):
    w, up = pp
    payload = b"health check payload"
    assert relay_through(w, up, [v2(cmd=0, fam=0x00) + payload]) == payload


def test_v2_split_across_sends(pp):
    w, up = pp
    hdr = v2(fam=0x11, tlvs=tlv(0x04, b"xyz"))
    payload = os.urandom(1000)
    got = relay_through(w, up, [hdr[:7], hdr[7:17], hdr[17:] + payload])
    assert got == payload


def test_missing_header_is_bad_input(pp):
    w, up = pp
    expect_refused(w, up, [b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"])
    v = w.wait_stat("pp", "bad_input", lambda v: v >= 1)
    assert v == 1, "stats bad_input = %r, want 1" % v
    assert w.stats()["pp"]["done"] == 0


def test_malformed_v1_is_bad_input(pp):
    w, up = pp
    expect_refused(w, up, [b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\nhello"])
    v = w.wait_stat("pp", "bad_input", lambda v: v >= 1)
    assert v == 1, "stats bad_input = %r, want 1" % v


def test_malformed_v2_is_bad_input(pp):
    w, up = pp
    # version 3 in the version/command byte
    hdr = V2_SIG + bytes([0x31, 0x11]) + struct.pack("!H", 12) + b"\0" * 12
    expect_refused(w, up, [hdr + b"hello"])
    v = w.wait_stat("pp", "bad_input", lambda v: v >= 1)
    assert v == 1, "stats bad_input = %r, want 1" % v


@pytest.mark.deadline(30)
def test_silent_client_closed_after_handshake_timeout(pp):
    w, up = pp
    elapsed = expect_refused(w, up, [], timeout=6)
    assert elapsed >= 1.5, "closed after %.2fs, before handshake = 2" % elapsed
