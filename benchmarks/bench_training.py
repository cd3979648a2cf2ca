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
``benchmarks/results/training.json``), each in its own module beside this one, which shares
``training_harness.py`` (machine, images, the two loops, FLOPs, timing, the results file):

* default (this module): peer vs arlib for ``--nets`` (``resnet56,cpu``), one section
  ``main_<net>`` per network;
* ``--levers`` (``bench_training_levers.py``): one lever at a time on one network (``--lever-net``); section
  ``levers_<net>``. Levers that are not config switches are applied as
  patches for the measurement only (``bias_promoted_to_fp32`` and
  ``adaptive_pool_head``: the model before the two changes the levers run
  led to; ``params_not_frozen``: what arlib's attack avoids;
  ``torch.compile``, with ``--cold-compile`` for an empty inductor cache);
* ``--augmentation`` (``bench_training_augmentation.py``): per-image torchvision crop+flip vs arlib's batched uint8 gather;
* ``--equivalence`` (``bench_training_quality.py``): without random start, arlib's fp32 loop and the peer give
  the same adversarial examples and the same weights;
* ``--quality`` (``bench_training_quality.py``): trains the cpu-profile network briefly with the peer loop,
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
import os

import torch

import training_harness as harness
from arlib import device
from bench_training_augmentation import bench_augmentation
from bench_training_levers import bench_levers
from bench_training_quality import bench_equivalence, bench_quality
from training_harness import (
    BATCH,
    DEFAULT_THREADS,
    DEVICE,
    OUT,
    ArlibLoop,
    PeerLoop,
    conv_share,
    count_flops,
    cpu_model,
    images,
    loadavg,
    machine,
    matmul_peak,
    measure,
    merge_results,
    net_name,
    ratios,
    realistic_state,
    run_config,
)

# ----------------------------------------------------------------------------- the default mode: peer vs arlib


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


# ----------------------------------------------------------------------------- the command line


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
    harness.ALLOCATOR["tuned"] = a.allocator == "tuned" and device.tune_cpu_allocator()
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
