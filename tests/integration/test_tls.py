"""The TLS layer (spec 2, wharf.conf(5) tlsSettings) with OpenSSL clients:
`openssl s_client` and Python's ssl module (memory BIOs over a plain socket,
so one thread drives both directions).

ALPN selection (Go's rule), certificate choice by SNI (exact name, "issue"
CA, wildcard, first), TLS versions, session tickets, inline PEM, root-only
key files, configuration errors, certificate renewal by reload, and
handshakes that fail (garbage, stalled, and 500 of them beside a good
transfer). The V2Ray client cases are in test_interop.py.
"""
import calendar
import hashlib
import os
import random
import re
import select
import ssl
import subprocess
import threading
import time

import pytest

from conftest import connect, free_port, nobody_uid, proc_uids, recv_until_eof, wait_for

MiB = 1 << 20


# --------------------------------------------------------------------------
# certificates (openssl CLI)

def make_cert(dirpath, stem, cn, sans=None, days=1):
    """A self-signed P-256 certificate (a CA by openssl's default v3_ca
    extensions) and its key: DIR/STEM.pem and DIR/STEM.key.
    Returns (cert_path, key_path)."""
    dirpath.mkdir(parents=True, exist_ok=True)
    crt, key = dirpath / (stem + ".pem"), dirpath / (stem + ".key")
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-days", str(days),
            "-subj", "/CN=" + cn, "-keyout", str(key), "-out", str(crt)]
    if sans:
        argv += ["-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans)]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout
    return crt, key


def pem_der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def cert_info(der):
    """subject CN, issuer CN, DNS SANs, validity (epoch) and key type of a DER cert."""
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text",
                        "-nameopt", "RFC2253"], input=der, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    assert r.returncode == 0, r.stdout
    text = r.stdout.decode(errors="replace")

    def date(label):
        m = re.search(label + r"\s*:\s*(\w{3}\s+\d+ \d\d:\d\d:\d\d \d{4}) GMT", text)
        assert m, text
        return calendar.timegm(time.strptime(re.sub(r"\s+", " ", m.group(1)),
                                             "%b %d %H:%M:%S %Y"))

    subj = re.search(r"Subject: (.*)", text).group(1)
    issuer = re.search(r"Issuer: (.*)", text).group(1)
    san = re.search(r"Subject Alternative Name:.*\n\s*(.*)", text)
    return {
        "cn": (re.search(r"CN=([^,]*)", subj) or [None, None])[1],
        "issuer_cn": (re.search(r"CN=([^,]*)", issuer) or [None, None])[1],
        "sans": re.findall(r"DNS:([^,\s]+)", san.group(1)) if san else [],
        "not_before": date("Not Before"),
        "not_after": date("Not After"),
        "text": text,
    }


def pem_lines(path):
    return [l for l in path.read_text().splitlines() if l]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Certificates shared by the module's tests (read-only)."""
    d = tmp_path_factory.mktemp("pki")
    p = {}
    # b first: "the first certificate" is the fallback; its name is a SAN only
    p["b"] = make_cert(d, "b", "B fallback cert", sans=["b.example", "b2.example"])
    p["a"] = make_cert(d, "a", "a.example")                         # CN only
    p["w"] = make_cert(d, "w", "*.w.example", sans=["*.w.example"])
    p["ca"] = make_cert(d, "ca", "wharf test CA")
    p["other"] = make_cert(d, "other", "other.example")
    p["dir"] = d
    return p


def cert_entry(pair, usage=None):
    e = {"certificateFile": str(pair[0]), "keyFile": str(pair[1])}
    if usage:
        e["usage"] = usage
    return e


def tls_listener(tag, upstream, port, certs, network="tcp", **tls):
    ts = {"certificates": certs}
    ts.update(tls)
    return {"tag": tag, "listen": "127.0.0.1", "port": port, "upstream": upstream,
            "streamSettings": {"network": network, "security": "tls", "tlsSettings": ts}}


def start_tls(wharf, certs, upstream="echo", conf=None, **tls):
    port = free_port()
    c = {"listeners": [tls_listener("tls", upstream, port, certs, **tls)]}
    c.update(conf or {})
    w = wharf(c)
    return w, ("127.0.0.1", port)


# --------------------------------------------------------------------------
# clients

def s_client(addr, *args, sni=None, timeout=10):
    """Runs `openssl s_client` with stdin at EOF; returns (exit status, output)."""
    argv = ["openssl", "s_client", "-connect", "%s:%d" % addr]
    argv += ["-servername", sni] if sni else ["-noservername"]
    argv += list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


def s_handshake_ok(rc, out):
    m = re.search(r"Cipher is (\S+)", out)
    return rc == 0 and m is not None and m.group(1) != "(NONE)"


def s_alpn(out):
    m = re.search(r"^ALPN protocol: (.*)$", out, re.M)
    if m:
        return m.group(1).strip()
    assert "No ALPN negotiated" in out, out
    return None


def s_cert_der(out):
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert m, "no server certificate in s_client output:\n" + out
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def client_context(alpn=None, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class TLSClient:
    """A TLS client over a plain socket (TCP or unix) with memory BIOs.

    Single-threaded: one select loop writes and reads, so a large echo
    never deadlocks and no SSL object is shared between threads.
    """

    def __init__(self, addr, sni=None, alpn=None, version=None, ctx=None, timeout=10):
        if ctx is None:
            ctx = client_context(alpn=alpn, version=version)
        self.sock = connect(addr, timeout=timeout)
        self.sock.setblocking(False)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=False, server_hostname=sni)
        self.wbuf = bytearray()
        self.eof = False
        try:
            self._handshake(time.monotonic() + timeout)
        except BaseException:
            self.sock.close()
            raise

    # low level -----------------------------------------------------------
    def _pull_out(self):
        d = self.out.read()
        if d:
            self.wbuf += d

    def _io(self, want_read, timeout):
        """One select round: send what is buffered, feed what arrives."""
        self._pull_out()
        r, w, _ = select.select([self.sock] if want_read else [],
                                [self.sock] if self.wbuf else [], [], timeout)
        if w:
            try:
                n = self.sock.send(self.wbuf)
                del self.wbuf[:n]
            except (BlockingIOError, InterruptedError):
                pass
        if r:
            try:
                d = self.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                return
            except (ConnectionResetError, ConnectionAbortedError):
                d = b""
            if d:
                self.inc.write(d)
            else:
                self.eof = True
                self.inc.write_eof()

    def _flush(self, deadline):
        self._pull_out()
        while self.wbuf:
            if time.monotonic() > deadline:
                raise TimeoutError("could not send %d bytes" % len(self.wbuf))
            self._io(False, 0.5)

    def _handshake(self, deadline):
        while True:
            try:
                self.obj.do_handshake()
                self._flush(deadline)
                return
            except ssl.SSLWantReadError:
                if self.eof:
                    raise ssl.SSLEOFError("EOF during the handshake")
                if time.monotonic() > deadline:
                    raise TimeoutError("TLS handshake timed out")
                self._io(True, 0.5)

    def _read_plain(self, into, limit=1 << 20):
        """Drain decrypted bytes; returns False at close_notify."""
        while True:
            try:
                d = self.obj.read(limit)
            except ssl.SSLWantReadError:
                return True
            except ssl.SSLZeroReturnError:
                return False
            if not d:
                return False
            into += d

    # high level ----------------------------------------------------------
    def echo(self, data, timeout=30, chunk=16384, delay=0.0):
        """Send data while reading its echo; returns the bytes read back
        (may be short on EOF or timeout; the caller compares)."""
        view = memoryview(data)
        sent = 0
        got = bytearray()
        deadline = time.monotonic() + timeout
        next_write = 0.0
        while len(got) < len(data) and time.monotonic() < deadline:
            now = time.monotonic()
            while sent < len(data) and len(self.wbuf) < 262144 and now >= next_write:
                n = self.obj.write(view[sent:sent + chunk])
                sent += n
                self._pull_out()
                if delay:
                    next_write = now + delay
                    break
            wait = 0.2
            if delay and sent < len(data):
                wait = max(0.0, min(wait, next_write - time.monotonic()))
            self._io(True, wait)
            alive = self._read_plain(got)
            if (not alive or self.eof) and len(got) < len(data):
                break           # the server ended the stream early
        return bytes(got)

    def send(self, data, timeout=10):
        self.obj.write(data)
        self._flush(time.monotonic() + timeout)

    def recv_some(self, timeout=10):
        got = bytearray()
        deadline = time.monotonic() + timeout
        while not got and not self.eof and time.monotonic() < deadline:
            self._io(True, 0.2)
            if not self._read_plain(got):
                break
        return bytes(got)

    def wait_closed(self, timeout=10):
        """True when the server ended the stream (close_notify or EOF)."""
        deadline = time.monotonic() + timeout
        sink = bytearray()
        while time.monotonic() < deadline:
            if not self._read_plain(sink) or self.eof:
                return True
            self._io(True, 0.2)
        return False

    def peer_der(self):
        return self.obj.getpeercert(binary_form=True)

    def alpn(self):
        return self.obj.selected_alpn_protocol()

    def version(self):
        return self.obj.version()

    def has_ticket(self):
        s = self.obj.session
        return bool(s is not None and s.has_ticket)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_hello(sni="stall.example"):
    """The bytes of a real ClientHello (Python's defaults: TLS 1.2-1.3)."""
    ctx = client_context(alpn=["h2", "http/1.1"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:16]
    return hello


def garbage(seed, n=2048):
    """n random bytes that no TLS server can take for the start of a
    handshake: the first two are printable ASCII (no SSLv2-style record
    header, no 0x16 0x03 record), the rest is random."""
    rng = random.Random(seed)
    b = bytearray(rng.getrandbits(8) for _ in range(n))
    b[0] = rng.randrange(0x20, 0x7f)
    b[1] = rng.randrange(0x20, 0x7f)
    return bytes(b)


def stats_of(w, tag="tls"):
    return w.stats()[tag]


# --------------------------------------------------------------------------
# ALPN

@pytest.mark.deadline(60)
def test_alpn_default_tcp(wharf, pki):
    w, addr = start_tls(wharf, [cert_entry(pki["a"])])
    # the client offers h2 and http/1.1: the server's only protocol, h2
    rc, out = s_client(addr, "-alpn", "h2,http/1.1", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) == "h2"
    rc, out = s_client(addr, "-alpn", "http/1.1,h2", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) == "h2"
    # http/1.1 only: no overlap with the server's h2, nothing negotiated, OK
    rc, out = s_client(addr, "-alpn", "http/1.1", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) is None, out
    # no ALPN extension at all
    rc, out = s_client(addr, sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) is None, out
    # "foo" only: handshake fails with no_application_protocol
    rc, out = s_client(addr, "-alpn", "foo", sni="a.example")
    assert not s_handshake_ok(rc, out), out
    assert "no application protocol" in out, out
    # the same with Python's ssl
    with pytest.raises(ssl.SSLError) as ei:
        TLSClient(addr, sni="a.example", alpn=["foo"]).close()
    assert "NO_APPLICATION_PROTOCOL" in str(ei.value).upper().replace(" ", "_"), ei.value
    c = TLSClient(addr, sni="a.example", alpn=["h2", "http/1.1"])
    assert c.alpn() == "h2"
    assert c.echo(b"after ALPN h2") == b"after ALPN h2"
    c.close()
    assert w.alive()


@pytest.mark.deadline(60)
def test_alpn_configured_list_replaces_default(wharf, pki):
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], alpn=["foo", "http/1.1"])
    # server preference order: foo before http/1.1
    rc, out = s_client(addr, "-alpn", "http/1.1,foo,h2", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) == "foo"
    rc, out = s_client(addr, "-alpn", "h2,http/1.1", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) == "http/1.1"
    # h2 is no longer the server's: a client offering h2 only gets no overlap,
    # and the fallback rule needs the client's http/1.1 and the server's h2
    rc, out = s_client(addr, "-alpn", "h2", sni="a.example")
    assert not s_handshake_ok(rc, out), out
    assert "no application protocol" in out, out
    assert w.alive()

    # a configured list with h2 in it: the http/1.1 fallback applies again
    w2, addr2 = start_tls(wharf, [cert_entry(pki["a"])], alpn=["foo", "h2"])
    rc, out = s_client(addr2, "-alpn", "http/1.1", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert s_alpn(out) is None, out
    rc, out = s_client(addr2, "-alpn", "bar,baz", sni="a.example")
    assert not s_handshake_ok(rc, out), out
    assert "no application protocol" in out, out
    assert w2.alive()


# --------------------------------------------------------------------------
# certificate choice

@pytest.mark.deadline(60)
def test_certificate_by_sni(wharf, pki):
    w, addr = start_tls(wharf, [cert_entry(pki["b"]), cert_entry(pki["a"]),
                                cert_entry(pki["w"])])
    a, b, wc = pem_der(pki["a"][0]), pem_der(pki["b"][0]), pem_der(pki["w"][0])

    def served(sni):
        c = TLSClient(addr, sni=sni)
        try:
            return c.peer_der()
        finally:
            c.close()

    cases = [
        ("a.example", a, "exact match of the CN"),
        ("b.example", b, "exact match of a DNS SAN"),
        ("b2.example", b, "exact match of the second DNS SAN"),
        ("x.w.example", wc, "wildcard *.w.example"),
        ("deep.x.w.example", b, "a wildcard covers one label only: first certificate"),
        ("w.example", b, "w.example is not under *.w.example: first certificate"),
        ("unknown.example", b, "unknown name: first certificate"),
        (None, b, "no SNI: first certificate"),
    ]
    bad = []
    for sni, want, why in cases:
        got = served(sni)
        if got != want:
            bad.append("SNI %r (%s): got CN %s" % (sni, why, cert_info(got)["cn"]))
    # an upper-case SNI (s_client sends it as given; Python would lower-case it)
    for sni, want in (("A.EXAMPLE", a), ("X.W.Example", wc), ("B2.Example", b)):
        rc, out = s_client(addr, sni=sni)
        assert s_handshake_ok(rc, out), out
        if s_cert_der(out) != want:
            bad.append("SNI %r (upper case): got CN %s" % (sni, cert_info(s_cert_der(out))["cn"]))
    assert not bad, "\n".join(bad)
    assert w.alive()


@pytest.mark.deadline(60)
def test_issue_ca_mints_leaf(wharf, pki, tmp_path):
    ca_crt, _ = pki["ca"]
    w, addr = start_tls(wharf, [cert_entry(pki["a"]), cert_entry(pki["w"]),
                                cert_entry(pki["ca"], usage="issue")])
    # a name with a configured certificate keeps it
    c = TLSClient(addr, sni="a.example")
    assert c.peer_der() == pem_der(pki["a"][0])
    c.close()

    # an unknown name: a leaf for it, signed by the CA, verifiable against it
    vctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    vctx.load_verify_locations(cafile=str(ca_crt))
    vctx.check_hostname = True
    t0 = time.time()
    c = TLSClient(addr, sni="minted.example", ctx=vctx)
    der = c.peer_der()
    assert c.echo(b"over a minted certificate") == b"over a minted certificate"
    c.close()
    info = cert_info(der)
    assert info["cn"] == "minted.example", info["text"]
    assert info["sans"] == ["minted.example"], info["text"]
    assert info["issuer_cn"] == "wharf test CA", info["text"]
    assert "id-ecPublicKey" in info["text"] and "prime256v1" in info["text"], info["text"]
    # valid from about an hour ago to about an hour ahead (~2 h)
    span = info["not_after"] - info["not_before"]
    assert 2 * 3600 - 120 <= span <= 2 * 3600 + 120, info["text"]
    assert info["not_before"] <= t0 - 3600 + 120 and info["not_after"] >= t0 + 3600 - 120, \
        (info["not_before"] - t0, info["not_after"] - t0)
    leaf = tmp_path / "minted.pem"
    leaf.write_text(ssl.DER_cert_to_PEM_cert(der))
    r = subprocess.run(["openssl", "verify", "-CAfile", str(ca_crt), str(leaf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    assert r.returncode == 0, r.stdout

    # the minted certificate comes before the wildcard (spec 2.4 order)
    c = TLSClient(addr, sni="y.w.example")
    info = cert_info(c.peer_der())
    c.close()
    assert info["cn"] == "y.w.example" and info["issuer_cn"] == "wharf test CA", info["text"]

    # an upper-case SNI gets a leaf for the lower-cased name
    rc, out = s_client(addr, sni="UPPER.Example")
    assert s_handshake_ok(rc, out), out
    info = cert_info(s_cert_der(out))
    assert info["cn"] == "upper.example" and info["sans"] == ["upper.example"], info["text"]
    assert w.alive()


# --------------------------------------------------------------------------
# versions, tickets

@pytest.mark.deadline(60)
@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_versions_relay(wharf, upstream, pki, version):
    up = upstream("echo")
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], upstream=up.spec)
    rc, out = s_client(addr, "-tls1_2" if version == "TLSv1.2" else "-tls1_3", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert re.search(r"Protocol\s*: %s\b" % re.escape(version), out) \
        or ("New, %s," % version) in out, out

    data = os.urandom(MiB)
    c = TLSClient(addr, sni="a.example", alpn=["h2", "http/1.1"],
                  version=getattr(ssl.TLSVersion, version.replace("TLSv1.", "TLSv1_")))
    assert c.version() == version
    got = c.echo(data, timeout=30)
    c.close()
    assert len(got) == len(data) and hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), \
        "echo over %s: %d of %d bytes, equal prefix: %s" % (version, len(got), len(data),
                                                          data[:len(got)] == got)
    w.wait_stat("tls", "active", lambda v: v == 0, timeout=5)
    st = stats_of(w)
    assert st["bytes_up"] >= len(data) and st["bytes_down"] >= len(data), st
    assert st["bad_input"] == 0, st


@pytest.mark.deadline(60)
def test_tls11_and_tls10_refused(wharf, pki):
    w, addr = start_tls(wharf, [cert_entry(pki["a"])])
    for flag in ("-tls1_1", "-tls1"):
        # SECLEVEL=0 lets OpenSSL 3's client offer the old version at all
        rc, out = s_client(addr, flag, "-cipher", "DEFAULT:@SECLEVEL=0", sni="a.example")
        assert not s_handshake_ok(rc, out), out
        assert "written 0 bytes" not in out, "the client sent nothing:\n" + out
        assert "protocol version" in out or "unsupported protocol" in out, out
    # a TLS 1.2 handshake still works
    rc, out = s_client(addr, "-tls1_2", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert w.alive()


@pytest.mark.deadline(60)
@pytest.mark.parametrize("resumption", [False, True], ids=["default", "resumption"])
def test_session_tickets(wharf, pki, resumption):
    tls = {"enableSessionResumption": True} if resumption else {}
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], **tls)
    rc, out = s_client(addr, "-tls1_2", sni="a.example")
    assert s_handshake_ok(rc, out), out
    assert ("TLS session ticket" in out) == resumption, out
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = TLSClient(addr, sni="a.example", version=v)
        # TLS 1.3 tickets arrive after the handshake: a round trip reads them
        assert c.echo(b"x" * 1000) == b"x" * 1000
        got = c.has_ticket()
        c.close()
        assert got == resumption, "%s: session ticket received: %s" % (v.name, got)
    assert w.alive()


# --------------------------------------------------------------------------
# certificate sources

@pytest.mark.deadline(60)
def test_inline_certificate_and_key(wharf, pki):
    entry = {"certificate": pem_lines(pki["a"][0]), "key": pem_lines(pki["a"][1])}
    w, addr = start_tls(wharf, [cert_entry(pki["b"]), entry])
    c = TLSClient(addr, sni="a.example")
    assert c.peer_der() == pem_der(pki["a"][0])
    assert c.echo(b"inline") == b"inline"
    c.close()
    # and inline as the only (first) certificate
    w2, addr2 = start_tls(wharf, [entry])
    c = TLSClient(addr2)
    assert c.peer_der() == pem_der(pki["a"][0])
    c.close()


@pytest.mark.deadline(60)
def test_root_only_key_file(wharf, upstream, tmp_path):
    d = tmp_path / "private"
    crt, key = make_cert(d, "root-only", "root.example")
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    os.chmod(d, 0o700)
    up = upstream("echo")
    w, addr = start_tls(wharf, [{"certificateFile": str(crt), "keyFile": str(key)}],
                        upstream=up.spec, conf={"worker_processes": 2})
    workers = w.workers()
    assert len(workers) == 2
    # a worker drops root first thing after fork(); a slow one (ASan) may not yet have
    wait_for(lambda: all(proc_uids(p)[1] != 0 for p in workers), 5)
    for pid in workers:
        assert proc_uids(pid)[1] == nobody_uid(), "worker %d does not run as nobody" % pid
    for i in range(6):
        c = TLSClient(addr, sni="root.example")
        assert c.peer_der() == pem_der(crt)
        assert c.echo(b"root-only %d" % i) == b"root-only %d" % i
        c.close()
    # a reload reads the key again (as root)
    w.reload()
    c = TLSClient(addr, sni="root.example")
    assert c.echo(b"after reload") == b"after reload"
    c.close()
    assert "Permission denied" not in w.log(), w.log()


# --------------------------------------------------------------------------
# configuration errors (wharf -t)

def conf_test(wharf, certs, tls_settings=True, **tls):
    ls = tls_listener("tls", "echo", free_port(), certs, **tls)
    if not tls_settings:
        del ls["streamSettings"]["tlsSettings"]
    w = wharf({"listeners": [ls]}, start=False)
    r = w.run("-t")
    return w, r


def assert_conf_error(w, r):
    assert r.returncode == 1, "exit %d\n%s" % (r.returncode, r.stderr)
    assert "wharf: [emerg] " in r.stderr, r.stderr
    assert re.search(r" in %s:\d+" % re.escape(str(w.conf_path)), r.stderr), r.stderr
    assert "configuration file %s test failed" % w.conf_path in r.stderr, r.stderr


def conf_line(w, r):
    return int(re.search(r" in %s:(\d+)" % re.escape(str(w.conf_path)), r.stderr).group(1))


@pytest.mark.deadline(60)
def test_conf_key_does_not_match_certificate(wharf, pki):
    w, r = conf_test(wharf, [cert_entry(pki["b"]),
                             {"certificateFile": str(pki["a"][0]), "keyFile": str(pki["other"][1])}])
    assert_conf_error(w, r)
    assert str(pki["other"][1]) in r.stderr, "the error does not name the key file:\n" + r.stderr
    # the line is inside the certificates list, not the file's first line
    lines = w.conf_text.splitlines()
    first = next(i for i, l in enumerate(lines, 1) if "certificates" in l)
    last = next(i for i, l in enumerate(lines, 1) if str(pki["other"][1]) in l)
    assert first <= conf_line(w, r) <= last + 2, (conf_line(w, r), w.conf_text)
    # the good pair passes
    w2, r2 = conf_test(wharf, [cert_entry(pki["a"])])
    assert r2.returncode == 0, r2.stderr
    assert "test is successful" in r2.stderr, r2.stderr


@pytest.mark.deadline(60)
def test_conf_missing_files(wharf, pki, tmp_path):
    missing = tmp_path / "nowhere" / "cert.pem"
    w, r = conf_test(wharf, [{"certificateFile": str(missing), "keyFile": str(pki["a"][1])}])
    assert_conf_error(w, r)
    assert str(missing) in r.stderr, r.stderr
    missing_key = tmp_path / "nowhere" / "key.pem"
    w, r = conf_test(wharf, [{"certificateFile": str(pki["a"][0]), "keyFile": str(missing_key)}])
    assert_conf_error(w, r)
    assert str(missing_key) in r.stderr, r.stderr


@pytest.mark.deadline(60)
def test_conf_tls_without_certificate(wharf, pki):
    # no tlsSettings at all
    w, r = conf_test(wharf, [], tls_settings=False)
    assert_conf_error(w, r)
    # tlsSettings without certificates
    ls = tls_listener("tls", "echo", free_port(), [], alpn=["h2"])
    del ls["streamSettings"]["tlsSettings"]["certificates"]
    w = wharf({"listeners": [ls]}, start=False)
    r = w.run("-t")
    assert_conf_error(w, r)
    # only a client's trust anchor ("verify") is no server certificate
    w, r = conf_test(wharf, [{"certificateFile": str(pki["a"][0]), "usage": "verify"}])
    assert_conf_error(w, r)


# --------------------------------------------------------------------------
# certificate renewal by reload

@pytest.mark.deadline(60)
def test_certificate_renewal_by_reload(wharf, upstream, tmp_path):
    live = tmp_path / "live"
    crt, key = make_cert(live, "site", "old.example", sans=["site.example"])
    old_der = pem_der(crt)
    up = upstream("echo")
    w, addr = start_tls(wharf, [{"certificateFile": str(crt), "keyFile": str(key)}],
                        upstream=up.spec, conf={"worker_processes": 2, "shutdown_timeout": 30})

    c = TLSClient(addr, sni="site.example")
    assert c.peer_der() == old_der
    first = os.urandom(256 * 1024)
    assert c.echo(first) == first

    # keep the stream transferring while the certificate is renewed
    data = os.urandom(4 * MiB)
    result = {}

    def transfer():
        try:
            result["got"] = c.echo(data, timeout=40, chunk=65536, delay=0.02)
        except BaseException as e:       # reported below
            result["error"] = repr(e)

    t = threading.Thread(target=transfer, daemon=True)
    t.start()
    time.sleep(0.3)

    new = make_cert(tmp_path / "new", "site", "new.example", sans=["site.example"])
    crt.write_bytes(new[0].read_bytes())
    key.write_bytes(new[1].read_bytes())
    new_der = pem_der(crt)
    assert new_der != old_der
    w.reload()
    assert t.is_alive(), "the transfer ended before the reload completed"
    t.join(45)
    assert not t.is_alive(), "transfer still running"
    assert "error" not in result, result.get("error")
    got = result["got"]
    assert len(got) == len(data) and got == data, \
        "old stream across the renewal: %d of %d bytes, equal prefix: %s" % (
            len(got), len(data), data[:len(got)] == got)
    # and it still works after the reload
    last = os.urandom(64 * 1024)
    assert c.echo(last) == last
    assert c.peer_der() == old_der
    c.close()

    for _ in range(4):      # new connections, whichever new worker takes them
        n = TLSClient(addr, sni="site.example")
        der = n.peer_der()
        assert n.echo(b"renewed") == b"renewed"
        n.close()
        assert der == new_der, "a new connection got CN %s" % cert_info(der)["cn"]


# --------------------------------------------------------------------------
# failed handshakes

@pytest.mark.deadline(60)
def test_garbage_instead_of_client_hello(wharf, pki):
    w, addr = start_tls(wharf, [cert_entry(pki["a"])])
    base = stats_of(w)
    s = connect(addr)
    s.sendall(garbage(1))
    t0 = time.monotonic()
    data, how = recv_until_eof(s, timeout=10)
    took = time.monotonic() - t0
    s.close()
    assert how in ("eof", "reset"), "still open after %.1f s (%s)" % (took, how)
    assert took < 5, took
    # at most a TLS alert came back, never a ServerHello
    assert not data or data[:1] == b"\x15", data[:32]
    v = w.wait_stat("tls", "bad_input", lambda v: v >= base["bad_input"] + 1, timeout=5)
    assert v == base["bad_input"] + 1, stats_of(w)
    st = stats_of(w)
    assert st["timeout"] == base["timeout"] and st["active"] == 0, st
    assert w.alive()


@pytest.mark.deadline(60)
def test_stalled_client_hello_times_out(wharf, pki):
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], conf={"policy": {"handshake": 2}})
    base = stats_of(w)
    hello = client_hello()
    s = connect(addr)
    t0 = time.monotonic()
    s.sendall(hello[:len(hello) // 2])
    data, how = recv_until_eof(s, timeout=10)
    took = time.monotonic() - t0
    s.close()
    assert how in ("eof", "reset"), "still open after %.1f s" % took
    assert 1.5 <= took <= 5, "closed after %.2f s with policy.handshake = 2" % took
    v = w.wait_stat("tls", "timeout", lambda v: v >= base["timeout"] + 1, timeout=5)
    assert v == base["timeout"] + 1, stats_of(w)
    st = stats_of(w)
    assert st["bad_input"] == base["bad_input"], st
    assert w.alive()


@pytest.mark.deadline(90)
def test_bad_clients_beside_a_good_transfer(wharf, upstream, pki):
    up = upstream("echo")
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], upstream=up.spec,
                        conf={"policy": {"handshake": 2}, "worker_processes": 2})
    workers = w.workers()
    base = stats_of(w)
    hello = client_hello()
    n_bad = 500
    socks = [None] * n_bad
    errors = []
    lock = threading.Lock()
    count = [0]
    half = threading.Event()

    def opener(k, step):
        for i in range(k, n_bad, step):
            try:
                s = connect(addr, timeout=10)
                if i % 2 == 0:
                    s.sendall(garbage(1000 + i))
                else:
                    s.sendall(hello[:len(hello) // 2])
                socks[i] = s
            except OSError as e:
                errors.append("client %d: %s" % (i, e))
            with lock:
                count[0] += 1
                if count[0] >= n_bad // 2:
                    half.set()

    data = os.urandom(20 * MiB)
    openers = [threading.Thread(target=opener, args=(k, 8), daemon=True) for k in range(8)]
    for t in openers:
        t.start()
    # the good client starts while the other half of the bad ones arrive
    # (the stallers among the first half stay open for policy.handshake)
    assert half.wait(30), "only %d bad clients connected" % count[0]
    t0 = time.monotonic()
    c = TLSClient(addr, sni="a.example", alpn=["h2", "http/1.1"], timeout=15)
    got = c.echo(data, timeout=60, chunk=65536)
    took = time.monotonic() - t0
    c.close()
    print("\n20 MiB echoed over TLS beside %d bad clients (%d connected when it "
          "started, %d when it ended): %.2f s, %.1f MiB/s each way"
          % (n_bad, n_bad // 2, count[0], took, 20 / took))
    assert len(got) == len(data) and hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), \
        "good transfer: %d of %d bytes in %.1f s, equal prefix: %s" % (
            len(got), len(data), took, data[:len(got)] == got)
    assert took < 60

    for t in openers:
        t.join(20)
    assert not errors, errors[:5]
    # every bad client is closed by the server (garbage at once, stallers
    # after policy.handshake)
    open_ = {s.fileno(): s for s in socks if s is not None}
    for s in open_.values():
        s.setblocking(False)
    deadline = time.monotonic() + 15
    while open_ and time.monotonic() < deadline:
        r, _, _ = select.select(list(open_), [], [], 0.5)
        for fd in r:
            try:
                d = open_[fd].recv(65536)
            except (ConnectionResetError, ConnectionAbortedError):
                d = b""
            except BlockingIOError:
                continue
            if not d:
                open_.pop(fd).close()
    still = len(open_)
    for s in open_.values():
        s.close()
    assert still == 0, "%d of %d bad clients still open" % (still, n_bad)

    w.wait_stat("tls", "active", lambda v: v == 0, timeout=5)
    st = stats_of(w)
    assert st["bad_input"] - base["bad_input"] == n_bad // 2, (base, st)
    assert st["timeout"] - base["timeout"] == n_bad // 2, (base, st)
    assert st["bytes_up"] - base["bytes_up"] >= len(data), st
    assert w.alive()
    assert w.workers() == workers, "workers changed (crash?): %s -> %s\n%s" % (
        workers, w.workers(), w.log()[-3000:])
    assert "on signal" not in w.log(), w.log()[-3000:]


# --------------------------------------------------------------------------
# the write path: records leave in batches, and what a slow reader does not
# take waits in the stream (see src/tls/wh_tls_stream.c)

@pytest.mark.deadline(60)
def test_slow_reader_download_exact_then_close_notify(wharf, upstream, pki):
    size = 12 * MiB
    data = random.Random(17).randbytes(size)

    def source(conn, rec):
        while len(rec.setdefault("got", b"")) < 2:
            rec["got"] += conn.recv(2)
        conn.sendall(data)
        conn.close()

    up = upstream(handler=source)
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], upstream=up.spec)
    c = TLSClient(addr, sni="a.example")
    c.send(b"go")
    got = bytearray()
    closed = False
    deadline = time.monotonic() + 40
    # stalls first, so the socket fills and records wait in the stream, then
    # reads in small steps with pauses: the last records wait there too
    time.sleep(1.0)
    while time.monotonic() < deadline:
        c._io(True, 0.2)
        if not c._read_plain(got, limit=32768):
            closed = True
            break
        if c.eof:
            break
        time.sleep(0.002)
    c.close()
    assert len(got) == size and hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), \
        "%d of %d bytes, equal prefix: %s" % (len(got), size, data[:len(got)] == got)
    # close_notify came after the last record, not a bare FIN
    assert closed, "the stream ended without close_notify"
    w.wait_stat("tls", "active", lambda v: v == 0, timeout=5)


@pytest.mark.deadline(60)
def test_many_idle_streams_resume_exact(wharf, upstream, pki):
    up = upstream("echo")
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], upstream=up.spec)
    n = 150
    clients = []
    try:
        for i in range(n):
            c = TLSClient(addr, sni="a.example")
            assert c.echo(b"%d" % i, timeout=10) == b"%d" % i
            clients.append(c)
        time.sleep(0.5)
        # every stream idle; then all move data at once, interleaved in the
        # worker, each one's bytes its own
        payloads = [random.Random(i).randbytes(48 * 1024 + i * 97) for i in range(n)]
        for c, p in zip(clients, payloads):
            c.send(p)
        for i, (c, p) in enumerate(zip(clients, payloads)):
            got = bytearray()
            deadline = time.monotonic() + 20
            while len(got) < len(p) and not c.eof and time.monotonic() < deadline:
                c._io(True, 0.2)
                if not c._read_plain(got):
                    break
            assert bytes(got) == p, "stream %d: %d of %d bytes, equal prefix: %s" % (
                i, len(got), len(p), p[:len(got)] == bytes(got))
    finally:
        for c in clients:
            c.close()
    w.wait_stat("tls", "active", lambda v: v == 0, timeout=10)
    st = stats_of(w)
    assert st["bad_input"] == 0, st


# --------------------------------------------------------------------------
# the records after a TLS 1.3 handshake are the stream's own (wharf keeps no
# SSL object for them; src/tls/wh_tls13.c): key updates, and records that
# do not authenticate

def s_client_session(addr, sni="a.example"):
    """An interactive `openssl s_client -tls1_3`: its stdin lines are sent
    as data, except its commands ("K": a KeyUpdate asking for one back,
    "k": one not asking)."""
    argv = ["openssl", "s_client", "-connect", "%s:%d" % addr, "-servername", sni, "-tls1_3"]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def read_until(p, token, timeout=10):
    """Reads p's stdout until token shows up; returns all it read."""
    got = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(p.stdout.fileno(), False)
    while token not in got:
        left = deadline - time.monotonic()
        assert left > 0, "no %r from s_client; it printed:\n%s" % (token, got.decode(errors="replace"))
        select.select([p.stdout], [], [], min(left, 0.2))
        d = p.stdout.read()
        if d:
            got += d
        elif p.poll() is not None:
            raise AssertionError("s_client ended (%d) before %r:\n%s"
                                 % (p.returncode, token, got.decode(errors="replace")))
    return got


@pytest.mark.deadline(60)
def test_key_updates_both_ways(wharf, upstream, pki):
    up = upstream("echo")
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], upstream=up.spec)
    p = s_client_session(addr)
    try:
        read_until(p, b"Verify return code")
        for i, cmd in enumerate([b"", b"K", b"k", b"K", b"K"]):
            if cmd:
                # the client's next record is under its new key; after "K"
                # the echo comes under ours, which the answer changed (a
                # command is a read of stdin of its own)
                p.stdin.write(cmd + b"\n")
                p.stdin.flush()
                read_until(p, b"KEYUPDATE")
            token = b"echo-%d-%s" % (i, os.urandom(6).hex().encode())
            p.stdin.write(token + b"\n")
            p.stdin.flush()
            read_until(p, token)
        p.stdin.close()
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    st = stats_of(w)
    assert st["bad_input"] == 0, st
    assert w.alive()


@pytest.mark.deadline(60)
def test_bad_record_closes_only_its_stream(wharf, upstream, pki):
    up = upstream("echo")
    w, addr = start_tls(wharf, [cert_entry(pki["a"])], upstream=up.spec)
    good = TLSClient(addr, sni="a.example")
    assert good.echo(b"before") == b"before"
    for where in ("header", "body", "tag"):
        c = TLSClient(addr, sni="a.example", version=ssl.TLSVersion.TLSv1_3)
        assert c.echo(b"ping") == b"ping"
        c.obj.write(b"x" * 100)
        rec = bytearray(c.out.read())
        assert rec[0] == 0x17 and len(rec) == 5 + 100 + 1 + 16, rec[:5]
        # a header with another version (3.1) is refused before the tag
        rec[{"header": 2, "body": 40, "tag": len(rec) - 1}[where]] ^= 0x02
        c.sock.setblocking(True)
        c.sock.sendall(bytes(rec))
        assert c.wait_closed(timeout=10), "%s: the stream stayed open" % where
        assert c.recv_some(timeout=1) == b"", where
        c.close()
    # the good stream, and new ones, go on
    assert good.echo(b"after" * 1000) == b"after" * 1000
    good.close()
    w.wait_stat("tls", "active", lambda v: v == 0, timeout=5)
    st = stats_of(w)
    assert st["bad_input"] == 3, st
