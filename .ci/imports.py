#!/usr/bin/env python3
"""Fails if a crate's modules import each other in a circle.

Usage: .ci/imports.py CRATE/src...

For each source tree it builds the import graph from the paths in the code (`use` trees and
`crate::`, `super::`, `self::` and child-module paths; comments and literals left out, test
modules included) between files, and between top-level entries of `src/` (a folder or a
loose file). It prints every circle with the line that makes each step, and exits 1 if there
is one. Standard library only: CI runs it with the system's python3.
"""

import os
import re
import sys
from collections import defaultdict, deque

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# Comments, then literals that could hold `::` or a quote: raw strings, strings, characters.
NOISE = re.compile(
    r"//[^\n]*|/\*.*?\*/|\bb?r(#*)\".*?\"\1|b?\"(?:\\.|[^\"\\])*\"|b?'(?:\\.|[^'\\\n])'", re.S
)
USE = re.compile(r"\buse\s+([^;]+);")
PATH = re.compile(r"\b(?:crate|super|self|" + IDENT + r")(?:\s*::\s*" + IDENT + r")+")
INLINE_MOD = re.compile(r"\bmod\s+(" + IDENT + r")\s*\{")


def modules(src):
    """Module path (tuple) -> file, relative to `src`; lib.rs is the root, main.rs is left out."""
    mods = {}
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)
            parts = rel[:-3].split(os.sep)
            if parts == ["main"]:
                continue
            key = () if parts == ["lib"] else tuple(parts[:-1] if parts[-1] == "mod" else parts)
            mods[key] = rel
    return mods


def blank(m):
    """A comment or literal, replaced by as many newlines so line numbers stay right."""
    return " " + "\n" * m.group(0).count("\n")


def expand(tree):
    """`a::{b::{c, d}, e}` -> ['a::b::c', 'a::b::d', 'a::e']."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+" + IDENT, "", tree))
    brace = tree.find("{")
    if brace < 0:
        return [tree] if tree else []
    head, body = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(body + ","):
        depth += c == "{"
        depth -= c == "}"
        if c == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    return [head + p for part in parts for p in expand(part)]


def inline_modules(text):
    """(start, end, name) of each `mod name { ... }` in `text`, outermost first: inside one,
    `super` is the file's module."""
    found = []
    for m in INLINE_MOD.finditer(text):
        depth = 0
        for i in range(m.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found.append((m.start(), i, m.group(1)))
                break
    return found


def graph(src):
    mods = modules(src)

    def resolve(path):
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in mods:
                return tuple(path[:n])
        return None

    edges = defaultdict(dict)  # module -> {imported module: line of the first use}
    for key, rel in mods.items():
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            text = NOISE.sub(blank, f.read())
        children = {k[-1] for k in mods if len(k) == len(key) + 1 and k[: len(key)] == key}
        inline = inline_modules(text)
        paths = [(m.start(), p) for m in USE.finditer(text) for p in expand(m.group(1))]
        paths += [(m.start(), re.sub(r"\s+", "", m.group(0))) for m in PATH.finditer(text)]
        for at, path in paths:
            here = key + tuple(name for start, end, name in inline if start <= at < end)
            segs = [s for s in path.lstrip(":").split("::") if s and s != "*"]
            if not segs:
                continue
            if segs[0] == "crate":
                target = segs[1:]
            elif segs[0] == "super":
                target = list(here)
                while segs and segs[0] == "super":
                    target, segs = target[:-1], segs[1:]
                target += segs
            elif segs[0] == "self":
                target = list(here) + segs[1:]
            elif segs[0] in children and here == key:
                target = list(key) + segs
            else:
                continue  # another crate, or a name imported earlier
            target = [s for s in target if s != "self"]
            dest = resolve(target)
            if dest is not None and dest != key and dest not in edges[key]:
                edges[key][dest] = text.count("\n", 0, at) + 1
    return mods, edges


def circles(nodes, edges):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def shortest_loop(comp, edges):
    """One shortest circle through the first node of `comp`, staying inside `comp`."""
    start, inside = comp[0], set(comp)
    came_from, queue = {}, deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(edges.get(v, ())):
            if w == start:
                loop = [v]
                while loop[-1] != start:
                    loop.append(came_from[loop[-1]])
                return loop[::-1] + [start]
            if w in inside and w not in came_from:
                came_from[w] = v
                queue.append(w)
    return comp


def check(src):
    if not os.path.isfile(os.path.join(src, "lib.rs")):
        sys.exit(f"{src}: no lib.rs here; give a crate's src directory")
    mods, edges = graph(src)
    name = lambda k: mods[k]
    top = lambda k: k[0] if k else "lib"
    problems = []
    for comp in circles(mods, edges):
        loop = shortest_loop(comp, edges)
        steps = "\n".join(f"    {name(a)}:{edges[a][b]} uses {name(b)}" for a, b in zip(loop, loop[1:]))
        problems.append(f"files {', '.join(name(k) for k in comp)}\n{steps}")
    folders, why = defaultdict(set), {}
    for a, targets in edges.items():
        for b, line in targets.items():
            if top(a) != top(b):
                folders[top(a)].add(top(b))
                why.setdefault((top(a), top(b)), f"{name(a)}:{line} uses {name(b)}")
    for comp in circles({top(k) for k in mods}, folders):
        loop = shortest_loop(comp, folders)
        steps = "\n".join(f"    {a} -> {b}: {why[(a, b)]}" for a, b in zip(loop, loop[1:]))
        problems.append(f"top-level entries {', '.join(comp)}\n{steps}")
    count = sum(len(t) for t in edges.values())
    found = {0: "no import circle", 1: "1 import circle"}.get(len(problems), f"{len(problems)} import circles")
    print(f"{src}: {len(mods)} files, {count} imports between them, {found}")
    for p in problems:
        print(f"  import circle between {p}")
    return not problems


def main(dirs):
    if not dirs:
        sys.exit(__doc__)
    results = [check(d) for d in dirs]  # every tree, so one run shows every circle
    if not all(results):
        sys.stdout.flush()
        print(
            "\nThese modules import each other in a circle. Move what they share into a module\n"
            "that imports none of them (a leaf), or turn the dependency around, so the imports\n"
            "read as layers (see docs/developing.md, \"Where things live\").",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
