"""The commit a tree was at, and whether some of its paths had uncommitted changes.

One answer for every record of it: a run's provenance (the code that trained it, paths ``arlib``)
and the book's build stamp (the book's sources).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit_of(root: str | Path, paths: tuple[str, ...], short: bool = False) -> str:
    """``<commit>`` of the checkout at ``root``, ``+dirty`` appended if a tracked file under ``paths`` differs from it;
    ``unknown`` outside a git checkout (an installed package, a tarball)."""
    root = Path(root)
    commit = _git(root, "rev-parse", *(["--short=7"] if short else []), "HEAD")
    if not commit:
        return "unknown"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *paths)
    return commit + ("+dirty" if dirty else "")
