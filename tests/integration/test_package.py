"""The Debian package, built and installed on the machine the suite runs on.

The tree (tracked and new files, not objs/) is copied to a temporary folder
and built there with `dpkg-buildpackage -us -uc -b`, once for the module;
the .deb is installed with `dpkg -i`, looked at, and purged at the end,
with the wharf user removed again if the package made it, so the machine
is left as it was.  No systemd runs here (nor in CI): the maintainer
scripts must cope, and the unit is judged offline by
`systemd-analyze security --offline=true`.

Root only (dpkg -i); skipped under a sanitizer build, whose suite does not
use the package: the build compiles the tree once more, a minute or two.
"""
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, SANITIZED

pytestmark = [
    pytest.mark.deadline(600),
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root"),
    pytest.mark.skipif(SANITIZED, reason="the package is built from source, not from "
                                         "WHARF_BIN: the plain run tests it"),
]

UNIT = Path("/lib/systemd/system/wharf.service")
MAX_EXPOSURE = 3.0


def run(*args, timeout=60, **kw):
    return subprocess.run([str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                          errors="replace", timeout=timeout, **kw)


def installed(pkg):
    r = run("dpkg-query", "-W", "-f=${Status}", pkg)
    return r.returncode == 0 and "ok installed" in r.stdout


def version():
    m = re.search(r'#define WH_VERSION "([^"]+)"', (REPO / "src/core/wh_core.h").read_text())
    return m.group(1)


def copy_tree(dst):
    """What a clone holds, with local edits: never objs/ or a stale .deb."""
    r = run("git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if r.returncode == 0:
        for name in r.stdout.split("\0"):
            src = REPO / name
            if name and src.is_file():
                (dst / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst / name)
    else:
        shutil.copytree(REPO, dst, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("objs*", "Makefile", ".git"))


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    if installed("wharf"):
        pytest.skip("a wharf package is installed here already: not replacing it")
    had_user = user_exists("wharf")
    had_group = run("getent", "group", "wharf").returncode == 0
    top = tmp_path_factory.mktemp("package")
    src = top / "wharf"
    src.mkdir()
    copy_tree(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 1))
    r = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, env=env, timeout=540)
    assert r.returncode == 0, r.stdout[-6000:]
    deb = top / ("wharf_%s_amd64.deb" % version())
    assert deb.is_file(), sorted(p.name for p in top.iterdir())

    r = run("dpkg", "-i", deb, timeout=120)
    try:
        assert r.returncode == 0, r.stdout
        yield deb
    finally:
        r = run("dpkg", "--purge", "wharf", timeout=120)
        if not had_user and user_exists("wharf"):
            run("userdel", "wharf")
        if not had_group:
            run("groupdel", "wharf")    # if userdel left it
        assert r.returncode == 0, r.stdout
        assert not installed("wharf")


def test_files_in_place(package):
    for path in ("/usr/sbin/wharf", "/usr/sbin/wharf-import", "/etc/wharf/wharf.conf",
                 "/etc/logrotate.d/wharf", str(UNIT), "/usr/share/man/man8/wharf.8.gz",
                 "/usr/share/man/man8/wharf-import.8.gz", "/usr/share/man/man5/wharf.conf.5.gz",
                 "/usr/share/doc/wharf/examples/full.conf"):
        assert os.path.isfile(path), path
    assert os.access("/usr/sbin/wharf", os.X_OK)
    r = run("/usr/sbin/wharf-import", "--help")
    assert r.returncode == 0 and "usage" in r.stdout, r.stdout
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "wharf").stdout
    assert "/etc/wharf/wharf.conf" in conffiles, conffiles
    assert "/etc/logrotate.d/wharf" in conffiles, conffiles


def test_user_and_config(package):
    u = pwd.getpwnam("wharf")
    assert 0 < u.pw_uid < 1000, u
    assert u.pw_shell.endswith("nologin") or u.pw_shell.endswith("false"), u
    conf = Path("/etc/wharf/wharf.conf").read_text()
    assert re.search(r'^user = "wharf";', conf, re.M), conf
    r = run("/usr/sbin/wharf", "-t", "-c", "/etc/wharf/wharf.conf")
    assert r.returncode == 0, r.stdout
    assert "test is successful" in r.stdout, r.stdout
    # as the unit's ExecStartPre= runs it
    r = run("/usr/sbin/wharf", "-t", "-q", "-c", "/etc/wharf/wharf.conf")
    assert r.returncode == 0 and r.stdout == "", r.stdout


def test_unit(package):
    unit = UNIT.read_text()
    assert not re.search(r"@[A-Z_]+@", unit), unit
    for line in ("User=wharf", "Group=wharf", "RuntimeDirectory=wharf",
                 "Restart=on-failure", "PIDFile=/run/wharf/wharf.pid",
                 "ExecStart=/usr/sbin/wharf -c /etc/wharf/wharf.conf",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "SystemCallFilter=@system-service"):
        assert re.search("^%s$" % re.escape(line), unit, re.M), line
    assert re.search(r"^ExecStartPre=/usr/sbin/wharf -t -q -c /etc/wharf/wharf.conf$", unit, re.M)
    assert re.search(r"^ExecReload=.* -s reload$", unit, re.M)
    r = run("systemd-analyze", "security", "--offline=true", UNIT)
    m = re.search(r"Overall exposure level for wharf.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout


def test_logrotate_signals_pid_file(package):
    # a signal, not `wharf -s reopen`, which reads the configuration
    text = "\n".join(l for l in Path("/etc/logrotate.d/wharf").read_text().splitlines()
                     if not l.lstrip().startswith("#"))
    assert "/var/log/wharf/" in text
    assert 'kill -USR1 "$(cat /run/wharf/wharf.pid)"' in text, text
    assert "wharf -s" not in text, text


def test_lintian_no_errors(package):
    r = run("lintian", package, timeout=300)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E: ")]
    assert not errors, r.stdout
