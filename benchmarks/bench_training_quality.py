"""``bench_training.py --quality`` and ``--equivalence``: does arlib's fast loop train as well as the peer's?

* ``--equivalence``: without random start, arlib's fp32 loop and the peer give the same
  adversarial examples and the same weights;
* ``--quality``: trains the cpu-profile network briefly with the peer loop, arlib (fast path) and
  arlib in fp32 NCHW (same seed, same data; arlib and arlib_fp32 share one random stream, a paired
  comparison) and prints clean and PGD accuracy of each.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from arlib import analysis, attacks, data, evaluation, networks, profiles
from arlib.config import RunConfig, from_255, standard_adv
from training_harness import (
    ALPHA,
    DEVICE,
    EPS,
    STEPS,
    ArlibLoop,
    PeerLoop,
    images,
    loadavg,
    make_optimizer,
    quality_means,
    realistic_state,
    run_config,
)


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
    tr = evaluation.clean_eval(model, train_split, "cifar10", DEVICE)
    te = evaluation.clean_eval(model, test_split, "cifar10", DEVICE)
    e = cfg.eval
    adv = analysis.pgd_accuracy(model, test_split, data.test_transform("cifar10"), e.eps, e.alpha, e.steps, seed=1234, batch_size=e.batch_size)
    return {
        "train_acc": round(tr["acc"], 2),
        "test_acc": round(te["acc"], 2),
        "test_loss": round(te["loss"], 4),
        "pgd_acc_all": round(adv["adv_acc_all"], 2),
        "pgd_acc_correct": round(adv["adv_acc_correct"], 2),
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
    atk = torchattacks.PGD(theirs, eps=from_255(a.eps), alpha=from_255(a.alpha), steps=a.steps, random_start=False)
    adv_diff = 0.0
    for s in range(0, n_steps * batch, batch):
        x, y = data.to_float(split.images[s : s + batch]), split.labels[s : s + batch]
        x_ours = attacks.pgd(ours, x, y, from_255(a.eps), from_255(a.alpha), a.steps, random_start=False, mode=a.attack_mode)
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
