"""Singular values of convolution and linear layers as linear operators, and what is measured from them
(spectral norms, the per-layer spread of Fig. 5c/d, spectral complexity); the clipping of
Appendix B.4.2 that works on the same operators is :mod:`arlib.clipping`, and :mod:`arlib.spectral`
holds the public names of both.

Where the paper uses them (Fig. 5c/d and 11c/d; Appendix B.4.2 / D.3): :mod:`arlib.spectral`.

Convolutions as linear operators
--------------------------------
A ``Conv2d`` with weight ``w`` of PyTorch layout ``[c_out, c_in, k1, k2]``
acting on ``c_in x n1 x n2`` inputs is analysed, as in Sedghi, Gupta & Long
(2018, "The Singular Values of Convolutional Layers", ICLR 2019), with
**circular** padding::

    y[o, i, j] = sum_{c, a, b} w[o, c, a, b] * x[c, (s1 i + a - p1) mod n1,
                                                    (s2 j + b - p2) mod n2]

for output positions ``0 <= i < n1 / s1``, ``0 <= j < n2 / s2``.  PyTorch's
default is *zero* padding; the circular operator differs from it only near the
border and is the one whose spectrum has the closed form below (it is what the
paper's clipping method, Sedghi et al.'s, analyses and clips).  The padding
``p`` is a circular shift of the input, a permutation, so it does not change the
singular values; it is only used to check that the layer is a "same"
convolution (``n / s`` outputs per axis).

Stride 1: the operator is block-circulant with circulant blocks, diagonalised
by the 2-D DFT.  At frequency ``f`` it acts as the ``c_out x c_in`` matrix
``conj(W_hat[:, :, f])`` (times a unit phase from ``p``), where ``W_hat`` is the
DFT of the kernel zero-padded to ``n1 x n2``.  The spectrum of the operator is
the union over all ``n1 n2`` frequencies of the singular values of these
matrices (Sedghi et al., Theorem 6).

Stride ``s`` (``s`` dividing ``n``): write each kernel tap as
``a = s q + r`` (``0 <= r < s``).  Then ``y = sum_r w_r * x_r`` where
``x_r[j] = x[s j + r]`` are the ``s1 s2`` polyphase components of the input
(a permutation of the input coordinates) and ``w_r[q] = w[s q + r]`` are
polyphase sub-kernels of size ``ceil(k / s)``.  So a stride-``s`` convolution
on the ``n`` grid *is exactly* a stride-1 convolution on the ``m = n / s`` grid
with ``c_in s1 s2`` input channels, and each of its ``m1 m2`` frequencies
gives a ``c_out x (c_in s1 s2)`` matrix.  This is exact (unlike applying the
stride-1 formula and subsampling).  1x1 stride-2 shortcuts are the special case
``k = 1``: three of the four sub-kernels are zero.  A kernel larger than the
grid wraps around (its taps are summed modulo ``m``).

Speed: the kernel is real, so ``W_hat[-f] = conj(W_hat[f])`` and the two
matrices have the same singular values.  Only one frequency of each mirrored
pair is decomposed (from ``rfft2``; columns 0 and ``m2/2`` are self-mirrored, so
within them only half of the rows are kept), with one batched
``torch.linalg.svdvals`` call (values only); each value is then repeated with
its multiplicity (2 for a mirrored pair, 1 for a self-conjugate frequency), so
the returned multiset equals the full spectrum.  A 1x1 (polyphase) kernel has
the same matrix at every frequency and is decomposed once.  ``method="gram"``
replaces the SVD by ``eigvalsh`` of the smaller Gram matrix (faster, less
accurate near zero, see :func:`conv_singular_values`).

Precision: transforms and decompositions run in float64 / complex128 by
default (``dtype`` argument); values agree with an explicit-matrix SVD to
~1e-14 of the largest value (``method="gram"``: ~1e-8).  ``dtype=float32``
is accepted (~1e-6 of the largest value).  Relative accuracy of values far
below the largest is limited in every method, as for any backward-stable SVD.

No batch-norm folding is done: the paper's controlled-capacity networks
(Appendix D.3) have no BN.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SpectralComplexity",
    "conv_singular_values",
    "conv_spectral_norm",
    "layer_singular_values",
    "linear_singular_values",
    "many_conv_singular_values",
    "record_input_sizes",
    "reshaped_singular_values",
    "singular_value_std",
    "spectral_complexity",
    "spectral_norm",
    "spectral_norms",
]

Size2 = tuple[int, int]


# --------------------------------------------------------------------------
# Input sizes
# --------------------------------------------------------------------------


def record_input_sizes(model: nn.Module, example_input: Tensor | Sequence[Any]) -> dict[str, Size2]:
    """Spatial input size ``(H, W)`` of every ``nn.Conv2d`` of ``model``.

    Runs one forward pass of ``example_input`` (a tensor, or a tuple of
    positional arguments) with a forward pre-hook on each convolution; keys are
    the names from ``model.named_modules()``.  The pass runs under
    ``torch.no_grad()`` in eval mode (so batch-norm running statistics are not
    updated); every module's ``training`` flag is restored afterwards and the
    hooks are removed even if the forward pass raises.

    Raises ``ValueError`` if one convolution is called with two different
    spatial sizes (its operator, hence its spectrum, would not be unique).
    """
    sizes: dict[str, Size2] = {}
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            size = (int(args[0].shape[-2]), int(args[0].shape[-1]))
            if sizes.setdefault(name, size) != size:
                raise ValueError(f"conv {name!r} is applied to inputs of sizes {sizes[name]} and {size}")

        return hook

    training = {m: m.training for m in model.modules()}
    try:
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_pre_hook(make_hook(name)))
        model.eval()
        args = (example_input,) if isinstance(example_input, Tensor) else tuple(example_input)
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in training.items():
            module.training = flag
    return sizes


# --------------------------------------------------------------------------
# Kernel <-> frequency-domain matrices (pure helpers)
# --------------------------------------------------------------------------


def _pair(value: int | Sequence[int]) -> Size2:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def _polyphase(weight: Tensor, stride: Size2) -> Tensor:
    """``[o, i, k1, k2]`` -> ``[o, i*s1*s2, ceil(k1/s1), ceil(k2/s2)]`` sub-kernels.

    Channel ``i*s1*s2 + r1*s2 + r2`` holds ``w[:, i, s1 q1 + r1, s2 q2 + r2]``
    (zero where that tap lies outside the kernel).  Identity for stride 1.
    """
    s1, s2 = stride
    if (s1, s2) == (1, 1):
        return weight
    out_ch, in_ch, k1, k2 = weight.shape
    q1, q2 = -(-k1 // s1), -(-k2 // s2)
    padded = F.pad(weight, (0, q2 * s2 - k2, 0, q1 * s1 - k1))
    # tap a = q*s + r, so a reshape to (q, s) puts the phase r on the inner axis
    blocks = padded.reshape(out_ch, in_ch, q1, s1, q2, s2).permute(0, 1, 3, 5, 2, 4)
    return blocks.reshape(out_ch, in_ch * s1 * s2, q1, q2)


def _unpolyphase(poly: Tensor, stride: Size2, kernel_size: Size2) -> Tensor:
    """Inverse of :func:`_polyphase`; taps outside the ``k1 x k2`` kernel are dropped."""
    s1, s2 = stride
    if (s1, s2) == (1, 1):
        return poly
    out_ch, channels, q1, q2 = poly.shape
    in_ch = channels // (s1 * s2)
    blocks = poly.reshape(out_ch, in_ch, s1, s2, q1, q2).permute(0, 1, 4, 2, 5, 3)
    return blocks.reshape(out_ch, in_ch, q1 * s1, q2 * s2)[:, :, : kernel_size[0], : kernel_size[1]]


def _fold(kernel: Tensor, grid: Size2) -> Tensor:
    """Place ``[..., q1, q2]`` taps on the ``m1 x m2`` torus (tap ``a`` at ``a mod m``).

    For ``q <= m`` this is zero padding; larger kernels wrap around, as the
    circular operator does.
    """
    (m1, m2), (q1, q2) = grid, kernel.shape[-2:]
    if q1 <= m1 and q2 <= m2:
        return F.pad(kernel, (0, m2 - q2, 0, m1 - q1))
    idx1 = torch.arange(q1, device=kernel.device) % m1
    idx2 = torch.arange(q2, device=kernel.device) % m2
    rows = kernel.new_zeros(*kernel.shape[:-2], m1, q2).index_add_(-2, idx1, kernel)
    return rows.new_zeros(*kernel.shape[:-2], m1, m2).index_add_(-1, idx2, rows)


def _unfold(torus: Tensor, mask: Tensor) -> Tensor:
    """Least-squares, minimum-norm preimage of :func:`_fold` on the taps in ``mask``.

    ``mask`` is ``[..., q1, q2]`` (1 for taps of the kernel's support).  Each
    torus position receives ``count`` taps, each gets ``value / count``;
    positions no tap reaches are dropped.  For kernels that fit the grid this is
    the crop to the kernel support, the orthogonal projection used by Sedghi
    et al.
    """
    (m1, m2), (q1, q2) = torus.shape[-2:], mask.shape[-2:]
    idx1 = torch.arange(q1, device=torus.device) % m1
    idx2 = torch.arange(q2, device=torus.device) % m2
    counts = _fold(mask, (m1, m2))
    gathered = torus[..., idx1[:, None], idx2[None, :]]
    per_tap = counts[..., idx1[:, None], idx2[None, :]].clamp(min=1)
    return gathered * mask / per_tap


def _check_conv_geometry(kernel_size: Size2, input_size: Size2, stride: Size2, padding: int | str | Sequence[int] | None) -> Size2:
    """Return the polyphase grid ``n / s``; check the conv is a 'same' convolution."""
    grid = []
    for axis in range(2):
        n, s, k = input_size[axis], stride[axis], kernel_size[axis]
        if n % s:
            raise ValueError(f"input size {input_size} is not divisible by stride {stride}")
        if padding is not None and padding != "same":
            p = 0 if padding == "valid" else _pair(padding)[axis]  # type: ignore[arg-type]
            if (n + 2 * p - k) // s + 1 != n // s:
                raise ValueError(
                    f"conv with kernel {kernel_size}, stride {stride}, padding {padding} maps {input_size} "
                    f"to a size other than n/s: not a circular 'same' convolution"
                )
        grid.append(n // s)
    return (grid[0], grid[1])


def _frequency_matrices(weight: Tensor, input_size: Size2, stride: Size2, dtype: torch.dtype) -> Tensor:
    """``[m1, m2//2+1, c_out, c_in*s1*s2]`` complex matrices of the circular conv (rfft2 half-plane)."""
    poly = _polyphase(weight.detach().to(dtype), stride)
    grid = (input_size[0] // stride[0], input_size[1] // stride[1])
    spectrum = torch.fft.rfft2(_fold(poly, grid), dim=(-2, -1))
    return spectrum.permute(2, 3, 0, 1)


def _representative_matrices(weight: Tensor, input_size: Size2, stride: Size2, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Frequency matrices ``[F, c_out, c_in s1 s2]``, one per conjugate pair, and their multiplicities ``[F]``.

    When the polyphase kernel is 1x1 (1x1 convs, any stride) its DFT is the
    same matrix at every frequency, so a single matrix with multiplicity
    ``m1 m2`` stands for all of them.
    """
    grid = (input_size[0] // stride[0], input_size[1] // stride[1])
    if all(-(-k // st) == 1 for k, st in zip(weight.shape[-2:], stride)):
        matrix = _polyphase(weight.detach().to(dtype), stride)[None, :, :, 0, 0]
        return matrix, torch.full((1,), grid[0] * grid[1], dtype=torch.long, device=weight.device)
    rows, cols, mult = _unique_frequencies(grid, weight.device)
    return _frequency_matrices(weight, input_size, stride, dtype)[rows, cols], mult


def _unique_frequencies(grid: Size2, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Rows, columns and multiplicities of one representative per conjugate pair.

    On the rfft2 half-plane ``(f1, f2), 0 <= f2 <= m2 // 2``: a column with
    ``2 f2 != 0 mod m2`` has its mirror ``(-f1, -f2)`` outside the half-plane,
    so every entry counts twice.  Columns ``f2 = 0`` and ``f2 = m2 / 2`` are
    mirrored onto themselves (``f1 -> -f1``): keep ``f1 <= -f1 mod m1``, with
    multiplicity 1 if ``f1 = -f1`` (self-conjugate, real matrix) and 2 otherwise.
    The multiplicities sum to ``m1 * m2``.
    """
    m1, m2 = grid
    f1 = torch.arange(m1, device=device)[:, None].expand(m1, m2 // 2 + 1)
    f2 = torch.arange(m2 // 2 + 1, device=device)[None, :].expand(m1, m2 // 2 + 1)
    mirror1 = (-f1) % m1
    self_col = (2 * f2) % m2 == 0
    keep = ~self_col | (f1 <= mirror1)
    weight = torch.where(self_col & (f1 == mirror1), 1, 2)
    return f1[keep], f2[keep], weight[keep]


# --------------------------------------------------------------------------
# Singular values
# --------------------------------------------------------------------------


def _matrix_singular_values(matrices: Tensor, method: str) -> Tensor:
    """Singular values of a batch of matrices ``[..., r, c]`` -> ``[..., min(r, c)]``.

    ``"svd"``: ``torch.linalg.svdvals`` (LAPACK gesdd, values only); backward
    stable, every value accurate to ~``eps * s_max``.
    ``"gram"``: ``sqrt(eigvalsh(G))`` of the smaller Gram matrix ``A A^H`` or
    ``A^H A``; about 1.5-2x faster on CPU, but squaring loses half the digits
    near zero: accurate to ~``sqrt(eps) * s_max`` (~1e-8 relative to the
    largest value in float64, enough for norms and standard deviations).
    """
    if method == "svd":
        return torch.linalg.svdvals(matrices)
    if method == "gram":
        r, c = matrices.shape[-2:]
        gram = matrices @ matrices.mH if r <= c else matrices.mH @ matrices
        return torch.linalg.eigvalsh(gram).clamp(min=0).sqrt()
    raise ValueError(f"method must be 'svd' or 'gram', not {method!r}")


def _expand_sorted(values: Tensor, mult: Tensor) -> Tensor:
    """Flatten ``[F, r]`` values, repeat row ``f`` ``mult[f]`` times, sort descending.

    Sorting before repeating sorts half as many numbers.
    """
    flat = values.flatten()
    counts = mult.repeat_interleave(values.shape[-1])
    order = flat.argsort(descending=True)
    return flat[order].repeat_interleave(counts[order])


def conv_singular_values(
    weight: Tensor,
    input_size: int | Size2,
    stride: int | Size2 = 1,
    padding: int | str | Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
    method: str = "svd",
) -> Tensor:
    """All singular values of a conv, as a linear operator on ``n1 x n2`` inputs, descending.

    Method (Sedghi, Gupta & Long 2018, extended exactly to strides by the
    polyphase decomposition, see the module docstring): DFT of the (polyphase)
    kernel zero-padded to the ``n / s`` grid, singular values of the ``c_out x
    (c_in s1 s2)`` matrix of every frequency, computed in one batched call over
    one representative of each conjugate pair and repeated by multiplicity.
    The operator is the **circular**-padding convolution; PyTorch's
    zero-padded conv has a slightly different spectrum.

    Args:
        weight: ``[c_out, c_in, k1, k2]`` (PyTorch layout); ``groups=1`` only.
        input_size: spatial input size ``n`` or ``(n1, n2)``, divisible by the stride.
        stride: conv stride.
        padding: the conv's padding; used only to check that it is a "same"
            conv (``n / s`` outputs), since a circular shift does not change
            singular values.  ``None`` skips the check.
        dtype: real dtype of the computation (float64 default; see module doc).
        method: ``"svd"`` (default, values-only SVD) or ``"gram"`` (faster,
            ~``sqrt(eps)`` accuracy relative to the largest value), see
            :func:`_matrix_singular_values`.

    Returns:
        1-D tensor of ``(n1/s1)(n2/s2) * min(c_out, c_in s1 s2)`` values, in
        ``dtype``, sorted in descending order, on ``weight``'s device.
    """
    size, step = _pair(input_size), _pair(stride)
    _check_conv_geometry(_pair(tuple(weight.shape[-2:])), size, step, padding)
    matrices, mult = _representative_matrices(weight, size, step, dtype)
    return _expand_sorted(_matrix_singular_values(matrices, method), mult)


def conv_spectral_norm(
    weight: Tensor,
    input_size: int | Size2,
    stride: int | Size2 = 1,
    padding: int | str | Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
) -> float:
    """Largest singular value of the circular conv operator (see :func:`conv_singular_values`)."""
    size, step = _pair(input_size), _pair(stride)
    _check_conv_geometry(_pair(tuple(weight.shape[-2:])), size, step, padding)
    return float(torch.linalg.svdvals(_representative_matrices(weight, size, step, dtype)[0]).max())


def linear_singular_values(weight: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Singular values of an ``nn.Linear`` weight ``[out, in]``, descending."""
    return torch.linalg.svdvals(weight.detach().to(dtype))


def reshaped_singular_values(weight: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Singular values of the ``out x (in*k1*k2)`` reshaped weight matrix, descending.

    This is the cheap "weight matrix" view of a conv (not its operator); for a
    linear layer it is the layer's own spectrum.
    """
    return torch.linalg.svdvals(weight.detach().to(dtype).reshape(weight.shape[0], -1))


def _layers(model: nn.Module) -> list[tuple[str, nn.Conv2d | nn.Linear]]:
    """Every ``Conv2d`` and ``Linear`` of the model, in ``named_modules`` order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _conv_input_size(name: str, module: nn.Conv2d, input_sizes: Mapping[str, Size2] | None) -> Size2:
    if module.groups != 1 or _pair(module.dilation) != (1, 1):
        raise NotImplementedError(f"conv {name!r}: only groups=1, dilation=1 convolutions are supported")
    if input_sizes is None or name not in input_sizes:
        raise ValueError(f"no input size for conv {name!r}: use record_input_sizes(model, example_input)")
    return _pair(input_sizes[name])


def many_conv_singular_values(
    convs: Sequence[tuple[Tensor, Size2, Size2, Any]], dtype: torch.dtype = torch.float64, method: str = "svd", workers: int = 1
) -> list[Tensor]:
    """:func:`conv_singular_values` of many ``(weight, input_size, stride, padding)`` at once.

    ``workers > 1`` spreads the layers over a thread pool. PyTorch's batched
    CPU decompositions run each batch on one core but release the GIL, so
    layers decompose in parallel, one per core; the values are identical to
    the sequential ones (each layer is still one deterministic call).
    """

    def one(spec: tuple[Tensor, Size2, Size2, Any]) -> Tensor:
        weight, size, stride, padding = spec
        return conv_singular_values(weight, size, stride, padding, dtype, method)

    if workers <= 1 or len(convs) < 2:
        return [one(c) for c in convs]
    from concurrent.futures import ThreadPoolExecutor

    # Largest layers first so the pool does not end on one long task.
    order = sorted(range(len(convs)), key=lambda i: -convs[i][0].numel() * _pair(convs[i][1])[0] * _pair(convs[i][1])[1])
    out: list[Tensor | None] = [None] * len(convs)
    with ThreadPoolExecutor(workers) as pool:
        for i, values in zip(order, pool.map(one, [convs[i] for i in order])):
            out[i] = values
    return out  # type: ignore[return-value]


def layer_singular_values(
    model: nn.Module, input_sizes: Mapping[str, Size2], dtype: torch.dtype = torch.float64, method: str = "svd", workers: int = 1
) -> dict[str, Tensor]:
    """Operator singular values of every ``Conv2d`` (circular, at its recorded input size) and ``Linear``.

    Convs: :func:`conv_singular_values` (``method`` applies to them; ``workers``
    as in :func:`many_conv_singular_values`); linear layers:
    :func:`linear_singular_values`.  Keys: module names.
    """
    layers = _layers(model)
    convs = [(n, m) for n, m in layers if isinstance(m, nn.Conv2d)]
    specs = [(m.weight, _conv_input_size(n, m, input_sizes), m.stride, m.padding) for n, m in convs]
    values = many_conv_singular_values(specs, dtype, method, workers)
    by_name = dict(zip([n for n, _ in convs], values))
    return {n: by_name[n] if n in by_name else linear_singular_values(m.weight, dtype) for n, m in layers}


def singular_value_std(model: nn.Module, input_sizes: Mapping[str, Size2] | None = None, kind: str = "operator", method: str = "svd") -> dict[str, float]:
    """Per-layer standard deviation of singular values (the paper's Fig. 5c/d, 11c/d; Appendix B.2).

    ``kind="operator"``: spectrum of each conv as a circular operator (all
    ``m1 m2 min(...)`` values with multiplicity; needs ``input_sizes``).
    ``kind="reshaped"``: spectrum of the ``out x (in k k)`` reshaped weight.
    Linear layers use their weight matrix in both cases.  Population standard
    deviation (``ddof=0``).  ``method`` as in :func:`conv_singular_values`.
    """
    if kind not in ("operator", "reshaped"):
        raise ValueError(f"kind must be 'operator' or 'reshaped', not {kind!r}")
    result: dict[str, float] = {}
    for name, module in _layers(model):
        if kind == "reshaped" or isinstance(module, nn.Linear):
            values = reshaped_singular_values(module.weight)
        else:
            size = _conv_input_size(name, module, input_sizes)
            values = conv_singular_values(module.weight, size, module.stride, module.padding, method=method)
        result[name] = float(values.std(correction=0))
    return result


# --------------------------------------------------------------------------
# Spectral norms and complexity
# --------------------------------------------------------------------------


def spectral_norm(module: nn.Module, input_size: int | Size2 | None = None) -> float:
    """Operator 2-norm of a ``Linear`` or (circular) ``Conv2d`` at ``input_size``."""
    if isinstance(module, nn.Linear):
        return float(linear_singular_values(module.weight)[0])
    if isinstance(module, nn.Conv2d):
        size = _conv_input_size("<module>", module, None if input_size is None else {"<module>": _pair(input_size)})
        return conv_spectral_norm(module.weight, size, module.stride, module.padding)
    raise TypeError(f"spectral_norm supports nn.Linear and nn.Conv2d, not {type(module).__name__}")


def spectral_norms(model: nn.Module, input_sizes: Mapping[str, Size2]) -> dict[str, float]:
    """Spectral norm of every ``Conv2d`` and ``Linear`` layer, keyed by module name."""
    norms: dict[str, float] = {}
    for name, module in _layers(model):
        size = _conv_input_size(name, module, input_sizes) if isinstance(module, nn.Conv2d) else None
        norms[name] = spectral_norm(module, size)
    return norms


class SpectralComplexity(NamedTuple):
    """Definition 7: ``value = prod_i ||W_i||_2``; ``log_value`` (natural log) never overflows."""

    value: float
    log_value: float
    norms: dict[str, float]


def spectral_complexity(model: nn.Module, input_sizes: Mapping[str, Size2]) -> SpectralComplexity:
    """Spectral complexity (Definition 7, Appendix B.4.2) over all conv and linear layers.

    The product is accumulated as a sum of logs; ``value`` is ``exp`` of it
    (``inf`` on overflow, 0 if a layer is zero).
    """
    norms = spectral_norms(model, input_sizes)
    log_value = sum(math.log(v) if v > 0 else -math.inf for v in norms.values())
    value = math.exp(log_value) if log_value < 709.0 else math.inf
    return SpectralComplexity(value=value, log_value=log_value, norms=norms)
