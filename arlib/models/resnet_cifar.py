"""CIFAR ResNets of depth 6n+2 (He et al. 2016), without batch norm, Fixup-initialised.

Appendix D.3: "ResNet without additional batch normalization ... we rely on
the fixup initialization (Zhang et al. 2019). The scalar layers ... are also
omitted, since it changes spectral norms of layers. Dropout layers are
omitted as well." So: three stages of n basic blocks with 16/32/64 channels
(times ``width``), Fixup's scalar *biases* kept (they do not change any
layer's spectral norm), its scalar *multipliers* dropped; the first conv of
every residual branch He-initialised and scaled by L^(-1/2) (L = number of
blocks, m = 2 layers per branch), the last conv of every branch and the
classifier initialised to zero. Downsampling shortcuts are 1x1 stride-2
convolutions (He et al.'s option B), so every linear map of the network is a
conv or linear layer that the spectral analysis sees.

``bn=True`` gives the conventional batch-norm variant (standard init).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register
from .common import Normalize


class Bias(nn.Module):
    """Fixup's scalar bias."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        # Added in the activation's dtype: under bf16 autocast a float32 (1,)
        # parameter would promote the whole activation to float32, doubling the
        # memory traffic of every elementwise op and forcing a cast back before
        # the next conv (bench_training.py --levers: ResNet-8 1.54x -> 1.98x,
        # ResNet-56 1.67x -> 1.96x the fp32 torchattacks loop).
        # A no-op in float32.
        return x + self.bias.to(x.dtype)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        self.bn = bn
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        if bn:
            self.norm1, self.norm2 = nn.BatchNorm2d(c_out), nn.BatchNorm2d(c_out)
        else:
            self.bias1a, self.bias1b, self.bias2a, self.bias2b = Bias(), Bias(), Bias(), Bias()
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)
            self.shortcut_norm = nn.BatchNorm2d(c_out) if bn else nn.Identity()

    def forward(self, x):
        if self.bn:
            out = F.relu(self.norm1(self.conv1(x)))
            out = self.norm2(self.conv2(out))
            identity = x if self.shortcut is None else self.shortcut_norm(self.shortcut(x))
        else:
            xb = self.bias1a(x)
            out = F.relu(self.bias1b(self.conv1(xb)))
            out = self.bias2b(self.conv2(self.bias2a(out)))
            identity = x if self.shortcut is None else self.shortcut(xb)
        return F.relu(out + identity)


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, bn: bool = False, width: int = 1, mean=None, std=None, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("depth must be 6n+2")
        n = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        self.normalize = Normalize(mean or (0.5,) * in_channels, std or (0.25,) * in_channels)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(widths[0]) if bn else Bias()
        blocks, c = [], widths[0]
        for stage, w in enumerate(widths):
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(BasicBlock(c, w, stride, bn))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.bias_fc = nn.Identity() if bn else Bias()
        self.fc = nn.Linear(c, num_classes)
        self._init(bn, num_blocks=len(blocks))

    def _init(self, bn: bool, num_blocks: int):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if bn:
            return
        # Fixup (Zhang et al. 2019, Sec. 3): scale branch layer i of m by L^(-1/(2m-2)); m = 2.
        scale = num_blocks ** (-0.5)
        for b in self.blocks:
            nn.init.normal_(b.conv1.weight, 0, math.sqrt(2 / (b.conv1.weight[0].numel())) * scale)
            nn.init.zeros_(b.conv2.weight)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def features(self, x):
        out = F.relu(self.norm1(self.conv1(self.normalize(x))))
        out = self.blocks(out)
        # avg_pool2d over the whole map rather than adaptive_avg_pool2d(out, 1):
        # the same mean, but its backward keeps channels_last, whereas
        # adaptive pooling hands an NCHW gradient to the last ReLU's backward
        # (15x slower on mixed layouts) and to the last conv's.
        return torch.flatten(F.avg_pool2d(out, out.shape[-2:]), 1)

    def forward(self, x):
        return self.fc(self.bias_fc(self.features(x)))


def _builder(depth: int):
    def build(num_classes: int = 10, bn: bool = False, width: int = 1, mean=None, std=None) -> CifarResNet:
        return CifarResNet(depth, num_classes, bn, width, mean, std)

    build.__doc__ = f"CIFAR ResNet-{depth} (He et al. 2016), Fixup init without BN unless bn=True."
    return build


for _depth in (8, 14, 20, 32, 44, 56, 110):
    register(f"resnet{_depth}")(_builder(_depth))
