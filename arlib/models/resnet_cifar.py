"""CIFAR ResNets of depth 6n+2 (He et al. 2016), without batch norm, Fixup-initialised.

Appendix D.3: "ResNet without additional batch normalization ... we rely on
the fixup initialization (Zhang et al. 2019). The scalar layers ... are also
omitted, since it changes spectral norms of layers. Dropout layers are
omitted as well." So: three stages of n basic blocks with 16/32/64 channels
(times ``width``), Fixup's scalar *biases* kept (they do not change any
layer's spectral norm), its scalar *multipliers* dropped; the first conv of
every residual branch He-initialised and scaled by L^(-1/2) (L = number of
blocks, m = 2 layers per branch), the last conv of every branch and the
classifier initialised to zero.

Initialisation follows the Fixup authors' CIFAR code
(hongyi-zhang/Fixup, ``cifar/models/fixup_resnet_cifar.py``): the first conv
of every branch is drawn from N(0, 2 / (c_out k^2)) (He init with *fan_out*)
times L^(-1/2); the stem conv keeps PyTorch's default init; the last conv of
every branch and the classifier start at zero.

Shortcuts (``shortcut=``):

* ``"A"`` (default, the paper's): parameter-free. Where a stage halves the
  resolution and doubles the channels, the shortcut keeps every second pixel
  (stride-2 subsampling) and appends zero channels (He et al. 2016's option
  A, as in the Fixup code). ResNet-56 then has 55 convolutions and one linear
  layer, the layer count the paper's B.2 numbers imply (4.7465 / 0.1158 = 41
  first-group layers plus 0.4372 / 0.0312 = 14 second-group layers).
* ``"B"``: 1x1 stride-2 projection convolutions (option B). They add one conv
  per stage transition (57 in ResNet-56) whose smallest singular value is 0.

Parameter counts with 10 classes (shortcut A / B; convs A / B): ResNet-8
74,824 / 77,384 (7 / 9), ResNet-20 268,384 / 270,944 (19 / 21), ResNet-56
849,064 / 851,624 (55 / 57), ResNet-110 1,720,084 / 1,722,644 (109 / 111); ``width=w`` multiplies the channels by w
(parameters about w^2).

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


SHORTCUTS = ("A", "B")


class SubsampleZeroPad(nn.Module):
    """Option-A shortcut: every ``stride``-th pixel, then zero channels up to ``c_out``.

    Parameter-free, so no layer of the spectral analysis. The zero channels
    come after the kept ones, as in the Fixup code's ``torch.cat((x, 0))``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_out < c_in:
            raise ValueError("an option-A shortcut cannot drop channels")
        self.stride, self.extra = stride, c_out - c_in

    def forward(self, x):
        # Subsampling as a 1x1 average pool (the Fixup code's AvgPool2d(1, stride)), not
        # x[..., ::s, ::s]: the same values, but the slice's backward hands an NCHW gradient
        # to the channels_last network (mixed-layout ReLU backward and adds), which made
        # the whole ResNet-8 PGD step 2x slower (40 vs 19 ms fwd+bwd at batch 32, bf16).
        x = F.avg_pool2d(x, 1, self.stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zero channels after the kept ones


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool, shortcut: str = "A"):
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
            if shortcut == "A":
                self.shortcut = SubsampleZeroPad(c_in, c_out, stride)
                self.shortcut_norm = nn.Identity()
            else:
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
    def __init__(self, depth: int, num_classes: int = 10, bn: bool = False, width: int = 1, shortcut: str = "A", mean=None, std=None, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("depth must be 6n+2")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        n = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        self.normalize = Normalize(mean or (0.5,) * in_channels, std or (0.25,) * in_channels)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(widths[0]) if bn else Bias()
        blocks, c = [], widths[0]
        for stage, w in enumerate(widths):
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(BasicBlock(c, w, stride, bn, shortcut))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.bias_fc = nn.Identity() if bn else Bias()
        self.fc = nn.Linear(c, num_classes)
        self._init(bn, num_blocks=len(blocks))

    def _init(self, bn: bool, num_blocks: int):
        if bn:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            return
        # Fixup (Zhang et al. 2019, Sec. 3): scale branch layer i of m by L^(-1/(2m-2)); m = 2.
        # He init with fan_out = c_out * k * k, as the Fixup authors' CIFAR code does.
        scale = num_blocks ** (-0.5)
        for b in self.blocks:
            w = b.conv1.weight
            nn.init.normal_(w, 0, math.sqrt(2 / (w.shape[0] * w.shape[2] * w.shape[3])) * scale)
            nn.init.zeros_(b.conv2.weight)
            # An option-B projection is a plain conv outside the branch: He init (fan_out).
            if isinstance(b.shortcut, nn.Conv2d):
                nn.init.kaiming_normal_(b.shortcut.weight, mode="fan_out", nonlinearity="relu")
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
    def build(num_classes: int = 10, bn: bool = False, width: int = 1, shortcut: str = "A", mean=None, std=None) -> CifarResNet:
        return CifarResNet(depth, num_classes, bn, width, shortcut, mean, std)

    build.__doc__ = (
        f"CIFAR ResNet-{depth} (He et al. 2016; {depth - 2} convs in {(depth - 2) // 2} blocks), "
        "Fixup init without BN unless bn=True; option-A shortcuts unless shortcut='B'. "
        "Parameter counts: see the module docstring."
    )
    return build


for _depth in (8, 14, 20, 32, 44, 56, 110):
    register(f"resnet{_depth}")(_builder(_depth))
