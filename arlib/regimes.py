"""Capacity regimes of the CPU reproduction and the rule for degenerate runs.

The paper's central CIFAR-10 observation (B.3: the error gap rises with eps
while the loss gap falls) is made on networks that fit their adversarially
trained training sets (Table 3: clean training accuracy 99.5 / 98.5 / 96.0 %
at eps 4 / 8 / 16). The paper explains its CIFAR-100 results by the opposite,
a network that cannot fit. The CPU reproduction therefore has two profiles:

* ``cpu`` — the **low-capacity** regime: small networks that do not fit their
  adversarial training sets at eps >= 4;
* ``cpu-high`` — the **high-capacity** regime: sized (probes in
  ``results/probes``) so that the networks fit them.

Collapsed runs. A run is *collapsed* when its network ended as a (nearly)
constant classifier: clean training accuracy within 2 points of chance
(100 / K %) **and** training loss within 2 % of ln K, the loss of the uniform
prediction. Such a run says nothing about margins, gaps or spectra. The rule
was fixed before the high-capacity results were looked at; a collapsed run is
excluded from means and error bars, listed where it would have appeared and
counted in the claims ledger ("3 seeds, 1 collapsed").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Regime:
    profile: str  # the arlib profile whose grid makes up the regime
    name: str  # how the book calls it
    description: str


REGIMES = (
    Regime("cpu", "low capacity", "small networks that do not fit their adversarial training sets (the paper's CIFAR-100 explanation)"),
    Regime("cpu-high", "high capacity", "networks that fit their adversarial training sets (the paper's CIFAR-10 regime)"),
)

CHANCE_MARGIN_POINTS = 2.0  # accuracy within this many points of 100 / K
LOSS_MARGIN_FRACTION = 0.02  # loss within this fraction of ln K


def is_collapsed(final: Mapping[str, float], num_classes: int) -> bool:
    """Whether a run's final metrics (``train_acc`` in %, ``train_loss``) are those of a constant classifier."""
    chance = 100.0 / num_classes
    uniform_loss = math.log(num_classes)
    acc, loss = final.get("train_acc"), final.get("train_loss")
    if acc is None or loss is None or not math.isfinite(acc) or not math.isfinite(loss):
        return False
    return abs(acc - chance) <= CHANCE_MARGIN_POINTS and abs(loss - uniform_loss) <= LOSS_MARGIN_FRACTION * uniform_loss
