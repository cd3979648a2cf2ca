"""The harness the training benchmarks share (:mod:`bench_training` and its modes): the machine, the images
and networks, the two loops (the peer's and arlib's), FLOPs, interleaved timing, and the results file
``benchmarks/results/training.json``. See ``bench_training.py`` for what is measured and how.
"""

from __future__ import annotations

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

from arlib import attacks, data, device, models, networks, profiles, train
from arlib.config import RunConfig, from_255, standard_adv
from arlib.errors import DataNotFoundError
from arlib.models import resnet_cifar

DEVICE = torch.device("cpu")
BATCH = 128
EPS, ALPHA, STEPS = 8, 2, 10  # 0-255 scale, as the paper
OUT = Path(__file__).resolve().parent / "results" / "training.json"
DEFAULT_THREADS = torch.get_num_threads()
ALLOCATOR = {"tuned": False}  # set once in bench_training.main(): glibc malloc settings of the whole process


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
        self.atk = torchattacks.PGD(self.model, eps=from_255(a.eps), alpha=from_255(a.alpha), steps=a.steps, random_start=True)
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


# ----------------------------------------------------------------------------- timing and the results file


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
