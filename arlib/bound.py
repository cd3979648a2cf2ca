"""Theorem 3.1's bound (Appendix C), measured on a trained network's weights.

The measurement layer, next to :mod:`arlib.spectral` and :mod:`arlib.analysis`: from a
run's weights (``model.pt``) and its training set, :func:`bound_terms` computes the
quantities of the bound's first term and caches them in the run directory as
``bound.json``, which is committed with the results so that the book renders without
weights. The book's tables of these terms are :func:`arlib.book.report.bound_table` and
:func:`arlib.book.report.bound_layers`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import to_jsonable
from .store import Run, atomic_write_json

__all__ = ["BOUND_FILE", "BOUND_VERSION", "BoundUnavailable", "bound_terms"]


class BoundUnavailable(RuntimeError):
    """The bound terms of a run were never computed and its weights (``model.pt``) are not here."""


BOUND_FILE = "bound.json"
BOUND_VERSION = 1


def bound_terms(run: Run, data_root=None, recompute: bool = False, cache: bool = True) -> dict[str, Any]:
    """The measurable quantities of Theorem 3.1's bound (Appendix C) for one trained run.

    The first term of the bound is ``max{0, 1 - u/gamma}`` with
    ``u = min_{y != y'} ||w_y - w_y'||_2 * prod_{i<L} sigma_min^i * v_min``. Measured here:

    * ``w_min``: the smallest distance between two rows of the final linear layer's weight
      (``min_{y != y'} ||w_y - w_y'||_2``), with the pair;
    * per conv layer (the layers before the classifier), the operator singular values of
      :func:`arlib.spectral.layer_singular_values` (the circular-padding convolution on its
      recorded input size): ``sigma_min`` (smallest of the ``min(out, in)`` values the
      operator has), ``sigma_max``, the operator's input and output dimensions, and whether
      it is *wide* (fewer outputs than inputs: a non-trivial null space, so
      ``inf_{|d|=1} |W d| = 0``, although ``sigma_min`` of its nonzero spectrum may not be);
      ``log10_prod_sigma_min`` (sum of log10 ``sigma_min``) over all conv layers;
    * ``v_min`` proxy: for every correctly classified training example, the first-order
      (DeepFool) estimate of its l2 distance to the decision boundary in input space
      ([0, 1] pixels), ``margin / ||grad_x margin||_2``, with the margin of
      :func:`arlib.analysis.margins` (true logit minus the best other); reported: its
      minimum (``v_min``), 1% quantile, median and the number of examples;
    * ``u_min``: the smallest positive training margin (what the chain of inequalities
      bounds from below), and ``log10_u_lower = log10(w_min) + log10_prod_sigma_min +
      log10(v_min)``, the theorem's lower bound on it.

    Needs the run's weights (``model.pt``); the result is cached in ``bound.json`` in the
    run directory (``cache=True``) and read from there afterwards, so a results store
    without weights still renders. Raises :class:`BoundUnavailable` if neither is there.
    """
    path = run.file(BOUND_FILE)
    if path.exists() and not recompute:
        out = run.read_json(BOUND_FILE)  # the store's untrusted read: a damaged file is named, never a bare JSONDecodeError
        if out.get("version") == BOUND_VERSION:
            return out
    if not run.file("model.pt").exists():
        raise BoundUnavailable(f"run {run.hash[:8]}: no {BOUND_FILE} and no model.pt to compute it from")
    out = to_jsonable(_measure(run, data_root))
    if cache:
        atomic_write_json(path, out)
    return out


def _measure(run: Run, data_root) -> dict[str, Any]:
    """:func:`bound_terms` computed from the run's weights: load, then the bound's three factors, then the summary."""
    from . import data
    from .device import default_device
    from .networks import load_model

    cfg = run.config
    device = default_device()
    ds = data.prepare_run(cfg, data_root)
    model = load_model(run, device=device, num_classes=ds.num_classes)
    hw = data.input_size(cfg.data.dataset, ds.image_size)
    w_min, pair, fc_name = _classifier_distance(model)
    layers = _layer_spectra(model, fc_name, int(ds.train.images.shape[1]), hw, device)
    distances, margins = _boundary_distances(model, ds.train, data.test_transform(ds.name), device)
    input_dim = int(ds.train.images[0].numel()) if hw == ds.image_size else int(ds.train.images.shape[1]) * hw * hw
    return _summary(run.hash, w_min, pair, layers, distances, margins, input_dim)


def _classifier_distance(model) -> tuple[float, tuple[int, int], str]:
    """``min_{y != y'} ||w_y - w_y'||_2`` over the rows of the final linear layer, the pair, and that layer's name."""
    import torch
    import torch.nn as nn

    from .analysis import strict_fp32

    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    fc_name = [n for n, m in model.named_modules() if m is fc][0]
    with strict_fp32(), torch.no_grad():
        w = fc.weight.detach().double()
        dist = torch.cdist(w, w)
        dist.fill_diagonal_(float("inf"))
        k = int(torch.argmin(dist))
        return float(dist.flatten()[k]), (k // w.shape[0], k % w.shape[0]), fc_name


def _layer_spectra(model, fc_name: str, channels: int, hw: int, device) -> list[dict[str, Any]]:
    """Per layer before the classifier: the operator's smallest and largest singular values, its dimensions, and whether it is wide."""
    import torch
    import torch.nn as nn

    from . import spectral
    from .analysis import strict_fp32

    with strict_fp32(), torch.no_grad():
        sizes = spectral.record_input_sizes(model, torch.zeros(1, channels, hw, hw, device=device))
        svs = spectral.layer_singular_values(model, sizes)
    layers = []
    for name, module in model.named_modules():
        if name == fc_name or name not in svs:
            continue
        s = svs[name]
        if isinstance(module, nn.Conv2d):
            n1, n2 = sizes[name]
            s1, s2 = module.stride
            d_in, d_out = module.in_channels * n1 * n2, module.out_channels * (n1 // s1) * (n2 // s2)
        else:
            d_in, d_out = module.in_features, module.out_features
        layers.append(
            {
                "layer": name,
                "sigma_min": float(s.min()),
                "sigma_max": float(s.max()),
                "n_values": int(s.numel()),
                "dim_in": int(d_in),
                "dim_out": int(d_out),
                "wide": bool(d_out < d_in),
            }
        )
    return layers


def _boundary_distances(model, split, transform, device, batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """First-order distance to the boundary of every correctly classified example of ``split``
    (``margin / ||grad_x margin||_2``), and every positive margin (float64 arrays)."""
    import torch

    from .analysis import logit_margins, strict_fp32

    dists, margins_pos = [], []
    with strict_fp32():
        for start in range(0, len(split), batch_size):
            x = transform(split.images[start : start + batch_size].to(device)).float().requires_grad_(True)
            y = split.labels[start : start + batch_size].to(device).long()
            m = logit_margins(model(x), y)
            (g,) = torch.autograd.grad(m.sum(), x)
            gn = g.flatten(1).norm(dim=1)
            ok = (m > 0) & (gn > 0)
            dists.append((m[ok] / gn[ok]).detach().double().cpu())
            margins_pos.append(m[m > 0].detach().double().cpu())
    d = torch.cat(dists).numpy() if dists else np.zeros(0)
    mp = torch.cat(margins_pos).numpy() if margins_pos else np.zeros(0)
    return d, mp


def _summary(run_hash: str, w_min: float, pair: tuple[int, int], layers: list[dict], d: np.ndarray, mp: np.ndarray, input_dim: int) -> dict[str, Any]:
    """``bound.json``: the three factors, their quantiles, and the theorem's lower bound on ``u_min``."""
    logs = [math.log10(l["sigma_min"]) if l["sigma_min"] > 0 else -math.inf for l in layers]
    v_min = float(d.min()) if d.size else float("nan")
    log_prod = float(sum(logs)) if layers else float("nan")
    out = {
        "version": BOUND_VERSION,
        "hash": run_hash,
        "w_min": w_min,
        "w_min_pair": list(pair),
        "layers": layers,
        "n_layers": len(layers),
        "n_wide": sum(l["wide"] for l in layers),
        "log10_prod_sigma_min": log_prod,
        "log10_prod_sigma_min_not_wide": float(sum(v for v, l in zip(logs, layers) if not l["wide"])),
        "v_proxy": "first-order l2 distance to the decision boundary, margin / ||grad_x margin||_2, [0,1] pixel scale, correctly classified training examples",
        "v_min": v_min,
        "v_q01": float(np.quantile(d, 0.01)) if d.size else float("nan"),
        "v_median": float(np.median(d)) if d.size else float("nan"),
        "v_n": int(d.size),
        "input_dim": input_dim,
        "u_min": float(mp.min()) if mp.size else float("nan"),
        "u_median": float(np.median(mp)) if mp.size else float("nan"),
    }
    out["log10_u_lower"] = (math.log10(w_min) if w_min > 0 else -math.inf) + log_prod + (math.log10(v_min) if v_min > 0 else -math.inf)
    return out
