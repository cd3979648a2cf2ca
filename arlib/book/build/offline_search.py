"""Search results with snippets in the book opened from disk (``file://``).

Sphinx's search page finds pages in ``searchindex.js`` (a script, which loads from disk) but
fetches every result page to cut a snippet from it, and a browser refuses ``fetch`` of
``file://`` URLs: results come without snippets and each one logs "Failed to fetch". This
Sphinx extension (listed in ``_config.yml``) writes the text of every page into
``arbook-search-texts.js`` at the end of the build; ``book/_extra/arbook-search.js``, on the search
page opened from disk, answers the search's fetches from it. Served over HTTP
(``arlib book --serve``), the search works as Sphinx wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path

TEXTS_FILE = "arbook-search-texts.js"
MAX_CHARS = 50_000  # per page; snippets come from the first occurrence of a search term


def page_texts(app) -> dict[str, str]:
    """``{docname: plain text}`` of every page of the build, from its (cached) doctree."""
    texts = {}
    for doc in sorted(app.env.found_docs):
        try:
            texts[doc] = app.env.get_doctree(doc).astext()[:MAX_CHARS]
        except Exception:  # a page without a doctree (e.g. excluded) gets no snippet
            continue
    return texts


def _write_texts(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    payload = json.dumps(page_texts(app), ensure_ascii=False)
    Path(app.outdir, TEXTS_FILE).write_text(f"window.ARBOOK_SEARCH_TEXTS = {payload};\n", encoding="utf-8")


def setup(app):
    app.connect("build-finished", _write_texts)
    app.add_js_file("../arbook-search.js")  # book/_extra/, copied to the output's root
    return {"parallel_read_safe": True, "parallel_write_safe": True}
