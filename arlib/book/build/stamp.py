"""The build stamp under every page of the book: the commit, the date and the profile it was built from.

``arlib book`` (:mod:`arlib.book.build.pipeline`) puts the stamp in ``$ARBOOK_BUILD_STAMP`` for the
``jupyter-book build`` it runs; this module is also the Sphinx extension (listed in
``_config.yml``) that appends it to the theme's footer of every page. A ``jupyter-book build``
run by hand gets a stamp computed here, with the profile read from the executed chapters.

The commit is the repository's ``HEAD``, with ``+dirty`` when the files the book is made of
(``arlib/``, ``notebooks/``, ``book/``, ``_config.yml``, ``_toc.yml``) differ from it, the same
mark a run's ``provenance.json`` carries when it was trained from uncommitted code.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from pathlib import Path

from ...gitinfo import commit_of

STAMP_ENV = "ARBOOK_BUILD_STAMP"
BOOK_SOURCES = ("arlib", "notebooks", "book", "_config.yml", "_toc.yml")


def executed_profiles(root: Path) -> list[str]:
    """The profiles the executed chapters (``book/executed/*.ipynb``) were run with, sorted."""
    found = set()
    for nb in (root / "book" / "executed").glob("*.ipynb"):
        try:
            prof = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {}).get("arbook", {}).get("profile")
        except (OSError, ValueError):
            continue
        if prof:
            found.add(str(prof))
    return sorted(found)


def build_stamp(root: str | os.PathLike, profile: str | None = None, today: _dt.date | None = None) -> dict[str, str]:
    """``{"commit", "date", "profile"}`` for the book at ``root``; ``profile`` default: the executed chapters' (comma-joined)."""
    root = Path(root)
    commit = commit_of(root, BOOK_SOURCES, short=True)
    date = (today or _dt.datetime.now(_dt.timezone.utc).date()).isoformat()
    return {"commit": commit, "date": date, "profile": profile or ", ".join(executed_profiles(root)) or "unknown"}


def stamp_text(stamp: dict[str, str]) -> str:
    """The footer line, e.g. ``Built from commit 1a2b3c4 on 2026-12-01, profile cpu.``"""
    dirty = " (with uncommitted changes)" if stamp["commit"].endswith("+dirty") else ""
    return f"Built from commit {stamp['commit']}{dirty} on {stamp['date']}, profile {stamp['profile']}."


# -- the Sphinx extension ---------------------------------------------------------------------


def _current_stamp(app) -> dict[str, str]:
    raw = os.environ.get(STAMP_ENV)
    if raw:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return build_stamp(app.srcdir)


def _add_to_footer(app, pagename, templatename, context, doctree) -> None:
    stamp = getattr(app, "arbook_stamp", None) or _current_stamp(app)
    line = f'<p class="arbook-stamp">{html.escape(stamp_text(stamp))}</p>'
    context["theme_extra_footer"] = (context.get("theme_extra_footer") or "") + line


def _remember(app) -> None:
    app.arbook_stamp = _current_stamp(app)


def _intro_follows_chapters(app, env, added, changed, removed) -> list[str]:
    """Re-render the opening page whenever an executed chapter changed: it pastes the claims ledger
    from the implementation chapter (MyST-NB ``glue``), which Sphinx does not count as a dependency."""
    root = app.config.root_doc
    if root in env.found_docs and any(d.startswith("book/executed/") for d in (*added, *changed)):
        return [root]
    return []


def setup(app):
    app.connect("builder-inited", _remember)
    app.connect("env-get-outdated", _intro_follows_chapters)
    app.connect("html-page-context", _add_to_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
