"""The committed results are what the code produces.

Re-trains from scratch into a temporary store, and compares its final metrics
with the committed ones:

* the cheapest committed cell of the low-capacity ``cpu`` grid (plain
  training, eps 0: about a minute on 2 cores);
* a shortened high-capacity cell: the ``cpu-high`` profile's network, data and
  PGD-10 at eps 8, but 6 epochs instead of 150 (a full cell takes ~15 min),
  against its own committed reference in ``results/reference`` (trained by
  ``arlib train --config <that config> --store reference`` from a clean tree).

Tolerance: the grid ran with one thread per worker (OMP_NUM_THREADS=1); with
the same thread count and precision on the same CPU type the run is
bit-for-bit repeatable (see test_train's resume tests). A different thread
count or a CPU without native bf16 (precision "auto" then means fp32)
changes floating-point reduction order, and 40 epochs amplify that, so the
check allows 3 points of accuracy and 15% (relative) of the losses — far
below the differences between eps cells that the book interprets.
"""

from __future__ import annotations

import math

import pytest
import torch

from arlib import profiles
from arlib.config import standard_adv
from arlib.store import Store, default_root
from arlib.device import resolve_precision
from arlib.train import train_run
from conftest import needs_cifar10

ACC_TOL = 3.0
LOSS_RTOL = 0.15


def _low_capacity_eps0():
    return "cpu", profiles.get("cpu").base("cifar10").replace(adv=standard_adv(0))


def _high_capacity_short():
    return "reference", profiles.get("cpu-high").base("cifar10").replace(adv=standard_adv(8), train={"epochs": 6, "milestones": (3, 5)})


@needs_cifar10
@pytest.mark.parametrize("cell", [_low_capacity_eps0, _high_capacity_short], ids=["cpu-eps0", "cpu-high-short-eps8"])
def test_committed_cell_reproduces(tmp_path, cell):
    store_name, cfg = cell()
    committed = Store.for_profile(store_name, default_root()).find(cfg)
    if committed is None or not committed.finished:
        pytest.skip(f"the reference run {cfg.hash} is not committed in results/{store_name} yet")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the grid's workers ran
    try:
        fresh = train_run(cfg, Store(tmp_path), progress=False)
    finally:
        torch.set_num_threads(threads)
    a, b = committed.metrics()["final"], fresh.metrics()["final"]
    same_setup = committed.read_json("provenance.json")["precision"] == resolve_precision(cfg.train.precision, torch.device("cpu"))
    for k in ("train_acc", "test_acc", "pgd_acc_all"):
        assert abs(a[k] - b[k]) <= ACC_TOL, (k, a[k], b[k], same_setup)
    for k in ("train_loss", "test_loss"):
        assert math.isclose(a[k], b[k], rel_tol=LOSS_RTOL, abs_tol=0.01), (k, a[k], b[k], same_setup)
