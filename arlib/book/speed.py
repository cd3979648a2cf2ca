"""The training-speed benchmark's results file read as the book's tables.

``benchmarks/bench_training.py`` writes ``benchmarks/results/training.json``: sections
``main_<net>`` (images/s and GFLOP/s of the torchattacks peer loop and of arlib's step, the
matmul peak of the same run), ``levers_<net>`` (one variant of the step per loop) and
``quality*`` (clean and PGD accuracy of the loops over seeds). Each function here reads one
kind of section and returns ``None`` when the benchmark has not been run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .handshake import record_inputs

__all__ = ["RESULTS", "summary", "bound", "levers", "quality"]

#: The benchmark's results file, relative to the repository root.
RESULTS = "benchmarks/results/training.json"


def _read_benchmark(path: str | os.PathLike) -> dict | None:
    """A benchmark's JSON (a relative path is tried from the repository root too), or None."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = Path(__file__).resolve().parents[2] / path
    if not path.is_file():
        return None
    record_inputs(path)
    return json.loads(path.read_text())


def _benchmark_sections(path: str | os.PathLike, prefix: str) -> list[tuple[str, Mapping]] | None:
    """The sections of a benchmark results file whose names start with ``prefix``; ``None`` if the file is absent."""
    doc = _read_benchmark(path)
    if doc is None:
        return None
    return [(key, sec) for key, sec in doc.items() if key.startswith(prefix) and isinstance(sec, Mapping)]


def summary(path: str | os.PathLike = RESULTS) -> pd.DataFrame | None:
    """The headline of the training-speed benchmark: one row per network.

    Images/s of the torchattacks peer loop (fp32, NCHW) and of arlib's training step, their
    ratio (median of interleaved windows), achieved GFLOP/s against the matmul peak measured
    in the same run. ``None`` if the benchmark has not been run.
    """
    sections = _benchmark_sections(path, "main_")
    if sections is None:
        return None
    rows = []
    for key, sec in sections:
        loops, peak = sec["loops"], sec["matmul_peak_gflops"][f"threads_{sec['threads']}"]
        rows.append(
            {
                "network": key.removeprefix("main_"),
                "profile": sec.get("profile"),
                "threads": sec["threads"],
                "GFLOP / image / step": sec["flops"]["per_image_per_step"] / 1e9,
                "peer img/s (fp32)": loops["peer"]["images_per_s"],
                "arlib img/s": loops["arlib"]["images_per_s"],
                "arlib / peer": loops["arlib"]["ratio_vs_peer"],
                "peer GFLOP/s": loops["peer"]["gflops_per_s"],
                "arlib GFLOP/s": loops["arlib"]["gflops_per_s"],
                "matmul peak fp32 / bf16 GFLOP/s": f"{peak['float32']:.0f} / {peak['bfloat16']:.0f}",
                "arlib: convs' share of op time": loops["arlib"].get("conv_share_of_op_time"),
                "arlib / peer if only convs took time": loops["arlib"].get("ceiling_ratio_vs_peer_convs_only"),
                "load average": ", ".join(f"{x:.1f}" for x in sec.get("load_after", [])),
            }
        )
    return pd.DataFrame(rows).set_index("network").round(2) if rows else None


def bound(path: str | os.PathLike = RESULTS) -> str | None:
    """The benchmark's own numbers for how far bf16 can take arlib past the fp32 peer on this CPU.

    Two bounds, both from the measured sections ``main_<net>`` (idle-machine rows, not the
    ``_loaded_machine`` ones): (1) hardware: a step that kept the peer's FLOPs and ran them
    all at the bf16 matmul peak would be ``(bf16 peak) / (peer's achieved GFLOP/s)`` times the
    peer; (2) arlib's own profile: if every op but the convolutions took no time, arlib would
    be ``ceiling_ratio_vs_peer_convs_only`` times the peer.
    """
    sections = _benchmark_sections(path, "main_")
    if sections is None:
        return None
    parts = []
    for key, sec in sections:
        if "loaded" in key:
            continue
        loops, peak = sec["loops"], sec["matmul_peak_gflops"][f"threads_{sec['threads']}"]
        peer, ours = loops["peer"], loops["arlib"]
        text = (
            f"**{key.removeprefix('main_')}** ({sec['threads']} threads): arlib {ours['ratio_vs_peer']:.2f}× the peer. "
            f"The peer's fp32 step runs at {peer['gflops_per_s']:.0f} GFLOP/s, {100 * peer['gflops_per_s'] / peak['float32']:.0f}% of the "
            f"fp32 matmul peak ({peak['float32']:.0f}); the bf16 peak is {peak['bfloat16']:.0f}, so the same FLOPs at the bf16 peak would be "
            f"{peak['bfloat16'] / peer['gflops_per_s']:.2f}× the peer."
        )
        if "conv_share_of_op_time" in ours:
            text += (
                f" arlib's convolutions take {100 * ours['conv_share_of_op_time']:.0f}% of its op time and run at "
                f"{ours['conv_gflops_per_s']:.0f} GFLOP/s ({100 * ours['conv_gflops_per_s'] / peak['bfloat16']:.0f}% of the bf16 peak); "
                f"with every other op free it would be {ours['ceiling_ratio_vs_peer_convs_only']:.2f}× the peer."
            )
        parts.append(text)
    return "\n\n".join(parts) if parts else None


def levers(path: str | os.PathLike = RESULTS) -> pd.DataFrame | None:
    """The benchmark's lever sections (``levers_<net>``): images/s of each variant and its ratio to the section's first loop."""
    sections = _benchmark_sections(path, "levers_")
    if sections is None:
        return None
    rows = []
    for _, sec in sections:
        for loop, r in sec["loops"].items():
            rows.append(
                {
                    "network": sec["net"],
                    "variant": loop,
                    "threads": r["threads"],
                    "img/s": r["images_per_s"],
                    "GFLOP/s": r.get("gflops_per_s"),
                    "vs first row": r.get("ratio_vs_first"),
                }
            )
    return pd.DataFrame(rows).set_index(["network", "variant"]).round(2) if rows else None


def quality(path: str | os.PathLike = RESULTS) -> pd.DataFrame | None:
    """The benchmark's quality runs (``quality*`` sections): clean and PGD accuracy per loop, mean ± std over seeds."""
    sections = _benchmark_sections(path, "quality")
    if sections is None:
        return None
    rows = []
    for key, sec in sections:
        if "runs" not in sec:
            continue
        runs = pd.DataFrame(sec["runs"])
        setting = (
            f"{sec['net']}, {sec['n_train']} train / {sec['n_test']} test images, "
            f"{sec['epochs']} epochs, eps {sec.get('eps', 8)}, {runs['seed'].nunique()} seeds"
        )
        for loop, g in runs.groupby("loop", sort=False):
            row = {"section": key, "setting": setting, "loop": loop}
            for col in ("train_acc", "test_acc", "pgd_acc_all", "pgd_acc_correct", "train_seconds"):
                row[col] = f"{g[col].mean():.1f} ± {g[col].std(ddof=1):.1f}" if len(g) > 1 else f"{g[col].mean():.1f}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["section", "loop"]) if rows else None
