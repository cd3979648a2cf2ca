"""Calibration of the verdicts' statistical model, through the same code path as the book.

Simulated cells: a test set of images with their own difficulties, shared by every run; a run
(seed) shifts every image's chance of being right by its own seed effect and then draws each
image's outcome. With no true effect between the two cells, a verdict (holds or contradicted)
must come out in at most 5 % of trials; with a true change of three times the design's resolution,
it must be found in at least 80 %. The trials go through :func:`arlib.book.claims.compare`
(per-example outcomes handed to it as a run's ``outcomes.npz`` would be), so the test checks the
interval the ledger prints, not a copy of it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from arlib import intervals
from arlib.book import claims

N_IMAGES = 1000
SEEDS = 3
SEED_SD = 1.5  # points of accuracy between seeds, as the cpu profiles' runs show (0.7-2)


def _cell(rng, eps: float, shift: float, difficulty: np.ndarray, tag: str, cache: dict) -> list[dict]:
    rows = []
    for s in range(SEEDS):
        p = np.clip(difficulty + shift / 100 + rng.normal(0, SEED_SD / 100), 0, 1)
        correct = rng.random(N_IMAGES) < p
        path = f"sim/{tag}/{eps:g}/{s}"
        cache[path] = {"test_index": np.arange(N_IMAGES, dtype=np.int32), "test_correct": correct, "test_loss": np.where(correct, 0.3, 2.0).astype(np.float32)}
        rows.append({"hash": f"{tag}-{eps:g}-{s}", "eps": eps, "seed": s, "path": path, "test_acc": 100 * correct.mean()})
    return rows


def _trial(rng, effect: float, tag: str, cache: dict) -> claims.Trend:
    difficulty = rng.beta(2, 3, N_IMAGES)  # a test set: mean accuracy ~40 %, as at our scale
    df = pd.DataFrame(_cell(rng, 4.0, 0.0, difficulty, tag, cache) + _cell(rng, 16.0, effect, difficulty, tag, cache))
    df.attrs["collapsed"] = ()
    return claims.compare(df, "test_acc", -1, 4.0, 16.0, ctx=claims.Context(cache=cache))


def _rate(effect: float, trials: int, seed: int) -> tuple[float, float, list[claims.Trend]]:
    rng = np.random.default_rng(seed)
    cache: dict = {}
    out = []
    for i in range(trials):
        out.append(_trial(rng, effect, f"t{i}", cache))
        for k in [k for k in cache if isinstance(k, str)]:  # keep the bootstrap weights, drop the outcomes
            del cache[k]
    found = sum(t.verdict in (claims.HOLDS, claims.FAILS) for t in out) / trials
    return found, math.sqrt(found * (1 - found) / trials), out


def test_no_effect_gives_a_verdict_in_at_most_5_percent_of_trials():
    rate, mc_error, trends = _rate(0.0, 400, seed=1)
    assert all(t.change.n_images == N_IMAGES for t in trends)  # the image component was used
    # Observed here: 2.5 % of 400 trials (Monte Carlo standard error 0.8 %): the model errs wide, as its docstring
    # says; the same simulation finds a change of one resolution in 77 % of 100 trials (nominal 80 %).
    assert rate <= 0.05, f"false verdicts in {100 * rate:.1f} % of trials (Monte Carlo error {100 * mc_error:.1f} %)"


def test_an_effect_of_three_resolutions_is_found_in_80_percent_of_trials():
    _, _, pilot = _rate(0.0, 40, seed=2)
    resolution = float(np.median([t.change.resolution for t in pilot]))
    rate, mc_error, trends = _rate(-3 * resolution, 100, seed=3)
    assert rate >= 0.80, f"found in {100 * rate:.1f} % (Monte Carlo error {100 * mc_error:.1f} %), resolution {resolution:.2f}"
    assert all(t.verdict != claims.FAILS for t in trends)  # never the wrong direction


def test_change_matches_welch_when_there_is_no_image_component():
    from scipy import stats

    lo, hi = [30.1, 31.4, 29.8], [27.0, 26.2, 28.1]
    c = intervals.change(lo, hi)
    w = stats.ttest_ind(hi, lo, equal_var=False)
    assert c.p == pytest.approx(w.pvalue, rel=1e-9)
    assert c.diff == pytest.approx(np.mean(hi) - np.mean(lo))
    half = (c.ci[1] - c.ci[0]) / 2
    assert half == pytest.approx(stats.t.ppf(0.975, c.df) * c.se)


def test_a_single_seed_cell_has_no_interval_unless_it_borrows():
    c = intervals.change([30.0], [25.0, 26.0, 24.0])
    assert not c.defined and math.isnan(c.p)
    b = intervals.change([30.0], [25.0, 26.0, 24.0], borrowed_lo=(1.0, 2.0))
    assert b.defined and b.borrowed and b.ci[1] < 0


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, float("nan"), 0.2]
    # sorted 0.01, 0.03, 0.04, 0.2 with m = 4: 0.04, 0.09, 0.09 (monotone), 0.2
    assert np.allclose(intervals.holm(p), [0.04, 0.09, 0.09, np.nan, 0.2], equal_nan=True)


def test_image_terms_reproduce_the_run_metric_at_unit_weights():
    rng = np.random.default_rng(0)
    correct = rng.random(100) < 0.3
    t = intervals.ImageTerms(np.arange(100), correct, const=80.0, scale=-100.0)  # an error gap with 80 % train accuracy
    assert t.value(np.ones((1, 100)))[0] == pytest.approx(80.0 - 100 * correct.mean())
    robust = correct & (rng.random(100) < 0.5)
    r = intervals.ImageTerms(np.arange(100), robust, den=correct, scale=100.0)
    assert r.value(np.ones((1, 100)))[0] == pytest.approx(100 * robust.sum() / correct.sum())


def test_level_equals_the_textbook_t_interval_without_images():
    values = [31.2, 29.8, 33.0, 30.1]
    lv = intervals.level(values)
    ref = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert lv.n == 4 and not lv.images_only
    assert np.allclose(lv.ci, ref)


def test_level_covers_the_true_mean_at_its_nominal_rate():
    # seeds: 3 runs with spread 1.0; images: each run's value also carries test-image noise whose
    # resamples the interval sees. Coverage over 400 designs must be near 95 %.
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(400):
        image_sd = 0.6
        values = 10 + rng.normal(0, 1.0, 3) + rng.normal(0, image_sd, 3)
        draws = values.mean() + rng.normal(0, image_sd / np.sqrt(3), 400)  # the cell mean's image resamples
        lv = intervals.level(values, draws)
        hits += lv.ci[0] <= 10 <= lv.ci[1]
    assert 0.92 <= hits / 400 <= 0.995


def test_level_of_one_run_is_the_image_interval_and_says_so():
    draws = 5 + np.random.default_rng(0).normal(0, 0.5, 2000)
    lv = intervals.level([5.0], draws)
    assert lv.images_only and abs(lv.se - 0.5) < 0.03 and abs((lv.ci[1] - lv.ci[0]) / 2 - stats.norm.ppf(0.975) * lv.se) < 1e-9
