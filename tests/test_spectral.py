"""Tests of arlib.spectral against independent references.

The reference for a conv's spectrum is its explicit operator matrix, built by
applying the conv (``F.pad(mode="circular")`` + ``F.conv2d(stride=s)``) to every
basis vector, decomposed with ``np.linalg.svd``; nothing of the FFT/polyphase
method is reused.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from arlib import spectral

RTOL = 1e-5


def operator_matrix(weight: torch.Tensor, size: tuple[int, int], stride: int) -> np.ndarray:
    """Explicit matrix of the circular-padding conv on ``c_in x H x W`` inputs (float64)."""
    c_in, (h, w), k = weight.shape[1], size, weight.shape[-1]
    p = (k - 1) // 2
    n_in = c_in * h * w
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, c_in, h, w)
    padded = F.pad(basis, (p, p, p, p), mode="circular") if p else basis
    out = F.conv2d(padded, weight.detach().double(), stride=stride)
    assert out.shape[-2:] == (h // stride, w // stride)
    return out.reshape(n_in, -1).T.numpy()


def reference_values(weight: torch.Tensor, size: tuple[int, int], stride: int) -> np.ndarray:
    return np.linalg.svd(operator_matrix(weight, size, stride), compute_uv=False)


def reference_norm(weight: torch.Tensor, size: tuple[int, int], stride: int) -> float:
    return float(reference_values(weight, size, stride)[0])


def assert_spectra_close(ours: torch.Tensor, ref: np.ndarray) -> None:
    ours_np = np.sort(ours.numpy())[::-1]
    ref = np.sort(ref)[::-1]
    assert ours_np.shape == ref.shape
    # relative to the largest value: tiny values have no relative accuracy in either method
    np.testing.assert_allclose(ours_np, ref, rtol=RTOL, atol=RTOL * ref[0])


# ---------------------------------------------------------------- spectra


@pytest.mark.parametrize(
    "c_out, c_in, k, size, stride",
    [
        (3, 2, 3, (5, 5), 1),  # odd n: one self-conjugate frequency
        (2, 3, 3, (6, 6), 1),  # even n: four self-conjugate frequencies
        (3, 3, 1, (7, 7), 1),
        (4, 3, 3, (8, 8), 2),  # strided 3x3, polyphase
        (3, 5, 1, (6, 6), 2),  # 1x1 stride-2 shortcut
        (5, 2, 3, (6, 6), 2),  # c_out > c_in s^2
        (2, 3, 3, (6, 8), 1),  # non-square input
        (3, 2, 3, (8, 6), 2),
        (2, 2, 3, (2, 2), 2),  # kernel wraps around the 1x1 polyphase grid
    ],
)
@pytest.mark.parametrize("method", ["svd", "gram"])
def test_conv_singular_values_match_explicit_matrix(c_out, c_in, k, size, stride, method):
    torch.manual_seed(c_out * 100 + c_in * 10 + k + stride)
    weight = torch.randn(c_out, c_in, k, k)
    ours = spectral.conv_singular_values(weight, size, stride, padding=(k - 1) // 2, method=method)
    assert ours.dtype == torch.float64
    assert torch.all(ours[:-1] >= ours[1:]), "values are sorted descending"
    assert_spectra_close(ours, reference_values(weight, size, stride))


def test_conv_spectral_norm_and_float32():
    torch.manual_seed(1)
    weight = torch.randn(4, 3, 3, 3)
    ref = reference_values(weight, (8, 8), 2)
    assert spectral.conv_spectral_norm(weight, 8, 2) == pytest.approx(ref[0], rel=1e-10)
    values32 = spectral.conv_singular_values(weight, 8, 2, dtype=torch.float32)
    np.testing.assert_allclose(values32.numpy(), ref, rtol=0, atol=1e-5 * ref[0])


def test_non_same_padding_is_rejected():
    with pytest.raises(ValueError, match="same"):
        spectral.conv_singular_values(torch.randn(2, 2, 3, 3), 8, 1, padding=0)
    with pytest.raises(ValueError, match="divisible"):
        spectral.conv_singular_values(torch.randn(2, 2, 3, 3), 7, 2)


def test_linear_and_reshaped_singular_values():
    torch.manual_seed(2)
    lin = torch.randn(5, 7)
    np.testing.assert_allclose(spectral.linear_singular_values(lin).numpy(), np.linalg.svd(lin.double().numpy(), compute_uv=False), rtol=1e-12)
    conv = torch.randn(4, 3, 3, 3)
    ref = np.linalg.svd(conv.double().numpy().reshape(4, 27), compute_uv=False)
    np.testing.assert_allclose(spectral.reshaped_singular_values(conv).numpy(), ref, rtol=1e-12)


# ---------------------------------------------------------------- models


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.short = nn.Conv2d(3, 4, 1, stride=2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv1(x)))
        x = self.conv2(torch.relu(self.down(x))) + self.short(x)
        return self.fc(x.mean(dim=(-2, -1)))


def tiny_net() -> TinyNet:
    torch.manual_seed(3)
    return TinyNet()


def explicit_norms(model: TinyNet) -> dict[str, float]:
    return {
        "conv1": reference_norm(model.conv1.weight, (6, 6), 1),
        "down": reference_norm(model.down.weight, (6, 6), 2),
        "short": reference_norm(model.short.weight, (6, 6), 2),
        "conv2": reference_norm(model.conv2.weight, (3, 3), 1),
        "fc": float(np.linalg.svd(model.fc.weight.double().detach().numpy(), compute_uv=False)[0]),
    }


def test_record_input_sizes():
    model = tiny_net()
    model.train()
    model.bn.eval()  # a mixed mode that must be restored as is
    running_mean = model.bn.running_mean.clone()
    sizes = spectral.record_input_sizes(model, torch.randn(2, 2, 6, 6))
    assert sizes == {"conv1": (6, 6), "down": (6, 6), "short": (6, 6), "conv2": (3, 3)}
    assert model.training and not model.bn.training and model.conv1.training
    assert torch.equal(model.bn.running_mean, running_mean)
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_spectral_complexity_matches_explicit_product():
    model = tiny_net()
    sizes = spectral.record_input_sizes(model, torch.randn(1, 2, 6, 6))
    ref = explicit_norms(model)
    sc = spectral.spectral_complexity(model, sizes)
    assert sc.norms == pytest.approx(ref, rel=RTOL)
    assert sc.value == pytest.approx(math.prod(ref.values()), rel=RTOL)
    assert sc.log_value == pytest.approx(sum(math.log(v) for v in ref.values()), rel=RTOL)
    per_layer = spectral.layer_singular_values(model, sizes)
    assert set(per_layer) == set(ref)
    assert_spectra_close(per_layer["down"], reference_values(model.down.weight, (6, 6), 2))


def test_singular_value_std():
    model = tiny_net()
    sizes = spectral.record_input_sizes(model, torch.randn(1, 2, 6, 6))
    op = spectral.singular_value_std(model, sizes, kind="operator")
    assert op["short"] == pytest.approx(np.std(reference_values(model.short.weight, (6, 6), 2)), rel=RTOL)
    assert op["fc"] == pytest.approx(np.std(np.linalg.svd(model.fc.weight.detach().double().numpy())[1]), rel=RTOL)
    reshaped = spectral.singular_value_std(model, kind="reshaped")
    w = model.conv1.weight.detach().double().numpy().reshape(3, -1)
    assert reshaped["conv1"] == pytest.approx(np.std(np.linalg.svd(w, compute_uv=False)), rel=1e-10)
    with pytest.raises(ValueError):
        spectral.singular_value_std(model, sizes, kind="bogus")


# ---------------------------------------------------------------- clipping


@pytest.mark.parametrize("stride, n", [(1, 6), (2, 8)])
def test_clip_conv_norm_is_measured_and_iteration_tightens(stride, n):
    torch.manual_seed(4)
    conv = nn.Conv2d(4, 4, 3, stride=stride, padding=1)
    original = conv.weight.detach().clone()
    c = 0.5 * reference_norm(original, (n, n), stride)

    once = spectral.clip_conv_(conv, n, c)
    after_once = reference_norm(conv.weight, (n, n), stride)
    assert once.clipped and once.iterations == 1
    assert once.before == pytest.approx(2 * c, rel=RTOL)
    assert once.after == pytest.approx(after_once, rel=RTOL)  # the reported norm is the true one
    assert after_once <= c * (1 + once.overshoot) * (1 + RTOL)  # within the reported slack
    assert once.after < once.before

    conv.weight.data.copy_(original)
    tol = 1e-2
    many = spectral.clip_conv_(conv, n, c, max_iter=200, tol=tol)
    after_many = reference_norm(conv.weight, (n, n), stride)
    assert many.after == pytest.approx(after_many, rel=RTOL)
    assert many.after <= c * (1 + tol) and many.iterations < 200
    assert many.after <= once.after

    conv.weight.data.copy_(original)
    rescaled = spectral.clip_conv_(conv, n, c, rescale=True)
    assert rescaled.rescaled
    assert reference_norm(conv.weight, (n, n), stride) <= c * (1 + 1e-6)


@pytest.mark.parametrize("c_out, c_in, k, n, stride", [(4, 3, 1, 6, 1), (4, 3, 1, 6, 2), (3, 2, 3, 3, 1)])
def test_clip_conv_is_exact_when_crop_loses_nothing(c_out, c_in, k, n, stride):
    """1x1 kernels (also strided) and kernels filling the grid: the crop is exact, so is the clip."""
    torch.manual_seed(5)
    weight = torch.randn(c_out, c_in, k, k, dtype=torch.float64)
    ref = reference_values(weight, (n, n), stride)
    c = float(np.median(ref))
    clipped, result = spectral.clip_conv_weight(weight, n, c, stride)
    assert_spectra_close(spectral.conv_singular_values(clipped, n, stride), np.minimum(ref, c))
    assert result.after == pytest.approx(c, rel=1e-10)


def test_clip_leaves_layers_under_c_unchanged():
    torch.manual_seed(6)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    lin = nn.Linear(4, 3)
    conv_before, lin_before = conv.weight.detach().clone(), lin.weight.detach().clone()
    res_conv = spectral.clip_conv_(conv, 5, 1e3, max_iter=5)
    res_lin = spectral.clip_linear_(lin, 1e3)
    assert not res_conv.clipped and not res_lin.clipped and res_conv.iterations == 0
    assert torch.equal(conv.weight, conv_before) and torch.equal(lin.weight, lin_before)


def test_clip_linear_is_exact():
    torch.manual_seed(7)
    lin = nn.Linear(6, 4)
    s = np.linalg.svd(lin.weight.detach().double().numpy(), compute_uv=False)
    c = float(s[1])
    result = spectral.clip_linear_(lin, c)
    s_after = np.linalg.svd(lin.weight.detach().double().numpy(), compute_uv=False)
    np.testing.assert_allclose(s_after, np.minimum(s, c), rtol=1e-6)
    assert result.after == pytest.approx(c, rel=1e-6)


def test_clip_model_and_hook():
    model = tiny_net()
    sizes = spectral.record_input_sizes(model, torch.randn(1, 2, 6, 6))
    c = 1.0
    under = {n for n, v in explicit_norms(model).items() if v <= c}
    assert under, "the tiny net should have a layer already under c"
    kept = {n: model.get_submodule(n).weight.detach().clone() for n in under}

    hook = spectral.spectral_clip_hook(c, sizes, max_iter=3)
    record = hook(model, 0)
    json.dumps(record, allow_nan=False)
    assert all(isinstance(v, float) for v in record.values())
    for name, weight in kept.items():
        assert torch.equal(model.get_submodule(name).weight, weight)

    after = explicit_norms(model)
    assert max(after.values()) / c - 1 == pytest.approx(record["spectral_worst_overshoot"], abs=RTOL)
    assert record["spectral_max_norm_after"] == pytest.approx(max(after.values()), rel=RTOL)
    assert record["spectral_log_sc_after"] == pytest.approx(sum(math.log(v) for v in after.values()), rel=RTOL)

    report = spectral.clip_model_(model, c, sizes, max_iter=3)
    assert set(report["layers"]) == set(after)
    json.dumps(report)


def test_hook_drops_non_finite_values():
    model = tiny_net()
    sizes = spectral.record_input_sizes(model, torch.randn(1, 2, 6, 6))
    nn.init.zeros_(model.fc.weight)  # a zero layer: log spectral complexity is -inf
    record = spectral.spectral_clip_hook(1.0, sizes)(model, 0)
    json.dumps(record, allow_nan=False)
    assert "spectral_log_sc_after" not in record and "spectral_worst_overshoot" in record
    assert spectral.spectral_complexity(model, sizes).value == 0.0


def test_clip_just_above_c_still_runs_one_round():
    torch.manual_seed(8)
    weight = torch.randn(3, 3, 3, 3, dtype=torch.float64)
    norm = spectral.conv_spectral_norm(weight, 6)
    _, result = spectral.clip_conv_weight(weight, 6, norm / (1 + 1e-4), tol=1e-3, max_iter=5)
    assert result.clipped and result.iterations == 1
    with pytest.raises(ValueError):
        spectral.clip_conv_weight(weight, 6, -1.0)
