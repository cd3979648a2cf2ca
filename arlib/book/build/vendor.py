"""Fetch the JavaScript the offline book serves itself: MathJax and the ipywidgets embedder.

The built HTML must work from ``file://`` with no network, so nothing may come from a
CDN. Three npm packages are fetched with ``npm pack`` (which checks the registry's
integrity hash) into a temporary directory, and only the files the pages load are copied
into ``book/_vendor/``; Sphinx copies that folder into ``_build/html/`` through
``html_extra_path`` (not ``_static/``: Jupyter Book 1 would link every file there from
every page).

=====================================  =====================================================
``book/_vendor/mathjax/``              MathJax 3 ``es5`` build: ``tex-mml-chtml.js`` plus
                                       the pieces it loads on demand (TeX extensions, CHTML
                                       fonts, menu, accessibility, speech maps).
``book/_vendor/requirejs/require.js``  RequireJS, which ``embed-amd.js`` needs.
``book/_vendor/html-manager/``         ``@jupyter-widgets/html-manager`` ``embed-amd.js``
                                       and its font files: renders saved widget state.
=====================================  =====================================================

Versions are pinned: html-manager 1.0.x is the embedder for ipywidgets 8 (1.0.15 ships
with jupyterlab_widgets 3.0.x); MathJax 3.2.2 is what Sphinx 7's default CDN URL
(``mathjax@3``) resolves to. ``VERSIONS.json`` records what is there; a mismatch or a
missing file triggers a fresh fetch.

Usage: ``python -m arlib.book.build.vendor [--force]`` (:func:`arlib.book.build.build_book` calls :func:`ensure_vendored`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ...errors import ArlibError

PACKAGES = {
    "mathjax": "3.2.2",
    "requirejs": "2.3.8",
    "@jupyter-widgets/html-manager": "1.0.15",
}

# Paths, relative to the vendor folder, that the book's pages reference (see _config.yml).
ENTRY_POINTS = (
    "mathjax/tex-mml-chtml.js",
    "requirejs/require.js",
    "html-manager/embed-amd.js",
)

# MathJax's es5 folder also holds other combined bundles and the SVG output (14 MB we never
# load); keep the one bundle Sphinx loads and every component it may pull in lazily.
_MATHJAX_KEEP = ("tex-mml-chtml.js", "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre", "adaptors", "core.js", "startup.js", "loader.js")


class VendorError(ArlibError):
    """The vendored JavaScript could not be fetched."""


def vendor_dir(root: Path) -> Path:
    return Path(root) / "book" / "_vendor"


def is_vendored(root: Path) -> bool:
    """True when every entry point exists and the recorded versions are the pinned ones."""
    dest = vendor_dir(root)
    try:
        recorded = json.loads((dest / "VERSIONS.json").read_text())
    except (OSError, ValueError):
        return False
    return recorded == PACKAGES and all((dest / p).is_file() for p in ENTRY_POINTS)


def _npm_pack(spec: str, workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError("npm is not installed; it is needed once to fetch MathJax and the widget embedder (apt-get install npm)")
    proc = subprocess.run([npm, "pack", spec, "--silent"], cwd=workdir, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise VendorError(f"npm pack {spec} failed: {last}")
    return workdir / proc.stdout.strip().splitlines()[-1]


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def ensure_vendored(root: Path, force: bool = False, quiet: bool = False) -> Path:
    """Fetch the pinned packages into ``book/_vendor`` unless they are already there."""
    dest = vendor_dir(root)
    if not force and is_vendored(root):
        return dest
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    say(f"vendor: fetching {', '.join(f'{k}@{v}' for k, v in PACKAGES.items())} from npm")
    with tempfile.TemporaryDirectory(prefix="arbook-vendor-") as tmp:
        tmp = Path(tmp)
        unpacked = {}
        for name, version in PACKAGES.items():
            tgz = _npm_pack(f"{name}@{version}", tmp)
            out = tmp / name.replace("/", "__")
            with tarfile.open(tgz) as tar:
                tar.extractall(out, filter="data")
            unpacked[name] = out / "package"

        staging = tmp / "_vendor"
        mj = unpacked["mathjax"]
        for rel in _MATHJAX_KEEP:
            _copy(mj / "es5" / rel, staging / "mathjax" / rel)
        _copy(mj / "LICENSE", staging / "mathjax" / "LICENSE")

        _copy(unpacked["requirejs"] / "require.js", staging / "requirejs" / "require.js")

        hm = unpacked["@jupyter-widgets/html-manager"] / "dist"
        for f in hm.iterdir():
            # embed-amd.js resolves its font files relative to itself; the other bundles
            # (standalone embed.js, the library build, source maps) are never loaded.
            if f.name == "embed-amd.js" or f.suffix in {".woff", ".woff2", ".ttf", ".eot", ".svg"}:
                _copy(f, staging / "html-manager" / f.name)
        (staging / "VERSIONS.json").write_text(json.dumps(PACKAGES, indent=1) + "\n")

        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, dest)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    say(f"vendor: wrote {dest} ({size / 1e6:.1f} MB)")
    return dest


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m arlib.book.build.vendor", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    parser.add_argument("--force", action="store_true", help="fetch even if present")
    args = parser.parse_args(argv)
    try:
        ensure_vendored(Path(args.root), force=args.force)
    except ArlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
