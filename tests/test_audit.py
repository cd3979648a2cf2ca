"""The attack audit (arlib.audit) and APGD (arlib.attacks.apgd), against closed forms and committed runs.

A linear classifier's worst l-inf perturbation is known exactly: class ``j`` overtakes ``y`` within
radius ``eps`` iff ``z_y - z_j <= eps * ||w_y - w_j||_1`` (away from the [0, 1] box). That gives an
independent answer for which images any attack may break (never the provably robust ones) and
which a sound attack must break (those far inside the non-robust set).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn

from arlib import audit, data
from arlib.attacks import apgd, pgd
from arlib.store import Run, Store

pytest.importorskip("torchattacks")


def linear_problem(n=200, k=10, seed=0):
    """A linear classifier on 3x4x4 images (torchattacks wants image-shaped input)."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, k))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(k, 48, generator=g))
        model[1].bias.zero_()
    x = 0.3 + 0.4 * torch.rand(n, 3, 4, 4, generator=g)  # far enough from 0 and 1 that the box never binds
    y = model(x).argmax(1)  # every image correct when clean
    return model, x, y


def exact_robust_margin(model, x, y, eps):
    """min over j != y of z_y - z_j - eps ||w_y - w_j||_1: > 0 robust, <= 0 not (closed form)."""
    with torch.no_grad():
        z, w = model(x), model[1].weight
        zy = z.gather(1, y[:, None])
        l1 = (w[y][:, None, :] - w[None, :, :]).abs().sum(-1)  # (n, k)
        m = zy - z - eps * l1
        m[torch.arange(len(y)), y] = float("inf")
    return m.min(1).values


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_breaks_exactly_what_the_closed_form_allows(loss):
    model, x, y = linear_problem()
    eps = 0.02
    margin = exact_robust_margin(model, x, y, eps)
    x_adv = apgd(model, x, y, eps, steps=100, loss=loss)
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        still = model(x_adv).argmax(1) == y
    scale = margin.abs().median()
    assert still[margin > 0].all(), "an attack broke a provably robust image: the projection is wrong"
    clearly_broken = margin < -0.05 * scale
    assert clearly_broken.sum() > 10  # the test has teeth
    assert not still[clearly_broken].any(), f"{int(still[clearly_broken].sum())} images APGD-{loss} should have broken survived"


def test_apgd_restores_mode_and_parameters():
    model, x, y = linear_problem(n=20)
    model.train()
    model[1].bias.requires_grad_(False)
    apgd(model, x, y, 0.02, steps=5, loss="ce", mode="eval")
    assert model.training and model[1].weight.requires_grad and not model[1].bias.requires_grad
    with pytest.raises(ValueError):
        apgd(model, x, y, 0.02, loss="cw")


def test_apgd_is_at_least_as_strong_as_pgd10_on_a_linear_model():
    model, x, y = linear_problem(seed=1)
    eps = 0.02
    x_pgd = pgd(model, x, y, eps, eps / 4, 10, generator=torch.Generator().manual_seed(0))
    x_ap = apgd(model, x, y, eps, steps=100, loss="dlr")
    with torch.no_grad():
        assert int((model(x_ap).argmax(1) == y).sum()) <= int((model(x_pgd).argmax(1) == y).sum())


def test_the_audited_images_are_a_subset_of_the_ones_pgd10_attacked():
    labels = np.repeat(np.arange(10), 1000)
    small = data.balanced_indices(labels, 50, data.ATTACK_SUBSET_SEED)
    large = data.balanced_indices(labels, 200, data.ATTACK_SUBSET_SEED)
    assert len(small) == 500 and set(small) <= set(large)


@pytest.fixture(scope="module")
def committed_pgd_run(tmp_path_factory):
    runs = audit.pgd_cells("cpu", Store("results/cpu"))
    if not runs:
        pytest.skip("no committed cpu PGD run")
    dest = tmp_path_factory.mktemp("store") / "runs" / runs[0].hash
    shutil.copytree(runs[0].path, dest, ignore=shutil.ignore_patterns("attack_audit.*", "checksums.json"))
    run = Run(dest)
    run.seal()
    return run


@pytest.mark.slow  # loads CIFAR-10 and a committed network (minutes on a loaded 2-core machine); .ci/run runs it
def test_auditing_a_committed_run_agrees_with_its_final_evaluation(committed_pgd_run):
    run = committed_pgd_run
    cfg = audit.AuditConfig(per_class=2, steps=20)
    summary = audit.audit_run(run, cfg)
    assert summary["n"] == 20 and summary["clean_disagreements"] == 0  # same model, same images: same clean predictions
    per = audit.audit_arrays(run)
    assert not (per["worst_robust"] & ~per["pgd10_robust"]).any() and not (per["worst_robust"] & ~per["apgd_ce_robust"]).any()
    assert not (per["apgd_ce_robust"] & ~per["clean_correct"]).any()
    acc = summary["accuracy"]
    assert acc["worst"] <= min(acc["pgd10"], acc["apgd_ce"], acc["apgd_ce_then_dlr"]) <= acc["clean"]
    assert audit.audited(run, cfg) and not audit.audited(run, audit.AuditConfig())
    assert run.problems() == []  # the audit files are covered by checksums.json
    sums = run.read_json("checksums.json")["sha256"]
    assert {audit.AUDIT_JSON, audit.AUDIT_NPZ} <= set(sums)


def test_the_audit_command_says_what_is_wrong_in_one_line(tmp_path):
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, "-m", "arlib.cli", "audit", "--profile", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "arlib: error: unknown profile 'nope' (choose from smoke, cpu, cpu-high, paper)"
    cmd = [sys.executable, "-m", "arlib.cli", "audit", "--profile", "smoke", "--results", str(tmp_path), "--quiet"]
    empty = subprocess.run(cmd, capture_output=True, text=True)
    assert empty.returncode == 0 and "audited 0 runs of smoke" in empty.stdout
