"""The real Debian v2ray client (interop case `tcp`) through wharf."""
import os
import select
import shutil
import subprocess

import pytest

from conftest import INTEROP, PYTHON, free_port, listener

V2RAY = shutil.which("v2ray")


def wait_ready_line(proc, timeout=10):
    """echo.py prints "ready HOST:PORT" once it listens."""
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        return None
    return proc.stdout.readline().decode(errors="replace")


@pytest.mark.deadline(150)
def test_v2ray_client_tcp(wharf, spawn, tmp_path):
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    template = INTEROP / "cases" / "tcp" / "client.json"
    assert template.exists(), "interop fixtures not found at %s (set WHARF_SHARED)" % INTEROP

    server_port, local_port, up_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(server_port),
               LOCAL_PORT=str(local_port), UPSTREAM_PORT=str(up_port))
    client_json = tmp_path / "client.json"
    r = subprocess.run(["sh", str(INTEROP / "render.sh"), str(template), str(client_json)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10, text=True)
    assert r.returncode == 0, "render.sh: %s" % r.stderr

    echo = spawn([PYTHON, INTEROP / "echo.py", up_port, "--lifetime", "140"], "echo",
                 stdout=subprocess.PIPE)
    line = wait_ready_line(echo)
    assert line and line.startswith("ready"), "echo.py did not start: %r" % line

    w = wharf({"worker_processes": 2,
               "listeners": [listener("v2", "127.0.0.1:%d" % up_port, port=server_port)]})
    v2 = spawn([V2RAY, "-config", client_json], "v2ray")

    push = subprocess.run([PYTHON, str(INTEROP / "push.py"), str(local_port),
                           "--bytes", "10485760", "--streams", "4",
                           "--timeout", "90", "--wait-port", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                          text=True)
    v2log = v2.log_path.read_text(errors="replace") if v2.log_path.exists() else ""
    assert push.returncode == 0, "push.py failed:\n%s\n--- v2ray ---\n%s\n%s" % (
        push.stdout, v2log[-3000:], w.diagnostics())
    assert v2.poll() is None, "v2ray exited:\n%s" % v2log

    st = w.wait_stat("v2", "active", lambda v: v == 0, timeout=10)
    st = w.stats()["v2"]
    assert st["bytes_up"] >= 4 * 10485760, st
    assert st["bytes_down"] >= 4 * 10485760, st
    assert st["accepted"] >= 4, st
