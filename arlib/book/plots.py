"""The book's figures, from the tables of :mod:`arlib.book.report`.

Every function takes rows of :func:`arlib.book.report.collect` (one row per run; several seeds
of a cell are averaged, with the seed standard deviation as error bars) and, where the paper
has the numbers, a block of one of its tables (:func:`arlib.book.paper.wide`), drawn dashed. Each
returns a new :class:`matplotlib.figure.Figure` built with the object API (no pyplot state
is touched: figures are created outside pyplot, so a notebook shows one with
``display(fig)``, exactly once, and nothing needs closing). ``note``
puts a one-line footer on the figure, e.g. :func:`arlib.book.report.provenance_note`.

Figures that the ε slider of :func:`arlib.book.widgets.eps_explorer` pages through have a
per-ε function (``*_at``): the figure for one defensive strength, drawn on axes whose limits
are shared across all ε of the same frame, so moving the slider changes the data only.

The book's plotting rule (every function here follows it; :func:`legend_overlaps` checks the first
and last points on a drawn figure, ``tests/test_plots.py`` on every figure the chapters draw):

1. Nothing is drawn over data: legends sit outside the axes, in a band under the panels; a
   run's summary statistics are a line of its panel's title, not a box in the plot.
2. Where one axis for ours and the paper's would flatten one of the two trends (our error gaps of
   60-70 points against the paper's 10.65 -> 11.08), the panel is split in two, ours above and the
   paper's below, each on its own y axis ("ours", "paper"), so that both trends are readable and
   no line can be read against the other's scale.
3. Values of a positive quantity (a loss, a loss variation) that span decades are drawn on a log
   axis; an error bar that reaches below the log axis stops at its floor with a grey ▾.
   Overlaid histograms whose peaks differ severalfold (one ε's spike) get a log count axis.
4. One palette (:data:`OKABE_ITO`, colour-blind safe), one colour per ε (:func:`eps_colors`); a
   series with no finite value gets no legend entry, and the footer says it is not drawn.

Paper figure map: gap curves - Fig. 3a/6a/7a/9a; losses and error rates - Fig. 3b/6b/7b/9b;
margins - Fig. 4/10; true-class probability and loss histograms - Fig. 5a,b/11a,b;
singular-value std per layer - Fig. 5c,d/11c,d; loss variation - Fig. 8 / Table 1; PGD
accuracy - Fig. 12; the spectral-norm grid - Fig. 6.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from . import report

__all__ = [
    "OKABE_ITO",
    "SERIES_COLORS",
    "EPS_COLORS",
    "eps_colors",
    "legend_overlaps",
    "gap_curves",
    "loss_error_curves",
    "training_curves",
    "margin_distributions",
    "margins_at",
    "prob_loss_histograms",
    "prob_loss_at",
    "sv_std_per_layer",
    "sv_std_at",
    "loss_variation_curves",
    "loss_variation_at",
    "pgd_accuracy_curve",
    "spectral_grid_gaps",
    "spectral_complexity",
    "bound_terms_plot",
]

STYLE = Path(__file__).with_name("arbook.mplstyle")  # the book's one figure style
MAX_WIDTH = 7.6  # inches: at 100 dpi, the book's content column (757 px), so text is shown at its own size

# ----------------------------------------------------------------------------- colours: the book's one palette

#: Okabe & Ito, "Color Universal Design" (2008): eight colours told apart with every common colour-vision
#: deficiency. The book draws with no other colour (greys aside); yellow (1.1:1 on white) is never used.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
#: Series colours in order, those with at least 3:1 contrast on white first (orange and sky blue, about
#: 2.3:1, only for a sixth and seventh series). ``arbook.mplstyle``'s ``axes.prop_cycle`` is this list.
SERIES_COLORS = tuple(OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "reddish purple", "black", "orange", "sky blue"))
OURS, PAPER = OKABE_ITO["blue"], OKABE_ITO["vermillion"]  # ours solid with circles, the paper's dashed with open squares
#: The colour of each of the paper's defensive strengths, the same in every figure: plain training black, then
#: blue, bluish green and vermillion as ε grows (all at least 3:1 on white).
EPS_COLORS = {0.0: OKABE_ITO["black"], 4.0: OKABE_ITO["blue"], 8.0: OKABE_ITO["bluish green"], 16.0: OKABE_ITO["vermillion"]}
_EPS_OTHER = (OKABE_ITO["reddish purple"], "#666666")  # an ε outside the paper's grid (a chapter's eps_grid override)
_CLIPPED = "0.3"  # the ▾ that ends an error bar at a log axis's floor

_SOURCE = {"ours": dict(marker="o", linestyle="-"), "paper": dict(marker="s", linestyle="--", alpha=0.9, markerfacecolor="none")}


def eps_colors(eps_values: Sequence[float]) -> dict[float, str]:
    """The colour of each defensive strength (:data:`EPS_COLORS`), the same in every figure of the book whatever other ε it shows.

    An ε outside the paper's 0/4/8/16 gets reddish purple or grey, picked by its value (so again the same in every figure).
    """
    return {float(e): EPS_COLORS.get(float(e), _EPS_OTHER[int(round(4 * float(e))) % len(_EPS_OTHER)]) for e in eps_values}


def use_style() -> None:
    """Apply the book's figure style (:data:`STYLE`) to every figure drawn from now on in this process."""
    import matplotlib.style

    matplotlib.style.use(STYLE)


# ----------------------------------------------------------------------------- figure, legend, footer


def _figure(nrows: int = 1, ncols: int = 1, size=(5.0, 3.6), **kw):
    """A new Figure outside pyplot (no global state: nothing is shown twice by the inline backend; display it with ``display(fig)``).

    ``size`` is one panel's; a row of panels wider than :data:`MAX_WIDTH` is scaled down to it
    (panels keep their aspect, down to 60 % of their height), so the book never shrinks the figure's text.
    """
    from matplotlib.figure import Figure

    width, height = size[0] * ncols, size[1] * nrows
    if width > MAX_WIDTH:
        height *= max(MAX_WIDTH / width, 0.6)
        width = MAX_WIDTH
    fig = Figure(figsize=(width, height))
    fig._arbook_not_drawn = []  # labels of series with no finite value (rule 4), for the footer
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _has_data(artist) -> bool:
    """Whether a plotted series (a line, an errorbar or bar container, a patch, a collection) has a finite point its axes can show."""
    from matplotlib.collections import Collection
    from matplotlib.container import BarContainer, ErrorbarContainer
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    if isinstance(artist, ErrorbarContainer):
        return artist.lines[0] is not None and _has_data(artist.lines[0])
    if isinstance(artist, BarContainer):
        return any(_has_data(p) for p in artist.patches)
    if isinstance(artist, Line2D):
        xy = np.asarray(artist.get_xydata(), dtype=float).reshape(-1, 2)
        ok = np.isfinite(xy).all(axis=1)
        ax = artist.axes
        if ax is not None and ax.get_yscale() == "log":
            ok &= xy[:, 1] > 0
        return bool(ok.any())
    if isinstance(artist, Rectangle):
        return bool(np.isfinite([artist.get_x(), artist.get_y(), artist.get_width(), artist.get_height()]).all())
    if isinstance(artist, Patch):
        return bool(np.isfinite(artist.get_path().vertices).all(axis=1).any())
    if isinstance(artist, Collection):
        offsets = np.asarray(artist.get_offsets(), dtype=float).reshape(-1, 2)
        return bool(np.isfinite(offsets).all(axis=1).any()) or any(np.isfinite(p.vertices).all(axis=1).any() for p in artist.get_paths())
    return True


def _legend(fig, axes, ncols: int | None = None):
    """One legend for the figure, outside the panels, in a band under them (rule 1): every labelled series of ``axes``, once.

    A series with no finite point gets no entry; the footer (:func:`_finish`) names it as not drawn.
    ``ncols``: the legend's columns (default: as many as fit the figure's width).
    """
    handles, labels, seen = [], [], []
    for ax in np.ravel(axes):
        for h, lab in sorted(zip(*ax.get_legend_handles_labels()), key=lambda e: _drawn_at(ax, e[0])):
            seen += [lab] if lab not in seen else []
            if lab not in labels and _has_data(h):
                handles.append(h)
                labels.append(lab)
    fig._arbook_not_drawn += [lab for lab in seen if lab not in labels and lab not in fig._arbook_not_drawn]  # rule 4
    if not handles:
        return None
    # Anchored in figure coordinates, not to the figure's box ("outside lower center"), which savefig(bbox_inches="tight")
    # swaps for the tight box: the legend would drop onto the footer. _finish keeps the panels above it.
    for n in range(ncols or len(labels), 0, -1):  # as many columns as fit the figure's width
        legend = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), bbox_transform=fig.transFigure, ncols=n)
        if n == 1 or ncols or legend.get_window_extent().width <= fig.bbox.width:
            break
        legend.remove()
    fig.set_figheight(fig.get_figheight() + legend.get_window_extent().height / fig.dpi + 0.1)  # the band: the panels keep their height
    return legend


def _drawn_at(ax, handle) -> int:
    """When ``handle`` was added to ``ax``: legends list series in the order they were drawn (ours first), not by artist type."""
    from matplotlib.container import Container

    first = handle[0] if isinstance(handle, Container) and len(handle) else handle
    first = first[0] if isinstance(first, (list, tuple)) and first else first
    children = getattr(ax, "_children", [])
    return children.index(first) if first in children else len(children)


def _footer(fig, note: str | None):
    if note:
        import textwrap

        fig.text(0.01, -0.01, "\n".join(textwrap.wrap(note, 140)), fontsize=7, color="0.35", ha="left", va="top")
    return fig


def _finish(fig, note: str | None, title: str | None = None):
    """The last step of every figure: its title, the constrained layout, the footer note (with the series not drawn, rule 4)."""
    if title:
        fig.suptitle(title)
    band = max((leg.get_window_extent().height for leg in fig.legends), default=0.0)  # the legend band under the panels (_legend)
    band = (band + 0.1 * fig.dpi) / fig.bbox.height if band else 0.0
    fig.set_layout_engine("constrained", rect=(0.0, band, 1.0, 1.0 - band))
    missing = getattr(fig, "_arbook_not_drawn", [])
    if missing:
        note = " ".join(x for x in (note, f"Not drawn, no finite value: {'; '.join(missing)}.") if x)
    return _footer(fig, note)


def _empty(fig, axes, text: str = "no runs to show"):
    for ax in np.ravel(axes):
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    return fig


# ----------------------------------------------------------------------------- ours against the paper's, on one panel (rules 2 and 3)

LOG_DECADES = 1.5  # a positive quantity whose values span this many decades gets a log axis (rule 3)
FLAT_SHARE = 0.15  # a line whose change across ε would fill less than this share of an axis shared with the other source (rule 2)


@dataclass
class _Series:
    """One line of a panel: x, y, error bars (seed std for ours; None for most of the paper's) and how it is drawn."""

    label: str
    x: np.ndarray
    y: np.ndarray
    err: np.ndarray | None
    color: str
    paper: bool = False
    style: dict = field(default_factory=dict)

    def values(self) -> np.ndarray:
        """Every y the series reaches, error bars included, finite only."""
        v = [self.y] if self.err is None else [self.y, self.y - self.err, self.y + self.err]
        v = np.concatenate(v)
        return v[np.isfinite(v)]


def _summary(df: pd.DataFrame, metrics: Sequence[str], by=("eps",)) -> pd.DataFrame:
    present = [m for m in metrics if m in df.columns]
    return report.summarise(df, by=list(by), metrics=present).sort_values(list(by))


def _ours(s: pd.DataFrame, metric: str, label: str, color: str, scale: float = 1.0, offset: float = 0.0, **style) -> _Series | None:
    """Our mean over seeds of ``metric`` (a :func:`_summary` frame) with the seed std as error bars (0 for a single seed)."""
    if f"{metric}_mean" not in s.columns:
        return None
    err = np.abs(scale) * s[f"{metric}_std"].to_numpy(dtype=float)
    return _Series(
        label, s["eps"].to_numpy(dtype=float), offset + scale * s[f"{metric}_mean"].to_numpy(dtype=float), np.where(np.isnan(err), 0.0, err), color, style=style
    )


def _theirs(paper: pd.DataFrame | None, metric: str, label: str, color: str, scale: float = 1.0, offset: float = 0.0) -> _Series | None:
    """The paper's row ``metric`` of a block (``arlib.book.paper.wide``), or None when the block lacks it."""
    if paper is None or metric not in paper.index:
        return None
    row = paper.loc[metric].dropna()
    return _Series(label, np.array([float(e) for e in row.index]), offset + scale * row.to_numpy(dtype=float), None, color, paper=True)


def _span(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.max() - v.min()) if v.size else 0.0


def _paper_apart(series: Sequence[_Series]) -> bool:
    """Rule 2: on one axis shared with the other source, the change across ε of some line of ours or of the paper's
    would fill less than :data:`FLAT_SHARE` of the axis, while on an axis of its own source's lines it would not."""

    def flat(lines, span):
        return any(0 < _span(s.y) < FLAT_SHARE * span for s in lines)

    shared = _span(np.concatenate([s.values() for s in series])) if series else 0.0
    for group in ([s for s in series if s.paper], [s for s in series if not s.paper]):
        if group and len(group) < len(series) and flat(group, shared) and not flat(group, _span(np.concatenate([s.values() for s in group]))):
            return True
    return False


def _wants_log(series: Sequence[_Series]) -> bool:
    """Rule 3: every mean positive and the values spanning :data:`LOG_DECADES` decades or more."""
    y = np.concatenate([s.y[np.isfinite(s.y)] for s in series]) if series else np.zeros(0)
    if y.size == 0 or (y <= 0).any():
        return False
    top = max(float(s.values().max()) for s in series if s.values().size)
    return math.log10(top / float(y.min())) >= LOG_DECADES


def _log_floor(series: Sequence[_Series]) -> float | None:
    """The bottom of a log axis: below the smallest positive mean and error-bar end, but at most a decade under the smallest
    mean, so that one long error bar does not stretch the axis (None: nothing positive)."""
    v = np.concatenate([s.values() for s in series])
    y = np.concatenate([s.y for s in series])
    v, y = v[v > 0], y[np.isfinite(y) & (y > 0)]
    if not v.size:
        return None
    return max(float(v.min()), float(y.min()) / 10 if y.size else 0.0) / 1.5


def _draw(ax, s: _Series, floor: float | None = None):
    """One series, ours solid with error bars, the paper's dashed; on a log axis an error bar reaching below ``floor`` stops there with a ▾."""
    kw = {**_SOURCE["paper" if s.paper else "ours"], **s.style}
    if s.err is None:
        ax.plot(s.x, s.y, label=s.label, color=s.color, **kw)
        return
    lower = s.err
    clipped = np.zeros(s.y.shape, dtype=bool)
    if floor is not None:
        clipped = np.isfinite(s.y) & (s.y - s.err < floor)
        lower = np.where(clipped, np.maximum(s.y - floor, 0.0), s.err)
    ax.errorbar(s.x, s.y, yerr=[lower, s.err], label=s.label, color=s.color, capsize=3, **kw)
    if clipped.any():
        from matplotlib.markers import CARETDOWNBASE

        ax.plot(
            s.x[clipped],
            np.full(int(clipped.sum()), floor),
            marker=CARETDOWNBASE,
            linestyle="none",
            color=_CLIPPED,
            markersize=6,
            clip_on=False,
            zorder=3,
            label="error bar continues below the axis",
        )


def _panel(ax, series: Sequence[_Series | None], ylabel: str, log: bool | None = False) -> list:
    """Ours and the paper's ``series`` on ``ax`` by the book's rule; returns the axes drawn on, top to bottom.

    ``log``: True always a log axis, None a log axis where the values span decades (rule 3), False never
    (gaps and error rates, which can be 0 or negative). A panel not on a log axis is split in two, ours
    above and the paper's below on its own y axis, where a shared axis would flatten a trend (rule 2):
    two axes, not a twin axis, so that no line of ours can be read against the paper's scale. The
    halves are labelled "ours" and "paper"; the caller's panel title names the quantity.
    """
    series = [s for s in series if s is not None]
    drawn = [s for s in series if s.values().size]
    if log is None:
        log = _wants_log(drawn)
    floor = _log_floor(drawn) if log and drawn else None
    if floor is not None:
        ax.set_yscale("log", nonpositive="clip")
        for s in series:
            _draw(ax, s, floor)
        ax.set_ylim(bottom=floor)
        ax.set_ylabel(f"{ylabel} (log scale)")
        return [ax]
    if not _paper_apart(drawn):
        for s in series:
            _draw(ax, s)
        ax.set_ylabel(ylabel)
        return [ax]
    fig, spec = ax.figure, ax.get_subplotspec()
    ax.remove()
    grid = spec.subgridspec(2, 1, hspace=0.02)
    top = fig.add_subplot(grid[0])
    bottom = fig.add_subplot(grid[1], sharex=top)
    for s in series:
        _draw(bottom if s.paper else top, s)
    unit = " (%)" if ylabel.endswith("%)") else ""  # the quantity is in the panel's title
    top.set_ylabel(f"ours{unit}")
    bottom.set_ylabel(f"paper{unit}")
    top.tick_params(labelbottom=False)
    for a in (top, bottom):
        a.yaxis.set_major_locator(_few_ticks())
    return [top, bottom]


def _few_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=4)


def _eps_axis(axes, eps_values):
    """The ε axis under a panel (the last of ``axes``, a panel split in two by :func:`_panel`, is its bottom)."""
    axes = list(np.ravel(axes)) if isinstance(axes, (list, tuple, np.ndarray)) else [axes]
    for ax in axes:
        ax.set_xticks(sorted(set(float(e) for e in eps_values)))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("defensive strength ε (0–255)")


def _xs(series: Sequence[_Series | None]) -> list[float]:
    """Every ε some series is drawn at, so that the x axis ticks the paper's ε too."""
    return [float(x) for s in series if s is not None for x in s.x]


# ----------------------------------------------------------------------------- gaps, losses, errors


def gap_curves(
    df: pd.DataFrame,
    paper: pd.DataFrame | None = None,
    paper_label: str = "paper",
    title: str | None = None,
    note: str | None = None,
    label: str = "ours",
    others: Mapping[str, pd.DataFrame] | None = None,
):
    """Loss gap and error gap against ε (Fig. 3a, 6a, 7a, 9a).

    Ours: mean over seeds with the seed std as error bars; the paper's block (``arlib.book.paper.wide``;
    rows ``delta_loss``, ``delta_acc``) dashed, in its own half of the panel where its levels are far
    from ours (rule 2). The error gap is ``train_acc - test_acc``
    (= test error - train error, %-points). ``others``: more of our runs to overlay
    (label -> rows), e.g. the base network next to the deeper one.
    """
    s = _summary(df, ["delta_loss", "delta_acc"])
    extra = {k: _summary(v, ["delta_loss", "delta_acc"]) for k, v in (others or {}).items() if v is not None and len(v)}
    fig, axes = _figure(1, 2)
    drawn = []
    for ax, metric, ylabel, panel in zip(
        axes[0],
        ("delta_loss", "delta_acc"),
        ("loss gap (test − train loss)", "error gap (test − train error, %)"),
        ("(a) generalization gap in loss", "(b) generalization gap in error"),
    ):
        series = [_ours(s, metric, label, OURS)]
        series += [_ours(se, metric, lab, SERIES_COLORS[2 + i], alpha=0.8) for i, (lab, se) in enumerate(extra.items())]
        series.append(_theirs(paper, metric, paper_label, PAPER))
        axs = _panel(ax, series, ylabel)
        axs[0].set_title(panel)
        _eps_axis(axs, list(s["eps"]) + _xs(series))
        drawn += axs
    _legend(fig, drawn)
    return _finish(fig, note, title)


def loss_error_curves(df: pd.DataFrame, paper: pd.DataFrame | None = None, paper_label: str = "paper", title: str | None = None, note: str | None = None):
    """Training and test loss, and training and test error rate, against ε (Fig. 3b, 6b, 7b, 9b).

    Losses on a log axis where they span decades (the paper's training loss, 0.01-0.1, under ours at 0.3-2);
    the paper's error rates on their own axis where ours are several times theirs.
    """
    s = _summary(df, ["train_loss", "test_loss", "train_acc", "test_acc"])
    fig, axes = _figure(1, 2)
    colors = {"train": OURS, "test": PAPER}
    drawn = []
    for ax, metrics, ylabel, panel, kw, log in (
        (axes[0][0], ("train_loss", "test_loss"), "cross-entropy loss", "(a) training and test loss", {}, None),
        # error rate = 100 - accuracy
        (axes[0][1], ("train_acc", "test_acc"), "error rate (%)", "(b) training and test error", dict(scale=-1.0, offset=100.0), False),
    ):
        series = []
        for metric in metrics:
            split = metric.split("_")[0]
            series += [_ours(s, metric, f"{split} (ours)", colors[split], **kw), _theirs(paper, metric, f"{split} ({paper_label})", colors[split], **kw)]
        axs = _panel(ax, series, ylabel, log=log)
        axs[0].set_title(panel)
        _eps_axis(axs, list(s["eps"]) + _xs(series))
        drawn += axs
    _legend(fig, drawn, ncols=2)
    return _finish(fig, note, title)


def training_curves(history: pd.DataFrame, note: str | None = None):
    """Per-epoch training loss (running, on the perturbed batches), clean test loss and test accuracy, one line per ε (seed 0 solid, others thin)."""
    fig, axes = _figure(1, 3, size=(4.2, 3.4))
    if history.empty:
        return _footer(_empty(fig, axes), note)
    colors = eps_colors(history["eps"].unique())
    first_seed = history.groupby("eps")["seed"].min().to_dict()
    for (eps, seed, _), g in history.groupby(["eps", "seed", "hash"]):
        main = seed == first_seed.get(eps)
        kw = dict(color=colors[float(eps)], lw=1.6 if main else 0.7, alpha=1.0 if main else 0.5, label=f"ε={eps:g}" if main else None)
        g = g.sort_values("epoch")
        for ax, col in zip(axes[0], ("train_running_loss", "test_loss", "test_acc")):
            if col in g:
                ax.plot(g["epoch"], g[col], **kw)
    from matplotlib.ticker import MaxNLocator

    for ax, lab, panel in zip(
        axes[0], ("training loss (adversarial batches)", "test loss (clean)", "test accuracy (%)"), ("(a) training loss", "(b) test loss", "(c) test accuracy")
    ):
        ax.set_title(panel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    _legend(fig, axes[0])
    return _finish(fig, note)


# ----------------------------------------------------------------------------- histograms (margins, probabilities, losses)

PEAK_RATIO = 3.0  # overlaid or slider histograms whose tallest peak is this many times another ε's: a log count axis (rule 3)


def _hist_scales(panels: Sequence[tuple], ylabel: str, floor_share: float = 300.0):
    """Rule 3 for histograms drawn at several ε, on every panel of a figure at once: ``panels`` is (axes, the peak of each ε's histogram).

    A log count axis on all of them when in one panel an ε's peak is :data:`PEAK_RATIO` times another's, so that a spike
    does not flatten the rest (one scale per figure, so that its panels read alike); else linear from 0, 10 % above the tallest.
    """
    clean = [(ax, [p for p in peaks if p > 0 and np.isfinite(p)]) for ax, peaks in panels]
    log = any(len(p) > 1 and max(p) >= PEAK_RATIO * min(p) for _, p in clean)
    for ax, peaks in clean:
        top = max(peaks) if peaks else 1.0
        if log:
            ax.set_yscale("log", nonpositive="clip")
            ax.set_ylim(top / floor_share, 2.0 * top)
        else:
            ax.set_ylim(0, 1.1 * top)
        ax.set_ylabel(ylabel + (" (log scale)" if log else ""))


def _stats_title(ax, title: str, stats: str):
    """A panel's title with its run's summary statistics as a second line (rule 1: no box over the data)."""
    ax.set_title(f"{title}\n{stats}", fontsize=9)


def _annot(v: np.ndarray) -> str:
    v = np.asarray(v, dtype=np.float64)
    sk = float(scipy.stats.skew(v, bias=True)) if v.size > 2 and v.std() > 0 else float("nan")
    return f"mean {v.mean():.3f} · std {v.std():.3f} · skew {sk:.2f} · mean|m| {np.abs(v).mean():.3f}"


def _arrays_by_eps(df: pd.DataFrame) -> dict[float, tuple[pd.Series, dict]]:
    return {e: (r, report.load_arrays(r)) for e, r in report.runs_by_eps(df[df["analysed"].astype(bool)] if "analysed" in df else df).items()}


def _run_at(df: pd.DataFrame, eps: float) -> tuple[dict[float, tuple[pd.Series, dict]], pd.Series, dict, str]:
    """For an ``*_at`` figure: the arrays of every ε (for the shared axes), the row and arrays of the run at ``eps``, and its colour."""
    data = _arrays_by_eps(df)
    r, a = data[float(eps)]
    return data, r, a, eps_colors(list(data))[float(eps)]


def _range(values: list[np.ndarray], q: float = 0.005) -> tuple[float, float]:
    v = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in values if a is not None and np.size(a)]) if values else np.zeros(1)
    lo, hi = np.quantile(v, [q, 1 - q]) if v.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return float(lo - pad), float(hi + pad)


def _peak(v: np.ndarray, bins, rng, density: bool = False) -> float:
    return float(np.histogram(np.asarray(v, dtype=np.float64), bins=bins, range=rng, density=density)[0].max())


def _skew(m: np.ndarray) -> float:
    return float(scipy.stats.skew(m, bias=True)) if m.std() > 0 else float("nan")


def margin_distributions(df: pd.DataFrame, bins: int = 40, note: str | None = None):
    """Margin distributions on the training and test sets, all ε overlaid (Fig. 4, 10): one run (smallest seed) per ε.

    The legend gives each ε's standard deviation and skewness on both sets; the density axis is
    logarithmic where one ε's spike is several times another's peak (rule 3).
    """
    data = _arrays_by_eps(df)
    colors = eps_colors(list(data))
    fig, axes = _figure(1, 2)
    margins = {e: {split: a[f"{split}_margin"].astype(np.float64) for split in ("train", "test")} for e, (_, a) in data.items()}
    peaks = []
    for ax, split in zip(axes[0], ("train", "test")):
        rng = _range([m[split] for m in margins.values()])
        for e, m in margins.items():
            label = f"ε={e:g}: " + "; ".join(f"{sp} std {v.std():.2f}, skew {_skew(v):.2f}" for sp, v in m.items())
            ax.hist(m[split], bins=bins, range=rng, density=True, histtype="step", lw=1.6, color=colors[e], label=label)
        peaks.append((ax, [_peak(m[split], bins, rng, density=True) for m in margins.values()]))
        ax.axvline(0, color="k", lw=0.8, ls=":")
        ax.set_xlabel("margin (true logit − best other)")
        ax.set_title(f"{split} set")
    _hist_scales(peaks, "density")
    _legend(fig, axes[0])
    return _finish(fig, note)


def margins_at(df: pd.DataFrame, eps: float, bins: int = 40, note: str | None = None):
    """Train and test margin histograms of the run at ``eps`` (smallest seed), mean/std/skewness in the panel titles; axes shared across ε."""
    data, r, a, color = _run_at(df, eps)
    fig, axes = _figure(1, 2)
    peaks = []
    for ax, split in zip(axes[0], ("train", "test")):
        rng = _range([x[f"{split}_margin"] for _, x in data.values()])
        m = a[f"{split}_margin"].astype(np.float64)
        ax.hist(m, bins=bins, range=rng, density=True, color=color)  # full colour: a faded palette colour reads as another
        ax.axvline(0, color="k", lw=0.8, ls=":")
        peaks.append((ax, [_peak(x[f"{split}_margin"], bins, rng, density=True) for _, x in data.values()]))
        ax.set_xlim(*rng)
        ax.set_xlabel("margin (true logit − best other)")
        _stats_title(ax, f"{split} set, ε = {eps:g} (run {r['short']}, seed {int(r['seed'])})", _annot(m))
    _hist_scales(peaks, "density")
    return _finish(fig, note)


# ----------------------------------------------------------------------------- probabilities and losses (Fig. 5a,b / 11a,b)


def prob_loss_histograms(df: pd.DataFrame, bins: int = 30, note: str | None = None):
    """Histograms of the test true-class probability and test loss, all ε overlaid (Fig. 5a,b / 11a,b)."""
    data = _arrays_by_eps(df)
    colors = eps_colors(list(data))
    fig, axes = _figure(1, 2)
    lrng = _range([a["test_loss"] for _, a in data.values()], q=0.0)
    lrng = (max(lrng[0], 0), lrng[1])
    peaks = []
    for ax, key, rng, lab in (
        (axes[0][0], "test_true_prob", (0, 1), "estimated probability of the true class"),
        (axes[0][1], "test_loss", lrng, "test loss per example"),
    ):
        for e, (_, a) in data.items():
            ax.hist(a[key].astype(np.float64), bins=bins, range=rng, histtype="step", lw=1.6, color=colors[e], label=f"ε={e:g}")
        peaks.append((ax, [_peak(a[key], bins, rng) for _, a in data.values()]))
        ax.set_xlabel(lab)
    _hist_scales(peaks, "examples")
    _legend(fig, axes[0])
    return _finish(fig, note)


def prob_loss_at(df: pd.DataFrame, eps: float, bins: int = 30, note: str | None = None):
    """Test true-class probability and test loss histograms of the run at ``eps``, statistics in the titles; axes shared across ε."""
    data, r, a, color = _run_at(df, eps)
    lrng = _range([x["test_loss"] for _, x in data.values()], q=0.0)
    lrng = (max(lrng[0], 0.0), lrng[1])
    fig, axes = _figure(1, 2)
    peaks = []
    for ax, key, rng, lab in (
        (axes[0][0], "test_true_prob", (0.0, 1.0), "estimated probability of the true class"),
        (axes[0][1], "test_loss", lrng, "test loss per example"),
    ):
        v = a[key].astype(np.float64)
        ax.hist(v, bins=bins, range=rng, color=color)
        peaks.append((ax, [_peak(x[key], bins, rng) for _, x in data.values()]))
        ax.set_xlim(*rng)
        ax.set_xlabel(lab)
        _stats_title(ax, f"ε = {eps:g} (run {r['short']})", f"mean {v.mean():.3f} · median {np.median(v):.3f} · std {v.std():.3f}")
    _hist_scales(peaks, "test examples")
    return _finish(fig, note)


# ----------------------------------------------------------------------------- singular values (Fig. 5c,d / 11c,d)

_KIND_LABEL = {
    "operator": "operator singular values (conv as a linear map on its input)",
    "reshaped": "reshaped weight matrix (c_out × c_in·k·k)",
}


def _sv_frame(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per-layer sv std, mean and std over seeds: index layer (network order), columns (eps, mean|std)."""
    rows = []
    for _, r in df.iterrows():
        d = r.get(f"sv_std_{kind}")
        if isinstance(d, Mapping):
            for i, (layer, v) in enumerate(d.items()):
                rows.append({"eps": float(r["eps"]), "seed": r["seed"], "layer": layer, "pos": i, "std": float(v)})
    t = pd.DataFrame(rows)
    if t.empty:
        return t
    g = t.groupby(["pos", "layer", "eps"])["std"].agg(["mean", "std", "count"]).reset_index()
    return g


def _layer_order(df: pd.DataFrame, kind: str) -> list[str]:
    for _, r in df.iterrows():
        d = r.get(f"sv_std_{kind}")
        if isinstance(d, Mapping):
            return list(d)
    return []


def sv_std_per_layer(df: pd.DataFrame, eps_a: float = 4, eps_b: float = 16, kinds: Sequence[str] = ("operator", "reshaped"), note: str | None = None):
    """Std of the singular values of every layer at ε = ``eps_a`` and ``eps_b`` (Fig. 5c,d / 11c,d), one panel per kind.

    Layers in network order; bars are the mean over seeds with the seed std as error bars.
    """
    fig, axes = _figure(len(kinds), 1, size=(10.0, 3.2))
    colors = eps_colors([eps_a, eps_b])
    for ax, kind in zip(axes[:, 0], kinds):
        g = _sv_frame(df, kind)
        layers = _layer_order(df, kind)
        x = np.arange(len(layers))
        for j, e in enumerate((float(eps_a), float(eps_b))):
            ge = g[g["eps"] == e].set_index("layer").reindex(layers) if len(g) else pd.DataFrame()
            if ge.empty or ge["mean"].isna().all():
                continue
            ax.bar(x + (j - 0.5) * 0.4, ge["mean"], width=0.4, yerr=ge["std"].fillna(0), color=colors[e], label=f"ε={e:g}", capsize=2)
        ax.set_xticks(x, layers, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_ylabel("std of singular values")
        ax.set_title(_KIND_LABEL[kind])
        ax.grid(alpha=0.3, axis="y")
    _legend(fig, axes[:, 0])
    return _finish(fig, note)


def sv_std_at(df: pd.DataFrame, eps: float, reference: float | None = None, kinds: Sequence[str] = ("operator", "reshaped"), note: str | None = None):
    """Per-layer std of singular values at ``eps`` (both kinds), with the smallest ε of ``df`` as an outline for reference; y-axes shared across ε."""
    eps_all = sorted(float(e) for e in df["eps"].unique())
    reference = eps_all[0] if reference is None else float(reference)
    colors = eps_colors(eps_all)
    fig, axes = _figure(len(kinds), 1, size=(10.0, 3.0))
    for ax, kind in zip(axes[:, 0], kinds):
        g = _sv_frame(df, kind)
        layers = _layer_order(df, kind)
        x = np.arange(len(layers))
        if g.empty:
            continue
        ymax = float((g["mean"] + g["std"].fillna(0)).max())
        cur = g[g["eps"] == float(eps)].set_index("layer").reindex(layers)
        ax.bar(x, cur["mean"], width=0.7, yerr=cur["std"].fillna(0), color=colors[float(eps)], label=f"ε={eps:g}", capsize=2)
        if reference != float(eps):
            ref = g[g["eps"] == reference].set_index("layer").reindex(layers)
            ax.step(x, ref["mean"], where="mid", color="0.3", lw=1.0, ls="--", label=f"ε={reference:g} (reference)")
        ax.set_ylim(0, 1.1 * ymax if ymax > 0 else 1)
        ax.set_xticks(x, layers, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_ylabel("std of singular values")
        ax.set_title(f"{_KIND_LABEL[kind]}, ε = {eps:g}")
        ax.grid(alpha=0.3, axis="y")
    _legend(fig, axes[:, 0])
    return _finish(fig, note)


# ----------------------------------------------------------------------------- loss variation (Fig. 8 / Table 1)


def _lv_eps(df: pd.DataFrame) -> list[float]:
    return sorted({float(c.removeprefix("lv_mean_eps")) for c in df.columns if c.startswith("lv_mean_eps")})


def loss_variation_curves(df: pd.DataFrame, paper: pd.DataFrame | None = None, paper_label: str = "paper (Table 1)", note: str | None = None):
    """Mean maximal loss variation against ε, one panel per attack radius ε' (Fig. 8).

    Points: the mean over test examples (averaged over seeds); error bars: the std over test
    examples, as the paper's (averaged over seeds; the seed spread of the mean is in the
    tables). ``paper``: ``arlib.book.paper.wide(1, dataset=...)`` (rows ``(attack_eps, metric)``),
    nudged right so that its bars do not hide ours. Log axis: at ε = 0 the variation is one to two
    orders of magnitude above ε ≥ 4, and a linear axis would flatten every adversarially trained network
    (ours and the paper's) onto zero; error bars longer than their mean (the paper's std exceeds
    its mean) stop at the axis's floor with a ▾ (rule 3).
    """
    att = _lv_eps(df)
    fig, axes = _figure(1, max(len(att), 1), size=(3.8, 3.4))
    s = _summary(df, [f"lv_mean_eps{a:g}" for a in att] + [f"lv_std_eps{a:g}" for a in att])
    for ax, a in zip(axes[0], att):
        ours = _Series(
            "ours",
            s["eps"].to_numpy(dtype=float),
            s[f"lv_mean_eps{a:g}_mean"].to_numpy(dtype=float),
            s[f"lv_std_eps{a:g}_mean"].fillna(0).to_numpy(dtype=float),
            OURS,
        )
        theirs = None
        if paper is not None:
            try:
                pm, ps = paper.loc[(a, "loss_variation_mean")], paper.loc[(a, "loss_variation_std")]
                theirs = _Series(
                    paper_label,
                    np.array([float(e) + 0.3 for e in pm.index]),  # nudged so the bars do not hide ours
                    pm.to_numpy(float),
                    ps.to_numpy(float),
                    PAPER,
                    paper=True,
                )
            except KeyError:
                pass
        _panel(ax, [ours, theirs], "max loss increase", log=True)
        ax.set_title(f"attack radius ε' = {a:g}")
        _eps_axis(ax, s["eps"])
    _legend(fig, axes[0])
    return _finish(fig, note)


def loss_variation_at(df: pd.DataFrame, eps: float, bins: int = 30, note: str | None = None):
    """Histograms of the per-example maximal loss variation of the run at ``eps``, one panel per attack radius.

    Mean and std in the titles; axes shared across ε.
    """
    data, r, a, color = _run_at(df, eps)
    att = _lv_eps(df)
    fig, axes = _figure(1, max(len(att), 1), size=(3.8, 3.2))
    for ax, e2 in zip(axes[0], att):
        key = f"loss_variation_eps{e2:g}"
        hi = max(float(np.quantile(x[key], 0.995)) for _, x in data.values() if key in x) or 1e-6
        # Log-spaced bins on a log axis: the variations of ε = 0 and ε = 16 differ by orders of magnitude, and
        # linear bins fitted to ε = 0 put every robust network into the first bar. The first bin also counts
        # the examples whose loss does not rise at all (or rises by less than its lower edge).
        pos = np.concatenate([x[key][x[key] > 0] for _, x in data.values() if key in x])
        lo = max(float(np.quantile(pos, 0.01)) if pos.size else hi * 1e-4, hi * 1e-4)
        edges = np.geomspace(lo, hi, bins + 1) if hi > lo else np.linspace(0, hi, bins + 1)
        ymax = max(np.histogram(np.clip(x[key], edges[0], hi), bins=edges)[0].max() for _, x in data.values() if key in x)
        v = a[key].astype(np.float64)
        ax.hist(np.clip(v, edges[0], hi), bins=edges, color=color)
        if hi > lo:
            ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, 1.5 * ymax)
        ax.set_xlabel(f"max loss increase, ε' = {e2:g}")
        ax.set_ylabel("test examples")
        _stats_title(ax, f"ε = {eps:g} (run {r['short']})", f"mean {v.mean():.4f} · std {v.std():.4f}")
    return _finish(fig, note)


# ----------------------------------------------------------------------------- PGD accuracy (Fig. 12)


def _errorbar(ax, s: pd.DataFrame, metric: str, label: str, color: str, **style):
    """Our mean of ``metric`` over seeds with the seed std as error bars (nothing when the summary lacks it)."""
    series = _ours(s, metric, label, color, **style)
    if series is not None:
        _draw(ax, series)


def pgd_accuracy_curve(df: pd.DataFrame, paper: Mapping[str, pd.Series] | None = None, note: str | None = None):
    """Accuracy under PGD (radius 8, on originally correct test examples, App. D.2) against ε (Fig. 12).

    ``paper``: label -> Series indexed by ε (e.g. the ``pgd_acc`` row of Tables 3, 4, 5), dashed.
    """
    s = _summary(df, ["pgd_acc_correct", "pgd_acc_all"])
    fig, axes = _figure(1, 1, size=(5.5, 3.8))
    ax = axes[0][0]
    _errorbar(ax, s, "pgd_acc_correct", "ours (of correct examples)", OURS)
    _errorbar(ax, s, "pgd_acc_all", "ours (of all examples)", OURS, alpha=0.5, markersize=4)
    xs = list(s["eps"])
    for i, (lab, ser) in enumerate((paper or {}).items()):
        ser = ser.dropna()
        _draw(ax, _Series(lab, np.array([float(e) for e in ser.index]), ser.to_numpy(float), None, SERIES_COLORS[1 + i], paper=True))
        xs += [float(e) for e in ser.index]
    ax.set_ylabel("accuracy under PGD (%)")
    _eps_axis(ax, xs)
    _legend(fig, [ax])
    return _finish(fig, note)


# ----------------------------------------------------------------------------- spectral-norm grid (Fig. 6)


def _sp_label(sp) -> str:
    return "uncontrolled" if sp is None or (isinstance(sp, float) and math.isnan(sp)) else f"{sp:g}"


def spectral_grid_gaps(df: pd.DataFrame, paper: bool = True, note: str | None = None):
    """Loss and error gap against ε for each spectral-norm target (Fig. 6a): one row per target, tightest first,
    uncontrolled last; loss gap left, error gap (%-points) right.

    ``df``: rows of the "spectral" experiment plus the uncontrolled "pgd" rows (``spectral_norm`` NaN).
    The paper's Table 6 dashed where its target matches, in its own half of the panel where its
    levels are far from ours (rule 2).
    """
    from . import paper as P

    sps = sorted({float(x) for x in df["spectral_norm"].dropna().unique()}) + ([np.nan] if df["spectral_norm"].isna().any() else [])
    n = len(sps)
    if n == 0:
        fig, axes = _figure(1, 1)
        return _footer(_empty(fig, axes), note)
    panels = []  # per target: the row's summary and its (loss gap, error gap) series
    for sp in sps:
        sub = df[df["spectral_norm"].isna()] if isinstance(sp, float) and math.isnan(sp) else df[df["spectral_norm"] == sp]
        s = _summary(sub[sub["eps"] > 0], ["delta_loss", "delta_acc"])
        pw = None
        if paper:
            try:
                pw = P.wide(6, spectral_norm=None if math.isnan(sp) else int(sp)) if (math.isnan(sp) or float(sp).is_integer()) else None
            except P.PaperTableError:
                pw = None
        panels.append((s, [[_ours(s, m, "ours", OURS), _theirs(pw, m, "paper (Table 6)", PAPER)] for m in ("delta_loss", "delta_acc")]))
    # A row with a panel split in two (ours above the paper's, rule 2) is taller.
    split = [any(_paper_apart([x for x in series if x is not None and x.values().size]) for series in row) for _, row in panels]
    heights = [3.0 if sp_split else 2.2 for sp_split in split]
    fig, axes = _figure(n, 2, size=(3.8, sum(heights) / n), gridspec_kw={"height_ratios": heights})
    drawn = []
    for k, (row, sp, (s, row_series)) in enumerate(zip(axes, sps, panels)):
        for ax, series, what, ylabel in zip(row, row_series, ("loss gap", "error gap"), ("loss gap", "error gap (%)")):
            axs = _panel(ax, series, ylabel)
            axs[0].set_title(f"spectral norm {_sp_label(sp)}: {what}")
            _eps_axis(axs, list(s["eps"]) + _xs(series))
            if k < n - 1:
                axs[-1].set_xlabel("")
            drawn += axs
    _legend(fig, drawn)
    return _finish(fig, note)


def spectral_complexity(df: pd.DataFrame, note: str | None = None):
    """log10 of the spectral complexity (Definition 7) of every run, against ε, one line per spectral-norm target."""
    fig, axes = _figure(1, 1, size=(5.5, 3.6))
    ax = axes[0][0]
    d = df.assign(sp=df["spectral_norm"].map(_sp_label))
    for i, (sp, g) in enumerate(d.groupby("sp", sort=False)):
        s = _summary(g, ["log10_spectral_complexity"])
        _errorbar(ax, s, "log10_spectral_complexity", f"spectral norm {sp}", SERIES_COLORS[i % len(SERIES_COLORS)])
    ax.set_ylabel("log10 spectral complexity")
    _eps_axis(ax, df["eps"])
    _legend(fig, [ax])
    return _finish(fig, note)


# ----------------------------------------------------------------------------- Theorem 3.1 (Appendix C)


def bound_terms_plot(bound: pd.DataFrame, note: str | None = None):
    """The measurable factors of Theorem 3.1's margin term against ε (log10): w_min, prod sigma_min, v_min, their product, and the observed u_min."""
    b = bound[bound["available"].astype(bool)] if "available" in bound else bound
    fig, axes = _figure(1, 2, size=(5.2, 3.6))
    if b.empty or "w_min" not in b:
        return _footer(_empty(fig, axes, "no run with weights or bound.json"), note)
    ax = axes[0][0]
    # A layer with sigma_min = 0 makes the product -inf (the bound is vacuous); the plot shows the product over the
    # other layers, which is what can move with eps, and says so in the legend.
    prod = b["log10_prod_sigma_min_nonzero"] if "log10_prod_sigma_min_nonzero" in b else b["log10_prod_sigma_min"]
    zero = int(b["n_zero_sigma_min"].max()) if "n_zero_sigma_min" in b else 0
    with np.errstate(divide="ignore", invalid="ignore"):  # a 0 gives -inf: not drawn, and named in the footer
        b = b.assign(log10_w=np.log10(b["w_min"]), log10_v=np.log10(b["v_min"]), log10_u=np.log10(b["u_min"]), log10_prod=prod)
    b = b.assign(log10_u_lower_shown=b["log10_w"] + b["log10_prod"] + b["log10_v"])
    with np.errstate(invalid="ignore"):  # the seed std of -inf values: NaN
        s = _summary(b, ["log10_w", "log10_prod", "log10_v", "log10_u_lower_shown", "log10_u"])
    over = " over layers with σ_min > 0" if zero else ""
    for i, (m, lab) in enumerate(
        (
            ("log10_w", "min ‖w_y − w_ŷ‖₂"),
            ("log10_prod", f"∏ σ_min (conv layers{over})"),
            ("log10_v", "v_min proxy (l2)"),
            ("log10_u_lower_shown", f"their product (bound on u_min{over})"),
            ("log10_u", "observed u_min (smallest positive margin)"),
        )
    ):
        _errorbar(ax, s, m, f"(a) {lab}", SERIES_COLORS[i])
    ax.set_ylabel("log10")
    ax.set_title("(a) the margin term's factors")
    _eps_axis(ax, b["eps"])
    ax = axes[0][1]
    s2 = _summary(b, ["v_min", "v_median", "l2_radius_of_eps_ball"])
    _errorbar(ax, s2, "v_min", "(b) v_min (smallest)", SERIES_COLORS[2])
    _errorbar(ax, s2, "v_median", "(b) median", SERIES_COLORS[2], alpha=0.5)
    if "l2_radius_of_eps_ball_mean" in s2:
        ax.plot(s2["eps"], s2["l2_radius_of_eps_ball_mean"], color="0.4", ls=":", label="(b) l2 radius of the training l∞ ball")
    ax.set_ylabel("first-order l2 distance to boundary")
    ax.set_title("(b) distance to the boundary")
    _eps_axis(ax, b["eps"])
    _legend(fig, axes[0])
    return _finish(fig, note)


# ----------------------------------------------------------------------------- checking the rule on a drawn figure


def _display_points(artist, step: float = 2.0) -> np.ndarray:
    """Display-space points (pixels) of what ``artist`` draws: markers, and points every ``step`` px along its lines and outlines."""
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    def along(xy: np.ndarray, join: bool) -> np.ndarray:
        xy = xy[np.isfinite(xy).all(axis=1)] if not join else xy
        if not join or len(xy) < 2:
            return xy[np.isfinite(xy).all(axis=1)]
        out = [xy[:1]]
        for a, b in zip(xy[:-1], xy[1:]):
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                continue
            k = max(1, int(np.hypot(*(b - a)) // step))
            out.append(a + np.linspace(0, 1, k + 1)[1:, None] * (b - a))
        return np.concatenate(out)

    if isinstance(artist, Line2D):
        path = artist.get_transform().transform_path(artist.get_path())  # drawstyle (steps) included
        joined = artist.get_linestyle() not in ("None", "none", "", " ")
        return along(np.asarray(path.vertices, dtype=float), joined)
    if isinstance(artist, Rectangle) and artist.get_fill():
        return np.zeros((0, 2))  # a filled bar is checked as a box (_filled_boxes)
    if isinstance(artist, Patch):
        path = artist.get_transform().transform_path(artist.get_path())
        return along(np.asarray(path.vertices, dtype=float), True)
    if isinstance(artist, Collection):
        pts = []
        offsets = np.asarray(artist.get_offsets(), dtype=float).reshape(-1, 2)
        if len(offsets) and artist.get_offset_transform() is not None:
            pts.append(artist.get_offset_transform().transform(offsets))
        for p in artist.get_paths():
            if len(offsets) <= 1:  # line and poly collections (error bars, fills): their own vertices
                pts.append(along(np.asarray(artist.get_transform().transform_path(p).vertices, dtype=float), True))
        return np.concatenate(pts) if pts else np.zeros((0, 2))
    return np.zeros((0, 2))


def _filled_boxes(ax, renderer) -> list:
    """Display boxes of the filled rectangles of ``ax`` (histogram and bar chart bars), clipped to the axes."""
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import Bbox

    boxes = []
    for p in ax.patches:
        if isinstance(p, Rectangle) and p.get_visible() and p.get_fill() and _has_data(p):
            box = p.get_window_extent(renderer)
            if p.get_clip_on():
                box = Bbox.intersection(box, ax.bbox)
            if box is not None and box.width > 0 and box.height > 0:
                boxes.append((box, p))
    return boxes


def legend_overlaps(fig, pad: float = 1.0) -> list[str]:
    """The places where ``fig`` breaks the book's rule for legends, found from matplotlib's artists at draw time.

    Draws ``fig`` as the book shows it (PNG, ``bbox_inches="tight"``, with its layout) and, during that
    draw, takes the window extent of every legend (the figure's and every axes') and every boxed text
    (a statistics box) and checks it against the display-space points of every Line2D (markers and
    points every 2 px along the line), errorbar, step outline, scatter and filled bar of every axes
    of the figure (twin axes included), as far as each is visible inside its axes. ``pad``: pixels
    of a box's edge that may touch data. Returns one line per problem: a box that covers data, and
    a legend entry whose series has no finite point (rule 4). An empty list: nothing is hidden.
    """
    import io

    found: dict[str, list[str]] = {}  # the tight bbox draws the figure twice: the last draw is the one saved
    cid = fig.canvas.mpl_connect("draw_event", lambda event: found.update(last=_overlaps(fig, event.renderer, pad)))
    try:
        fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    finally:
        fig.canvas.mpl_disconnect(cid)
    return found.get("last", [])


def _overlaps(fig, renderer, pad: float) -> list[str]:
    from matplotlib.transforms import Bbox

    boxes = [(f"figure legend {i + 1}", leg.get_window_extent(renderer), leg) for i, leg in enumerate(fig.legends) if leg.get_visible()]
    for ax in fig.axes:
        name = ax.get_title() or ax.get_ylabel() or "axes"
        if ax.get_legend() is not None and ax.get_legend().get_visible():
            boxes.append((f"legend of '{name}'", ax.get_legend().get_window_extent(renderer), ax.get_legend()))
        for t in ax.texts:
            if t.get_visible() and t.get_bbox_patch() is not None and t.get_text().strip():
                boxes.append((f"text box '{t.get_text().splitlines()[0]}' in '{name}'", t.get_bbox_patch().get_window_extent(renderer), t))
    problems = []
    for what, box, owner in boxes:
        inner = Bbox.from_extents(box.x0 + pad, box.y0 + pad, box.x1 - pad, box.y1 - pad)
        hidden: dict[str, int] = {}
        for ax in fig.axes:
            artists = [a for a in (*ax.lines, *ax.collections, *ax.patches) if a.get_visible() and a is not owner]
            for a in artists:
                pts = _display_points(a)
                if not len(pts):
                    continue
                if a.get_clip_on():  # only what the axes show
                    x0, y0, x1, y1 = ax.bbox.extents
                    pts = pts[(pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)]
                inside = ((pts[:, 0] > inner.x0) & (pts[:, 0] < inner.x1) & (pts[:, 1] > inner.y0) & (pts[:, 1] < inner.y1)).sum()
                if inside:
                    key = f"{_series_name(ax, a)} ({type(a).__name__})"
                    hidden[key] = hidden.get(key, 0) + int(inside)
            for bar, p in _filled_boxes(ax, renderer):
                if bar.overlaps(inner):
                    key = f"{_series_name(ax, p)} (bar)"
                    hidden[key] = hidden.get(key, 0) + 1
        if hidden:
            problems.append(f"{what} covers " + ", ".join(f"{k}: {n} point(s)" for k, n in sorted(hidden.items())))
    for what, _box, owner in boxes:
        if hasattr(owner, "texts") and hasattr(owner, "legend_handles"):
            for t in owner.texts:
                label = t.get_text()
                series = [a for ax in fig.axes for a in _labelled(ax) if a.get_label() == label]
                if series and not any(_has_data(a) for a in series):
                    problems.append(f"{what} lists '{label}', a series with no finite point")
    return problems


def _labelled(ax) -> list:
    """The artists and containers of ``ax`` that can carry a legend label."""
    return [*ax.containers, *ax.lines, *ax.collections, *ax.patches]


def _series_name(ax, artist) -> str:
    """The label of the series ``artist`` belongs to (its container's, for error bars and bars), or its axes' title."""
    label = artist.get_label()
    for c in ax.containers:
        if artist in c or any(artist is x or (isinstance(x, (list, tuple)) and artist in x) for x in c):
            label = c.get_label()
    return f"'{label}'" if label and not label.startswith("_") else f"unlabelled in '{ax.get_title() or ax.get_ylabel()}'"
