"""What the paper measures on a trained network (Wen, Li & Jia, ICML 2020, Appendix B and D).

Every measurement runs in IEEE fp32 (no autocast, and TF32 switched off for
cuDNN convolutions and CUDA matmuls while it runs, since PyTorch lets cuDNN
use TF32 by default), with the model in eval mode (restored afterwards), in
batches, under ``torch.no_grad()`` wherever no input gradient is needed.

Sections:

* predictions and per-example quantities: :func:`predict`, :func:`margins`
  (Fig. 4/10, App. B.3), :func:`cross_entropy_per_example` and
  :func:`true_class_probability` (Fig. 5a/b, 11a/b), :func:`histogram`;
* aggregates: :func:`loss_and_accuracy` and :func:`gaps` (Tables 2-6),
  :func:`margin_stats` (App. B.3);
* attacks: :func:`loss_variation` / :func:`variation_stats` (App. B.5, Fig. 8,
  Table 1) and :func:`pgd_accuracy` (App. D.2, the "PGD" rows of Tables 3-6);
* singular values: :func:`two_group_std_difference` (App. B.2);
* everything at once for one trained network: :func:`analyse`.

Example::

    summary, arrays = analyse(model, dataset, input_size=32)
    np.savez_compressed("analysis.npz", **arrays)
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import scipy.stats
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attacks import attack_context, pgd
from .config import from_255, to_jsonable
from .data import Split

__all__ = [
    "predict",
    "margins",
    "logit_margins",
    "margin_stats",
    "cross_entropy_per_example",
    "true_class_probability",
    "loss_and_accuracy",
    "gaps",
    "histogram",
    "loss_variation",
    "variation_stats",
    "pgd_accuracy",
    "two_group_std_difference",
    "analyse",
]


# ----------------------------------------------------------------------------- plumbing


def _device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _check_fp32(model: nn.Module) -> None:
    bad = sorted({str(p.dtype) for p in model.parameters() if p.is_floating_point() and p.dtype != torch.float32})
    if bad:
        raise ValueError(f"analysis runs in fp32; the model has parameters of dtype {', '.join(bad)}")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextmanager
def strict_fp32() -> Iterator[None]:
    """Switch TF32 off for cuDNN convolutions and CUDA matmuls; restore the settings after.

    PyTorch lets cuDNN convolutions use TF32 (10-bit mantissa) by default on
    Ampere and later GPUs, so "fp32" is not IEEE fp32 there unless asked. Only
    the per-backend ``fp32_precision`` API (torch >= 2.9) is touched, and its
    previous values are put back on exit. Inside the context PyTorch refuses to
    read the legacy ``torch.backends.cudnn.allow_tf32`` flag (it reports mixed
    API use); outside it, it reads as before. No effect on CPU computations.
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if not hasattr(cudnn, "conv"):  # torch < 2.9: the legacy flags are the only API
        saved_legacy = (cudnn.allow_tf32, matmul.allow_tf32)
        cudnn.allow_tf32 = matmul.allow_tf32 = False
        try:
            yield
        finally:
            cudnn.allow_tf32, matmul.allow_tf32 = saved_legacy
        return
    saved = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision)
    cudnn.conv.fp32_precision = cudnn.rnn.fp32_precision = matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, matmul.fp32_precision = saved


def _batches(split: Split, transform, batch_size: int, device: torch.device):
    """Yield (start, x float [0,1] on device, y int64 on device) over ``split`` in order."""
    for start in range(0, len(split), batch_size):
        x = transform(split.images[start : start + batch_size].to(device))
        y = split.labels[start : start + batch_size].to(device)
        yield start, x.float(), y


def _as_np(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits.detach().cpu() if torch.is_tensor(logits) else logits)
    y = np.asarray(labels.detach().cpu() if torch.is_tensor(labels) else labels)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"logits must be (N, K) and labels (N,), got {z.shape} and {y.shape}")
    return z, y.astype(np.int64, copy=False)


# ----------------------------------------------------------------------------- predictions


def predict(model: nn.Module, split: Split, transform, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every example of ``split``, in order (the raw material of Tables 2-6, Figs. 4, 5, 10, 11).

    ``transform`` maps a uint8 batch to float images in [0, 1]
    (:func:`arlib.data.test_transform`: no augmentation, also for the
    training split, as the paper's training losses/accuracies are measured).
    Eval mode, fp32, ``torch.no_grad()``.

    Returns:
        ``(logits, labels)``: float32 array (N, K) and int64 array (N,).
    """
    _check_fp32(model)
    device = _device(model)
    out = []
    with _eval_mode(model), torch.no_grad():
        for _, x, _y in _batches(split, transform, batch_size, device):
            out.append(model(x).float().cpu())
    logits = torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
    return logits.astype(np.float32, copy=False), split.labels.cpu().numpy().astype(np.int64)


def margins(logits, labels) -> np.ndarray:
    """Output margin of every example: true-class logit minus the largest other logit (App. B.3, Fig. 4, Fig. 10).

    Positive iff the example is correctly classified (ties give 0). Computed in
    float64 from the given logits; returns a float64 array (N,) (cast to
    float32 for storage).
    """
    z, y = _as_np(logits, labels)
    return logit_margins(torch.from_numpy(z.astype(np.float64)), torch.from_numpy(y)).numpy()


def logit_margins(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`margins` on tensors, in their dtype and on their device, differentiable (the bound's
    distance to the decision boundary, :func:`arlib.bound.bound_terms`, takes its input gradient)."""
    true = z.gather(1, y[:, None])[:, 0]
    others = z.scatter(1, y[:, None], float("-inf"))
    return true - others.max(1).values


def margin_stats(m) -> dict[str, float]:
    """Summary of a margin distribution (App. B.3: concentration and skewness of Fig. 4c/d).

    Returns ``mean``, ``std`` (population, ddof=0), ``skewness``
    (``scipy.stats.skew(m, bias=True)``: the plain moment ratio
    m3 / m2^(3/2), without the small-sample correction, which is immaterial
    at 10^4-10^5 examples), ``median``, ``frac_below_zero`` (fraction with
    margin < 0: misclassified) and ``n``. NaN where undefined (empty input;
    skewness of constant margins).
    """
    m = np.asarray(m, dtype=np.float64).ravel()
    if m.size == 0:
        nan = float("nan")
        return dict(mean=nan, std=nan, skewness=nan, median=nan, frac_below_zero=nan, n=0)
    skew = float(scipy.stats.skew(m, bias=True)) if m.std() > 0 else float("nan")
    return dict(
        mean=float(m.mean()),
        std=float(m.std()),
        skewness=skew,
        median=float(np.median(m)),
        frac_below_zero=float((m < 0).mean()),
        n=int(m.size),
    )


def cross_entropy_per_example(logits, labels) -> np.ndarray:
    """Cross-entropy loss ``logsumexp(z) - z_y`` of every example (Fig. 5b, Fig. 11b histograms).

    Float64, stable for large logits.
    """
    z, y = _as_np(logits, labels)
    z = z.astype(np.float64)
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    return lse - z[np.arange(len(y)), y]


def true_class_probability(logits, labels) -> np.ndarray:
    """Softmax probability of the true class of every example (Fig. 5a, Fig. 11a histograms).

    ``exp(-cross-entropy)``, float64.
    """
    return np.exp(-cross_entropy_per_example(logits, labels))


def loss_and_accuracy(logits, labels) -> dict[str, float]:
    """Mean cross-entropy and accuracy in % (the "Trn/Test Loss" and "Trn/Test Acc." rows of Tables 2-6).

    Accuracy uses ``argmax`` of the logits (first index on ties).
    """
    z, y = _as_np(logits, labels)
    if len(y) == 0:
        return dict(loss=float("nan"), acc=float("nan"), n=0)
    return dict(
        loss=float(cross_entropy_per_example(z, y).mean()),
        acc=float(100.0 * (z.argmax(axis=1) == y).mean()),
        n=int(len(y)),
    )


def gaps(train: Mapping[str, float], test: Mapping[str, float]) -> dict[str, float]:
    """Generalization gaps as Tables 3-6 define them (Fig. 3a, 6a, 7a).

    ``delta_acc = train_acc - test_acc`` (%-points; equals the error-rate gap
    test_error - train_error) and ``delta_loss = test_loss - train_loss``,
    from two :func:`loss_and_accuracy` dicts; the four operands are repeated.
    """
    return dict(
        train_acc=float(train["acc"]),
        test_acc=float(test["acc"]),
        delta_acc=float(train["acc"] - test["acc"]),
        train_loss=float(train["loss"]),
        test_loss=float(test["loss"]),
        delta_loss=float(test["loss"] - train["loss"]),
    )


def histogram(values, bins: int | Sequence[float] = 50, range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin edges of ``values`` (Fig. 4, 5a/b, 10, 11a/b), as ``np.histogram``.

    Returns ``(counts int64 (bins,), edges float64 (bins + 1,))``; NaNs are dropped.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    counts, edges = np.histogram(v[~np.isnan(v)], bins=bins, range=range)
    return counts.astype(np.int64), edges.astype(np.float64)


# ----------------------------------------------------------------------------- attacks


def _max_loss_increase(model, x, y, eps: float, alpha: float, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Per-example max over the PGD iterates of CE(x') - CE(x), floored at 0 (model already in eval)."""
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, reduction="none")
    lo, hi = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    noise = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device, x.dtype)
    x_adv = torch.min(torch.max(x + (2 * noise - 1) * eps, lo), hi)
    # The zero perturbation is in the ball (intersected with the [0, 1] box), so
    # the maximal increase is >= 0: starting the running max at 0 counts it.
    best = torch.zeros_like(clean)
    for t in range(steps + 1):
        last = t == steps
        x_adv = x_adv.detach().requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            loss = F.cross_entropy(model(x_adv), y, reduction="none")
        best = torch.maximum(best, loss.detach() - clean)
        if last:
            break
        (grad,) = torch.autograd.grad(loss.sum(), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), lo), hi)
    return best


def loss_variation(
    model: nn.Module,
    split: Split,
    transform,
    eps255_list: Sequence[float] = (1, 2, 4),
    steps: int = 10,
    alpha255: float | None = None,
    batch_size: int = 500,
    seed: int = 0,
) -> dict[float, np.ndarray]:
    """Maximal loss variation of every example under an l-inf perturbation (App. B.5, Fig. 8, Table 1).

    For each radius eps' in ``eps255_list`` (0-255 scale) and every example x
    of ``split``: ``max CE(x') - CE(x)`` over ``|x' - x|_inf <= eps'/255``,
    ``x'`` in [0, 1], estimated by untargeted l-inf PGD on the cross-entropy:
    a uniform random start in the ball, then ``steps`` signed-gradient steps
    of size ``alpha255/255`` with projection. The paper does not state the
    attack's steps or step size for B.5; the defaults are 10 steps (as
    everywhere else in the paper) of ``alpha255 = eps'/4`` (0-255 scale), so
    the iterates can cross the ball 1.25 times from any start.

    Unlike :func:`arlib.attacks.pgd`, which returns the last iterate, the
    **largest** loss over all iterates (random start included) is kept: the
    loss along PGD's path is not monotone, and every iterate is a feasible
    point, so the best one is the tightest lower bound on the maximum. The
    result is floored at 0 because x' = x is feasible, so the true maximal
    increase is >= 0 (a random start that lowers the loss must not report a
    negative "maximal" variation). eps' = 0 gives exactly 0.

    Eval mode, fp32, input gradients only (parameters frozen). Deterministic
    given ``seed`` and ``batch_size``: one CPU ``torch.Generator`` seeded with
    ``seed`` per radius (the same uniform draws, scaled, for every radius),
    consumed batch by batch.

    Returns:
        ``{eps': float32 array (N,)}`` in the order of ``eps255_list``.
    """
    _check_fp32(model)
    device = _device(model)
    result: dict[float, np.ndarray] = {}
    for eps255 in eps255_list:
        if eps255 < 0:
            raise ValueError(f"eps must be >= 0, got {eps255}")
        if eps255 == 0 or len(split) == 0:
            result[eps255] = np.zeros(len(split), np.float32)
            continue
        eps = from_255(eps255)
        alpha = from_255(eps255 / 4 if alpha255 is None else alpha255)
        gen = torch.Generator().manual_seed(seed)
        out = []
        with attack_context(model, "eval"):
            for _, x, y in _batches(split, transform, batch_size, device):
                out.append(_max_loss_increase(model, x, y, eps, alpha, steps, gen).cpu())
        result[eps255] = torch.cat(out).numpy().astype(np.float32)
    return result


def variation_stats(variations: Mapping[float, np.ndarray]) -> dict[float, dict[str, float]]:
    """Mean and standard deviation (population, ddof=0) over examples per radius: the "mean ± std" cells of Table 1 (App. B.5)."""
    out = {}
    for eps, v in variations.items():
        v = np.asarray(v, dtype=np.float64)
        if v.size == 0:
            out[eps] = dict(mean=float("nan"), std=float("nan"), median=float("nan"), max=float("nan"), n=0)
            continue
        out[eps] = dict(mean=float(v.mean()), std=float(v.std()), median=float(np.median(v)), max=float(v.max()), n=int(v.size))
    return out


def pgd_outcomes(
    model: nn.Module,
    split: Split,
    transform,
    eps255: float = 8,
    alpha255: float = 2,
    steps: int = 10,
    seed: int = 0,
    batch_size: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example outcomes of l-inf PGD (App. D.2): ``(clean_correct, robust)``, two bool arrays of len(split).

    Attack: :func:`arlib.attacks.pgd` in eval mode, random start, ``steps``
    steps of ``alpha255/255``, radius ``eps255/255`` (App. D.2: 10 steps of 2,
    radius 8), last iterate, in fp32; its random start draws from a CPU
    generator seeded with ``seed`` (deterministic given ``seed`` and
    ``batch_size``). ``robust``: correct when clean and under attack (a
    misclassified example is not robust, since x itself is in the ball).
    """
    _check_fp32(model)
    device = _device(model)
    gen = torch.Generator().manual_seed(seed)
    clean, robust = [], []
    with _eval_mode(model):
        for _, x, y in _batches(split, transform, batch_size, device):
            with torch.no_grad():
                correct = model(x).argmax(1) == y
            x_adv = pgd(model, x, y, from_255(eps255), from_255(alpha255), steps, random_start=True, mode="eval", generator=gen)
            with torch.no_grad():
                robust.append((correct & (model(x_adv).argmax(1) == y)).cpu().numpy())
            clean.append(correct.cpu().numpy())
    empty = np.zeros(0, dtype=bool)
    return (np.concatenate(clean) if clean else empty), (np.concatenate(robust) if robust else empty)


def pgd_summary(clean_correct: np.ndarray, robust: np.ndarray, eps255: float, alpha255: float, steps: int) -> dict[str, float]:
    """Accuracy under PGD in both conventions (the "PGD" rows of Tables 3-6, Fig. 12), from per-example outcomes.

    Returns (accuracies in %): ``clean_acc``; ``adv_acc_all``: robust examples
    over all N (RobustBench's robust accuracy); ``adv_acc_correct``: the same
    count over the ``n_correct`` examples correct when clean - the paper's
    convention (App. D.2: "we only consider clean examples classified correctly
    originally"); ``n``, ``n_correct``, ``n_robust``. So ``adv_acc_all =
    adv_acc_correct * clean_acc / 100``.
    """
    n, n_correct, n_robust = int(len(clean_correct)), int(np.sum(clean_correct)), int(np.sum(robust))
    nan = float("nan")
    return dict(
        clean_acc=100.0 * n_correct / n if n else nan,
        adv_acc_all=100.0 * n_robust / n if n else nan,
        adv_acc_correct=100.0 * n_robust / n_correct if n_correct else nan,
        n=n,
        n_correct=n_correct,
        n_robust=n_robust,
        eps255=float(eps255),
        alpha255=float(alpha255),
        steps=int(steps),
    )


def pgd_accuracy(
    model: nn.Module,
    split: Split,
    transform,
    eps255: float = 8,
    alpha255: float = 2,
    steps: int = 10,
    seed: int = 0,
    batch_size: int = 500,
) -> dict[str, float]:
    """:func:`pgd_summary` of :func:`pgd_outcomes` (same arguments): accuracy under PGD, both conventions."""
    clean, robust = pgd_outcomes(model, split, transform, eps255, alpha255, steps, seed, batch_size)
    return pgd_summary(clean, robust, eps255, alpha255, steps)


# ----------------------------------------------------------------------------- singular values (App. B.2)


def two_group_std_difference(std_a: Mapping[str, float], std_b: Mapping[str, float]) -> dict[str, Any]:
    """The two-group comparison of per-layer singular-value stds of Appendix B.2 (Fig. 5c/d, 11c/d).

    ``std_a``: per-layer std of the network with AR strength 4 (sigma4_i),
    ``std_b``: the same layers with AR strength 16 (sigma16_i). Group
    ``first``: layers with sigma4_i > sigma16_i (std decreased under stronger
    AR), quantity sigma4_i - sigma16_i (> 0); group ``second``: all others,
    sigma4_i <= sigma16_i, quantity sigma16_i - sigma4_i (>= 0). A tie
    (equal stds) goes to the second group - the paper leaves ties open; this
    matches :func:`arlib.book.paper.b2_quantities` - where it adds 0 to the sum
    and 1 to the count. Pure function.

    Returns ``first_sum``, ``first_mean``, ``first_n``, ``first_layers`` and
    the same for ``second`` (mean NaN for an empty group), ``n_layers``.
    Raises ``ValueError`` if the two dicts do not name the same layers.
    """
    if set(std_a) != set(std_b):
        raise ValueError(f"layers differ: only in a {sorted(set(std_a) - set(std_b))}, only in b {sorted(set(std_b) - set(std_a))}")
    first = {k: float(std_a[k]) - float(std_b[k]) for k in std_a if std_a[k] > std_b[k]}
    second = {k: float(std_b[k]) - float(std_a[k]) for k in std_a if not std_a[k] > std_b[k]}

    def group(d: dict[str, float], prefix: str) -> dict[str, Any]:
        s = math.fsum(d.values())
        return {
            f"{prefix}_sum": s,
            f"{prefix}_mean": s / len(d) if d else float("nan"),
            f"{prefix}_n": len(d),
            f"{prefix}_layers": list(d),
        }

    return {**group(first, "first"), **group(second, "second"), "n_layers": len(std_a)}


# ----------------------------------------------------------------------------- everything for one network


def _describe(v: np.ndarray) -> dict[str, float]:
    v = np.asarray(v, dtype=np.float64)
    return dict(mean=float(v.mean()), std=float(v.std()), median=float(np.median(v)), n=int(v.size)) if v.size else dict(n=0)


def _spectral(model: nn.Module, example_input: torch.Tensor) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per-layer singular-value std (both kinds; Fig. 5c/d, 11c/d) and spectral complexity (Definition 7)."""
    from . import spectral

    with torch.no_grad():
        sizes = spectral.record_input_sizes(model, example_input)
        std_op = spectral.singular_value_std(model, sizes, kind="operator")
        std_rs = spectral.singular_value_std(model, sizes, kind="reshaped")
        sc = spectral.spectral_complexity(model, sizes)
    names = list(std_op)
    summary = {
        "sv_std_operator": std_op,
        "sv_std_reshaped": std_rs,
        "sv_std_operator_stats": _describe(np.array([std_op[k] for k in names])),
        "sv_std_reshaped_stats": _describe(np.array([std_rs[k] for k in names])),
        "spectral_norms": sc.norms,
        "spectral_complexity": sc.value,
        "log_spectral_complexity": sc.log_value,
        "input_sizes": {k: list(v) for k, v in sizes.items()},
    }
    arrays = {
        "layer_names": np.array(names, dtype=np.str_),
        "sv_std_operator": np.array([std_op[k] for k in names], np.float32),
        "sv_std_reshaped": np.array([std_rs[k] for k in names], np.float32),
        "spectral_norms": np.array([sc.norms[k] for k in names], np.float32),
    }
    return summary, arrays


def analyse(
    model: nn.Module,
    dataset,
    input_size: int | tuple[int, int],
    seed: int = 0,
    loss_variation_eps: Sequence[float] = (1, 2, 4),
    eval_cfg=None,
    loss_variation_steps: int = 10,
    attack_split: Split | None = None,
    pgd: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every measurement of Appendix B / D on one trained network.

    On the training split (no augmentation, as the paper's training
    loss/accuracy) and the test split of ``dataset`` (:class:`arlib.data.Dataset`),
    with :func:`arlib.data.test_transform`:

    * loss, accuracy and their gaps (Tables 2-6; Fig. 3, 6, 7);
    * margins and their statistics on both splits (App. B.3; Fig. 4, 10);
    * test true-class probabilities and losses (Fig. 5a/b, 11a/b);
    * maximal loss variation per test example for each eps' in
      ``loss_variation_eps`` (App. B.5; Fig. 8, Table 1), ``loss_variation_steps``
      PGD steps of eps'/4;
    * PGD accuracy, both conventions (App. D.2; Tables 3-6 "PGD", Fig. 12),
      with ``eval_cfg`` (:class:`arlib.config.EvalConfig`, default: 10 steps
      of 2, radius 8, batch 500);
    * per-layer singular-value std, operator and reshaped views (Fig. 5c/d,
      11c/d; App. B.2) and the spectral complexity (Definition 7, App. B.4.2),
      through :mod:`arlib.spectral`, at the conv input sizes recorded on a
      ``(1, C, input_size, input_size)`` input.

    The attacks (loss variation, PGD) run on ``attack_split`` (default: the
    test split), a subset where the test split is large; a ``pgd`` summary
    already measured (:func:`pgd_summary` of the run's stored outcomes) is
    taken as it is instead of attacking again.

    Returns:
        ``(summary, arrays)``. ``summary``: nested dict of JSON-able values
        (floats, ints, strings; non-finite floats as None). ``arrays``
        (for ``np.savez_compressed``; compact dtypes): ``train_margin``,
        ``test_margin``, ``test_loss`` (float32), ``test_true_prob`` (float16:
        absolute error <= 2.5e-4, far below any histogram bin),
        ``loss_variation_eps{e}`` (float32 per eps'), ``layer_names`` (str),
        ``sv_std_operator``, ``sv_std_reshaped``, ``spectral_norms`` (float32,
        in ``layer_names`` order).
    """
    from .config import EvalConfig
    from .data import test_transform

    cfg = eval_cfg if eval_cfg is not None else EvalConfig()
    transform = test_transform(dataset.name)
    device = _device(model)
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    example = torch.zeros(1, int(dataset.train.images.shape[1]), h, w, device=device)

    with strict_fp32():
        tr_logits, tr_y = predict(model, dataset.train, transform, cfg.batch_size)
        te_logits, te_y = predict(model, dataset.test, transform, cfg.batch_size)
        attacked = attack_split if attack_split is not None else dataset.test
        variations = loss_variation(model, attacked, transform, tuple(loss_variation_eps), steps=loss_variation_steps, batch_size=cfg.batch_size, seed=seed)
        pgd_acc = (
            dict(pgd) if pgd is not None else pgd_accuracy(model, attacked, transform, cfg.eps, cfg.alpha, cfg.steps, seed=seed, batch_size=cfg.batch_size)
        )
        spec_summary, spec_arrays = _spectral(model, example)

    train, test = loss_and_accuracy(tr_logits, tr_y), loss_and_accuracy(te_logits, te_y)
    tr_margin, te_margin = margins(tr_logits, tr_y), margins(te_logits, te_y)
    te_loss = cross_entropy_per_example(te_logits, te_y)
    te_prob = true_class_probability(te_logits, te_y)

    arrays: dict[str, np.ndarray] = {
        "train_margin": tr_margin.astype(np.float32),
        "test_margin": te_margin.astype(np.float32),
        "test_loss": te_loss.astype(np.float32),
        "test_true_prob": te_prob.astype(np.float16),
    }
    for eps, v in variations.items():
        arrays[f"loss_variation_eps{eps:g}"] = v.astype(np.float32)
    arrays.update(spec_arrays)

    summary = {
        "n_train": len(tr_y),
        "n_test": len(te_y),
        "n_loss_variation": len(attack_split) if attack_split is not None else len(te_y),
        "num_classes": int(te_logits.shape[1]),
        "train": train,
        "test": test,
        "gaps": gaps(train, test),
        "train_margin": margin_stats(tr_margin),
        "test_margin": margin_stats(te_margin),
        "test_true_prob": _describe(te_prob),
        "test_loss_per_example": _describe(te_loss),
        "loss_variation": {f"{eps:g}": s for eps, s in variation_stats(variations).items()},
        "pgd": pgd_acc,
        "spectral": spec_summary,
        "settings": {
            "seed": seed,
            "loss_variation": {"eps255": [float(e) for e in loss_variation_eps], "steps": loss_variation_steps, "alpha255": "eps/4"},
            "pgd": {"eps255": cfg.eps, "alpha255": cfg.alpha, "steps": cfg.steps},
            "batch_size": cfg.batch_size,
            "input_size": [h, w],
            "precision": "fp32 (no autocast, TF32 off)",
        },
    }
    return to_jsonable(summary), arrays
