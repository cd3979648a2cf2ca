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

Paper figure map: gap curves - Fig. 3a/6a/7a/9a; losses and error rates - Fig. 3b/6b/7b/9b;
margins - Fig. 4/10; true-class probability and loss histograms - Fig. 5a,b/11a,b;
singular-value std per layer - Fig. 5c,d/11c,d; loss variation - Fig. 8 / Table 1; PGD
accuracy - Fig. 12; the spectral-norm grid - Fig. 6.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from . import report

__all__ = [
    "eps_colors",
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

_SOURCE = {"ours": dict(marker="o", linestyle="-"), "paper": dict(marker="s", linestyle="--", alpha=0.8, markerfacecolor="none")}


STYLE = Path(__file__).with_name("arbook.mplstyle")  # the book's one figure style
MAX_WIDTH = 7.6  # inches: at 100 dpi, the book's content column (757 px), so text is shown at its own size


def use_style() -> None:
    """Apply the book's figure style (:data:`STYLE`) to every figure drawn from now on in this process."""
    import matplotlib.style

    matplotlib.style.use(STYLE)


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
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _footer(fig, note: str | None):
    if note:
        import textwrap

        fig.text(0.01, -0.01, "\n".join(textwrap.wrap(note, 140)), fontsize=7, color="0.35", ha="left", va="top")
    return fig


def _finish(fig, note: str | None, title: str | None = None):
    """The last step of every figure: its title, the constrained layout, the footer note."""
    if title:
        fig.suptitle(title)
    fig.set_layout_engine("constrained")
    return _footer(fig, note)


def _empty(fig, axes, text: str = "no runs to show"):
    for ax in np.ravel(axes):
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    return fig


EPS_MAX = 16.0  # the largest defensive strength of the paper, the end of the ε colour scale


def eps_colors(eps_values: Sequence[float]) -> dict[float, tuple]:
    """The colour of each defensive strength, the same in every figure of the book whatever other ε it shows:
    viridis at log2(1 + ε) / log2(1 + 16) (ε = 0 dark purple, 4, 8 and 16 evenly spaced up to yellow-green)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return {float(e): cmap(0.9 * min(math.log2(1 + float(e)) / math.log2(1 + EPS_MAX), 1.0)) for e in eps_values}


def _summary(df: pd.DataFrame, metrics: Sequence[str], by=("eps",)) -> pd.DataFrame:
    present = [m for m in metrics if m in df.columns]
    return report.summarise(df, by=list(by), metrics=present).sort_values(list(by))


def _errorbar(ax, s: pd.DataFrame, metric: str, label: str, color=None, scale: float = 1.0, offset: float = 0.0, **kw):
    if f"{metric}_mean" not in s.columns:
        return
    y = offset + scale * s[f"{metric}_mean"].to_numpy(dtype=float)
    err = np.abs(scale) * s[f"{metric}_std"].to_numpy(dtype=float)
    err = np.where(np.isnan(err), 0.0, err)
    ax.errorbar(s["eps"], y, yerr=err, label=label, color=color, capsize=3, **{**_SOURCE["ours"], **kw})


def _paper_line(ax, paper: pd.DataFrame | None, metric: str, label: str, color=None, scale: float = 1.0, offset: float = 0.0):
    if paper is None or metric not in paper.index:
        return
    row = paper.loc[metric].dropna()
    ax.plot([float(e) for e in row.index], offset + scale * row.to_numpy(dtype=float), label=label, color=color, **_SOURCE["paper"])


def _paper_eps(paper: pd.DataFrame | None) -> list[float]:
    """The ε columns of a paper block (none without one), so that the x axis shows the paper's ε too."""
    return [float(e) for e in paper.columns] if paper is not None else []


def _eps_axis(ax, eps_values):
    ax.set_xticks(sorted(set(float(e) for e in eps_values)))
    ax.set_xlabel("defensive strength ε (0–255)")
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------- gaps, losses, errors


def gap_curves(df: pd.DataFrame, paper: pd.DataFrame | None = None, paper_label: str = "paper", title: str | None = None,
               note: str | None = None, label: str = "ours", others: Mapping[str, pd.DataFrame] | None = None):
    """Loss gap and error gap against ε (Fig. 3a, 6a, 7a, 9a).

    Ours: mean over seeds with the seed std as error bars; the paper's block (``arlib.book.paper.wide``;
    rows ``delta_loss``, ``delta_acc``) dashed. The error gap is ``train_acc - test_acc``
    (= test error - train error, %-points). ``others``: more of our runs to overlay
    (label -> rows), e.g. the base network next to the deeper one.
    """
    s = _summary(df, ["delta_loss", "delta_acc"])
    extra = {k: _summary(v, ["delta_loss", "delta_acc"]) for k, v in (others or {}).items() if v is not None and len(v)}
    fig, axes = _figure(1, 2)
    for ax, metric, ylabel, panel in zip(axes[0], ("delta_loss", "delta_acc"), ("loss gap (test − train loss)", "error gap (test − train error, %)"),
                                         ("(a) generalization gap in loss", "(b) generalization gap in error")):
        ax.set_title(panel)
        _errorbar(ax, s, metric, label, color="C0")
        for i, (lab, se) in enumerate(extra.items()):
            _errorbar(ax, se, metric, lab, color=f"C{i + 1}", alpha=0.6)
        _paper_line(ax, paper, metric, paper_label, color="C3")
        ax.set_ylabel(ylabel)
        _eps_axis(ax, list(s["eps"]) + _paper_eps(paper))
        ax.legend()
    return _finish(fig, note, title)


def loss_error_curves(df: pd.DataFrame, paper: pd.DataFrame | None = None, paper_label: str = "paper", title: str | None = None,
                      note: str | None = None):
    """Training and test loss, and training and test error rate, against ε (Fig. 3b, 6b, 7b, 9b)."""
    s = _summary(df, ["train_loss", "test_loss", "train_acc", "test_acc"])
    fig, axes = _figure(1, 2)
    ax = axes[0][0]
    for metric, c in (("train_loss", "C0"), ("test_loss", "C1")):
        _errorbar(ax, s, metric, f"{metric.split('_')[0]} (ours)", color=c)
        _paper_line(ax, paper, metric, f"{metric.split('_')[0]} ({paper_label})", color=c)
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("(a) training and test loss")
    ax = axes[0][1]
    ax.set_title("(b) training and test error")
    for metric, c in (("train_acc", "C0"), ("test_acc", "C1")):
        # error rate = 100 - accuracy
        _errorbar(ax, s, metric, f"{metric.split('_')[0]} (ours)", color=c, scale=-1.0, offset=100.0)
        _paper_line(ax, paper, metric, f"{metric.split('_')[0]} ({paper_label})", color=c, scale=-1.0, offset=100.0)
    ax.set_ylabel("error rate (%)")
    for ax in axes[0]:
        _eps_axis(ax, list(s["eps"]) + _paper_eps(paper))
        ax.legend()
    return _finish(fig, note, title)


def training_curves(history: pd.DataFrame, note: str | None = None):
    """Per-epoch training loss (running, on the perturbed batches), clean test loss and test accuracy, one line per ε (seed 0 solid, others thin)."""
    fig, axes = _figure(1, 3, size=(4.2, 3.4))
    if history.empty:
        return _footer(_empty(fig, axes), note)
    colors = eps_colors(history["eps"].unique())
    first_seed = history.groupby("eps")["seed"].min().to_dict()
    for (eps, seed, h), g in history.groupby(["eps", "seed", "hash"]):
        main = seed == first_seed.get(eps)
        kw = dict(color=colors[float(eps)], lw=1.6 if main else 0.7, alpha=1.0 if main else 0.5, label=f"ε={eps:g}" if main else None)
        g = g.sort_values("epoch")
        for ax, col in zip(axes[0], ("train_running_loss", "test_loss", "test_acc")):
            if col in g:
                ax.plot(g["epoch"], g[col], **kw)
    from matplotlib.ticker import MaxNLocator

    for ax, lab, panel in zip(axes[0], ("training loss (adversarial batches)", "test loss (clean)", "test accuracy (%)"),
                              ("(a) training loss", "(b) test loss", "(c) test accuracy")):
        ax.set_title(panel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    return _finish(fig, note)


# ----------------------------------------------------------------------------- margins


def _annot(v: np.ndarray) -> str:
    v = np.asarray(v, dtype=np.float64)
    sk = float(scipy.stats.skew(v, bias=True)) if v.size > 2 and v.std() > 0 else float("nan")
    return f"mean {v.mean():.3f}\nstd {v.std():.3f}\nskew {sk:.2f}\nmean|m| {np.abs(v).mean():.3f}"


def _arrays_by_eps(df: pd.DataFrame) -> dict[float, tuple[pd.Series, dict]]:
    return {e: (r, report.load_arrays(r)) for e, r in report.runs_by_eps(df[df["analysed"].astype(bool)] if "analysed" in df else df).items()}


def _run_at(df: pd.DataFrame, eps: float) -> tuple[dict[float, tuple[pd.Series, dict]], pd.Series, dict, tuple]:
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


def margin_distributions(df: pd.DataFrame, bins: int = 40, note: str | None = None):
    """Margin distributions on the training and test sets, all ε overlaid (Fig. 4, 10): one run (smallest seed) per ε."""
    data = _arrays_by_eps(df)
    colors = eps_colors(list(data))
    fig, axes = _figure(1, 2)
    for ax, split in zip(axes[0], ("train", "test")):
        rng = _range([a[f"{split}_margin"] for _, a in data.values()])
        for e, (_, a) in data.items():
            m = a[f"{split}_margin"].astype(np.float64)
            ax.hist(m, bins=bins, range=rng, density=True, histtype="step", lw=1.6, color=colors[e],
                    label=f"ε={e:g}: std {m.std():.2f}, skew {scipy.stats.skew(m, bias=True) if m.std() > 0 else float('nan'):.2f}")
        ax.axvline(0, color="k", lw=0.8, ls=":")
        ax.set_xlabel("margin (true logit − best other)")
        ax.set_ylabel("density")
        ax.set_title(f"{split} set")
        ax.legend()
    return _finish(fig, note)


def margins_at(df: pd.DataFrame, eps: float, bins: int = 40, note: str | None = None):
    """Train and test margin histograms of the run at ``eps`` (smallest seed), mean/std/skewness annotated; axes shared across ε."""
    data, r, a, color = _run_at(df, eps)
    fig, axes = _figure(1, 2)
    for ax, split in zip(axes[0], ("train", "test")):
        rng = _range([x[f"{split}_margin"] for _, x in data.values()])
        ymax = max(np.histogram(x[f"{split}_margin"].astype(np.float64), bins=bins, range=rng, density=True)[0].max() for _, x in data.values())
        m = a[f"{split}_margin"].astype(np.float64)
        ax.hist(m, bins=bins, range=rng, density=True, color=color, alpha=0.8)
        ax.axvline(0, color="k", lw=0.8, ls=":")
        ax.text(0.98, 0.95, _annot(m), transform=ax.transAxes, ha="right", va="top", fontsize=8, family="monospace",
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.8"))
        ax.set_xlim(*rng)
        ax.set_ylim(0, 1.08 * ymax)
        ax.set_xlabel("margin (true logit − best other)")
        ax.set_ylabel("density")
        ax.set_title(f"{split} set, ε = {eps:g} (run {r['short']}, seed {int(r['seed'])})")
    return _finish(fig, note)


# ----------------------------------------------------------------------------- probabilities and losses (Fig. 5a,b / 11a,b)


def prob_loss_histograms(df: pd.DataFrame, bins: int = 30, note: str | None = None):
    """Histograms of the test true-class probability and test loss, all ε overlaid (Fig. 5a,b / 11a,b)."""
    data = _arrays_by_eps(df)
    colors = eps_colors(list(data))
    fig, axes = _figure(1, 2)
    lrng = _range([a["test_loss"] for _, a in data.values()], q=0.0)
    for e, (_, a) in data.items():
        axes[0][0].hist(a["test_true_prob"].astype(np.float64), bins=bins, range=(0, 1), histtype="step", lw=1.6, color=colors[e], label=f"ε={e:g}")
        axes[0][1].hist(a["test_loss"].astype(np.float64), bins=bins, range=(max(lrng[0], 0), lrng[1]), histtype="step", lw=1.6, color=colors[e], label=f"ε={e:g}")
    axes[0][0].set_xlabel("estimated probability of the true class")
    axes[0][1].set_xlabel("test loss per example")
    for ax in axes[0]:
        ax.set_ylabel("examples")
        ax.legend()
    return _finish(fig, note)


def prob_loss_at(df: pd.DataFrame, eps: float, bins: int = 30, note: str | None = None):
    """Test true-class probability and test loss histograms of the run at ``eps``; axes shared across ε."""
    data, r, a, color = _run_at(df, eps)
    lrng = _range([x["test_loss"] for _, x in data.values()], q=0.0)
    lrng = (max(lrng[0], 0.0), lrng[1])
    fig, axes = _figure(1, 2)
    for ax, key, rng, lab in ((axes[0][0], "test_true_prob", (0.0, 1.0), "estimated probability of the true class"),
                              (axes[0][1], "test_loss", lrng, "test loss per example")):
        ymax = max(np.histogram(x[key].astype(np.float64), bins=bins, range=rng)[0].max() for _, x in data.values())
        v = a[key].astype(np.float64)
        ax.hist(v, bins=bins, range=rng, color=color, alpha=0.8)
        ax.text(0.98, 0.95, f"mean {v.mean():.3f}\nmedian {np.median(v):.3f}\nstd {v.std():.3f}", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, family="monospace", bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.8"))
        ax.set_xlim(*rng)
        ax.set_ylim(0, 1.08 * ymax)
        ax.set_xlabel(lab)
        ax.set_ylabel("test examples")
        ax.set_title(f"ε = {eps:g} (run {r['short']})")
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


def sv_std_per_layer(df: pd.DataFrame, eps_a: float = 4, eps_b: float = 16, kinds: Sequence[str] = ("operator", "reshaped"),
                     note: str | None = None):
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
        ax.legend()
        ax.grid(alpha=0.3, axis="y")
    return _finish(fig, note)


def sv_std_at(df: pd.DataFrame, eps: float, reference: float | None = None, kinds: Sequence[str] = ("operator", "reshaped"),
              note: str | None = None):
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
        ax.legend()
        ax.grid(alpha=0.3, axis="y")
    return _finish(fig, note)


# ----------------------------------------------------------------------------- loss variation (Fig. 8 / Table 1)


def _lv_eps(df: pd.DataFrame) -> list[float]:
    return sorted({float(c.removeprefix("lv_mean_eps")) for c in df.columns if c.startswith("lv_mean_eps")})


def loss_variation_curves(df: pd.DataFrame, paper: pd.DataFrame | None = None, paper_label: str = "paper (Table 1)", note: str | None = None):
    """Mean maximal loss variation against ε, one panel per attack radius ε' (Fig. 8).

    Points: the mean over test examples (averaged over seeds); error bars: the std over test
    examples, as the paper's (averaged over seeds; the seed spread of the mean is in the
    tables). ``paper``: ``arlib.book.paper.wide(1, dataset=...)`` (rows ``(attack_eps, metric)``),
    nudged right so that its bars do not hide ours.
    """
    att = _lv_eps(df)
    fig, axes = _figure(1, max(len(att), 1), size=(3.8, 3.4))
    s = _summary(df, [f"lv_mean_eps{a:g}" for a in att] + [f"lv_std_eps{a:g}" for a in att])
    for ax, a in zip(axes[0], att):
        ax.errorbar(s["eps"], s[f"lv_mean_eps{a:g}_mean"], yerr=s[f"lv_std_eps{a:g}_mean"], color="C0", capsize=3, label="ours", **_SOURCE["ours"])
        if paper is not None:
            try:
                pm = paper.loc[(a, "loss_variation_mean")]
                ps = paper.loc[(a, "loss_variation_std")]
            except KeyError:
                pm = None
            if pm is not None:
                xs = [float(e) + 0.3 for e in pm.index]  # nudged so the bars do not hide ours
                ax.errorbar(xs, pm.to_numpy(float), yerr=ps.to_numpy(float), color="C3", capsize=3, label=paper_label, **_SOURCE["paper"])
        ax.set_title(f"attack radius ε' = {a:g}")
        # Log scale: at ε = 0 the variation is one to two orders of magnitude above ε ≥ 4, and a linear
        # axis would flatten every adversarially trained network (ours and the paper's) onto zero.
        ax.set_yscale("log", nonpositive="clip")
        ax.set_ylabel("max loss increase (log scale)")
        _eps_axis(ax, s["eps"])
        ax.legend()
    return _finish(fig, note)


def loss_variation_at(df: pd.DataFrame, eps: float, bins: int = 30, note: str | None = None):
    """Histograms of the per-example maximal loss variation of the run at ``eps``, one panel per attack radius; axes shared across ε."""
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
        ax.hist(np.clip(v, edges[0], hi), bins=edges, color=color, alpha=0.8)
        if hi > lo:
            ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, 1.5 * ymax)
        ax.text(0.97, 0.95, f"mean {v.mean():.4f}\nstd {v.std():.4f}", transform=ax.transAxes, ha="right", va="top", fontsize=8,
                family="monospace", bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.8"))
        ax.set_xlabel(f"max loss increase, ε' = {e2:g}")
        ax.set_ylabel("test examples")
        ax.set_title(f"ε = {eps:g} (run {r['short']})")
    return _finish(fig, note)


# ----------------------------------------------------------------------------- PGD accuracy (Fig. 12)


def pgd_accuracy_curve(df: pd.DataFrame, paper: Mapping[str, pd.Series] | None = None, note: str | None = None):
    """Accuracy under PGD (radius 8, on originally correct test examples, App. D.2) against ε (Fig. 12).

    ``paper``: label -> Series indexed by ε (e.g. the ``pgd_acc`` row of Tables 3, 4, 5), dashed.
    """
    s = _summary(df, ["pgd_acc_correct", "pgd_acc_all"])
    fig, axes = _figure(1, 1, size=(5.5, 3.8))
    ax = axes[0][0]
    _errorbar(ax, s, "pgd_acc_correct", "ours (of correct examples)", color="C0")
    _errorbar(ax, s, "pgd_acc_all", "ours (of all examples)", color="C0", alpha=0.5, markersize=4)
    xs = list(s["eps"])
    for i, (lab, ser) in enumerate((paper or {}).items()):
        ser = ser.dropna()
        ax.plot([float(e) for e in ser.index], ser.to_numpy(float), color=f"C{i + 1}", label=lab, **_SOURCE["paper"])
        xs += [float(e) for e in ser.index]
    ax.set_ylabel("accuracy under PGD (%)")
    _eps_axis(ax, xs)
    ax.legend()
    return _finish(fig, note)


# ----------------------------------------------------------------------------- spectral-norm grid (Fig. 6)


def _sp_label(sp) -> str:
    return "uncontrolled" if sp is None or (isinstance(sp, float) and math.isnan(sp)) else f"{sp:g}"


def spectral_grid_gaps(df: pd.DataFrame, paper: bool = True, note: str | None = None):
    """Loss and error gap against ε for each spectral-norm target (Fig. 6a): one panel per target, tightest first, uncontrolled last.

    ``df``: rows of the "spectral" experiment plus the uncontrolled "pgd" rows (``spectral_norm`` NaN).
    The paper's Table 6 dashed where its target matches. Loss gap on the left axis, error gap
    (%-points) on the right axis.
    """
    from . import paper as P

    sps = sorted({float(x) for x in df["spectral_norm"].dropna().unique()}) + ([np.nan] if df["spectral_norm"].isna().any() else [])
    n = len(sps)
    if n == 0:
        fig, axes = _figure(1, 1)
        return _footer(_empty(fig, axes), note)
    ncols = 2 if n > 1 else 1
    nrows = math.ceil(n / ncols)
    fig, axes = _figure(nrows, ncols, size=(5.0, 3.3))
    for k, sp in enumerate(sps):
        ax = axes[k // ncols][k % ncols]
        sub = df[df["spectral_norm"].isna()] if isinstance(sp, float) and math.isnan(sp) else df[df["spectral_norm"] == sp]
        sub = sub[sub["eps"] > 0]
        s = _summary(sub, ["delta_loss", "delta_acc"])
        _errorbar(ax, s, "delta_loss", "loss gap (ours)", color="C0")
        ax2 = ax.twinx()
        _errorbar(ax2, s, "delta_acc", "error gap (ours)", color="C1")
        pw = None
        if paper:
            try:
                pw = P.wide(6, spectral_norm=None if math.isnan(sp) else int(sp)) if (math.isnan(sp) or float(sp).is_integer()) else None
            except P.PaperTableError:
                pw = None
        _paper_line(ax, pw, "delta_loss", "loss gap (paper)", color="C0")
        _paper_line(ax2, pw, "delta_acc", "error gap (paper)", color="C1")
        ax.set_title(f"spectral norm {_sp_label(sp)}")
        ax.set_ylabel("loss gap", color="C0")
        ax2.set_ylabel("error gap (%)", color="C1")
        _eps_axis(ax, list(s["eps"]) + [4, 8, 16] * (pw is not None))
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="best")
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    return _finish(fig, note)


def spectral_complexity(df: pd.DataFrame, note: str | None = None):
    """log10 of the spectral complexity (Definition 7) of every run, against ε, one line per spectral-norm target."""
    fig, axes = _figure(1, 1, size=(5.5, 3.6))
    ax = axes[0][0]
    d = df.assign(sp=df["spectral_norm"].map(_sp_label))
    for i, (sp, g) in enumerate(d.groupby("sp", sort=False)):
        s = _summary(g, ["log10_spectral_complexity"])
        _errorbar(ax, s, "log10_spectral_complexity", f"spectral norm {sp}", color=f"C{i}")
    ax.set_ylabel("log10 spectral complexity")
    _eps_axis(ax, df["eps"])
    ax.legend()
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
    b = b.assign(log10_w=np.log10(b["w_min"]), log10_v=np.log10(b["v_min"]), log10_u=np.log10(b["u_min"]), log10_prod=prod)
    b = b.assign(log10_u_lower_shown=b["log10_w"] + b["log10_prod"] + b["log10_v"])
    s = _summary(b, ["log10_w", "log10_prod", "log10_v", "log10_u_lower_shown", "log10_u"])
    over = " over layers with σ_min > 0" if zero else ""
    for i, (m, lab) in enumerate((("log10_w", "min ‖w_y − w_ŷ‖₂"), ("log10_prod", f"∏ σ_min (conv layers{over})"),
                                  ("log10_v", "v_min proxy (l2)"), ("log10_u_lower_shown", f"their product (bound on u_min{over})"),
                                  ("log10_u", "observed u_min (smallest positive margin)"))):
        _errorbar(ax, s, m, lab, color=f"C{i}")
    ax.set_ylabel("log10")
    _eps_axis(ax, b["eps"])
    ax.legend()
    ax = axes[0][1]
    s2 = _summary(b, ["v_min", "v_median", "l2_radius_of_eps_ball"])
    _errorbar(ax, s2, "v_min", "v_min (smallest)", color="C2")
    _errorbar(ax, s2, "v_median", "median", color="C2", alpha=0.5)
    if "l2_radius_of_eps_ball_mean" in s2:
        ax.plot(s2["eps"], s2["l2_radius_of_eps_ball_mean"], color="0.4", ls=":", label="l2 radius of the training l∞ ball")
    ax.set_ylabel("first-order l2 distance to boundary")
    _eps_axis(ax, b["eps"])
    ax.legend()
    return _finish(fig, note)
