"""What a profile's grid costs: FLOPs counted per training step, and GPU-hours estimated from them.

FLOPs are counted, not guessed: :func:`pass_flops` runs one forward and
backward pass of the model on ``meta`` tensors (no memory, no compute) under
``torch.utils.flop_counter.FlopCounterMode``. One adversarial training step
on one image costs ``steps`` attack passes (forward + backward to the input
only) plus one training pass (forward + backward to input and weights);
FGSM is one attack pass. Evaluation (clean test pass per epoch, the final
PGD-10 attack) is added.

Hours are an **estimate**: FLOPs divided by an assumed sustained GPU
throughput. Small CIFAR ResNets (16-64 channels) keep a GPU far from its
peak (kernel launches and memory traffic dominate), so they get a much
lower assumed throughput than WRN-50-2. The assumptions are parameters and
are printed beside the result.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import models, profiles
from .config import ModelConfig, RunConfig

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "tinyimagenet": 200}
TRAIN_SIZE = {"cifar10": 50_000, "cifar100": 50_000, "tinyimagenet": 100_000}
TEST_SIZE = {"cifar10": 10_000, "cifar100": 10_000, "tinyimagenet": 10_000}
INPUT_SIZE = {"cifar10": 32, "cifar100": 32, "tinyimagenet": 56}

# Sustained bf16 throughput assumed for one NVIDIA H100 (dense peak ~990 TFLOP/s), in TFLOP/s:
# (small CIFAR ResNets, WRN-50-2). "optimistic" ~ 14% / 14% of peak, "central" 2% / 12%,
# "conservative" 1% / 8%.
H100_SCENARIOS = {"optimistic": (140.0, 140.0), "central": (20.0, 120.0), "conservative": (10.0, 80.0)}


def _meta_model(model: str | ModelConfig, dataset: str) -> torch.nn.Module:
    """``model`` on the meta device with the dataset's class count: a run's :class:`~arlib.config.ModelConfig`
    (every keyword the registry takes), or a registry name built with its builder's defaults."""
    name, kw = (model, {}) if isinstance(model, str) else (model.name, {"bn": model.bn, "width": model.width, "shortcut": model.shortcut})
    with torch.device("meta"):
        return models.create(name, num_classes=NUM_CLASSES.get(dataset, 10), **kw)


@lru_cache(maxsize=None)
def pass_flops(model: str | ModelConfig, dataset: str, weights_grad: bool) -> float:
    """FLOPs of one forward + backward pass on one image (to the input; also to the weights if asked)."""
    net = _meta_model(model, dataset)
    for p in net.parameters():
        p.requires_grad_(weights_grad)
    n = INPUT_SIZE.get(dataset, 32)
    x = torch.zeros(1, 3, n, n, device="meta", requires_grad=True)
    counter = FlopCounterMode(display=False)
    with counter:
        net(x).sum().backward()
    return float(counter.get_total_flops())


@lru_cache(maxsize=None)
def forward_flops(model: str | ModelConfig, dataset: str) -> float:
    """FLOPs of one forward pass on one image."""
    net = _meta_model(model, dataset)
    n = INPUT_SIZE.get(dataset, 32)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, n, n, device="meta"))
    return float(counter.get_total_flops())


def step_flops(cfg: RunConfig) -> float:
    """FLOPs of one training step on one image under ``cfg``'s adversary."""
    m, ds = cfg.model, cfg.data.dataset
    attack_passes = {"none": 0, "fgsm": 1, "pgd": cfg.adv.steps}[cfg.adv.method]
    return attack_passes * pass_flops(m, ds, False) + pass_flops(m, ds, True)


def cell_flops(cfg: RunConfig) -> float:
    """FLOPs of a whole run: training, a clean test pass per epoch, the final PGD evaluation."""
    ds = cfg.data.dataset
    n_train = cfg.data.train_per_class * NUM_CLASSES[ds] if cfg.data.train_per_class else TRAIN_SIZE[ds]
    n_test = cfg.data.test_per_class * NUM_CLASSES[ds] if cfg.data.test_per_class else TEST_SIZE[ds]
    e = cfg.eval
    n_monitor = e.monitor_per_class * NUM_CLASSES[ds] if e.monitor_per_class else n_test
    n_attacked = e.attack_per_class * NUM_CLASSES[ds] if e.attack_per_class else n_test
    train = cfg.train.epochs * n_train * step_flops(cfg)
    per_epoch_eval = cfg.train.epochs * n_monitor * forward_flops(cfg.model, ds)
    final_eval = (n_train + n_test) * forward_flops(cfg.model, ds) + n_attacked * e.steps * pass_flops(cfg.model, ds, False)
    return train + per_epoch_eval + final_eval


def grid_cost(profile: str = "paper", datasets: list[str] | None = None, scenarios: dict[str, tuple[float, float]] = H100_SCENARIOS) -> pd.DataFrame:
    """One row per cell of the profile's grid: counted PFLOPs and estimated GPU-hours per scenario."""
    from .grid import expand

    rows = []
    for cell in expand(profile, datasets):
        cfg = cell.config
        flops = cell_flops(cfg)
        row = {
            "experiment": cell.experiment,
            "dataset": cfg.data.dataset,
            "model": cfg.model.name,
            "method": cfg.adv.method,
            "eps": cfg.adv.eps,
            "spectral_norm": cfg.train.spectral_norm,
            "seed": cfg.train.seed,
            "PFLOP": flops / 1e15,
        }
        for name, (small, wide) in scenarios.items():
            tflops = wide if cfg.model.name == "wrn50_2" else small
            row[f"GPU-h ({name})"] = flops / (tflops * 1e12) / 3600
        rows.append(row)
    return pd.DataFrame(rows)


def cost_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Totals of :func:`grid_cost` per dataset and experiment, and overall."""
    cols = ["PFLOP"] + [c for c in df.columns if c.startswith("GPU-h")]
    out = df.groupby(["dataset", "experiment"])[cols].sum()
    out.loc[("all", "all"), :] = df[cols].sum()
    out["cells"] = df.groupby(["dataset", "experiment"]).size().reindex(out.index).fillna(len(df)).astype(int)
    return out.round(2)


__all__ = ["pass_flops", "step_flops", "cell_flops", "grid_cost", "cost_summary", "H100_SCENARIOS", "profiles"]
