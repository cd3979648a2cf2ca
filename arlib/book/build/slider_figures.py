"""Sphinx extension: each ε slider and its numbered caption become one ``<figure>`` with a ``<figcaption>``.

A slider reaches the page as two outputs of its cell: the widget view (MyST-NB writes a ``<script
type="application/vnd.jupyter.widget-view+json">``, which the widget manager replaces with the slider and its
figures in the browser) and, after it, the caption that :func:`arlib.book.chapter.show` displays with the class
``arbook-slider-caption``. A Matplotlib figure gets its ``<figure>`` from MyST's ``{figure}`` directive; a
widget cannot go through that directive, so this transform wraps the two raw-HTML outputs after the fact: the
caption paragraph becomes the figure's ``<figcaption>`` (a direct child, as HTML requires), and the figure
takes the ``fig-…`` anchor the caption names (a link target within the page, ``#fig-b2-3``), so a reader's
browser and a screen reader treat a slider like any other figure.
"""

from __future__ import annotations

import re

from docutils import nodes

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CAPTION_CLASS = "arbook-slider-caption"
_CAPTION = re.compile(r'^\s*<p class="arbook-caption ' + CAPTION_CLASS + r'"(?: data-target="(?P<target>[\w-]+)")?>(?P<body>.*)</p>\s*$', re.S)


def wrap_sliders(doctree: nodes.Node) -> int:
    """Wrap every (widget view, slider caption) pair of raw-HTML siblings in a ``<figure>``; the number wrapped."""
    wrapped = 0
    for caption in list(doctree.findall(nodes.raw)):
        m = _CAPTION.match(caption.astext())
        parent = caption.parent
        if m is None or parent is None:
            continue
        i = parent.index(caption)
        view = parent[i - 1] if i > 0 else None
        if not (isinstance(view, nodes.raw) and WIDGET_VIEW in view.astext()):
            continue
        ident = f' id="{m["target"]}"' if m["target"] else ""
        opening = nodes.raw("", f'<figure class="arbook-figure arbook-slider"{ident}>', format="html")
        closing = nodes.raw("", f'<figcaption class="arbook-caption">{m["body"]}</figcaption></figure>', format="html")
        parent.replace(caption, closing)
        parent.insert(i - 1, opening)
        wrapped += 1
    return wrapped


def _on_doctree_resolved(app, doctree, docname) -> None:
    wrap_sliders(doctree)


def setup(app):
    app.connect("doctree-resolved", _on_doctree_resolved)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
