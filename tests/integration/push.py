#!/usr/bin/env python3
"""interop/push.py, with a writer that outlasts a slow peer.

push.py sets a 1 s timeout on each socket for its reader's sake, and its
writer thread shares it: when the relay's window stays full for a second
(a loaded machine, a dozen 10 MiB streams at once) send() times out, the
writer ends without a word and the stream stalls until push.py's own
timeout, a failure that is the client's, not the server's. Here a send
that times out is tried again; the writer still ends when the reader
closes the socket. Everything else is push.py itself, run as it is.
"""
import os
import runpy
import socket
import sys
from pathlib import Path

_send = socket.socket.send


def _patient_send(self, data, *flags):
    while True:
        try:
            return _send(self, data, *flags)
        except socket.timeout:
            continue


socket.socket.send = _patient_send

if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[2]
    shared = Path(os.environ.get("WHARF_SHARED") or (repo.parent / "shared"))
    sys.argv[0] = str(shared / "interop" / "push.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
