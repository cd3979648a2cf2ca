"""Model registry: ``arlib.models.create("resnet56", num_classes=10, bn=False)``.

Builders register themselves by name with :func:`register`; every model
takes images in [0, 1] and normalises them inside (so attacks work in pixel
space).
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return deco


def registry() -> dict[str, Callable[..., nn.Module]]:
    return dict(_REGISTRY)


def create(name: str, **kwargs) -> nn.Module:
    """Build the model registered as ``name`` with keyword overrides."""
    if name not in _REGISTRY:
        from ..errors import ConfigError

        raise ConfigError(f"unknown model '{name}' (choose from {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


from . import resnet_cifar, wide_resnet  # noqa: E402,F401  (registers the builders)
