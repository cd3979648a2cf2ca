"""Is D.2's attack fooled? PGD-10's robust accuracy beside APGD's (:mod:`arlib.audit`), per capacity regime and ε.

PGD-10 can only overstate robust accuracy: an image the audit's cascade breaks counts as robust
for PGD-10 and not for the cascade, never the reverse (the cascade's ``worst`` needs PGD-10's
robustness too). The question is by how much. A run's overstatement is ``PGD-10 - worst`` on
its audited images; the table gives the cell mean over seeds with a 95 % interval from seeds and
test images (:func:`arlib.intervals.level`, Poisson bootstrap over the audited images, the same
resample for every run).
"""

from __future__ import annotations

import os
from operator import itemgetter
from typing import Sequence

import numpy as np
import pandas as pd

from .. import intervals
from ..audit import AUDIT_JSON, audit_arrays, pgd_cells
from ..regimes import REGIMES
from ..store import Store, default_root
from .handshake import record_inputs

ACCURACIES = {"clean": "clean", "pgd10": "PGD-10", "apgd_ce": "APGD-CE", "worst": "worst of the three"}
N_TEST_IMAGES = 10_000  # ids of the audited images index CIFAR-10's full test split


def audit_frame(profile: str, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per audited PGD cell run of ``profile``: ε, seed, images, accuracies (%), audit commit and seconds."""
    store = Store(os.path.join(root or default_root(), profile))
    rows = []
    for run in pgd_cells(profile, store):
        if not run.file(AUDIT_JSON).is_file():
            continue
        record_inputs(run.path)
        s = run.read_json(AUDIT_JSON)
        cfg = run.config
        rows.append(
            {
                "profile": profile,
                "hash": run.hash,
                "eps": float(cfg.adv.eps),
                "seed": int(cfg.train.seed),
                "n": int(s["n"]),
                **{k: float(s["accuracy"][k]) for k in ACCURACIES},
                "audit_commit": str(s.get("git_commit", "unknown")),
                "audit_seconds": float(s.get("seconds", float("nan"))),
                "run": run,
            }
        )
    return pd.DataFrame(rows)


def _percent_terms(runs: Sequence, per_image) -> tuple[list[float], list[intervals.ImageTerms]]:
    """Each run's mean of ``per_image(audit arrays)`` in % and the same as image terms for the bootstrap."""
    values, terms = [], []
    for run in runs:
        per = audit_arrays(run)
        x = per_image(per).astype(np.float64)
        values.append(100.0 * float(x.mean()))
        terms.append(intervals.ImageTerms(index=per["test_index"].astype(np.int64), num=x, scale=100.0))
    return values, terms


def overstatement(runs: Sequence, draws: int = 400, seed: int = 0) -> intervals.Level:
    """PGD-10's overstatement of robust accuracy (points), mean over ``runs`` with its interval over seeds and images."""
    values, terms = _percent_terms(runs, lambda per: per["pgd10_robust"].astype(np.float64) - per["worst_robust"])
    weights = intervals.poisson_weights(N_TEST_IMAGES, draws, seed)
    return intervals.level(values, intervals.image_draws(terms, weights))


def trend_table(
    profiles: Sequence[str] = ("cpu", "cpu-high"), eps_lo: float = 4, eps_hi: float = 16, root: str | os.PathLike | None = None, draws: int = 400
) -> pd.DataFrame:
    """D.2's trend (robust accuracy over all images, ε_lo → ε_hi) measured by PGD-10 and by the worst of the three attacks.

    On the audited images only, so both rows see the same images; change of the cell mean with its
    95 % interval over seeds and test images (:func:`arlib.intervals.change`, one Poisson resample
    shared by every run). A check of the ledger's premise that PGD-10 measures the trend, not one of
    its judged trends (outside its Holm family).
    """
    names = {r.profile: r.name for r in REGIMES}
    weights = intervals.poisson_weights(N_TEST_IMAGES, draws, 0)
    rows = []
    for profile in profiles:
        df = audit_frame(profile, root)
        if df.empty or not {float(eps_lo), float(eps_hi)} <= set(df["eps"]):
            continue
        for column, attack in (("pgd10_robust", "PGD-10"), ("worst_robust", "worst of the three")):
            v_lo, t_lo = _percent_terms(list(df[df["eps"] == eps_lo]["run"]), itemgetter(column))
            v_hi, t_hi = _percent_terms(list(df[df["eps"] == eps_hi]["run"]), itemgetter(column))
            c = intervals.change(v_lo, v_hi, intervals.image_draws(t_lo, weights), intervals.image_draws(t_hi, weights), N_TEST_IMAGES)
            if not c.defined:
                verdict = "no interval (one seed at both ends)"
            elif c.excludes_zero():
                verdict = "rises" if c.diff > 0 else "falls"
            else:
                verdict = "below resolution"
            rows.append(
                {
                    "regime": names.get(profile, profile),
                    "attack": attack,
                    f"ε {eps_lo:g}": f"{np.mean(v_lo):.1f}",
                    f"ε {eps_hi:g}": f"{np.mean(v_hi):.1f}",
                    "n (seeds)": f"{c.n_lo}, {c.n_hi}",
                    "change [95 % CI]": f"{c.diff:+.1f} [{c.ci[0]:+.1f}, {c.ci[1]:+.1f}]" if c.defined else f"{c.diff:+.1f}",
                    "resolution": f"{c.resolution:.1f}" if c.defined else "",
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(rows)


def trend_sentence(trends: pd.DataFrame) -> str:
    """Whether the stronger attack changes D.2's trend, per regime, from :func:`trend_table`."""
    if trends.empty:
        return "No regime has audited runs at both ends of the ε range yet, so the trend under the stronger attack is not known."
    parts = []
    for regime, t in trends.groupby("regime", sort=False):
        pgd, worst = (t[t["attack"] == a].iloc[0] for a in ("PGD-10", "worst of the three"))
        same = pgd["verdict"] == worst["verdict"]
        parts.append(
            f"{regime}: PGD-10 {pgd['change [95 % CI]']} ({pgd['verdict']}), worst of the three {worst['change [95 % CI]']} ({worst['verdict']})"
            + ("; the same verdict" if same else "; the verdict differs")
        )
    return "D.2's trend on the audited images, points of robust accuracy (all images) from the lower to the higher ε: " + "; ".join(parts) + "."


def _interval_text(lv: intervals.Level) -> str:
    if lv.n == 0:
        return ""
    return f"{lv.mean:.1f} [{lv.ci[0]:.1f}, {lv.ci[1]:.1f}]"


def _verdict(lv: intervals.Level) -> str:
    scope = " (test images only: one seed)" if lv.images_only else ""
    if lv.ci[0] > 0:
        return f"PGD-10 overstates robustness{scope}"
    return f"no overstatement resolved{scope}"


def masking_table(profiles: Sequence[str] = ("cpu", "cpu-high"), root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Per capacity regime and ε: seeds × images, robust accuracy (%) under each attack, the overstatement with its interval, a verdict."""
    names = {r.profile: r.name for r in REGIMES}
    rows = []
    for profile in profiles:
        df = audit_frame(profile, root)
        for eps, cell in df.groupby("eps", sort=True) if len(df) else ():
            lv = overstatement(list(cell["run"]))
            rows.append(
                {
                    "regime": names.get(profile, profile),
                    "ε (train)": f"{eps:g}",
                    "n (seeds × images)": f"{len(cell)} × {int(cell['n'].iloc[0])}" if cell["n"].nunique() == 1 else f"{len(cell)} runs",
                    **{label: f"{cell[k].mean():.1f}" for k, label in ACCURACIES.items()},
                    "PGD-10 − worst [95 % CI]": _interval_text(lv),
                    "verdict": _verdict(lv),
                }
            )
    return pd.DataFrame(rows)


def masking_sentence(table: pd.DataFrame) -> str:
    """One sentence from :func:`masking_table`: where PGD-10 overstates robustness and by how much at most."""
    if table.empty:
        return "No run has been audited yet (`arlib audit`), so whether PGD-10 is fooled at this scale is not known."
    over = table[table["verdict"].str.startswith("PGD-10 overstates")]
    means = table["PGD-10 − worst [95 % CI]"].str.split(" ").str[0].astype(float)
    if over.empty:
        return (
            f"In none of the {len(table)} audited cells does the stronger attack resolve an overstatement by PGD-10 "
            f"(largest mean difference {means.max():.1f} points), so its robust accuracies stand at this scale."
        )
    cells = "; ".join(f"{r['regime']} ε {r['ε (train)']}: {r['PGD-10 − worst [95 % CI]']}" for _, r in over.iterrows())
    return (
        f"In {len(over)} of the {len(table)} audited cells the stronger attacks break images PGD-10 left standing "
        f"(points of robust accuracy, mean [95 % CI]: {cells}); PGD-10's robust accuracies there are upper bounds."
    )


def audit_note(profiles: Sequence[str] = ("cpu", "cpu-high"), root: str | os.PathLike | None = None) -> str:
    """The provenance of the audits behind :func:`masking_table`: runs, audit commit(s), attack settings, time."""
    frames = [audit_frame(p, root) for p in profiles]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else pd.DataFrame()
    if df.empty:
        return "No audited runs."
    commits = sorted({c.split("+")[0][:7] + ("+dirty" if c.endswith("+dirty") else "") for c in df["audit_commit"]})
    hashes = ", ".join(h[:8] for h in df["hash"])
    return (
        f"Audited runs {hashes} ({len(df)} runs, profiles {', '.join(sorted(set(df['profile'])))}); "
        f"audit commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}; "
        f"{df['audit_seconds'].sum() / 60:.0f} core-minutes in all (attack_audit.json in each run's folder)."
    )
