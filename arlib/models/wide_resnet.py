"""Wide-ResNet-50-2 for Tiny-ImageNet (Appendix D.2).

torchvision's bottleneck WRN-50-2 ([3, 4, 6, 3] units, 3x3 convs with
64k/128k/256k/512k channels, k = 2) with the 7x7 stride-2 stem replaced by a
3x3 stride-1 padding-1 conv and the max-pool removed (for 56x56 inputs),
batch norm kept, Xavier-uniform conv init, no dropout. About 66.8M parameters
with 200 classes.
"""

from __future__ import annotations

import torch.nn as nn

from . import register
from .common import Normalize


@register("wrn50_2")
def wrn50_2(num_classes: int = 200, bn: bool = True, width: int = 1, mean=None, std=None) -> nn.Module:
    """Wide-ResNet-50-2 (Zagoruyko & Komodakis 2016) adapted as in Appendix D.2."""
    import torchvision

    if not bn or width != 1:
        raise ValueError("wrn50_2 keeps batch norm and fixed width (Appendix D.2)")
    net = torchvision.models.wide_resnet50_2(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    return nn.Sequential(Normalize(mean or (0.5,) * 3, std or (0.25,) * 3), net)
