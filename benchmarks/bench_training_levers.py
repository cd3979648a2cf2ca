"""``bench_training.py --levers``: one speed lever at a time on one network, each against the loop without it.

Levers that are not config switches are applied as patches for the measurement only
(``bias_promoted_to_fp32`` and ``adaptive_pool_head``: the model before the two changes the levers
run led to; ``params_not_frozen``: what arlib's attack avoids; ``torch.compile``, with
``--cold-compile`` for an empty inductor cache). Section ``levers_<net>`` of the results file.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from arlib import attacks
from arlib.models import resnet_cifar
from training_harness import BATCH, ArlibLoop, PeerLoop, count_flops, images, loadavg, measure, ratios, realistic_state, run_config

# ----------------------------------------------------------------------------- patches for levers that are not config switches


@contextlib.contextmanager
def bias_promoted_to_fp32():
    """Before: Fixup's float32 scalar bias added as is, which promotes a bf16 activation to float32."""
    orig = resnet_cifar.Bias.forward
    resnet_cifar.Bias.forward = lambda self, x: x + self.bias
    try:
        yield
    finally:
        resnet_cifar.Bias.forward = orig


@contextlib.contextmanager
def adaptive_pool_head():
    """Before: global pooling by adaptive_avg_pool2d, whose backward returns an NCHW gradient."""
    orig = resnet_cifar.CifarResNet.features

    def features(self, x):
        out = self.blocks(F.relu(self.norm1(self.conv1(self.normalize(x)))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    resnet_cifar.CifarResNet.features = features
    try:
        yield
    finally:
        resnet_cifar.CifarResNet.features = orig


@contextlib.contextmanager
def params_not_frozen():
    """Attack steps with parameters left requiring grad (autograd still skips their gradients, but keeps what they need)."""
    orig = attacks.attack_context

    @contextlib.contextmanager
    def ctx(model, mode):
        was = model.training
        model.train(mode == "train")
        try:
            yield
        finally:
            model.train(was)

    attacks.attack_context = ctx
    try:
        yield
    finally:
        attacks.attack_context = orig


# ----------------------------------------------------------------------------- the mode


def bench_levers(key: str, windows: int, batches: int, threads: int, which: list[str]) -> dict:
    """Each lever measured against the configuration without it, interleaved in one run."""
    split, source = images(batches * BATCH)
    cfg = run_config(key)
    state = realistic_state(cfg)
    flops = count_flops(cfg, state)
    fp32_nchw = cfg.replace(train={"precision": "fp32", "channels_last": False})
    print(f"levers on {cfg.model.name}, data {source}, {len(split)} images/window; load {loadavg()}")
    loops = {
        "peer": lambda: PeerLoop(cfg, state, threads, "peer"),
        "fp32_nchw": lambda: ArlibLoop(fp32_nchw, state, threads, "fp32_nchw"),
        "fp32_nchw_unfrozen": lambda: ArlibLoop(fp32_nchw, state, threads, "fp32_nchw_unfrozen", patch=params_not_frozen),
        "fp32_cl": lambda: ArlibLoop(fp32_nchw.replace(train={"channels_last": True}), state, threads, "fp32_cl"),
        "bf16_nchw": lambda: ArlibLoop(fp32_nchw.replace(train={"precision": "bf16"}), state, threads, "bf16_nchw"),
        "bf16_cl": lambda: ArlibLoop(cfg.replace(train={"precision": "bf16"}), state, threads, "bf16_cl"),
        "bf16_cl_bias_fp32": lambda: ArlibLoop(cfg.replace(train={"precision": "bf16"}), state, threads, "bf16_cl_bias_fp32", patch=bias_promoted_to_fp32),
        "bf16_cl_adaptive_pool": lambda: ArlibLoop(cfg.replace(train={"precision": "bf16"}), state, threads, "bf16_cl_adaptive_pool", patch=adaptive_pool_head),
        "bf16_cl_2threads": lambda: ArlibLoop(cfg.replace(train={"precision": "bf16"}), state, 2, "bf16_cl_2threads"),
        "bf16_cl_1thread": lambda: ArlibLoop(cfg.replace(train={"precision": "bf16"}), state, 1, "bf16_cl_1thread"),
        "bf16_cl_compile": lambda: ArlibLoop(cfg.replace(train={"precision": "bf16"}), state, threads, "bf16_cl_compile", compile=True),
    }
    chosen = [loops[w]() for w in which]
    res = measure(chosen, split, windows)
    rat = ratios(res, chosen[0].label)
    print(f"\n{'loop':<28s} {'img/s':>8s} {'GFLOP/s':>8s} {'vs ' + chosen[0].label:>12s} {'warm-up s':>10s}")
    for lab, r in res.items():
        r["gflops_per_s"] = round(flops["per_step"] * (r["images_per_s"] / BATCH) / 1e9, 2)
        r["ratio_vs_first"] = rat[lab]
        print(f"{lab:<28s} {r['images_per_s']:8.2f} {r['gflops_per_s']:8.1f} {rat[lab]:11.2f}x {r['warmup_s']:10.1f}")
    print(f"load average {loadavg()}")
    return {
        "net": cfg.model.name,
        "data": source,
        "images_per_window": len(split),
        "windows": windows,
        "threads": threads,
        "flops_per_step": flops["per_step"],
        "reference": chosen[0].label,
        "loops": res,
        "load_after": loadavg(),
    }
