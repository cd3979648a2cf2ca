"""Issue 19's done-when, measured: per PGD cell of both CPU regimes, the number of seeds, the clean test accuracy
and its standard error under the resolution design (committed stores) side by side with the earlier design's
runs (the stores as they were before commit 51a4e54 replaced them; git history keeps them), and the wall time
per cell kind from each run's provenance.

    .venv/bin/python benchmarks/resolution_old_new.py [--old-commit 51a4e54^]

Standard errors, in accuracy points:

* new design: ``arlib.book.claims.cell_resolution``: the seed term (std / sqrt(n)) and the test-image term (the
  Poisson bootstrap over the 10,000 test images' per-example outcomes, seeds fixed), combined.
* old design: the seed term as measured on its runs (all trained on one subset, ``subset_seed = 0``, so it
  omits the draw of the training images) and the test-image term as the binomial SE of the cell mean on its
  1,000 images (every seed was scored on the same 1,000 images, so averaging seeds does not shrink it; the old
  runs stored no per-example outcomes to bootstrap).

Wall time: ``train_seconds + eval_seconds`` of provenance.json (a resumed run records its last leg only, so those
are lower bounds; the runs shared a 2-core machine with other jobs).
"""

import argparse
import json
import math
import subprocess
import tarfile
import tempfile
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

from arlib import profiles
from arlib.book import claims, report
from arlib.store import Store

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
REGIMES = {"cpu": "low capacity", "cpu-high": "high capacity"}


def kind_of(config: dict) -> str:
    adv, train = config["adv"], config["train"]
    if train.get("spectral_norm"):
        return "clipping"
    if adv["method"] == "fgsm":
        return "fgsm"
    if adv["method"] == "none" or not adv["eps"]:
        return "plain (eps 0)"
    return config["model"]["name"]


def runs_in(root: Path) -> pd.DataFrame:
    """One row per run directory under ``root`` (config, final metrics, provenance times)."""
    rows = []
    for d in sorted(root.glob("*/")):
        try:
            c = json.loads((d / "config.json").read_text())
            m = json.loads((d / "metrics.json").read_text())["final"]
            p = json.loads((d / "provenance.json").read_text())
        except (FileNotFoundError, KeyError):
            continue
        rows.append(
            {
                "kind": kind_of(c),
                "pgd cell": c["adv"]["method"] in ("pgd", "none") and not c["train"].get("spectral_norm"),
                "model": c["model"]["name"],
                "shortcut": c["model"].get("shortcut"),
                "train per class": c["data"].get("train_per_class"),
                "epochs": c["train"]["epochs"],
                "eps": float(c["adv"]["eps"]),
                "seed": c["train"]["seed"],
                "test_acc": m["test_acc"],
                "test images": p.get("n_test") or c["data"].get("test_per_class", 0) * 10,
                "minutes": (p.get("train_seconds", float("nan")) + p.get("eval_seconds", 0.0)) / 60,
                "eval seconds": p.get("eval_seconds", float("nan")),
            }
        )
    return pd.DataFrame(rows)


def old_store(commit: str, tmp: Path) -> Path:
    """The results/ tree of ``commit``, extracted under ``tmp``."""
    blob = subprocess.run(["git", "archive", commit, "results/cpu", "results/cpu-high"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "results"


def old_resolution(df: pd.DataFrame, prof: profiles.Profile) -> pd.DataFrame:
    """The old runs of the profile's base network and training set size (the stores also held other shortcut options)."""
    m, d, t = prof.model, prof.datasets["cifar10"], prof.train["cifar10"]
    same = (df["model"] == m.name) & (df["shortcut"] == m.shortcut) & (df["train per class"] == d.train_per_class) & (df["epochs"] == t.epochs)
    rows = []
    for eps, cell in df[df["pgd cell"] & same].groupby("eps"):
        v = cell["test_acc"].to_numpy(float)
        n_img = int(cell["test images"].iloc[0])
        p = v.mean() / 100
        se_img = 100 * math.sqrt(p * (1 - p) / n_img)
        se_seed = float(np.std(v, ddof=1)) / math.sqrt(v.size) if v.size > 1 else float("nan")
        rows.append(
            {"eps": eps, "n": v.size, "test images": n_img, "mean": v.mean(), "SE seeds": se_seed, "SE images": se_img, "SE": math.hypot(se_seed, se_img)}
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-commit", default="51a4e54^", help="a commit whose results/cpu* hold the earlier design's runs")
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    with tempfile.TemporaryDirectory() as tmp:
        old_root = old_store(args.old_commit, Path(tmp))
        for profile, name in REGIMES.items():
            prof = profiles.get(profile)
            store = Store(ROOT / "results" / profile)
            rows = report.collect(prof, "pgd", store=store, ensure=False)
            new = claims.cell_resolution(rows).set_index("eps")[["n", "test images", "mean", "SE seeds", "SE images", "SE"]]
            old = old_resolution(runs_in(old_root / profile / "runs"), prof).set_index("eps")
            both = pd.concat({"new design": new, "old design": old}, axis=1)
            print(f"\n== {name} ({profile}): clean test accuracy of the PGD cells (%, SE in points) ==")
            print(both.round(2).to_string())
            for label, df in (("new", runs_in(ROOT / "results" / profile / "runs")), ("old", runs_in(old_root / profile / "runs"))):
                if df.empty:
                    continue
                g = df.groupby("kind")
                t = pd.concat(
                    {
                        "minutes (train + evaluation)": g["minutes"].agg(["count", "median", "min", "max"]),
                        "final evaluation, s": g["eval seconds"].agg(["median", "min", "max"]),
                    },
                    axis=1,
                )
                print(f"\n{label} design, per run, by kind:\n{t.round(1).to_string()}")


if __name__ == "__main__":
    main()
