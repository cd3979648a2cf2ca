"""The paper's own numbers, as data.

Tables 1-6 and the quantitative figures of Appendix B.2 of

    Yuxin Wen, Shuai Li, Kui Jia. "Towards Understanding the Regularization of
    Adversarial Robustness on Neural Networks." ICML 2020 (appendix).

transcribed value by value, exactly as printed, into ``paper_tables.csv``
(shipped next to this module as package data). Nothing is repaired: where the
paper is internally inconsistent the value is kept and the inconsistency is
*reported* (:func:`consistency_report`, :func:`b2_quantities`).

What each table is (all defensive strengths ``eps`` are the l_inf radius of
the PGD/FGSM adversary used in adversarial training, on the 0-255 scale):

* Table 1 (App. B.5, fig. 8) - smoothing effect of PGD adversarial training:
  mean and std over test samples of the maximal loss variation under an attack
  of radius ``attack_eps`` in {1, 2, 4}, CIFAR10/100, defensive eps 4/8/16.
  Network: ResNet-56 (not named in the caption; inferred from B.5 working on
  the section 4 networks).
* Table 2 (App. B.6, fig. 9) - ResNet-56 adversarially trained with **FGSM**
  on CIFAR10/100: test accuracy and train/test loss and loss gap only.
* Table 3 (App. D.2, figs. 3, 7, 12) - CIFAR10, ResNet-56 and ResNet-110.
* Table 4 (App. D.2, figs. 3, 7, 12) - CIFAR100, ResNet-56 and ResNet-110.
* Table 5 (App. D.2, figs. 3, 7, 12) - Tiny-ImageNet, WRN-50-2; includes
  eps 0 (natural training; its PGD accuracy is printed as 0.00).
* Table 6 (App. D.3, fig. 6) - CIFAR10 ResNet-56 without BN, spectral norm of
  every weight matrix clipped to 1, 3, 5 each epoch, plus "SP Uncontrolled"
  rows (``spectral_norm`` missing) which repeat Table 3's ResNet-56 values
  verbatim.

Tidy columns: ``table`` (1..6), ``dataset`` (cifar10/cifar100/tinyimagenet),
``model`` (resnet56/resnet110/wrn50_2), ``method`` (pgd/fgsm), ``eps`` (0, 4,
8, 16), ``spectral_norm`` (1/3/5, <NA> when uncontrolled or not applicable),
``attack_eps`` (1/2/4 for Table 1, <NA> otherwise), ``metric`` and ``value``.
Metrics: ``train_acc``, ``test_acc``, ``delta_acc`` (= train - test, in %),
``train_loss``, ``test_loss``, ``delta_loss`` (= test - train),
``pgd_acc`` (accuracy in % under l_inf PGD, 10 steps of 2, radius 8, on
originally correctly classified test examples - App. D.2), and for Table 1
``loss_variation_mean`` / ``loss_variation_std``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..errors import ArlibError

__all__ = [
    "PaperTableError",
    "TABLE_CAPTIONS",
    "METRIC_ORDER",
    "load_tables",
    "table",
    "wide",
    "b2_quantities",
    "consistency_report",
]

DATA_FILE = "paper_tables.csv"

TABLE_CAPTIONS = {
    1: "Table 1. Data of the smoothing effect of PGD adversarial training in fig. 8.",
    2: "Table 2. Data of fig. 9 (FGSM adversarial training, ResNet-56).",
    3: "Table 3. Raw data of CIFAR10 dataset for plots in fig. 3, fig. 7 and fig. 12.",
    4: "Table 4. Raw data of CIFAR100 dataset for the plot in fig. 3, fig. 7 and fig. 12.",
    5: "Table 5. Raw data of Tiny-ImageNet dataset for the plot in fig. 3, fig. 7 and fig. 12.",
    6: "Table 6. Raw data for fig. 6. SP denotes spectral norm.",
}

#: Row order of the metrics as the paper prints them.
METRIC_ORDER = [
    "loss_variation_mean",
    "loss_variation_std",
    "train_acc",
    "test_acc",
    "delta_acc",
    "train_loss",
    "test_loss",
    "delta_loss",
    "pgd_acc",
]

# Rounding tolerances for consistency_report().  Accuracies are printed with
# 2 decimals (unit 0.01 %), losses with 3 (unit 0.001).  If the paper computed
# each gap from unrounded numbers and then rounded all three, the printed gap
# can differ from the difference of the printed operands by up to
# 3 x (unit / 2) = 1.5 units, *strictly* less.  All printed numbers are
# integer multiples of the unit, so that discrepancy is itself a multiple of
# the unit, hence at most 1 unit.  A tolerance of one unit plus a small margin
# for binary floating point (0.011 % and 0.0011) therefore accepts exactly the
# discrepancies that rounding can explain and flags any 2-unit or larger one.
ACC_TOL = 0.011
LOSS_TOL = 0.0011


class PaperTableError(ArlibError, ValueError):
    """A request for a table/block that the paper does not have."""


def _data_path() -> Path:
    try:
        from importlib.resources import files

        p = files(__package__ or "arlib").joinpath(DATA_FILE)
        if p.is_file():
            return Path(str(p))
    except (ImportError, ModuleNotFoundError, TypeError, AttributeError):  # pragma: no cover
        pass
    return Path(__file__).with_name(DATA_FILE)


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    df = pd.read_csv(
        _data_path(),
        dtype={
            "table": "int64",
            "dataset": "string",
            "model": "string",
            "method": "string",
            "eps": "int64",
            "spectral_norm": "Int64",
            "attack_eps": "Int64",
            "metric": "string",
            "value": "float64",
        },
        keep_default_na=False,
        na_values={"spectral_norm": [""], "attack_eps": [""]},
    )
    return df


def load_tables() -> pd.DataFrame:
    """All of Tables 1-6 of the appendix of Wen, Li & Jia (ICML 2020), tidy.

    One row per printed number (256 rows: Table 1: 36, Table 2: 24,
    Tables 3 and 4: 42 each, Table 5: 28, Table 6: 84). Columns: ``table``,
    ``dataset``, ``model``, ``method``, ``eps``, ``spectral_norm``,
    ``attack_eps``, ``metric``, ``value`` (see the module docstring). Values
    are exactly as printed (accuracies in %, 2 decimals; losses 3 decimals;
    Table 1 loss variations 4 decimals). Returns a fresh copy.
    """
    return _load().copy()


def table(n: int) -> pd.DataFrame:
    """Tidy rows of Table ``n`` (1..6) of the paper's appendix.

    Table 1: loss-variation smoothing (B.5); Table 2: FGSM training (B.6);
    Tables 3/4/5: CIFAR10/CIFAR100/Tiny-ImageNet raw data (D.2); Table 6:
    spectral-norm-controlled ResNet-56 on CIFAR10 (D.3).
    """
    if n not in TABLE_CAPTIONS:
        raise PaperTableError(f"the paper has Tables 1-6, not {n!r}")
    df = _load()
    return df[df["table"] == n].reset_index(drop=True).copy()


_ANY = object()


def wide(table_n: int, dataset=None, model=None, spectral_norm=_ANY) -> pd.DataFrame:
    """One block of Table ``table_n`` pivoted like the paper prints it.

    Rows are the metrics in the paper's order (for Table 1 a MultiIndex
    ``(attack_eps, metric)`` with the mean and std of the loss variation),
    columns are the defensive strengths ``eps``.

    ``dataset`` / ``model`` select the block where a table has several
    (Tables 1, 2: dataset; Tables 3, 4: model). For Table 6 pass
    ``spectral_norm`` 1, 3 or 5, or ``None`` / ``"uncontrolled"`` for the
    "SP Uncontrolled" rows. Raises :class:`PaperTableError` if the selection
    is empty or still spans several blocks.

    Example: ``wide(3, model="resnet56")`` reproduces the upper half of
    Table 3 (7 metrics x eps 4, 8, 16).
    """
    df = table(table_n)
    if dataset is not None:
        df = df[df["dataset"] == dataset]
    if model is not None:
        df = df[df["model"] == model]
    if spectral_norm is not _ANY:
        if spectral_norm is None or (isinstance(spectral_norm, str) and spectral_norm.lower() == "uncontrolled"):
            df = df[df["spectral_norm"].isna()]
        else:
            df = df[df["spectral_norm"].eq(int(spectral_norm)).fillna(False)]
    if df.empty:
        raise PaperTableError(f"Table {table_n} has no block dataset={dataset!r} model={model!r} spectral_norm={spectral_norm!r}")
    keys = df[["dataset", "model", "method"]].astype(str).agg("/".join, axis=1)
    keys = keys + "/sp=" + df["spectral_norm"].astype("string").fillna("-")
    if keys.nunique() > 1:
        raise PaperTableError(f"Table {table_n}: selection spans several blocks {sorted(keys.unique())}; narrow it with dataset=, model= or spectral_norm=")
    order = {m: i for i, m in enumerate(METRIC_ORDER)}
    if table_n == 1:
        out = df.pivot(index=["attack_eps", "metric"], columns="eps", values="value")
        out = out.sort_index(level=[0, 1], key=lambda s: s.map(order) if s.name == "metric" else s)
    else:
        out = df.pivot(index="metric", columns="eps", values="value")
        out = out.loc[sorted(out.index, key=order.__getitem__)]
    out.columns.name = "eps"
    out = out[sorted(out.columns)]
    return out


def b2_quantities() -> pd.DataFrame:
    """The quantitative numbers of Appendix B.2 (variance reduction of singular values).

    Layers of ResNet-56 are split by comparing the std of the singular values
    of each weight matrix in the network trained with AR strength 4 (sigma4_i)
    and 16 (sigma16_i): group ``"first"`` = layers with sigma4_i > sigma16_i
    (std decreased under stronger AR), summed/averaged quantity
    sigma4_i - sigma16_i; group ``"second"`` = the others, quantity
    sigma16_i - sigma4_i. Columns: ``dataset``, ``group``, ``quantity``,
    ``statistic`` (sum/mean), ``value`` (as printed), ``flag`` (bool),
    ``note``.

    Oddity, kept as printed and flagged: the CIFAR100 second-group sum,
    0.4372, repeats the CIFAR10 second-group sum verbatim while its average
    (0.1103) differs from CIFAR10's (0.0312). sum/mean implies the group size:
    CIFAR10 4.7465/0.1158 ~ 41 and 0.4372/0.0312 ~ 14 layers (41 + 14 = 55),
    CIFAR100 3.7511/0.09618 ~ 39 but 0.4372/0.1103 ~ 4 layers (39 + 4 = 43);
    a 16-layer second group (39 + 16 = 55) would need a sum near 1.76, which
    suggests the printed sum is a copy of the CIFAR10 figure.
    """
    q1 = "sum_i (sigma4_i - sigma16_i) over layers with sigma4_i > sigma16_i"
    q2 = "sum_i (sigma16_i - sigma4_i) over layers with sigma4_i <= sigma16_i"
    odd = (
        "as printed; repeats the CIFAR10 second-group sum (0.4372) while the "
        "average (0.1103) differs - implied group size 0.4372/0.1103 ~ 4 layers "
        "vs ~14 for CIFAR10; likely a copy error in the paper"
    )
    rows = [
        ("cifar10", "first", q1, "sum", 4.7465, False, ""),
        ("cifar10", "first", q1, "mean", 0.1158, False, ""),
        ("cifar10", "second", q2, "sum", 0.4372, False, ""),
        ("cifar10", "second", q2, "mean", 0.0312, False, ""),
        ("cifar100", "first", q1, "sum", 3.7511, False, ""),
        ("cifar100", "first", q1, "mean", 0.09618, False, ""),
        ("cifar100", "second", q2, "sum", 0.4372, True, odd),
        ("cifar100", "second", q2, "mean", 0.1103, False, ""),
    ]
    return pd.DataFrame(rows, columns=["dataset", "group", "quantity", "statistic", "value", "flag", "note"])


def b2_value(dataset: str, group: str, statistic: str) -> float:
    """One number of :func:`b2_quantities`: the ``statistic`` ("sum" or "mean") of ``group`` ("first" or "second") on ``dataset``."""
    b = b2_quantities()
    hit = b[(b.dataset == dataset) & (b.group == group) & (b.statistic == statistic)]
    if hit.empty:
        raise PaperTableError(f"Appendix B.2 has no {statistic} of the {group} group on {dataset}")
    return float(hit["value"].iloc[0])


def b2_group_size(dataset: str, group: str) -> int:
    """The number of layers in a B.2 group that its printed sum and mean imply (sum / mean, rounded)."""
    return round(b2_value(dataset, group, "sum") / b2_value(dataset, group, "mean"))


def consistency_report(acc_tol: float = ACC_TOL, loss_tol: float = LOSS_TOL) -> pd.DataFrame:
    """Rows of Tables 2-6 whose printed gaps disagree with their printed operands.

    Checks ``delta_acc == train_acc - test_acc`` (Tables 3-6) and
    ``delta_loss == test_loss - train_loss`` (Tables 2-6) for every block and
    eps, beyond rounding (``acc_tol`` = 0.011 %-points, ``loss_tol`` = 0.0011;
    see the comment at ``ACC_TOL`` for why one unit in the last printed place
    is exactly what rounding can explain). Returns one row per violation with
    the block keys, ``check`` (``delta_acc``/``delta_loss``), ``printed``,
    ``computed``, ``diff`` (printed - computed) and ``tol``; empty when the
    paper is consistent. Pass ``acc_tol=loss_tol=1e-9`` to see also the
    off-by-one-unit rows that rounding explains.
    """
    df = _load()
    df = df[df["table"] >= 2]
    keys = ["table", "dataset", "model", "method", "eps", "spectral_norm"]
    df = df.assign(spectral_norm=df["spectral_norm"].fillna(-1))  # NaN keys would be dropped by pivot
    w = df.pivot(index=keys, columns="metric", values="value").reset_index()
    out = []
    checks = [
        ("delta_acc", "train_acc", "test_acc", acc_tol),
        ("delta_loss", "test_loss", "train_loss", loss_tol),
    ]
    for _, r in w.iterrows():
        for name, a, b, tol in checks:
            if name not in w.columns or pd.isna(r.get(name)) or pd.isna(r.get(a)) or pd.isna(r.get(b)):
                continue
            computed = r[a] - r[b]
            diff = r[name] - computed
            if abs(diff) > tol:
                out.append({**{k: r[k] for k in keys}, "check": name, "printed": r[name], "computed": round(computed, 6), "diff": round(diff, 6), "tol": tol})
    cols = keys + ["check", "printed", "computed", "diff", "tol"]
    res = pd.DataFrame(out, columns=cols)
    if not res.empty:
        res["spectral_norm"] = res["spectral_norm"].astype("Int64").replace(-1, pd.NA)
        res = res.sort_values(keys + ["check"], na_position="last").reset_index(drop=True)
    return res
