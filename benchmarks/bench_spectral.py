"""Benchmark: operator singular values of a ResNet-56-shaped stack of convs at 32x32.

Reference: a straightforward NumPy implementation in the style of Sedghi, Gupta
& Long (2018)'s published code (``np.fft.fft2`` of the kernel padded to the
grid, then ``np.linalg.svd(..., compute_uv=False)`` over *all* frequencies).
For the two stride-2 convs per stage boundary the reference uses the same exact
polyphase method as arlib (written independently here in NumPy), not the
stride-1 formula, so both sides compute the same spectrum and the values can be
compared.  Both compute in float64/complex128.

arlib: ``arlib.spectral.conv_singular_values`` (rfft2, one representative per
conjugate pair, one batched decomposition per layer), timed with both of its
methods: ``"svd"`` (default; ``torch.linalg.svdvals``) and ``"gram"``
(``eigvalsh`` of the smaller Gram matrix; ~1e-8 of the largest value).

Both sides are pinned to ONE thread (``torch.set_num_threads(1)`` and
``OMP/OPENBLAS/MKL_NUM_THREADS=1`` set before NumPy is imported): the machine's
cores are shared, neither NumPy's stacked SVD nor PyTorch's batched CPU
linalg parallelises over the batch anyway, and one thread makes the comparison
fair and repeatable.  Each timing is reported as wall-clock and as process CPU
time (``time.process_time``); on a shared machine the CPU time is the less
noisy of the two.  The speedup is the ratio of the medians of ``--repeats``
runs.

Usage: ``python benchmarks/bench_spectral.py [--repeats 3]``; writes
``benchmarks/results/spectral.json``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/torch load their BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from arlib.spectral import clip_conv_weight, many_conv_singular_values  # noqa: E402

Layer = tuple[int, int, int, int, int]  # c_out, c_in, k, n (input size), stride


def resnet56_convs() -> list[Layer]:
    """Conv shapes of a CIFAR ResNet-56 at 32x32 input (three stages of 9 basic blocks)."""
    layers: list[Layer] = [(16, 3, 3, 32, 1)]
    layers += [(16, 16, 3, 32, 1)] * 18
    for c_in, c_out, n in ((16, 32, 32), (32, 64, 16)):
        layers += [(c_out, c_in, 3, n, 2), (c_out, c_in, 1, n, 2)]  # downsampling conv, 1x1 shortcut
        layers += [(c_out, c_out, 3, n // 2, 1)] * 17
    return layers


def numpy_singular_values(kernel: np.ndarray, n: int, stride: int) -> np.ndarray:
    """Sedghi et al.-style reference: FFT of the (polyphase) kernel, SVD at every frequency."""
    c_out, c_in, k, _ = kernel.shape
    if stride > 1:  # polyphase: tap a = q*s + r becomes input channel (c, r) at tap q
        q = -(-k // stride)
        padded = np.zeros((c_out, c_in, q * stride, q * stride))
        padded[:, :, :k, :k] = kernel
        kernel = padded.reshape(c_out, c_in, q, stride, q, stride).transpose(0, 1, 3, 5, 2, 4)
        kernel = kernel.reshape(c_out, c_in * stride * stride, q, q)
    m = n // stride
    transforms = np.fft.fft2(kernel, s=(m, m), axes=(-2, -1)).transpose(2, 3, 0, 1)
    return np.linalg.svd(transforms, compute_uv=False).ravel()


def time_call(fn, repeats: int) -> tuple[dict[str, float | list[float]], object]:
    """Median and per-run wall and CPU seconds of ``repeats`` calls; last output."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    stats = {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu), "wall_runs_s": wall, "cpu_runs_s": cpu}
    return stats, out


def max_relative_difference(ref: list[np.ndarray], ours: list[torch.Tensor]) -> float:
    """Max over layers of max |sorted ref - ours| / largest value of the layer."""
    worst = 0.0
    for r, o in zip(ref, ours):
        r = np.sort(r)[::-1]
        assert r.shape == tuple(o.shape), (r.shape, o.shape)
        worst = max(worst, float(np.max(np.abs(r - o.numpy())) / r[0]))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "spectral.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    layers = resnet56_convs()
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(o, i, k, k, generator=gen) * (2.0 / (i * k * k)) ** 0.5 for o, i, k, _, _ in layers]
    kernels = [w.double().numpy() for w in weights]

    def run_numpy() -> list[np.ndarray]:
        return [numpy_singular_values(kn, n, s) for kn, (_, _, _, n, s) in zip(kernels, layers)]

    specs = [(w, n, s, None) for w, (_, _, _, n, s) in zip(weights, layers)]

    def run_arlib(method: str, workers: int = 1) -> list[torch.Tensor]:
        return many_conv_singular_values(specs, method=method, workers=workers)

    # "svd"/"gram": one core, like the reference. "*_2workers": the layers spread over a
    # thread pool, one per core of this 2-core machine (values identical to one worker).
    arms = {"svd": ("svd", 1), "gram": ("gram", 1), "svd_2workers": ("svd", 2), "gram_2workers": ("gram", 2)}
    run_numpy(), [run_arlib(m, w) for m, w in arms.values()]  # warm-up (first calls load LAPACK paths)
    timings: dict[str, dict] = {}
    timings["numpy_reference"], ref = time_call(run_numpy, args.repeats)
    outputs = {}
    for arm, (method, workers) in arms.items():
        timings[f"arlib_{arm}"], outputs[arm] = time_call(lambda method=method, workers=workers: run_arlib(method, workers), args.repeats)
    base = timings["numpy_reference"]
    methods = {
        method: {
            **timings[f"arlib_{method}"],
            "speedup_wall": base["wall_s"] / timings[f"arlib_{method}"]["wall_s"],
            "speedup_cpu": base["cpu_s"] / timings[f"arlib_{method}"]["cpu_s"],
            "max_rel_diff": max_relative_difference(ref, outputs[method]),
        }
        for method in arms
    }

    # clipping overshoot (Sedghi et al.'s one clip+crop round vs iterating) on random ResNet-shaped convs
    overshoot = {}
    for label, idx in (("16->16 3x3 @32", 1), ("16->32 3x3 s2 @32", 19), ("64->64 3x3 @8", 40)):
        _, _, _, n, s = layers[idx]
        once = clip_conv_weight(weights[idx], n, 1.0, s)[1]
        many = clip_conv_weight(weights[idx], n, 1.0, s, max_iter=20, tol=1e-3)[1]
        overshoot[label] = {
            "norm_before": once.before,
            "overshoot_1_round": once.overshoot,
            "overshoot_after_iterating": many.overshoot,
            "iterations": many.iterations,
            "history": many.history,
        }

    result = {
        "layers": len(layers),
        "repeats": args.repeats,
        "numpy_reference": base,
        "arlib": methods,
        "max_rel_diff_definition": "max over layers of max |sorted numpy - arlib| / largest value of the layer",
        "clip_c": 1.0,
        "clip_overshoot": overshoot,
        "reference": "numpy fft2 + svd(compute_uv=False) at all frequencies, polyphase for stride 2; float64",
        "machine": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            "blas_threads_env": os.environ["OPENBLAS_NUM_THREADS"],
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
    }

    def runs(t: dict) -> str:
        return ", ".join(f"{w:.3f}/{c:.3f}" for w, c in zip(t["wall_runs_s"], t["cpu_runs_s"]))

    print(f"{len(layers)} convs, ResNet-56 shapes at 32x32, 1 thread per worker; times wall/cpu seconds")
    print(f"numpy reference : median {base['wall_s']:.3f}/{base['cpu_s']:.3f}  runs {runs(base)}")
    for method, m in methods.items():
        print(
            f"arlib {method:<10}: median {m['wall_s']:.3f}/{m['cpu_s']:.3f}  runs {runs(m)}  "
            f"speedup {m['speedup_wall']:.2f}x wall, {m['speedup_cpu']:.2f}x cpu  max rel diff {m['max_rel_diff']:.1e}"
        )
    for label, o in overshoot.items():
        print(
            f"clip c=1 {label}: norm {o['norm_before']:.3f}, overshoot 1 round {o['overshoot_1_round']:+.4f}, "
            f"after {o['iterations']} rounds {o['overshoot_after_iterating']:+.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
