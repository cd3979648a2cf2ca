"""Interactive pieces of the book that also work in the static HTML.

:func:`eps_explorer` is the ε slider: one pre-rendered figure per perturbation size, and a
slider that picks which one is shown. The slider is linked to the figure stack with
``jslink``, a link that runs in the browser, so the same widget works in three places
with one piece of code:

* live in Jupyter (the kernel is not even needed once the cell has run);
* in the executed notebook, whose widget state papermill/nbclient save
  (``store_widget_state``);
* in the built HTML, where myst-nb writes that state into the page and the locally served
  ``@jupyter-widgets/html-manager`` renders it (see :mod:`arlib.book.vendor`).

Every figure is rendered to PNG once, when the widget is built; nothing is recomputed when
the slider moves.

Example (in a chapter notebook)::

    from arlib.book.widgets import eps_explorer
    eps_explorer(lambda eps: plots.margins_at(pgd, eps), [4, 8, 16])  # pgd: rows of report.collect
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping

import ipywidgets as widgets
from IPython.display import Image

FigureSource = Mapping[float, "matplotlib.figure.Figure"] | Callable[[float], "matplotlib.figure.Figure"]


def _label(eps: float) -> str:
    return f"{eps:g}"


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
    description: str = "ε (0–255)",
    dpi: int = 100,
) -> widgets.VBox:
    """A slider over perturbation sizes ε that shows the figure made for the chosen ε.

    Args:
        figures_by_eps: either a mapping ``{eps: matplotlib Figure}`` or a callable
            ``eps -> Figure``, called once per value. Figures are rendered to PNG and
            closed.
        eps_values: the slider's values, in slider order. Default: the mapping's keys,
            sorted (required when ``figures_by_eps`` is a callable).
        description: the slider's label. ε is on the paper's 0–255 scale.
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
                raise ValueError(f"no figure for ε = {_label(eps)}; have "
                                 f"{', '.join(map(_label, figures_by_eps))}") from None
        out = widgets.Output()
        # Written straight into the model state (not captured from a `with out:` block),
        # so the saved widget state carries the image whatever executes the notebook.
        out.append_display_data(Image(data=figure_png(fig, dpi=dpi), format="png"))
        pages.append(out)

    slider = widgets.SelectionSlider(
        options=[(_label(e), e) for e in eps_values],
        index=0,
        description=description,
        continuous_update=True,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="min(100%, 32rem)"),
    )
    stack = widgets.Stack(children=pages, selected_index=0)
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])
