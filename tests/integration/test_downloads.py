"""Downloads whose upstream answers and closes, through every interop case
with the real Debian v2ray client, against wharf and against V2Ray's own
server in the same run.

Echo traffic always lets the client end the stream; real upstreams (a
V2Ray server, a web server) send their response and close first. For
each case: 20 concurrent downloads of 4 MiB, then 4 of 16 MiB whose reader
is slow (64 KiB, then 20 ms asleep), every one byte-exact through wharf;
V2Ray's server gets the same downloads, and wharf must do at least as
well on each (V2Ray's websocket server loses the tail of slow downloads,
its mKCP server some of the concurrent ones). Then 8 uploads of 8 MiB,
each answered by the upstream with the digest of what reached it, and
closed: the answer comes only once the last byte is through, which a
server that holds an upload's tail (receive_coalesce) must not delay
forever. A sanitizer run sets
WHARF_SKIP_REFERENCE=1: the reference measures V2Ray, not wharf.
The same downloads run through the TCP transports with accept_by_cpu on,
across reloads that take the steering program off and put it back.
"""
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import INTEROP, PYTHON, free_port, render, udp_bound, wait_for
from test_interop import case_env, server_stream_settings, wait_connectable

V2RAY = shutil.which("v2ray")
DOWNLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "download.py")
CASES = sorted(os.listdir(INTEROP / "cases"))
LOADS = {
    "concurrent": ["--streams", "20", "--bytes", str(4 << 20)],
    "slow": ["--streams", "4", "--bytes", str(16 << 20), "--slow"],
    "upload": ["--streams", "8", "--bytes", str(8 << 20), "--upload"],
}
UDP = ("quic", "kcp")


def server_ready(case, env, unix_addr):
    port = int(env["SERVER_PORT"])
    if case.startswith(UDP):
        return wait_for(lambda: udp_bound(port), 10)
    return wait_connectable(unix_addr or ("127.0.0.1", port))


def downloads(spawn, tmp_path, env, name):
    """Runs every load through a fresh v2ray client on env's server;
    {load: (exact streams, total, output)}."""
    env = dict(env, LOCAL_PORT=str(free_port()))
    client = tmp_path / ("client-%s.json" % name)
    render(INTEROP / "cases" / env["CASE"] / "client.json", client, env)
    spawn([V2RAY, "-config", client], "v2ray-client-%s" % name)
    out = {}
    for load, args in LOADS.items():
        r = subprocess.run([PYTHON, DOWNLOAD, "fetch", env["LOCAL_PORT"], "--timeout", "90",
                            "--wait-port", "10"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120, text=True)
        last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        exact = int(last.split()[0]) if last[:1].isdigit() else 0
        out[load] = (exact, int(args[1]), r.stdout)
    return out


def serve_case(case, spawn, tmp_path):
    """The download upstream and what a wharf listener for case needs:
    (env for the fixtures, the unix address or None, the listener)."""
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    up_port = free_port()
    env = dict(os.environ, CASE=case, SERVER_HOST="127.0.0.1", SERVER_PORT=str(free_port()),
               UPSTREAM_PORT=str(up_port), LOCAL_PORT="0", QUIC_KEY="wharf-download-key",
               KCP_SEED="wharf-download-seed")
    unix_addr = case_env(case, tmp_path, env)
    up = spawn([PYTHON, DOWNLOAD, "serve", up_port, "--lifetime", "230"], "upstream",
               stdout=subprocess.PIPE)
    assert up.stdout.readline().startswith(b"ready")
    ls = {"tag": "v2", "upstream": "127.0.0.1:%d" % up_port,
          "streamSettings": server_stream_settings(case, env, tmp_path)}
    if unix_addr is None:
        ls.update(listen="127.0.0.1", port=int(env["SERVER_PORT"]))
    return env, unix_addr, ls


@pytest.mark.deadline(240)
@pytest.mark.parametrize("case", CASES)
def test_downloads_end_intact(case, wharf, spawn, tmp_path):
    env, unix_addr, ls = serve_case(case, spawn, tmp_path)
    w = wharf({"worker_processes": 2, "listeners": [ls]}, start=False)
    w.start(wait=False)
    assert server_ready(case, env, unix_addr), w.diagnostics()
    got = downloads(spawn, tmp_path, env, "wharf")
    w.wait_stat("v2", "active", lambda v: v == 0, timeout=15)
    st = w.stats()["v2"]
    w.stop()

    ref = None
    if not os.environ.get("WHARF_SKIP_REFERENCE"):
        env2 = dict(env, SERVER_PORT=str(free_port()))
        (tmp_path / "ref").mkdir()
        unix2 = case_env(case, tmp_path / "ref", env2) if case.startswith("ds") else None
        server = tmp_path / "v2ray-server.json"
        render(INTEROP / "cases" / case / "server.json", server, env2)
        spawn([V2RAY, "-config", server], "v2ray-server")
        assert server_ready(case, env2, unix2), "v2ray server did not start"
        ref = downloads(spawn, tmp_path, env2, "v2ray")

    report = "\n".join("%s: wharf %d/%d exact%s" % (
        load, got[load][0], got[load][1],
        ", v2ray %d/%d" % ref[load][:2] if ref else "") for load in LOADS)
    print(report)
    for load in LOADS:
        exact, total, output = got[load]
        assert exact == total, "%s\n--- %s through wharf ---\n%s\n%s" % (
            report, load, output, w.diagnostics())
        if ref:
            assert exact >= ref[load][0], report
    assert st["bad_input"] == 0 and st["upstream"] == 0 and st["error"] == 0, st


@pytest.mark.deadline(240)
@pytest.mark.parametrize("case", ["tcp", "tcp-tls", "ws-tls", "h2"])
def test_steered_downloads_survive_reloads(case, wharf, spawn, tmp_path):
    """accept_by_cpu only picks the worker that accepts; what the stream
    then carries must be as exact as without it, and a reload that detaches
    or attaches the program must not touch the streams already running."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    env, _, ls = serve_case(case, spawn, tmp_path)
    conf = lambda steer: {"worker_processes": 2, "worker_cpu_affinity": "auto",
                          "accept_by_cpu": steer, "listeners": [ls]}
    w = wharf(conf(True))

    got = {}
    t = threading.Thread(target=lambda: got.update(downloads(spawn, tmp_path, env, "wharf")))
    t.start()
    # while the downloads run (the slow ones take over 5 s): steering off, then on
    for steer in (False, True):
        wait_for(lambda: w.stats()["v2"]["active"] > 0, 30, what="streams running")
        w.reload(conf(steer))
    t.join(180)
    assert not t.is_alive(), "downloads did not end"
    w.wait_stat("v2", "active", lambda v: v == 0, timeout=15)
    st = w.stats()["v2"]
    for load in LOADS:
        exact, total, output = got[load]
        assert exact == total, "%s: %d/%d exact\n%s\n%s" % (load, exact, total, output,
                                                               w.diagnostics())
    assert st["bad_input"] == 0 and st["upstream"] == 0 and st["error"] == 0, st
