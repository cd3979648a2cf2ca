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

Diverged runs. A run whose final training or test loss is not a finite number
(its weights blew up, e.g. at too large a learning rate without normalisation)
is treated the same way: left out, listed and counted. That rule was added
after the first high-capacity cell diverged (at lr 0.05, epoch 80); it does
not depend on any result other than the loss being NaN or infinite. Since
issue 21 training stops at the first non-finite loss and records the run as
``diverged`` with null final losses (strict JSON has no NaN): a loss that is
present but null counts as not finite.
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


def is_diverged(final: Mapping[str, float]) -> bool:
    """Whether a run's final training or test loss is NaN, infinite or null (strict JSON's NaN): the weights blew up."""
    return any(k in final and (final[k] is None or not math.isfinite(final[k])) for k in ("train_loss", "test_loss"))


def is_degenerate(final: Mapping[str, float], num_classes: int) -> bool:
    """Collapsed or diverged: a run that is left out of means, error bars and figures, and listed."""
    return is_collapsed(final, num_classes) or is_diverged(final)
