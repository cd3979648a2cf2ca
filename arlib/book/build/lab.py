"""``arlib lab`` (``make lab``): the chapters as notebooks in JupyterLab, on the committed results.

Usage::

    arlib lab                      # JupyterLab with the first chapter open; every chapter is a notebook
    arlib lab B5_smoothing         # that chapter open
    arlib lab --profile cpu-high   # the copies read another results store (an injected parameters cell)
    arlib lab --no-browser --port 8890

The chapters' sources are MyST Markdown notebooks (``notebooks/*.md``, tracked). JupyterLab gets
working copies of them, ``lab/<chapter>.ipynb`` (gitignored), converted by jupytext, because

* an ``.ipynb`` opens as a notebook by default (a ``.md`` opens in the text editor);
* a notebook keeps its outputs, so after a page reload the ε slider is drawn again from the
  kernel's widget models (the Markdown source keeps none, and its widgets broke on reload);
* autosave writes the copy, never the tracked source, so the next book is not stamped ``+dirty``.

Their parameters are the notebooks' defaults (the committed ``cpu`` results, ``ensure = False``:
Run All trains nothing and names the runs that are missing). A copy is made once and then left
alone, with the user's edits and outputs; when its source or ``--profile`` changed since, the old
copy is moved to ``lab/.previous/`` and a fresh one is made. Edits to a copy stay in ``lab/``: the
chapter's source is ``notebooks/<chapter>.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .pipeline import TEMPLATE_DIR, TEMPLATE_SUFFIX, toc_chapters
from ..params import BY_NAME, check_values
from .rerun import book_root, resolve_chapter

__all__ = ["LAB_DIR", "lab_copies", "lab_command", "run_lab"]

LAB_DIR = "lab"  # under the book's root; gitignored
PREVIOUS_DIR = ".previous"  # replaced copies, kept (JupyterLab's file browser hides dot folders)


def _copy(template: Path, profile: str):
    """The working copy of one chapter: the notebook jupytext reads from ``template``, ``profile`` injected unless it is the default."""
    import jupytext
    import nbformat

    nb = jupytext.read(template)
    nb.metadata.pop("jupytext", None)  # a plain notebook, not paired with (and never writing) the source
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    if profile != BY_NAME["profile"].default:  # after the parameters cell, as papermill injects it
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        cell = nbformat.v4.new_code_cell(f"# Injected by arlib lab --profile {profile}\nprofile = {json.dumps(profile)}")
        cell.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(at + 1, cell)
    nb.metadata["arbook_lab"] = {"source": hashlib.sha256(template.read_bytes()).hexdigest(), "profile": profile}
    nbformat.validate(nb)
    return nb


def lab_copies(root: Path, lab_dir: Path, profile: str = BY_NAME["profile"].default) -> list[str]:
    """Make or refresh ``lab_dir/<chapter>.ipynb`` for every chapter with a notebook; returns one line per change."""
    import nbformat

    check_values({"profile": profile})
    lab_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for name in toc_chapters(root):
        template = root / TEMPLATE_DIR / f"{name}{TEMPLATE_SUFFIX}"
        if not template.is_file():
            continue
        dest = lab_dir / f"{name}.ipynb"
        want = {"source": hashlib.sha256(template.read_bytes()).hexdigest(), "profile": profile}
        if dest.is_file():
            try:
                have = nbformat.read(dest, as_version=4).metadata.get("arbook_lab")
            except Exception:  # not a notebook any more: replaced like a stale copy
                have = None
            if have == want:
                continue
            previous = lab_dir / PREVIOUS_DIR / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
            previous.parent.mkdir(exist_ok=True)
            shutil.move(dest, previous)
            lines.append(
                f"lab: {dest.name} refreshed from {template.relative_to(root)} (the old copy: "
                f"{previous.relative_to(root) if previous.is_relative_to(root) else previous})"
            )
        nbformat.write(_copy(template, profile), dest)
    return lines


def lab_command(lab_dir: Path, chapter: str | None, port: int | None = None, browser: bool = True) -> list[str]:
    """The ``jupyter lab`` command line: served from ``lab_dir`` on 127.0.0.1, ``chapter`` open."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={lab_dir}",
        "--ServerApp.ip=127.0.0.1",
        # no calls home: no news feed, no update check (the book works offline, so does its lab)
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI and containers run as root, which jupyter refuses without this
        cmd.append("--ServerApp.allow_root=True")
    if chapter:
        cmd.append(f"--LabApp.default_url=/lab/tree/{chapter}.ipynb")
    if port is not None:
        cmd += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not browser:
        cmd.append("--ServerApp.open_browser=False")
    return cmd


def run_lab(
    chapter: str | None = None,
    profile: str = BY_NAME["profile"].default,
    port: int | None = None,
    browser: bool = True,
    lab_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> None:
    """Make the working copies, then replace this process with JupyterLab (Ctrl-C stops it, as ``jupyter lab``)."""
    import importlib.util

    from ...errors import ConfigError

    root = book_root(root)
    chapter = resolve_chapter(root, chapter) if chapter else toc_chapters(root)[0]
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("JupyterLab is not installed: `make venv` (or pip install -e '.[book]') installs it")
    lab_dir = Path(lab_dir) if lab_dir is not None else root / LAB_DIR
    for line in lab_copies(root, lab_dir.resolve(), profile):
        print(line, flush=True)
    print(f"lab: the chapters as notebooks in {lab_dir} (profile {profile}; nothing is trained unless a chapter sets ensure = True)", flush=True)
    cmd = lab_command(lab_dir.resolve(), chapter, port, browser)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
