"""arlib's layers: the core and the measurement modules never import the book layer (``arlib.book``).

Two independent checks: the ``import-linter`` contracts in ``pyproject.toml`` (every import
statement, wherever it stands; the tests below check that the contracts list every module), and
what importing each module really loads, in a fresh interpreter (which also catches an import
built at run time). ``cli`` is the one exception, by design: it is the
``arlib`` command over all three layers and imports ``arlib.book.build.pipeline`` inside ``arlib book``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
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


def below_the_book() -> list[Path]:
    return [p for p in sorted(PKG.rglob("*.py")) if not module_name(p).startswith(BOOK) and module_name(p) not in ENTRY_POINTS and module_name(p) != "arlib"]


def is_book(mod: str) -> bool:
    return mod == BOOK or mod.startswith(BOOK + ".")


def test_the_layers_are_where_the_module_map_says():
    book = {module_name(p) for p in PKG.rglob("*.py") if is_book(module_name(p))}
    content = ("paper", "report", "compare", "speed", "claims", "masking", "plots", "widgets", "chapter", "handshake", "params")
    build = ("build", "build.pipeline", "build.rerun", "build.lab", "build.stamp", "build.slider_figures", "build.offline_search", "build.vendor")
    assert {f"{BOOK}.{m}" for m in content + build} == book - {BOOK}
    core_and_measurement = {module_name(p) for p in below_the_book()}
    assert {"arlib.config", "arlib.train", "arlib.grid", "arlib.store", "arlib.spectral", "arlib.analysis", "arlib.bound"} <= core_and_measurement
    # arlib/__init__.py names every module that exists (and no module that does not)
    doc = (PKG / "__init__.py").read_text()
    for mod in sorted(core_and_measurement | book | ENTRY_POINTS):
        if mod in (BOOK, f"{BOOK}.build") or mod.startswith("arlib.models."):  # the subpackages are named as such; models' files are the registry's
            continue
        assert f"``{mod.split('.')[-1]}``" in doc, f"arlib/__init__.py does not name {mod}"
    assert "``evaluate``" not in doc


def contract(name_start: str) -> dict:
    data = tomllib.loads((PKG.parent / "pyproject.toml").read_text())
    (found,) = [c for c in data["tool"]["importlinter"]["contracts"] if c["name"].startswith(name_start)]
    return found


def test_the_import_contracts_name_every_module_they_govern():
    # lint-imports (run by .ci/run) checks the contracts; a module missing from a contract's list
    # would escape it silently, so the lists must equal the modules that exist.
    core = contract("core and measurement never import the book layer")
    assert set(core["source_modules"]) == {module_name(p) for p in below_the_book() if not module_name(p).startswith("arlib.models.")}
    assert core["forbidden_modules"] == [BOOK]
    content = contract("the book's content never imports its build")
    book_modules = {module_name(p) for p in (PKG / "book").glob("*.py") if p.name != "__init__.py"}
    assert set(content["source_modules"]) == book_modules
    assert content["forbidden_modules"] == [f"{BOOK}.build"]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[test]')")
    out = subprocess.run([str(lint), "--no-cache"], cwd=PKG.parent, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


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
