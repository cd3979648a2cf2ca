"""arlib's layers: the core and the measurement modules never import the book layer (``arlib.book``).

Two independent checks: every ``import`` statement of the source, wherever it stands (module
level or inside a function, absolute or relative), read with ``ast``; and what importing each
module really loads, in a fresh interpreter. ``cli`` is the one exception, by design: it is the
``arlib`` command over all three layers and imports ``arlib.book.build`` inside ``arlib book``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "arlib"
BOOK = "arlib.book"
ENTRY_POINTS = {"arlib.cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, resolved to an absolute name."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # `from . import book` names a module
    return found


def below_the_book() -> list[Path]:
    return [p for p in sorted(PKG.rglob("*.py")) if not module_name(p).startswith(BOOK) and module_name(p) not in ENTRY_POINTS and module_name(p) != "arlib"]


def is_book(mod: str) -> bool:
    return mod == BOOK or mod.startswith(BOOK + ".")


def test_the_layers_are_where_the_module_map_says():
    book = {module_name(p) for p in PKG.rglob("*.py") if is_book(module_name(p))}
    assert {f"{BOOK}.{m}" for m in ("paper", "report", "compare", "speed", "claims", "plots", "widgets", "chapter", "build", "vendor")} <= book
    core_and_measurement = {module_name(p) for p in below_the_book()}
    assert {"arlib.config", "arlib.train", "arlib.grid", "arlib.store", "arlib.spectral", "arlib.analysis", "arlib.bound"} <= core_and_measurement
    # arlib/__init__.py names every module that exists (and no module that does not)
    doc = (PKG / "__init__.py").read_text()
    for mod in sorted(core_and_measurement | book | ENTRY_POINTS):
        if mod == BOOK or mod.startswith("arlib.models."):  # the subpackages are named as such; models' files are the registry's
            continue
        assert f"``{mod.split('.')[-1]}``" in doc, f"arlib/__init__.py does not name {mod}"
    assert "``evaluate``" not in doc


def test_no_core_or_measurement_module_imports_the_book_layer():
    offenders = {module_name(p): sorted(m for m in imported_modules(p) if is_book(m)) for p in below_the_book()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_reader_sees_relative_and_nested_imports():
    # the reader itself, on the one module that is allowed to reach the book
    assert "arlib.book.build" in imported_modules(PKG / "cli.py")
    assert "arlib.bound" in imported_modules(PKG / "book" / "report.py")


@pytest.mark.timeout(300)
def test_importing_core_and_measurement_modules_loads_no_book_module():
    mods = [module_name(p) for p in below_the_book()]
    code = (
        "import importlib, json, sys\n"
        f"loaded = {{}}\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "    loaded[m] = sorted(k for k in sys.modules if k == 'arlib.book' or k.startswith('arlib.book.'))\n"
        "print(json.dumps(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PKG.parent, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(loaded) == set(mods)
    assert {m: v for m, v in loaded.items() if v} == {}
