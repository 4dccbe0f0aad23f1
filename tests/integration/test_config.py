"""`wharf -t` / `-T`: malformed configurations are refused with "in FILE:LINE"
(the line marked #BAD below), a good one passes."""
import re
import subprocess

import pytest

from conftest import WHARF

GOOD = """\
daemon = false;
user = "nobody";
worker_processes = 1;
pid = "logs/wharf.pid";
error_log = "logs/error.log";
log_level = "info";
shutdown_timeout = 30;
policy = { handshake = 60; connIdle = 300; uplinkOnly = 1; downlinkOnly = 1; };
listeners = (
  {
    tag = "a";
    listen = "127.0.0.1";
    port = 18080;
    upstream = "127.0.0.1:9000";
    streamSettings = {
      network = "tcp";
      security = "none";
      tcpSettings = { acceptProxyProtocol = false; header = { type = "none"; }; };
    };
  }
);
"""

HEAD = """\
daemon = false;
user = "nobody";
pid = "logs/wharf.pid";
error_log = "logs/error.log";
"""


def replace_line(text, startswith, new):
    """GOOD with the (single) line starting with `startswith` (after
    indentation) replaced by `new` (same indentation) + the #BAD marker."""
    out = []
    hit = 0
    for line in text.split("\n"):
        if line.strip().startswith(startswith):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(indent + new + "  #BAD")
            hit += 1
        else:
            out.append(line)
    assert hit == 1, (startswith, hit)
    return "\n".join(out)


def insert_after(text, startswith, new):
    out = []
    hit = 0
    for line in text.split("\n"):
        out.append(line)
        if line.strip().startswith(startswith):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(indent + new + "  #BAD")
            hit += 1
    assert hit == 1, (startswith, hit)
    return "\n".join(out)


LISTENER_TAIL = ' streamSettings = { network = "tcp"; }; }'

CASES = {
    "unknown_top_level_name":
        insert_after(GOOD, "worker_processes", "frobnicate = 1;"),
    "unknown_listener_field":
        insert_after(GOOD, "port = 18080", 'colour = "red";'),
    "port_wrong_type":
        replace_line(GOOD, "port = 18080", 'port = "80";'),
    "port_zero":
        replace_line(GOOD, "port = 18080", "port = 0;"),
    "port_too_big":
        replace_line(GOOD, "port = 18080", "port = 70000;"),
    "duplicate_tag": HEAD + """\
listeners = (
  { tag = "a"; listen = "127.0.0.1"; port = 18080; upstream = "echo"; },
  {
    tag = "a";  #BAD
    listen = "127.0.0.1";
    port = 18081;
    upstream = "echo";
  }
);
""",
    "missing_upstream": HEAD + """\
listeners = (
  { tag = "a"; listen = "127.0.0.1"; port = 18080; upstream = "echo"; },
  { tag = "b"; listen = "127.0.0.1"; port = 18081;""" + LISTENER_TAIL + """  #BAD
);
""",
    "listener_missing_tag": HEAD + """\
listeners = (
  { tag = "a"; listen = "127.0.0.1"; port = 18080; upstream = "echo"; },
  { listen = "127.0.0.1"; port = 18081; upstream = "echo";""" + LISTENER_TAIL + """  #BAD
);
""",
    "bad_upstream_nohost":
        replace_line(GOOD, "upstream =", 'upstream = "nohost";'),
    "bad_listen_address":
        replace_line(GOOD, "listen =", 'listen = "1.2.3";'),
    # caught by -t, not only by bind() at start (a RuntimeDirectory= not made)
    "unix_listen_dir_missing":
        replace_line(GOOD, "listen =", 'listen = "/nonexistent-wharf/run/front.sock";'),
    "unknown_network":
        replace_line(GOOD, 'network = "tcp"', 'network = "carrier-pigeon";'),
    "worker_processes_zero":
        replace_line(GOOD, "worker_processes", "worker_processes = 0;"),
    "worker_cpu_affinity_word":
        insert_after(GOOD, "worker_processes", 'worker_cpu_affinity = "all";'),
    "worker_cpu_affinity_mask_digit":
        insert_after(GOOD, "worker_processes", 'worker_cpu_affinity = [ "01", "012" ];'),
    "worker_cpu_affinity_mask_no_cpu":
        insert_after(GOOD, "worker_processes",
                     'worker_cpu_affinity = [ "1' + "0" * 1023 + '" ];'),
    "worker_cpu_affinity_mask_not_string":
        insert_after(GOOD, "worker_processes", "worker_cpu_affinity = [ 1 ];"),
    # steering needs each worker bound to one CPU of its own
    "accept_by_cpu_unbound":
        insert_after(GOOD, "worker_processes", "accept_by_cpu = true;"),
    "accept_by_cpu_not_bool":
        insert_after(GOOD, "worker_processes", 'accept_by_cpu = "yes";'),
    "log_level_unknown":
        replace_line(GOOD, "log_level", 'log_level = "loud";'),
    "policy_conn_idle_negative":
        replace_line(GOOD, "policy =",
                     "policy = { handshake = 60; connIdle = -1; uplinkOnly = 1; downlinkOnly = 1; };"),
    "syntax_double_equals":
        replace_line(GOOD, "log_level", 'log_level = = "info";'),
    "syntax_missing_brace": HEAD + """\
listeners = (
  { tag = "a"; listen = "127.0.0.1"; port = 18080; upstream = "echo";
);  #BAD
""",
    "tcp_header_type_bogus":
        replace_line(GOOD, "tcpSettings",
                     'tcpSettings = { acceptProxyProtocol = false; header = { type = "bogus"; }; };'),
    "tcp_settings_unknown_field":
        replace_line(GOOD, "tcpSettings", "tcpSettings = { bogus = true; };"),
    "daemon_wrong_type":
        replace_line(GOOD, "daemon", 'daemon = "yes";'),
    "shutdown_timeout_wrong_type":
        replace_line(GOOD, "shutdown_timeout", 'shutdown_timeout = "soon";'),
    "receive_coalesce_wrong_type":
        insert_after(GOOD, "shutdown_timeout", 'receive_coalesce = "1ms";'),
    "receive_coalesce_too_long":
        insert_after(GOOD, "shutdown_timeout", "receive_coalesce = 0.5;"),
    "receive_coalesce_negative":
        insert_after(GOOD, "shutdown_timeout", "receive_coalesce = -0.001;"),
}


def bad_line(text):
    lines = [i + 1 for i, l in enumerate(text.split("\n")) if "#BAD" in l]
    assert len(lines) == 1
    return lines[0]


def run_wharf(*args):
    return subprocess.run([str(WHARF)] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          errors="replace", timeout=10)


@pytest.fixture
def prefix(tmp_path):
    (tmp_path / "logs").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_config_is_refused_with_line(name, prefix):
    text = CASES[name]
    line = bad_line(text)
    conf = prefix / ("%s.conf" % name)
    conf.write_text(text)
    r = run_wharf("-t", "-c", conf, "-p", prefix)
    shown = "config:\n%s\n--- stderr ---\n%s" % (
        "\n".join("%3d %s" % (i + 1, l) for i, l in enumerate(text.split("\n"))), r.stderr)
    assert r.returncode == 1, "exit status %d, want 1\n%s" % (r.returncode, shown)
    where = re.compile(re.escape("in %s:%d" % (conf, line)) + r"(?!\d)")
    assert where.search(r.stderr), "stderr lacks 'in %s:%d'\n%s" % (conf, line, shown)
    assert "[emerg]" in r.stderr, shown
    assert "configuration file %s test failed" % conf in r.stderr, shown


def test_good_config(prefix):
    conf = prefix / "good.conf"
    conf.write_text(GOOD)
    r = run_wharf("-t", "-c", conf, "-p", prefix)
    assert r.returncode == 0, r.stderr
    assert "wharf: the configuration file %s syntax is ok" % conf in r.stderr, r.stderr
    assert "wharf: configuration file %s test is successful" % conf in r.stderr, r.stderr


def test_default_config_path(prefix):
    """Without -c the configuration is PREFIX/conf/wharf.conf."""
    (prefix / "conf").mkdir()
    conf = prefix / "conf" / "wharf.conf"
    conf.write_text(GOOD)
    r = run_wharf("-t", "-p", prefix)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr, r.stderr
    conf.write_text(CASES["port_zero"])
    r = run_wharf("-t", "-p", prefix)
    assert r.returncode == 1, r.stderr
    assert "wharf.conf:%d" % bad_line(CASES["port_zero"]) in r.stderr, r.stderr


def test_print_config(prefix):
    conf = prefix / "good.conf"
    conf.write_text(GOOD)
    r = run_wharf("-T", "-c", conf, "-p", prefix)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr, r.stderr
    for s in ('"a"', "18080", "127.0.0.1:9000", "listeners"):
        assert s in r.stdout, "-T output lacks %r:\n%s" % (s, r.stdout)


def test_version():
    r = run_wharf("-v")
    assert r.returncode == 0
    assert "wharf version: wharf/0.1.0" in r.stdout + r.stderr
    r = run_wharf("-V")
    assert r.returncode == 0
    assert "wharf version: wharf/0.1.0" in r.stdout + r.stderr
    assert "configure arguments:" in r.stdout + r.stderr
