"""The handshake between a book build and the chapters it executes.

``arlib book`` (:mod:`arlib.book.build.pipeline`) runs each chapter with two environment variables set:
``$ARBOOK_CHAPTER``, the chapter's name (its figure and table numbers), and
``$ARBOOK_INPUTS_FILE``, a file the chapter appends every results folder it reads to
(:func:`record_inputs`). The build hashes those folders' result files
(:func:`inputs_fingerprint`) into the chapter's stamp, so the chapter re-executes when its runs
change. The chapters' content modules (report, chapter, speed) import this module, never the build.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..store import RESULT_FILES, default_root, sha256_file

INPUTS_ENV = "ARBOOK_INPUTS_FILE"  # set while a chapter runs; see record_inputs
CHAPTER_ENV = "ARBOOK_CHAPTER"  # the running chapter's name, for its figure numbers and captions (arlib.book.chapter)


def record_inputs(*paths: str | os.PathLike) -> None:
    """Declare files or directories (results-store run dirs) the running chapter read.

    Called from inside a chapter's kernel. During ``build_book`` the paths are appended
    to the file named by ``$ARBOOK_INPUTS_FILE`` and become part of the chapter's stamp,
    so the chapter re-executes when any of them changes. Outside a book build (plain
    Jupyter, papermill by hand) it does nothing.
    """
    target = os.environ.get(INPUTS_ENV)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as f:
        for p in paths:
            f.write(str(Path(p).resolve()) + "\n")


def inputs_fingerprint(paths, root: str | os.PathLike | None = None) -> dict:
    """What a book chapter's stamp must hold about the results it read.

    ``paths`` are the run folders (or single files) a chapter reported reading. Returns
    ``{"results_root": <resolved root>, "sha256": {<path>: <hex digest> | None}}`` with one
    entry per result file of each run folder (:data:`RESULT_FILES`, the checkpoint
    excluded) and paths relative to ``root`` (default :func:`default_root`, i.e.
    ``$ARLIB_RESULTS``) where they are under it. A missing file maps to None. Switching
    the results root therefore changes the stamp even when last time's files are untouched.
    """
    root = Path(root if root is not None else default_root()).resolve()
    digests: dict[str, str | None] = {}
    for p in sorted({Path(p).resolve() for p in paths}):
        files = [p / n for n in RESULT_FILES] if p.is_dir() else [p]
        for f in files:
            key = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
            if f.is_file():
                digests[key] = sha256_file(f)
            elif not p.is_dir():
                digests[key] = None
    return {"results_root": str(root), "sha256": digests}
