"""Our numbers next to the paper's: the blocks of its appendix tables that match our experiments.

* :func:`side_by_side` - our numbers (mean ± std over seeds, :func:`arlib.book.report.summarise`)
  next to a table of the paper's appendix (:mod:`arlib.book.paper`), aligned on the metric and
  the defensive strength; :func:`paper_block` picks the block that matches an experiment;
* :func:`b2_table`, :func:`spectral_side_by_side`, :func:`dataset_table`,
  :func:`paper_pgd_series`, :func:`datasets_overview` - the chapters' comparisons;
* :func:`settings_table` - a profile's settings next to Appendix D's;
* :func:`paper_note` - the source line of the paper's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..analysis import two_group_std_difference
from . import paper as P
from .report import collect, format_pm, metric_digits, per_layer_mean, provenance_note, resolve_profile, summarise

__all__ = [
    "PAPER_TO_OURS",
    "side_by_side",
    "paper_block",
    "b2_table",
    "spectral_side_by_side",
    "dataset_table",
    "paper_pgd_series",
    "datasets_overview",
    "settings_table",
    "paper_note",
]

#: The paper's metric names (:mod:`arlib.book.paper`) -> our column names. Loss variation (Table 1) is
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


# ----------------------------------------------------------------------------- ours vs the paper


def _our_column(metric: str, attack_eps=None) -> str:
    if metric in ("loss_variation_mean", "loss_variation_std"):
        stat = metric.rsplit("_", 1)[1]
        return f"lv_{stat}_eps{float(attack_eps):g}"
    return PAPER_TO_OURS.get(metric, metric)


def _paper_tidy(paper_table: pd.DataFrame) -> pd.DataFrame:
    """Tidy ``(attack_eps?, metric, eps, paper)`` rows from a tidy table of :mod:`arlib.book.paper` or a :func:`arlib.book.paper.wide` block."""
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

    ``ours``: rows of :func:`~arlib.book.report.collect` (one per run; summarised over seeds here) or an output
    of :func:`~arlib.book.report.summarise` with an ``eps`` column; one experiment/block (select it first).
    ``paper_table``: one block of a paper table, tidy (``arlib.book.paper.table(n)`` filtered to one
    dataset/model/spectral norm) or wide (``arlib.book.paper.wide(n, ...)``). The paper's metric
    names are mapped to ours by :data:`PAPER_TO_OURS` (its "PGD" row is our
    ``pgd_acc_correct``; Table 1's loss-variation mean/std at attack radius e are our
    ``lv_mean_eps{e}``/``lv_std_eps{e}``). Eps values are outer-joined: an eps the paper does
    not have, or that we did not run, shows NaN / "—".

    ``layout="tidy"`` returns columns (``attack_eps``,) ``metric``, ``eps``, ``paper``,
    ``ours_mean``, ``ours_std``, ``n``, ``ours`` (formatted), ``diff`` (ours - paper), in the
    paper's metric order. ``layout="wide"`` returns the table the book prints: rows the metric
    (and attack radius), columns ``(eps, "ours" | "paper")`` as formatted strings.
    """
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
            d = metric_digits(kd["metric"])
            rows.append(
                {
                    **kd,
                    "eps": e,
                    "paper": pv,
                    "ours_mean": mean,
                    "ours_std": std,
                    "n": n,
                    "ours": format_pm(mean, std, digits=d) if n else "not run",
                    "diff": mean - pv,
                }
            )
    out = pd.DataFrame(rows, columns=keys + ["eps", "paper", "ours_mean", "ours_std", "n", "ours", "diff"])
    order = {m: i for i, m in enumerate(P.METRIC_ORDER)}
    out["_o"] = out["metric"].map(lambda m: order.get(m, len(order)))
    out = out.sort_values((["attack_eps"] if has_attack else []) + ["_o", "eps"]).drop(columns="_o").reset_index(drop=True)
    if layout == "tidy":
        return out
    if layout != "wide":
        raise ValueError("layout must be 'tidy' or 'wide'")
    fmt = out.assign(paper_s=[("—" if math.isnan(v) else f"{v:.{metric_digits(m)}f}") for v, m in zip(out["paper"], out["metric"])])
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
    """The block of the paper's tables that matches our ``experiment`` on ``dataset``: ``(table number, arlib.book.paper.wide(...))``.

    pgd -> Tables 3/4 (ResNet-56) or 5 (Tiny-ImageNet); deep -> Tables 3/4 (ResNet-110);
    fgsm -> Table 2; spectral -> Table 6 (CIFAR10 only) at ``spectral_norm``. ``(None, None)``
    where the paper has no such block.
    """
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


def b2_table(df: pd.DataFrame, eps_a: float = 4, eps_b: float = 16) -> pd.DataFrame:
    """Appendix B.2's two-group comparison on our runs, for both kinds of singular values, next to the paper's numbers.

    Per layer the std is averaged over the seeds of each ε, then
    :func:`arlib.analysis.two_group_std_difference` splits the layers into those whose std
    fell from ``eps_a`` to ``eps_b`` (first group, summed decrease) and the others (second
    group, summed increase). Rows: ``source`` (ours: operator / reshaped; paper: CIFAR10 /
    CIFAR100), columns: the sums, means and layer counts of both groups.
    """
    rows = []
    for kind in ("operator", "reshaped"):
        per = [per_layer_mean(df, f"sv_std_{kind}", e) for e in (eps_a, eps_b)]
        if None in per or float(eps_a) == float(eps_b):
            continue
        g = two_group_std_difference(per[0][0], per[1][0])
        rows.append(
            {
                "source": f"ours, {kind} singular values",
                "first_sum": g["first_sum"],
                "first_mean": g["first_mean"],
                "first_n": g["first_n"],
                "second_sum": g["second_sum"],
                "second_mean": g["second_mean"],
                "second_n": g["second_n"],
                "note": "",
            }
        )
    b = P.b2_quantities()
    for ds in ("cifar10", "cifar100"):
        notes = "; ".join(n for n in b[(b.dataset == ds)]["note"] if n)
        rows.append(
            {
                "source": f"paper, {ds.upper()} ResNet-56",
                "first_sum": P.b2_value(ds, "first", "sum"),
                "first_mean": P.b2_value(ds, "first", "mean"),
                "first_n": P.b2_group_size(ds, "first"),
                "second_sum": P.b2_value(ds, "second", "sum"),
                "second_mean": P.b2_value(ds, "second", "mean"),
                "second_n": P.b2_group_size(ds, "second"),
                "note": ("layer counts implied by sum/mean. " + notes).strip(),
            }
        )
    out = pd.DataFrame(rows).set_index("source")
    return out


def spectral_side_by_side(spectral: pd.DataFrame, pgd: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 6 next to ours: one block per spectral-norm target of our grid (tightest first) plus "uncontrolled" (the pgd runs).

    Rows ``(SP, metric)``, columns ``(eps, ours | paper)``; a target the paper does not have
    shows "—" in its paper columns.
    """
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
        rows.append(
            {
                "dataset": ds,
                "paper table": f"Table {t}",
                f"in profile {prof.name}": "yes" if ds in prof.datasets else "not run here",
                "command (paper settings, GPU)": f"arlib grid --profile paper --datasets {ds}",
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def paper_note(*tables: int, extra: str = "") -> str:
    """The source line of the paper's numbers, e.g. ``"Paper: Table 3 of the appendix of Wen, Li & Jia (ICML 2020)."``."""
    if not tables:
        return "Paper: Wen, Li & Jia (ICML 2020), appendix" + (f", {extra}" if extra else "") + "."
    names = ", ".join(f"Table {t}" for t in tables)
    return f"Paper: {names} of the appendix of Wen, Li & Jia (ICML 2020)" + (f"; {extra}" if extra else "") + "."


# ----------------------------------------------------------------------------- settings, histories


def settings_table(profile, dataset: str = "cifar10") -> pd.DataFrame:
    """The settings of ``profile`` on ``dataset`` next to Appendix D's (rows: setting; columns: ``ours (<profile>)``
    for each profile, then ``paper``). ``profile`` may be a list, e.g. the profiles of both capacity regimes."""
    if isinstance(profile, (list, tuple)):
        tables = [settings_table(p, dataset) for p in profile]
        return pd.concat([t.iloc[:, :1] for t in tables] + [tables[0].iloc[:, 1:]], axis=1)
    prof = resolve_profile(profile)
    cfg = prof.base(dataset)
    d, t, e = cfg.data, cfg.train, cfg.eval
    pgd_cells = [c for c in prof.cells(dataset, "pgd") if c.adv.eps > 0]
    adv = pgd_cells[0].adv if pgd_cells else cfg.adv
    extra = [s for s in prof.claim_seeds if s not in prof.seeds]
    paper = {
        "cifar10": (
            "CIFAR-10, 50,000 train / 10,000 test",
            "ResNet-56 (Fixup, no BN); ResNet-110 for B.4.1",
            "pad 4 + random 32x32 crop + horizontal flip",
            "256",
            "200",
            "0.05, /10 at epochs 100 and 150",
        ),
        "cifar100": (
            "CIFAR-100, 50,000 train / 10,000 test",
            "ResNet-56 (Fixup, no BN); ResNet-110 for B.4.1",
            "pad 4 + random 32x32 crop + horizontal flip",
            "256",
            "200",
            "0.05, /10 at epochs 100 and 150",
        ),
        "tinyimagenet": (
            "Tiny-ImageNet, 100,000 train / 10,000 val",
            "WRN-50-2 (BN)",
            "random resized 56x56 crop + flip",
            "256",
            "90",
            "0.1, /10 at epochs 30 and 60",
        ),
    }[dataset]

    def sub(n):
        return "all" if n is None else f"{n} per class"

    rows = [
        ("data", f"{dataset}: train {sub(d.train_per_class)}, test {sub(d.test_per_class)}", paper[0]),
        (
            "network",
            f"{cfg.model.name}"
            + (" (BN)" if cfg.model.bn else " (Fixup, no BN)")
            + (f", width x{cfg.model.width}" if cfg.model.width != 1 else "")
            + f"; deeper net {prof.deep_model.name}",
            paper[1],
        ),
        ("augmentation", "as the paper" if d.augment else "none", paper[2]),
        ("batch size", str(t.batch_size), paper[3]),
        ("epochs", str(t.epochs), paper[4]),
        ("learning rate", f"{t.lr:g}, /10 at epochs {', '.join(map(str, t.milestones)) or '-'}", paper[5]),
        ("optimiser", f"SGD, momentum {t.momentum:g}, weight decay {t.weight_decay:g}", "SGD, momentum 0.9 (weight decay not stated)"),
        (
            "adversarial training",
            f"l_inf PGD, {adv.steps} steps of {adv.alpha:g}/255 (FGSM: one step of size eps)",
            "l_inf PGD, 10 steps of 2/255 (B.1); FGSM for B.6",
        ),
        (
            "defensive strengths eps",
            ", ".join(f"{x:g}" for x in ((0,) if prof.include_eps0 else ()) + tuple(prof.eps_grid)),
            "4, 8, 16 (and 0 for Tiny-ImageNet)",
        ),
        ("spectral norm targets (B.4.2)", ", ".join(f"{x:g}" for x in prof.spectral_grid) + ", uncontrolled", "1, 3, 5, uncontrolled; clipped every epoch"),
        ("PGD evaluation", f"l_inf radius {e.eps:g}, {e.steps} steps of {e.alpha:g} (0-255 scale)", "radius 8, 10 steps of 2 (D.2)"),
        (
            "evaluation images",
            f"clean: every test and training image; PGD: {sub(getattr(e, 'attack_per_class', None))} of the test set, one fixed draw for "
            f"every run; per-epoch curve and B.5: {sub(getattr(e, 'monitor_per_class', None))}",
            "the test set (not stated further)",
        ),
        (
            "seeds",
            ", ".join(map(str, prof.seeds))
            + (f"; extra seeds {', '.join(map(str, extra))} at eps {', '.join(f'{x:g}' for x in prof.claim_eps)}" if extra else ""),
            "not stated (one run per cell)",
        ),
    ]
    return pd.DataFrame(rows, columns=["setting", f"ours ({prof.name})", "paper (App. D)"]).set_index("setting")


def run_groups_table(groups: Mapping[str, Sequence[pd.DataFrame]]) -> pd.DataFrame:
    """Where every group of runs (a capacity regime's frames of :func:`arlib.book.report.collect`) comes from, read from
    their provenance: how many runs, the data they were trained on (source and the dataset's fingerprint), the training
    precision and the commits they were trained at (with how many runs each). Rows: those facts; one column per group."""
    from .report import _PRECISION_TEXT, _short_commit, _source_text

    columns = {}
    for name, frames in groups.items():
        frames = [f for f in frames if f is not None and len(f)]
        if not frames:
            columns[name] = {"runs": "0"}
            continue
        df = pd.concat(frames, ignore_index=True).drop_duplicates("hash")

        def values(col, text=str, df=df):
            return "; ".join(text(v) for v in sorted({str(v) for v in df.get(col, pd.Series([], dtype=str)) if str(v)})) or "not recorded"

        commits = df["commit"].map(_short_commit).value_counts().sort_index()
        columns[name] = {
            "runs": str(len(df)),
            "data source": values("data_source", _source_text),
            "dataset fingerprint": values("data_fingerprint"),
            "precision": values("precision", lambda p: _PRECISION_TEXT.get(p, p)),
            "trained at commit": "; ".join(f"{c} ({n} run{'s' if n != 1 else ''})" for c, n in commits.items()),
        }
    return pd.DataFrame(columns).fillna("—")
