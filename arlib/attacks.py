"""l-inf attacks: PGD (Madry et al. 2018), FGSM (Goodfellow et al. 2015) and, to check PGD, APGD
with the cross-entropy or the DLR loss (Croce & Hein 2020, the gradient attacks of AutoAttack).

Both take images in [0, 1] and ``eps`` / ``alpha`` in the same [0, 1] units
(the callers, :mod:`arlib.train` and :mod:`arlib.analysis`, divide the paper's 0-255
values by 255).
Gradients are taken with respect to the input only: parameters are frozen
(``requires_grad=False``) for the duration of the attack, so no parameter
gradient is computed or accumulated, and the model's mode is set explicitly
(``mode="eval"`` by default; batch-norm models behave differently in
``"train"``) and restored afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F


@contextmanager
def attack_context(model: nn.Module, mode: str) -> Iterator[None]:
    """Put ``model`` in ``mode`` ("train"/"eval") with frozen parameters; restore both after."""
    if mode not in ("train", "eval"):
        raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.train(mode == "train")
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: torch.autocast | None) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():  # attacks may be called from inside a no_grad block
        return _input_grad_enabled(model, x, y, autocast)


def _input_grad_enabled(model, x, y, autocast) -> torch.Tensor:
    if autocast is not None:
        with autocast:
            logits = model(x)
    else:
        logits = model(x)
    # Summed (not mean) loss: the sign of the gradient is all PGD uses, and
    # the sum keeps per-example gradients independent of the batch size.
    loss = F.cross_entropy(logits.float(), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    mode: str = "eval",
    generator: torch.Generator | None = None,
    autocast: torch.autocast | None = None,
) -> torch.Tensor:
    """Untargeted l-inf projected gradient descent (Madry et al. 2018).

    Args:
        model: maps images in [0, 1] (N, C, H, W) to logits (N, K).
        x: clean images in [0, 1]; y: int64 labels (N,).
        eps: radius of the l-inf ball, in [0, 1] units (8/255 in the paper's evaluation).
        alpha: step size (2/255 in the paper); steps: number of steps (10 in the paper).
        random_start: start from a uniform point in the ball (True, as in the paper).
        mode: model mode while attacking, "eval" (default) or "train"; restored after.
        generator: torch RNG for the random start (for reproducible training runs).
        autocast: optional autocast context (bf16 on CPU, AMP on CUDA) for the forward pass.

    Returns:
        Adversarial images, same shape as ``x``, with ``|x_adv - x|_inf <= eps`` and values in [0, 1].

    Example::

        x_adv = pgd(model, x, y, eps=8/255, alpha=2/255, steps=10)
        robust_acc = (model(x_adv).argmax(1) == y).float().mean()
    """
    x = x.detach()
    if eps == 0 or steps == 0:
        return x.clone()
    with attack_context(model, mode):
        if random_start:
            noise = torch.rand(x.shape, generator=generator, device="cpu" if generator is None else generator.device)
            delta = (noise.to(x.device, x.dtype) * 2 - 1) * eps
            x_adv = (x + delta).clamp(0, 1)
        else:
            x_adv = x.clone()
        for _ in range(steps):
            grad = _input_grad(model, x_adv, y, autocast)
            x_adv = x_adv.detach() + alpha * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    mode: str = "eval",
    autocast: torch.autocast | None = None,
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size ``eps``.

    Same conventions as :func:`pgd` (images in [0, 1], ``eps`` in [0, 1] units,
    explicit ``mode``). Returns ``clamp(x + eps * sign(grad), 0, 1)``.

    Example::

        x_adv = fgsm(model, x, y, eps=8/255)
    """
    x = x.detach()
    if eps == 0:
        return x.clone()
    with attack_context(model, mode):
        grad = _input_grad(model, x, y, autocast)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


APGD_LOSSES = ("ce", "dlr")


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 100,
    loss: str = "ce",
    n_restarts: int = 1,
    seed: int = 0,
    mode: str = "eval",
) -> torch.Tensor:
    """Auto-PGD (Croce & Hein 2020): step size adapted from the loss's progress, momentum, best iterate.

    The implementation is ``torchattacks.APGD`` (a port of the AutoAttack authors' code, installed
    with ``pip install -e '.[audit]'``); this function fixes its conventions to :func:`pgd`'s:
    images in [0, 1], ``eps`` in [0, 1] units, explicit ``mode``, parameters frozen, fp32.
    ``loss`` "ce" (cross-entropy) or "dlr" (the difference of logits ratio, invariant to the
    logits' scale, so a network that saturates its softmax cannot hide the gradient from it).
    ``seed`` seeds torch's global RNG for the random start (torchattacks draws from it).

    Returns adversarial images with ``|x_adv - x|_inf <= eps``, values in [0, 1]; for an example
    the attack fails on, the clean image (AutoAttack's convention).

    Example::

        x_adv = apgd(model, x, y, eps=8/255, loss="dlr")
    """
    if loss not in APGD_LOSSES:
        raise ValueError(f"loss must be one of {APGD_LOSSES}, got {loss!r}")
    try:
        import torchattacks
    except ImportError:
        raise ImportError("APGD needs torchattacks: pip install -e '.[audit]'") from None
    x = x.detach()
    if eps == 0 or steps == 0 or len(x) == 0:
        return x.clone()
    with attack_context(model, mode):
        attack = torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=n_restarts, seed=seed, loss=loss)
        # torchattacks switches the model's mode itself: make it the one attack_context set
        train = mode == "train"
        attack.set_model_training_mode(model_training=train, batchnorm_training=train, dropout_training=train)
        x_adv = attack(x, y)
    return x_adv.detach()
