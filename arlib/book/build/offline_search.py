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


# TeX a snippet may meet, as text: the rest of a formula keeps its letters and digits, without commands or braces.
_TEX = {
    **{op: op for op in ("max", "min", "log", "exp", "sup", "inf", "arg", "sin", "cos", "det", "Pr")},
    "epsilon": "ε",
    "varepsilon": "ε",
    "delta": "δ",
    "sigma": "σ",
    "gamma": "γ",
    "lambda": "λ",
    "theta": "θ",
    "alpha": "α",
    "beta": "β",
    "mu": "μ",
    "rho": "ρ",
    "tau": "τ",
    "ell": "ℓ",
    "infty": "∞",
    "le": "≤",
    "leq": "≤",
    "ge": "≥",
    "geq": "≥",
    "to": "→",
    "rightarrow": "→",
    "times": "×",
    "cdot": "·",
    "in": "∈",
    "sum": "Σ",
    "prod": "Π",
    "approx": "≈",
    "neq": "≠",
    "pm": "±",
    "partial": "∂",
    "nabla": "∇",
    "Delta": "Δ",
    "Sigma": "Σ",
    "Pi": "Π",
}


def plain_math(tex: str) -> str:
    """A TeX formula as plain text for a snippet: Greek letters and common symbols as characters, other commands and
    the markup (braces, ``^``, ``_``, ``&``, ``\\``) dropped."""
    import re

    text = re.sub(r"\\([A-Za-z]+)", lambda m: _TEX.get(m.group(1), " "), tex)
    text = re.sub(r"\\.|[{}^_&$]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def page_text(doctree) -> str:
    """The text a reader sees on a page, from its resolved doctree: math as :func:`plain_math`, raw HTML without its tags,
    no images (their alt text), no code cells' source, no comments; citations as the book prints them."""
    import html
    import re

    from docutils import nodes

    def text(node) -> str:
        if isinstance(node, nodes.Text):
            return str(node)
        if isinstance(node, (nodes.math, nodes.math_block)):
            return " " + plain_math(node.astext()) + " "
        if isinstance(node, nodes.raw):
            shown = re.sub(r"<(style|script)\b.*?</\1\s*>", " ", node.astext(), flags=re.S | re.I)  # a table's CSS is not its text
            return " " + html.unescape(re.sub(r"<[^>]+>", " ", shown)) + " "
        if isinstance(node, (nodes.image, nodes.comment, nodes.substitution_definition, nodes.system_message)):
            return ""
        if isinstance(node, nodes.container) and node.get("nb_element") == "cell_code_source":
            return ""
        return node.child_text_separator.join(text(c) for c in node.children)

    return re.sub(r"\s+", " ", text(doctree)).strip()


def page_texts(app) -> dict[str, str]:
    """``{docname: plain text}`` of every page of the build, from its doctree as the HTML writer gets it (references and
    citations resolved, one output format per cell output), reduced to what a reader sees (:func:`page_text`)."""
    texts = {}
    for doc in sorted(app.env.found_docs):
        try:
            texts[doc] = page_text(app.env.get_and_resolve_doctree(doc, app.builder))[:MAX_CHARS]
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
