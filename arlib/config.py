"""Typed run configuration: one schema for the CLI, the grid and papermill.

A run is fully described by a :class:`RunConfig`. Its hash (``config_hash``)
names the run's directory in the results store, so two processes, machines or
sessions that ask for the same run share one result. Every field that changes
what is computed is part of the hash; where the data lives on disk is not.

Perturbation sizes (``eps``, ``alpha``) are on the paper's 0-255 pixel scale
(Appendix B.1: "l-inf norm is rescaled to the range of 0-255"); the attacks
themselves work in [0, 1] and receive :func:`from_255` of them (``eps / 255``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

DATASETS = ("cifar10", "cifar100", "tinyimagenet", "imagefolder")
ADV_METHODS = ("none", "pgd", "fgsm")
PRECISIONS = ("fp32", "bf16", "auto")
ATTACK_MODES = ("train", "eval")
SHORTCUTS = ("A", "B")
SEED_MAX = 2**32 - 1  # seeds are 32-bit: every generator (torch, NumPy, Python) takes them
# Images per class in each split of the fixed datasets (imagefolder: whatever the folder holds).
PER_CLASS = {"cifar10": (5000, 1000), "cifar100": (500, 100), "tinyimagenet": (500, 50)}


def from_255(size: float) -> float:
    """A perturbation size on the paper's 0-255 pixel scale (``eps``, ``alpha``) in the [0, 1] units the attacks work in."""
    return size / 255


def bounded(default: Any, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, choices: tuple | None = None):
    """A field whose allowed values it carries itself: ``lo <= v <= hi`` (``lo < v`` with ``lo_open``), or ``v in choices``.

    :func:`validate` reads these bounds together with the field's type annotation, so the
    schema below is the only place where a value's range is written down.
    """
    return field(default=default, metadata={"lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices})


@dataclass(frozen=True)
class DataConfig:
    dataset: str = bounded("cifar10", choices=DATASETS)  # cifar10 | cifar100 | tinyimagenet | imagefolder
    train_per_class: int | None = bounded(None, lo=1)  # class-balanced training subset; None = all
    test_per_class: int | None = bounded(None, lo=1)  # class-balanced test subset; None = all
    # Seed of the subset draws; None: the training seed draws them, so the spread over seeds
    # includes which images were drawn (the cpu profiles since issue 19), not only the initialisation.
    subset_seed: int | None = bounded(0, lo=0, hi=SEED_MAX)
    augment: bool = True  # Appendix D.1 augmentation during training


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet56"  # a name from arlib.models.registry
    bn: bool = False  # batch norm (the paper's CIFAR nets have none: Fixup instead)
    width: int = bounded(1, lo=1, hi=64)  # channel multiplier of the CIFAR ResNets (16/32/64 x width)
    shortcut: str = bounded("A", choices=SHORTCUTS)  # A: parameter-free subsample + zero channels (the paper's); B: 1x1 projection convs


@dataclass(frozen=True)
class AdvConfig:
    method: str = bounded("pgd", choices=ADV_METHODS)  # none | pgd | fgsm: how training examples are perturbed
    eps: float = bounded(8.0, lo=0, hi=255)  # defensive strength, 0-255 scale
    alpha: float = bounded(2.0, lo=0, hi=255)  # PGD step size, 0-255 scale (Appendix B.1: 2/255)
    steps: int = bounded(10, lo=1)  # PGD steps (Appendix B.1: 10)
    attack_mode: str = bounded("train", choices=ATTACK_MODES)  # model mode while crafting training examples


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = bounded(200, lo=1)
    batch_size: int = bounded(256, lo=1)
    lr: float = bounded(0.05, lo=0, lo_open=True)
    milestones: tuple[int, ...] = bounded((100, 150), lo=1)  # epochs at which lr is divided by 10
    warmup_epochs: int = bounded(0, lo=0)  # linear lr warm-up over the first epochs (0: none, as in Appendix D)
    lr_gamma: float = bounded(0.1, lo=0, hi=1, lo_open=True)
    momentum: float = bounded(0.9, lo=0, hi=1)
    # The appendix does not state a weight decay; 1e-4 is He et al.'s and Fixup's CIFAR value.
    weight_decay: float = bounded(1e-4, lo=0)
    spectral_norm: float | None = bounded(None, lo=0, lo_open=True)  # clip every layer's spectral norm to this after each epoch
    precision: str = bounded("auto", choices=PRECISIONS)  # fp32 | bf16 | auto (bf16 autocast where the hardware has it)
    channels_last: bool = True
    seed: int = bounded(0, lo=0, hi=SEED_MAX)


@dataclass(frozen=True)
class EvalConfig:
    # Appendix D.2: "10 iterations with steps of size 2 and maximum of 8".
    eps: float = bounded(8.0, lo=0, hi=255)
    alpha: float = bounded(2.0, lo=0, hi=255)
    steps: int = bounded(10, lo=0)
    batch_size: int = bounded(500, lo=1)
    # Test images per class attacked by the final PGD (a fixed class-balanced draw, the same
    # for every run, so per-example outcomes pair across runs); None: the whole test split.
    attack_per_class: int | None = bounded(None, lo=1)
    # Test images per class of the per-epoch test curve (a fixed draw); None: the whole test split.
    monitor_per_class: int | None = bounded(None, lo=1)


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


# Fields added after runs were committed: left out of the hash while at their default (None), so
# every run made before them keeps its name and every run made with them gets a new one.
HASH_OMITTED_AT_DEFAULT = (("eval", "attack_per_class"), ("eval", "monitor_per_class"))


def config_hash(cfg: RunConfig) -> str:
    """SHA-256 of the canonical JSON of the config, first 16 hex digits."""
    d = cfg.to_dict()
    for section, name in HASH_OMITTED_AT_DEFAULT:
        if d[section].get(name) is None:
            d[section].pop(name, None)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
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
        parts[name] = klass(**sub)
    return validate(RunConfig(**parts))


@functools.cache
def _hints(klass: type) -> dict[str, Any]:
    return typing.get_type_hints(klass)


def _describe(tp: Any, meta: Any) -> str:
    """What a field allows, in words: ``an integer >= 1``, ``one of 'A', 'B'``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = next(a for a in typing.get_args(tp) if a is not type(None))
        return "null or " + _describe(inner, meta)
    if typing.get_origin(tp) is tuple:
        return "a list of " + _describe(typing.get_args(tp)[0], meta).replace("an integer", "integers").replace("a number", "numbers")
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    noun = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[tp]
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return f"{noun} in {'(' if meta.get('lo_open') else '['}{lo}, {hi}]"
    if lo is not None:
        return f"{noun} {'>' if meta.get('lo_open') else '>='} {lo}"
    return noun


def _coerce(value: Any, tp: Any, meta: Any) -> Any:
    """``value`` as type ``tp`` within the field's bounds, or raise ValueError.

    Integral floats become ints (``3.0`` from a JSON file is 3 epochs), NumPy scalars
    Python numbers and lists tuples; nothing else is converted: ``"3"`` is not a number here.
    """
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value is None:
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError
        return tuple(_coerce(v, typing.get_args(tp)[0], meta) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError
        return value
    if tp is str:
        if not isinstance(value, str) or (meta.get("choices") and value not in meta["choices"]):
            raise ValueError
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError
    value = int(value) if isinstance(value, numbers.Integral) else float(value)  # NumPy scalars too
    if tp is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            value = int(value)
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        raise ValueError
    if hi is not None and value > hi:
        raise ValueError
    return value


def validate(cfg: RunConfig) -> RunConfig:
    """``cfg`` with every field checked against the schema; ConfigError (one line naming the field) otherwise.

    Each field is checked against its annotation and the bounds it carries (:func:`bounded`);
    then the rules that tie fields together. Returns the config with integral floats as
    ints and lists as tuples (the hash is the same either way).
    """
    from .models import registry  # local import: models import torch

    sections = {}
    for name, klass in SECTIONS.items():
        section = getattr(cfg, name)
        values = {}
        for f in dataclasses.fields(klass):
            value, tp = getattr(section, f.name), _hints(klass)[f.name]
            try:
                values[f.name] = _coerce(value, tp, f.metadata)
            except (ValueError, TypeError):
                raise ConfigError(f"{name}.{f.name} must be {_describe(tp, f.metadata)}, got {json.dumps(value, default=repr)}") from None
        sections[name] = klass(**values)
    cfg = RunConfig(**sections)

    def check(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

    d, a, t, e = cfg.data, cfg.adv, cfg.train, cfg.eval
    check(cfg.model.name in registry(), f"unknown model '{cfg.model.name}' (choose from {', '.join(sorted(registry()))})")
    for split, n, i in (("train", d.train_per_class, 0), ("test", d.test_per_class, 1)):
        have = PER_CLASS.get(d.dataset, (None, None))[i]
        check(n is None or have is None or n <= have, f"data.{split}_per_class {n} is more than {d.dataset} has per class in its {split} split ({have})")
    test_have = PER_CLASS.get(d.dataset, (None, None))[1]
    for name in ("attack_per_class", "monitor_per_class"):
        n = getattr(e, name)
        cap = d.test_per_class or test_have
        check(n is None or cap is None or n <= cap, f"eval.{name} {n} is more than the test split has per class ({cap})")
    check(a.method != "none" or a.eps == 0, "adv.method 'none' requires adv.eps 0")
    check(a.method == "none" or a.eps > 0, "adversarial training needs adv.eps > 0 (use method 'none' for eps 0)")
    check(a.method != "pgd" or a.eps == 0 or a.alpha > 0, f"adv.alpha must be > 0 for PGD at eps {a.eps:g} (a step of 0 never moves from the random start)")
    check(e.steps == 0 or e.alpha > 0, "eval.alpha must be > 0 when eval.steps > 0 (a step of 0 never moves from the random start)")
    check(
        a.method != "pgd" or a.alpha <= a.eps, f"adv.alpha {a.alpha:g} is larger than adv.eps {a.eps:g}: a PGD step may not exceed the eps-ball (lower alpha)"
    )
    check(e.steps == 0 or e.alpha <= e.eps, f"eval.alpha {e.alpha:g} is larger than eval.eps {e.eps:g}: a PGD step may not exceed the eps-ball (lower alpha)")
    check(list(t.milestones) == sorted(set(t.milestones)), f"train.milestones must be strictly increasing, got {list(t.milestones)}")
    check(t.warmup_epochs <= (t.milestones[0] if t.milestones else t.epochs), "train.warmup_epochs must end by the first milestone")
    return cfg


def standard_adv(eps: float, method: str = "pgd", steps: int = 10, alpha: float = 2.0) -> dict[str, Any]:
    """Adversarial-training section for defensive strength ``eps`` (0 means plain training)."""
    if eps == 0:
        return {"method": "none", "eps": 0}
    return {"method": method, "eps": eps, "steps": steps if method == "pgd" else 1, "alpha": alpha if method == "pgd" else eps}
