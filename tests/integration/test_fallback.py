"""Fallbacks (wharf.conf(5) "fallbacks"): one port for the transports and a
website, with real clients.

- The layout of Xray's users on one TLS port: the Debian V2Ray client over
  ws /a (the front's own transport), ws /b (a hand-off to a listener with
  no address) and h2 /h2 (a hand-off by ALPN), all at once, byte-exact.
- The website behind the default fallback is Debian's nginx, configured
  here with a proxy_protocol listener and a plain one: curl through wharf
  gets what nginx answers when asked directly, and nginx's access log names
  the client from wharf's PROXY header (xver 1 and 2).
- Bytes that are not HTTP reach the default fallback whole, after TLS and
  on a plain port; SNI and ALPN entries with regular expressions; a dest
  that is an upstream group with a member down.
- The tcp "http" header and the http transport's HTTP/1.1 service refuse
  to fallbacks too.
- A reload that changes the fallbacks while streams run through them and
  through the transport; configuration errors at FILE:LINE.
"""
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import (INTEROP, PUSH, PYTHON, REPO, Upstream, WHARF, connect, echo_roundtrip,
                      echo_stream, free_port, pid_alive, recv_until_eof, render, wait_for)
from test_interop import make_pki, wait_connectable
from test_tcp_relay import fetch_metrics, parse_metrics
from test_tls import TLSClient
from test_upstream import headers, member_stats, proxy_echo
from test_ws import Frames, frame, ws_open

V2RAY = shutil.which("v2ray")
NGINX = shutil.which("nginx")
CURL = shutil.which("curl")
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
MiB = 1 << 20
SITE = "site.example"


# --------------------------------------------------------------------------
# upstreams

@pytest.fixture
def upstreams():
    """Factory: upstreams(mode or handler=...) -> Upstream; proxy=True reads
    a PROXY header first (rec["proxy"]), then echoes."""
    made = []

    def make(mode="echo", proxy=False, **kw):
        if proxy:
            kw["handler"] = proxy_echo()
        u = Upstream(mode, **kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


def greeter(name):
    """A handler that names itself, echoes one read and closes: a client
    that keeps its side open (openssl s_client) still sees the end."""
    def handler(conn, rec):
        conn.sendall(b"this is %s\n" % name.encode())
        d = conn.recv(65536)
        rec["data"] += d
        conn.sendall(d)
    return handler


def reload(w, conf):
    """w.reload(conf), then until every old worker has had its signal: till
    then it still accepts, with the old configuration."""
    old, new = w.reload(conf)
    assert wait_for(lambda: all("%d#0: gracefully shutting down" % p in w.log() for p in old),
                    5), w.diagnostics()
    return old, new


def ask(addr, data, timeout=10):
    """Sends data on a new connection; (what came back, how it ended), any
    Date header taken out."""
    s = connect(addr, timeout=timeout)
    try:
        s.sendall(data)
        got, how = recv_until_eof(s, timeout=timeout)
    finally:
        s.close()
    return re.sub(rb"\r\nDate: [^\r\n]*", b"", got), how


# --------------------------------------------------------------------------
# the website: Debian's nginx, one proxy_protocol port and one plain port

class Website:
    """nginx serving a small site from its own prefix: `pp_port` expects a
    PROXY header (what wharf's fallback sends with xver), `port` is the
    same site asked directly. The access log has one line per request:
    $proxy_protocol_addr $proxy_protocol_port "$request" $status
    $request_length."""

    LOG = re.compile(r'^(\S*) (\S*) "([^"]*)" (\d+) (\d+)$')

    def __init__(self, prefix, spawn):
        self.prefix = prefix
        self.pp_port, self.port = free_port(), free_port()
        for d in ("html", "tmp", "logs"):
            (prefix / d).mkdir(parents=True, exist_ok=True)
        (prefix / "html" / "index.html").write_text(
            "<!doctype html>\n<title>%s</title>\n<p>the website behind the fallback\n" % SITE)
        (prefix / "html" / "big.bin").write_bytes(random.Random(3).randbytes(3 * MiB))
        self.access_log = prefix / "logs" / "access.log"
        conf = prefix / "nginx.conf"
        conf.write_text("""\
load_module %(echo)s;
daemon off;
master_process off;
worker_processes 1;
pid %(p)s/logs/nginx.pid;
error_log %(p)s/logs/error.log info;
events { worker_connections 512; }
http {
    default_type application/octet-stream;
    types { text/html html; }
    log_format fb '$proxy_protocol_addr $proxy_protocol_port "$request" $status $request_length';
    access_log %(p)s/logs/access.log fb;
    client_body_temp_path %(p)s/tmp/body;
    proxy_temp_path %(p)s/tmp/proxy;
    fastcgi_temp_path %(p)s/tmp/fastcgi;
    uwsgi_temp_path %(p)s/tmp/uwsgi;
    scgi_temp_path %(p)s/tmp/scgi;
    client_body_buffer_size 1m;
    server {
        listen 127.0.0.1:%(pp)d proxy_protocol;
        listen 127.0.0.1:%(direct)d;
        server_name %(site)s;
        root %(p)s/html;
        location = /form {
            echo_read_request_body;
            echo_request_body;
        }
    }
}
""" % {"echo": ECHO_MODULE, "p": prefix, "pp": self.pp_port, "direct": self.port,
       "site": SITE})
        self.proc = spawn([NGINX, "-e", prefix / "logs" / "error.log", "-p", prefix,
                           "-c", conf], "nginx")
        ok = (wait_connectable(("127.0.0.1", self.port))
              and wait_connectable(("127.0.0.1", self.pp_port)))
        assert ok, "nginx did not start:\n%s" % self.diagnostics()
        # the readiness probes above are logged as failed requests: forget them
        self.skip = len(self.log_lines())

    @property
    def dest(self):
        return "127.0.0.1:%d" % self.pp_port

    def log_lines(self):
        try:
            text = self.access_log.read_text(errors="replace")
        except OSError:
            return []
        return [l for l in text.splitlines() if l]

    def requests(self):
        """[(proxy addr, proxy port, request line, status, length)] since start."""
        out = []
        for line in self.log_lines()[self.skip:]:
            m = self.LOG.match(line)
            assert m, "unexpected access log line %r" % line
            out.append((m.group(1), m.group(2), m.group(3), int(m.group(4)), int(m.group(5))))
        return out

    def diagnostics(self):
        err = self.prefix / "logs" / "error.log"
        return "--- nginx ---\n%s\n%s" % (
            self.proc.log_path.read_text(errors="replace") if self.proc.log_path.exists() else "",
            err.read_text(errors="replace")[-3000:] if err.exists() else "")


@pytest.fixture
def website(tmp_path, spawn):
    if NGINX is None or not os.path.exists(ECHO_MODULE):
        pytest.skip("nginx with its echo module is not installed (apt-get install nginx-light)")
    return Website(tmp_path / "nginx", spawn)


def curl(url, tmp, *args, connect_to=None):
    """curl -i as a browser would ask; returns ((status line, [(name,
    value)] but Date, body), curl's local port)."""
    hfile, bfile = tmp / "curl.h", tmp / "curl.b"
    argv = [CURL, "-sS", "-k", "--http1.1", "-m", "15", "-H", "Host: " + SITE, "-H", "Expect:",
            "-D", hfile, "-o", bfile, "-w", "%{local_port}"]
    if connect_to:
        argv += ["--connect-to", connect_to]
    r = subprocess.run([str(a) for a in argv + list(args) + [url]], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "curl %s: %s" % (url, r.stderr.decode(errors="replace"))
    lines = hfile.read_bytes().decode("latin-1").split("\r\n")
    hdrs = [tuple(l.split(": ", 1)) for l in lines[1:] if l]
    return ((lines[0], [h for h in hdrs if h[0].lower() != "date"], bfile.read_bytes()),
            int(r.stdout))


def same_as_direct(site, front_url, tmp_path, paths, xver, connect_to=None):
    """Each (path, curl args) asked through wharf and directly: the same
    answer, and nginx logged the client of wharf's request from the PROXY
    header (its address and curl's port) and the same request length."""
    for path, args in paths:
        before = len(site.requests())
        (via, port) = curl(front_url + path, tmp_path, *args, connect_to=connect_to)
        (direct, _) = curl("http://127.0.0.1:%d%s" % (site.port, path), tmp_path, *args)
        assert via == direct, "%s: through wharf %r\n      directly %r" % (
            path, via[:2], direct[:2])
        got = site.requests()[before:]
        assert len(got) == 2, got
        assert got[0][:2] == ("127.0.0.1", str(port)), \
            "xver %d: nginx saw %r, curl's port was %d" % (xver, got[0], port)
        assert got[1][:2] == ("-", "-"), got[1]
        assert got[0][2:] == got[1][2:], got


# --------------------------------------------------------------------------
# the layout of the issue

def tls_settings(pki, alpn=("h2", "http/1.1")):
    return {"alpn": list(alpn), "certificates": [{"certificateFile": str(pki / "cert.pem"),
                                                  "keyFile": str(pki / "key.pem")}]}


def front_layout(port, up_a, up_b, up_h2, default, pki=None, xver=0, more=()):
    """The front (ws /a, with TLS when pki is given) and the listeners it
    hands off to: ws-b (ws /b) and h2-in (http /h2), with the issue's
    fallbacks; `more` goes before the default entry."""
    ss = {"network": "ws", "security": "none", "wsSettings": {"path": "/a"}}
    fbs = []
    if pki is not None:
        ss.update(security="tls", tlsSettings=tls_settings(pki))
        fbs.append({"alpn": "h2", "dest": "listener:h2-in"})
    fbs.append({"path": "/b", "dest": "listener:ws-b"})
    fbs += list(more)
    default_entry = {"dest": default}
    if xver:
        default_entry["xver"] = xver
    fbs.append(default_entry)
    return [
        {"tag": "front", "listen": "127.0.0.1", "port": port, "upstream": up_a,
         "streamSettings": ss, "fallbacks": fbs},
        {"tag": "ws-b", "upstream": up_b,
         "streamSettings": {"network": "ws", "security": "none", "wsSettings": {"path": "/b"}}},
        {"tag": "h2-in", "upstream": up_h2,
         "streamSettings": {"network": "http", "security": "none",
                            "httpSettings": {"host": ["localhost"], "path": "/h2"}}},
    ]


def v2ray_client(case, tmp_path, name, port, pki=None, **settings):
    """A Debian V2Ray client for an interop case, its transport settings
    changed as given (wsSettings={"path": "/b"}, ...); returns its local port."""
    local = free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(port), LOCAL_PORT=str(local))
    if pki is not None:
        env.update(CA_FILE=str(pki / "cert.pem"), TLS_SERVER_NAME="localhost")
    out = tmp_path / ("client-%s.json" % name)
    render(INTEROP / "cases" / case / "client.json", out, env)
    conf = json.loads(out.read_text())
    conf["outbounds"][0]["streamSettings"].update(settings)
    out.write_text(json.dumps(conf, indent=2))
    return local, out


def push_all(spawn, clients, nbytes, streams, timeout=60):
    """push.py through every (name, local port) at once; {name: (rc, output)}."""
    procs = {}
    for name, local in clients:
        procs[name] = subprocess.Popen(
            [PYTHON, str(PUSH), str(local), "--bytes", str(nbytes),
             "--streams", str(streams), "--timeout", str(timeout), "--wait-port", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out = {}
    for name, p in procs.items():
        try:
            text = p.communicate(timeout=timeout + 15)[0]
        except subprocess.TimeoutExpired:
            p.kill()
            text = p.communicate()[0]
        out[name] = (p.returncode, text.decode(errors="replace"))
    return out


def echoed(up, n, nbytes):
    """up echoed nbytes on each of n connections (push.py's probe of the
    client's port makes one more, empty), and they are closed."""
    return wait_for(lambda: all(c["closed"] for c in up.conns) and sorted(
        c.get("bytes", 0) for c in up.conns if c.get("bytes")) == [nbytes] * n, 10)


@pytest.mark.skipif(V2RAY is None, reason="v2ray is not installed (apt-get install v2ray)")
@pytest.mark.deadline(90)
def test_v2ray_ws_handoff_and_alpn_handoff_on_one_tls_port(wharf, spawn, upstreams, tmp_path):
    """ws /a (the front's transport), ws /b (path hand-off) and h2 /h2 (ALPN
    hand-off): 4 x 10 MiB each, all at once, byte-exact, each to its own
    listener's upstream."""
    pki = make_pki(tmp_path)
    a, b, h2, site = upstreams(), upstreams(), upstreams(), upstreams("sink")
    port = free_port()
    w = wharf({"worker_processes": 2,
               "listeners": front_layout(port, a.spec, b.spec, h2.spec, site.spec, pki=pki)})
    clients = []
    for name, case, settings in (("a", "ws-tls", {"wsSettings": {"path": "/a"}}),
                                 ("b", "ws-tls", {"wsSettings": {"path": "/b"}}),
                                 ("h2", "h2", {"httpSettings": {"host": ["localhost"],
                                                                "path": "/h2"}})):
        local, conf = v2ray_client(case, tmp_path, name, port, pki=pki, **settings)
        spawn([V2RAY, "-config", conf], "v2ray-" + name)
        clients.append((name, local))
    t0 = time.monotonic()
    got = push_all(spawn, clients, 10 * MiB, 4)
    took = time.monotonic() - t0
    bad = {k: v for k, v in got.items() if v[0] != 0}
    assert not bad, "push.py failed (%.1f s):\n%s\n%s" % (
        took, "\n".join("--- %s ---\n%s" % (k, v[1]) for k, v in bad.items()), w.diagnostics())
    print("3 x 4 x 10 MiB echoed through one TLS port in %.1f s" % took)
    for name, up in (("a", a), ("b", b), ("h2", h2)):
        assert echoed(up, 4, 10 * MiB), "%s: %r" % (
            name, [(c.get("bytes"), c["closed"]) for c in up.conns])
    assert site.accepted == 0
    w.wait_stat("front", "active", lambda v: v == 0, timeout=10)
    # a ws hand-off stays the front's stream; the h2 streams are h2-in's
    stats = w.stats()
    for tag in ("front", "ws-b", "h2-in"):
        st = stats[tag]
        assert st["bad_input"] == 0 and st["upstream"] == 0 and st["error"] == 0, stats
    for col in ("bytes_up", "bytes_down"):
        assert stats["front"][col] >= 8 * 10 * MiB and stats["h2-in"][col] >= 4 * 10 * MiB, stats
    # the hand-offs: ws /b's connections (push.py's probe too) and h2's one
    assert stats["front"]["fallbacks"] == b.accepted + 1, stats
    assert stats["ws-b"]["fallbacks"] == stats["h2-in"]["fallbacks"] == 0, stats


# --------------------------------------------------------------------------
# the website behind the default fallback

@pytest.mark.skipif(CURL is None, reason="curl is not installed")
@pytest.mark.deadline(60)
@pytest.mark.parametrize("xver", [1, 2])
def test_website_behind_tls_front(xver, wharf, upstreams, website, tmp_path):
    """GET /, /a without an upgrade, /nothing, a 3 MiB file and a POST with a
    body, through the TLS front's default fallback: what nginx answers
    directly, and nginx logs the client from the PROXY header."""
    pki = make_pki(tmp_path)
    a, b, h2 = upstreams(), upstreams(), upstreams()
    port = free_port()
    w = wharf({"listeners": front_layout(port, a.spec, b.spec, h2.spec, website.dest, pki=pki,
                                         xver=xver)})
    body = tmp_path / "form.bin"
    body.write_bytes(random.Random(5).randbytes(200000))
    same_as_direct(website, "https://127.0.0.1:%d" % port, tmp_path, [
        ("/", []), ("/a", []), ("/nothing", []), ("/big.bin", []),
        ("/form", ["--data-binary", "@%s" % body]),
        ("/a?upgrade=no", ["-H", "Connection: Upgrade", "-H", "Upgrade: websocket"]),
        # a head longer than the ws transport reads (its 431): whole all the same
        ("/", ["-H", "Cookie: session=" + "c" * 7000]),
    ], xver)
    # the POST's body came back whole from nginx (its echo module)
    (_, _, got), _ = curl("https://127.0.0.1:%d/form" % port, tmp_path,
                          "--data-binary", "@%s" % body)
    assert got == body.read_bytes()
    assert a.accepted == b.accepted == h2.accepted == 0
    assert w.stats()["front"]["fallbacks"] == 8


@pytest.mark.deadline(30)
def test_non_http_after_tls_goes_to_default_whole(wharf, upstreams, tmp_path):
    """Bytes that cannot start a request, right after TLS: the default
    fallback gets them at once (not after the header deadline), with the
    PROXY header first, then every byte, both ways."""
    pki = make_pki(tmp_path)
    a, b, h2 = upstreams(), upstreams(), upstreams()
    rec = upstreams(proxy=True)
    port = free_port()
    w = wharf({"listeners": front_layout(port, a.spec, b.spec, h2.spec, rec.spec, pki=pki,
                                         xver=2)})
    for alpn in (["http/1.1"], None):
        c = TLSClient(("127.0.0.1", port), alpn=alpn)
        try:
            client = c.sock.getsockname()
            first = b"\x00\x01\x02 not http\r\n"
            t0 = time.monotonic()
            c.send(first)
            assert c.recv_some(timeout=3) == first, "no echo of the first bytes"
            assert time.monotonic() - t0 < 2
            data = first + os.urandom(2 * MiB)
            got = first + c.echo(data[len(first):], timeout=20)
            assert got == data, "%d of %d bytes came back" % (len(got), len(data))
        finally:
            c.close()
        (h,) = headers(rec, 1 if alpn else 2)[-1:]
        assert h["version"] == 2 and h["src"] == client and h["dst"] == ("127.0.0.1", port), h
    assert w.wait_stat("front", "active", lambda v: v == 0) == 0
    st = w.stats()["front"]
    assert st["bad_input"] == 0 and st["error"] == 0 and st["fallbacks"] == 2, st
    assert a.accepted == b.accepted == h2.accepted == 0


# --------------------------------------------------------------------------
# the same on a plain port; SNI and ALPN; a group as dest

@pytest.mark.skipif(V2RAY is None or CURL is None, reason="needs v2ray and curl")
@pytest.mark.deadline(90)
def test_plain_ws_front(wharf, spawn, upstreams, website, tmp_path):
    """No TLS: ws /a and /b (hand-off) with the V2Ray client, the website
    (also its answer to an SSH banner), a PCRE2 path entry with xver 1
    that gets the whole request."""
    a, b, h2 = upstreams(), upstreams(), upstreams()
    api = upstreams(proxy=True)
    port = free_port()
    w = wharf({"worker_processes": 2, "listeners": front_layout(
        port, a.spec, b.spec, h2.spec, website.dest, xver=1,
        more=[{"path": "~^/api/v[0-9]+/", "dest": api.spec, "xver": 1}])[:2]})

    clients = []
    for name in ("a", "b"):
        local, conf = v2ray_client("ws", tmp_path, name, port, wsSettings={"path": "/" + name})
        spawn([V2RAY, "-config", conf], "v2ray-" + name)
        clients.append((name, local))
    got = push_all(spawn, clients, 4 * MiB, 2)
    assert all(v[0] == 0 for v in got.values()), "%r\n%s" % (got, w.diagnostics())
    assert echoed(a, 2, 4 * MiB) and echoed(b, 2, 4 * MiB)

    same_as_direct(website, "http://127.0.0.1:%d" % port, tmp_path,
                   [("/", []), ("/a", []), ("/nothing", []), ("/api/v1", [])], 1)

    # not HTTP: nginx's own answer to it, as when asked directly
    banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
    answers = [ask(("127.0.0.1", p), banner) for p in (port, website.port)]
    assert answers[0] == answers[1] and answers[0][0].startswith(b"HTTP/1.1 400 "), answers

    # the path entry: the request, its body and what follows, whole
    req = (b"POST /api/v2/items?x=1 HTTP/1.1\r\nHost: api.example\r\n"
           b"Content-Length: 100000\r\n\r\n")
    r = echo_roundtrip(("127.0.0.1", port), req + os.urandom(100000) + os.urandom(MiB))
    assert r["ok"], r["error"]
    (h,) = headers(api)
    assert h["version"] == 1 and h["src"] == r["client"] and h["dst"] == ("127.0.0.1", port), h


@pytest.mark.deadline(40)
def test_sni_and_alpn_entries(wharf, upstreams, tmp_path):
    """name entries are caseless (a "~*" regex, an exact name), alpn entries
    exact or regex, both fields in one entry must both match; what matches
    none goes to the transport."""
    pki = make_pki(tmp_path)
    a = upstreams()
    static, xalpn, both, dflt = (upstreams(handler=greeter(n))
                                 for n in ("static", "x-alpn", "both", "default"))
    port = free_port()
    w = wharf({"listeners": [{
        "tag": "front", "listen": "127.0.0.1", "port": port, "upstream": a.spec,
        "streamSettings": {"network": "ws", "security": "tls", "wsSettings": {"path": "/a"},
                           "tlsSettings": tls_settings(pki, ("h2", "http/1.1", "x-wharf/1"))},
        "fallbacks": [
            {"name": "~*^static\\.", "dest": static.spec},
            {"alpn": "~^x-", "dest": xalpn.spec},
            {"name": "exact.example", "alpn": "http/1.1", "dest": both.spec},
            {"dest": dflt.spec},
        ]}]})

    def who(sni, alpn):
        c = TLSClient(("127.0.0.1", port), sni=sni, alpn=alpn)
        try:
            c.send(b"ping\n")
            data = bytearray()
            while len(data) < 64 and not data.endswith(b"ping\n"):
                more = c.recv_some(timeout=5)
                if not more:
                    break
                data += more
            return bytes(data).split(b"\n")[0].decode()
        finally:
            c.close()

    assert who("STATIC.example.org", ["http/1.1"]) == "this is static"
    assert who("static.example.org", ["x-wharf/1"]) == "this is static"     # first entry first
    assert who("cdn.example.org", ["x-wharf/1"]) == "this is x-alpn"
    assert who("Exact.Example", ["http/1.1"]) == "this is both"
    # not anchored at the start, the other protocol, no SNI: the ws
    # transport refuses "ping" (not HTTP): the default
    assert who("nostatic.example.org", ["http/1.1"]) == "this is default"
    assert who("exact.example", ["h2"]) == "this is default"
    assert who(None, None) == "this is default"

    # openssl s_client, as a person would try it
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "Static.Example.COM", "-alpn", "x-wharf/1", "-ign_eof"],
                       input=b"ping\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10)
    assert b"this is static\nping\n" in r.stdout, r.stdout.decode(errors="replace")
    # what matches none still reaches the transport
    c = TLSClient(("127.0.0.1", port), sni="www.example.org", alpn=["http/1.1"])
    try:
        c.send(b"GET /a HTTP/1.1\r\nHost: www.example.org\r\nConnection: Upgrade\r\n"
               b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        assert c.recv_some(timeout=5).startswith(b"HTTP/1.1 101 ")
    finally:
        c.close()
    assert wait_for(lambda: a.accepted == 1, 5)
    assert static.accepted == 3 and xalpn.accepted == 1 and both.accepted == 1
    assert dflt.accepted == 3
    assert w.stats()["front"]["fallbacks"] == 8


@pytest.mark.deadline(30)
def test_name_and_alpn_on_raw_tls_tcp(wharf, upstreams, tmp_path):
    """Raw tcp with TLS refuses nothing, but its name and alpn entries apply:
    one TLS port for a raw stream and an h2c listener by ALPN."""
    pki = make_pki(tmp_path)
    raw, h2, named = upstreams(), upstreams(), upstreams(handler=greeter("named"))
    port = free_port()
    ls = front_layout(port, None, None, h2.spec, None)[2:]
    ls.insert(0, {"tag": "raw", "listen": "127.0.0.1", "port": port, "upstream": raw.spec,
                  "streamSettings": {"network": "tcp", "security": "tls",
                                     "tlsSettings": tls_settings(pki)},
                  "fallbacks": [{"alpn": "h2", "dest": "listener:h2-in"},
                                {"name": "~*^named\\.", "dest": named.spec}]})
    w = wharf({"listeners": ls})
    c = TLSClient(("127.0.0.1", port), alpn=["http/1.1"])
    try:
        data = os.urandom(MiB)
        assert c.echo(data) == data
    finally:
        c.close()
    c = TLSClient(("127.0.0.1", port), sni="Named.example", alpn=["http/1.1"])
    try:
        assert c.recv_some() == b"this is named\n"
    finally:
        c.close()
    # the h2 listener answers HTTP/2 (its SETTINGS) where the raw stream would echo
    c = TLSClient(("127.0.0.1", port), alpn=["h2"])
    try:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        got = c.recv_some()
        assert got[3:4] == b"\x04" and got[5:9] == b"\x00\x00\x00\x00", got
    finally:
        c.close()
    assert raw.accepted == 1 and named.accepted == 1 and h2.accepted == 0
    assert w.stats()["raw"]["fallbacks"] == 2


@pytest.mark.deadline(40)
def test_group_dest_with_a_member_down(wharf, upstreams):
    """A dest that is a group: the refusing member is skipped and marked
    down; after upstreamFailTimeout it gets its turn again."""
    a = upstreams()
    live = upstreams()
    dead_port = free_port()
    dead = "127.0.0.1:%d" % dead_port
    port, sport = free_port(), free_port()
    w = wharf({"upstreamFailTimeout": 1, "stats": {"listen": "127.0.0.1", "port": sport},
               "listeners": [{"tag": "plain", "listen": "127.0.0.1", "port": port,
                              "upstream": a.spec,
                              "streamSettings": {"network": "ws", "wsSettings": {"path": "/a"}},
                              "fallbacks": [{"dest": [dead, live.spec]}]}]})

    def garbage(i):
        r = echo_roundtrip(("127.0.0.1", port), b"\x00stream %d" % i + os.urandom(1000))
        assert r["ok"], "stream %d: %s\n%s" % (i, r["error"], w.diagnostics())

    t0 = time.monotonic()
    for i in range(6):
        garbage(i)
    assert live.accepted == 6
    st = member_stats(w)
    if time.monotonic() - t0 < 0.9:
        assert st[("plain/fallback1", dead)] == {"connects": 0, "failures": 1, "down": 1}, st
    assert st[("plain/fallback1", live.spec)]["connects"] == 6, st

    revived = upstreams(port=dead_port)
    time.sleep(1.2)
    for i in range(4):
        garbage(i)
    assert (revived.accepted, live.accepted) == (2, 8)
    st = w.stats()["plain"]
    assert st["upstream"] == 0 and st["fallbacks"] == 10, st
    status, body = fetch_metrics(sport)
    m = parse_metrics(body)
    assert m[("wharf_fallbacks_total", (("listener", "plain"),))] == 10, body
    labels = (("group", "plain/fallback1"), ("upstream", dead))
    assert m[("wharf_upstream_connect_failures_total", labels)] == 1, body


@pytest.mark.deadline(30)
def test_handoff_target_answers_or_falls_back_itself(wharf, upstreams):
    """A hand-off target reads the request again as its own client: with no
    fallbacks it answers as the same listener on its own port would; with
    some it sends the refused request on, every byte."""
    a, b, dflt, b_fb = upstreams(), upstreams(), upstreams(), upstreams()
    port, twin = free_port(), free_port()
    ls = front_layout(port, a.spec, b.spec, None, dflt.spec)[:2]
    ls.append(dict(ls[1], tag="twin", listen="127.0.0.1", port=twin))
    w = wharf({"listeners": ls})
    # (each asks the connection to close: a kept one waits for the deadline)
    reqs = [b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            b"GET /b HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"]
    for req in reqs:
        answers = [ask(("127.0.0.1", p), req, timeout=8) for p in (port, twin)]
        assert answers[0] == answers[1] and answers[0][0][:10] in (b"HTTP/1.1 4", b"HTTP/1.0 4"), \
            "%r: through the front %r, its twin %r" % (req, answers[0], answers[1])
    assert dflt.accepted == 0 and b.accepted == 0

    # the same target with a fallback of its own
    ls[1]["fallbacks"] = [{"dest": b_fb.spec}]
    reload(w, {"listeners": ls})
    r = echo_roundtrip(("127.0.0.1", port), reqs[0] + os.urandom(200000))
    assert r["ok"], r["error"]
    assert b_fb.accepted == 1 and dflt.accepted == 0


@pytest.mark.deadline(30)
@pytest.mark.parametrize("xver", [1, 2])
def test_fallback_names_the_client_of_a_proxy_header(xver, wharf, upstreams):
    """A front behind a balancer (acceptProxyProtocol): the fallback's PROXY
    header names the balancer's client and the address wharf was reached at."""
    a, rec = upstreams(), upstreams(proxy=True)
    port = free_port()
    wharf({"listeners": [{
        "tag": "front", "listen": "127.0.0.1", "port": port, "upstream": a.spec,
        "streamSettings": {"network": "ws", "wsSettings": {"path": "/a",
                                                           "acceptProxyProtocol": True}},
        "fallbacks": [{"dest": rec.spec, "xver": xver}]}]})
    r = echo_roundtrip(("127.0.0.1", port),
                       b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(5000),
                       prefix=b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n")
    assert r["ok"], r["error"]
    (h,) = headers(rec)
    assert h == {"version": xver, "local": False, "family": 4, "src": ("203.0.113.7", 56324),
                 "dst": ("127.0.0.1", port)}, h


@pytest.mark.deadline(40)
def test_stalled_handoffs_are_closed(wharf, upstreams, tmp_path):
    """A client that says nothing after an ALPN hand-off, or stops inside the
    request a path hand-off replays, is closed by the handshake deadline as
    on the target's own port, not kept forever."""
    pki = make_pki(tmp_path)
    a, b, h2, dflt = upstreams(), upstreams(), upstreams(), upstreams()
    port = free_port()
    w = wharf({"policy": {"handshake": 3},
               "listeners": front_layout(port, a.spec, b.spec, h2.spec, dflt.spec, pki=pki)})
    clients = [TLSClient(("127.0.0.1", port), alpn=["h2"]),
               TLSClient(("127.0.0.1", port), alpn=["http/1.1"])]
    clients[1].send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"[:-2])  # not quite a whole head
    try:
        t0 = time.monotonic()
        for c in clients:
            assert c.wait_closed(timeout=15), "still open after %.1f s" % (time.monotonic() - t0)
        took = time.monotonic() - t0
        assert took < 10, took
    finally:
        for c in clients:
            c.close()
    assert w.wait_stat("front", "active", lambda v: v == 0) == 0, w.stats()


# --------------------------------------------------------------------------
# the other transports that refuse: tcp "http" header, http's HTTP/1.1

@pytest.mark.deadline(30)
def test_tcp_http_header_refusals(wharf, upstreams):
    """A request the header does not match goes to the fallback with every
    byte (a path entry first); one that matches still gets the fake
    response and the relay."""
    main = upstreams(mode="echo", prefix=b"relayed\n")
    other, dflt = upstreams(), upstreams(proxy=True)
    port = free_port()
    w = wharf({"listeners": [{
        "tag": "hdr", "listen": "127.0.0.1", "port": port, "upstream": main.spec,
        "streamSettings": {"network": "tcp", "tcpSettings": {
            "header": {"type": "http", "request": {"path": ["/video"]}}}},
        "fallbacks": [{"path": "~^/other(/|$)", "dest": other.spec},
                      {"dest": dflt.spec, "xver": 1}]}]})

    addr = ("127.0.0.1", port)
    r = echo_roundtrip(addr, b"GET /other/x HTTP/1.1\r\nHost: a\r\n\r\n" + os.urandom(300000))
    assert r["ok"], r["error"]
    assert other.accepted == 1
    r = echo_roundtrip(addr, b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n" + os.urandom(300000))
    assert r["ok"], r["error"]
    client = r["client"]
    r = echo_roundtrip(addr, b"\x00 not http" + os.urandom(1000))
    assert r["ok"], r["error"]
    hs = headers(dflt, 2)
    assert hs[0]["src"] == client, hs

    s = connect(("127.0.0.1", port))
    try:
        s.sendall(b"GET /video HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while b"relayed\n" not in data:
            more = s.recv(65536)
            assert more, data
            data += more
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    finally:
        s.close()
    assert main.accepted == 1 and other.accepted == 1 and dflt.accepted == 2
    st = w.stats()["hdr"]
    assert st["bad_input"] == 0 and st["fallbacks"] == 3, st


@pytest.mark.deadline(30)
@pytest.mark.parametrize("tls", [True, False])
def test_http_transport_http11_refusals(tls, wharf, upstreams, tmp_path):
    """An HTTP/1.1 request V2Ray's http transport would answer 404 goes to
    the fallback with every byte; its own path still gets the HTTP/1.1
    service; without TLS, bytes that are neither HTTP/2 nor HTTP/1.1 too."""
    main, dflt = upstreams(mode="echo", prefix=b"relayed\n"), upstreams(proxy=True)
    port = free_port()
    ss = {"network": "http", "security": "none",
          "httpSettings": {"host": ["localhost"], "path": "/h2"}}
    if tls:
        pki = make_pki(tmp_path)
        ss.update(security="tls", tlsSettings=tls_settings(pki))
    wharf({"listeners": [{"tag": "h2", "listen": "127.0.0.1", "port": port,
                          "upstream": main.spec, "streamSettings": ss,
                          "fallbacks": [{"dest": dflt.spec, "xver": 2}]}]})

    def exchange(data):
        if tls:
            c = TLSClient(("127.0.0.1", port), alpn=["http/1.1"])
            try:
                return c.echo(data, timeout=20), c.sock.getsockname()
            finally:
                c.close()
        r = echo_roundtrip(("127.0.0.1", port), data)
        return r["received"], r["client"]

    req = b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n" + os.urandom(200000)
    got, client = exchange(req)
    assert got == req, "%d of %d bytes" % (len(got), len(req))
    (h,) = headers(dflt)
    assert h["src"] == client and h["dst"] == ("127.0.0.1", port), h
    if not tls:
        junk = b"\x00\x01 neither" + os.urandom(1000)
        assert exchange(junk)[0] == junk
    s = TLSClient(("127.0.0.1", port), alpn=["http/1.1"]) if tls else connect(("127.0.0.1", port))
    try:
        head = b"POST /h2 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
        (s.send if tls else s.sendall)(head)
        data = b""
        deadline = time.monotonic() + 5
        while b"hello" not in data and time.monotonic() < deadline:
            data += s.recv_some(timeout=1) if tls else s.recv(65536)
        # the service's own answer: a chunked body of the upstream's bytes
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"relayed\n" in data, data
        assert b"hello" in data, data
    finally:
        s.close()
    assert main.accepted == 1


# --------------------------------------------------------------------------
# reload under load

def ws_echo_raw(addr, path, data, chunk=65536, delay=0.03, timeout=40):
    """A raw websocket client: the upgrade, then data in masked binary
    frames (paced) while the echo is read; returns an error or None."""
    try:
        s, _, frames = ws_open(addr, path=path)
    except (AssertionError, OSError) as e:
        return "upgrade: %s" % e
    err = []

    def writer():
        try:
            for i in range(0, len(data), chunk):
                s.sendall(frame(2, data[i:i + chunk]))
                time.sleep(delay)
        except OSError as e:
            err.append("send: %s" % e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        got = frames.data(len(data), timeout=timeout)
    except (AssertionError, TimeoutError, OSError) as e:
        return "after %s: %s" % (err, e)
    finally:
        t.join(5)
        s.close()
    if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
        return "the echo differs"
    return err[0] if err else None


@pytest.mark.deadline(90)
def test_reload_changes_fallbacks_under_load(wharf, upstreams):
    """Streams through the fallback and through the transport go on across
    a reload that changes the fallbacks; new connections see the new ones."""
    a, old_fb, new_fb, new_path = upstreams(), upstreams(), upstreams(), upstreams()
    port = free_port()

    def conf(fallbacks):
        return {"worker_processes": 2, "shutdown_timeout": 60, "listeners": [{
            "tag": "front", "listen": "127.0.0.1", "port": port, "upstream": a.spec,
            "streamSettings": {"network": "ws", "wsSettings": {"path": "/a"}},
            "fallbacks": fallbacks}]}

    w = wharf(conf([{"dest": old_fb.spec}]))
    addr = ("127.0.0.1", port)
    n = 8
    results = {}

    def via_fallback(i):
        s = connect(addr, timeout=10)
        try:
            data = b"\x00" + os.urandom(3 * MiB)
            results["fb%d" % i] = echo_stream(s, data, chunk=65536, delay=0.04,
                                              timeout=60)["error"]
        finally:
            s.close()

    def via_ws(i):
        results["ws%d" % i] = ws_echo_raw(addr, "/a", os.urandom(3 * MiB), delay=0.04)

    threads = [threading.Thread(target=f, args=(i,), daemon=True)
               for i in range(n) for f in (via_fallback, via_ws)]
    for t in threads:
        t.start()
    assert wait_for(lambda: old_fb.accepted == n and a.accepted == n, 10), \
        (old_fb.accepted, a.accepted)
    old, new = reload(w, conf([{"path": "/new", "dest": new_path.spec},
                               {"dest": new_fb.spec}]))
    assert sum(t.is_alive() for t in threads) >= n, "the reload did not overlap the streams"

    # new connections: the new fallbacks
    r = echo_roundtrip(addr, b"GET /new HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r["ok"] and new_path.accepted == 1, r["error"]
    r = echo_roundtrip(addr, b"\x00after the reload")
    assert r["ok"] and new_fb.accepted == 1, r["error"]

    for t in threads:
        t.join(70)
    broken = {k: v for k, v in results.items() if v is not None}
    assert len(results) == 2 * n and not broken, "broken across the reload: %r\n%s" % (
        broken, w.diagnostics())
    assert old_fb.accepted == n and a.accepted == n
    assert wait_for(lambda: not any(pid_alive(p) for p in old), 15), "old workers still run"


# --------------------------------------------------------------------------
# configuration errors

CONF = """\
daemon = false;
user = "nobody";
pid = "logs/wharf.pid";
error_log = "logs/error.log";
listeners = (
  { tag = "front"; listen = "127.0.0.1"; port = 18443; upstream = "127.0.0.1:9";
    streamSettings = { network = "ws"; wsSettings = { path = "/a"; }; %(front_ss)s};
    fallbacks = (
%(entries)s
    );
  },
  { tag = "ws-b"; upstream = "127.0.0.1:9";
    streamSettings = { network = "ws"; wsSettings = { path = "/b"; }; }; }%(more)s
);
"""

FRONT_TLS = ('security = "tls"; tlsSettings = { certificates = ( { certificateFile = '
             '"%(cert)s"; keyFile = "%(key)s"; } ); }; ')
B = "  #BAD"


def conf_case(entries, more="", front_ss=""):
    return CONF % {"entries": "\n".join("      " + e for e in entries), "more": more,
                   "front_ss": front_ss}


CONF_CASES = {
    "missing_tag": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                               '{ path = "/c"; dest = "listener:ws-c"; }' + B]),
                    'no listener "ws-c" to hand off to'),
    "tls_target": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                              '{ path = "/t"; dest = "listener:tls-t"; }' + B], more=""",
  { tag = "tls-t"; upstream = "127.0.0.1:9";
    streamSettings = { network = "ws"; security = "tls"; wsSettings = { path = "/t"; };
      tlsSettings = { certificates = ( { certificateFile = "%(cert)s";
                                         keyFile = "%(key)s"; } ); }; }; }"""),
                   'listener "tls-t" has "security" "tls"'),
    # reported at the first listener of the loop
    "loop": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; }']).replace(
        'upstream = "127.0.0.1:9";\n', 'upstream = "127.0.0.1:9";' + B + '\n', 1).replace(
        '{ tag = "ws-b"; upstream = "127.0.0.1:9";',
        '{ tag = "ws-b"; upstream = "127.0.0.1:9";\n'
        '    fallbacks = ( { dest = "listener:front"; } );'),
             'the fallbacks of listener "front" hand off in a loop'),
    "bad_regex": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                             '{ path = "~^/api/(v[0-9]+/"; dest = "127.0.0.1:9000"; }' + B]),
                  'missing closing parenthesis at offset 15'),
    "bad_caseless_regex": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                                      '{ name = "~*[z-a]"; dest = "127.0.0.1:9000"; }' + B],
                                     front_ss=FRONT_TLS),
                           'range out of order in character class at offset 3'),
    "path_on_raw_tcp": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; }' + B]).replace(
        'network = "ws"; wsSettings = { path = "/a"; };', 'network = "tcp";', 1),
                        'this fallback is never tried: the tcp transport of listener "front"'),
    "name_without_tls": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                                    '{ name = "~*^static\\\\."; dest = "127.0.0.1:9000"; }' + B]),
                         'a fallback on "name" or "alpn" needs "security" "tls"'),
    "alpn_without_tls": (conf_case(['{ alpn = "h2"; dest = "listener:ws-b"; }' + B]),
                         'a fallback on "name" or "alpn" needs "security" "tls"'),
    "xver_on_handoff": (conf_case(['{ path = "/b"; dest = "listener:ws-b";',
                                   '  xver = 1; }' + B]),
                        '"xver" is for an upstream, not a hand-off to a listener'),
    "unnamed_handoff_listener": (conf_case(['{ dest = "127.0.0.1:9000"; }']).replace(
        '{ tag = "ws-b"; upstream = "127.0.0.1:9";', '{ tag = "ws-b"; upstream = "127.0.0.1:9";'
        + B), 'listener "ws-b" has no "listen", and no fallback hands off to it'),
    "proxy_target": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; }' + B]).replace(
        'wsSettings = { path = "/b"; }',
        'wsSettings = { path = "/b"; acceptProxyProtocol = true; }'),
                     'listener "ws-b" cannot take a hand-off (it expects a PROXY header)'),
    "no_dest": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                           '{ path = "/x"; }' + B]), 'fallback has no "dest"'),
    "echo_dest": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                             '{ dest = "echo"; }' + B]), 'a fallback\'s "dest" cannot be "echo"'),
    "unknown_field": (conf_case(['{ path = "/b"; dest = "listener:ws-b"; },',
                                 '{ dest = "127.0.0.1:9000"; host = "x"; }' + B]), '"host"'),
    "not_a_list": (conf_case([]).replace('    fallbacks = (\n\n    );',
                                         '    fallbacks = { dest = "127.0.0.1:9000"; };' + B),
                   '"fallbacks" must be a list'),
}


@pytest.fixture(scope="module")
def conf_pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("fbconf"))


def wharf_t(tmp_path, text):
    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = tmp_path / "wharf.conf"
    conf.write_text(text)
    r = subprocess.run([str(WHARF), "-t", "-p", str(tmp_path), "-c", str(conf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    return conf, r


@pytest.mark.parametrize("name", sorted(CONF_CASES))
def test_config_errors(name, tmp_path, conf_pki):
    text, what = CONF_CASES[name]
    text = text.replace("%(cert)s", str(conf_pki / "cert.pem")).replace(
        "%(key)s", str(conf_pki / "key.pem"))
    lines = [i + 1 for i, l in enumerate(text.split("\n")) if "#BAD" in l]
    assert len(lines) == 1, text
    conf, r = wharf_t(tmp_path, text)
    shown = "%s\n--- wharf -t ---\n%s" % (
        "\n".join("%3d %s" % (i + 1, l) for i, l in enumerate(text.split("\n"))), r.stdout)
    assert r.returncode == 1, shown
    assert what in r.stdout, shown
    assert re.search(r" in %s:%d\b" % (re.escape(str(conf)), lines[0]), r.stdout), shown


def test_front_door_example_is_accepted(tmp_path, conf_pki):
    """conf/examples/front-door.conf, with this test's certificate and
    paths, passes `wharf -t`."""
    text = (REPO / "conf" / "examples" / "front-door.conf").read_text()
    for old, new in (("/etc/wharf/cert.pem", conf_pki / "cert.pem"),
                     ("/etc/wharf/key.pem", conf_pki / "key.pem"),
                     ("/run/wharf.pid", tmp_path / "wharf.pid"),
                     ("/var/log/wharf/error.log", tmp_path / "error.log")):
        assert old in text, old
        text = text.replace(old, str(new))
    conf, r = wharf_t(tmp_path, text)
    assert r.returncode == 0, r.stdout


def test_issue_layout_is_accepted(tmp_path, conf_pki):
    """The layout of wharf.conf(5)'s example, tested as written."""
    text = conf_case(['{ alpn = "h2"; dest = "listener:h2-in"; },',
                      '{ name = "~*^static\\\\."; dest = "127.0.0.1:8081"; },',
                      '{ path = "/b"; dest = "listener:ws-b"; },',
                      '{ path = "~^/api/v[0-9]+/"; dest = "127.0.0.1:9000"; xver = 1; },',
                      '{ dest = [ "127.0.0.1:8080", "127.0.0.1:8082" ]; xver = 2; }'],
                     front_ss=FRONT_TLS, more=""",
  { tag = "h2-in"; upstream = "127.0.0.1:10002";
    streamSettings = { network = "http"; httpSettings = { path = "/h2"; }; }; }""")
    text = text.replace("%(cert)s", str(conf_pki / "cert.pem")).replace(
        "%(key)s", str(conf_pki / "key.pem"))
    conf, r = wharf_t(tmp_path, text)
    assert r.returncode == 0, r.stdout
