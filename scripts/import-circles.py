#!/usr/bin/env python3
"""Import circles among the files of src/ (run from the project root): a file-level graph of
`crate::…` / `super::…` / `self::…` paths, strongly connected components of more than one file.
Exit 1 when a circle exists. Usage: scripts/import-circles.py [SRC_DIR] (run by scripts/test.sh)"""
import os, re, sys
# file-level import graph of src/: `crate::a::b` / `super::x` paths resolved to files
root = sys.argv[1] if len(sys.argv) > 1 else "src"; files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs") and not f.endswith("tests.rs"):
            p = os.path.join(d, f); m = p[len(root)+1:-3].split(os.sep)
            if m[-1] == "mod": m = m[:-1]
            if m == ["lib"] or m == ["main"]: m = []
            files[tuple(m)] = p
def resolve(mod, parts):
    if parts and parts[0] == "crate": path = list(parts[1:])
    elif parts and parts[0] == "super": path = list(mod[:-1]) + list(parts[1:])
    elif parts and parts[0] == "self": path = list(mod) + list(parts[1:])
    else: return None
    while path:
        if tuple(path) in files: return tuple(path)
        path.pop()
    return None
edges = {m: set() for m in files}
for m, p in files.items():
    src = open(p, encoding="utf-8", errors="replace").read()
    src = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", src, flags=re.S)
    for u in re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", src):
        t = resolve(m, u.split("::"))
        if t is not None and t != m and not (len(t) < len(m) and m[:len(t)] == t): edges[m].add(t)
    for g in re.findall(r"use\s+((?:crate|super)::[\w:]*)\{([^}]*)\}", src):
        for name in re.split(r"\s*,\s*", g[1]):
            t = resolve(m, (g[0] + name.split(" ")[0]).split("::"))
            if t is not None and t != m and not (len(t) < len(m) and m[:len(t)] == t): edges[m].add(t)
# Tarjan SCC
idx, low, st, on, sccs, n = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        c = []
        while True:
            w = st.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(c)
for v in list(edges):
    if v not in idx: sc(v)
for c in sccs: print("FAIL  import circle: " + ", ".join(files[x] for x in sorted(c)))
if not sccs: print(f"ok    no import circle among {len(files)} files")
sys.exit(1 if sccs else 0)
