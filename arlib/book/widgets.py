"""Interactive pieces of the book that also work in the static HTML.

:func:`eps_explorer` is the ε slider: one pre-rendered figure per perturbation size, and a
slider that picks which one is shown. The slider is linked to the figure stack with
``jslink``, a link that runs in the browser, so the same widget works in three places
with one piece of code:

* live in Jupyter (the kernel is not even needed once the cell has run);
* in the executed notebook, whose widget state papermill/nbclient save
  (``store_widget_state``);
* in the built HTML, where myst-nb writes that state into the page and the locally served
  ``@jupyter-widgets/html-manager`` renders it (see :mod:`arlib.book.build.vendor`).

Every figure is rendered to PNG once, when the widget is built; nothing is recomputed when
the slider moves.

What the slider shows a reader: its label says what it sets and in which unit ("ε (in /255)"),
every value it takes is written under the track where the handle stops for it (0, 4, 8, 16), and
the value beside the track is marked "read-only" (it shows the chosen ε; the handle or the arrow
keys change it). ipywidgets has no tick marks, and the widget must stay two children (slider, figure
stack) to work in the static HTML, so the tick labels are part of the slider's HTML description,
placed under the track with the geometry of ipywidgets 8's stylesheet (:data:`_GEOMETRY`).

Example (in a chapter notebook)::

    from arlib.book.widgets import eps_explorer
    eps_explorer(lambda eps: plots.margins_at(pgd, eps), [4, 8, 16])  # pgd: rows of report.collect
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import ipywidgets as widgets

if TYPE_CHECKING:  # the figure type only names what the callers pass
    import matplotlib.figure
from IPython.display import Image

FigureSource = Mapping[float, "matplotlib.figure.Figure"] | Callable[[float], "matplotlib.figure.Figure"]


def _label(eps: float) -> str:
    return f"{eps:g}"


DESCRIPTION = "ε (in /255)"  # what the slider sets, in the paper's unit: ε/255 of the pixel range
TOOLTIP = (
    "Defensive strength ε of the network whose figure is shown, in units of 1/255 of the pixel range. "
    "Drag the handle or use the arrow keys; the value beside the track is read-only."
)

# ipywidgets 8 (controls 2.0) slider geometry, px: the description's right margin (2 x inline margin), the track
# container's side margins (handle size / 2 - 2 x border width) and the readout's (min-width: inline width short / 2 -
# widget margin, margin-left: inline margin). The handle stops for the k-th of n values at
# label + margin + k/(n-1) of the track.
_GEOMETRY = dict(label=96, label_margin=8, track_margin=6, readout=72, readout_margin=4, height=50)


def _ticks_html(labels: list[str], description: str) -> str:
    """The slider's description: ``description``, then one absolutely placed tick label under the track per value, and
    "read-only" under the readout. Inline styles only: the widget sanitizer keeps ``span`` with ``style``."""
    g = _GEOMETRY
    left = g["label"] + g["label_margin"] + g["track_margin"]  # where the track starts
    right = g["track_margin"] + g["readout_margin"] + g["readout"]  # how far before the widget's end it stops
    common = "position:absolute;bottom:0;line-height:16px;font-size:11px;color:#555;white-space:nowrap;"
    n = len(labels)
    ticks = "".join(
        f'<span class="arbook-eps-tick" style="{common}left:calc({left}px + (100% - {left + right}px) * {k / max(n - 1, 1):.6g});'
        f'transform:translateX(-50%);">{lab}</span>'
        for k, lab in enumerate(labels)
    )
    readonly = f'<span class="arbook-eps-readonly" style="{common}right:0;width:{g["readout"]}px;text-align:center;font-style:italic;">read-only</span>'
    return f'{description}<span aria-hidden="true">{ticks}{readonly}</span>'


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render a Matplotlib figure to PNG bytes and close it.

    Closing matters: with the inline backend an open figure would be drawn a second time
    below the cell, outside the widget.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def eps_explorer(
    figures_by_eps: FigureSource,
    eps_values: Iterable[float] | None = None,
    description: str = DESCRIPTION,
    dpi: int = 100,
) -> widgets.VBox:
    """A slider over perturbation sizes ε that shows the figure made for the chosen ε.

    Args:
        figures_by_eps: either a mapping ``{eps: matplotlib Figure}`` or a callable
            ``eps -> Figure``, called once per value. Figures are rendered to PNG and
            closed.
        eps_values: the slider's values, in slider order. Default: the mapping's keys,
            sorted (required when ``figures_by_eps`` is a callable).
        description: the slider's label, what it sets and its unit (ε is on the paper's 0–255 scale).
            Under the track each value is written where the handle stops for it, and the readout
            beside the track is marked read-only.
        dpi: resolution of the rendered PNGs.

    Returns:
        ``VBox([SelectionSlider, Stack[Output, ...]])``. The slider's ``index`` is
        ``jslink``-ed to the stack's ``selected_index``; each ``Output`` holds one PNG as
        ``display_data`` in its model state, so the widget needs no kernel to work.

    Raises:
        ValueError: no ε values, or a value with no figure in the mapping.
    """
    if eps_values is None:
        if callable(figures_by_eps):
            raise ValueError("eps_values is required when figures_by_eps is a callable")
        eps_values = sorted(figures_by_eps)
    eps_values = list(eps_values)
    if not eps_values:
        raise ValueError("eps_explorer needs at least one ε value")

    pages = []
    for eps in eps_values:
        if callable(figures_by_eps):
            fig = figures_by_eps(eps)
        else:
            try:
                fig = figures_by_eps[eps]
            except KeyError:
                raise ValueError(f"no figure for ε = {_label(eps)}; have {', '.join(map(_label, figures_by_eps))}") from None
        out = widgets.Output()
        # Written straight into the model state (not captured from a `with out:` block),
        # so the saved widget state carries the image whatever executes the notebook.
        out.append_display_data(Image(data=figure_png(fig, dpi=dpi), format="png"))
        pages.append(out)

    labels = [_label(e) for e in eps_values]
    slider = widgets.SelectionSlider(
        options=list(zip(labels, eps_values)),
        index=0,
        description=_ticks_html(labels, description),
        description_allow_html=True,
        tooltip=TOOLTIP,
        continuous_update=True,
        style={"description_width": f"{_GEOMETRY['label']}px"},
        layout=widgets.Layout(width="min(100%, 32rem)", height=f"{_GEOMETRY['height']}px"),
    )
    stack = widgets.Stack(children=pages, selected_index=0)
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])
