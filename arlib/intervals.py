"""Intervals for the change of a cell mean between two defensive strengths.

A *cell* is one setting (network, training method, ε, spectral norm) trained with several seeds;
each seed draws the network's initialisation, its batches and its training images. A claim of the
paper is a trend: a metric's mean over seeds moves one way from ε_lo to ε_hi. Two things make the
observed change differ from the true one, and the interval of :func:`change` carries both:

* **seeds**: the runs of a cell differ; the seed component is Welch's: ``s_lo²/n_lo + s_hi²/n_hi``
  with the sample variances over seeds (``ddof=1``);
* **test images**: a test metric is measured on a finite test set. Where the runs store their
  per-example outcomes (``outcomes.npz``), the test images are resampled with a Poisson bootstrap
  (every image weighted by an independent Poisson(1) count, the same weights for every run, so that
  runs scored on the same images are compared image by image) and the variance of the change of
  means over the resamples, seeds held fixed, is added.

The interval is ``diff ± t(0.975, df) · SE`` with ``SE² = seed component + image component`` and
Satterthwaite's degrees of freedom for the seed component (the image component, from thousands of
images, is taken as known). The between-seed variance already holds the part of the test-image
noise that differs between runs, so adding the whole image component counts that part twice: the
interval errs wide, never narrow (``tests/test_intervals.py`` measures its false-positive rate).

``resolution`` is the smallest true change the design detects with 80 % power at the two-sided
5 % level, ``(t(0.975, df) + t(0.8, df)) · SE``. :func:`holm` adjusts a family of p-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["ImageTerms", "Change", "Level", "poisson_weights", "image_draws", "change", "level", "holm", "seeds_needed"]

LEVEL = 0.95
POWER = 0.80


@dataclass(frozen=True)
class ImageTerms:
    """One run's metric as a function of test-image weights: ``const + scale * Σ w·num / Σ w·den``.

    ``index``: the test images (ids in the full test split) that ``num`` and ``den`` belong to;
    ``den`` None means 1 per image (a plain mean). Accuracy: ``num`` = correct, ``scale`` 100;
    an error gap: ``const`` = training accuracy, ``scale`` -100; PGD accuracy over the clean-correct
    images (the paper's convention): ``num`` = robust, ``den`` = clean correct.
    """

    index: np.ndarray
    num: np.ndarray
    den: np.ndarray | None = None
    const: float = 0.0
    scale: float = 1.0

    def value(self, weights: np.ndarray) -> np.ndarray:
        """The metric under each row of ``weights`` (resamples x images of the full test split)."""
        w = weights[:, self.index]
        top = w @ self.num.astype(np.float64)
        bottom = w @ self.den.astype(np.float64) if self.den is not None else w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.const + self.scale * top / bottom


def poisson_weights(n_images: int, draws: int = 400, seed: int = 0) -> np.ndarray:
    """``draws`` Poisson-bootstrap resamples of ``n_images`` images: independent Poisson(1) counts, float32."""
    return np.random.default_rng(seed).poisson(1.0, size=(draws, n_images)).astype(np.float32)


def image_draws(terms: Sequence[ImageTerms], weights: np.ndarray) -> np.ndarray:
    """The cell mean over runs under every resample: shape (draws,)."""
    return np.mean([t.value(weights) for t in terms], axis=0)


@dataclass(frozen=True)
class Change:
    """The change of a cell mean from ε_lo to ε_hi with its interval (see the module docstring)."""

    diff: float
    ci: tuple[float, float]
    se: float
    se_seeds: float
    se_images: float
    df: float
    p: float
    resolution: float
    n_lo: int
    n_hi: int
    n_images: int  # test images behind the image component (0: seed component only)
    borrowed: bool  # a cell with one seed took its seed variance from elsewhere

    @property
    def defined(self) -> bool:
        return math.isfinite(self.se)

    def excludes_zero(self) -> bool:
        return self.defined and (self.ci[0] > 0 or self.ci[1] < 0)


def _welch_part(values: np.ndarray, borrowed_var: float | None, borrowed_df: float | None) -> tuple[float, float, bool]:
    """(variance of the cell mean, its degrees of freedom, borrowed?) for one cell."""
    n = len(values)
    if n >= 2:
        return float(np.var(values, ddof=1)) / n, n - 1.0, False
    if n == 1 and borrowed_var is not None and math.isfinite(borrowed_var):
        return float(borrowed_var), float(borrowed_df or 1.0), True
    return float("nan"), float("nan"), False


def change(
    values_lo: Sequence[float],
    values_hi: Sequence[float],
    images_lo: np.ndarray | None = None,
    images_hi: np.ndarray | None = None,
    n_images: int = 0,
    borrowed_lo: tuple[float, float] | None = None,
    borrowed_hi: tuple[float, float] | None = None,
    level: float = LEVEL,
    power: float = POWER,
) -> Change:
    """The change ``mean(values_hi) - mean(values_lo)`` with its interval.

    ``values_*``: the metric of each run (seed) of the two cells. ``images_*``: the cell means
    under the same test-image resamples (:func:`image_draws` with one weight matrix), or None for
    a metric without per-example outcomes. ``borrowed_*``: ``(seed variance, its df)`` for a cell
    with a single run (the variance of one run's value, borrowed from the same metric and ε of a
    cell with seeds); without it a one-run cell has no interval (``se`` NaN).
    """
    lo, hi = np.asarray(values_lo, float), np.asarray(values_hi, float)
    lo, hi = lo[np.isfinite(lo)], hi[np.isfinite(hi)]
    nan = float("nan")
    if lo.size == 0 or hi.size == 0:
        return Change(nan, (nan, nan), nan, nan, nan, nan, nan, nan, int(lo.size), int(hi.size), 0, False)
    diff = float(hi.mean() - lo.mean())
    a, df_a, b_lo = _welch_part(lo, *(borrowed_lo or (None, None)))
    b, df_b, b_hi = _welch_part(hi, *(borrowed_hi or (None, None)))
    img = 0.0
    if images_lo is not None and images_hi is not None:
        d = np.asarray(images_hi, float) - np.asarray(images_lo, float)
        d = d[np.isfinite(d)]
        img = float(np.var(d, ddof=1)) if d.size > 1 else 0.0
    seeds = a + b
    se = math.sqrt(seeds + img) if math.isfinite(seeds) else nan
    if not math.isfinite(se):
        return Change(diff, (nan, nan), nan, nan, math.sqrt(img), nan, nan, nan, int(lo.size), int(hi.size), n_images if img else 0, b_lo or b_hi)
    denom = (a * a / df_a if a > 0 else 0.0) + (b * b / df_b if b > 0 else 0.0)
    df = (seeds + img) ** 2 / denom if denom > 0 else math.inf
    if se == 0:
        p = 0.0 if diff != 0 else 1.0
        return Change(diff, (diff, diff), 0.0, 0.0, 0.0, df, p, 0.0, int(lo.size), int(hi.size), n_images if img else 0, b_lo or b_hi)
    tq = stats.t.ppf(0.5 + level / 2, df)
    ci = (diff - tq * se, diff + tq * se)
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    resolution = float((tq + stats.t.ppf(power, df)) * se)
    return Change(
        diff,
        (float(ci[0]), float(ci[1])),
        se,
        math.sqrt(seeds),
        math.sqrt(img),
        float(df),
        p,
        resolution,
        int(lo.size),
        int(hi.size),
        n_images if img else 0,
        b_lo or b_hi,
    )


@dataclass(frozen=True)
class Level:
    """A cell mean (not a change) with its interval: seeds (``n`` runs) plus test images, as :func:`change`."""

    mean: float
    ci: tuple[float, float]
    se: float
    se_seeds: float  # NaN with one run: the interval then holds the test images only
    se_images: float
    df: float
    n: int

    @property
    def images_only(self) -> bool:
        return self.n < 2


def level(values: Sequence[float], images: np.ndarray | None = None, confidence: float = LEVEL) -> Level:
    """The mean of ``values`` (one per run) with a ``confidence`` interval, ``t(df) · SE``.

    ``SE² = var(values)/n + var(images)``: the seed component (``ddof=1``, ``n - 1`` degrees of
    freedom, Satterthwaite with the image component taken as known) and the variance of the cell
    mean over the test-image resamples ``images`` (:func:`image_draws`). One run: the image
    component alone, normal quantile, said by :attr:`Level.images_only`.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    nan = float("nan")
    if v.size == 0:
        return Level(nan, (nan, nan), nan, nan, nan, nan, 0)
    img = float(np.var(np.asarray(images, float), ddof=1)) if images is not None and len(images) > 1 else 0.0
    seeds = float(np.var(v, ddof=1)) / v.size if v.size >= 2 else nan
    total = (seeds if v.size >= 2 else 0.0) + img
    se = math.sqrt(total)
    df = total**2 / (seeds**2 / (v.size - 1)) if v.size >= 2 and seeds > 0 else math.inf
    half = stats.t.ppf(0.5 + confidence / 2, df) * se if se > 0 else 0.0
    m = float(v.mean())
    return Level(m, (m - half, m + half), se, math.sqrt(seeds) if seeds == seeds else nan, math.sqrt(img), float(df), int(v.size))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and does not count)."""
    p = np.asarray(pvalues, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok])]
    m, running = ok.size, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def seeds_needed(c: Change, target: float, level: float = LEVEL, power: float = POWER, max_seeds: int = 10_000) -> int | None:
    """Seeds per cell for the design of ``c`` (same seed variances, same test images) to detect a change of ``target``
    with ``power``; None when the test-image component alone is too large (more seeds cannot help)."""
    if not c.defined or target == 0:
        return None
    per_seed = (c.se_seeds**2) * c.n_lo * c.n_hi / (c.n_lo + c.n_hi)  # one run's seed variance, if both cells share it
    img = c.se_images**2
    for n in range(2, max_seeds + 1):
        se = math.sqrt(per_seed * 2 / n + img)
        df = max(2 * n - 2, 1)
        if (stats.t.ppf(0.5 + level / 2, df) + stats.t.ppf(power, df)) * se <= abs(target):
            return n
    return None
