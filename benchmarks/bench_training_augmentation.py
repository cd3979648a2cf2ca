"""``bench_training.py --augmentation``: per-image torchvision crop+flip vs arlib's batched uint8 gather."""

from __future__ import annotations

import statistics
import time

import torch

from arlib import data
from training_harness import BATCH, DEFAULT_THREADS, images


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
