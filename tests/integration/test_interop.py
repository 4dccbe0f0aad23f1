"""The real Debian v2ray client through wharf, one interop case at a time
(../shared/interop/cases): 10 MiB echoed byte-exact on 4 parallel streams.

Each case renders the fixture's client.json and server.json, runs wharf with
the server's streamSettings carried over as they are (wharf.conf keeps
V2Ray's names), and pushes through the client's local port with
interop/push.py.
"""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import INTEROP, PUSH, PYTHON, free_port

V2RAY = shutil.which("v2ray")


def make_pki(tmp_path):
    pki = tmp_path / "pki"
    r = subprocess.run(["sh", str(INTEROP / "mkcert.sh"), str(pki)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout
    return pki


def case_env(case, tmp_path, env):
    """Fills the case's extra variables (interop/README.md) into env; returns
    the unix address wharf will listen on for ds cases, else None."""
    if "tls" in case or case == "h2":
        pki = make_pki(tmp_path)
        env.update(CERT_FILE=str(pki / "cert.pem"), KEY_FILE=str(pki / "key.pem"),
                   CA_FILE=str(pki / "cert.pem"), TLS_SERVER_NAME="localhost")
    if case == "ds":
        env["DS_PATH"] = str(tmp_path / "ds.sock")
        return env["DS_PATH"]
    if case == "ds-abstract":
        name = "wharf-it-%d-%d" % (os.getpid(), time.monotonic_ns() % 100000)
        env["DS_NAME"] = name
        return "\0" + name + "\0" * (107 - len(name))
    return None


def server_stream_settings(case, env, tmp_path):
    """The streamSettings of the fixture's V2Ray server, as wharf.conf takes
    them: wharf keeps V2Ray's names, only the syntax differs."""
    out = tmp_path / "server.json"
    r = subprocess.run(["sh", str(INTEROP / "render.sh"),
                        str(INTEROP / "cases" / case / "server.json"), str(out)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stdout
    return json.loads(out.read_text())["inbounds"][0]["streamSettings"]


CASES = ["tcp", "tcp-tls", "tcp-http", "tcp-http-default", "tcp-tls-http", "ds", "ds-abstract",
         "ws", "ws-tls", "h2"]


def wait_connectable(addr, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.connect(addr)
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


@pytest.mark.deadline(150)
@pytest.mark.parametrize("case", CASES)
def test_v2ray_client(case, wharf, spawn, tmp_path):
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    server_port, local_port, up_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(server_port),
               LOCAL_PORT=str(local_port), UPSTREAM_PORT=str(up_port))
    unix_addr = case_env(case, tmp_path, env)
    stream_settings = server_stream_settings(case, env, tmp_path)

    client_json = tmp_path / "client.json"
    r = subprocess.run(["sh", str(INTEROP / "render.sh"),
                        str(INTEROP / "cases" / case / "client.json"), str(client_json)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stdout

    echo = spawn([PYTHON, INTEROP / "echo.py", up_port, "--lifetime", "140"], "echo",
                 stdout=subprocess.PIPE)
    assert echo.stdout.readline().startswith(b"ready")

    ls = {"tag": "v2", "upstream": "127.0.0.1:%d" % up_port, "streamSettings": stream_settings}
    if unix_addr is None:
        ls.update(listen="127.0.0.1", port=server_port)
    w = wharf({"worker_processes": 2, "listeners": [ls]}, start=False)
    w.start(wait=False)
    assert wait_connectable(unix_addr or ("127.0.0.1", server_port)), w.diagnostics()

    v2 = spawn([V2RAY, "-config", client_json], "v2ray")
    push = subprocess.run([PYTHON, str(PUSH), str(local_port),
                           "--bytes", "10485760", "--streams", "4",
                           "--timeout", "90", "--wait-port", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                          text=True)
    v2log = v2.log_path.read_text(errors="replace") if v2.log_path.exists() else ""
    assert push.returncode == 0, "push.py failed:\n%s\n--- v2ray ---\n%s\n%s" % (
        push.stdout, v2log[-3000:], w.diagnostics())
    w.wait_stat("v2", "active", lambda v: v == 0, timeout=10)
    st = w.stats()["v2"]
    assert st["bytes_up"] >= 4 * 10485760 and st["bytes_down"] >= 4 * 10485760, st
    assert st["bad_input"] == 0 and st["upstream"] == 0, st

    if case == "ds":
        assert os.path.exists(unix_addr + ".lock")
        w.stop()
        assert not os.path.exists(unix_addr) and not os.path.exists(unix_addr + ".lock")
