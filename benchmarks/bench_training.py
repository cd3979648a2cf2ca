"""Benchmark: one PGD-10 adversarial-training step, arlib vs the loop a torchattacks user writes.

The peer ("what a torchattacks user would write")::

    atk = torchattacks.PGD(model, eps=8/255, alpha=2/255, steps=10, random_start=True)
    x_adv = atk(x, y)
    model.train(); opt.zero_grad(); F.cross_entropy(model(x_adv), y).backward(); opt.step()

in fp32, NCHW, eager, with per-image torchvision augmentation when the profile
augments. arlib: :func:`arlib.train.train_epoch` itself (the code the grid
runs) on a window of the same images, with the run config of the profile the
network comes from (``paper`` for ResNet-56: augmentation on; ``cpu`` for the
cpu profile's network, read from ``profiles.get("cpu").model``: no
augmentation), batch size 128, precision ``auto`` (bf16 autocast where the CPU
has native bf16, fp32 master weights and loss) and channels_last.

Both loops start from the same weights: Fixup zero-initialises the last conv
of every residual branch and the classifier, so those get non-zero weights
first (He-scaled like the branch's first conv; PyTorch's default for the
classifier), which makes every gradient non-trivial.

Timing: a warm-up window per loop, then ``--windows`` timed windows of
``--batches`` steps each, *interleaved* (ABAB, order alternating) so that load
from other jobs on a shared machine hits both loops alike. Reported: images/s
(median over windows, wall clock and process CPU time) and the median of the
per-window ratios arlib/peer. Threads: the machine's cores are shared; the
thread count of each loop is part of what is measured (``--threads``; the peer
is also timed at PyTorch's default thread count, which is what its user gets).

FLOPs: counted with ``torch.utils.flop_counter.FlopCounterMode`` on one attack
step (forward + input gradient, parameters frozen) and one training step
(forward + backward with parameter gradients); a step = ``steps`` attack
passes + 1 training pass. Achieved GFLOP/s is shown next to the machine's
peak measured in the same run (large fp32 and bf16 matmuls, best of a few).

Modes (each well under 10 minutes on 2 cores; results merged into
``benchmarks/results/training.json``):

* default: peer vs arlib for ``--nets`` (``resnet56,cpu``), one section
  ``main_<net>`` per network;
* ``--levers``: one lever at a time on one network (``--lever-net``); section
  ``levers_<net>``. Levers that are not config switches are applied as
  patches for the measurement only (``bias_promoted_to_fp32`` and
  ``adaptive_pool_head``: the model before the two changes the levers run
  led to; ``params_not_frozen``: what arlib's attack avoids;
  ``torch.compile``, with ``--cold-compile`` for an empty inductor cache);
* ``--augmentation``: per-image torchvision crop+flip vs arlib's batched uint8 gather;
* ``--equivalence``: without random start, arlib's fp32 loop and the peer give
  the same adversarial examples and the same weights;
* ``--quality``: trains the cpu-profile network briefly with the peer loop,
  arlib (fast path) and arlib in fp32 NCHW (same seed, same data; arlib and
  arlib_fp32 share one random stream, a paired comparison) and prints clean
  and PGD accuracy of each.

Usage::

    python benchmarks/bench_training.py [--nets resnet56,cpu] [--windows 5] [--threads 1]
    python benchmarks/bench_training.py --levers [--lever-net cpu] [--which peer,bf16_cl,...]
    python benchmarks/bench_training.py --quality [--quality-train 500 --quality-epochs 10 --seeds 0,1]
    python benchmarks/bench_training.py --equivalence | --augmentation
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from arlib import attacks, data, device, models, profiles, train
from arlib import networks
from arlib.config import RunConfig, standard_adv
from arlib.errors import DataNotFoundError
from arlib.models import resnet_cifar

DEVICE = torch.device("cpu")
BATCH = 128
EPS, ALPHA, STEPS = 8, 2, 10  # 0-255 scale, as the paper
OUT = Path(__file__).resolve().parent / "results" / "training.json"
DEFAULT_THREADS = torch.get_num_threads()
ALLOCATOR = {"tuned": False}  # set once in main(): glibc malloc settings of the whole process


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                flags = open("/proc/cpuinfo").read()
                extra = [f for f in ("avx512_bf16", "amx_bf16", "avx512f") if f in flags]
                return f"{name} ({', '.join(extra)})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "default_threads": DEFAULT_THREADS,
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn_bf16": device.cpu_has_bf16(),
        "allocator": "tuned (arlib.device.tune_cpu_allocator, both loops)" if ALLOCATOR["tuned"] else "glibc defaults",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def matmul_peak(threads: int, n: int = 2048, reps: int = 4) -> dict:
    """Best-of-``reps`` GFLOP/s of an n x n x n matmul in fp32 and bf16 (the machine's practical peak)."""
    torch.set_num_threads(threads)
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t)
        out[str(dtype).replace("torch.", "")] = round(2 * n**3 / best / 1e9, 1)
    return out


# ----------------------------------------------------------------------------- data and networks


def images(n: int) -> tuple[data.Split, str]:
    """``n`` real CIFAR-10 training images (class-balanced), or random ones if the data is missing."""
    try:
        ds = data.load_dataset("cifar10")
        idx = data.balanced_indices(ds.train.labels, -(-n // 10), seed=0)[:n]
        return ds.train.subset(idx), f"cifar10 ({ds.source}, fingerprint {ds.fingerprint})"
    except DataNotFoundError:
        g = torch.Generator().manual_seed(0)
        return data.Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)), "random"


def net_name(key: str) -> str:
    """``cpu`` -> the cpu profile's network (read from the profile); anything else is a model name."""
    return profiles.get("cpu").model.name if key == "cpu" else key


def run_config(key: str) -> RunConfig:
    """The run config the grid would use for this network (paper profile for resnet56/110), batch 128."""
    prof = profiles.get("cpu") if key == "cpu" else profiles.get("paper")
    base = prof.base("cifar10")
    if key != "cpu":
        base = base.replace(model={"name": key})
    return base.replace(adv=standard_adv(EPS, "pgd", STEPS, ALPHA), train={"batch_size": BATCH})


def realistic_state(cfg: RunConfig, seed: int = 0) -> dict:
    """State dict of the network with every Fixup zero-init filled in (same for every loop)."""
    torch.manual_seed(seed)
    model = networks.build_model(cfg.replace(train={"channels_last": False}), 10, DEVICE)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, resnet_cifar.BasicBlock) and not m.bn:
                m.conv2.weight.normal_(0, float(m.conv1.weight.std()))
        model.fc.reset_parameters()
    return copy.deepcopy(model.state_dict())


def make_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    t = cfg.train
    return torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


# ----------------------------------------------------------------------------- the loops


class PeerLoop:
    """torchattacks PGD + plain fp32 training step, NCHW, eager; per-image torchvision augmentation."""

    def __init__(self, cfg: RunConfig, state: dict, threads: int, label: str = "peer", seed: int = 0):
        import torchattacks
        from torchvision.transforms import v2

        self.label, self.threads, self.cfg = label, threads, cfg
        mean, std = data.STATS["cifar10"]
        torch.manual_seed(seed)
        self.model = models.create(cfg.model.name, num_classes=10, mean=mean, std=std)
        self.model.load_state_dict(state)
        self.opt = make_optimizer(self.model, cfg)
        a = cfg.adv
        self.atk = torchattacks.PGD(self.model, eps=a.eps / 255, alpha=a.alpha / 255, steps=a.steps, random_start=True)
        self.aug = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]) if cfg.data.augment else None
        self.gen = torch.Generator().manual_seed(seed)

    def step(self, xb: torch.Tensor, yb: torch.Tensor) -> float:
        if self.aug is not None:
            xb = torch.stack([self.aug(img) for img in xb])
        x = xb.float() / 255
        x_adv = self.atk(x, yb)
        self.model.train()
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(x_adv), yb)
        loss.backward()
        self.opt.step()
        return loss.item()

    def run(self, split: data.Split) -> None:
        order = torch.randperm(len(split), generator=self.gen)
        bs = self.cfg.train.batch_size
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            self.step(split.images[idx], split.labels[idx])


class ArlibLoop:
    """arlib's own :func:`arlib.train.train_epoch` with ``cfg``'s settings (optionally patched or compiled)."""

    def __init__(self, cfg: RunConfig, state: dict, threads: int, label: str = "arlib", patch=None, compile: bool = False, seed: int = 0):
        self.label, self.threads, self.cfg, self.patch = label, threads, cfg, patch
        torch.manual_seed(seed)
        self.model = networks.build_model(cfg, 10, DEVICE)
        self.model.load_state_dict(state)
        self.opt = make_optimizer(self.model, cfg)
        self.precision = device.resolve_precision(cfg.train.precision, DEVICE)
        self.autocast = device.autocast_for(self.precision, DEVICE)
        self.gen = torch.Generator().manual_seed(seed)
        self.net = torch.compile(self.model) if compile else self.model

    def run(self, split: data.Split) -> None:
        with self.patch() if self.patch else contextlib.nullcontext():
            train.train_epoch(self.net, self.opt, split, self.cfg, self.gen, DEVICE, self.autocast)


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


# ----------------------------------------------------------------------------- FLOPs


def count_flops(cfg: RunConfig, state: dict) -> dict:
    """FLOPs of one attack pass (forward + input gradient) and one training pass, batch ``BATCH``, fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    mean, std = data.STATS["cifar10"]
    model = models.create(cfg.model.name, num_classes=10, mean=mean, std=std)
    model.load_state_dict(state)
    x, y = torch.rand(BATCH, 3, 32, 32), torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as fc:
        with attacks.attack_context(model, "train"):
            # = attacks._input_grad's work (FlopCounterMode's module hooks do not support
            # autograd.grad): with parameters frozen, backward computes input gradients only.
            xr = x.clone().requires_grad_(True)
            F.cross_entropy(model(xr), y, reduction="sum").backward()
    attack = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc:
        model.train()
        F.cross_entropy(model(x), y).backward()
    trainf = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    fwd = fc.get_total_flops()
    steps = cfg.adv.steps
    return {
        "forward": fwd,
        "attack_pass": attack,
        "train_pass": trainf,
        "per_step": steps * attack + trainf,
        "per_step_nominal_11_fwd_bwd": (steps + 1) * trainf,
        "per_image_per_step": (steps * attack + trainf) / BATCH,
    }


# ----------------------------------------------------------------------------- timing


def measure(loops: list, split: data.Split, windows: int, log=print) -> dict:
    """Warm up each loop once, then ``windows`` interleaved timed windows (order alternating)."""
    res = {l.label: {"wall": [], "cpu": [], "load": []} for l in loops}
    for l in loops:
        torch.set_num_threads(l.threads)
        t = time.perf_counter()
        l.run(split)
        res[l.label]["warmup_s"] = time.perf_counter() - t
        log(f"  warm-up {l.label:<28s} {res[l.label]['warmup_s']:7.2f} s")
    for w in range(windows):
        for l in loops if w % 2 == 0 else loops[::-1]:
            torch.set_num_threads(l.threads)
            t, c = time.perf_counter(), time.process_time()
            l.run(split)
            res[l.label]["wall"].append(time.perf_counter() - t)
            res[l.label]["cpu"].append(time.process_time() - c)
            res[l.label]["load"].append(os.getloadavg()[0])
        log(f"  window {w + 1}/{windows}: " + "  ".join(f"{l.label}={res[l.label]['wall'][-1]:.2f}s" for l in loops) + f"  load={os.getloadavg()[0]:.2f}")
    torch.set_num_threads(DEFAULT_THREADS)
    n = len(split)
    out = {}
    for l in loops:
        r = res[l.label]
        out[l.label] = {
            "threads": l.threads,
            "warmup_s": round(r["warmup_s"], 3),
            "window_wall_s": [round(v, 3) for v in r["wall"]],
            "window_cpu_s": [round(v, 3) for v in r["cpu"]],
            "images_per_s": round(n / statistics.median(r["wall"]), 3),
            "images_per_cpu_s": round(n / statistics.median(r["cpu"]), 3),
        }
    return out


def ratios(res: dict, ref: str, key: str = "window_wall_s") -> dict:
    """Median over windows of t_ref / t_loop (images/s of the loop over the reference's)."""
    return {lab: round(statistics.median(a / b for a, b in zip(res[ref][key], r[key])), 3) for lab, r in res.items()}


QUALITY_SETTINGS = ("net", "n_train", "n_test", "epochs", "batch_size", "lr", "milestones", "eps")


def merge_results(section: str, value) -> None:
    """Write one section of the results file (under a lock: several benchmark processes may finish together).

    A quality section whose settings equal the stored one's is merged run by run
    (a later run of the same loop and seed replaces the earlier), so seeds can be
    trained by parallel processes.
    """
    from filelock import FileLock

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(OUT) + ".lock"):
        doc = json.loads(OUT.read_text()) if OUT.exists() else {}
        old = doc.get(section)
        if section.startswith("quality") and isinstance(old, dict) and all(old.get(k) == value.get(k) for k in QUALITY_SETTINGS):
            fresh = {(r["loop"], r["seed"]) for r in value["runs"]}
            value = {**value, "runs": [r for r in old["runs"] if (r["loop"], r["seed"]) not in fresh] + value["runs"]}
            value.update(quality_means(value["runs"]))
        doc[section] = value
        doc["machine_last_run"] = machine()
        tmp = OUT.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(OUT)


def quality_means(runs: list[dict]) -> dict:
    """``mean_<loop>`` and ``std_<loop>`` (over seeds) of the accuracies of quality runs."""
    out = {}
    for kind in dict.fromkeys(r["loop"] for r in runs):
        rs = [r for r in runs if r["loop"] == kind]
        for stat, f in (("mean", statistics.mean), ("std", statistics.stdev)):
            if stat == "std" and len(rs) < 2:
                continue
            out[f"{stat}_{kind}"] = {k: round(f([r[k] for r in rs]), 2) for k in ("train_acc", "test_acc", "pgd_acc_all", "pgd_acc_correct")}
    return out


def conv_share(loop: "ArlibLoop", split: data.Split, flops_per_step: float) -> dict:
    """One profiled window of ``loop``: the share of its op time spent in convolutions.

    With that share, ``images_per_s / share`` is what the loop would reach if every
    other op (elementwise, casts, optimizer, Python) took no time at all: an upper
    bound on what any rewrite that keeps the convolutions can give.
    """
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(loop.threads)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loop.run(split)
    torch.set_num_threads(DEFAULT_THREADS)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(
        e.self_cpu_time_total for e in events if e.key in ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::convolution_backward_overrideable")
    )
    steps = -(-len(split) // BATCH)
    return {
        "conv_share_of_op_time": round(conv / total, 3),
        "conv_gflops_per_s": round(flops_per_step * steps / (conv / 1e6) / 1e9, 1),
        "note": "torch.profiler self CPU time of aten convolution ops (forward and backward) over all aten ops, one window",
    }


# ----------------------------------------------------------------------------- modes


def bench_main(nets: list[str], windows: int, batches: int, threads: int, peer_default: bool, save: bool = True) -> dict:
    split, source = images(batches * BATCH)
    print(f"data: {source}, {len(split)} images per window ({batches} x {BATCH}); load {loadavg()}")
    peaks = {f"threads_{t}": matmul_peak(t) for t in sorted({threads, DEFAULT_THREADS})}
    print(f"matmul peak GFLOP/s (2048^3, best of 4): {peaks}")
    out = {
        "data": source,
        "batch_size": BATCH,
        "batches_per_window": batches,
        "windows": windows,
        "threads_arlib": threads,
        "matmul_peak_gflops": peaks,
        "load_before": loadavg(),
        "nets": {},
    }
    for key in nets:
        cfg = run_config(key)
        name = cfg.model.name
        state = realistic_state(cfg)
        flops = count_flops(cfg, state)
        prec = device.resolve_precision(cfg.train.precision, DEVICE)
        print(
            f"\n== {name} ({'cpu profile' if key == 'cpu' else 'paper profile'}; augment={cfg.data.augment}; "
            f"arlib: precision {prec}, channels_last {cfg.train.channels_last}, {threads} thread(s))"
        )
        print(
            f"   FLOPs per step (batch {BATCH}): {flops['per_step'] / 1e9:.1f} G counted = {cfg.adv.steps} x "
            f"{flops['attack_pass'] / 1e9:.2f} G attack pass + {flops['train_pass'] / 1e9:.2f} G training pass"
        )
        loops = [PeerLoop(cfg, state, threads, "peer")]
        if peer_default and DEFAULT_THREADS != threads:
            loops.append(PeerLoop(cfg, state, DEFAULT_THREADS, f"peer_{DEFAULT_THREADS}threads"))
        loops.append(ArlibLoop(cfg, state, threads, "arlib"))
        res = measure(loops, split, windows)
        rat = ratios(res, "peer")
        rat_cpu = ratios(res, "peer", "window_cpu_s")
        for lab, r in res.items():
            r["gflops_per_s"] = round(flops["per_step"] * (r["images_per_s"] / BATCH) / 1e9, 2)
            r["ratio_vs_peer"] = rat[lab]
            r["ratio_vs_peer_cpu_time"] = rat_cpu[lab]
            peak = peaks[f"threads_{r['threads']}"]
            print(
                f"   {lab:<18s} {r['images_per_s']:8.2f} img/s  ({r['threads']} thr)  {r['gflops_per_s']:7.1f} GFLOP/s  (peak fp32 "
                f"{peak['float32']}, bf16 {peak['bfloat16']})  ratio vs peer {rat[lab]:.2f}x  (cpu-time ratio {rat_cpu[lab]:.2f}x)"
            )
        arlib_loop = next(l for l in loops if l.label == "arlib")
        share = conv_share(arlib_loop, split, flops["per_step"])
        res["arlib"].update(share)
        ceiling = res["arlib"]["images_per_s"] / share["conv_share_of_op_time"] / res["peer"]["images_per_s"]
        res["arlib"]["ceiling_ratio_vs_peer_convs_only"] = round(ceiling, 2)
        print(
            f"   arlib's convolutions: {100 * share['conv_share_of_op_time']:.0f}% of its op time, at {share['conv_gflops_per_s']:.0f} GFLOP/s "
            f"(bf16 matmul peak {peaks[f'threads_{threads}']['bfloat16']}); with every other op free: {ceiling:.2f}x the peer"
        )
        if f"peer_{DEFAULT_THREADS}threads" in res:
            print(f"   arlib / peer at PyTorch's default {DEFAULT_THREADS} threads: {ratios(res, f'peer_{DEFAULT_THREADS}threads')['arlib']:.2f}x")
        net_res = {
            "profile": "cpu" if key == "cpu" else "paper",
            "augment": cfg.data.augment,
            "precision": prec,
            "channels_last": cfg.train.channels_last,
            "threads": threads,
            "data": source,
            "windows": windows,
            "images_per_window": len(split),
            "flops": flops,
            "matmul_peak_gflops": peaks,
            "loops": res,
            "ratio_arlib_over_peer": rat["arlib"],
            "load_after": loadavg(),
            "machine": machine(),
        }
        if f"peer_{DEFAULT_THREADS}threads" in res:
            net_res[f"ratio_arlib_over_peer_{DEFAULT_THREADS}threads"] = ratios(res, f"peer_{DEFAULT_THREADS}threads")["arlib"]
        out["nets"][name] = net_res
        if save:
            merge_results(f"main_{name}", net_res)
    out["load_after"] = loadavg()
    print(f"\nload average before {out['load_before']}, after {out['load_after']}")
    return out


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


def bench_augmentation(reps: int = 20) -> dict:
    """Per-image torchvision crop+flip vs arlib's batched uint8 gather, on one batch of 128."""
    from torchvision.transforms import v2

    split, _ = images(BATCH)
    aug = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
    g = torch.Generator().manual_seed(0)
    tf = data.train_transform("cifar10")

    def per_image():
        return torch.stack([aug(img) for img in split.images]).float() / 255

    def batched():
        return tf(split.images, g)

    out = {}
    for threads in sorted({1, DEFAULT_THREADS}):
        torch.set_num_threads(threads)
        ts = {"per_image_torchvision": [], "batched_uint8": []}
        per_image(), batched()
        for i in range(reps):  # interleaved
            for name, f in (("per_image_torchvision", per_image), ("batched_uint8", batched))[:: 1 if i % 2 == 0 else -1]:
                t = time.perf_counter()
                f()
                ts[name].append(time.perf_counter() - t)
        out[f"threads_{threads}"] = {name + "_ms_per_batch": round(1e3 * statistics.median(v), 3) for name, v in ts.items()}
    torch.set_num_threads(DEFAULT_THREADS)
    print(f"augmentation (crop 4 + flip) of a batch of {BATCH} uint8 images to float: {out}")
    return out


# ----------------------------------------------------------------------------- quality


def train_and_eval(loop_kind: str, cfg: RunConfig, train_split: data.Split, test_split: data.Split, seed: int, epochs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    state = models_state_fresh(cfg, seed)
    if loop_kind == "peer":
        loop = PeerLoop(cfg, state, threads, seed=seed)
    elif loop_kind == "arlib_fp32":  # arlib's loop in fp32 NCHW: same random stream as "arlib", so a paired comparison
        loop = ArlibLoop(cfg.replace(train={"precision": "fp32", "channels_last": False}), state, threads, seed=seed)
    else:
        loop = ArlibLoop(cfg, state, threads, seed=seed)
    model = loop.model
    # The profile's schedule: lr divided by lr_gamma at its milestones (scaled to ``epochs``).
    scale = epochs / cfg.train.epochs
    scheduler = torch.optim.lr_scheduler.MultiStepLR(loop.opt, [round(m * scale) for m in cfg.train.milestones], cfg.train.lr_gamma)
    t = time.perf_counter()
    for _ in tqdm(range(epochs), desc=f"{loop_kind} seed {seed}", leave=False):
        loop.run(train_split)
        scheduler.step()
    secs = time.perf_counter() - t
    model = model.to(memory_format=torch.contiguous_format).float()
    tr = train.clean_eval(model, train_split, "cifar10", DEVICE)
    te = train.clean_eval(model, test_split, "cifar10", DEVICE)
    adv = train.pgd_eval(model, test_split, "cifar10", cfg.eval, DEVICE, seed=1234)
    return {
        "train_acc": round(tr["acc"], 2),
        "test_acc": round(te["acc"], 2),
        "test_loss": round(te["loss"], 4),
        "pgd_acc_all": round(adv["pgd_acc_all"], 2),
        "pgd_acc_correct": round(adv["pgd_acc_correct"], 2),
        "train_seconds": round(secs, 1),
    }


def models_state_fresh(cfg: RunConfig, seed: int) -> dict:
    """Fresh (Fixup-initialised, as a real run starts) weights of ``cfg``'s network for ``seed``."""
    torch.manual_seed(seed)
    return copy.deepcopy(networks.build_model(cfg.replace(train={"channels_last": False}), 10, DEVICE).state_dict())


def bench_equivalence(n_steps: int = 3, batch: int = 32) -> dict:
    """Without the random start, arlib's fp32 loop and the peer's compute the same thing: same x_adv, same weights.

    (With the random start the two differ only in their random streams; the
    bf16 fast path is compared against arlib's own fp32 loop, same stream, in --quality.)
    """
    import torchattacks

    cfg = run_config("cpu").replace(train={"precision": "fp32", "channels_last": False, "batch_size": batch})
    state = realistic_state(cfg)
    split, source = images(n_steps * batch)
    ours = networks.build_model(cfg, 10, DEVICE)
    ours.load_state_dict(state)
    theirs = copy.deepcopy(ours)
    opt_ours, opt_theirs = make_optimizer(ours, cfg), make_optimizer(theirs, cfg)
    a = cfg.adv
    atk = torchattacks.PGD(theirs, eps=a.eps / 255, alpha=a.alpha / 255, steps=a.steps, random_start=False)
    adv_diff = 0.0
    for s in range(0, n_steps * batch, batch):
        x, y = data.to_float(split.images[s : s + batch]), split.labels[s : s + batch]
        x_ours = attacks.pgd(ours, x, y, a.eps / 255, a.alpha / 255, a.steps, random_start=False, mode=a.attack_mode)
        x_theirs = atk(x, y)
        adv_diff = max(adv_diff, (x_ours - x_theirs).abs().max().item())
        for m, o, xa in ((ours, opt_ours, x_ours), (theirs, opt_theirs, x_theirs)):
            m.train()
            o.zero_grad()
            F.cross_entropy(m(xa), y).backward()
            o.step()
    w_diff = max((p - q).abs().max().item() for p, q in zip(ours.parameters(), theirs.parameters()))
    print(
        f"equivalence ({cfg.model.name}, {n_steps} PGD-{a.steps} training steps of {batch}, "
        f"no random start): max |x_adv diff| {adv_diff:.2e}, max |weight diff| {w_diff:.2e}"
    )
    return {"net": cfg.model.name, "data": source, "steps": n_steps, "batch": batch, "max_abs_adv_diff": adv_diff, "max_abs_weight_diff": w_diff}


def bench_quality(seeds: list[int], n_train: int, n_test: int, epochs: int, threads: int, arms: tuple[str, ...] = ("peer", "arlib", "arlib_fp32")) -> dict:
    ds = data.load_dataset("cifar10")
    tr = ds.train.subset(data.balanced_indices(ds.train.labels, n_train // 10, seed=0))
    te = ds.test.subset(data.balanced_indices(ds.test.labels, n_test // 10, seed=1))
    prof = profiles.get("cpu")
    cfg = prof.base("cifar10").replace(adv=standard_adv(EPS, "pgd", STEPS, ALPHA))  # the cpu profile's run, eps 8
    milestones = [round(m * epochs / cfg.train.epochs) for m in cfg.train.milestones]
    print(
        f"quality: {cfg.model.name}, {len(tr)} train / {len(te)} test real CIFAR-10 images, {epochs} epochs, batch {cfg.train.batch_size}, lr "
        f"{cfg.train.lr} /{1 / cfg.train.lr_gamma:g} at {milestones}, eps {EPS}/255; eval fp32: clean + PGD-{cfg.eval.steps} eps {cfg.eval.eps}/255"
    )
    out = {
        "net": cfg.model.name,
        "n_train": len(tr),
        "n_test": len(te),
        "epochs": epochs,
        "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr,
        "milestones": milestones,
        "eps": EPS,
        "threads": threads,
        "runs": [],
    }
    for seed in seeds:
        for kind in arms:
            r = train_and_eval(kind, cfg, tr, te, seed, epochs, threads)
            r.update(loop=kind, seed=seed)
            out["runs"].append(r)
            print(
                f"  seed {seed} {kind:<10s} train {r['train_acc']:6.2f}%  clean test {r['test_acc']:6.2f}%  PGD (all) {r['pgd_acc_all']:6.2f}% "
                f" PGD (of correct) {r['pgd_acc_correct']:6.2f}%  test loss {r['test_loss']:.3f}  [{r['train_seconds']} s]"
            )
    out.update(quality_means(out["runs"]))
    for kind in arms:
        print(f"  mean {kind:<10s} {out[f'mean_{kind}']}")
    out["load_after"] = loadavg()
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nets", default="resnet56,cpu", help="comma-separated: model names or 'cpu' (the cpu profile's network)")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--batches", type=int, default=1, help="steps of batch 128 per timed window")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for arlib and the peer (the peer is also timed at the default)")
    p.add_argument("--no-peer-default", action="store_true", help="skip timing the peer at PyTorch's default thread count")
    p.add_argument("--levers", action="store_true")
    p.add_argument("--lever-net", default="cpu")
    p.add_argument("--which", default="peer,fp32_nchw,fp32_nchw_unfrozen,fp32_cl,bf16_nchw,bf16_cl_bias_fp32,bf16_cl_adaptive_pool,bf16_cl")
    p.add_argument("--section", default=None, help="name of the results section (default: derived from the mode)")
    p.add_argument("--augmentation", action="store_true", help="time per-image vs batched augmentation")
    p.add_argument("--quality", action="store_true")
    p.add_argument("--equivalence", action="store_true", help="peer vs arlib fp32 loop without random start: identical?")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--quality-train", type=int, default=300)
    p.add_argument("--quality-test", type=int, default=500)
    p.add_argument("--quality-epochs", type=int, default=5)
    p.add_argument("--arms", default="peer,arlib,arlib_fp32", help="loops trained by --quality")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--cold-compile", action="store_true", help="empty inductor cache (what a fresh machine pays for torch.compile)")
    p.add_argument(
        "--allocator",
        choices=("tuned", "default"),
        default="tuned",
        help="tuned: arlib.device.tune_cpu_allocator() for the whole process, so for the peer too (it is process-wide; "
        "the ratio is then conservative); default: glibc's defaults for both",
    )
    p.add_argument("--interop", type=int, default=None, help="torch.set_num_interop_threads at start (compare across processes)")
    a = p.parse_args(argv)
    if a.interop is not None:
        torch.set_num_interop_threads(a.interop)
    ALLOCATOR["tuned"] = a.allocator == "tuned" and device.tune_cpu_allocator()
    if a.cold_compile:
        import tempfile

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    print(f"torch {torch.__version__}, {cpu_model()}, {os.cpu_count()} cores, default threads {DEFAULT_THREADS}, load {loadavg()}")
    if a.equivalence:
        res, section = bench_equivalence(), "equivalence"
    elif a.quality:
        res, section = (
            bench_quality([int(s) for s in a.seeds.split(",")], a.quality_train, a.quality_test, a.quality_epochs, a.threads, tuple(a.arms.split(","))),
            "quality",
        )
    elif a.augmentation:
        res, section = bench_augmentation(), "augmentation"
    elif a.levers:
        res, section = bench_levers(a.lever_net, a.windows, a.batches, a.threads, a.which.split(",")), f"levers_{net_name(a.lever_net)}"
    else:
        bench_main(a.nets.split(","), a.windows, a.batches, a.threads, not a.no_peer_default, save=not a.no_save)
        return  # saved per network, as sections main_<net>
    res["machine"] = machine()
    res["load_end"] = loadavg()
    if not a.no_save:
        merge_results(a.section or section, res)
        print(f"wrote section '{a.section or section}' of {OUT}")


if __name__ == "__main__":
    main()
