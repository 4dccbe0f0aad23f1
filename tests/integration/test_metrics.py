"""Operations: /metrics read by a strict parser of the text exposition
format 0.0.4 (each family one group under its HELP and TYPE, counters named
*_total, label values escaped, no series twice) after traffic, reloads good
and bad, and a killed worker; `wharf -S` run as nobody beside a key only
root may read; -V, -q, options without their parameter, -c DIR, and a
syntax error that names what was found.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (WHARF, connect, echo_roundtrip, free_port, listener, parse_stats,
                      recv_until_eof, wait_for)
from test_tcp_relay import fetch_metrics
from test_tls import cert_entry, make_cert, tls_listener

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)\Z")
LIBS = ("OpenSSL", "nghttp2", "ngtcp2", "GnuTLS", "libev", "libconfig", "PCRE2")


class ExpositionError(AssertionError):
    pass


def parse_labels(text, where):
    """'{a="x",b="y\\"z"}' -> (("a", "x"), ("b", 'y"z')), escapes undone."""
    labels, i = [], 1
    while text[i] != "}":
        m = LABEL_NAME.match(text, i)
        if not m or text[m.end():m.end() + 2] != '="':
            raise ExpositionError("%s: bad label at %r" % (where, text[i:]))
        name, i, value = m.group(0), m.end() + 2, ""
        while text[i] != '"':
            if text[i] == "\\":
                esc = {"\\": "\\", '"': '"', "n": "\n"}.get(text[i + 1])
                if esc is None:
                    raise ExpositionError("%s: bad escape %r" % (where, text[i:i + 2]))
                value, i = value + esc, i + 2
            elif text[i] == "\n":
                raise ExpositionError("%s: raw line feed in a label value" % where)
            else:
                value, i = value + text[i], i + 1
        i += 1
        if name in dict(labels):
            raise ExpositionError("%s: label %s twice" % (where, name))
        labels.append((name, value))
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise ExpositionError("%s: expected , or } at %r" % (where, text[i:]))
    if i != len(text) - 1:
        raise ExpositionError("%s: text after the labels" % where)
    return tuple(sorted(labels))


def parse_exposition(body):
    """{family: {"type", "help", "samples": {labels: value}}}; raises
    ExpositionError on anything the format does not allow."""
    if not body.endswith("\n"):
        raise ExpositionError("the body does not end with a line feed")
    families, cur = {}, None
    for no, line in enumerate(body[:-1].split("\n"), 1):
        where = "line %d %r" % (no, line)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 4 or parts[1] not in ("HELP", "TYPE"):
                raise ExpositionError("%s: a comment that is not HELP or TYPE" % where)
            kind, name, rest = parts[1], parts[2], parts[3]
            if not NAME.match(name):
                raise ExpositionError("%s: bad metric name" % where)
            if kind == "HELP":
                if name in families:
                    raise ExpositionError("%s: family %s is not one group" % (where, name))
                cur = families[name] = {"help": rest, "type": None, "samples": {}}
            else:
                if cur is None or cur is not families.get(name) or cur["type"] or cur["samples"]:
                    raise ExpositionError("%s: TYPE not right after its HELP" % where)
                if rest not in ("counter", "gauge"):
                    raise ExpositionError("%s: unexpected type" % where)
                if rest == "counter" and not name.endswith("_total"):
                    raise ExpositionError("%s: counter not named *_total" % where)
                cur["type"] = rest
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ExpositionError("%s: not a sample" % where)
        name = m.group(1)
        if cur is None or cur is not families.get(name) or cur["type"] is None:
            raise ExpositionError("%s: sample outside its family's group" % where)
        labels = parse_labels(m.group(2), where) if m.group(2) else ()
        if labels in cur["samples"]:
            raise ExpositionError("%s: series twice" % where)
        cur["samples"][labels] = float(m.group(3))
    return families


def test_parser_refuses_what_the_format_does_not_allow():
    good = ('# HELP a_total A.\n# TYPE a_total counter\na_total{l="x\\"y\\\\z\\n"} 1\n'
            '# HELP g G.\n# TYPE g gauge\ng 2.5\n')
    fams = parse_exposition(good)
    assert fams["a_total"]["samples"] == {(("l", 'x"y\\z\n'),): 1.0}
    assert fams["g"]["samples"] == {(): 2.5}
    bad = [
        # all HELP and TYPE first, then the samples: the old layout
        '# HELP a_total A.\n# TYPE a_total counter\n# HELP g G.\n# TYPE g gauge\n'
        'a_total 1\ng 2\n',
        '# HELP a A.\n# TYPE a counter\na 1\n',                  # counter without _total
        '# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n',
        '# HELP a_total A.\n# TYPE a_total counter\na_total{l="x\\q"} 1\n',
        '# HELP a_total A.\n# TYPE a_total counter\na_total{l="x"} 1\n'
        '# HELP g G.\n# TYPE g gauge\ng 2\na_total{l="y"} 1\n',
        '# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n',
        '# TYPE g gauge\ng 1\n',
    ]
    for text in bad:
        with pytest.raises(ExpositionError):
            parse_exposition(text)


def metrics(port):
    status, body = fetch_metrics(port)
    assert status == 200, body
    try:
        return parse_exposition(body)
    except ExpositionError as e:
        raise AssertionError("%s\n%s" % (e, body))


def sample(fams, name, **labels):
    fam = fams.get(name)
    assert fam is not None, "no family %s in %s" % (name, sorted(fams))
    key = tuple(sorted(labels.items()))
    assert key in fam["samples"], "%s%s not in %s" % (name, labels, fam["samples"])
    return fam["samples"][key]


@pytest.mark.deadline(60)
def test_metrics_families_reloads_and_restarts(wharf, upstream):
    # a quote and a backslash in a member's name (a tag may have neither):
    # both escaped in the label values
    a = upstream("echo")
    b = upstream("echo", unix='\0wharf-"m\\%d' % os.getpid())
    sport = free_port()
    odd = "other"
    conf = {"stats": {"listen": "127.0.0.1", "port": sport},
            "listeners": [listener("plain", [a.spec, b.spec], port=free_port()),
                          listener(odd, "echo", port=free_port())]}
    t0 = time.time()
    w = wharf(conf)
    for i in range(4):
        assert echo_roundtrip(w.addr("plain"), b"x" * 100)["ok"]
    assert echo_roundtrip(w.addr(odd), b"y" * 10)["ok"]
    wait_for(lambda: sample(metrics(sport), "wharf_streams_closed_total", listener="plain",
                            cause="done") == 4, 5, what="4 streams done")

    fams = metrics(sport)
    info = fams["wharf_build_info"]
    assert info["type"] == "gauge" and list(info["samples"].values()) == [1.0], info
    labels = dict(next(iter(info["samples"])))
    for lib in ("version", "openssl", "nghttp2", "ngtcp2", "gnutls", "libev", "libconfig",
                "pcre2"):
        assert re.match(r"\d+\.\d+", labels.get(lib, "")), (lib, labels)
    start = sample(fams, "wharf_start_time_seconds")
    assert t0 - 2 <= start <= time.time(), (t0, start)
    assert fams["wharf_start_time_seconds"]["type"] == "gauge"
    for name in ("wharf_reloads_total", "wharf_reloads_failed_total",
                 "wharf_worker_restarts_total"):
        assert fams[name]["type"] == "counter" and sample(fams, name) == 0, name

    assert sample(fams, "wharf_streams_accepted_total", listener="plain") == 4
    assert sample(fams, "wharf_bytes_total", listener="plain", direction="up") == 400
    assert sample(fams, "wharf_bytes_total", listener=odd, direction="down") == 10
    assert sample(fams, "wharf_streams_active", listener=odd) == 0
    for m in (a, b):
        assert sample(fams, "wharf_upstream_connects_total", group="plain",
                      upstream=m.spec) == 2
        assert sample(fams, "wharf_upstream_down", group="plain", upstream=m.spec) == 0
    assert fams["wharf_upstream_connect_failures_total"]["type"] == "counter"
    # a family per kind of listener: here none is UDP, none carries streams
    assert fams["wharf_datagrams_total"]["samples"] == {}
    assert fams["wharf_connections_total"]["samples"] == {}

    # a reload that takes effect, then one refused
    w.reload(conf)
    fams = metrics(sport)
    assert sample(fams, "wharf_reloads_total") == 1
    assert sample(fams, "wharf_reloads_failed_total") == 0
    w.reload("daemon = false;\nuser = \"nobody\";\npid = \"logs/wharf.pid\";\n"
             "error_log = \"logs/error.log\";\nfoo bar;\n", expect_change=False)
    wait_for(lambda: sample(metrics(sport), "wharf_reloads_failed_total") == 1, 5,
             what="the failed reload counted")
    assert sample(metrics(sport), "wharf_reloads_total") == 1
    assert 'syntax error near "foo bar;" in %s:5' % w.conf_path in w.log()
    w.set_conf(conf)

    # a worker killed is started again, and counted (not one of the old
    # generation, still draining: that one is not replaced)
    wait_for(lambda: len(w.workers()) == 1, 10, what="the old worker gone")
    victim = w.workers()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in w.workers() and len(w.workers()) == 1, 5,
             what="a new worker")
    fams = metrics(sport)
    assert sample(fams, "wharf_worker_restarts_total") == 1
    # counters survive: the new worker adds to the dead one's
    assert echo_roundtrip(w.addr("plain"), b"z")["ok"]
    wait_for(lambda: sample(metrics(sport), "wharf_streams_accepted_total",
                            listener="plain") == 5, 5, what="the fifth stream counted")
    r = w.run("-S")
    assert r.returncode == 0, r.stderr
    assert re.match(r"master %d: started \d+, reloads 1 \(failed 1\), worker restarts 1\n"
                    % w.pid, r.stdout), r.stdout


def as_nobody():
    """preexec_fn: drop to nobody:nogroup with no supplementary groups."""
    import grp
    import pwd
    uid = pwd.getpwnam("nobody").pw_uid
    gid = grp.getgrnam("nogroup").gr_gid

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop


@pytest.fixture
def public_dir():
    """A folder nobody may enter (pytest's tmp_path is root's only)."""
    d = tempfile.mkdtemp(prefix="wharf-metrics-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.deadline(60)
def test_stats_as_nobody_without_reading_the_key(wharf, public_dir):
    from pathlib import Path
    d = Path(public_dir)
    crt, key = make_cert(d, "srv", "metrics.example")
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    os.chmod(crt, 0o644)
    conf = {"pid": str(d / "wharf.pid"),
            "listeners": [tls_listener("tls", "echo", free_port(), [cert_entry((crt, key))])]}
    w = wharf(conf)
    s = connect(w.addr("tls"))        # not TLS: one stream, refused
    s.sendall(b"plain text\r\n\r\n")
    recv_until_eof(s, timeout=5)
    s.close()
    w.wait_stat("tls", "accepted", lambda v: v == 1)
    # the same file where nobody may read it; the binary too (its tree may be closed)
    shutil.copy(w.conf_path, d / "wharf.conf")
    os.chmod(d / "wharf.conf", 0o644)
    binary = d / "wharf"
    shutil.copy(WHARF, binary)
    os.chmod(binary, 0o755)

    def run(*args):
        return subprocess.run([str(binary), "-p", str(d), "-c", str(d / "wharf.conf")]
                              + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=10, preexec_fn=as_nobody(),
                              stdin=subprocess.DEVNULL)

    # the key is out of reach indeed: a full load fails
    r = run("-t")
    assert r.returncode == 1 and str(key) in r.stderr, (r.returncode, r.stderr)
    r = run("-S")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("master %d: " % w.pid), r.stdout
    st = parse_stats(r.stdout)["tls"]
    assert st["accepted"] == 1 and st["bad_input"] == 1, r.stdout


def run_wharf(*args):
    return subprocess.run([str(WHARF)] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=10,
                          stdin=subprocess.DEVNULL)


def test_version_lists_every_library():
    r = run_wharf("-V")
    assert r.returncode == 0, r.stderr
    for lib in LIBS:
        m = re.search(r"^built with %s (\d+\.\d+\S*)( \(running with (\d+\.\d+\S*)\))?$" % lib,
                      r.stderr, re.M)
        assert m, (lib, r.stderr)
        # every one but libconfig says which version runs
        assert bool(m.group(2)) == (lib != "libconfig"), (lib, r.stderr)


def test_quiet_test_and_option_errors(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text('daemon = false;\nlisteners = ( { tag = "t"; listen = "127.0.0.1"; '
                    'port = %d; upstream = "echo"; } );\n' % free_port())
    r = run_wharf("-p", str(tmp_path), "-c", str(good), "-t", "-q")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = run_wharf("-p", str(tmp_path), "-c", str(good), "-t")
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr

    bad = tmp_path / "bad.conf"
    bad.write_text('daemon = false;\n# a comment\n\nworker_processes = 1;\n'
                   '   foo = ;   # stray\n')
    r = run_wharf("-p", str(tmp_path), "-c", str(bad), "-t", "-q")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == ('wharf: [emerg] syntax error near "foo = ;" in %s:5\n'
                        'wharf: configuration file %s test failed\n' % (bad, bad)), r.stderr

    bad.write_text('daemon = false;\nlisteners = ( {\n')
    r = run_wharf("-p", str(tmp_path), "-c", str(bad), "-t", "-q")
    assert r.returncode == 1, r
    assert "syntax error at the end of the file in %s:3\n" % bad in r.stderr, r.stderr

    for opt in ("-s", "-c", "-p"):
        r = run_wharf(opt)
        assert r.returncode == 1, (opt, r)
        assert r.stderr == 'wharf: option "%s" requires parameter\n' % opt, (opt, r.stderr)

    r = run_wharf("-p", str(tmp_path), "-c", str(tmp_path), "-t")
    assert r.returncode == 1, r
    assert 'open() "%s" failed (Is a directory)' % tmp_path in r.stderr, r.stderr
