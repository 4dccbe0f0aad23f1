"""wharf-import (tools/wharf-import) end to end: every interop case's V2Ray
server (../shared/interop/cases), its dokodemo-door inbound turned into
vmess, vless, trojan or shadowsocks (which V2Ray serves on 127.0.0.1, not on
a unix socket: --loopback-base), is split by the importer; wharf runs the wharf.conf half,
Debian's v2ray the backend half on unix sockets, and the case's V2Ray
client, speaking the same protocol, pushes bytes through both to an echo
service and checks them. Then what the importer refuses or leaves alone:
comments, invalid JSON, inbounds wharf cannot front, too long socket paths.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import INTEROP, PUSH, PYTHON, REPO, free_port, render, udp_bound, wait_for
from test_interop import case_env, wait_connectable

V2RAY = shutil.which("v2ray")
IMPORT = REPO / "tools" / "wharf-import"
UUID = "b831381d-6324-4d53-ad4f-8cda48b30811"
PROTOCOLS = ("vmess", "vless", "trojan", "shadowsocks")     # taken in turn by the cases
NBYTES = 2 << 20          # per stream, two streams per case
CASES = sorted(p.name for p in (INTEROP / "cases").iterdir() if p.is_dir())

# what the wharf fixture needs around an imported listeners list
HEAD = ('daemon = false; user = "nobody"; worker_processes = 1; '
        'pid = "logs/wharf.pid"; error_log = "logs/error.log"; log_level = "info";\n')


def run_import(*args):
    return subprocess.run([PYTHON, str(IMPORT)] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30)


def load_commented(path):
    """The backend as V2Ray reads it: its header is // comments."""
    return json.loads(re.sub(r"^//.*$", "", path.read_text(), flags=re.M))


@pytest.fixture
def sockdir():
    """Where the backend's sockets go: short (sun_path), and reachable by
    the workers, which run as nobody."""
    d = tempfile.mkdtemp(prefix="wharf-imp-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_proxy(server, client, proto, up_port):
    """The case's transport under a real protocol: the server's inbound
    becomes proto with one user, the client's outbound speaks it to the
    server and asks for the echo service as its destination."""
    ib = server["inbounds"][0]
    target = {"address": "127.0.0.1", "port": ib["port"]}
    if proto == "shadowsocks":
        ss = {"method": "aes-128-gcm", "password": UUID}
        ib["settings"] = dict(ss, network="tcp")
        out = {"servers": [dict(target, **ss)]}
    elif proto == "trojan":
        ib["settings"] = {"clients": [{"password": UUID}]}
        out = {"servers": [dict(target, password=UUID)]}
    elif proto == "vless":
        ib["settings"] = {"clients": [{"id": UUID}], "decryption": "none"}
        out = {"vnext": [dict(target, users=[{"id": UUID, "encryption": "none"}])]}
    else:
        ib["settings"] = {"clients": [{"id": UUID, "alterId": 0}]}
        out = {"vnext": [dict(target, users=[{"id": UUID, "alterId": 0}])]}
    ib["protocol"] = proto
    client["outbounds"][0].update(protocol=proto, settings=out)
    client["inbounds"][0]["settings"] = {"address": "127.0.0.1", "port": up_port,
                                         "network": "tcp"}


@pytest.mark.deadline(90)
@pytest.mark.parametrize("case", CASES)
def test_case_round_trip(case, wharf, spawn, tmp_path, sockdir):
    if V2RAY is None:
        pytest.skip("v2ray is not installed (apt-get install v2ray)")
    server_port, local_port, up_port = free_port(), free_port(), free_port()
    env = dict(os.environ, SERVER_HOST="127.0.0.1", SERVER_PORT=str(server_port),
               LOCAL_PORT=str(local_port), UPSTREAM_PORT=str(up_port),
               QUIC_KEY="wharf-import-quic-key", KCP_SEED="wharf-import-kcp-seed")
    unix_addr = case_env(case, tmp_path, env)
    for name in ("server", "client"):
        render(INTEROP / "cases" / case / (name + ".json"), tmp_path / (name + ".json"), env)
    server = json.loads((tmp_path / "server.json").read_text())
    client = json.loads((tmp_path / "client.json").read_text())
    proto = PROTOCOLS[CASES.index(case) % len(PROTOCOLS)]
    as_proxy(server, client, proto, up_port)
    (tmp_path / "v2ray.json").write_text(json.dumps(server, indent=2))
    (tmp_path / "client.json").write_text(json.dumps(client, indent=2))

    loopback = free_port()
    r = run_import("-o", tmp_path / "wharf.conf", "-b", tmp_path / "backend.json",
                   "--socket-dir", sockdir, "--loopback-base", loopback,
                   tmp_path / "v2ray.json")
    assert r.returncode == 0, r.stderr
    if proto == "shadowsocks":
        sock, upstream = ("127.0.0.1", loopback), "127.0.0.1:%d" % loopback
    else:
        sock = os.path.join(sockdir, "transport.sock")
        upstream = "unix:" + sock
    assert 'upstream = "%s";' % upstream in (tmp_path / "wharf.conf").read_text()
    backend = load_commented(tmp_path / "backend.json")
    assert backend["outbounds"] == server["outbounds"]
    assert backend["inbounds"][0]["settings"] == server["inbounds"][0]["settings"]

    # everything starts at once; the waits below overlap the startups
    echo = spawn([PYTHON, INTEROP / "echo.py", up_port, "--lifetime", "80"], "echo",
                 stdout=subprocess.PIPE)
    # V2Ray leaves the socket's mode to its umask; the workers are nobody
    back = spawn([V2RAY, "-config", tmp_path / "backend.json"], "backend", umask=0)
    w = wharf(HEAD + (tmp_path / "wharf.conf").read_text(), start=False)
    w.start(wait=False)
    spawn([V2RAY, "-config", tmp_path / "client.json"], "client")
    assert echo.stdout.readline().startswith(b"ready")
    assert wait_connectable(sock), (tmp_path / "backend.log").read_text()
    if unix_addr is not None:
        assert wait_connectable(unix_addr), w.diagnostics()
    elif server["inbounds"][0]["streamSettings"]["network"] in ("quic", "kcp"):
        wait_for(lambda: udp_bound(server_port) and w.pid_file.exists(), 10, what="udp")
        time.sleep(0.2)     # the worker's socket, not only the master's bind
    else:
        assert wait_connectable(("127.0.0.1", server_port)), w.diagnostics()
    push = subprocess.run([PYTHON, str(PUSH), str(local_port),
                           "--bytes", str(NBYTES), "--streams", "2",
                           "--timeout", "40", "--wait-port", "10"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                          text=True)
    logs = "".join("--- %s ---\n%s\n" % (n, (tmp_path / (n + ".log")).read_text(
        errors="replace")[-2000:]) for n in ("client", "backend"))
    assert push.returncode == 0, "push.py:\n%s\n%s%s" % (push.stdout, logs, w.diagnostics())
    assert back.poll() is None
    # counted as they pass: no wait for V2Ray's (mKCP: seconds long) closes
    w.wait_stat("transport", "bytes_down", lambda v: v >= 2 * NBYTES, timeout=15)
    st = w.stats()["transport"]
    assert st["bytes_up"] >= 2 * NBYTES and st["bytes_down"] >= 2 * NBYTES, st
    assert st["bad_input"] == 0 and st["upstream"] == 0, st


def test_comments(wharf, tmp_path, sockdir):
    """V2Ray's comments (#, //, /* */) outside strings, none inside."""
    src = tmp_path / "v2ray.json"
    src.write_text("""// a server # not a JSON file
{
  /* the inbounds */
  "inbounds": [ # one
    {"tag": "ws", "listen": "127.0.0.1", "port": %d, "protocol": "vless",
     "settings": {"clients": [{"id": "%s"}], "decryption": "none",
                  "fallbacks": [{"alpn": "h2", "dest": 8081}, {"dest": 8080}]},
     "streamSettings": {"network": "ws", // a websocket
       "wsSettings": {"path": "/a//b/*c*/#d", "headers": {"Host": "h\\"x"}}}}
  ],
  "outbounds": [{"protocol": "freedom", "settings": {"domainStrategy": "AsIs"}}]
}
""" % (free_port(), UUID))
    src.chmod(0o600)
    r = run_import("-o", tmp_path / "wharf.conf", "-b", tmp_path / "backend.json",
                   "-s", sockdir, src)
    assert r.returncode == 0, r.stderr
    # the users' secrets are as readable as they were
    assert (tmp_path / "backend.json").stat().st_mode & 0o777 == 0o600
    conf = (tmp_path / "wharf.conf").read_text()
    assert 'path = "/a//b/*c*/#d";' in conf and 'Host = "h\\"x";' in conf, conf
    assert "# its fallbacks stay with the V2Ray backend, which no longer sees TLS" in conf
    w = wharf(HEAD + conf, start=False)
    t = w.run("-t")
    assert t.returncode == 0, t.stderr
    backend = load_commented(tmp_path / "backend.json")
    assert backend["inbounds"][0]["listen"] == os.path.join(sockdir, "ws.sock")
    assert backend["inbounds"][0]["streamSettings"] == {"network": "tcp", "security": "none"}
    assert backend["outbounds"] == [{"protocol": "freedom",
                                     "settings": {"domainStrategy": "AsIs"}}]
    if V2RAY:
        v = subprocess.run([V2RAY, "-test", "-config", str(tmp_path / "backend.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                           text=True)
        assert v.returncode == 0, v.stdout


def test_invalid_json(tmp_path):
    src = tmp_path / "bad.json"
    src.write_text('{\n  "inbounds": [\n    {"tag": "a" "port": 1}\n  ]\n}\n')
    r = run_import("-o", tmp_path / "w.conf", "-b", tmp_path / "b.json", src)
    assert r.returncode == 1
    assert "%s:3:17: invalid JSON" % src in r.stderr, r.stderr
    assert not (tmp_path / "w.conf").exists() and not (tmp_path / "b.json").exists()


def test_unsupported_inbounds(tmp_path):
    """What wharf cannot front stays in the backend as it was, with a
    warning naming it."""
    kept = [
        {"tag": "dns", "port": 53, "protocol": "dokodemo-door",
         "settings": {"address": "1.1.1.1", "port": 53, "network": "udp"}},
        {"tag": "ss", "port": 8388, "protocol": "shadowsocks",
         "settings": {"method": "aes-128-gcm", "password": "p"}},
        {"tag": "range", "port": "1000-1010", "protocol": "vmess",
         "settings": {"clients": [{"id": UUID}]}},
        {"tag": "x", "port": 444, "protocol": "vless",
         "settings": {"clients": [{"id": UUID}], "decryption": "none"},
         "streamSettings": {"network": "grpc"}},
    ]
    moved = {"tag": "vm", "port": 443, "protocol": "vmess",
             "settings": {"clients": [{"id": UUID}]},
             "sniffing": {"enabled": True, "destOverride": ["http", "tls"]}}
    src = tmp_path / "v2ray.json"
    src.write_text(json.dumps({"inbounds": kept + [moved], "routing": {"rules": []},
                               "outbounds": [{"protocol": "freedom"}]}))
    r = run_import("-o", tmp_path / "w.conf", "-b", tmp_path / "b.json", "-s", "/run/x", src)
    assert r.returncode == 0, r.stderr
    for i, ib in enumerate(kept):
        assert re.search(r'warning: inbounds\[%d\] \("%s"\): .*kept in the backend'
                         % (i, ib["tag"]), r.stderr), r.stderr
    backend = load_commented(tmp_path / "b.json")
    assert backend["inbounds"][:len(kept)] == kept
    assert backend["inbounds"][-1] == dict(moved, listen="/run/x/vm.sock", port=0,
                                           streamSettings={"network": "tcp",
                                                           "security": "none"})
    assert backend["routing"] == {"rules": []}
    conf = (tmp_path / "w.conf").read_text()
    assert conf.count("tag = ") == 1 and 'upstream = "unix:/run/x/vm.sock";' in conf
    assert "# sniffing stays with the V2Ray backend" in conf
    assert "# V2Ray took IPv4 and IPv6 on this port" in conf and 'listen = "0.0.0.0";' in conf

    # nothing left to front is an error, and nothing is written
    src.write_text(json.dumps({"inbounds": kept}))
    r = run_import("-o", tmp_path / "w2.conf", "-b", tmp_path / "b2.json", src)
    assert r.returncode == 1 and "no inbound that wharf can front" in r.stderr, r.stderr
    assert not (tmp_path / "w2.conf").exists()


def test_loopback_base(tmp_path):
    """With --loopback-base, what cannot listen on a unix socket goes
    behind wharf on 127.0.0.1, one port each; UDP-only stays."""
    ss = {"tag": "ss", "port": 8388, "protocol": "shadowsocks",
          "settings": {"method": "aes-128-gcm", "password": "p", "network": "tcp,udp"},
          "streamSettings": {"network": "ws", "wsSettings": {"path": "/ss"}}}
    socks = {"tag": "socks", "port": 1080, "listen": "127.0.0.1", "protocol": "socks",
             "settings": {"auth": "noauth"}}
    dns = {"tag": "dns", "port": 53, "protocol": "dokodemo-door",
           "settings": {"address": "1.1.1.1", "port": 53, "network": "udp"}}
    src = tmp_path / "v2ray.json"
    src.write_text(json.dumps({"inbounds": [ss, socks, dns]}))
    r = run_import("-o", tmp_path / "w.conf", "-b", tmp_path / "b.json", "-l", 20100, src)
    assert r.returncode == 0, r.stderr
    assert 'warning: inbounds[2] ("dns"): it takes no TCP' in r.stderr, r.stderr
    backend = load_commented(tmp_path / "b.json")
    assert backend["inbounds"][0] == dict(ss, listen="127.0.0.1", port=20100,
                                          streamSettings={"network": "tcp",
                                                          "security": "none"})
    assert backend["inbounds"][1]["listen"] == "127.0.0.1"
    assert backend["inbounds"][1]["port"] == 20101 and backend["inbounds"][2] == dns
    conf = (tmp_path / "w.conf").read_text()
    assert 'upstream = "127.0.0.1:20100";' in conf and 'upstream = "127.0.0.1:20101";' in conf
    assert "# its UDP stays with the V2Ray backend" in conf and 'path = "/ss";' in conf
    r = run_import("-o", tmp_path / "w2.conf", "-b", tmp_path / "b2.json", "-l", 70000, src)
    assert r.returncode == 2 and "--loopback-base must be a port number" in r.stderr


def test_socket_path_and_usage(tmp_path):
    src = tmp_path / "v2ray.json"
    src.write_text(json.dumps({"inbounds": [{"tag": "t" * 40, "port": 1, "protocol": "vmess",
                                             "settings": {}}]}))
    r = run_import("-o", tmp_path / "w.conf", "-b", tmp_path / "b.json",
                   "-s", "/" + "d" * 70, src)
    assert r.returncode == 1 and "more than a unix socket address holds (107)" in r.stderr
    (tmp_path / "w.conf").write_text("keep")
    r = run_import("-o", tmp_path / "w.conf", "-b", tmp_path / "b.json", src)
    assert r.returncode == 1 and "exists (-f overwrites it)" in r.stderr
    assert (tmp_path / "w.conf").read_text() == "keep"
    r = run_import("-h")
    assert r.returncode == 0 and r.stdout.startswith("usage: wharf-import")
