"""How often a traced ``arlib`` command climbs back up arlib's import graph (issue 23's measure).

The layering is read from the import graph of the tree the command runs on (``grimp``, which
``lint-imports`` uses; every import statement, also those inside functions): a module's *height* is
the length of the longest chain of imports below it, modules that import each other sharing one
height. The command (default: ``arlib train --profile smoke --eps 8`` into a fresh temporary results
store) runs in this process under ``sys.setprofile``; the module of every call into an ``arlib``
function is recorded, repeats collapsed, and a *climb* is a step of that sequence to a module
higher than the one before (e.g. ``store`` -> ``train``: the path goes back up to the trainer).

Reported: the modules visited, the climbs (total steps and distinct ``from -> to`` pairs) and, for
every module climbed back to, how often. Run it against another checkout by putting that checkout
first on ``PYTHONPATH`` (the layering and the traced code are then both that checkout's)::

    ARLIB_DATA=../shared/data .venv/bin/python benchmarks/trace_climbs.py
    PYTHONPATH=/tmp/before05 ARLIB_DATA=../shared/data .venv/bin/python benchmarks/trace_climbs.py
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path


def heights(package: str = "arlib") -> dict[str, int]:
    """Each module's height in the import graph of ``package`` (its modules, not its subpackages' inside ``__init__``)."""
    import grimp

    graph = grimp.build_graph(package, cache_dir=None)
    mods = sorted(graph.modules)
    imports = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in graph.modules} - {m} for m in mods}
    # Strongly connected components (Tarjan): modules that import each other are one layer.
    index, low, stack, on, comp, n = {}, {}, [], set(), {}, [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in imports[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on.discard(w)
                comp[w] = v
                if w == v:
                    break

    sys.setrecursionlimit(10000)
    for m in mods:
        if m not in index:
            visit(m)
    below = collections.defaultdict(set)
    for m in mods:
        below[comp[m]] |= {comp[i] for i in imports[m] if comp[i] != comp[m]}
    memo: dict[str, int] = {}

    def h(c):
        if c not in memo:
            memo[c] = 1 + max((h(b) for b in below[c]), default=-1)
        return memo[c]

    return {m: h(comp[m]) for m in mods}


def trace(argv: list[str]) -> tuple[list[str], list[tuple[str, str]], int]:
    """What ``arlib <argv>`` calls in arlib: the collapsed sequence of modules, the direct calls between modules, the exit code.

    Only calls made by arlib code itself count (not the import of a module, nor arlib code that a library calls
    back, such as a network's ``forward`` run by ``nn.Module.__call__``).
    """
    import arlib
    from arlib import cli

    pkg = str(Path(arlib.__file__).resolve().parent) + os.sep
    names: dict[str, str | None] = {}
    seq: list[str] = []
    calls: list[tuple[str, str]] = []

    def module_of(code) -> str | None:
        if code.co_name == "<module>":
            return None
        f = code.co_filename
        if f not in names:
            p = str(Path(f).resolve())
            names[f] = "arlib." + p[len(pkg) : -3].replace(os.sep, ".").removesuffix(".__init__") if p.startswith(pkg) and p.endswith(".py") else None
        return names[f]

    # A frame is on the path when every frame between it and cli.main is arlib code (or the standard library's
    # plumbing that runs it: contextlib's with-blocks, dataclasses' generated methods, functools' wrappers).
    on_path: dict[int, bool] = {}
    transparent = ("contextlib.py", "functools.py", "<string>")

    def profile(frame, event, arg):
        if event == "return":
            on_path.pop(id(frame), None)
            return
        if event != "call":
            return
        parent = frame.f_back
        m = module_of(frame.f_code)
        if not on_path and m == "arlib.cli":  # the entry, cli.main
            on_path[id(frame)] = True
            seq.append(m)
            return
        inherited = parent is not None and on_path.get(id(parent), False)
        if m is None:
            on_path[id(frame)] = inherited and frame.f_code.co_filename.endswith(transparent)
            return
        on_path[id(frame)] = inherited
        if not inherited:  # code run at import, or arlib code a library calls back (a network's forward)
            return
        caller = parent
        while caller is not None and module_of(caller.f_code) is None:
            caller = caller.f_back
        c = module_of(caller.f_code) if caller is not None else None
        if c is not None and c != m:
            calls.append((c, m))
        if seq[-1] != m:
            seq.append(m)

    sys.setprofile(profile)
    try:
        rc = cli.main(argv)
    finally:
        sys.setprofile(None)
    return seq, calls, rc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("args", nargs="*", help="the arlib command (default: train --profile smoke --eps 8 --quiet)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args()
    argv = a.args or ["train", "--profile", "smoke", "--eps", "8", "--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ARLIB_RESULTS"] = tmp
        os.environ.setdefault("ARLIB_NO_DOWNLOAD", "1")
        seq, calls, rc = trace(argv)
    height = heights()
    import arlib

    def up(x, y):
        return height.get(y, -1) > height.get(x, -1)

    climbs = [(x, y) for x, y in zip(seq, seq[1:]) if up(x, y)]
    upward = [(x, y) for x, y in calls if up(x, y)]
    out = {
        "arlib": str(Path(arlib.__file__).resolve().parent),
        "command": "arlib " + " ".join(argv),
        "exit": rc,
        "modules_visited": sorted(set(seq)),
        "steps": len(seq) - 1,
        "climbs": len(climbs),
        "distinct_climbs": sorted({f"{x} -> {y}" for x, y in climbs}),
        "climbed_back_to": dict(collections.Counter(y for _, y in climbs).most_common()),
        "upward_calls": len(upward),
        "distinct_upward_calls": dict(collections.Counter(f"{x} -> {y}" for x, y in upward).most_common()),
        "heights": {m: height[m] for m in sorted(set(seq)) if m in height},
    }
    if a.json:
        print(json.dumps(out, indent=1))
        return
    short = {m: m.removeprefix("arlib.") for m in height}
    print(f"{out['command']} (arlib at {out['arlib']}, exit {rc})")
    print(f"  {len(out['modules_visited'])} modules visited, {out['steps']} steps from one module to another, {out['climbs']} of them climbs")
    print(f"  distinct climbs ({len(out['distinct_climbs'])}): " + ", ".join(c.replace("arlib.", "") for c in out["distinct_climbs"]))
    print("  climbed back to: " + ", ".join(f"{short.get(m, m)} {n}x" for m, n in out["climbed_back_to"].items()))
    print(
        f"  direct calls from a module to a higher one: {out['upward_calls']} ("
        + ", ".join(f"{c.replace('arlib.', '')} {n}x" for c, n in out["distinct_upward_calls"].items())
        + ")"
    )
    print("  heights: " + ", ".join(f"{short[m]} {h}" for m, h in out["heights"].items()))


if __name__ == "__main__":
    main()
