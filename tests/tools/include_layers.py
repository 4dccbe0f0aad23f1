#!/usr/bin/env python3
"""include_layers.py -- the folders of src/ must form layers.

A folder depends on another when one of its files includes (#include "x.h")
a header that lives in the other. That graph must have no cycle: each
folder builds on the ones below it and never reaches back up, so a folder
can be read, tested and changed knowing only what is under it. Run by
`make test-unit`; prints the layers, or the cycle with the includes that
make it, and exits 1.

usage: include_layers.py [ROOT]    (ROOT: the repository, by default the one
                                    holding this script)
"""

import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_graph(src):
    files = {}                      # path -> folder
    headers = {}                    # basename -> [folders holding it]
    for folder in sorted(os.listdir(src)):
        d = os.path.join(src, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                files[os.path.join(d, name)] = folder
                if name.endswith(".h"):
                    headers.setdefault(name, []).append(folder)

    edges = {f: {} for f in set(files.values())}   # folder -> {folder: [why]}
    for path, folder in sorted(files.items()):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            where = headers.get(os.path.basename(inc))
            # as the compiler looks: the including file's folder first
            if where is None or folder in where:
                continue
            if len(where) > 1:
                sys.exit("%s: \"%s\" is in more than one folder: %s"
                         % (path, inc, ", ".join(where)))
            edges[folder].setdefault(where[0], []).append(
                "%s includes \"%s\"" % (os.path.relpath(path, os.path.dirname(src)), inc))
    return edges


def find_cycle(edges):
    state = {}                      # folder -> 1 on the path, 2 done
    path = []

    def visit(n):
        state[n] = 1
        path.append(n)
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        path.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def layers(edges):
    depth = {}

    def d(n):
        if n not in depth:
            depth[n] = 1 + max([d(m) for m in edges[n]] or [-1])
        return depth[n]

    for n in edges:
        d(n)
    out = {}
    for n, k in depth.items():
        out.setdefault(k, []).append(n)
    return [sorted(out[k]) for k in sorted(out)]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    edges = folder_graph(os.path.join(root, "src"))
    cycle = find_cycle(edges)
    if cycle:
        print("include cycle between src/ folders: %s" % " -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:]):
            for why in edges[a][b]:
                print("  %s -> %s: %s" % (a, b, why))
        return 1
    print("src/ layers, bottom up: %s" % " < ".join(", ".join(l) for l in layers(edges)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
