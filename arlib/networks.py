"""A network for a run: built from its config, or loaded with its trained weights from the results store."""

from __future__ import annotations

import torch
import torch.nn as nn

from . import data
from .config import RunConfig
from .device import default_device
from .models import create
from .store import Run, load_state_dict


def build_model(cfg: RunConfig, num_classes: int, device: torch.device) -> nn.Module:
    mean, std = data.STATS[cfg.data.dataset]
    model = create(cfg.model.name, num_classes=num_classes, bn=cfg.model.bn, width=cfg.model.width, shortcut=cfg.model.shortcut, mean=mean, std=std).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def load_model(run: Run, device: torch.device | None = None, num_classes: int | None = None) -> nn.Module:
    """The trained fp32 model of a finished run, in eval mode."""
    device = device or default_device()
    cfg = run.config
    state = load_state_dict(run.file("model.pt"), map_location=device)  # weights only; DamagedRunError naming the file
    if num_classes is None:
        # The classifier's rows: every registered model ends in a Linear named ``fc``.
        num_classes = next(v.shape[0] for k, v in reversed(state.items()) if k.endswith("fc.weight"))
    model = build_model(cfg, num_classes, device)
    model.load_state_dict(state)
    return model.eval()
