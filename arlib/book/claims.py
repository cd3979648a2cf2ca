"""The claims ledger: what Appendix B says, tested on our runs.

Each claim of Appendix B.1-B.6 (and the PGD-accuracy trend of App. D.2 / Fig. 12) is a
predicate on the results tables of :func:`arlib.book.report.collect` (one DataFrame per
experiment: ``"pgd"``, ``"fgsm"``, ``"deep"``, ``"spectral"``). Evaluating it gives a
:class:`Verdict`: one of :data:`VERDICTS` (holds, contradicted, below resolution, premise not met, not run), our evidence (the
numbers, mean ± seed std) and the paper's evidence (from :mod:`arlib.book.paper`).
:func:`ledger` evaluates every claim for a profile.

The statistical model
---------------------
Most claims are trends in ε: a metric's mean over seeds should fall (or rise) from ε_lo to ε_hi
(by default the ends of the grid, 4 and 16). Each trend is the change of the cell mean with a
95 % interval that carries both sources of error (:mod:`arlib.intervals`): the seeds (Welch's
variance of the difference of two means, Satterthwaite's degrees of freedom; a seed draws the
initialisation, the batches and the training images) and, for test metrics of runs that store
their per-example outcomes, the test images (a Poisson bootstrap over the images, the same
resample for every run, seeds held fixed). A cell trained with a single seed borrows the seed
variance of the same metric at the same ε from the ``pgd`` cells (said in the evidence).

Within one ledger column (one regime and one pair of strengths) the p-values of every judged
trend form a family and are adjusted by Holm's method. Five verdicts:

* **holds**: the Holm-adjusted p is below 0.05 and the change goes the claimed way (its 95 %
  interval excludes 0 on the claimed side);
* **contradicted**: the same, the other way;
* **below resolution**: the interval includes 0 (or excludes it only before the adjustment); the
  evidence gives the interval and the smallest change the design detects with 80 % power;
* **premise not met**: the claim presupposes something that fails in this regime (:data:`PREMISES`:
  B.3 needs networks that fit their training sets, B.4.2 an uncontrolled error gap that rises); the
  trends are shown, not judged, and are not in the family;
* **not run**: a cell the claim needs has no finished run (or only damaged ones).

A claim made of several trends holds if every part holds, is contradicted if any part is, is not
run if any part is not run, and is below resolution otherwise.

The singular-value claim (B.2) is about *most layers*; its unit of replication is the layer,
not the seed: per layer the spread is averaged over seeds, the fraction of layers whose spread
falls from ε_lo to ε_hi is tested against 1/2 with a two-sided sign (binomial) test, whose p
joins the family; it holds if that fraction is above 1/2 and the summed decrease (B.2's first
group) exceeds the summed increase (second group). It is judged twice: on the raw spread (the
paper's std of the singular values) and on a scale-free one (std / largest singular value of the
same layer), which separates a concentrating spectrum from a shrinking one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import intervals
from ..analysis import two_group_std_difference
from . import paper as P
from . import report

__all__ = [
    "VERDICTS",
    "Trend",
    "Verdict",
    "Claim",
    "CLAIMS",
    "compare",
    "combine",
    "evaluate",
    "ledger",
    "frames_for",
    "claim_eps",
    "summary",
    "fit_summary",
    "explain",
    "regime_ledger",
    "ledger_wide",
    "ledger_table",
    "PREMISES",
    "Premise",
    "Context",
    "verdicts_markdown",
    "fitted_eps",
    "comparisons",
    "compared_ledger",
]

VERDICTS = ("holds", "contradicted", "below resolution", "premise not met", "not run")
HOLDS, FAILS, BELOW, PREMISE, NOT_RUN = VERDICTS
ALPHA = 0.05  # family-wise level of each ledger column (Holm)

NAMES = {
    "delta_loss": "loss gap",
    "delta_acc": "error gap",
    "test_acc": "test accuracy",
    "train_acc": "training accuracy",
    "pgd_acc_correct": "PGD accuracy (of clean-correct)",
    "pgd_acc_all": "PGD accuracy (of all)",
    "train_margin_std": "std of training margins",
    "train_margin_abs_mean": "mean |training margin|",
    "test_margin_std": "std of test margins",
    "test_margin_abs_mean": "mean |test margin|",
}


def _name(metric: str) -> str:
    if metric.startswith("lv_mean_eps"):
        return f"mean loss variation at ε'={metric.removeprefix('lv_mean_eps')}"
    return NAMES.get(metric, metric)


def _fmt(x: float, metric: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    d = report.metric_digits(metric) if metric else 3
    return f"{x:.{d}f}"


@dataclass(frozen=True)
class Trend:
    """A metric compared between two defensive strengths (see the module's statistical model)."""

    metric: str
    direction: int  # -1: claimed to fall with eps, +1: to rise
    eps_lo: float
    eps_hi: float
    lo: tuple[float, float, int]  # mean, std over seeds, n
    hi: tuple[float, float, int]
    change: intervals.Change
    p_adjusted: float  # Holm within the ledger column (NaN: not judged)
    verdict: str
    reason: str
    collapsed: tuple[int, int] = (0, 0)  # collapsed runs left out at eps_lo, eps_hi
    judged: bool = True  # False: shown, not judged (outside the Holm family)

    @property
    def diff(self) -> float:
        return self.change.diff

    @property
    def borrowed(self) -> bool:
        return self.change.borrowed

    def interval(self) -> str:
        """``change −1.67, 95 % CI [−4.10, +0.77] (3+3 seeds × 10,000 test images), resolution 2.1``."""
        c, d = self.change, report.metric_digits(self.metric)
        if math.isnan(c.diff):
            return ""
        text = f"change {c.diff:+.{d}f}"
        if not c.defined:
            return text + " (no interval: one seed and no seed spread to borrow)"
        what = f"{c.n_lo}+{c.n_hi} seeds" + (f" × {c.n_images:,} test images" if c.n_images else ", seeds only")
        text += f", 95 % CI [{c.ci[0]:+.{d}f}, {c.ci[1]:+.{d}f}] ({what}{'; seed spread borrowed from the PGD cells' if c.borrowed else ''})"
        text += f", resolution {c.resolution:.{d}f}"
        if math.isfinite(self.p_adjusted):
            text += f", Holm p {self.p_adjusted:.2g}"
        return text

    def evidence(self, tag: str | None = None) -> str:
        """The comparison as text, ending in ``[verdict]`` (or ``[tag]`` for a comparison shown but not judged)."""

        def cell(c, e, dropped):
            mean, std, n = c
            gone = f"; {n + dropped} seeds, {dropped} collapsed" if dropped else ""
            if n == 0:
                return f"not run at ε={e:g}" if not dropped else f"no usable run at ε={e:g} ({dropped} collapsed)"
            s = _fmt(mean, self.metric)
            if not math.isnan(std):
                s += f" ± {_fmt(std, self.metric)}"
            return s + f" (n={n}{gone}) at ε={e:g}"

        text = f"{_name(self.metric)}: {cell(self.lo, self.eps_lo, self.collapsed[0])} → {cell(self.hi, self.eps_hi, self.collapsed[1])}"
        if self.interval():
            text += "; " + self.interval()
        if "damaged" in self.reason:
            text += f" ({self.reason})"
        return text + f" [{tag or (self.verdict if self.judged else 'shown, not judged')}]"


@dataclass(frozen=True)
class Verdict:
    verdict: str
    ours: str
    paper: str


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    statement: str
    check: Callable[[Mapping[str, pd.DataFrame], "Context"], tuple[str, str]]  # (frames, context) -> (verdict, ours)
    paper: Callable[[str], str]  # dataset -> the paper's evidence
    # The paper's change of a Table 3 (ResNet-56, CIFAR-10) metric, for the resolution column: (metric, table).
    paper_metric: tuple[str, str] | None = None

    def evaluate(self, frames: Mapping[str, pd.DataFrame], dataset: str = "cifar10", ctx: "Context | None" = None) -> Verdict:
        ctx = ctx if ctx is not None else Context()
        premise = PREMISES.get(self.id)
        if premise is not None:
            met, why = premise.check(frames, ctx)
            if met is False:
                _, ours = self.check(frames, ctx.shown_only())
                return Verdict(PREMISE, f"premise not met: {why}. Shown, not judged: {ours}", self.paper(dataset))
            if met is None:
                verdict, ours = self.check(frames, ctx)
                return Verdict(verdict, f"{ours} (premise: {why})", self.paper(dataset))
        verdict, ours = self.check(frames, ctx)
        assert verdict in VERDICTS, verdict
        return Verdict(verdict, ours, self.paper(dataset))


@dataclass
class Context:
    """What the checks of one ledger column share: the strengths compared, the Holm family, the loaded outcomes.

    :func:`evaluate` runs every check twice: first collecting the raw p-value of every judged trend
    (``family``), then with the Holm-adjusted ones (``adjusted``) that the verdicts use.
    """

    eps_lo: float | None = None
    eps_hi: float | None = None
    family: dict | None = None  # trend key -> raw p (first pass)
    adjusted: dict | None = None  # trend key -> Holm-adjusted p (second pass)
    judged: bool = True  # False: trends shown, not judged (a premise failed): not in the family
    cache: dict | None = None  # run path -> outcomes; "weights" -> the bootstrap weights
    nested: bool = False  # a check called by another (B.2's comparison quantity)

    def __post_init__(self):
        self.cache = {} if self.cache is None else self.cache

    def shown_only(self) -> "Context":
        return dataclasses.replace(self, judged=False)

    def options(self) -> dict:
        return {k: v for k, v in (("eps_lo", self.eps_lo), ("eps_hi", self.eps_hi)) if v is not None}


# ----------------------------------------------------------------------------- the rule


def _cell_stats(df: pd.DataFrame | None, metric: str, eps: float) -> tuple[float, float, int]:
    v = _cell_values(df, metric, eps)
    if v.size == 0:
        return (float("nan"), float("nan"), 0)
    return (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size))


def _cell_rows(df: pd.DataFrame | None, metric: str, eps: float) -> pd.DataFrame:
    if df is None or df.empty or metric not in df.columns:
        return pd.DataFrame()
    rows = df.loc[np.isclose(df["eps"].astype(float), eps)]
    return rows[np.isfinite(pd.to_numeric(rows[metric], errors="coerce").to_numpy(float))]


def _cell_values(df: pd.DataFrame | None, metric: str, eps: float) -> np.ndarray:
    rows = _cell_rows(df, metric, eps)
    return pd.to_numeric(rows[metric], errors="coerce").to_numpy(float) if len(rows) else np.zeros(0)


def claim_eps(df: pd.DataFrame | None) -> tuple[float, float]:
    """The two defensive strengths the trends compare: 4 and 16 where run, else the smallest and largest positive ε of ``df``."""
    return _claim_eps(df, Context())


def summary(ledger_df: pd.DataFrame) -> str:
    """One paragraph (Markdown) counting the verdicts of a ledger and naming the claims of each."""
    parts = []
    for v in VERDICTS:
        ids = ledger_df.loc[ledger_df["verdict"] == v, "section"].tolist()
        if ids:
            parts.append(f"**{len(ids)} {v}** ({', '.join(ids)})")
    return f"Of {len(ledger_df)} claims: " + "; ".join(parts) + "."


def _claim_eps(df: pd.DataFrame | None, ctx: "Context | Mapping") -> tuple[float, float]:
    lo, hi = (ctx.get("eps_lo"), ctx.get("eps_hi")) if isinstance(ctx, Mapping) else (ctx.eps_lo, ctx.eps_hi)
    eps = sorted(float(e) for e in df["eps"].unique() if float(e) > 0) if df is not None and len(df) else []
    # Fall back to the run's own end points only when it has two strengths to compare: a block run at a
    # single ε (e.g. the deeper net at ε 4 only) must read "not run" at 16, not compare ε 4 with itself.
    if lo is None:
        lo = 4.0 if 4.0 in eps or len(eps) < 2 else eps[0]
    if hi is None:
        hi = 16.0 if 16.0 in eps or len(eps) < 2 else eps[-1]
    return float(lo), float(hi)


def _image_terms(outcomes: Mapping[str, np.ndarray], metric: str, row) -> intervals.ImageTerms | None:
    """A run's ``metric`` as a function of test-image weights, from its stored per-example outcomes (None: not a test metric)."""
    o = outcomes
    if metric in ("test_acc", "delta_acc") and "test_correct" in o:
        const, scale = (0.0, 100.0) if metric == "test_acc" else (float(row["train_acc"]), -100.0)
        return intervals.ImageTerms(o["test_index"], o["test_correct"], const=const, scale=scale)
    if metric in ("test_loss", "delta_loss") and "test_loss" in o:
        const = 0.0 if metric == "test_loss" else -float(row["train_loss"])
        return intervals.ImageTerms(o["test_index"], o["test_loss"], const=const)
    if metric == "pgd_acc_correct" and "pgd_robust" in o:
        return intervals.ImageTerms(o["pgd_index"], o["pgd_robust"], den=o["pgd_clean_correct"], scale=100.0)
    if metric == "pgd_acc_all" and "pgd_robust" in o:
        return intervals.ImageTerms(o["pgd_index"], o["pgd_robust"], scale=100.0)
    return None


def _outcomes(row, ctx: Context) -> Mapping[str, np.ndarray] | None:
    path = row.get("path") if hasattr(row, "get") else None
    if not isinstance(path, str):
        return None
    if path not in ctx.cache:
        try:
            ctx.cache[path] = report.run_of(row).outcomes()
        except Exception:  # a damaged archive: the seed component alone (the store reports the damage)
            ctx.cache[path] = None
    return ctx.cache[path]


def _image_means(rows_lo: pd.DataFrame, rows_hi: pd.DataFrame, metric: str, ctx: Context) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Both cells' means under the same test-image resamples, or (None, None, 0) if a run lacks per-example outcomes."""
    terms = []
    for rows in (rows_lo, rows_hi):
        cell = []
        for _, row in rows.iterrows():
            o = _outcomes(row, ctx)
            t = _image_terms(o, metric, row) if o is not None else None
            if t is None:
                return None, None, 0
            cell.append(t)
        terms.append(cell)
    if not terms[0] or not terms[1]:
        return None, None, 0
    n = int(max(int(t.index.max()) for cell in terms for t in cell)) + 1
    key = ("weights", n)
    if key not in ctx.cache:
        ctx.cache[key] = intervals.poisson_weights(n)
    w = ctx.cache[key]
    images = len(np.unique(np.concatenate([t.index for cell in terms for t in cell])))
    return intervals.image_draws(terms[0], w), intervals.image_draws(terms[1], w), images


def _borrow(noise_df, metric: str, eps: float) -> tuple[float, float] | None:
    """(seed variance of one run, df) of ``metric`` at ``eps`` from ``noise_df`` (the pgd cells), or None."""
    v = _cell_values(noise_df, metric, eps)
    return (float(np.var(v, ddof=1)), float(v.size - 1)) if v.size > 1 else None


def _trend_key(df: pd.DataFrame | None, metric: str, lo: float, hi: float) -> tuple:
    hashes = tuple(sorted(df["hash"].astype(str))) if df is not None and "hash" in df.columns else ()
    return (metric, lo, hi, hashes)


def compare(
    df: pd.DataFrame | None,
    metric: str,
    direction: int,
    eps_lo: float = 4,
    eps_hi: float = 16,
    noise_df: pd.DataFrame | None = None,
    ctx: Context | None = None,
    judged: bool = True,
) -> Trend:
    """Judge whether ``metric`` moves in ``direction`` (-1 falls, +1 rises) from ``eps_lo`` to ``eps_hi``.

    ``df``: rows of :func:`arlib.book.report.collect` (one per run) for one block (one network,
    one method, one spectral norm). ``noise_df``: where a cell has a single seed, its seed
    variance is borrowed from these rows (the ``pgd`` cells) at the same ε. ``ctx``: the ledger
    column's :class:`Context` (Holm family); alone, the raw p is used. ``judged=False``: shown, not
    judged (not in the family). See the module docstring for the model.
    """
    ctx = ctx if ctx is not None else Context()
    rows_lo, rows_hi = _cell_rows(df, metric, eps_lo), _cell_rows(df, metric, eps_hi)
    lo, hi = _cell_stats(df, metric, eps_lo), _cell_stats(df, metric, eps_hi)
    images_lo, images_hi, n_images = _image_means(rows_lo, rows_hi, metric, ctx) if len(rows_lo) and len(rows_hi) else (None, None, 0)
    borrow = noise_df is not None and noise_df is not df
    c = intervals.change(
        _cell_values(df, metric, eps_lo),
        _cell_values(df, metric, eps_hi),
        images_lo,
        images_hi,
        n_images,
        borrowed_lo=_borrow(noise_df, metric, eps_lo) if borrow and lo[2] == 1 else None,
        borrowed_hi=_borrow(noise_df, metric, eps_hi) if borrow and hi[2] == 1 else None,
    )
    key = _trend_key(df, metric, eps_lo, eps_hi)
    judged = judged and ctx.judged
    if judged and ctx.family is not None and c.defined:
        ctx.family[key] = c.p
    p_adj = ctx.adjusted.get(key, float("nan")) if (judged and ctx.adjusted is not None) else (c.p if judged else float("nan"))
    if lo[2] == 0 or hi[2] == 0:
        verdict, reason = NOT_RUN, "not run"
        broken = [
            d for d in (df.attrs.get("damaged", ()) if df is not None else ()) if isinstance(d, Mapping) and d.get("eps") in (float(eps_lo), float(eps_hi))
        ]
        if broken:
            reason = f"not run: {len(broken)} damaged run(s) ({'; '.join(d['problem'] for d in broken[:2])}; `arlib runs --check` lists them)"
    elif not c.defined:
        verdict, reason = BELOW, "one seed and no seed spread to borrow: no interval"
    elif not (p_adj < ALPHA):
        verdict, reason = BELOW, ("interval includes 0" if not c.excludes_zero() else "interval excludes 0, but not after Holm's adjustment")
    elif np.sign(c.diff) == np.sign(direction):
        verdict, reason = HOLDS, "interval excludes 0 in the claimed direction"
    else:
        verdict, reason = FAILS, "interval excludes 0 against the claimed direction"
    gone = report.collapsed_runs(df) if df is not None else None
    dropped = tuple(int(np.isclose(gone["eps"].astype(float), e).sum()) if gone is not None and len(gone) else 0 for e in (eps_lo, eps_hi))
    return Trend(metric, direction, float(eps_lo), float(eps_hi), lo, hi, c, p_adj, verdict, reason, dropped, judged)


def combine(verdicts: Sequence[str]) -> str:
    """Any part contradicted -> contradicted; all hold -> holds; any part not run -> not run; otherwise below resolution."""
    verdicts = list(verdicts)
    if not verdicts:
        return NOT_RUN
    if any(v == FAILS for v in verdicts):
        return FAILS
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == NOT_RUN for v in verdicts):
        return NOT_RUN
    return BELOW


def _trends(df, metrics_dirs, ctx: Context, noise_df=None) -> tuple[str, str]:
    if df is None or df.empty:
        return NOT_RUN, "not run"
    lo, hi = _claim_eps(df, ctx)
    ts = [compare(df, m, d, lo, hi, noise_df, ctx) for m, d in metrics_dirs]
    return combine([t.verdict for t in ts]), "; ".join(t.evidence() for t in ts)


def _pgd(frames):
    df = frames.get("pgd")
    if df is not None and "spectral_norm" in df.columns:
        df = df[df["spectral_norm"].isna()]
    return df


# ----------------------------------------------------------------------------- the paper's evidence


def _row(table: int, metric: str, **sel) -> str:
    try:
        w = P.wide(table, **sel)
    except P.PaperTableError:
        return ""
    if metric not in w.index:
        return ""
    r = w.loc[metric].dropna()
    d = report.metric_digits(metric)
    return " / ".join(f"{v:.{d}f}" for v in r.to_numpy(float)) + " at ε " + "/".join(f"{e:g}" for e in r.index)


_DS = {"cifar10": ("CIFAR10", 3), "cifar100": ("CIFAR100", 4), "tinyimagenet": ("Tiny-ImageNet", 5)}


_MODEL_NAMES = {"resnet56": "ResNet-56", "resnet110": "ResNet-110"}


def _three_tables(metric: str, label: str, model: str = "resnet56") -> str:
    parts = []
    for name, t in _DS.values():
        sel = {} if t == 5 else {"model": model}
        row = _row(t, metric, **sel)
        if row:
            parts.append(f"{name} (Table {t}, {_MODEL_NAMES.get(model, model) if t != 5 else 'WRN-50-2'}): {row}")
    return f"{label}: " + "; ".join(parts)


def _paper_loss_gap(dataset):
    return _three_tables("delta_loss", "ΔLoss") + ". Falls with ε everywhere."


def _paper_test_acc(dataset):
    return _three_tables("test_acc", "Test acc.") + ". Falls with ε everywhere."


def _paper_error_gap(dataset):
    return (
        _three_tables("delta_acc", "ΔAcc.") + ". The error gap rises with ε on CIFAR10 only (B.3 explains it by the "
        "network's spare capacity there), while it falls on CIFAR100 and Tiny-ImageNet."
    )


def _paper_margins(dataset):
    return (
        "No numbers printed: Fig. 4 (PGD) and Fig. 10 (FGSM) show the margin distributions of ε = 4, 8, 16 "
        "concentrating around zero as ε grows, on training and test sets; B.3 adds that CIFAR10's training margins "
        "are also strongly skewed towards zero."
    )


def _paper_sv(dataset):
    q, n = P.b2_value, P.b2_group_size
    return (
        f"B.2 (Fig. 5c/d): CIFAR10: layers whose std fell, Σ(σ4−σ16) = {q('cifar10', 'first', 'sum'):.4f} "
        f"(mean {q('cifar10', 'first', 'mean'):.4f}, ≈{n('cifar10', 'first')} layers); layers whose std rose, "
        f"Σ(σ16−σ4) = {q('cifar10', 'second', 'sum'):.4f} (mean {q('cifar10', 'second', 'mean'):.4f}, ≈{n('cifar10', 'second')} layers). "
        f"CIFAR100: {q('cifar100', 'first', 'sum'):.4f} (mean {q('cifar100', 'first', 'mean'):.5f}) vs "
        f"{q('cifar100', 'second', 'sum'):.4f} (mean {q('cifar100', 'second', 'mean'):.4f}) - the latter sum repeats "
        f"CIFAR10's figure as printed, its mean implies ≈4 layers. Which singular values (operator or reshaped "
        f"weight matrix) is not stated."
    )


def _paper_lv(dataset):
    parts = []
    for ds in ("cifar10", "cifar100"):
        w = P.wide(1, dataset=ds)
        rows = []
        for a in (1, 2, 4):
            m = w.loc[(a, "loss_variation_mean")]
            rows.append(f"ε'={a}: " + " / ".join(f"{v:.4f}" for v in m.to_numpy(float)))
        parts.append(f"{_DS[ds][0]}: " + "; ".join(rows))
    return "Table 1, mean loss variation at ε 4/8/16 - " + " | ".join(parts) + ". Falls with ε, and so does its std."


def _paper_fgsm(dataset):
    parts = []
    for ds in ("cifar10", "cifar100"):
        parts.append(f"{_DS[ds][0]}: ΔLoss {_row(2, 'delta_loss', dataset=ds)}, test acc. {_row(2, 'test_acc', dataset=ds)}")
    return "Table 2 (FGSM training): " + "; ".join(parts) + "."


def _paper_spectral(dataset):
    parts = []
    for sp in (1, 3, 5, None):
        w = P.wide(6, spectral_norm=sp)
        parts.append(
            f"SP {sp if sp else 'uncontrolled'}: ΔAcc {' / '.join(f'{v:.2f}' for v in w.loc['delta_acc'])}, "
            f"ΔLoss {' / '.join(f'{v:.3f}' for v in w.loc['delta_loss'])}"
        )
    return "Table 6 at ε 4/8/16 - " + "; ".join(parts) + ". The error gap rises at SP 3, 5 and uncontrolled and falls at SP 1; the loss gap falls at every SP."


def _paper_pgd(dataset):
    return _three_tables("pgd_acc", "PGD acc.") + ". Rises from ε 4 to 16 everywhere (not monotone in between for CIFAR10 ResNet-56: 65.92 → 65.24 → 72.16)."


def _paper_deep(dataset):
    return (
        f"ResNet-110 (Fig. 7): CIFAR10 (Table 3) ΔLoss {_row(3, 'delta_loss', model='resnet110')}, test acc. "
        f"{_row(3, 'test_acc', model='resnet110')}; CIFAR100 (Table 4) ΔLoss {_row(4, 'delta_loss', model='resnet110')}."
    )


# ----------------------------------------------------------------------------- our checks


def _check_loss_gap(frames, ctx):
    return _trends(_pgd(frames), [("delta_loss", -1)], ctx)


def _check_test_acc(frames, ctx):
    return _trends(_pgd(frames), [("test_acc", -1)], ctx)


def _check_adv_cost(frames, ctx):
    """B.1's premise, judged on its own: plain training (ε 0) vs the weakest adversarial training."""
    df = _pgd(frames)
    if df is None or df.empty:
        return NOT_RUN, "not run"
    pos = sorted(float(e) for e in df["eps"].unique() if float(e) > 0)
    hi = 4.0 if 4.0 in pos or not pos else pos[0]
    t = compare(df, "test_acc", -1, 0.0, hi, ctx=ctx)
    return t.verdict, t.evidence()


def _check_error_gap(frames, ctx):
    return _trends(_pgd(frames), [("delta_acc", +1), ("delta_loss", -1)], ctx)


def _check_margins(frames, ctx):
    return _trends(_pgd(frames), [("train_margin_std", -1), ("train_margin_abs_mean", -1), ("test_margin_std", -1), ("test_margin_abs_mean", -1)], ctx)


def _check_lv(frames, ctx):
    df = _pgd(frames)
    if df is None or df.empty:
        return NOT_RUN, "not run"
    att = sorted({c.removeprefix("lv_mean_eps") for c in df.columns if c.startswith("lv_mean_eps")}, key=float)
    if not att:
        return NOT_RUN, "no loss-variation analysis"
    return _trends(df, [(f"lv_mean_eps{a}", -1) for a in att], ctx)


_SV_QUANTITY = {
    "sv_std_operator": "raw spread (std of the operator's singular values, the paper's)",
    "sv_cv_operator": "scale-free spread (std / largest singular value of the same layer)",
}


def _check_sv(frames, ctx, col: str = "sv_std_operator"):
    from scipy.stats import binomtest

    df = _pgd(frames)
    if df is None or df.empty or col not in df.columns:
        return NOT_RUN, "not run"
    lo, hi = _claim_eps(df, ctx)
    a, b = report.per_layer_mean(df, col, lo), report.per_layer_mean(df, col, hi)
    if a is None or b is None:
        return NOT_RUN, f"no singular-value analysis at ε={lo:g} or {hi:g}"
    g = two_group_std_difference(a[0], b[0])
    n, k = g["n_layers"], g["first_n"]
    p = binomtest(k, n, 0.5).pvalue if n else float("nan")
    key = ("sign test", col, lo, hi, tuple(sorted(df["hash"].astype(str))) if "hash" in df.columns else ())
    if ctx.judged and ctx.family is not None and n:
        ctx.family[key] = p
    p_adj = ctx.adjusted.get(key, p) if ctx.adjusted is not None else p
    frac = k / n if n else float("nan")
    if n and p_adj < ALPHA and frac > 0.5 and g["first_sum"] > g["second_sum"]:
        verdict = HOLDS
    elif n and p_adj < ALPHA and frac < 0.5:
        verdict = FAILS
    else:
        verdict = BELOW
    ev = (
        f"{_SV_QUANTITY.get(col, col)}, ε={lo:g} (n={a[1]}) vs ε={hi:g} (n={b[1]}): fell in {k} of {n} layers "
        f"({100 * frac:.0f}%, sign test p={p:.2g}, Holm p={p_adj:.2g}); Σ decrease {g['first_sum']:.4f} (mean {g['first_mean']:.4f}) vs "
        f"Σ increase {g['second_sum']:.4f} (mean {g['second_mean']:.4f}) [{verdict}]"
    )
    return verdict, ev


def _check_sv_scale_free(frames, ctx):
    return _check_sv(frames, ctx, "sv_cv_operator")


def _check_fgsm(frames, ctx):
    return _trends(frames.get("fgsm"), [("delta_loss", -1), ("test_acc", -1)], ctx, noise_df=_pgd(frames))


def _check_deep(frames, ctx):
    return _trends(frames.get("deep"), [("delta_loss", -1), ("test_acc", -1)], ctx, noise_df=_pgd(frames))


def _check_pgd(frames, ctx):
    return _trends(_pgd(frames), [("pgd_acc_correct", +1)], ctx)


def _check_pgd_all(frames, ctx):
    return _trends(_pgd(frames), [("pgd_acc_all", +1)], ctx)


def _check_spectral(frames, ctx):
    sp_df, base = frames.get("spectral"), _pgd(frames)
    if sp_df is None or sp_df.empty or base is None or base.empty:
        return NOT_RUN, "not run"
    lo, hi = _claim_eps(sp_df, ctx)
    levels = sorted(float(s) for s in sp_df["spectral_norm"].dropna().unique())
    parts, verdicts, changes = [], [], []
    for sp in levels + [None]:
        d = base if sp is None else report.level_rows(sp_df, sp)
        name = "uncontrolled" if sp is None else f"SP {sp:g}"
        tl = compare(d, "delta_loss", -1, lo, hi, noise_df=base, ctx=ctx)
        verdicts.append(tl.verdict)
        # The paper's error-gap trend turns somewhere between the tightest level and none (its SP 3 and 5 still
        # rise): an intermediate level's direction is shown, not judged.
        between = sp is not None and sp != levels[0]
        te = compare(d, "delta_acc", -1 if sp == levels[0] else +1, lo, hi, noise_df=base, ctx=ctx, judged=not between)
        changes.append((name, te))
        parts.append(f"{name}: {tl.evidence()}; {te.evidence('intermediate level: shown, not judged' if between else None)}")
    tight, loose = changes[0][1], changes[-1][1]
    verdict = combine(verdicts + [tight.verdict, loose.verdict])
    summary = ("error-gap change ε %g→%g: " % (lo, hi)) + ", ".join(f"{n} {t.diff:+.2f}" if not math.isnan(t.diff) else f"{n} —" for n, t in changes)
    return verdict, summary + ". " + " | ".join(parts) + (
        " (the error-gap verdicts test a fall at the tightest SP and a rise when uncontrolled; levels between are shown, not judged)"
    )


# ----------------------------------------------------------------------------- premises


@dataclass(frozen=True)
class Premise:
    """What a claim presupposes. ``check(frames, ctx) -> (met, why)``: met True / False, or None when it cannot be evaluated (why says why)."""

    statement: str
    check: Callable[[Mapping[str, pd.DataFrame], Context], tuple[bool | None, str]]


# Table 3, CIFAR-10, ResNet-56: clean training accuracy (%) at eps 4 / 8 / 16, the fit the paper's claims rest on.
PAPER_TRAIN_ACC_CIFAR10 = {4.0: 99.51, 8.0: 98.45, 16.0: 95.97}
FIT_BAR = {4.0: 95.0, 8.0: 95.0, 16.0: 90.0}  # what counts as fitting in the regime descriptions (issue 10's bar)
PREMISE_FIT = 95.0  # B.3's premise: clean training accuracy at both compared strengths


def _premise_fit(frames, ctx):
    df = _pgd(frames)
    lo, hi = _claim_eps(df, ctx)
    cells = [(e, _cell_stats(df, "train_acc", e)) for e in (lo, hi)]
    if any(c[2] == 0 for _, c in cells):
        return None, "a cell is not run, so whether the networks fit is unknown"
    short = [f"{c[0]:.1f} % at ε {e:g}" for e, c in cells if c[0] < PREMISE_FIT]
    if short:
        return False, (
            "clean training accuracy " + ", ".join(short) + f", below the {PREMISE_FIT:g} % of networks that fit their training sets"
            f" (the claim is about such networks: the paper's {PAPER_TRAIN_ACC_CIFAR10.get(lo, float('nan')):.1f} / "
            f"{PAPER_TRAIN_ACC_CIFAR10.get(hi, float('nan')):.1f} %; where networks do not fit, the paper's own CIFAR-100 case, the error gap falls)"
        )
    return True, "fits: " + ", ".join(f"{c[0]:.1f} % at ε {e:g}" for e, c in cells)


def _premise_uncontrolled_rise(frames, ctx):
    base = _pgd(frames)
    sp_df = frames.get("spectral")
    lo, hi = _claim_eps(sp_df if sp_df is not None and len(sp_df) else base, ctx)
    t = compare(base, "delta_acc", +1, lo, hi, ctx=ctx, judged=False)
    if t.lo[2] == 0 or t.hi[2] == 0:
        return None, "the uncontrolled cells are not run"
    if t.change.defined and t.change.ci[0] > 0:
        return True, "the uncontrolled error gap rises: " + t.interval()
    return False, (
        "no rise to turn: the uncontrolled error gap's " + (t.interval() or "change is unknown") + " (a turn needs an uncontrolled error gap that rises)"
    )


PREMISES: dict[str, Premise] = {
    "error_gap_rises_cifar10": Premise("the networks fit their training sets (clean training accuracy ≥ 95 % at both strengths)", _premise_fit),
    "spectral_turns_error_gap": Premise("without clipping the error gap rises with ε (the trend clipping is said to turn)", _premise_uncontrolled_rise),
}


CLAIMS: list[Claim] = [
    Claim(
        "adv_costs_accuracy",
        "B.1 (premise)",
        "Adversarial training costs clean test accuracy (ε = 0 → 4): the trade-off the paper's discussion starts from.",
        _check_adv_cost,
        lambda ds: "Table 3 prints no ε = 0 row; B.1 and §4.1 take the trade-off as known.",
        None,
    ),
    Claim(
        "loss_gap_falls", "B.1 / §4.1", "The loss (generalization) gap falls as the defensive strength ε grows.", _check_loss_gap, _paper_loss_gap, "delta_loss"
    ),
    Claim("test_acc_falls", "B.1 / §4.1", "Clean test accuracy falls as ε grows.", _check_test_acc, _paper_test_acc, "test_acc"),
    Claim(
        "sv_std_falls",
        "B.2",
        "The std of the singular values falls from ε = 4 to ε = 16 in most layers, and the summed decrease dwarfs the summed increase.",
        _check_sv,
        _paper_sv,
    ),
    Claim(
        "sv_cv_falls",
        "B.2 (scale-free)",
        "The same for the spread relative to the layer's largest singular value: the spectrum concentrates, not only shrinks.",
        _check_sv_scale_free,
        lambda ds: "Not in the paper: separates concentration from uniform shrinkage of the weights.",
        None,
    ),
    Claim(
        "error_gap_rises_cifar10",
        "B.3",
        "On CIFAR10 (large capacity) the error gap rises with ε while the loss gap falls.",
        _check_error_gap,
        _paper_error_gap,
        "delta_acc",
    ),
    Claim(
        "margins_concentrate",
        "B.3 / §4.2.1",
        "Margins concentrate near zero as ε grows, on the training and the test set (smaller std and mean |margin|).",
        _check_margins,
        _paper_margins,
    ),
    Claim("deep_same_trends", "B.4.1", "The deeper network shows the same trends: loss gap and test accuracy fall with ε.", _check_deep, _paper_deep),
    Claim(
        "spectral_turns_error_gap",
        "B.4.2",
        "With spectral-norm clipping the error-gap trend turns from rising (uncontrolled) to falling (tightest clip), while the loss gap falls at every level.",
        _check_spectral,
        _paper_spectral,
    ),
    Claim("loss_variation_falls", "B.5", "The maximal loss variation under small perturbations (ε' = 1, 2, 4) falls as ε grows.", _check_lv, _paper_lv),
    Claim("fgsm_same_trends", "B.6", "FGSM adversarial training shows the same trends: loss gap and test accuracy fall with ε.", _check_fgsm, _paper_fgsm),
    Claim(
        "pgd_acc_rises",
        "D.2 / Fig. 12",
        "Accuracy under PGD (radius 8) rises with the defensive strength, over the clean-correct test images (the paper's convention).",
        _check_pgd,
        _paper_pgd,
        "pgd_acc",
    ),
    Claim(
        "pgd_acc_all_rises",
        "D.2 (all images)",
        "The same over all test images (a misclassified image counts as not robust: RobustBench's convention).",
        _check_pgd_all,
        lambda ds: "The paper reports the conditional convention only.",
        None,
    ),
]


# ----------------------------------------------------------------------------- the ledger


def evaluate(
    frames: Mapping[str, pd.DataFrame], dataset: str = "cifar10", claims: Sequence[Claim] | None = None, ids: Sequence[str] | None = None, **options
) -> pd.DataFrame:
    """Evaluate ``claims`` (default: all, or those whose id is in ``ids``) on ``frames`` (experiment -> rows of :func:`arlib.book.report.collect`).

    ``options``: ``eps_lo`` / ``eps_hi`` override the compared strengths (default 4 and 16, or
    the smallest and largest positive ε run). The judged trends of all the claims evaluated form
    one Holm family. Returns columns ``id``, ``section``, ``claim``, ``paper``, ``ours``, ``verdict``,
    ``paper_change`` (Table 3's change of the claim's metric over the same strengths, where it has
    one), ``change``, ``ci_low``, ``ci_high``, ``resolution``, ``n`` (seeds × test images of the
    claim's headline trend).
    """
    chosen = [c for c in (claims or CLAIMS) if ids is None or c.id in ids]
    if ids is not None and len(chosen) != len(set(ids)):
        raise KeyError(f"unknown claim id(s): {sorted(set(ids) - {c.id for c in chosen})}")
    first = Context(eps_lo=options.get("eps_lo"), eps_hi=options.get("eps_hi"), family={})
    for c in claims or CLAIMS:  # first pass: the family of raw p-values, always over every claim, so a
        c.evaluate(frames, dataset, first)  # chapter showing a few verdicts judges them as the whole ledger does
    keys = list(first.family)
    adjusted = dict(zip(keys, intervals.holm([first.family[k] for k in keys])))
    ctx = dataclasses.replace(first, family=None, adjusted=adjusted)
    rows = []
    for c in chosen:
        v = c.evaluate(frames, dataset, ctx)
        head = _headline(c, frames, ctx)
        rows.append(
            {"id": c.id, "section": c.section, "claim": c.statement, "paper": v.paper, "ours": v.ours, "verdict": v.verdict, "reason": _reason(v, head), **head}
        )
    cols = [
        "id",
        "section",
        "claim",
        "paper",
        "ours",
        "verdict",
        "reason",
        "paper_change",
        "change",
        "ci_low",
        "ci_high",
        "resolution",
        "n",
        "testable",
        "family",
    ]
    out = pd.DataFrame(rows, columns=cols)
    out["family"] = len(keys)
    return out


def _reason(v: Verdict, head: Mapping) -> str:
    """One line of why for a ledger row."""
    if v.verdict == PREMISE:
        return "premise not met: " + v.ours.removeprefix("premise not met: ").split(". Shown, not judged")[0].split(" (")[0]
    if v.verdict == NOT_RUN:
        return "a cell the claim needs has no finished run"
    if v.verdict == BELOW and "no interval" in v.ours and not math.isfinite(head.get("resolution", float("nan"))):
        return "one seed per cell and no seed spread to borrow: no interval"
    if v.verdict == BELOW:
        small = str(head.get("testable", "")).startswith("no")
        return "the interval includes 0" + ("; the paper's change is below this design's resolution" if small else "")
    return {HOLDS: "the interval excludes 0 in the claimed direction", FAILS: "the interval excludes 0 against the claimed direction"}[v.verdict]


def _headline(claim: Claim, frames, ctx: Context) -> dict:
    """The claim's main trend as numbers (its metric on the pgd cells), and the paper's change over the same strengths."""
    nan = float("nan")
    out = {"paper_change": nan, "change": nan, "ci_low": nan, "ci_high": nan, "resolution": nan, "n": "", "testable": ""}
    if claim.paper_metric is None:
        return out
    df = _pgd(frames)
    if df is None or df.empty:
        return out
    lo, hi = _claim_eps(df, ctx)
    metric = {"pgd_acc": "pgd_acc_correct"}.get(claim.paper_metric, claim.paper_metric)
    t = compare(df, metric, -1, lo, hi, ctx=ctx.shown_only())
    c = t.change
    try:
        w = P.wide(3, model="resnet56")
        out["paper_change"] = float(w.loc[claim.paper_metric, hi] - w.loc[claim.paper_metric, lo])
    except (KeyError, P.PaperTableError):
        pass
    out.update(
        change=c.diff,
        ci_low=c.ci[0],
        ci_high=c.ci[1],
        resolution=c.resolution,
        n=f"{c.n_lo}+{c.n_hi} seeds" + (f" × {c.n_images:,} images" if c.n_images else ""),
    )
    if math.isfinite(out["paper_change"]) and c.defined and abs(out["paper_change"]) < c.resolution:
        need = intervals.seeds_needed(c, out["paper_change"])
        out["testable"] = (
            f"no: the paper's change {out['paper_change']:+.2f} is below our resolution {c.resolution:.2f}; "
            + (
                f"this design would need ≈ {need} seeds per cell"
                if need
                else "more seeds cannot reach it while the test-image component alone is larger (10,000 test images is all CIFAR-10 has)"
            )
            + f"; at the paper's scale one cell costs ≈ {paper_cell_gpu_hours(hi):.1f} GPU-hours (H100, central estimate of arlib.costs)"
        )
    elif math.isfinite(out["paper_change"]) and c.defined:
        out["testable"] = f"yes: the paper's change {out['paper_change']:+.2f} is above our resolution {c.resolution:.2f}"
    return out


def paper_cell_gpu_hours(eps: float) -> float:
    """Estimated H100 hours of one paper-scale CIFAR-10 ResNet-56 PGD cell at ``eps`` (:mod:`arlib.costs`, central scenario)."""
    from .. import costs, profiles
    from ..config import standard_adv

    cfg = profiles.get("paper").base("cifar10").replace(adv=standard_adv(eps))
    return costs.cell_flops(cfg) / (costs.H100_SCENARIOS["central"][0] * 1e12) / 3600


def frames_for(
    profile, dataset: str = "cifar10", store=None, ensure: bool = True, experiments: Sequence[str] = ("pgd", "fgsm", "deep", "spectral"), **overrides
) -> dict[str, pd.DataFrame]:
    """The results tables :func:`evaluate` needs: ``{experiment: report.collect(...)}``."""
    return {e: report.collect(profile, e, dataset, store=store, ensure=ensure, **overrides) for e in experiments}


def ledger(
    profile,
    dataset: str = "cifar10",
    store=None,
    ensure: bool = True,
    frames: Mapping[str, pd.DataFrame] | None = None,
    eps_lo: float | None = None,
    eps_hi: float | None = None,
    **overrides,
) -> pd.DataFrame:
    """The claims ledger of ``profile`` on ``dataset``: one row per claim (claim, the paper's evidence, ours, verdict).

    ``frames``: precollected tables (else :func:`frames_for` collects them, training what is
    missing when ``ensure``). ``overrides``: ``eps_grid``, ``spectral_grid``, ``seeds`` as in
    :func:`arlib.book.report.collect`.
    """
    frames = frames if frames is not None else frames_for(profile, dataset, store=store, ensure=ensure, **overrides)
    opts = {k: v for k, v in (("eps_lo", eps_lo), ("eps_hi", eps_hi)) if v is not None}
    return evaluate(frames, dataset, **opts)


# ----------------------------------------------------------------------------- regimes and explanations


# The networks a claim is about, where they are not the base PGD-trained ones: (experiment, how the fit sentence names them).
CLAIM_NETWORKS: dict[str, tuple[str, str]] = {
    "deep_same_trends": ("deep", "deeper networks"),
    "fgsm_same_trends": ("fgsm", "FGSM-trained networks"),
}


def fit_summary(frames: Mapping[str, pd.DataFrame], experiment: str = "pgd", networks: str = "networks") -> str:
    """One sentence: do the networks of ``frames[experiment]`` fit their adversarial training sets? (clean training accuracy per ε vs the paper's).

    ``networks`` names them in the sentence ("The deeper networks fit …")."""
    df = _pgd(frames) if experiment == "pgd" else frames.get(experiment)
    runs = "deeper-network" if experiment == "deep" else experiment.upper()
    if df is None or df.empty:
        return f"No {runs} runs: whether the {networks} fit their training sets is unknown."
    cells = [(e, _cell_stats(df, "train_acc", e)) for e in sorted(FIT_BAR)]
    cells = [(e, c) for e, c in cells if c[2]]
    if not cells:
        return f"No {runs} runs at ε 4, 8 or 16."
    fits = [e for e, c in cells if c[0] >= FIT_BAR[e]]
    accs = " / ".join(f"{c[0]:.1f}" for _, c in cells)
    eps = "/".join(f"{e:g}" for e, _ in cells)
    paper = " / ".join(f"{PAPER_TRAIN_ACC_CIFAR10[e]:.2f}" for e, _ in cells)
    if len(fits) == len(cells):
        verdict = "fit their adversarial training sets"
    elif fits:
        verdict = f"fit their adversarial training sets at ε {', '.join(f'{e:g}' for e in fits)} only"
    else:
        verdict = "do not fit their adversarial training sets"
    return (
        f"The {networks} {verdict}: clean training accuracy {accs} % at ε {eps} "
        f"(the paper's CIFAR-10 ResNet-56: {paper} %; the bar here: ≥ 95 % at ε 4 and 8, ≥ 90 % at ε 16)."
    )


def explain(verdict: str, ours: str, frames: Mapping[str, pd.DataFrame], regime: str | None = None, testable: str = "", claim: str | None = None) -> str:
    """The paragraph under a verdict that is not "holds": what the model saw, with the numbers, and whether the networks the
    claim is about (``claim``'s id: :data:`CLAIM_NETWORKS`, else the base PGD-trained ones) fit their training sets."""
    if verdict == HOLDS:
        return ""
    head = f"In the {regime} regime: " if regime else ""
    if verdict == NOT_RUN:
        why = "a cell the claim needs has no finished run (not trained yet, still training, or damaged); `arlib runs` lists them."
    elif verdict == PREMISE:
        why = "what the claim presupposes does not hold here, so the trend is shown and not judged."
    elif verdict == BELOW:
        why = (
            "the change's 95 % interval includes 0 (or excludes it only before Holm's adjustment over the column's tests): "
            "this design cannot tell the direction. The resolution is the smallest change it detects with 80 % power."
        )
    else:
        why = "the change's interval excludes 0 against the claimed direction, after Holm's adjustment."
    tail = f" Can this scale test the paper's change? {testable}." if testable else ""
    return f"{head}{why}{tail} Evidence: {ours}. {fit_summary(frames, *CLAIM_NETWORKS.get(claim, ('pgd', 'networks')))}"


def fitted_eps(frames: Mapping[str, pd.DataFrame]) -> list[float]:
    """The strengths among 4, 8, 16 at which the PGD networks of ``frames`` meet the fitting bar (:data:`FIT_BAR`, mean over seeds)."""
    df = _pgd(frames)
    out = []
    for e in sorted(FIT_BAR):
        mean, _, n = _cell_stats(df, "train_acc", e)
        if n and mean >= FIT_BAR[e]:
            out.append(e)
    return out


def comparisons(name: str, frames: Mapping[str, pd.DataFrame]) -> list[tuple[str, Mapping[str, pd.DataFrame], dict]]:
    """How a regime's claims are compared: ε 4 → 16 always; and, when its networks fit at ε 4 and 8 but not at 16,
    also ε 4 → 8, the largest strength at which the paper's premise (a network that fits) holds.

    The second comparison follows from the fitting bar, fixed before any result was seen, not from the verdicts.
    """
    out = [(name, frames, {})]
    fits = fitted_eps(frames)
    if 4.0 in fits and 8.0 in fits and 16.0 not in fits:
        out.append((f"{name}, ε 4 → 8 (where it fits)", frames, {"eps_lo": 4.0, "eps_hi": 8.0}))
    return out


def compared_ledger(
    regime_frames: Sequence[tuple[str, Mapping[str, pd.DataFrame]]], dataset: str = "cifar10", ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`regime_ledger` over every regime's :func:`comparisons` (``[(name, frames), ...]``)."""
    return regime_ledger([cmp for name, frames in regime_frames for cmp in comparisons(name, frames)], dataset, ids=ids)


def regime_ledger(regimes: Sequence[tuple], dataset: str = "cifar10", ids: Sequence[str] | None = None, **options) -> pd.DataFrame:
    """:func:`evaluate` in each regime (``[(name, frames), ...]`` or ``(name, frames, options)``): one row per claim and
    regime, with a ``why`` paragraph for every verdict that is not "holds"."""
    parts = []
    for entry in regimes:
        name, frames, extra = entry if len(entry) == 3 else (*entry, {})
        df = evaluate(frames, dataset, ids=ids, **{**options, **extra})
        df.insert(3, "regime", name)
        df["why"] = [
            explain(v, o, frames, name if len(regimes) > 1 else None, t, claim=i) for i, v, o, t in zip(df["id"], df["verdict"], df["ours"], df["testable"])
        ]
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def ledger_table(long: pd.DataFrame) -> pd.DataFrame:
    """A :func:`regime_ledger` as the reviewer's table: per claim and regime the paper's change (Table 3, where it has
    one), ours with its 95 % interval, n (seeds × test images), the resolution, the verdict and one line of why."""
    if long.empty:
        return pd.DataFrame(columns=["section", "regime", "paper Δ", "our Δ [95 % CI]", "n", "resolution", "verdict", "why"])

    def ours(r):
        if not math.isfinite(r.change):
            return "—"
        ci = f" [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" if math.isfinite(r.ci_low) else ""
        return f"{r.change:+.2f}{ci}"

    out = pd.DataFrame(
        {
            "section": long["section"],
            "regime": long["regime"],
            "paper Δ": [f"{x:+.2f}" if math.isfinite(x) else "—" for x in long["paper_change"]],
            "our Δ [95 % CI]": [ours(r) for r in long.itertuples()],
            "n": [n or "—" for n in long["n"]],
            "resolution": [f"{x:.2f}" if math.isfinite(x) else "—" for x in long["resolution"]],
            "verdict": long["verdict"],
            "why": long["reason"],
        }
    )
    return out.reset_index(drop=True)


def ledger_wide(long: pd.DataFrame) -> pd.DataFrame:
    """A :func:`regime_ledger` as one row per claim: section, claim, the paper's evidence, and each regime's verdict."""
    if long.empty:
        return long
    wide = long.pivot(index="id", columns="regime", values="verdict")
    first = long.drop_duplicates("id").set_index("id")[["section", "claim", "paper"]]
    order = list(dict.fromkeys(long["regime"]))
    return first.join(wide[order]).loc[list(dict.fromkeys(long["id"]))].reset_index(drop=True)


def verdicts_markdown(long: pd.DataFrame) -> str:
    """A :func:`regime_ledger` as MyST Markdown: per claim the paper's evidence, then each regime's verdict
    as a collapsed block (a sphinx-design ``dropdown``) whose title is the verdict and whose body is our
    evidence or, when it is not "holds", why. Closed, every verdict is one line."""
    out = []
    for cid in dict.fromkeys(long["id"]):
        rows = long[long["id"] == cid]
        first = rows.iloc[0]
        out.append(f"**{first['section']}: {first['claim']}** Paper: {(first['paper'] or '—').rstrip('.')}.\n")
        for r in rows.itertuples():
            label = f"*{r.regime}*: " if long["regime"].nunique() > 1 else ""
            body = r.why if r.why else f"Evidence: {r.ours}."
            out += [f":::{{dropdown}} {label}**{r.verdict}**", body, ":::", ""]
    return "\n".join(out)


# The chapter that tests each claim, by the start of its section (the ledger's "section" column).
CHAPTERS = {
    "B.1": "B1_adversarial_training",
    "B.2": "B2_singular_values",
    "B.3": "B3_margins",
    "B.4": "B4_capacity",
    "B.5": "B5_smoothing",
    "B.6": "B6_fgsm",
    "D.": "D_implementation",
}


def chapter_of(section: str) -> str | None:
    """The chapter notebook (``notebooks/<name>.md``) that tests a claim of ``section`` ("B.4.2", "D.2 / Fig. 12"), or ``None``."""
    return next((ch for prefix, ch in CHAPTERS.items() if section.startswith(prefix)), None)


def findings_html(long: pd.DataFrame, href: Callable[[str], str] = lambda chapter: f"{chapter}.html") -> str:
    """A :func:`regime_ledger` as one compact HTML table for the book's opening page: per claim its section
    (a link to the chapter that tests it, ``href(chapter)``), the claim, the paper's evidence and each regime's verdict.

    HTML rather than Markdown because MyST-NB pastes only HTML, images and text across pages (``glue``).
    """
    import html

    if long.empty:
        return "<p>No claims evaluated: no runs in the results store yet.</p>"
    wide = ledger_wide(long)
    regimes = list(dict.fromkeys(long["regime"]))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["section", "claim", "the paper's evidence", *regimes])
    rows = []
    for _, r in wide.iterrows():
        ch = chapter_of(str(r["section"]))
        sec = html.escape(str(r["section"]))
        sec = f'<a href="{html.escape(href(ch))}">{sec}</a>' if ch else sec
        cells = [sec, html.escape(str(r["claim"])), html.escape(str(r["paper"] or "—"))]
        cells += [f'<span class="arbook-verdict arbook-{html.escape(str(v).replace(" ", "-"))}">{html.escape(str(v))}</span>' for v in (r[g] for g in regimes)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="arbook-findings"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def scale_sentence(profile_names: Sequence[str] = ("cpu", "cpu-high")) -> str:
    """The scale of the CPU reproduction in numbers (images per class, networks, seeds, test images), read from the profiles."""
    from .. import profiles

    parts = []
    for name in profile_names:
        p = profiles.get(name)
        d, e = p.datasets["cifar10"], p.eval
        regime = {"cpu": "low capacity", "cpu-high": "high capacity"}.get(name, name)
        parts.append(
            f"{regime}: Fixup {p.model.name.replace('resnet', 'ResNet-')} on {d.train_per_class} training images per class, {p.train['cifar10'].epochs} epochs"
        )
    p = profiles.get(profile_names[0])
    e = p.eval
    n_test = "all 10,000" if p.datasets["cifar10"].test_per_class is None else f"{10 * p.datasets['cifar10'].test_per_class:,}"
    attacked = f"{10 * e.attack_per_class:,}" if e.attack_per_class else n_test
    return (
        f"Scale: {'; '.join(parts)}; the grid plans up to {len(p.claim_seeds)} seeds per PGD cell (a seed also draws the training "
        "images; the seeds each verdict rests on are in its evidence); "
        f"clean metrics on {n_test} CIFAR-10 test images, PGD on {attacked}."
    )


def findings_summary(long: pd.DataFrame) -> str:
    """Three sentences on what a :func:`regime_ledger` means: what this scale confirms, what it cannot test and why,
    what it contradicts (HTML, for the book's opening page)."""
    import html

    if long.empty:
        return "<p>No claims evaluated yet: the results store holds no runs of the current design.</p>"

    def names(rows):  # one entry per section and regime, with how many of its claims when more than one
        counts = rows.groupby(["section", "regime"], sort=False).size()
        return ", ".join(f"{section} ({regime}{f', {n} claims' if n > 1 else ''})" for (section, regime), n in counts.items())

    held = long[long["verdict"] == HOLDS]
    failed = long[long["verdict"] == FAILS]
    below = long[long["verdict"] == BELOW]
    premise = long[long["verdict"] == PREMISE]
    missing = long[long["verdict"] == NOT_RUN]
    s1 = (
        f"At this scale the runs confirm {len(held)} of {len(long)} claim-regime comparisons: {names(held)}."
        if len(held)
        else "At this scale no claim is confirmed yet."
    )
    small = below[below["testable"].astype(str).str.startswith("no")]
    bits = []
    if len(below):
        bits.append(
            f"{len(below)} are below this design's resolution (their intervals include 0"
            + (f"; for {names(small)} the paper's own change is smaller than our resolution, so no design of this size could see it" if len(small) else "")
            + ")"
        )
    if len(premise):
        bits.append(
            f"{len(premise)} have an unmet premise ({names(premise)}: the networks do not fit their training sets, or there is no uncontrolled rise to turn)"
        )
    if len(missing):
        bits.append(f"{len(missing)} are not run yet ({names(missing)})")
    s2 = ("It cannot test the rest: " + "; ".join(bits) + ".") if bits else "Every comparison could be tested."
    s3 = (
        f"It contradicts {names(failed)}: the change's interval excludes 0 against the paper's direction."
        if len(failed)
        else "Nothing these runs can resolve contradicts the paper."
    )
    return "<p>" + html.escape(" ".join([s1, s2, s3])) + " " + html.escape(scale_sentence()) + "</p>"


def cell_resolution(df: pd.DataFrame, metric: str = "test_acc", old_images: int = 1000) -> pd.DataFrame:
    """Per ε cell of ``df`` (rows of :func:`arlib.book.report.collect`): how precisely its mean of ``metric`` is known.

    Columns: ``eps``, ``n`` (seeds), ``test images``, ``mean``, ``seed std``, ``SE seeds`` (std / √n),
    ``SE images`` (the Poisson-bootstrap standard deviation of the cell mean over test-image resamples,
    seeds fixed), ``SE`` (both), and ``SE, old design``: the same cell scored on ``old_images`` test images
    (the image component scaled by √(N / old_images)) with one training subset for every seed (the
    seed component as measured, which here also holds the draw of the training images: an upper
    bound on the old design's).
    """
    rows = []
    ctx = Context()
    for eps in sorted(df["eps"].astype(float).unique()) if len(df) else []:
        cell = _cell_rows(df, metric, eps)
        v = _cell_values(df, metric, eps)
        if not v.size:
            continue
        means, _, n_img = _image_means(cell, cell, metric, ctx)
        se_img = float(np.std(means, ddof=1)) if means is not None else float("nan")
        sd = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
        se_seed = sd / math.sqrt(v.size) if v.size > 1 else float("nan")
        old_img = se_img * math.sqrt(n_img / old_images) if n_img else float("nan")
        rows.append(
            {
                "eps": eps,
                "n": int(v.size),
                "test images": n_img,
                "mean": float(v.mean()),
                "seed std": sd,
                "SE seeds": se_seed,
                "SE images": se_img,
                "SE": math.hypot(se_seed, se_img) if v.size > 1 else float("nan"),
                f"SE, old design ({old_images:,} images)": math.hypot(se_seed, old_img) if v.size > 1 else float("nan"),
            }
        )
    return pd.DataFrame(rows)
