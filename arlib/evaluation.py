"""What a trained network scores: clean outcomes per example, and the final evaluation of every run.

The final evaluation (:func:`final_evaluation`) is Tables 3-6's quantities for a trained model in fp32:
clean loss and accuracy on every training and test image of the run's dataset, and Appendix D.2's
PGD on :func:`arlib.data.attack_split`, with the per-example outcomes that the intervals of the
verdicts resample. :mod:`arlib.train` calls it when a run finishes and :func:`clean_eval` on the
monitored test images every epoch; ``arlib eval`` calls it on a stored run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import data
from .config import RunConfig


@torch.no_grad()
def clean_outcomes(model, split: data.Split, dataset: str, device, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Per-example clean ``(correct, loss)`` over ``split`` (bool, float32), fp32, eval mode, no augmentation."""
    model.eval()
    transform = data.test_transform(dataset)
    correct, loss = [], []
    for start in range(0, len(split), batch_size):
        x = transform(split.images[start : start + batch_size].to(device))
        y = split.labels[start : start + batch_size].to(device)
        logits = model(x).float()
        loss.append(F.cross_entropy(logits, y, reduction="none").cpu().numpy())
        correct.append((logits.argmax(1) == y).cpu().numpy())
    return np.concatenate(correct), np.concatenate(loss).astype(np.float32)


def clean_eval(model, split: data.Split, dataset: str, device, batch_size: int = 500) -> dict:
    """Clean cross-entropy and accuracy (%) over ``split``, fp32, eval mode, no augmentation."""
    correct, loss = clean_outcomes(model, split, dataset, device, batch_size)
    return {"loss": float(loss.astype(np.float64).mean()), "acc": 100 * float(correct.mean())}


def final_evaluation(model, ds: data.Dataset, cfg: RunConfig, device) -> tuple[dict, dict[str, np.ndarray]]:
    """Tables 3-6's quantities for a trained model (fp32), and the per-example outcomes behind them.

    Clean loss and accuracy on every training image and every test image of ``ds``; PGD
    (Appendix D.2, ``cfg.eval``) on :func:`arlib.data.attack_split`. The outcomes (``train_index``,
    ``train_correct``, ``train_loss``, ``test_index``, ``test_correct``, ``test_loss``,
    ``pgd_index``, ``pgd_clean_correct``, ``pgd_robust``; indices into the full splits) are
    what intervals over test images are computed from (bootstrap over examples).
    """
    from .analysis import pgd_outcomes, pgd_summary

    tr_correct, tr_loss = clean_outcomes(model, ds.train, cfg.data.dataset, device, cfg.eval.batch_size)
    te_correct, te_loss = clean_outcomes(model, ds.test, cfg.data.dataset, device, cfg.eval.batch_size)
    tr_acc, te_acc = 100 * float(tr_correct.mean()), 100 * float(te_correct.mean())
    tr_l, te_l = float(tr_loss.astype(np.float64).mean()), float(te_loss.astype(np.float64).mean())
    out = {"train_acc": tr_acc, "test_acc": te_acc, "delta_acc": tr_acc - te_acc, "train_loss": tr_l, "test_loss": te_l, "delta_loss": te_l - tr_l}
    outcomes = {
        "train_index": ds.train.positions().numpy().astype(np.int32),
        "train_correct": tr_correct,
        "train_loss": tr_loss,
        "test_index": ds.test.positions().numpy().astype(np.int32),
        "test_correct": te_correct,
        "test_loss": te_loss,
    }
    if cfg.eval.steps > 0:
        attacked = data.attack_split(ds, cfg.eval)
        e = cfg.eval
        clean, robust = pgd_outcomes(
            model, attacked, data.test_transform(cfg.data.dataset), e.eps, e.alpha, e.steps, seed=cfg.train.seed + 12345, batch_size=e.batch_size
        )
        r = pgd_summary(clean, robust, e.eps, e.alpha, e.steps)
        out.update({"pgd_acc_all": r["adv_acc_all"], "pgd_acc_correct": r["adv_acc_correct"], "pgd_n": r["n"], "pgd_n_clean_correct": r["n_correct"]})
        outcomes.update(pgd_index=attacked.positions().numpy().astype(np.int32), pgd_clean_correct=clean, pgd_robust=robust)
    return out, outcomes


def final_metrics(model, ds: data.Dataset, cfg: RunConfig, device) -> dict:
    """Tables 3-6's quantities for a trained model (fp32): :func:`final_evaluation` without the per-example outcomes."""
    return final_evaluation(model, ds, cfg, device)[0]
