"""Tests for arlib.analysis against independent computations (loops, closed forms, hand counts)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from arlib import analysis
from arlib.config import EvalConfig
from arlib.data import Dataset, Split, to_float


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The models here are tiny: one intra-op thread avoids oversubscribing a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _loop_margin(z, y):
    return z[y] - max(z[j] for j in range(len(z)) if j != y)


def _loop_loss(z, y):
    m = max(z)
    return m + math.log(math.fsum(math.exp(v - m) for v in z)) - z[y]


def _random_split(n, size=16, num_classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return Split(images, labels)


def _random_resnet8(seed=0):
    """resnet8 without BN; Fixup zero-inits the classifier and branch ends, so perturb every weight."""
    from arlib.models import create

    torch.manual_seed(seed)
    model = create("resnet8", num_classes=10, bn=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def _linear_binary(d, b):
    """logit_1 - logit_0 = d . x + b on flattened (N, 1, 2, 2) images."""
    lin = nn.Linear(len(d), 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0] * len(d), list(d)]))
        lin.bias.copy_(torch.tensor([0.0, float(b)]))
    return nn.Sequential(nn.Flatten(), lin)


# ----------------------------------------------------------------------------- per-example quantities


def test_margins_hand_example():
    logits = np.array([[2.0, 1.0, 0.5], [0.0, 3.0, 3.5], [1.0, 1.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 2])
    np.testing.assert_allclose(analysis.margins(logits, labels), [1.0, -0.5, 0.0])
    np.testing.assert_allclose(analysis.margins(torch.from_numpy(logits), torch.from_numpy(labels)), [1.0, -0.5, 0.0])


def test_margins_losses_probabilities_against_loop():
    rng = np.random.default_rng(1)
    logits = (rng.normal(size=(60, 7)) * 5).astype(np.float32)
    labels = rng.integers(0, 7, size=60)
    z = logits.astype(np.float64).tolist()
    m_loop = [_loop_margin(z[i], labels[i]) for i in range(60)]
    l_loop = [_loop_loss(z[i], labels[i]) for i in range(60)]
    p_loop = [math.exp(z[i][labels[i]]) / math.fsum(math.exp(v) for v in z[i]) for i in range(60)]
    np.testing.assert_allclose(analysis.margins(logits, labels), m_loop, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(analysis.cross_entropy_per_example(logits, labels), l_loop, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(analysis.true_class_probability(logits, labels), p_loop, rtol=1e-10, atol=1e-15)

    la = analysis.loss_and_accuracy(logits, labels)
    correct = sum(max(range(7), key=lambda j: z[i][j]) == labels[i] for i in range(60))
    assert la["acc"] == pytest.approx(100.0 * correct / 60)
    assert la["loss"] == pytest.approx(math.fsum(l_loop) / 60, rel=1e-12)
    # margin > 0 <=> correct (no ties in continuous random logits)
    assert sum(m > 0 for m in m_loop) == correct


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    np.testing.assert_allclose(analysis.cross_entropy_per_example(logits, np.array([0, 0])), [0.0, 1000.0])


def test_margin_stats_against_formulas():
    m = np.array([-1.0, 0.5, 0.5, 2.0, 7.0])
    s = analysis.margin_stats(m)
    mean = sum(m) / 5
    m2 = sum((v - mean) ** 2 for v in m) / 5
    m3 = sum((v - mean) ** 3 for v in m) / 5
    assert s["mean"] == pytest.approx(mean)
    assert s["std"] == pytest.approx(math.sqrt(m2))
    assert s["skewness"] == pytest.approx(m3 / m2**1.5)  # bias=True: the plain moment ratio
    assert s["median"] == 0.5
    assert s["frac_below_zero"] == pytest.approx(0.2)
    assert s["n"] == 5


def test_gaps_follow_table_definitions():
    # Table 3, ResNet-56, defensive strength 4.
    g = analysis.gaps({"acc": 99.51, "loss": 0.014}, {"acc": 88.86, "loss": 0.683})
    assert g["delta_acc"] == pytest.approx(10.65)
    assert g["delta_loss"] == pytest.approx(0.669)
    assert (g["train_acc"], g["test_acc"], g["train_loss"], g["test_loss"]) == (99.51, 88.86, 0.014, 0.683)


def test_histogram_against_counting():
    v = np.array([0.0, 0.1, 0.24, 0.25, 0.5, 0.99, 1.0, np.nan])
    counts, edges = analysis.histogram(v, bins=4, range=(0.0, 1.0))
    np.testing.assert_allclose(edges, [0.0, 0.25, 0.5, 0.75, 1.0])
    # np.histogram's bins are half-open except the last, which includes 1.0
    assert counts.tolist() == [3, 1, 1, 2]
    assert counts.dtype == np.int64


# ----------------------------------------------------------------------------- B.2 two groups


def test_two_group_std_difference_by_hand_with_tie():
    a = {"l1": 1.0, "l2": 0.5, "l3": 0.7, "l4": 0.2}  # AR 4
    b = {"l1": 0.6, "l2": 0.8, "l3": 0.7, "l4": 0.1}  # AR 16
    r = analysis.two_group_std_difference(a, b)
    assert r["first_layers"] == ["l1", "l4"] and r["first_n"] == 2
    assert r["first_sum"] == pytest.approx(0.4 + 0.1)
    assert r["first_mean"] == pytest.approx(0.25)
    # the tie (l3) belongs to the second group: adds 0 to the sum, 1 to the count
    assert sorted(r["second_layers"]) == ["l2", "l3"] and r["second_n"] == 2
    assert r["second_sum"] == pytest.approx(0.3)
    assert r["second_mean"] == pytest.approx(0.15)
    assert r["n_layers"] == 4
    json.dumps(r)


def test_two_group_std_difference_edge_cases():
    r = analysis.two_group_std_difference({"x": 2.0}, {"x": 1.0})
    assert r["second_n"] == 0 and r["second_sum"] == 0 and math.isnan(r["second_mean"])
    with pytest.raises(ValueError):
        analysis.two_group_std_difference({"x": 1.0}, {"y": 1.0})


# ----------------------------------------------------------------------------- B.5 loss variation


def test_loss_variation_matches_closed_form_on_linear_model():
    """Binary linear model: CE = softplus(-s m), m linear in x, so the max over the
    l-inf ball is at the vertex x - s eps sign(d): increase softplus(-s m + eps |d|_1) - softplus(-s m)."""
    d, b = np.array([1.0, -2.0, 0.5, 1.5]), -0.3
    model = _linear_binary(d, b)
    vals = np.array([[80, 120, 150, 170], [160, 90, 100, 130], [110, 110, 110, 110], [170, 160, 90, 100]], dtype=np.uint8)
    labels = np.array([1, 0, 1, 0])
    split = Split(torch.from_numpy(vals.reshape(4, 1, 2, 2)), torch.from_numpy(labels))
    var = analysis.loss_variation(model, split, to_float, eps255_list=(0, 1, 2, 4), steps=10, batch_size=3)

    x = vals.astype(np.float64) / 255
    m = x @ d + b
    s = np.where(labels == 1, 1.0, -1.0)
    softplus = lambda t: np.logaddexp(0.0, t)  # noqa: E731
    for eps in (1, 2, 4):
        exact = softplus(-s * m + eps / 255 * np.abs(d).sum()) - softplus(-s * m)
        np.testing.assert_allclose(var[eps], exact, rtol=1e-4, atol=1e-6)
        assert var[eps].dtype == np.float32
    assert np.all(var[0] == 0)
    assert model[1].weight.requires_grad  # parameters unfrozen afterwards


def test_loss_variation_on_resnet8():
    model = _random_resnet8()
    model.train()
    split = _random_split(24)
    kw = dict(eps255_list=(0, 1, 2, 4), steps=5, batch_size=10, seed=3)
    var = analysis.loss_variation(model, split, to_float, **kw)
    assert list(var) == [0, 1, 2, 4]
    assert np.array_equal(var[0], np.zeros(24, np.float32))  # exactly zero at eps' = 0
    for eps in (1, 2, 4):
        assert var[eps].shape == (24,) and var[eps].dtype == np.float32
        assert np.all(var[eps] >= 0)
    means = [var[e].mean() for e in (1, 2, 4)]
    assert 0 < means[0] <= means[1] <= means[2]  # grows (weakly, on average) with eps'
    # deterministic given the seed, and the model's mode is restored
    again = analysis.loss_variation(model, split, to_float, **kw)
    for eps in var:
        assert np.array_equal(var[eps], again[eps])
    assert model.training
    assert all(p.requires_grad for p in model.parameters())

    stats = analysis.variation_stats(var)
    assert stats[2]["mean"] == pytest.approx(float(np.mean(var[2].astype(np.float64))))
    assert stats[2]["std"] == pytest.approx(float(np.std(var[2].astype(np.float64))))


def test_loss_variation_is_a_lower_bound_reached_by_some_point():
    """The reported variation never exceeds the true maximum: for the linear model it can't beat the vertex."""
    d, b = np.array([0.5, 0.5, -1.0, 2.0]), 0.1
    model = _linear_binary(d, b)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(60, 200, (16, 1, 2, 2), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 2, (16,), generator=g)
    split = Split(images, labels)
    few = analysis.loss_variation(model, split, to_float, eps255_list=(4,), steps=1, seed=1)[4]
    x = images.reshape(16, 4).double().numpy() / 255
    m = x @ d + b
    s = np.where(labels.numpy() == 1, 1.0, -1.0)
    exact = np.logaddexp(0, -s * m + 4 / 255 * np.abs(d).sum()) - np.logaddexp(0, -s * m)
    assert np.all(few <= exact + 1e-6)
    assert np.all(few >= 0)


# ----------------------------------------------------------------------------- D.2 PGD accuracy


def test_pgd_accuracy_conventions_by_hand():
    """logit_1 - logit_0 = sum(x) - 2 (|d|_1 = 4): a correct example survives radius 8/255
    iff its margin exceeds 4 * 8/255 = 0.1255, and PGD (10 x 2/255 from a random start) reaches the vertex."""
    model = _linear_binary([1.0, 1.0, 1.0, 1.0], -2.0)
    # (pixel value, label): margin of the true class = +-(4 v / 255 - 2)
    cases = [
        (153, 1),  # margin 0.400: robust
        (153, 1),  # robust
        (77, 0),  # margin 0.792: robust
        (133, 1),  # margin 0.086: correct, broken
        (125, 0),  # margin 0.039: correct, broken
        (102, 1),  # margin -0.400: wrong when clean
        (179, 0),  # margin -0.808: wrong when clean
    ]
    images = torch.tensor([v for v, _ in cases], dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    labels = torch.tensor([y for _, y in cases])
    split = Split(images, labels)
    r = analysis.pgd_accuracy(model, split, to_float, eps255=8, alpha255=2, steps=10, seed=0, batch_size=3)
    assert (r["n"], r["n_correct"], r["n_robust"]) == (7, 5, 3)
    assert r["clean_acc"] == pytest.approx(100 * 5 / 7)
    assert r["adv_acc_all"] == pytest.approx(100 * 3 / 7)  # RobustBench: over all examples
    assert r["adv_acc_correct"] == pytest.approx(100 * 3 / 5)  # the paper (App. D.2): over clean-correct ones

    # radius 0: nothing breaks, both conventions reduce to clean accuracy / 100 %
    r0 = analysis.pgd_accuracy(model, split, to_float, eps255=0, alpha255=2, steps=10)
    assert r0["adv_acc_all"] == pytest.approx(100 * 5 / 7) and r0["adv_acc_correct"] == 100.0


# ----------------------------------------------------------------------------- predict and analyse


def test_predict_matches_direct_forward_and_restores_mode():
    model = _random_resnet8(1)
    model.train()
    split = _random_split(13, seed=2)
    logits, labels = analysis.predict(model, split, to_float, batch_size=5)
    assert logits.dtype == np.float32 and logits.shape == (13, 10)
    assert np.array_equal(labels, split.labels.numpy())
    model.eval()
    with torch.no_grad():
        direct = model(to_float(split.images)).numpy()
    np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-5)


def test_analyse_small():
    model = _random_resnet8(2)
    ds = Dataset("cifar10", tuple(str(i) for i in range(10)), _random_split(20, seed=4), _random_split(12, seed=5), "x", "test")
    summary, arrays = analysis.analyse(
        model, ds, input_size=16, seed=0, loss_variation_eps=(1, 2), eval_cfg=EvalConfig(eps=8, alpha=2, steps=2, batch_size=8), loss_variation_steps=2
    )
    json.dumps(summary, allow_nan=False)
    assert arrays["train_margin"].shape == (20,) and arrays["train_margin"].dtype == np.float32
    assert arrays["test_margin"].shape == (12,) and arrays["test_loss"].dtype == np.float32
    assert arrays["test_true_prob"].dtype == np.float16
    assert set(k for k in arrays if k.startswith("loss_variation")) == {"loss_variation_eps1", "loss_variation_eps2"}

    # independent forward pass
    model.eval()
    with torch.no_grad():
        z_tr = model(to_float(ds.train.images)).double().numpy()
        z_te = model(to_float(ds.test.images)).double().numpy()
    acc_tr = 100 * np.mean(z_tr.argmax(1) == ds.train.labels.numpy())
    assert summary["train"]["acc"] == pytest.approx(acc_tr)
    assert summary["gaps"]["delta_acc"] == pytest.approx(summary["train"]["acc"] - summary["test"]["acc"])
    assert summary["gaps"]["delta_loss"] == pytest.approx(summary["test"]["loss"] - summary["train"]["loss"])
    np.testing.assert_allclose(arrays["test_loss"].mean(), summary["test"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(arrays["test_margin"], [_loop_margin(z_te[i].tolist(), int(ds.test.labels[i])) for i in range(12)], rtol=1e-4, atol=1e-4)
    assert summary["loss_variation"]["1"]["mean"] == pytest.approx(float(arrays["loss_variation_eps1"].astype(np.float64).mean()))
    assert summary["pgd"]["n"] == 12 and summary["test_margin"]["n"] == 12

    spec = summary["spectral"]
    n_layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert len(arrays["layer_names"]) == n_layers == len(spec["sv_std_operator"]) == len(spec["sv_std_reshaped"])
    assert np.all(arrays["sv_std_operator"] >= 0) and np.all(arrays["sv_std_reshaped"] >= 0)
    assert spec["log_spectral_complexity"] == pytest.approx(sum(math.log(v) for v in spec["spectral_norms"].values()))
    # the linear layer has the same spectrum in both views
    assert spec["sv_std_operator"]["fc"] == pytest.approx(spec["sv_std_reshaped"]["fc"])


def test_strict_fp32_switches_tf32_off_and_restores():
    before = (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    with analysis.strict_fp32():
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before
    assert torch.backends.cudnn.allow_tf32 in (True, False)  # the legacy getter is readable again


def test_non_fp32_model_is_refused():
    model = _linear_binary([1.0, 1.0, 1.0, 1.0], 0.0).double()
    split = Split(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="fp32"):
        analysis.predict(model, split, to_float)


def test_one_json_cleaner_for_configs_analysis_and_bound():
    from arlib.config import to_jsonable

    x = {1: np.float64(np.nan), "i": np.int64(3), "b": np.bool_(True), "t": torch.tensor(2.5), "l": (8.0, float("-inf")), "s": "x"}
    assert to_jsonable(x) == {"1": None, "i": 3, "b": True, "t": 2.5, "l": [8.0, None], "s": "x"}
    assert type(to_jsonable(x)["l"][0]) is float
    assert to_jsonable({"eps": 8.0, "alpha": 2.5}, integral_floats_as_ints=True) == {"eps": 8, "alpha": 2.5}
    assert type(to_jsonable(8.0, integral_floats_as_ints=True)) is int
