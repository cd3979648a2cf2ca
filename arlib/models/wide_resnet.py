"""Wide-ResNet-50-2 for Tiny-ImageNet (Appendix D.2).

torchvision's bottleneck WRN-50-2 ([3, 4, 6, 3] units, 3x3 convs with
64k/128k/256k/512k channels, k = 2) with the 7x7 stride-2 stem replaced by a
3x3 stride-1 padding-1 conv and the max-pool removed (for 56x56 inputs),
batch norm kept, Xavier-uniform conv init, no dropout. 67,236,360 parameters
with 200 classes (66,847,050 with 10).

It takes the registry's common keyword arguments; the ones the paper fixes
for this network are checked, not ignored: batch norm on, the width of
WRN-50-2 itself (``width=1``), projection shortcuts (``shortcut="B"``, as in
every bottleneck ResNet).
"""

from __future__ import annotations

import torch.nn as nn

from . import register
from .common import Normalize


@register("wrn50_2")
def wrn50_2(num_classes: int = 200, bn: bool = True, width: int = 1, shortcut: str = "B", mean=None, std=None) -> nn.Module:
    """Wide-ResNet-50-2 (Zagoruyko & Komodakis 2016) adapted as in Appendix D.2; 67.2M parameters (200 classes)."""
    import torchvision

    from ..errors import ConfigError

    if not bn or width != 1 or shortcut != "B":
        raise ConfigError("wrn50_2 has batch norm, width 1 and projection shortcuts (model.bn true, model.width 1, model.shortcut 'B'; Appendix D.2)")
    net = torchvision.models.wide_resnet50_2(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    return nn.Sequential(Normalize(mean or (0.5,) * 3, std or (0.25,) * 3), net)
