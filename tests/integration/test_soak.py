"""The reload soak in short: bench/soak.sh with 10 reloads (one of them a
broken config) while every transport carries verified downloads through the
real V2Ray client, and a connect loop hits the plain tcp listener.

The script is the test: it starts wharf (WHARF_BIN, in this environment, so
a sanitizer build's report settings reach every wharf process), the client,
the upstreams and the loads, and prints its figures; this file runs it with
light loads and asserts on the figures that must hold whatever the machine:
no stream broken, no connect refused or failed, the broken config refused.
Throughput is the full run's business (bench/soak.sh, RELOADS=100).
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, WHARF

SOAK = REPO / "bench" / "soak.sh"


def figure(out, pattern):
    m = re.search(pattern, out, re.M)
    assert m, "no %r in the soak's output:\n%s" % (pattern, out[-6000:])
    return [int(g) for g in m.groups()]


@pytest.mark.deadline(200)
def test_soak_short():
    if shutil.which("v2ray") is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    if os.geteuid() != 0:
        pytest.skip("needs root: the master switches its workers to nobody")
    env = dict(os.environ, WHARF=str(WHARF), RELOADS="10", INTERVAL="1", CLIENTS="2",
               SIZE="1m", WARMUP="2", BEFORE="4", AFTER="4", DRAIN="20", STREAM_TIMEOUT="30")
    r = subprocess.run(["bash", str(SOAK)], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180,
                       text=True, errors="replace")
    out = r.stdout
    print(out)
    assert r.returncode in (0, 2), "soak.sh could not run (exit %d):\n%s" % (r.returncode, out)
    [completed] = figure(out, r"^streams completed:\s+(\d+)")
    [broken] = figure(out, r"^streams broken:\s+(\d+)")
    [failed] = figure(out, r"^connects refused or failed:\s+(\d+)")
    refused, bad = figure(out, r"^broken configs refused:\s+(\d+) of (\d+)")
    assert completed > 0, out
    assert broken == 0, "streams broken across the reloads:\n%s" % out
    assert failed == 0, "connects refused or failed across the reloads:\n%s" % out
    assert bad == 1 and refused == bad, "a broken config was not refused:\n%s" % out
    assert r.returncode == 0, "a target missed:\n%s" % out
