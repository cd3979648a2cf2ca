"""Typed run configuration: one schema for the CLI, the grid and papermill.

A run is fully described by a :class:`RunConfig`. Its hash (``config_hash``)
names the run's directory in the results store, so two processes, machines or
sessions that ask for the same run share one result. Every field that changes
what is computed is part of the hash; where the data lives on disk is not.

Perturbation sizes (``eps``, ``alpha``) are on the paper's 0-255 pixel scale
(Appendix B.1: "l-inf norm is rescaled to the range of 0-255"); the attacks
themselves work in [0, 1] and receive ``eps / 255``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

DATASETS = ("cifar10", "cifar100", "tinyimagenet", "imagefolder")
ADV_METHODS = ("none", "pgd", "fgsm")
PRECISIONS = ("fp32", "bf16", "auto")
ATTACK_MODES = ("train", "eval")
SHORTCUTS = ("A", "B")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10"  # cifar10 | cifar100 | tinyimagenet | imagefolder
    train_per_class: int | None = None  # class-balanced training subset; None = all
    test_per_class: int | None = None  # class-balanced test subset; None = all
    subset_seed: int = 0  # seed of the subset draw (independent of the training seed)
    augment: bool = True  # Appendix D.1 augmentation during training


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet56"  # a name from arlib.models.registry
    bn: bool = False  # batch norm (the paper's CIFAR nets have none: Fixup instead)
    width: int = 1  # channel multiplier of the CIFAR ResNets (16/32/64 x width)
    shortcut: str = "A"  # A: parameter-free subsample + zero channels (the paper's); B: 1x1 projection convs


@dataclass(frozen=True)
class AdvConfig:
    method: str = "pgd"  # none | pgd | fgsm: how training examples are perturbed
    eps: float = 8.0  # defensive strength, 0-255 scale
    alpha: float = 2.0  # PGD step size, 0-255 scale (Appendix B.1: 2/255)
    steps: int = 10  # PGD steps (Appendix B.1: 10)
    attack_mode: str = "train"  # model mode while crafting training examples


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.05
    milestones: tuple[int, ...] = (100, 150)  # epochs at which lr is divided by 10
    warmup_epochs: int = 0  # linear lr warm-up over the first epochs (0: none, as in Appendix D)
    lr_gamma: float = 0.1
    momentum: float = 0.9
    # The appendix does not state a weight decay; 1e-4 is He et al.'s and Fixup's CIFAR value.
    weight_decay: float = 1e-4
    spectral_norm: float | None = None  # clip every layer's spectral norm to this after each epoch
    precision: str = "auto"  # fp32 | bf16 | auto (bf16 autocast where the hardware has it)
    channels_last: bool = True
    seed: int = 0


@dataclass(frozen=True)
class EvalConfig:
    # Appendix D.2: "10 iterations with steps of size 2 and maximum of 8".
    eps: float = 8.0
    alpha: float = 2.0
    steps: int = 10
    batch_size: int = 500


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    adv: AdvConfig = field(default_factory=AdvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self), integral_floats_as_ints=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return config_from_dict(d)

    def replace(self, **sections: dict[str, Any]) -> "RunConfig":
        """Copy with fields of sections overridden: ``cfg.replace(adv={"eps": 4})``."""
        new = {}
        for name, overrides in sections.items():
            current = getattr(self, name)
            try:
                new[name] = dataclasses.replace(current, **overrides)
            except TypeError as e:
                raise ConfigError(f"bad field for section '{name}': {e}") from None
        return validate(dataclasses.replace(self, **new))

    @property
    def hash(self) -> str:
        return config_hash(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "adv": AdvConfig, "train": TrainConfig, "eval": EvalConfig}


def to_jsonable(x: Any, integral_floats_as_ints: bool = False) -> Any:
    """``x`` as plain JSON values: the one JSON cleaner of arlib (configs, analysis, bound terms).

    Mappings (keys made strings), lists and tuples are walked; NumPy scalars and one-element
    tensors become Python numbers; non-finite floats become ``None`` (JSON has no NaN or
    infinity). ``integral_floats_as_ints``: write 8.0 as 8, which config hashes need (configs
    come from JSON, the CLI and Python, and 8 and 8.0 must hash alike).
    """
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v, integral_floats_as_ints) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v, integral_floats_as_ints) for v in x]
    if hasattr(x, "item") and (getattr(x, "ndim", None) == 0 or (hasattr(x, "numel") and x.numel() == 1)):
        x = x.item()  # NumPy scalars, one-element tensors
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return int(x) if integral_floats_as_ints and x.is_integer() else x
    return x


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the canonical JSON of the config, first 16 hex digits."""
    blob = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from nested dicts (e.g. a config.json)."""
    if not isinstance(d, dict):
        raise ConfigError("config must be a JSON object")
    unknown = set(d) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown config sections: {sorted(unknown)}")
    parts = {}
    for name, klass in SECTIONS.items():
        sub = d.get(name, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"config section '{name}' must be an object")
        names = {f.name for f in dataclasses.fields(klass)}
        bad = set(sub) - names
        if bad:
            raise ConfigError(f"unknown fields in '{name}': {sorted(bad)}")
        sub = dict(sub)
        if "milestones" in sub:
            sub["milestones"] = tuple(sub["milestones"])
        parts[name] = klass(**sub)
    return validate(RunConfig(**parts))


def validate(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError with a one-line message on any invalid value."""
    from .models import registry  # local import: models import torch

    def check(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

    check(cfg.data.dataset in DATASETS, f"unknown dataset '{cfg.data.dataset}' (choose from {', '.join(DATASETS)})")
    for n in (cfg.data.train_per_class, cfg.data.test_per_class):
        check(n is None or (isinstance(n, int) and n > 0), "per-class subset sizes must be positive integers")
    check(cfg.model.name in registry(), f"unknown model '{cfg.model.name}' (choose from {', '.join(sorted(registry()))})")
    check(cfg.model.width >= 1, "model width must be >= 1")
    check(cfg.model.shortcut in SHORTCUTS, f"model.shortcut must be one of {SHORTCUTS}")
    check(cfg.adv.method in ADV_METHODS, f"unknown adversarial training method '{cfg.adv.method}'")
    for name, v in (("adv.eps", cfg.adv.eps), ("adv.alpha", cfg.adv.alpha), ("eval.eps", cfg.eval.eps), ("eval.alpha", cfg.eval.alpha)):
        check(isinstance(v, (int, float)) and 0 <= v <= 255, f"{name} must be in [0, 255] (the paper's pixel scale), got {v}")
    check(cfg.adv.steps >= 1 and cfg.eval.steps >= 0, "attack steps must be positive")
    check(cfg.adv.attack_mode in ATTACK_MODES, f"adv.attack_mode must be one of {ATTACK_MODES}")
    check(cfg.adv.method != "none" or cfg.adv.eps == 0, "adv.method 'none' requires adv.eps 0")
    check(cfg.adv.method == "none" or cfg.adv.eps > 0, "adversarial training needs adv.eps > 0 (use method 'none' for eps 0)")
    t = cfg.train
    check(t.epochs >= 1 and t.batch_size >= 1 and t.lr > 0, "epochs, batch_size and lr must be positive")
    check(list(t.milestones) == sorted(t.milestones), "milestones must be increasing")
    check(0 <= t.warmup_epochs <= (t.milestones[0] if t.milestones else t.epochs), "train.warmup_epochs must be >= 0 and end by the first milestone")
    check(t.spectral_norm is None or t.spectral_norm > 0, "spectral_norm must be positive or null")
    check(t.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")
    return cfg


def standard_adv(eps: float, method: str = "pgd", steps: int = 10, alpha: float = 2.0) -> dict[str, Any]:
    """Adversarial-training section for defensive strength ``eps`` (0 means plain training)."""
    if eps == 0:
        return {"method": "none", "eps": 0}
    return {"method": method, "eps": eps, "steps": steps if method == "pgd" else 1, "alpha": alpha if method == "pgd" else eps}
