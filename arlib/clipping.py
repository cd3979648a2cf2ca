"""Spectral-norm clipping (Appendix B.4.2 / D.3): every convolution and linear layer clipped to a target
spectral norm ``c`` after every epoch, "following Sedghi et al. (2018)", on the circular-padding
operators of :mod:`arlib.singular_values` (whose docstring gives their math): :func:`clip_model_`
and the training hook :func:`spectral_clip_hook`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from .singular_values import (
    Size2,
    _check_conv_geometry,
    _conv_input_size,
    _frequency_matrices,
    _layers,
    _pair,
    _polyphase,
    _representative_matrices,
    _unfold,
    _unpolyphase,
    linear_singular_values,
)

__all__ = [
    "ClipResult",
    "clip_conv_",
    "clip_conv_weight",
    "clip_linear_",
    "clip_linear_weight",
    "clip_model_",
    "spectral_clip_hook",
]


# --------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipResult:
    """Outcome of clipping one layer to spectral norm ``c``.

    ``before``/``after``: measured operator norms of the weight as stored
    (after the cast back to the parameter dtype).  ``iterations``: number of
    clip+crop rounds applied (0 when the layer was already ``<= c`` and left
    untouched).  ``rescaled``: a final uniform rescale was applied.
    ``history``: measured norm before the first round and after each round
    (and after the rescale).  ``overshoot = after / c - 1`` (negative when the
    layer ends below ``c``).
    """

    c: float
    before: float
    after: float
    iterations: int
    clipped: bool
    rescaled: bool = False
    history: list[float] = field(default_factory=list)

    @property
    def overshoot(self) -> float:
        return self.after / self.c - 1.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overshoot": self.overshoot}


def _clip_svd(matrices: Tensor, u: Tensor, s: Tensor, vh: Tensor, c: float) -> Tensor:
    """``U diag(min(s, c)) V^H`` given the SVD of ``matrices`` (batched).

    This is the Frobenius-norm projection onto the spectral-norm ball.  Only the
    excess ``max(s - c, 0)`` is subtracted, so components already below ``c``
    are kept exactly up to rounding.
    """
    excess = (s - c).clamp(min=0).to(matrices.dtype)
    return matrices - (u * excess[..., None, :]) @ vh


def _check_target(c: float) -> None:
    if not c > 0:
        raise ValueError(f"target spectral norm must be positive, got {c}")


def clip_conv_weight(
    weight: Tensor,
    input_size: int | Size2,
    c: float,
    stride: int | Size2 = 1,
    max_iter: int = 1,
    tol: float = 1e-3,
    rescale: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, ClipResult]:
    """Clip a conv kernel to operator norm ``c`` (Sedghi et al. 2018, Sec. 4); pure function.

    One round: rfft2 of the (polyphase) kernel on the ``n / s`` grid; at every
    frequency replace the matrix by ``U diag(min(s, c)) V^H``; inverse FFT;
    project back onto the kernel support (crop to ``k x k``; for kernels
    larger than the grid, the minimum-norm preimage of the wrap-around).
    ``max_iter=1`` is Sedghi et al.'s method.

    Strided convs are clipped in the polyphase representation, where the
    operator *is* a stride-1 conv with ``c_in s1 s2`` channels on the ``n / s``
    grid, so the per-frequency clip acts on the true operator; the crop also
    removes the polyphase taps that fall outside the original ``k x k`` kernel.

    Both steps are orthogonal projections in the operator's Frobenius norm
    (per-frequency clipping onto the convex norm ball, crop onto the linear
    subspace of realisable kernels), but their composition need not land in
    the ball: the crop can push the norm back above ``c``.  With
    ``max_iter > 1`` rounds repeat (alternating projections, which converge to
    a point of the intersection, slowly) until the measured norm is
    ``<= c (1 + tol)``.  ``rescale=True`` finally multiplies a kernel still
    above ``c`` by ``c / norm``, which makes the norm ``c`` up to rounding.

    A kernel whose norm is already ``<= c`` is returned unchanged (the same
    tensor).  The result has ``weight``'s dtype and device; every reported
    norm is measured on it, after the cast to that dtype.
    """
    _check_target(c)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    size, step = _pair(input_size), _pair(stride)
    kernel_size = _pair(tuple(weight.shape[-2:]))
    grid = _check_conv_geometry(kernel_size, size, step, None)

    def measure(w: Tensor) -> float:
        return float(torch.linalg.svdvals(_representative_matrices(w, size, step, dtype)[0]).max())

    before = measure(weight)
    if before <= c:
        return weight, ClipResult(c, before, before, 0, False, False, [before])
    support = _polyphase(torch.ones_like(weight, dtype=dtype), step)
    current, history, rounds = weight.detach(), [before], 0
    while rounds < max_iter and (rounds == 0 or history[-1] > c * (1 + tol)):
        matrices = _frequency_matrices(current, size, step, dtype)
        clipped = _clip_svd(matrices, *torch.linalg.svd(matrices, full_matrices=False), c)
        torus = torch.fft.irfft2(clipped.permute(2, 3, 0, 1), s=grid, dim=(-2, -1))
        # round-trip through the parameter dtype so the measured norm is that of the stored weight
        current = _unpolyphase(_unfold(torus, support), step, kernel_size).to(weight.dtype)
        history.append(measure(current))
        rounds += 1
    rescaled = rescale and history[-1] > c
    if rescaled:
        # a uniform scale keeps the support and scales every singular value alike
        current = (current.to(dtype) * (c / history[-1])).to(weight.dtype)
        history.append(measure(current))
    return current, ClipResult(c, before, history[-1], rounds, True, rescaled, history)


def clip_conv_(
    module: nn.Conv2d,
    input_size: int | Size2,
    c: float,
    max_iter: int = 1,
    tol: float = 1e-3,
    rescale: bool = False,
) -> ClipResult:
    """In-place :func:`clip_conv_weight` on ``module.weight``; untouched if already ``<= c``.

    Checks that the module is a groups=1, dilation=1 'same' convolution at
    ``input_size`` (``n / s`` outputs per axis).
    """
    size = _conv_input_size("<module>", module, {"<module>": _pair(input_size)})
    _check_conv_geometry(_pair(module.kernel_size), size, _pair(module.stride), module.padding)
    new_weight, result = clip_conv_weight(module.weight, size, c, module.stride, max_iter, tol, rescale)
    if result.clipped:
        with torch.no_grad():
            module.weight.copy_(new_weight)
    return result


def clip_linear_weight(weight: Tensor, c: float, dtype: torch.dtype = torch.float64) -> tuple[Tensor, ClipResult]:
    """Exact SVD clip of a matrix's singular values at ``c``; pure, unchanged if already ``<= c``."""
    _check_target(c)
    before = float(linear_singular_values(weight, dtype)[0])
    if before <= c:
        return weight, ClipResult(c, before, before, 0, False, False, [before])
    matrix = weight.detach().to(dtype)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    new_weight = _clip_svd(matrix, u, s, vh, c).to(weight.dtype)
    after = float(linear_singular_values(new_weight, dtype)[0])
    return new_weight, ClipResult(c, before, after, 1, True, False, [before, after])


def clip_linear_(module: nn.Linear, c: float) -> ClipResult:
    """In-place :func:`clip_linear_weight` on ``module.weight``."""
    new_weight, result = clip_linear_weight(module.weight, c)
    if result.clipped:
        with torch.no_grad():
            module.weight.copy_(new_weight)
    return result


def clip_model_(
    model: nn.Module,
    c: float,
    input_sizes: Mapping[str, Size2],
    max_iter: int = 1,
    tol: float = 1e-3,
    rescale: bool = False,
) -> dict[str, Any]:
    """Clip every ``Conv2d`` and ``Linear`` to spectral norm ``c`` in place (Appendix B.4.2, D.3).

    Convs use :func:`clip_conv_` (circular operator at the recorded input
    size), linear layers the exact SVD clip.  Returns ``{"c", "layers": {name:
    ClipResult.as_dict()}, "worst_overshoot", "worst_layer", "n_clipped",
    "max_iterations", "log_sc_before", "log_sc_after"}`` where
    ``worst_overshoot = max over layers of (after / c - 1)`` (``<= 0`` means
    every layer ends at or below ``c``) and ``log_sc_*`` are natural logs of
    the spectral complexity (Definition 7) before and after clipping.
    """
    _check_target(c)
    layers: dict[str, dict[str, Any]] = {}
    for name, module in _layers(model):
        if isinstance(module, nn.Conv2d):
            size = _conv_input_size(name, module, input_sizes)
            result = clip_conv_(module, size, c, max_iter, tol, rescale)
        else:
            result = clip_linear_(module, c)
        layers[name] = result.as_dict()
    worst_layer = max(layers, key=lambda n: layers[n]["overshoot"]) if layers else ""

    def log_sc(key: str) -> float:
        return sum(math.log(v[key]) if v[key] > 0 else -math.inf for v in layers.values())

    return {
        "c": float(c),
        "layers": layers,
        "worst_overshoot": float(layers[worst_layer]["overshoot"]) if layers else 0.0,
        "worst_layer": worst_layer,
        "n_clipped": sum(int(v["clipped"]) for v in layers.values()),
        "max_iterations": max((v["iterations"] for v in layers.values()), default=0),
        "log_sc_before": log_sc("before"),
        "log_sc_after": log_sc("after"),
    }


def spectral_clip_hook(
    c: float,
    input_sizes: Mapping[str, Size2],
    max_iter: int = 1,
    tol: float = 1e-3,
    rescale: bool = False,
    per_layer: bool = False,
) -> Callable[[nn.Module, int], dict[str, float]]:
    """End-of-epoch hook ``hook(model, epoch) -> dict[str, float]`` running :func:`clip_model_`.

    Appendix D.3 (following Sedghi et al.): the spectral norm is clipped at the
    end of every epoch, not every iteration.  The returned dict is flat and
    JSON-able (floats only): ``spectral_c``, ``spectral_worst_overshoot``,
    ``spectral_n_clipped``, ``spectral_max_iterations``,
    ``spectral_max_norm_before``/``_after``, ``spectral_log_sc_before``/``_after``;
    with ``per_layer=True`` also ``spectral_norm_before/<layer>`` and
    ``spectral_norm_after/<layer>``.  Non-finite values are left out so the
    dict is strict JSON (the log spectral complexity is ``-inf`` while a layer
    is all zero, e.g. Fixup's zero-initialised layers before training).
    ``input_sizes`` is copied, so the hook holds no reference to the caller's
    dict.
    """
    _check_target(c)
    sizes = {name: _pair(size) for name, size in input_sizes.items()}

    def hook(model: nn.Module, epoch: int) -> dict[str, float]:
        del epoch  # the same clip every epoch
        report = clip_model_(model, c, sizes, max_iter, tol, rescale)
        layers = report["layers"].values()
        out = {
            "spectral_c": float(c),
            "spectral_worst_overshoot": report["worst_overshoot"],
            "spectral_n_clipped": float(report["n_clipped"]),
            "spectral_max_iterations": float(report["max_iterations"]),
            "spectral_max_norm_before": max((v["before"] for v in layers), default=0.0),
            "spectral_max_norm_after": max((v["after"] for v in layers), default=0.0),
            "spectral_log_sc_before": report["log_sc_before"],
            "spectral_log_sc_after": report["log_sc_after"],
        }
        if per_layer:
            for name, v in report["layers"].items():
                out[f"spectral_norm_before/{name}"] = v["before"]
                out[f"spectral_norm_after/{name}"] = v["after"]
        return {key: value for key, value in out.items() if math.isfinite(value)}

    return hook
