"""The mKCP transport (spec 9) with the real Debian v2ray client.

- the four interop cases (kcp, kcp-seed, kcp-wechat, kcp-dtls): 10 MiB
  echoed byte-exact on 4 parallel sessions, as test_interop.py runs the
  stream transports;
- other headers (srtp, utp, wireguard), seed with dtls, and TLS over mKCP,
  by editing the kcp case's client streamSettings;
- a run through lossy_udp_relay.py (drops and reorders a few percent);
- bad input (random datagrams, truncated segments, a huge len, a flood of
  new conversations) while a good client keeps transferring, with the
  datagram counters checked;
- a flood of half-open conversations (one DATA segment each, then
  silence) to a talking upstream: bounded memory, ended after
  policy.handshake, a good client unaffected;
- a reload in the middle of a transfer.
"""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (INTEROP, PUSH, PYTHON, REPO, SANITIZED, datagram_stats, free_port,
                      udp_bound, wait_for)
from test_interop import V2RAY, make_pki, server_stream_settings

RELAY = REPO / "tests" / "integration" / "lossy_udp_relay.py"
DOWNLOAD = REPO / "tests" / "integration" / "download.py"
KCP_SEED = "wharf-interop-kcp-seed"


# --------------------------------------------------------------- helpers


def start_wharf(wharf, ls, workers=2, **conf):
    c = {"worker_processes": workers, "listeners": [ls]}
    c.update(conf)
    w = wharf(c, start=False)
    w.start(wait=False)
    ok = wait_for(lambda: udp_bound(ls["port"]) and len(w.workers()) >= workers
                  and w.pid_file.exists(), 10)
    assert ok, w.diagnostics()
    return w


def render(template, out, env):
    r = subprocess.run(["sh", str(INTEROP / "render.sh"), str(template), str(out)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stdout


def kcp_env(case, tmp_path, server_port=None):
    env = dict(os.environ, SERVER_HOST="127.0.0.1",
               SERVER_PORT=str(server_port or free_port()),
               LOCAL_PORT=str(free_port()), UPSTREAM_PORT=str(free_port()),
               KCP_SEED=KCP_SEED)
    return env


def client_conf(case, env, tmp_path, edit=None, connect_port=None):
    """The case's client.json, optionally with its streamSettings edited and
    the server port replaced (to go through a relay)."""
    path = tmp_path / "client.json"
    render(INTEROP / "cases" / case / "client.json", path, env)
    if edit or connect_port:
        conf = json.loads(path.read_text())
        out = conf["outbounds"][0]
        if edit:
            edit(out["streamSettings"])
        if connect_port:
            out["settings"]["redirect"] = "127.0.0.1:%d" % connect_port
            conf["inbounds"][0]["settings"]["port"] = connect_port
        path.write_text(json.dumps(conf))
    return path


def start_echo(spawn, port, lifetime=170):
    echo = spawn([PYTHON, INTEROP / "echo.py", port, "--lifetime", str(lifetime)], "echo",
                 stdout=subprocess.PIPE)
    assert echo.stdout.readline().startswith(b"ready")
    return echo


def push(local_port, nbytes=10485760, streams=4, timeout=90):
    return subprocess.run([PYTHON, str(PUSH), str(local_port),
                           "--bytes", str(nbytes), "--streams", str(streams),
                           "--timeout", str(timeout), "--wait-port", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout + 30, text=True)


def run_case(case, wharf, spawn, tmp_path, edit=None, server_edit=None, nbytes=10485760,
             streams=4, tls=False, relay=None, timeout=90):
    """One v2ray client -> wharf run; returns the Wharf for more checks."""
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    env = kcp_env(case, tmp_path)
    server_port = int(env["SERVER_PORT"])
    ss = server_stream_settings(case, env, tmp_path)
    if server_edit:
        server_edit(ss)
    if tls:
        pki = make_pki(tmp_path)
        ss["security"] = "tls"
        ss["tlsSettings"] = {"certificates": [{"certificateFile": str(pki / "cert.pem"),
                                               "keyFile": str(pki / "key.pem")}]}

        def tls_edit(cs, inner=edit):
            cs["security"] = "tls"
            cs["tlsSettings"] = {"serverName": "localhost", "allowInsecure": False,
                                 "certificates": [{"usage": "verify",
                                                   "certificateFile": str(pki / "cert.pem")}]}
            if inner:
                inner(cs)
        edit = tls_edit
    connect_port = None
    if relay is not None:
        connect_port = free_port()
        spawn([PYTHON, RELAY, "--listen", "127.0.0.1:%d" % connect_port,
               "--to", "127.0.0.1:%d" % server_port] + relay, "relay")
    client = client_conf(case, env, tmp_path, edit, connect_port)
    start_echo(spawn, env["UPSTREAM_PORT"])
    ls = {"tag": "kcp", "listen": "127.0.0.1", "port": server_port,
          "upstream": "127.0.0.1:%s" % env["UPSTREAM_PORT"], "streamSettings": ss}
    w = start_wharf(wharf, ls)
    v2 = spawn([V2RAY, "-config", client], "v2ray")
    r = push(int(env["LOCAL_PORT"]), nbytes, streams, timeout)
    v2log = v2.log_path.read_text(errors="replace") if v2.log_path.exists() else ""
    assert r.returncode == 0, "push.py failed:\n%s\n--- v2ray ---\n%s\n%s" % (
        r.stdout, v2log[-3000:], w.diagnostics())
    st = w.stats()["kcp"]
    assert st["bytes_up"] >= streams * nbytes and st["bytes_down"] >= streams * nbytes, st
    assert st["bad_input"] == 0 and st["upstream"] == 0, st
    return w


# ----------------------------------------------------------------- cases

@pytest.mark.deadline(150)
@pytest.mark.parametrize("case", ["kcp", "kcp-seed", "kcp-wechat", "kcp-dtls"])
def test_v2ray_client(case, wharf, spawn, tmp_path):
    w = run_case(case, wharf, spawn, tmp_path)
    # the sessions end: the client closes, the server hears TERMINATE
    w.wait_stat("kcp", "active", lambda v: v == 0, timeout=20)


def header(kind):
    def edit(ss):
        ss["kcpSettings"]["header"] = {"type": kind}
    return edit


def seed_dtls(ss):
    ss["kcpSettings"]["header"] = {"type": "dtls"}
    ss["kcpSettings"]["seed"] = KCP_SEED


@pytest.mark.deadline(120)
@pytest.mark.parametrize("variant", ["srtp", "utp", "wireguard", "seed-dtls"])
def test_v2ray_variants(variant, wharf, spawn, tmp_path):
    edit = seed_dtls if variant == "seed-dtls" else header(variant)
    run_case("kcp", wharf, spawn, tmp_path, edit=edit, server_edit=edit,
             nbytes=2 << 20, streams=2)


@pytest.mark.deadline(120)
def test_v2ray_tls(wharf, spawn, tmp_path):
    run_case("kcp", wharf, spawn, tmp_path, tls=True, nbytes=2 << 20, streams=2)


@pytest.mark.deadline(150)
def test_lossy_relay(wharf, spawn, tmp_path):
    """3 % of datagrams dropped and 3 % delayed (reordered) both ways."""
    run_case("kcp", wharf, spawn, tmp_path, nbytes=2 << 20, streams=2,
             relay=["--loss", "0.03", "--reorder", "0.03", "--seed", "7"], timeout=100)


# ------------------------------------------------------------- bad input

def fnv1a32(b):
    h = 0x811C9DC5
    for x in b:
        h = ((h ^ x) * 0x01000193) & 0xFFFFFFFF
    return h


def simple_seal(plain):
    """Spec 9.2 simple security."""
    body = bytearray(struct.pack(">IH", fnv1a32(struct.pack(">H", len(plain)) + plain),
                                 len(plain)) + plain)
    for i in range(4, len(body)):
        body[i] ^= body[i - 4]
    return bytes(body)


def cmd_segment(conv, cmd, una=0, rcv_next=0, rto=100, opt=0):
    return struct.pack(">HBBIII", conv, cmd, opt, una, rcv_next, rto)


def test_simple_seal_vector():
    # spec 10: PING una=5 rcv_next=5 rto=5, conv 0xccac
    assert simple_seal(cmd_segment(0xCCAC, 3, 5, 5, 5)).hex() == \
        "9d12069d9d02ca319e02ca319e07ca319e02ca319e07"


def kcp_listener(spawn, tmp_path):
    """The "kcp" fixture as a wharf listener: (env, listener, client
    config), its echo upstream started."""
    env = kcp_env("kcp", tmp_path)
    ss = server_stream_settings("kcp", env, tmp_path)
    client = client_conf("kcp", env, tmp_path)
    start_echo(spawn, env["UPSTREAM_PORT"])
    ls = {"tag": "kcp", "listen": "127.0.0.1", "port": int(env["SERVER_PORT"]),
          "upstream": "127.0.0.1:%s" % env["UPSTREAM_PORT"], "streamSettings": ss}
    return env, ls, client


@pytest.mark.deadline(150)
def test_bad_input_and_flood(wharf, spawn, tmp_path):
    """Garbage, truncated and oversized segments, stray TERMINATEs and a
    flood of new conversations, while a v2ray client pushes 4 MiB x 2: the
    transfer completes, the workers survive, every drop is counted."""
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    env, ls, client = kcp_listener(spawn, tmp_path)
    w = start_wharf(wharf, ls)
    workers = set(w.workers())
    spawn([V2RAY, "-config", client], "v2ray")
    result = {}

    def good():
        result["r"] = push(int(env["LOCAL_PORT"]), 4 << 20, 2, 90)
    t = threading.Thread(target=good, daemon=True)
    t.start()
    time.sleep(1.0)

    rnd = random.Random(5)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
    dst = ("127.0.0.1", ls["port"])
    n_garbage, n_trunc, n_huge, n_term, n_flood = 300, 100, 100, 50, 200
    for i in range(n_garbage):
        socks[i % 8].sendto(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 1500))), dst)
    for i in range(n_trunc):
        # a DATA segment cut short inside a valid envelope
        seg = struct.pack(">HBBIII", 7000 + i, 1, 0, 0, 0, 0)[:4 + rnd.randint(0, 13)]
        socks[i % 8].sendto(simple_seal(seg), dst)
    for i in range(n_huge):
        # a DATA segment claiming 60000 payload bytes
        seg = struct.pack(">HBBIIIH", 8000 + i, 1, 0, 0, 0, 0, 60000) + b"x" * 100
        socks[i % 8].sendto(simple_seal(seg), dst)
    for i in range(n_term):
        socks[i % 8].sendto(simple_seal(cmd_segment(9000 + i, 2)), dst)
    for i in range(n_flood):
        socks[i % 8].sendto(simple_seal(cmd_segment(10000 + i, 3)), dst)
        if i % 50 == 49:
            time.sleep(0.05)

    t.join(110)
    r = result.get("r")
    assert r is not None and r.returncode == 0, "%s\n%s" % (r and r.stdout, w.diagnostics())
    assert set(w.workers()) == workers, "a worker died"
    d = wait_for(lambda: (lambda s: s if s.get("kcp", {}).get("refused", 0) >= n_term
                          else None)(datagram_stats(w)), 5)
    assert d, datagram_stats(w)
    d = d["kcp"]
    assert d["auth"] >= n_garbage - 2, d
    assert d["malformed"] >= n_trunc + n_huge, d
    assert d["refused"] >= n_term, d
    st = w.stats()["kcp"]
    # every flood PING opened a session (V2Ray does too), beside the 2 good ones
    assert st["accepted"] >= n_flood + 2, st
    for s in socks:
        s.close()


# ------------------------------------------------------ half-open flood

FLOOD_N = 300
FLOOD_HANDSHAKE = 2     # policy.handshake here: s


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def talk_or_echo(conn, rec):
    """The upstream: a flood conversation (its first bytes say "flood") gets
    1 MiB at once, as a source that talks first would send; anything else
    is echoed (the v2ray client's push.py)."""
    d = conn.recv(65536)
    if d.startswith(b"flood"):
        rec["flood"] = True
        try:
            conn.sendall(b"\0" * (1 << 20))
        except OSError:
            return
    while d:
        if not rec.get("flood"):
            conn.sendall(d)
        d = conn.recv(262144)


@pytest.mark.deadline(90)
def test_flood_of_half_open_sessions(wharf, spawn, upstream, tmp_path):
    """FLOOD_N new conversations, each one valid DATA segment from its own
    port and then silence, against a listener whose upstream sends 1 MiB
    at once: a session whose client never acknowledged anything queues
    one initial window, not writeBufferSize (2 MiB here), so the worker
    grows by far less than FLOOD_N x 2 MiB; the sessions end as "timeout"
    after policy.handshake, not 30 s; a v2ray client moves data through
    the same listener meanwhile."""
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    up = upstream(handler=talk_or_echo)
    env = kcp_env("kcp", tmp_path)
    env["UPSTREAM_PORT"] = str(up.port)
    ss = server_stream_settings("kcp", env, tmp_path)
    client = client_conf("kcp", env, tmp_path)
    ls = {"tag": "kcp", "listen": "127.0.0.1", "port": int(env["SERVER_PORT"]),
          "upstream": up.spec, "streamSettings": ss}
    w = start_wharf(wharf, ls, workers=1,
                    policy={"handshake": FLOOD_HANDSHAKE, "connIdle": 300})
    worker = w.workers()[0]
    spawn([V2RAY, "-config", client], "v2ray")
    r = push(int(env["LOCAL_PORT"]), 1 << 20, 1, 30)
    assert r.returncode == 0, r.stdout + w.diagnostics()
    base = rss_kib(worker)
    before = w.stat("kcp", "timeout")

    socks = []
    dst = ("127.0.0.1", ls["port"])
    for i in range(FLOOD_N):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        # DATA conv, sn 0, una 0: the first data, so the session is relayed
        payload = b"flood %d" % i
        seg = struct.pack(">HBBIIIH", 20000 + i, 1, 0, 0, 0, 0, len(payload)) + payload
        s.sendto(simple_seal(seg), dst)
    flooded = time.monotonic()
    result = {}

    def good():
        result["r"] = push(int(env["LOCAL_PORT"]), 2 << 20, 2, 40)
    t = threading.Thread(target=good, daemon=True)
    try:
        assert wait_for(lambda: sum(1 for c in list(up.conns) if c.get("flood")) >= FLOOD_N,
                        10), (up.accepted, w.diagnostics())
        t.start()       # the good client during the flood
        peak = base
        while time.monotonic() - flooded < FLOOD_HANDSHAKE + 0.5:
            peak = max(peak, rss_kib(worker))
            time.sleep(0.05)
        # ended after policy.handshake (plus a tti or two), not 30 s
        v = w.wait_stat("kcp", "timeout", lambda v: v >= before + FLOOD_N,
                        timeout=FLOOD_HANDSHAKE + 5)
        ended = time.monotonic() - flooded
        assert v >= before + FLOOD_N, (v, w.stats(), w.log()[-3000:])
        assert ended < FLOOD_HANDSHAKE + 5.5, ended
        peak = max(peak, rss_kib(worker))
    finally:
        for s in socks:
            s.close()
    t.join(60)
    r = result.get("r")
    assert r is not None and r.returncode == 0, "%s\n%s" % (r and r.stdout, w.diagnostics())
    # before: FLOOD_N x writeBufferSize (2 MiB) = 600 MiB; now one initial
    # window and the relay's one read each (64 KiB), 20 MiB (a sanitizer
    # build keeps freed memory in quarantine and shadows it: allow more)
    assert peak - base < (120 if SANITIZED else 30) * 1024, (base, peak)
    assert w.log().count("mKCP client never acknowledged") >= FLOOD_N, w.log()[-3000:]
    assert wait_for(lambda: w.stat("kcp", "active") == 0, 10), w.stats()
    # after the flood, a new session still works
    r = push(int(env["LOCAL_PORT"]), 1 << 20, 1, 30)
    assert r.returncode == 0, r.stdout + w.diagnostics()
    assert w.stat("kcp", "timeout") == before + FLOOD_N, w.stats()


# ---------------------------------------------------------------- reload

@pytest.mark.deadline(150)
@pytest.mark.parametrize("workers", [(2, 2), (1, 3)], ids=["same-workers", "more-workers"])
def test_reload_mid_transfer(workers, wharf, spawn, tmp_path):
    """Sessions opened before a reload finish on their old worker (their
    datagrams are handed over by the new workers); new sessions work. With
    more workers the listener gets more sockets, the kernel spreads client
    addresses anew, and hand-over still keeps the sessions whole."""
    before, after = workers
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    env, ls, client = kcp_listener(spawn, tmp_path)
    w = start_wharf(wharf, ls, workers=before, shutdown_timeout=60)
    spawn([V2RAY, "-config", client], "v2ray")
    result = {}

    def run():
        result["r"] = push(int(env["LOCAL_PORT"]), 64 << 20, 2, 100)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    # both streams open on the old workers before the reload (on a busy
    # machine a fixed second was not always enough: nothing was handed over)
    w.wait_stat("kcp", "active", lambda v: v >= 2, timeout=20)
    time.sleep(0.5)
    assert t.is_alive(), "the transfer ended before the reload"
    old = set(w.workers())
    if after != before:
        w.set_conf({"worker_processes": after, "listeners": [ls], "shutdown_timeout": 60})
    w.send_signal(signal.SIGHUP)
    assert wait_for(lambda: len(set(w.workers()) - old) >= after, 10), w.diagnostics()
    assert t.is_alive(), "the reload did not overlap the transfer"
    t.join(120)
    r = result.get("r")
    assert r is not None and r.returncode == 0, "%s\n%s" % (r and r.stdout, w.diagnostics())
    # a new session after the reload
    r = push(int(env["LOCAL_PORT"]), 1 << 20, 1, 60)
    assert r.returncode == 0, r.stdout + w.diagnostics()
    # the old workers exit once their sessions said goodbye
    assert wait_for(lambda: not (old & set(w.workers())), 40), w.diagnostics()
    assert datagram_stats(w)["kcp"]["passed"] > 0, (datagram_stats(w), w.stats(), w.log()[-3000:])


@pytest.mark.deadline(120)
def test_reload_keeps_the_tail_of_a_download(wharf, spawn, tmp_path):
    """A download whose upstream ends while its old worker drains: the relay
    closes with up to the send queue (2 MiB) still to deliver, and the
    session lingers, counted, until the client has it all. That close runs
    inside a callback of the session, whose destroy (which takes the count)
    waits for the callback to return: the worker must not take the count's
    passing through zero for the end of its streams. It did, and exited
    with the tail unsent; the client's next datagrams opened a session of
    nothing on a new worker and the download hung, then ended short
    (bench/soak.sh: 2 to 3 kcp streams per 100 reloads)."""
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    env = kcp_env("kcp", tmp_path)
    ss = server_stream_settings("kcp", env, tmp_path)
    client = client_conf("kcp", env, tmp_path)
    up = spawn([PYTHON, DOWNLOAD, "serve", env["UPSTREAM_PORT"], "--lifetime", "110"],
               "upstream", stdout=subprocess.PIPE)
    assert up.stdout.readline().startswith(b"ready")
    ls = {"tag": "kcp", "listen": "127.0.0.1", "port": int(env["SERVER_PORT"]),
          "upstream": "127.0.0.1:%s" % env["UPSTREAM_PORT"], "streamSettings": ss}
    w = start_wharf(wharf, ls, workers=1, shutdown_timeout=60)
    spawn([V2RAY, "-config", client], "v2ray")
    result = {}

    def run():
        # read slowly: the session's send queue stays full to the end
        result["r"] = subprocess.run(
            [PYTHON, DOWNLOAD, "fetch", env["LOCAL_PORT"], "--streams", "1",
             "--bytes", str(12 << 20), "--slow", "--timeout", "30", "--wait-port", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, text=True)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    w.wait_stat("kcp", "active", lambda v: v >= 1, timeout=20)
    time.sleep(0.5)
    assert t.is_alive(), "the download ended before the reload"
    old = set(w.workers())
    w.send_signal(signal.SIGHUP)
    assert wait_for(lambda: set(w.workers()) - old, 10), w.diagnostics()
    assert t.is_alive(), "the reload did not overlap the download"
    t.join(70)
    r = result.get("r")
    assert r is not None and r.returncode == 0, "%s\n%s" % (r and r.stdout, w.diagnostics())
    assert wait_for(lambda: not (old & set(w.workers())), 30), w.diagnostics()


# --------------------------------------------------- wildcard listeners

def test_wildcard_listener_replies_from_the_address_called(wharf, upstream):
    """Regression: a listener on 0.0.0.0 answered a client that sent to
    127.0.0.2 from 127.0.0.1, which a client with a connected UDP socket
    drops. Replies leave from the address the client sent to (IP_PKTINFO)."""
    port = free_port()
    up = upstream("echo")
    ls = {"tag": "kcp", "listen": "0.0.0.0", "port": port, "upstream": up.spec,
          "streamSettings": {"network": "kcp"}}
    start_wharf(wharf, ls, workers=1)
    # DATA conv 7, sn 0, una 0, one byte: the session opens and acks it
    data = struct.pack(">HBBIIIH", 7, 1, 0, 0, 0, 0, 1) + b"x"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(simple_seal(data), ("127.0.0.2", port))
        _, addr = s.recvfrom(2048)
    assert addr == ("127.0.0.2", port)
