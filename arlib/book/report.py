"""The runs of a profile as tables: what the book's chapters show.

The chapter notebooks never read a results store directly; they call this module:

* :func:`collect` - one row per run of an experiment of a profile (training and analysing
  the runs that are missing through :func:`arlib.grid.ensure_run`);
* :func:`summarise` - mean, standard deviation and count over seeds;
  :func:`per_layer_mean` - a per-layer quantity averaged over the seeds of one ε;
* :func:`provenance_note` - the one line every figure and table of the book carries: which
  runs (short config hashes), which profile, which commit(s) trained them;
* :func:`runs_table`, :func:`margin_table`, :func:`training_history`, :func:`bound_table`,
  :func:`bound_layers`, :func:`sizing_probes` - the chapters' tables of runs.

Our numbers next to the paper's are :mod:`arlib.book.compare`; Theorem 3.1's terms are
measured by :mod:`arlib.bound`. Every results-store file read here is reported to a running
book build (:func:`arlib.book.handshake.record_inputs`), so a chapter re-executes when its runs change.

Conventions: ``eps`` is the defensive strength on the paper's 0-255 scale, 0 meaning plain
training; "std" over seeds is the sample standard deviation (``ddof=1``), NaN for a single
seed; per-example spreads (e.g. the ``± std`` of Table 1) are population stds over examples
(``ddof=0``) as :mod:`arlib.analysis` computes them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import profiles
from ..bound import BOUND_FILE, BoundUnavailable, bound_terms
from ..errors import DamagedRunError
from ..grid import ensure_run
from ..grid import expand
from ..regimes import is_collapsed, is_degenerate, is_diverged
from ..store import Run, Store, default_root
from .handshake import record_inputs

__all__ = [
    "commits_note",
    "dirty_note",
    "METRICS",
    "CELL_KEYS",
    "RUN_COLUMNS",
    "resolve_profile",
    "cells",
    "collect",
    "run_of",
    "runs_by_eps",
    "load_arrays",
    "runs_table",
    "summarise",
    "per_layer_mean",
    "metric_digits",
    "format_pm",
    "provenance_note",
    "margin_table",
    "training_history",
    "bound_table",
    "bound_layers",
    "sizing_probes",
]

#: Final metrics of ``metrics.json`` (Tables 2-6), in the paper's row order.
METRICS = ["train_acc", "test_acc", "delta_acc", "train_loss", "test_loss", "delta_loss", "pgd_acc_correct", "pgd_acc_all"]

#: The columns that name a cell of a grid; a group of rows equal in all of them differs by seed only.
CELL_KEYS = ["experiment", "dataset", "model", "method", "eps", "spectral_norm"]

#: The columns of :func:`runs_table`, the list of runs each chapter opens with.
RUN_COLUMNS = ["short", "eps", "seed", "train_acc", "test_acc", "delta_acc", "train_loss", "test_loss", "delta_loss", "pgd_acc_correct", "train_minutes"]

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
    """The run configs of one experiment of ``profile`` (plus the claim seeds for ``pgd``), without duplicates (:func:`arlib.grid.expand`)."""
    prof = resolve_profile(profile, **overrides)
    return [c.config for c in expand(prof, [dataset], [experiment], with_claim_seeds)]


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
    row["collapsed"] = is_degenerate(final, run.read_json("analysis.json").get("num_classes", 10) if run.analysed else _num_classes(cfg))
    row["commit"] = prov.get("git_commit", "unknown")
    row["train_minutes"] = _float(prov.get("train_seconds")) / 60
    row["device"] = prov.get("device", "")
    row["precision"] = prov.get("precision", "")
    row["data_source"] = prov.get("dataset_source", "")
    row["data_fingerprint"] = prov.get("dataset_fingerprint", "")
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
        for key in ("sv_std_operator", "sv_std_reshaped", "spectral_norms"):
            layers = dict(spec.get(key) or {})
            row[key] = {k: layers[k] for k in network_order(layers)}
        # Scale-free spread: a layer whose weights only shrink keeps it, one whose spectrum concentrates lowers it.
        std, top = row["sv_std_operator"], row["spectral_norms"]
        row["sv_cv_operator"] = {k: std[k] / top[k] for k in std if top.get(k)}
        tp = summary.get("test_true_prob") or {}
        row["test_true_prob_mean"] = _float(tp.get("mean"))
    row["path"] = str(run.path)
    return row


_HEADS = ("fc", "linear", "classifier", "head")


def network_order(layers: Iterable[str]) -> list[str]:
    """Layer names in the order an input meets them: the stem (``conv1``), then the residual blocks
    (``blocks.2`` before ``blocks.10``; inside a block its convolutions, then its shortcut), then the head (``fc``).

    ``analysis.json`` is written with sorted keys, which puts ``conv1`` after ``blocks.*``.
    """

    def key(name: str):
        head = name.split(".")[-1] in _HEADS or name.split(".")[0] in _HEADS
        stage = 2 if head else (1 if "." in name else 0)
        return stage, [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]

    return sorted(layers, key=key)


COLLAPSED_FIELDS = ("hash", "short", "profile", "experiment", "eps", "spectral_norm", "seed", "train_acc", "test_acc", "train_loss")


def _num_classes(cfg) -> int:
    from ..costs import NUM_CLASSES

    return NUM_CLASSES.get(cfg.data.dataset, 10)


def collapsed_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The collapsed runs that :func:`collect` left out of ``df`` (kept in ``df.attrs``), empty if none."""
    records = df.attrs.get("collapsed", ()) if hasattr(df, "attrs") else ()
    return pd.DataFrame(list(records), columns=list(COLLAPSED_FIELDS))


def level_rows(df: pd.DataFrame, spectral_norm: float) -> pd.DataFrame:
    """The rows of one spectral-norm target, with the collapsed and damaged runs :func:`collect` set aside (``df.attrs``)
    narrowed to that target too: a plain row filter keeps the whole frame's attrs, so every target would count the others'."""
    out = df[df["spectral_norm"] == spectral_norm]
    out.attrs = {
        **df.attrs,
        **{
            key: tuple(r for r in df.attrs.get(key, ()) if r.get("spectral_norm") is not None and np.isclose(float(r["spectral_norm"]), spectral_norm))
            for key in ("collapsed", "damaged")
        },
    }
    return out


def collapsed_note(df: pd.DataFrame) -> str:
    """One line listing the collapsed runs left out of ``df`` (:mod:`arlib.regimes`' rule), or ``""``."""
    c = collapsed_runs(df)
    if c.empty:
        return ""
    items = ", ".join(
        f"{r.short} (ε {r.eps:g}, seed {r.seed}: "
        + ("diverged, loss not finite" if is_diverged({"train_loss": r.train_loss}) else f"train acc {r.train_acc:.1f} %, train loss {r.train_loss:.3f}")
        + ")"
        for r in c.itertuples()
    )
    return (
        f"Left out of every mean, error bar and figure as collapsed (a constant classifier: training accuracy within "
        f"2 points of chance and training loss within 2 % of ln K) or diverged (loss not finite): {items}."
    )


def collapse_evidence(stores: Sequence[str] = ("cpu", "cpu-high", "archive"), root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every collapsed run in the ``stores`` (all runs there, not only the current grid's) next to the healthy runs like it.

    Fixup starts the classifier and the last conv of every residual branch at zero, so an
    untrained network is a constant classifier. For each collapsed run the table gives the
    spectral norms of those zero-initialised layers (classifier ``fc``; mean over the branches'
    ``conv2``) and of the rest, next to the mean over the non-collapsed runs with the same
    store, network, training method and ε: if the zero-initialised layers stayed near zero, the run
    never left its initial constant output.
    """
    base = Path(root) if root is not None else default_root()
    rows = []
    for name in stores:
        for run in Store(base / name).runs():
            if not (run.finished and run.analysed):
                continue
            cfg, final = run.config, run.metrics().get("final", {})
            norms = (run.read_json("analysis.json").get("spectral") or {}).get("spectral_norms") or {}
            if not norms:
                continue
            branch_last = [v for k, v in norms.items() if k.endswith(".conv2")]
            others = [v for k, v in norms.items() if k != "fc" and not k.endswith(".conv2")]
            rows.append(
                {
                    "store": name,
                    "run": run.hash[:8],
                    "model": f"{cfg.model.name} w{cfg.model.width} {cfg.model.shortcut}",
                    "method": cfg.adv.method,
                    "eps": float(cfg.adv.eps),
                    "spectral_norm": cfg.train.spectral_norm,
                    "seed": cfg.train.seed,
                    "collapsed": is_collapsed(final, _num_classes(cfg)),
                    "train_acc": final.get("train_acc"),
                    "fc": norms.get("fc"),
                    "branch conv2 (mean)": float(np.mean(branch_last)) if branch_last else np.nan,
                    "other layers (mean)": float(np.mean(others)) if others else np.nan,
                }
            )
    df = pd.DataFrame(rows)
    if df.empty or not df["collapsed"].any():
        return pd.DataFrame()
    keys = ["store", "model", "method", "eps"]
    plain = df[df["spectral_norm"].isna()]
    healthy = plain[~plain["collapsed"]].groupby(keys)[["train_acc", "fc", "branch conv2 (mean)", "other layers (mean)"]].mean()
    out = []
    for _, r in df[df["collapsed"]].iterrows():
        key = tuple(r[k] for k in keys)
        h = healthy.loc[key] if key in healthy.index else None
        n = int((plain[keys] == pd.Series(dict(zip(keys, key)))).all(axis=1).mul(~plain["collapsed"]).sum())
        out.append(
            {
                "store": r["store"],
                "run": r["run"],
                "model": r["model"],
                "method": r["method"],
                "eps": r["eps"],
                "seed": r["seed"],
                "train acc": r["train_acc"],
                "fc": r["fc"],
                "branch conv2": r["branch conv2 (mean)"],
                "other layers": r["other layers (mean)"],
                "healthy runs (n)": n,
                "healthy: train acc": h["train_acc"] if h is not None else np.nan,
                "healthy: fc": h["fc"] if h is not None else np.nan,
                "healthy: branch conv2": h["branch conv2 (mean)"] if h is not None else np.nan,
                "healthy: other layers": h["other layers (mean)"] if h is not None else np.nan,
            }
        )
    return pd.DataFrame(out).round(3)


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
    include_collapsed: bool = False,
) -> pd.DataFrame:
    """One row per run of ``experiment`` ("pgd", "fgsm", "deep", "spectral") of ``profile`` on ``dataset``.

    With ``ensure=True`` every missing run is trained and analysed through
    :func:`arlib.grid.ensure_run` (finished runs are only read); with ``ensure=False`` missing or
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
    ``spectral_norms``; ``collapsed`` (:func:`arlib.regimes.is_collapsed`); and ``path`` (the
    run directory, for :func:`load_arrays`). Sorted by spectral norm, eps and seed.

    Collapsed runs (constant classifiers, :mod:`arlib.regimes`) are left out of the frame, so
    that no mean, error bar or figure includes them, and kept in ``df.attrs["collapsed"]``
    as plain records (:func:`collapsed_runs` makes them a frame) for the notes that list them;
    ``include_collapsed=True`` keeps them in the frame.
    """
    prof = resolve_profile(profile, eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds)
    store = store or Store.for_profile(prof.name)
    rows, damaged = [], []
    for cfg in cells(prof, experiment, dataset, with_claim_seeds=with_claim_seeds):
        if ensure:
            run = ensure_run(cfg, store, data_root=data_root, analyse=True, progress=progress)
        else:
            # Recorded even when the cell is not run or not finished yet: a run that lands later changes the
            # chapter's stamp, so `arlib book` re-executes the chapter instead of keeping the page without it.
            record_inputs(store.path_of(cfg))
            try:
                run = store.find(cfg)
                if run is None or not run.finished:
                    continue
                rows.append(_row(run, experiment, prof.name))
            except DamagedRunError as e:  # reported by `arlib runs`; the ledger reads the cell as not run, and says why
                damaged.append(
                    {
                        "eps": float(cfg.adv.eps),
                        "seed": int(cfg.train.seed),
                        "hash": cfg.hash,
                        "spectral_norm": float(cfg.train.spectral_norm) if cfg.train.spectral_norm is not None else None,
                        "problem": f"{e.path}: {e.reason}",
                    }
                )
            continue
        record_inputs(run.path)
        rows.append(_row(run, experiment, prof.name))
    if include_collapsed:
        df = _frame(rows)
        df.attrs["damaged"] = tuple(damaged)
        return df
    df = _frame([r for r in rows if not r["collapsed"]])
    df.attrs["damaged"] = tuple(damaged)
    # Plain records, not a frame: pandas compares attrs when it concatenates frames.
    df.attrs["collapsed"] = tuple({k: r[k] for k in COLLAPSED_FIELDS} for r in rows if r["collapsed"])
    return df


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        margin_cols = [f"{sp}_margin_{k}" for sp in ("train", "test") for k in ("mean", "std", "skewness", "median", "frac_below_zero", "abs_mean")]
        return pd.DataFrame(
            columns=["hash", "short", "profile"]
            + CELL_KEYS
            + ["seed", "epochs"]
            + METRICS
            + ["collapsed", "commit", "train_minutes", "device", "precision", "data_source", "data_fingerprint", "finished_at", "analysed"]
            + margin_cols
            + [
                "spectral_complexity",
                "log10_spectral_complexity",
                "sv_std_operator",
                "sv_std_reshaped",
                "spectral_norms",
                "sv_cv_operator",
                "test_true_prob_mean",
                "path",
            ]
        )
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


def runs_table(df: pd.DataFrame, *extra: str) -> pd.DataFrame:
    """The runs of ``df`` (rows of :func:`collect`) as each chapter lists them: :data:`RUN_COLUMNS` (``extra`` columns after ``short``), rounded to 3 digits."""
    return df[RUN_COLUMNS[:1] + list(extra) + RUN_COLUMNS[1:]].round(3)


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


def metric_digits(metric: str) -> int:
    """Decimals the book prints for ``metric``: the paper's (2 for accuracies, 3 for losses, 4 for loss variations)."""
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


def per_layer_mean(df: pd.DataFrame, column: str, eps: float) -> tuple[dict[str, float], int] | None:
    """A per-layer quantity (a dict column of :func:`collect`, e.g. ``sv_std_operator``) averaged over the runs of ``df`` at ``eps``.

    Returns ``({layer: mean over runs}, number of runs)`` in the network's layer order, or
    ``None`` when no run at ``eps`` has the column.
    """
    if column not in df:
        return None
    dicts = [d for d in df.loc[np.isclose(df["eps"].astype(float), float(eps)), column] if isinstance(d, Mapping) and d]
    if not dicts:
        return None
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}, len(dicts)


def target_binding(df: pd.DataFrame, targets: Sequence[float]) -> pd.DataFrame:
    """How many layers of the unclipped runs in ``df`` each spectral-norm target would clip, per ε.

    A target below a layer's spectral norm binds that layer; a target above every layer's norm
    leaves the network as it is (its runs would equal the uncontrolled ones). Rows: ε (runs with
    ``spectral_norm`` unset only); columns: the range of layer norms (mean over seeds per layer)
    and, per target, ``"k / n"`` layers whose norm exceeds it.
    """
    base = df[df["spectral_norm"].isna()] if "spectral_norm" in df else df
    rows = []
    for eps in sorted(base["eps"].astype(float).unique()):
        got = per_layer_mean(base, "spectral_norms", eps)
        if got is None:
            continue
        norms, n_runs = got
        v = np.array(list(norms.values()))
        row = {"eps": eps, "runs": n_runs, "layers": len(v), "min norm": v.min(), "median norm": float(np.median(v)), "max norm": v.max()}
        row.update({f"SP {t:g} binds": f"{int((v > t).sum())} / {len(v)}" for t in targets})
        rows.append(row)
    return pd.DataFrame(rows).set_index("eps").round(2) if rows else pd.DataFrame()


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
    note = (
        f"{head}Runs {hashes} ({n} run{'s' if n != 1 else ''}, profile {profs}"
        + (f", {ds}" if ds else "")
        + f", commit{'s' if len(commits) > 1 else ''} {', '.join(commits)})."
    )
    extra = []
    sources = sorted({str(x) for x in all_.get("data_source", pd.Series([], dtype=str)) if x})
    if sources:
        extra.append("Data: " + ", ".join(map(_source_text, sources)) + ".")
    precisions = sorted({str(x) for x in all_.get("precision", pd.Series([], dtype=str)) if x})
    if precisions:
        extra.append("Training precision: " + ", ".join(_PRECISION_TEXT.get(x, x) for x in precisions) + ".")
    if dirty := dirty_note(commits):
        extra.append(dirty)
    dropped = " ".join(filter(None, (collapsed_note(f) for f in frames)))
    return " ".join([note, *extra] + ([dropped] if dropped else []))


def dirty_note(commits: Iterable[str]) -> str:
    """The sentence that explains a ``+dirty`` commit, when any of ``commits`` has one; else ""."""
    if not any(str(c).endswith("+dirty") for c in commits):
        return ""
    return (
        "+dirty: trained from a checkout whose arlib/ had uncommitted changes at that commit "
        "(the run's provenance.json records it; rerunning it from a clean checkout gives a new, clean record)."
    )


def commits_note(df: pd.DataFrame, key: str = "run") -> str:
    """Which commit trained which rows of ``df`` (its ``commit`` column, rows named by ``key``), with
    :func:`dirty_note` when one is ``+dirty``: the table itself stays narrow enough for the page."""
    if "commit" not in df or df.empty:
        return ""
    groups = df.groupby("commit", sort=True)[key].apply(lambda names: ", ".join(map(str, names)))
    text = "Trained at " + "; ".join(f"commit {c}: {names}" for c, names in groups.items()) + "."
    return " ".join(filter(None, [text, dirty_note(groups.index)]))


# The code whose changes could change a run's numbers: training, attacks, data, networks, configuration, and the
# measurements analysis.json and bound.json hold. The book layer (arlib/book) only reads the stored files.
TRAINING_CODE = (
    "arlib/train.py",
    "arlib/attacks.py",
    "arlib/data.py",
    "arlib/models",
    "arlib/networks.py",
    "arlib/config.py",
    "arlib/profiles.py",
    "arlib/cells.py",
    "arlib/device.py",
    "arlib/evaluation.py",
    "arlib/analysis.py",
    "arlib/spectral.py",
    "arlib/singular_values.py",
    "arlib/clipping.py",
    "arlib/bound.py",
)


def code_changes_since(commit: str, paths: Sequence[str] = TRAINING_CODE, root: str | Path | None = None) -> list[str] | None:
    """The files under ``paths`` that differ between ``commit`` (a run's, ``+dirty`` ignored) and the checkout's HEAD
    (``git diff --name-only <commit> HEAD -- <paths>``, through :mod:`arlib.gitinfo`); ``[]``: none; ``None``: no git
    history to check against (not a checkout, a shallow clone without that commit, an ``unknown`` commit)."""
    from .. import gitinfo

    sha = str(commit).split("+")[0]
    if not re.fullmatch(r"[0-9a-f]{7,40}", sha):
        return None
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    if gitinfo._git(root, "cat-file", "-e", f"{sha}^{{commit}}") is None:
        return None
    out = gitinfo._git(root, "diff", "--name-only", sha, "HEAD", "--", *paths)
    return None if out is None else [line for line in out.splitlines() if line]


def code_check_sentence(commits: Sequence[str], paths: Sequence[str] = TRAINING_CODE) -> str:
    """Why a book built from a later commit than its runs' may show them, checked: for each of the runs' ``commits``,
    whether the training and measurement code (``paths``) differs at the build's HEAD (:func:`code_changes_since`)."""
    commits = sorted({str(c) for c in commits if c})
    if not commits:
        return "No runs, so no training commit to check."
    same, changed, unknown = [], [], []
    for c in commits:
        files = code_changes_since(c, paths)
        (unknown if files is None else same if not files else changed).append((_short_commit(c), files))
    parts = []
    if same:
        parts.append(f"the training and measurement code is unchanged between {', '.join(c for c, _ in same)} and the build's commit")
    for c, files in changed:
        shown = ", ".join(f.removeprefix("arlib/") for f in files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
        parts.append(f"between {c} and the build's commit {len(files)} file{'s' if len(files) != 1 else ''} of it changed ({shown})")
    if unknown:
        parts.append(f"for {', '.join(c for c, _ in unknown)} no git history was available to check")
    checked = "; ".join(parts)
    return (
        "The book reads every number from the runs' stored files and trains nothing, so it may be built from a later commit than "
        f"the runs'. Checked at build time with git (`git diff <run commit> HEAD` over {', '.join(paths)}): {checked}."
        + (
            " A change there does not alter a stored run; whether the current code still trains the same numbers is what "
            "tests/test_reproduce.py checks by retraining two committed cells."
            if changed
            else ""
        )
    )


def _source_text(source: str) -> str:
    """provenance.json's ``dataset_source`` ("tarball:cifar10-jpeg.tar.gz") as a reader reads it."""
    kind, _, name = source.partition(":")
    jpeg = " (JPEG re-encoded images, not the lossless originals)" if "jpeg" in name.lower() or "jpg" in name.lower() else ""
    where = {"tarball": "the archive", "imagefolder": "the image folder"}.get(kind, kind)
    return f"{where} {name}{jpeg}" if name else source


# How provenance.json's precision reads in a provenance note.
_PRECISION_TEXT = {"bf16": "bf16 autocast with fp32 master weights and loss", "fp32": "fp32"}

# ----------------------------------------------------------------------------- tables of runs


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
                format_pm(m, d, digits=3) for m, d in zip(s[f"{c}_mean"], s[f"{c}_std"])
            ]
    out = pd.DataFrame(rows, index=[f"{e:g}" for e in s["eps"]]).T
    out.columns.name = "eps"
    out.index.names = ["split", "statistic"]
    return out


def training_history(df: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch history of every run of ``df`` (rows of :func:`collect`), long: one row per run and epoch."""
    rows = []
    for _, r in df.iterrows():
        for h in run_of(r).metrics().get("history", []):
            rows.append({"hash": r["hash"], "eps": r["eps"], "seed": r["seed"], "spectral_norm": r.get("spectral_norm", np.nan), **h})
    return pd.DataFrame(rows)


def _bound(row, data_root=None) -> dict[str, Any]:
    """:func:`arlib.bound.bound_terms` of a row of :func:`collect`, its ``bound.json`` reported to the book build."""
    run = run_of(row)
    if run.file(BOUND_FILE).exists():
        record_inputs(run.file(BOUND_FILE))
    return bound_terms(run, data_root=data_root)


def bound_table(df: pd.DataFrame, data_root=None, gamma: float | None = None) -> pd.DataFrame:
    """Theorem 3.1's measurable quantities for every run of ``df`` (rows of :func:`collect`), one row per run.

    Columns: ``eps``, ``seed``, ``short``, ``w_min``, ``log10_prod_sigma_min`` (all conv
    layers; -inf when a layer's smallest singular value is 0), ``n_zero_sigma_min`` (those layers),
    ``log10_prod_sigma_min_nonzero`` (the product over the others), ``n_wide`` / ``n_layers``,
    ``log10_prod_sigma_min_not_wide``, ``v_min``,
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
            b = _bound(r, data_root)
        except BoundUnavailable:
            rows.append({**base, "available": False})
            continue
        g = gamma if gamma is not None else b.get("u_median")
        # A layer whose smallest singular value is 0 (to float precision) makes the product 0: log10 is -inf,
        # which bound.json stores as null. Then u_lower = 0 and the first term is exactly 1 (vacuous), a number.
        sig = [float(layer["sigma_min"]) for layer in b.get("layers", [])]
        n_zero = sum(v <= 0 for v in sig)
        nonzero = float(sum(math.log10(v) for v in sig if v > 0)) if sig else np.nan
        lu = b.get("log10_u_lower")
        if lu is None and n_zero:
            lu = -math.inf
        first = max(0.0, 1 - 10**lu / g) if (lu is not None and g) else np.nan
        rows.append(
            {
                **base,
                "available": True,
                "w_min": b["w_min"],
                "log10_prod_sigma_min": b["log10_prod_sigma_min"] if b.get("log10_prod_sigma_min") is not None else (-math.inf if n_zero else np.nan),
                "n_zero_sigma_min": n_zero,
                "log10_prod_sigma_min_nonzero": nonzero,
                "n_wide": b["n_wide"],
                "n_layers": b["n_layers"],
                "log10_prod_sigma_min_not_wide": b["log10_prod_sigma_min_not_wide"] if b.get("log10_prod_sigma_min_not_wide") is not None else -math.inf,
                "v_min": b["v_min"],
                "v_median": b["v_median"],
                "l2_radius_of_eps_ball": float(r["eps"]) / 255 * math.sqrt(b.get("input_dim") or float("nan")),
                "u_min": b["u_min"],
                "gamma": g,
                "log10_u_lower": lu,
                "first_term": first,
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(["eps", "seed"], kind="stable", ignore_index=True) if len(out) else out


def bound_layers(df: pd.DataFrame, data_root=None) -> pd.DataFrame:
    """Per-layer ``sigma_min``, ``sigma_max``, dimensions and wideness of every run of ``df`` (long)."""
    rows = []
    for _, r in df.iterrows():
        try:
            b = _bound(r, data_root)
        except BoundUnavailable:
            continue
        for l in b["layers"]:
            rows.append({"eps": r["eps"], "seed": r["seed"], "short": r["short"], **l})
    return pd.DataFrame(rows)


def split_constant(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``df`` without its columns that hold one value in every row, and those columns as text ("augment False, warm-up 0"),
    so that a wide table fits the page and still says everything."""
    constant = [c for c in df.columns if len(df) > 1 and df[c].astype(str).nunique() == 1]
    text = ", ".join(f"{c} {df[c].iloc[0]}" for c in constant)
    return df.drop(columns=constant), text


def sizing_probes(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The runs that sized the cpu profiles (``results/probes``): settings, compute and outcome of each.

    ``TFLOP`` is the training compute actually spent (counted by :func:`arlib.costs.step_flops`,
    times images and epochs run), so the table reads as training accuracy against compute.
    Probes stopped by hand (``metrics.json`` status ``stopped``) show their last epoch's
    running accuracy on the (adversarial) training batches and the reason they were stopped;
    finished ones their clean training and test accuracy.
    """
    from ..costs import step_flops

    store = Store(Path(root) if root is not None else default_root() / "probes")
    rows = []
    for run in store.runs():
        if not run.file("metrics.json").exists():
            continue
        m = run.read_json("metrics.json")
        if m.get("status") not in ("finished", "stopped"):
            continue
        record_inputs(run.path)
        c, hist = run.config, m.get("history", [])
        last = hist[-1] if hist else {}
        f = m.get("final", {})
        n_train = c.data.train_per_class * 10 if c.data.train_per_class else float("nan")
        rows.append(
            {
                "run": run.hash[:8],
                "model": f"{c.model.name} w{c.model.width} {c.model.shortcut}",
                "images/class": c.data.train_per_class,
                "augment": c.data.augment,
                "batch": c.train.batch_size,
                "lr": c.train.lr,
                "warm-up": c.train.warmup_epochs,
                "eps": c.adv.eps,
                "epochs": f"{len(hist)}/{c.train.epochs}",
                "TFLOP": step_flops(c) * n_train * len(hist) / 1e12,
                "train acc": f.get("train_acc", float("nan")),
                "test acc": f.get("test_acc", last.get("test_acc", float("nan"))),
                "loss gap": f.get("delta_loss", float("nan")),
                "last epoch: adv. acc / loss": f"{last.get('train_running_acc', float('nan')):.1f} / {last.get('train_running_loss') or float('nan'):.3f}",
                "outcome": "finished" if m["status"] == "finished" else m.get("stopped_reason", "stopped"),
                "commit": _short_commit(run.read_json("provenance.json").get("git_commit", "unknown")),
            }
        )
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).sort_values(["eps", "images/class", "model", "batch", "lr"]).reset_index(drop=True).round(3)


ZERO_SIGMA = 1e-7  # a smallest singular value below this is 0 to float32 precision (relative to layers of norm ~1)


def sigma_min_sentence(layers: pd.DataFrame) -> str:
    """What :func:`bound_layers` shows, in one paragraph generated from it: the range of σ_min of the wide layers (those
    with a null space), of the last convolution of every residual branch (``…conv2``, zero at Fixup's initialisation),
    and how many layers are 0 to float precision."""
    if layers.empty:
        return "No run with weights or a stored `bound.json`: nothing to measure."

    def rng(v: pd.Series) -> str:
        lo, hi = float(v.min()), float(v.max())
        return f"{lo:.2g}" if f"{lo:.2g}" == f"{hi:.2g}" else f"{lo:.2g} to {hi:.2g}"

    wide = layers[layers["wide"].astype(bool)]
    last = layers[layers["layer"].astype(str).str.endswith("conv2") & ~layers["wide"].astype(bool)]
    zero = layers[layers["sigma_min"] < ZERO_SIGMA]
    parts = []
    if len(wide):
        parts.append(f"the wide layers' σ_min ranges over {rng(wide['sigma_min'])}")
    if len(last):
        nonzero = last[last["sigma_min"] >= ZERO_SIGMA]["sigma_min"]
        parts.append(
            f"that of the last convolution of each residual branch over {rng(last['sigma_min'])}"
            + (f" ({rng(nonzero)} leaving out the zeros)" if len(nonzero) and len(nonzero) < len(last) else "")
        )
    runs = layers["short"].nunique() if "short" in layers else layers["eps"].nunique()
    parts.append(
        f"{len(zero)} of {len(layers)} layer spectra ({zero['layer'].nunique()} distinct layer{'s' if zero['layer'].nunique() != 1 else ''}) "
        f"have σ_min below {ZERO_SIGMA:g}, 0 to float precision"
        if len(zero)
        else f"no layer has σ_min below {ZERO_SIGMA:g}"
    )
    return f"Measured on these {runs} runs: " + "; ".join(parts) + "."


def bound_gap_sentence(bound: pd.DataFrame) -> str:
    """How loose the chain u_min ≥ u_lower is on the runs of :func:`bound_table`, generated from it: the orders of
    magnitude between the measured smallest margin and the theorem's lower bound, and how many runs have u_lower = 0."""
    if bound.empty or "log10_u_lower" not in bound or "u_min" not in bound:
        return "No run with a stored `bound.json`: nothing to compare."
    lower = pd.to_numeric(bound["log10_u_lower"], errors="coerce")
    measured = np.log10(pd.to_numeric(bound["u_min"], errors="coerce").where(lambda v: v > 0))
    finite = lower.notna() & np.isfinite(lower) & measured.notna()
    zero = int((lower == -np.inf).sum())
    parts = []
    if finite.any():
        gap = (measured - lower)[finite]
        parts.append(
            f"where the lower bound is positive ({int(finite.sum())} of {len(bound)} runs), the measured smallest margin exceeds it by "
            f"{gap.min():.1f} to {gap.max():.1f} orders of magnitude"
        )
    if zero:
        parts.append(f"in {zero} run{'s' if zero != 1 else ''} a layer's σ_min of 0 makes the lower bound 0, and the bound's first term 1")
    return ("On these runs, " + "; ".join(parts) + ".") if parts else "No run has both a lower bound and a measured margin."
