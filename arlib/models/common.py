"""Pieces shared by the models."""

from __future__ import annotations

import torch
import torch.nn as nn


class Normalize(nn.Module):
    """(x - mean) / std per channel, so the model's input is a [0, 1] image."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
