"""The access log (wharf.conf(5) LOGGING) and the error log's journald and
syslog forms, seen from clients.

- one line per stream for every transport (tcp, tcp+TLS with SNI and ALPN,
  ws with its path, h2, quic, mKCP, domainsocket, the last four through
  the Debian v2ray client), parsed field by field: exact byte counts,
  addresses, listener, network, TLS facts, path, status, close cause,
  upstream;
- a refused websocket request: a status 400 line with its path, and an
  info line in the error log that names method, host and path;
- a fallback's line; buffer= (written at exit), flush= (written without
  more traffic), USR1 after a rename;
- syslog datagrams on a unix socket the test binds (<PRI> and tag) for the
  access log and the error log; <N> prefixes on a stderr that
  JOURNAL_STREAM names; a bad log_format refused with FILE:LINE.
"""
import base64
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (INTEROP, PYTHON, WHARF, free_port, recv_exact, udp_bound, wait_for)
from test_interop import case_env, server_stream_settings
from test_tls import cert_entry, make_cert

V2RAY = shutil.which("v2ray")
VARS = ("remote_addr remote_port time_local time_iso8601 msec session_time bytes_sent "
        "bytes_received upstream_addr upstream_connect_time status listener network "
        "ssl_server_name ssl_protocol ssl_alpn request_path close_cause fallback").split()
FMT = "|".join("$" + v for v in VARS)


def lines(path):
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [dict(zip(VARS, l.split("|"))) for l in text.splitlines() if l]


def wait_lines(path, n, timeout=15, w=None):
    wait_for(lambda: len(lines(path)) >= n, timeout,
             what="%d access log lines in %s%s" % (n, path, "\n" + w.diagnostics() if w else ""))
    return lines(path)


def conf(listeners, log, **top):
    c = {"log_format": {"all": FMT}, "access_log": "%s all" % log, "listeners": listeners}
    c.update(top)
    return c


def check_common(rec, tag, network, nbytes, upstream, status="200", cause="done"):
    assert rec["listener"] == tag and rec["network"] == network, rec
    assert rec["bytes_sent"] == str(nbytes) and rec["bytes_received"] == str(nbytes), rec
    assert rec["status"] == status and rec["close_cause"] == cause, rec
    assert rec["upstream_addr"] == upstream, rec
    assert float(rec["session_time"]) >= 0 and float(rec["upstream_connect_time"]) >= 0, rec
    assert abs(float(rec["msec"]) - time.time()) < 120, rec
    assert time.strptime(rec["time_local"], "%d/%b/%Y:%H:%M:%S %z")
    assert time.strptime(rec["time_iso8601"].replace(":", ""), "%Y-%m-%dT%H%M%S%z")


def connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def echo_once(sock, nbytes):
    data = os.urandom(nbytes)
    sock.sendall(data)
    assert recv_exact(sock, nbytes) == data


# --------------------------------------------------------------------------
# tcp, tcp+TLS, ws, refused ws, fallback: python clients

@pytest.mark.deadline(40)
def test_tcp_tls_ws(wharf, upstream, sockdir, tmp_path):
    up = upstream("echo")
    fb = upstream("echo")
    pair = make_cert(tmp_path / "pki", "srv", "example.test", sans=["example.test"])
    p_tcp, p_tls, p_ws = free_port(), free_port(), free_port()
    log = sockdir / "access.log"
    ls = [
        {"tag": "plain", "listen": "127.0.0.1", "port": p_tcp, "upstream": up.spec,
         "streamSettings": {"network": "tcp"}},
        {"tag": "tls", "listen": "127.0.0.1", "port": p_tls, "upstream": up.spec,
         "streamSettings": {"network": "tcp", "security": "tls",
                            "tlsSettings": {"certificates": [cert_entry(pair)],
                                            "alpn": ["h2", "http/1.1"]}}},
        {"tag": "ws", "listen": "127.0.0.1", "port": p_ws, "upstream": up.spec,
         "streamSettings": {"network": "ws", "wsSettings": {"path": "/ray"}},
         "fallbacks": [{"path": "/site", "dest": fb.spec}]},
    ]
    w = wharf(conf(ls, log))

    c = socket.create_connection(("127.0.0.1", p_tcp))
    port = c.getsockname()[1]
    echo_once(c, 1234)
    c.close()
    (rec,) = wait_lines(log, 1, w=w)
    check_common(rec, "plain", "tcp", 1234, up.spec)
    assert rec["remote_addr"] == "127.0.0.1" and rec["remote_port"] == str(port), rec
    assert rec["ssl_server_name"] == rec["ssl_protocol"] == rec["ssl_alpn"] == "-", rec
    assert rec["request_path"] == rec["fallback"] == "-", rec

    ctx = ssl.create_default_context(cafile=str(pair[0]))
    ctx.set_alpn_protocols(["http/1.1"])
    c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", p_tls)),
                        server_hostname="example.test")
    echo_once(c, 4321)
    c.close()
    rec = wait_lines(log, 2, w=w)[1]
    check_common(rec, "tls", "tcp", 4321, up.spec)
    assert rec["ssl_server_name"] == "example.test" and rec["ssl_alpn"] == "http/1.1", rec
    assert rec["ssl_protocol"] == "TLSv1.3", rec

    # websocket: a 101, one masked binary frame each way
    c = socket.create_connection(("127.0.0.1", p_ws))
    key = base64.b64encode(os.urandom(16)).decode()
    c.sendall(("GET /ray HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += c.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = os.urandom(100)
    mask = os.urandom(4)
    c.sendall(b"\x82" + bytes([0x80 | 100]) + mask
              + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    assert recv_exact(c, 102) == b"\x82\x64" + payload
    c.close()
    rec = wait_lines(log, 3, w=w)[2]
    assert rec["listener"] == "ws" and rec["network"] == "ws", rec
    assert rec["request_path"] == "/ray" and rec["upstream_addr"] == up.spec, rec
    assert rec["bytes_sent"] == rec["bytes_received"] == "100", rec

    # a wrong path: 404, then the client leaves; a 400 line with its path
    c = socket.create_connection(("127.0.0.1", p_ws))
    c.sendall(b"GET /wrong HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert c.recv(4096).startswith(b"HTTP/1.1 404")
    c.close()
    rec = wait_lines(log, 4, w=w)[3]
    assert rec["status"] == "400" and rec["request_path"] == "/wrong", rec
    assert rec["close_cause"] == "bad_input" and rec["upstream_addr"] == "-", rec
    assert rec["bytes_sent"] == "0" and rec["upstream_connect_time"] == "-", rec
    wait_for(lambda: 'request refused (404 Not Found): method "GET", host "ws.example", '
             'path "/wrong"' in w.log(), 5, what="the refusal in the error log")

    # a fallback takes /site
    c = socket.create_connection(("127.0.0.1", p_ws))
    req = b"GET /site HTTP/1.1\r\nHost: x\r\n\r\n"
    c.sendall(req)
    assert recv_exact(c, len(req)) == req
    c.close()
    rec = wait_lines(log, 5, w=w)[4]
    assert rec["listener"] == "ws" and rec["fallback"].startswith("ws/fallback"), rec
    assert rec["upstream_addr"] == fb.spec and rec["status"] == "200", rec
    assert rec["bytes_received"] == rec["bytes_sent"] == str(len(req)), rec


# --------------------------------------------------------------------------
# the Debian v2ray client: h2, quic, kcp, domainsocket

def run_v2ray(case, wharf, spawn, tmp_path, log, nbytes):
    server_port, local_port, up_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(server_port),
               LOCAL_PORT=str(local_port), UPSTREAM_PORT=str(up_port),
               QUIC_KEY="wharf-interop-quic-key")
    unix_addr = case_env(case, tmp_path, env)
    ss = server_stream_settings(case, env, tmp_path)
    client_json = tmp_path / ("%s-client.json" % case)
    r = subprocess.run(["sh", str(INTEROP / "render.sh"),
                        str(INTEROP / "cases" / case / "client.json"), str(client_json)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                       text=True)
    assert r.returncode == 0, r.stdout
    echo = spawn([PYTHON, INTEROP / "echo.py", up_port, "--lifetime", "60"], "echo-" + case,
                 stdout=subprocess.PIPE)
    assert echo.stdout.readline().startswith(b"ready")
    ls = {"tag": case, "upstream": "127.0.0.1:%d" % up_port, "streamSettings": ss}
    if unix_addr is None:
        ls.update(listen="127.0.0.1", port=server_port)
    w = wharf(conf([ls], log), start=False)
    w.start(wait=False)
    if ss["network"] in ("quic", "kcp", "mkcp"):
        wait_for(lambda: udp_bound(server_port) and len(w.workers()) >= 1, 10, what="udp bound")
    else:
        wait_for(lambda: len(w.workers()) >= 1 and w.pid_file.exists(), 10, what="started")
    v2 = spawn([V2RAY, "-config", client_json], "v2ray-" + case)
    push = subprocess.run([PYTHON, str(INTEROP / "push.py"), str(local_port), "--bytes",
                           str(nbytes), "--streams", "1", "--timeout", "30", "--wait-port", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, text=True)
    assert push.returncode == 0, push.stdout + w.diagnostics()
    # push.py's probe of the local port made a stream of its own, empty
    wait_for(lambda: any(r["bytes_received"] == str(nbytes) for r in lines(log)), 20,
             what="the stream's line\n%s" % w.diagnostics())
    v2.terminate()
    (rec,) = [r for r in lines(log) if r["bytes_received"] == str(nbytes)]
    return rec, "127.0.0.1:%d" % up_port


@pytest.mark.skipif(V2RAY is None, reason="v2ray is not installed")
@pytest.mark.deadline(60)
@pytest.mark.parametrize("case,network", [("h2", "h2"), ("quic-tls", "quic"), ("kcp", "kcp"),
                                          ("ds", "ds")])
def test_v2ray_client(case, network, wharf, spawn, tmp_path, sockdir):
    log = sockdir / "access.log"
    rec, up = run_v2ray(case, wharf, spawn, tmp_path, log, 100000)
    if case == "h2" and rec["close_cause"] == "error":
        # V2Ray's client may cancel its stream (RST_STREAM) after the last byte
        check_common(rec, case, network, 100000, up, status="500", cause="error")
    else:
        check_common(rec, case, network, 100000, up)
    if case == "h2":
        assert rec["ssl_server_name"] == "localhost" and rec["ssl_alpn"] == "h2", rec
        assert rec["ssl_protocol"].startswith("TLSv1."), rec
        assert rec["request_path"].startswith("/"), rec
    elif case == "quic-tls":
        assert rec["ssl_protocol"] == "TLSv1.3", rec
    if case == "ds":
        assert rec["remote_addr"] == "unix:" and rec["remote_port"] == "-", rec
    else:
        assert rec["remote_addr"] == "127.0.0.1" and rec["remote_port"].isdigit(), rec


# --------------------------------------------------------------------------
# buffering, flushing, reopening

@pytest.mark.deadline(40)
def test_buffer_flush_reopen(wharf, upstream, sockdir):
    up = upstream("echo")
    p1, p2, p3 = free_port(), free_port(), free_port()
    held, flushed, tiny = sockdir / "held.log", sockdir / "flushed.log", sockdir / "tiny.log"
    ls = [{"tag": "held", "listen": "127.0.0.1", "port": p1, "upstream": up.spec,
           "streamSettings": {"network": "tcp"}, "access_log": "%s all buffer=64k" % held},
          {"tag": "tiny", "listen": "127.0.0.1", "port": p3, "upstream": up.spec,
           "streamSettings": {"network": "tcp"}, "access_log": "%s all buffer=16" % tiny},
          {"tag": "flushed", "listen": "127.0.0.1", "port": p2, "upstream": up.spec,
           "streamSettings": {"network": "tcp"},
           "access_log": "%s all buffer=64k flush=1s" % flushed}]
    w = wharf(conf(ls, "off"))
    for p in (p1, p2, p3):
        c = socket.create_connection(("127.0.0.1", p))
        echo_once(c, 10)
        c.close()
    w.wait_stat("held", "active", lambda v: v == 0)
    # a line longer than the buffer goes out at once, whole
    (rec,) = wait_lines(tiny, 1, w=w)
    assert rec["listener"] == "tiny" and rec["fallback"] == "-", rec
    # flush= writes what the buffer holds, with no more traffic
    (rec,) = wait_lines(flushed, 1, w=w)
    assert rec["listener"] == "flushed", rec

    # USR1 after a rename: the old file keeps its line, the next goes to a new one
    os.rename(flushed, str(flushed) + ".1")
    w.send_signal(signal.SIGUSR1)
    wait_for(flushed.exists, 5, what="the reopened file")
    time.sleep(0.5)         # the worker reopens after the master
    c = socket.create_connection(("127.0.0.1", p2))
    echo_once(c, 20)
    c.close()
    (rec,) = wait_lines(flushed, 1, w=w)
    assert rec["bytes_sent"] == "20", rec
    assert len(lines(sockdir / "flushed.log.1")) == 1

    # buffer= alone: written when the buffer fills, at reopen and at exit
    assert lines(held) == [] or len(lines(held)) == 1      # the USR1 above flushed it
    c = socket.create_connection(("127.0.0.1", p1))
    echo_once(c, 30)
    c.close()
    w.wait_stat("held", "active", lambda v: v == 0)
    before = len(lines(held))
    w.stop(signal.SIGQUIT)
    after = lines(held)
    assert len(after) == before + 1 and after[-1]["bytes_sent"] == "30", after


# --------------------------------------------------------------------------
# syslog, journald, errors

def bind_dgram(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    os.chmod(path, 0o777)
    s.settimeout(10)
    return s


@pytest.mark.deadline(30)
def test_syslog(wharf, upstream, sockdir):
    up = upstream("echo")
    acc, err = bind_dgram(sockdir / "acc.sock"), bind_dgram(sockdir / "err.sock")
    port = free_port()
    ls = [{"tag": "t", "listen": "127.0.0.1", "port": port, "upstream": up.spec,
           "streamSettings": {"network": "tcp"}}]
    w = wharf(conf(ls, "syslog:server=unix:%s,facility=local3,tag=wharfacc"
                   % (sockdir / "acc.sock"),
                   error_log="syslog:server=unix:%s,facility=daemon,tag=wharferr"
                   % (sockdir / "err.sock")), start=False)
    w.start(wait=False)
    wait_for(lambda: len(w.workers()) >= 1, 10, what="a worker")
    # the error log: info lines at daemon.info, <30>
    msgs = [err.recv(4096).decode() for _ in range(2)]
    assert any(m.startswith("<30>") and " wharferr: [info] " in m for m in msgs), msgs
    wait_for(lambda: connectable(port), 10, what="listening")
    acc.recv(4096)          # the probe's own line
    c = socket.create_connection(("127.0.0.1", port))
    echo_once(c, 77)
    c.close()
    msg = acc.recv(4096).decode()
    # local3.info: <158>, then RFC 3164's "Mmm dd hh:mm:ss host tag: "
    assert msg.startswith("<158>") and " wharfacc: " in msg, msg
    rec = dict(zip(VARS, msg.split(" wharfacc: ", 1)[1].split("|")))
    assert rec["bytes_sent"] == "77" and rec["listener"] == "t", rec


@pytest.mark.deadline(30)
def test_journal_stream(upstream, tmp_path):
    dead = free_port()           # nobody listens: an error line
    port = free_port()
    prefix = tmp_path / "j"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "wharf.conf").write_text(
        'daemon = false; user = "nobody"; pid = "logs/wharf.pid"; error_log = "stderr";\n'
        'listeners = ( { tag = "j"; listen = "127.0.0.1"; port = %d; upstream = "127.0.0.1:%d";'
        ' streamSettings = { network = "tcp"; }; } );\n' % (port, dead))
    out = open(tmp_path / "stderr", "wb")
    st = os.fstat(out.fileno())
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    p = subprocess.Popen([str(WHARF), "-p", str(prefix), "-c", str(prefix / "wharf.conf")],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        wait_for(lambda: connectable(port), 10, what="listening")
        wait_for(lambda: "connect() to upstream" in (tmp_path / "stderr").read_text(), 10,
                 what="the upstream error")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        out.close()
    text = (tmp_path / "stderr").read_text().splitlines()
    assert text and all(l[:3] in ("<2>", "<3>", "<4>", "<6>", "<7>") for l in text), text
    assert any(l.startswith("<3>[error] ") and "connect() to upstream" in l for l in text), text
    assert any(l.startswith("<6>[info] ") for l in text), text

    # the same stderr without JOURNAL_STREAM keeps its time stamps
    r = subprocess.run([str(WHARF), "-p", str(prefix), "-c", str(prefix / "nowhere.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
    assert not r.stderr.startswith("<"), r.stderr


@pytest.mark.parametrize("text,what", [
    ('log_format = { x = "$remote_addr $nope"; };', 'unknown variable "$nope"'),
    ('log_format = { x = "$"; };', "invalid variable name"),
    ('access_log = "logs/a.log missing";', 'unknown log format "missing"'),
    ('access_log = "logs/a.log basic buffer=lots";', 'invalid "buffer=lots"'),
    ('access_log = "syslog:server=unix:/dev/log basic flush=1s";', "do not apply to syslog"),
    ('access_log = "syslog:facility=local7";', "no server="),
    ('error_log = "syslog:server=unix:/dev/log,facility=nope";', "unknown facility="),
])
def test_bad_config(text, what, tmp_path):
    conf = tmp_path / "wharf.conf"
    conf.write_text('daemon = false;\n\n%s\nlisteners = ();\n' % text)
    r = subprocess.run([str(WHARF), "-t", "-p", str(tmp_path), "-c", str(conf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
    assert r.returncode != 0, r.stdout
    assert what in r.stdout and "%s:3" % conf in r.stdout, r.stdout
