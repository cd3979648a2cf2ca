"""Results of a profile as tables: what the book's chapters show next to the paper's numbers.

The chapter notebooks never read a results store directly; they call this module:

* :func:`collect` - one row per run of an experiment of a profile (training and analysing
  the runs that are missing through :func:`arlib.grid.ensure`);
* :func:`summarise` - mean, standard deviation and count over seeds;
* :func:`side_by_side` - our numbers (mean ± std over seeds) next to a table of the
  paper's appendix (:mod:`arlib.paper`), aligned on the metric and the defensive strength;
* :func:`provenance_note` - the one line every figure and table of the book carries: which
  runs (short config hashes), which profile, which commit(s) trained them;
* :func:`settings_table` - a profile's settings next to Appendix D's;
* :func:`bound_terms` / :func:`bound_table` - the measurable quantities of Theorem 3.1's
  bound (Appendix C) on trained runs.

Conventions: ``eps`` is the defensive strength on the paper's 0-255 scale, 0 meaning plain
training; "std" over seeds is the sample standard deviation (``ddof=1``), NaN for a single
seed; per-example spreads (e.g. the ``± std`` of Table 1) are population stds over examples
(``ddof=0``) as :mod:`arlib.analysis` computes them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import profiles
from .store import Run, Store, atomic_write_json

__all__ = [
    "METRICS",
    "CELL_KEYS",
    "PAPER_TO_OURS",
    "resolve_profile",
    "cells",
    "collect",
    "run_of",
    "runs_by_eps",
    "load_arrays",
    "summarise",
    "format_pm",
    "side_by_side",
    "provenance_note",
    "paper_note",
    "settings_table",
    "training_history",
    "bound_terms",
    "bound_table",
    "BoundUnavailable",
    "bound_layers",
    "paper_block",
    "margin_table",
    "b2_table",
    "spectral_side_by_side",
    "paper_pgd_series",
    "datasets_overview",
    "speed_table",
    "dataset_table",
]

#: Final metrics of ``metrics.json`` (Tables 2-6), in the paper's row order.
METRICS = ["train_acc", "test_acc", "delta_acc", "train_loss", "test_loss", "delta_loss", "pgd_acc_correct", "pgd_acc_all"]

#: The columns that name a cell of a grid; a group of rows equal in all of them differs by seed only.
CELL_KEYS = ["experiment", "dataset", "model", "method", "eps", "spectral_norm"]

#: The paper's metric names (``arlib.paper``) -> our column names. Loss variation (Table 1) is
#: per attack radius; see :func:`_our_column`.
PAPER_TO_OURS = {
    "train_acc": "train_acc",
    "test_acc": "test_acc",
    "delta_acc": "delta_acc",
    "train_loss": "train_loss",
    "test_loss": "test_loss",
    "delta_loss": "delta_loss",
    # App. D.2: "we only consider clean examples classified correctly originally".
    "pgd_acc": "pgd_acc_correct",
}

_DIGITS = {"acc": 2, "loss": 3, "loss_variation": 4, "lv_": 4, "margin": 3, "sv_": 4}


# ----------------------------------------------------------------------------- cells and runs


def resolve_profile(profile, eps_grid=None, spectral_grid=None, seeds=None, claim_seeds=None) -> profiles.Profile:
    """A :class:`~arlib.profiles.Profile` from a name or a profile, with the notebook overrides applied.

    ``None`` keeps the profile's own value; ``eps_grid`` lists every defensive strength to run,
    0 (plain training) included only if listed. The overridden profile keeps its name, so its
    runs live in the same store (``results/<name>``): a run is named by its config hash,
    never by the grid it came from.
    """
    prof = profiles.get(profile) if isinstance(profile, str) else profile
    changes: dict[str, Any] = {}
    if eps_grid is not None:
        changes["eps_grid"] = tuple(float(e) for e in eps_grid if float(e) != 0)
        changes["include_eps0"] = any(float(e) == 0 for e in eps_grid)  # plain training only if 0 is asked for
    if spectral_grid is not None:
        changes["spectral_grid"] = tuple(spectral_grid)
    if seeds is not None:
        changes["seeds"] = tuple(int(s) for s in seeds)
    if claim_seeds is not None:
        changes["claim_seeds"] = tuple(int(s) for s in claim_seeds)
    return dataclasses.replace(prof, **changes) if changes else prof


def cells(profile, experiment: str, dataset: str = "cifar10", with_claim_seeds: bool = True, **overrides):
    """The run configs of one experiment of ``profile`` (plus the claim seeds for ``pgd``), without duplicates."""
    prof = resolve_profile(profile, **overrides)
    cfgs = list(prof.cells(dataset, experiment))
    if experiment == "pgd" and with_claim_seeds:
        cfgs += prof.claim_cells(dataset)
    seen, out = set(), []
    for c in cfgs:
        if c.hash not in seen:
            seen.add(c.hash)
            out.append(c)
    return out


def _record_input(path: Path) -> None:
    """Tell a running book build that this chapter read ``path`` (see :func:`arlib.book.record_inputs`)."""
    if not os.environ.get("ARBOOK_INPUTS_FILE"):
        return
    try:
        from .book import record_inputs
    except Exception:  # pragma: no cover - the book extras are optional
        return
    record_inputs(path)


def _float(x) -> float:
    try:
        return float("nan") if x is None else float(x)
    except (TypeError, ValueError):
        return float("nan")


def _row(run: Run, experiment: str, profile_name: str) -> dict[str, Any]:
    cfg = run.config
    m = run.metrics()
    final = m.get("final", {})
    prov = run.read_json("provenance.json") if run.file("provenance.json").exists() else {}
    row: dict[str, Any] = {
        "hash": run.hash,
        "short": run.hash[:8],
        "profile": profile_name,
        "experiment": experiment,
        "dataset": cfg.data.dataset,
        "model": cfg.model.name,
        "method": cfg.adv.method if cfg.adv.eps else "none",
        "eps": float(cfg.adv.eps),
        "spectral_norm": float(cfg.train.spectral_norm) if cfg.train.spectral_norm is not None else np.nan,
        "seed": int(cfg.train.seed),
        "epochs": int(cfg.train.epochs),
    }
    for k in METRICS:
        row[k] = _float(final.get(k))
    for k, v in final.items():
        if k not in row and isinstance(v, (int, float)):
            row[k] = float(v)
    row["commit"] = prov.get("git_commit", "unknown")
    row["train_minutes"] = _float(prov.get("train_seconds")) / 60
    row["device"] = prov.get("device", "")
    row["finished_at"] = prov.get("finished_at", "")
    row["analysed"] = run.analysed
    if run.analysed:
        summary, arrays = run.analysis()
        for split in ("train", "test"):
            ms = summary.get(f"{split}_margin", {})
            for k in ("mean", "std", "skewness", "median", "frac_below_zero"):
                row[f"{split}_margin_{k}"] = _float(ms.get(k))
            marr = arrays.get(f"{split}_margin")
            row[f"{split}_margin_abs_mean"] = float(np.abs(marr.astype(np.float64)).mean()) if marr is not None and marr.size else np.nan
        for e, s in (summary.get("loss_variation") or {}).items():
            row[f"lv_mean_eps{e}"] = _float(s.get("mean"))
            row[f"lv_std_eps{e}"] = _float(s.get("std"))
        spec = summary.get("spectral") or {}
        row["spectral_complexity"] = _float(spec.get("spectral_complexity"))
        row["log10_spectral_complexity"] = _float(spec.get("log_spectral_complexity")) / math.log(10)
        row["sv_std_operator"] = dict(spec.get("sv_std_operator") or {})
        row["sv_std_reshaped"] = dict(spec.get("sv_std_reshaped") or {})
        row["spectral_norms"] = dict(spec.get("spectral_norms") or {})
        tp = summary.get("test_true_prob") or {}
        row["test_true_prob_mean"] = _float(tp.get("mean"))
    row["path"] = str(run.path)
    return row


def collect(
    profile,
    experiment: str,
    dataset: str = "cifar10",
    store: Store | None = None,
    ensure: bool = True,
    *,
    eps_grid: Sequence[float] | None = None,
    spectral_grid: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    with_claim_seeds: bool = True,
    data_root=None,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per run of ``experiment`` ("pgd", "fgsm", "deep", "spectral") of ``profile`` on ``dataset``.

    With ``ensure=True`` every missing run is trained and analysed through
    :func:`arlib.grid.ensure` (finished runs are only read); with ``ensure=False`` missing or
    unanalysed runs are left out (analysis columns NaN for unanalysed ones). ``eps_grid``,
    ``spectral_grid`` and ``seeds`` override the profile's (``None`` = the profile's own).
    For "pgd" the profile's extra claim seeds (at its ``claim_eps``) are included.

    Columns: ``hash``, ``short`` (8 hex digits), ``profile``, ``experiment``, ``dataset``,
    ``model``, ``method`` ("none" at eps 0), ``eps``, ``spectral_norm`` (NaN = uncontrolled),
    ``seed``, ``epochs``, the final metrics (:data:`METRICS` and any other number in
    ``metrics.json``), ``commit``, ``train_minutes``, ``device``, ``finished_at``, ``analysed``;
    from the analysis: ``{train,test}_margin_{mean,std,skewness,median,frac_below_zero,abs_mean}``,
    ``lv_mean_eps{e}`` / ``lv_std_eps{e}`` (loss variation per attack radius e, mean/std over
    test examples), ``spectral_complexity``, ``log10_spectral_complexity``,
    ``test_true_prob_mean``, the per-layer dicts ``sv_std_operator``, ``sv_std_reshaped``,
    ``spectral_norms``; and ``path`` (the run directory, for :func:`load_arrays`).
    Sorted by spectral norm, eps and seed.
    """
    prof = resolve_profile(profile, eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds)
    store = store or Store.for_profile(prof.name)
    rows = []
    for cfg in cells(prof, experiment, dataset, with_claim_seeds=with_claim_seeds):
        if ensure:
            from .grid import ensure as ensure_run

            run = ensure_run(cfg, store, data_root=data_root, analyse=True, progress=progress)
        else:
            run = store.find(cfg)
            if run is None or not run.finished:
                continue
        _record_input(run.path)
        rows.append(_row(run, experiment, prof.name))
    df = pd.DataFrame(rows)
    if df.empty:
        margin_cols = [f"{sp}_margin_{k}" for sp in ("train", "test") for k in ("mean", "std", "skewness", "median", "frac_below_zero", "abs_mean")]
        return pd.DataFrame(columns=["hash", "short", "profile"] + CELL_KEYS + ["seed", "epochs"] + METRICS
                            + ["commit", "train_minutes", "device", "finished_at", "analysed"] + margin_cols
                            + ["spectral_complexity", "log10_spectral_complexity", "sv_std_operator", "sv_std_reshaped", "spectral_norms",
                               "test_true_prob_mean", "path"])
    return df.sort_values(["spectral_norm", "eps", "seed"], na_position="last").reset_index(drop=True)


def run_of(row) -> Run:
    """The :class:`~arlib.store.Run` of a row of :func:`collect`."""
    return Run(Path(row["path"]))


def runs_by_eps(df: pd.DataFrame, seed: str | int = "first") -> dict[float, pd.Series]:
    """One row of ``df`` per eps: the run with the smallest seed (``seed="first"``) or the given seed."""
    out = {}
    for eps, g in df.sort_values("seed").groupby("eps", sort=True):
        if seed == "first":
            out[float(eps)] = g.iloc[0]
        else:
            hit = g[g["seed"] == seed]
            if len(hit):
                out[float(eps)] = hit.iloc[0]
    return out


def load_arrays(row) -> dict[str, np.ndarray]:
    """The analysis arrays (``analysis.npz``) of a row of :func:`collect`."""
    return run_of(row).analysis()[1]


# ----------------------------------------------------------------------------- seeds


def _numeric_columns(df: pd.DataFrame, exclude: Iterable[str]) -> list[str]:
    ex = set(exclude) | {"seed", "epochs"}
    return [c for c in df.columns if c not in ex and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def summarise(df: pd.DataFrame, by: Sequence[str] | None = None, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, standard deviation and count over seeds, per group.

    ``by``: the grouping columns (default: those of :data:`CELL_KEYS` present in ``df``; NaN
    keys, e.g. an uncontrolled spectral norm, form their own group). ``metrics``: the
    numeric columns to aggregate (default: every numeric column not in ``by``, ``seed`` and
    ``epochs`` excluded).

    Returns one row per group with the ``by`` columns, ``n`` (runs in the group), and
    ``<metric>_mean``, ``<metric>_std`` for each metric. The std is the sample standard
    deviation over seeds (``ddof=1``), NaN for a group of one run; NaN values of a metric
    are skipped.
    """
    by = [c for c in (by if by is not None else CELL_KEYS) if c in df.columns]
    metrics = list(metrics) if metrics is not None else _numeric_columns(df, by)
    if df.empty:
        return pd.DataFrame(columns=by + ["n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")])
    rows = []
    groups = df.groupby(by, dropna=False, sort=True) if by else [((), df)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        r: dict[str, Any] = dict(zip(by, key))
        r["n"] = len(g)
        for m in metrics:
            v = pd.to_numeric(g[m], errors="coerce").to_numpy(dtype=np.float64)
            v = v[~np.isnan(v)]
            r[f"{m}_mean"] = float(v.mean()) if v.size else np.nan
            r[f"{m}_std"] = float(v.std(ddof=1)) if v.size > 1 else np.nan
        rows.append(r)
    return pd.DataFrame(rows)


def _digits(metric: str) -> int:
    for key in ("loss_variation", "lv_", "sv_", "margin", "acc", "loss"):
        if key in metric:
            return _DIGITS[key]
    return 3


def format_pm(mean: float, std: float, n: int | None = None, digits: int = 3) -> str:
    """``"0.123 ± 0.004"``; just ``"0.123"`` when the std is NaN (one seed); ``"—"`` for NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    s = f"{mean:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {std:.{digits}f}"
    if n is not None and n != 1:
        s += f" (n={n})"
    return s


# ----------------------------------------------------------------------------- ours vs the paper


def _our_column(metric: str, attack_eps=None) -> str:
    if metric in ("loss_variation_mean", "loss_variation_std"):
        stat = metric.rsplit("_", 1)[1]
        return f"lv_{stat}_eps{float(attack_eps):g}"
    return PAPER_TO_OURS.get(metric, metric)


def _paper_tidy(paper_table: pd.DataFrame) -> pd.DataFrame:
    """Tidy ``(attack_eps?, metric, eps, paper)`` rows from a tidy table of :mod:`arlib.paper` or a :func:`arlib.paper.wide` block."""
    if {"metric", "value", "eps"} <= set(paper_table.columns):
        cols = ["metric", "eps", "value"] + (["attack_eps"] if "attack_eps" in paper_table.columns else [])
        t = paper_table[cols].rename(columns={"value": "paper"}).copy()
        if "attack_eps" in t.columns and t["attack_eps"].isna().all():
            t = t.drop(columns="attack_eps")
    else:  # wide: index metric or (attack_eps, metric), columns eps
        t = paper_table.stack().rename("paper").reset_index()
        if "level_0" in t.columns:
            t = t.rename(columns={"level_0": "metric"})
    t["eps"] = t["eps"].astype(float)
    if "attack_eps" in t.columns:
        t["attack_eps"] = t["attack_eps"].astype(float)
    return t.reset_index(drop=True)


def side_by_side(ours: pd.DataFrame, paper_table: pd.DataFrame, metrics: Sequence[str] | None = None, layout: str = "tidy") -> pd.DataFrame:
    """Our numbers (mean ± std over seeds) next to the paper's, for the same metric and eps.

    ``ours``: rows of :func:`collect` (one per run; summarised over seeds here) or an output
    of :func:`summarise` with an ``eps`` column; one experiment/block (select it first).
    ``paper_table``: one block of a paper table, tidy (``arlib.paper.table(n)`` filtered to one
    dataset/model/spectral norm) or wide (``arlib.paper.wide(n, ...)``). The paper's metric
    names are mapped to ours by :data:`PAPER_TO_OURS` (its "PGD" row is our
    ``pgd_acc_correct``; Table 1's loss-variation mean/std at attack radius e are our
    ``lv_mean_eps{e}``/``lv_std_eps{e}``). Eps values are outer-joined: an eps the paper does
    not have, or that we did not run, shows NaN / "—".

    ``layout="tidy"`` returns columns (``attack_eps``,) ``metric``, ``eps``, ``paper``,
    ``ours_mean``, ``ours_std``, ``n``, ``ours`` (formatted), ``diff`` (ours - paper), in the
    paper's metric order. ``layout="wide"`` returns the table the book prints: rows the metric
    (and attack radius), columns ``(eps, "ours" | "paper")`` as formatted strings.
    """
    from .paper import METRIC_ORDER

    p = _paper_tidy(paper_table)
    if metrics is not None:
        p = p[p["metric"].isin(list(metrics))]
    has_attack = "attack_eps" in p.columns
    s = ours if "n" in ours.columns else summarise(ours, by=["eps"])
    if "eps" not in s.columns:
        raise ValueError("side_by_side needs an 'eps' column in ours")
    if s["eps"].duplicated().any():
        raise ValueError("ours has several rows per eps: select one block (experiment / model / spectral norm) first")
    s = s.assign(eps=s["eps"].astype(float)).set_index("eps")

    keys = (["attack_eps"] if has_attack else []) + ["metric"]
    blocks = p[keys].drop_duplicates().itertuples(index=False)
    all_eps = sorted(set(p["eps"]) | set(s.index))
    rows = []
    for key in blocks:
        kd = dict(zip(keys, key))
        col = _our_column(kd["metric"], kd.get("attack_eps"))
        for e in all_eps:
            hit = p[(p["metric"] == kd["metric"]) & (p["eps"] == e)]
            if has_attack:
                hit = hit[hit["attack_eps"] == kd["attack_eps"]]
            pv = float(hit["paper"].iloc[0]) if len(hit) else np.nan
            mean = float(s.at[e, f"{col}_mean"]) if e in s.index and f"{col}_mean" in s.columns else np.nan
            std = float(s.at[e, f"{col}_std"]) if e in s.index and f"{col}_std" in s.columns else np.nan
            n = int(s.at[e, "n"]) if e in s.index else 0
            d = _digits(kd["metric"])
            rows.append({**kd, "eps": e, "paper": pv, "ours_mean": mean, "ours_std": std, "n": n,
                         "ours": format_pm(mean, std, digits=d) if n else "not run",
                         "diff": mean - pv})
    out = pd.DataFrame(rows, columns=keys + ["eps", "paper", "ours_mean", "ours_std", "n", "ours", "diff"])
    order = {m: i for i, m in enumerate(METRIC_ORDER)}
    out["_o"] = out["metric"].map(lambda m: order.get(m, len(order)))
    out = out.sort_values((["attack_eps"] if has_attack else []) + ["_o", "eps"]).drop(columns="_o").reset_index(drop=True)
    if layout == "tidy":
        return out
    if layout != "wide":
        raise ValueError("layout must be 'tidy' or 'wide'")
    fmt = out.assign(paper_s=[("—" if math.isnan(v) else f"{v:.{_digits(m)}f}") for v, m in zip(out["paper"], out["metric"])])
    w = fmt.pivot_table(index=keys, columns="eps", values=["ours", "paper_s"], aggfunc="first", sort=False)
    w = w.rename(columns={"paper_s": "paper"}, level=0).swaplevel(0, 1, axis=1)
    eps_order = sorted(set(out["eps"]))
    w = w.reindex(columns=pd.MultiIndex.from_product([eps_order, ["ours", "paper"]], names=["eps", ""]))
    w.columns = pd.MultiIndex.from_tuples([(f"{e:g}", k) for e, k in w.columns], names=["eps", ""])
    w = w.loc[list(dict.fromkeys(tuple(r) if len(keys) > 1 else r[0] for r in out[keys].itertuples(index=False)))]
    return w


# ----------------------------------------------------------------------------- chapter tables

_PAPER_TABLE = {"cifar10": 3, "cifar100": 4, "tinyimagenet": 5}
_PAPER_MODEL = {"pgd": "resnet56", "deep": "resnet110"}


def paper_block(dataset: str, experiment: str = "pgd", spectral_norm="uncontrolled") -> tuple[int | None, pd.DataFrame | None]:
    """The block of the paper's tables that matches our ``experiment`` on ``dataset``: ``(table number, arlib.paper.wide(...))``.

    pgd -> Tables 3/4 (ResNet-56) or 5 (Tiny-ImageNet); deep -> Tables 3/4 (ResNet-110);
    fgsm -> Table 2; spectral -> Table 6 (CIFAR10 only) at ``spectral_norm``. ``(None, None)``
    where the paper has no such block.
    """
    from . import paper as P

    try:
        if experiment in ("pgd", "deep"):
            t = _PAPER_TABLE[dataset]
            if t == 5:
                return (5, P.wide(5)) if experiment == "pgd" else (None, None)
            return t, P.wide(t, model=_PAPER_MODEL[experiment])
        if experiment == "fgsm":
            return 2, P.wide(2, dataset=dataset)
        if experiment == "spectral" and dataset == "cifar10":
            sp = spectral_norm
            if isinstance(sp, float) and math.isnan(sp):
                sp = None
            if sp is not None and sp != "uncontrolled" and not float(sp).is_integer():
                return None, None
            return 6, P.wide(6, spectral_norm=sp if sp in (None, "uncontrolled") else int(sp))
        if experiment == "loss_variation" and dataset in ("cifar10", "cifar100"):
            return 1, P.wide(1, dataset=dataset)
    except (KeyError, P.PaperTableError):
        pass
    return None, None


def margin_table(df: pd.DataFrame) -> pd.DataFrame:
    """Margin statistics per ε on the training and test sets (mean ± seed std): mean, std, skewness, mean |margin|, fraction misclassified.

    Rows: ``(split, statistic)``; columns: ε.
    """
    stats = ["mean", "std", "skewness", "abs_mean", "median", "frac_below_zero"]
    cols = [f"{sp}_margin_{st}" for sp in ("train", "test") for st in stats]
    s = summarise(df, by=["eps"], metrics=[c for c in cols if c in df.columns])
    if s.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["split", "statistic"]))
    rows = {}
    for sp in ("train", "test"):
        for st in stats:
            c = f"{sp}_margin_{st}"
            if f"{c}_mean" not in s:
                continue
            rows[(sp, st.replace("abs_mean", "mean |margin|").replace("frac_below_zero", "fraction < 0"))] = [
                format_pm(m, d, digits=3) for m, d in zip(s[f"{c}_mean"], s[f"{c}_std"])]
    out = pd.DataFrame(rows, index=[f"{e:g}" for e in s["eps"]]).T
    out.columns.name = "eps"
    out.index.names = ["split", "statistic"]
    return out


def b2_table(df: pd.DataFrame, eps_a: float = 4, eps_b: float = 16) -> pd.DataFrame:
    """Appendix B.2's two-group comparison on our runs, for both kinds of singular values, next to the paper's numbers.

    Per layer the std is averaged over the seeds of each ε, then
    :func:`arlib.analysis.two_group_std_difference` splits the layers into those whose std
    fell from ``eps_a`` to ``eps_b`` (first group, summed decrease) and the others (second
    group, summed increase). Rows: ``source`` (ours: operator / reshaped; paper: CIFAR10 /
    CIFAR100), columns: the sums, means and layer counts of both groups.
    """
    from .analysis import two_group_std_difference
    from . import paper as P

    rows = []
    for kind in ("operator", "reshaped"):
        col = f"sv_std_{kind}"
        per = {}
        for e in (float(eps_a), float(eps_b)):
            dicts = [d for d in df.loc[np.isclose(df["eps"].astype(float), e), col]] if col in df else []
            dicts = [d for d in dicts if isinstance(d, Mapping) and d]
            if dicts:
                per[e] = {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}
        if len(per) < 2:
            continue
        g = two_group_std_difference(per[float(eps_a)], per[float(eps_b)])
        rows.append({"source": f"ours, {kind} singular values", "first_sum": g["first_sum"], "first_mean": g["first_mean"], "first_n": g["first_n"],
                     "second_sum": g["second_sum"], "second_mean": g["second_mean"], "second_n": g["second_n"], "note": ""})
    b = P.b2_quantities()
    for ds in ("cifar10", "cifar100"):
        q = lambda grp, st: float(b[(b.dataset == ds) & (b.group == grp) & (b.statistic == st)]["value"].iloc[0])
        notes = "; ".join(n for n in b[(b.dataset == ds)]["note"] if n)
        rows.append({"source": f"paper, {ds.upper().replace('CIFAR', 'CIFAR')} ResNet-56", "first_sum": q("first", "sum"), "first_mean": q("first", "mean"),
                     "first_n": round(q("first", "sum") / q("first", "mean")), "second_sum": q("second", "sum"), "second_mean": q("second", "mean"),
                     "second_n": round(q("second", "sum") / q("second", "mean")), "note": ("layer counts implied by sum/mean. " + notes).strip()})
    out = pd.DataFrame(rows).set_index("source")
    return out


def spectral_side_by_side(spectral: pd.DataFrame, pgd: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 6 next to ours: one block per spectral-norm target of our grid (tightest first) plus "uncontrolled" (the pgd runs).

    Rows ``(SP, metric)``, columns ``(eps, ours | paper)``; a target the paper does not have
    shows "—" in its paper columns.
    """
    from . import paper as P

    metrics = list(metrics) if metrics is not None else ["train_acc", "test_acc", "delta_acc", "train_loss", "test_loss", "delta_loss", "pgd_acc"]
    blocks = []
    levels = sorted(float(x) for x in spectral["spectral_norm"].dropna().unique()) if len(spectral) else []
    for sp in levels + [None]:
        ours = pgd[(pgd["eps"] > 0) & pgd["spectral_norm"].isna()] if sp is None else spectral[spectral["spectral_norm"] == sp]
        _, block = paper_block("cifar10", "spectral", "uncontrolled" if sp is None else sp)
        if block is None:  # a target the paper has not: its layout, no numbers
            block = P.wide(6, spectral_norm=1) * np.nan
        w = side_by_side(ours, block, metrics=metrics, layout="wide")
        w.index = pd.MultiIndex.from_tuples([("uncontrolled" if sp is None else f"{sp:g}", m) for m in w.index], names=["SP", "metric"])
        blocks.append(w)
    return pd.concat(blocks) if blocks else pd.DataFrame()


def dataset_table(profile, dataset: str, model: str = "resnet56", ensure: bool = True, **overrides) -> tuple[pd.DataFrame, str]:
    """Appendix D's table for ``dataset`` (Tables 3, 4, 5) with our numbers where ``profile`` runs that dataset.

    ``model``: "resnet56" (our base network, "pgd" experiment) or "resnet110" (our deeper
    network, "deep"). Returns ``(wide table, note)``: for a dataset the profile does not have,
    the "ours" columns read "not run here" and the note gives the command that runs it.
    """
    from . import paper as P

    t = _PAPER_TABLE[dataset]
    experiment = "deep" if model == "resnet110" else "pgd"
    block = P.wide(t) if t == 5 else P.wide(t, model=model)
    prof = resolve_profile(profile, **overrides)
    if dataset in prof.datasets:
        df = collect(prof, experiment, dataset, ensure=ensure)
        return side_by_side(df, block, layout="wide"), provenance_note(df) + " " + paper_note(t)
    empty = pd.DataFrame({"eps": [], "n": []})
    w = side_by_side(empty, block, layout="wide").replace("not run", "not run here")
    return w, f"{dataset} is not in profile {prof.name}: `arlib grid --profile paper --datasets {dataset}` runs it with Appendix D's settings. " + paper_note(t)


def paper_pgd_series() -> dict[str, pd.Series]:
    """The "PGD" rows of Tables 3, 4 (ResNet-56) and 5 as Series indexed by ε (Fig. 12's dashed lines)."""
    from . import paper as P

    out = {}
    for ds, t in _PAPER_TABLE.items():
        w = P.wide(t) if t == 5 else P.wide(t, model="resnet56")
        name = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "tinyimagenet": "Tiny-ImageNet"}[ds]
        out[f"paper, {name} (Table {t})"] = w.loc["pgd_acc"]
    return out


def datasets_overview(profile) -> pd.DataFrame:
    """Which of the paper's datasets ``profile`` runs, the paper's table for each, and the command that runs the paper's settings."""
    prof = resolve_profile(profile)
    rows = []
    for ds, t in _PAPER_TABLE.items():
        rows.append({"dataset": ds, "paper table": f"Table {t}", f"in profile {prof.name}": "yes" if ds in prof.datasets else "not run here",
                     "command (paper settings, GPU)": f"arlib grid --profile paper --datasets {ds}"})
    return pd.DataFrame(rows).set_index("dataset")


def _read_benchmark(path: str | os.PathLike) -> dict | None:
    """A benchmark's JSON (a relative path is tried from the repository root too), or None."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = Path(__file__).resolve().parent.parent / path
    if not path.is_file():
        return None
    _record_input(path)
    return json.loads(path.read_text())


def speed_table(path: str | os.PathLike = "benchmarks/results/training.json") -> pd.DataFrame | None:
    """``benchmarks/results/training.json`` flattened to a table (``section``, ``key``, ``value``); ``None`` if the file is absent.

    Lists of numbers (timed windows) are shown by their median.
    """
    doc = _read_benchmark(path)
    if doc is None:
        return None
    rows = []

    def walk(prefix: list[str], v):
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(prefix + [str(k)], x)
        elif isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
            rows.append((prefix[0], ".".join(prefix[1:]) + " (median)", float(np.median(v))))
        else:
            rows.append((prefix[0], ".".join(prefix[1:]), v if not isinstance(v, list) else json.dumps(v)))

    for section, v in doc.items():
        walk([section], v)
    return pd.DataFrame(rows, columns=["section", "key", "value"])


# ----------------------------------------------------------------------------- provenance


def _short_commit(c: str) -> str:
    if not c or c == "unknown":
        return "unknown"
    dirty = c.endswith("+dirty")
    return c.split("+")[0][:7] + ("+dirty" if dirty else "")


def provenance_note(df: pd.DataFrame | Iterable[pd.DataFrame], what: str | None = None) -> str:
    """One line naming the runs behind a figure or table: short hashes, profile(s), commit(s).

    ``df``: rows of :func:`collect` (or several such frames). ``what``: an optional prefix,
    e.g. ``"Fig. B1.2"``. Example::

        Runs 151d6b52, 335fca2c (2 runs, profile smoke, cifar10, commit 36cb3d6+dirty).
    """
    frames = [df] if isinstance(df, pd.DataFrame) else list(df)
    frames = [f for f in frames if f is not None and len(f)]
    head = f"{what}: " if what else ""
    if not frames:
        return head + "no runs (nothing trained for this selection)."
    all_ = pd.concat(frames, ignore_index=True).drop_duplicates("hash")
    hashes = ", ".join(all_["short"] if "short" in all_ else all_["hash"].str[:8])
    profs = ", ".join(sorted(set(map(str, all_.get("profile", pd.Series(["?"]))))))
    ds = ", ".join(sorted(set(map(str, all_.get("dataset", pd.Series([]))))))
    commits = sorted({_short_commit(str(c)) for c in all_.get("commit", pd.Series(["unknown"]))})
    n = len(all_)
    return (f"{head}Runs {hashes} ({n} run{'s' if n != 1 else ''}, profile {profs}"
            + (f", {ds}" if ds else "")
            + f", commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}).")


def paper_note(*tables: int, extra: str = "") -> str:
    """The source line of the paper's numbers, e.g. ``"Paper: Table 3 of the appendix of Wen, Li & Jia (ICML 2020)."``."""
    if not tables:
        return "Paper: Wen, Li & Jia (ICML 2020), appendix" + (f", {extra}" if extra else "") + "."
    names = ", ".join(f"Table {t}" for t in tables)
    return f"Paper: {names} of the appendix of Wen, Li & Jia (ICML 2020)" + (f"; {extra}" if extra else "") + "."


# ----------------------------------------------------------------------------- settings, histories


def settings_table(profile, dataset: str = "cifar10") -> pd.DataFrame:
    """The settings of ``profile`` on ``dataset`` next to Appendix D's (rows: setting; columns: ``ours``, ``paper``)."""
    prof = resolve_profile(profile)
    cfg = prof.base(dataset)
    d, t, e = cfg.data, cfg.train, cfg.eval
    pgd_cells = [c for c in prof.cells(dataset, "pgd") if c.adv.eps > 0]
    adv = pgd_cells[0].adv if pgd_cells else cfg.adv
    extra = [s for s in prof.claim_seeds if s not in prof.seeds]
    paper = {
        "cifar10": ("CIFAR-10, 50,000 train / 10,000 test", "ResNet-56 (Fixup, no BN); ResNet-110 for B.4.1", "pad 4 + random 32x32 crop + horizontal flip",
                    "256", "200", "0.05, /10 at epochs 100 and 150"),
        "cifar100": ("CIFAR-100, 50,000 train / 10,000 test", "ResNet-56 (Fixup, no BN); ResNet-110 for B.4.1", "pad 4 + random 32x32 crop + horizontal flip",
                     "256", "200", "0.05, /10 at epochs 100 and 150"),
        "tinyimagenet": ("Tiny-ImageNet, 100,000 train / 10,000 val", "WRN-50-2 (BN)", "random resized 56x56 crop + flip",
                         "256", "90", "0.1, /10 at epochs 30 and 60"),
    }[dataset]
    sub = lambda n: "all" if n is None else f"{n} per class"
    rows = [
        ("data", f"{dataset}: train {sub(d.train_per_class)}, test {sub(d.test_per_class)}", paper[0]),
        ("network", f"{cfg.model.name}" + (" (BN)" if cfg.model.bn else " (Fixup, no BN)") + (f", width x{cfg.model.width}" if cfg.model.width != 1 else "")
         + f"; deeper net {prof.deep_model.name}", paper[1]),
        ("augmentation", "as the paper" if d.augment else "none", paper[2]),
        ("batch size", str(t.batch_size), paper[3]),
        ("epochs", str(t.epochs), paper[4]),
        ("learning rate", f"{t.lr:g}, /10 at epochs {', '.join(map(str, t.milestones)) or '-'}", paper[5]),
        ("optimiser", f"SGD, momentum {t.momentum:g}, weight decay {t.weight_decay:g}", "SGD, momentum 0.9 (weight decay not stated)"),
        ("adversarial training", f"l_inf PGD, {adv.steps} steps of {adv.alpha:g}/255 (FGSM: one step of size eps)", "l_inf PGD, 10 steps of 2/255 (B.1); FGSM for B.6"),
        ("defensive strengths eps", ", ".join(f"{x:g}" for x in ((0,) if prof.include_eps0 else ()) + tuple(prof.eps_grid)), "4, 8, 16 (and 0 for Tiny-ImageNet)"),
        ("spectral norm targets (B.4.2)", ", ".join(f"{x:g}" for x in prof.spectral_grid) + ", uncontrolled", "1, 3, 5, uncontrolled; clipped every epoch"),
        ("PGD evaluation", f"l_inf radius {e.eps:g}, {e.steps} steps of {e.alpha:g} (0-255 scale)", "radius 8, 10 steps of 2 (D.2)"),
        ("seeds", ", ".join(map(str, prof.seeds)) + (f"; extra seeds {', '.join(map(str, extra))} at eps {', '.join(f'{x:g}' for x in prof.claim_eps)}" if extra else ""),
         "not stated (one run per cell)"),
    ]
    return pd.DataFrame(rows, columns=["setting", f"ours ({prof.name})", "paper (App. D)"]).set_index("setting")


def training_history(df: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch history of every run of ``df`` (rows of :func:`collect`), long: one row per run and epoch."""
    rows = []
    for _, r in df.iterrows():
        for h in run_of(r).metrics().get("history", []):
            rows.append({"hash": r["hash"], "eps": r["eps"], "seed": r["seed"], "spectral_norm": r.get("spectral_norm", np.nan), **h})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Theorem 3.1's bound (Appendix C)


class BoundUnavailable(RuntimeError):
    """The bound terms of a run were never computed and its weights (``model.pt``) are not here."""


BOUND_FILE = "bound.json"
BOUND_VERSION = 1


def bound_terms(run: Run, data_root=None, recompute: bool = False, cache: bool = True) -> dict[str, Any]:
    """The measurable quantities of Theorem 3.1's bound (Appendix C) for one trained run.

    The first term of the bound is ``max{0, 1 - u/gamma}`` with
    ``u = min_{y != y'} ||w_y - w_y'||_2 * prod_{i<L} sigma_min^i * v_min``. Measured here:

    * ``w_min``: the smallest distance between two rows of the final linear layer's weight
      (``min_{y != y'} ||w_y - w_y'||_2``), with the pair;
    * per conv layer (the layers before the classifier), the operator singular values of
      :func:`arlib.spectral.layer_singular_values` (the circular-padding convolution on its
      recorded input size): ``sigma_min`` (smallest of the ``min(out, in)`` values the
      operator has), ``sigma_max``, the operator's input and output dimensions, and whether
      it is *wide* (fewer outputs than inputs: a non-trivial null space, so
      ``inf_{|d|=1} |W d| = 0``, although ``sigma_min`` of its nonzero spectrum may not be);
      ``log10_prod_sigma_min`` (sum of log10 ``sigma_min``) over all conv layers;
    * ``v_min`` proxy: for every correctly classified training example, the first-order
      (DeepFool) estimate of its l2 distance to the decision boundary in input space
      ([0, 1] pixels), ``margin / ||grad_x margin||_2``, with the margin of
      :func:`arlib.analysis.margins` (true logit minus the best other); reported: its
      minimum (``v_min``), 1% quantile, median and the number of examples;
    * ``u_min``: the smallest positive training margin (what the chain of inequalities
      bounds from below), and ``log10_u_lower = log10(w_min) + log10_prod_sigma_min +
      log10(v_min)``, the theorem's lower bound on it.

    Needs the run's weights (``model.pt``); the result is cached in ``bound.json`` in the
    run directory (``cache=True``) and read from there afterwards, so a results store
    without weights still renders. Raises :class:`BoundUnavailable` if neither is there.
    """
    path = run.file(BOUND_FILE)
    if path.exists() and not recompute:
        _record_input(path)
        out = json.loads(path.read_text())
        if out.get("version") == BOUND_VERSION:
            return out
    if not run.file("model.pt").exists():
        raise BoundUnavailable(f"run {run.hash[:8]}: no {BOUND_FILE} and no model.pt to compute it from")

    import torch
    import torch.nn as nn

    from . import data, spectral
    from .analysis import strict_fp32
    from .train import default_device, load_model

    cfg = run.config
    device = default_device()
    ds = data.prepare(cfg.data, data_root)
    model = load_model(run, device=device, num_classes=ds.num_classes)
    transform = data.test_transform(ds.name)
    hw = data.input_size(cfg.data.dataset, ds.image_size)
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    fc_name = [n for n, m in model.named_modules() if m is fc][0]

    with strict_fp32(), torch.no_grad():
        w = fc.weight.detach().double()
        dist = torch.cdist(w, w)
        dist.fill_diagonal_(float("inf"))
        k = int(torch.argmin(dist))
        w_min, pair = float(dist.flatten()[k]), (k // w.shape[0], k % w.shape[0])
        example = torch.zeros(1, int(ds.train.images.shape[1]), hw, hw, device=device)
        sizes = spectral.record_input_sizes(model, example)
        svs = spectral.layer_singular_values(model, sizes)

    layers = []
    for name, module in model.named_modules():
        if name == fc_name or name not in svs:
            continue
        s = svs[name]
        if isinstance(module, nn.Conv2d):
            n1, n2 = sizes[name]
            s1, s2 = module.stride
            d_in, d_out = module.in_channels * n1 * n2, module.out_channels * (n1 // s1) * (n2 // s2)
        else:
            d_in, d_out = module.in_features, module.out_features
        layers.append({
            "layer": name, "sigma_min": float(s.min()), "sigma_max": float(s.max()),
            "n_values": int(s.numel()), "dim_in": int(d_in), "dim_out": int(d_out), "wide": bool(d_out < d_in),
        })
    logs = [math.log10(l["sigma_min"]) if l["sigma_min"] > 0 else -math.inf for l in layers]

    # First-order distance to the boundary of every correctly classified training example.
    dists, margins_pos = [], []
    with strict_fp32():
        for start in range(0, len(ds.train), 250):
            x = transform(ds.train.images[start : start + 250].to(device)).float().requires_grad_(True)
            y = ds.train.labels[start : start + 250].to(device).long()
            z = model(x)
            true = z.gather(1, y[:, None])[:, 0]
            other = z.scatter(1, y[:, None], float("-inf")).max(1).values
            m = true - other
            (g,) = torch.autograd.grad(m.sum(), x)
            gn = g.flatten(1).norm(dim=1)
            ok = (m > 0) & (gn > 0)
            dists.append((m[ok] / gn[ok]).detach().double().cpu())
            margins_pos.append(m[m > 0].detach().double().cpu())
    d = torch.cat(dists).numpy() if dists else np.zeros(0)
    mp = torch.cat(margins_pos).numpy() if margins_pos else np.zeros(0)
    v_min = float(d.min()) if d.size else float("nan")
    log_prod = float(sum(logs)) if layers else float("nan")
    out = {
        "version": BOUND_VERSION,
        "hash": run.hash,
        "w_min": w_min,
        "w_min_pair": list(pair),
        "layers": layers,
        "n_layers": len(layers),
        "n_wide": sum(l["wide"] for l in layers),
        "log10_prod_sigma_min": log_prod,
        "log10_prod_sigma_min_not_wide": float(sum(v for v, l in zip(logs, layers) if not l["wide"])),
        "v_proxy": "first-order l2 distance to the decision boundary, margin / ||grad_x margin||_2, [0,1] pixel scale, correctly classified training examples",
        "v_min": v_min,
        "v_q01": float(np.quantile(d, 0.01)) if d.size else float("nan"),
        "v_median": float(np.median(d)) if d.size else float("nan"),
        "v_n": int(d.size),
        "input_dim": int(ds.train.images[0].numel()) if hw == ds.image_size else int(ds.train.images.shape[1]) * hw * hw,
        "u_min": float(mp.min()) if mp.size else float("nan"),
        "u_median": float(np.median(mp)) if mp.size else float("nan"),
    }
    out["log10_u_lower"] = (math.log10(w_min) if w_min > 0 else -math.inf) + log_prod + (math.log10(v_min) if v_min > 0 else -math.inf)
    out = json.loads(json.dumps(out, default=float).replace("-Infinity", "null").replace("NaN", "null"))
    if cache:
        atomic_write_json(path, out)
    return out


def bound_table(df: pd.DataFrame, data_root=None, gamma: float | None = None) -> pd.DataFrame:
    """Theorem 3.1's measurable quantities for every run of ``df`` (rows of :func:`collect`), one row per run.

    Columns: ``eps``, ``seed``, ``short``, ``w_min``, ``log10_prod_sigma_min`` (all conv
    layers), ``n_wide`` / ``n_layers``, ``log10_prod_sigma_min_not_wide``, ``v_min``,
    ``v_median``, ``l2_radius_of_eps_ball`` (the l2 radius of the training l_inf ball,
    ``eps/255 * sqrt(input_dim)``, for scale), ``u_min``, ``log10_u_lower`` (the theorem's lower bound on ``u_min``),
    ``first_term`` = ``max(0, 1 - 10**log10_u_lower / gamma)`` with ``gamma`` (default: the
    run's median positive training margin, so that the ramp loss is not trivially 0 or 1),
    and ``available`` (False where neither ``bound.json`` nor ``model.pt`` exists).
    """
    rows = []
    for _, r in df.iterrows():
        base = {"eps": r["eps"], "seed": r["seed"], "short": r["short"]}
        try:
            b = bound_terms(run_of(r), data_root=data_root)
        except BoundUnavailable:
            rows.append({**base, "available": False})
            continue
        g = gamma if gamma is not None else b.get("u_median")
        lu = b.get("log10_u_lower")
        first = max(0.0, 1 - 10 ** lu / g) if (lu is not None and g) else np.nan
        rows.append({**base, "available": True, "w_min": b["w_min"], "log10_prod_sigma_min": b["log10_prod_sigma_min"],
                     "n_wide": b["n_wide"], "n_layers": b["n_layers"],
                     "log10_prod_sigma_min_not_wide": b["log10_prod_sigma_min_not_wide"],
                     "v_min": b["v_min"], "v_median": b["v_median"],
                     "l2_radius_of_eps_ball": float(r["eps"]) / 255 * math.sqrt(b.get("input_dim") or float("nan")),
                     "u_min": b["u_min"], "gamma": g,
                     "log10_u_lower": lu, "first_term": first})
    return pd.DataFrame(rows)


def bound_layers(df: pd.DataFrame, data_root=None) -> pd.DataFrame:
    """Per-layer ``sigma_min``, ``sigma_max``, dimensions and wideness of every run of ``df`` (long)."""
    rows = []
    for _, r in df.iterrows():
        try:
            b = bound_terms(run_of(r), data_root=data_root)
        except BoundUnavailable:
            continue
        for l in b["layers"]:
            rows.append({"eps": r["eps"], "seed": r["seed"], "short": r["short"], **l})
    return pd.DataFrame(rows)



def _benchmark_sections(path: str | os.PathLike, prefix: str) -> list[tuple[str, Mapping]] | None:
    """The sections of a benchmark results file whose names start with ``prefix``; ``None`` if the file is absent."""
    doc = _read_benchmark(path)
    if doc is None:
        return None
    return [(key, sec) for key, sec in doc.items() if key.startswith(prefix) and isinstance(sec, Mapping)]


def speed_summary(path: str | os.PathLike = "benchmarks/results/training.json") -> pd.DataFrame | None:
    """The headline of the training-speed benchmark: one row per network.

    Images/s of the torchattacks peer loop (fp32, NCHW) and of arlib's training step, their
    ratio (median of interleaved windows), achieved GFLOP/s against the matmul peak measured
    in the same run. ``None`` if the benchmark has not been run.
    """
    sections = _benchmark_sections(path, "main_")
    if sections is None:
        return None
    rows = []
    for key, sec in sections:
        loops, peak = sec["loops"], sec["matmul_peak_gflops"][f"threads_{sec['threads']}"]
        rows.append({
            "network": key.removeprefix("main_"),
            "profile": sec.get("profile"),
            "threads": sec["threads"],
            "GFLOP / image / step": sec["flops"]["per_image_per_step"] / 1e9,
            "peer img/s (fp32)": loops["peer"]["images_per_s"],
            "arlib img/s": loops["arlib"]["images_per_s"],
            "arlib / peer": loops["arlib"]["ratio_vs_peer"],
            "peer GFLOP/s": loops["peer"]["gflops_per_s"],
            "arlib GFLOP/s": loops["arlib"]["gflops_per_s"],
            "matmul peak fp32 / bf16 GFLOP/s": f"{peak['float32']:.0f} / {peak['bfloat16']:.0f}",
            "arlib: convs' share of op time": loops["arlib"].get("conv_share_of_op_time"),
            "arlib / peer if only convs took time": loops["arlib"].get("ceiling_ratio_vs_peer_convs_only"),
            "load average": ", ".join(f"{x:.1f}" for x in sec.get("load_after", [])),
        })
    return pd.DataFrame(rows).set_index("network").round(2) if rows else None


def speed_bound(path: str | os.PathLike = "benchmarks/results/training.json") -> str | None:
    """The benchmark's own numbers for how far bf16 can take arlib past the fp32 peer on this CPU.

    Two bounds, both from the measured sections ``main_<net>`` (idle-machine rows, not the
    ``_loaded_machine`` ones): (1) hardware: a step that kept the peer's FLOPs and ran them
    all at the bf16 matmul peak would be ``(bf16 peak) / (peer's achieved GFLOP/s)`` times the
    peer; (2) arlib's own profile: if every op but the convolutions took no time, arlib would
    be ``ceiling_ratio_vs_peer_convs_only`` times the peer.
    """
    sections = _benchmark_sections(path, "main_")
    if sections is None:
        return None
    parts = []
    for key, sec in sections:
        if "loaded" in key:
            continue
        loops, peak = sec["loops"], sec["matmul_peak_gflops"][f"threads_{sec['threads']}"]
        peer, ours = loops["peer"], loops["arlib"]
        text = (f"**{key.removeprefix('main_')}** ({sec['threads']} threads): arlib {ours['ratio_vs_peer']:.2f}× the peer. "
                f"The peer's fp32 step runs at {peer['gflops_per_s']:.0f} GFLOP/s, {100 * peer['gflops_per_s'] / peak['float32']:.0f}% of the "
                f"fp32 matmul peak ({peak['float32']:.0f}); the bf16 peak is {peak['bfloat16']:.0f}, so the same FLOPs at the bf16 peak would be "
                f"{peak['bfloat16'] / peer['gflops_per_s']:.2f}× the peer.")
        if "conv_share_of_op_time" in ours:
            text += (f" arlib's convolutions take {100 * ours['conv_share_of_op_time']:.0f}% of its op time and run at "
                     f"{ours['conv_gflops_per_s']:.0f} GFLOP/s ({100 * ours['conv_gflops_per_s'] / peak['bfloat16']:.0f}% of the bf16 peak); "
                     f"with every other op free it would be {ours['ceiling_ratio_vs_peer_convs_only']:.2f}× the peer.")
        parts.append(text)
    return "\n\n".join(parts) if parts else None


def speed_levers(path: str | os.PathLike = "benchmarks/results/training.json") -> pd.DataFrame | None:
    """The benchmark's lever sections (``levers_<net>``): images/s of each variant and its ratio to the section's first loop."""
    sections = _benchmark_sections(path, "levers_")
    if sections is None:
        return None
    rows = []
    for _, sec in sections:
        for loop, r in sec["loops"].items():
            rows.append({"network": sec["net"], "variant": loop, "threads": r["threads"], "img/s": r["images_per_s"],
                         "GFLOP/s": r.get("gflops_per_s"), "vs first row": r.get("ratio_vs_first")})
    return pd.DataFrame(rows).set_index(["network", "variant"]).round(2) if rows else None


def speed_quality(path: str | os.PathLike = "benchmarks/results/training.json") -> pd.DataFrame | None:
    """The benchmark's quality runs (``quality*`` sections): clean and PGD accuracy per loop, mean ± std over seeds."""
    sections = _benchmark_sections(path, "quality")
    if sections is None:
        return None
    rows = []
    for key, sec in sections:
        if "runs" not in sec:
            continue
        runs = pd.DataFrame(sec["runs"])
        setting = f"{sec['net']}, {sec['n_train']} train / {sec['n_test']} test images, {sec['epochs']} epochs, eps {sec.get('eps', 8)}, {runs['seed'].nunique()} seeds"
        for loop, g in runs.groupby("loop", sort=False):
            row = {"section": key, "setting": setting, "loop": loop}
            for col in ("train_acc", "test_acc", "pgd_acc_all", "pgd_acc_correct", "train_seconds"):
                row[col] = f"{g[col].mean():.1f} ± {g[col].std(ddof=1):.1f}" if len(g) > 1 else f"{g[col].mean():.1f}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["section", "loop"]) if rows else None


def sizing_probes(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The runs that sized the cpu profile (``results/probes``): settings and outcome of each."""
    from .store import Store, default_root

    store = Store(Path(root) if root is not None else default_root() / "probes")
    rows = []
    for run in store.runs():
        if not run.finished:
            continue
        _record_input(run.path)
        c, f = run.config, run.metrics()["final"]
        rows.append({"run": run.hash[:8], "model": c.model.name, "images/class": c.data.train_per_class, "augment": c.data.augment,
                     "batch": c.train.batch_size, "lr": c.train.lr, "epochs": c.train.epochs, "eps": c.adv.eps,
                     "train acc": f["train_acc"], "test acc": f["test_acc"], "loss gap": f["delta_loss"]})
    return pd.DataFrame(rows).sort_values(["images/class", "batch", "lr", "epochs"]).reset_index(drop=True).round(3) if rows else pd.DataFrame()
