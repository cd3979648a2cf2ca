"""Adversarial training: a readable loop with exact resume.

``train_run(cfg, store)`` trains the run described by ``cfg`` (Appendix B.1 /
D: SGD with momentum, multi-step learning-rate decay, PGD or FGSM examples at
defensive strength ``cfg.adv.eps``), checkpointing every epoch, and writes
``metrics.json``, ``provenance.json`` and ``model.pt`` into the run's
directory. A run killed at any moment restarts from its last checkpoint and
ends with the same weights and metrics as an uninterrupted run (on CPU):
every source of randomness (shuffling, augmentation, attack starts) draws
from one ``torch.Generator`` whose state is checkpointed with the model,
optimizer and scheduler.

Speed (see ``benchmarks/``): bf16 autocast on CPUs with native bf16 (AMP on
CUDA) with fp32 master weights and an fp32 loss, channels_last, input-only
gradients during attack steps; switchable in :class:`~arlib.config.TrainConfig`.
On CPU, glibc's allocator is told to keep freed memory (:func:`tune_cpu_allocator`).
"""

from __future__ import annotations

import contextlib
import math
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import __version__, data
from .attacks import fgsm, pgd
from .config import RunConfig, from_255
from .evaluation import clean_eval, final_evaluation
from .errors import DamagedRunError
from .gitinfo import commit_of
from .device import autocast_for, default_device, resolve_precision, tune_cpu_allocator
from .networks import build_model
from .store import Run, Store, atomic_torch_save, atomic_write_json, load_torch, require_sound

EpochHook = Callable[[nn.Module, int], "dict | None"]
SavedNote = Callable[[str], None]  # told, in one line, what is on disk each time that moves on


def _no_note(note: str) -> None:
    pass


def lr_scheduler(optimizer, t) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule of ``t`` (a TrainConfig): lr / 10 at each milestone, after an optional linear warm-up.

    Without warm-up it is PyTorch's MultiStepLR (the schedule of Appendix D);
    with ``warmup_epochs = w`` epoch e (0-based) runs at lr * min(1, (e + 1) / w)
    times the milestone decay.
    """
    if t.warmup_epochs == 0:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(t.milestones), t.lr_gamma)

    def factor(epoch: int) -> float:
        return min(1.0, (epoch + 1) / t.warmup_epochs) * t.lr_gamma ** sum(epoch >= m for m in t.milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------- one epoch


def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv, generator, autocast) -> torch.Tensor:
    """Training examples for the configured adversary (``adv`` is an AdvConfig)."""
    if adv.method == "pgd":
        return pgd(model, x, y, from_255(adv.eps), from_255(adv.alpha), adv.steps, mode=adv.attack_mode, generator=generator, autocast=autocast)
    if adv.method == "fgsm":
        return fgsm(model, x, y, from_255(adv.eps), mode=adv.attack_mode, autocast=autocast)
    return x


class Diverged(Exception):
    """The training loss stopped being a finite number: the run is over (recorded ``diverged``), not an error."""


def train_epoch(model, optimizer, split: data.Split, cfg: RunConfig, generator: torch.Generator, device, autocast, progress=None) -> dict:
    """One pass over ``split`` in shuffled mini-batches; returns running loss/accuracy.

    Raises :class:`Diverged` at the first batch whose loss is not finite (its weights are lost already).
    """
    transform = data.train_transform(cfg.data.dataset) if cfg.data.augment else (lambda x, g=None: data.test_transform(cfg.data.dataset)(x))
    order = torch.randperm(len(split), generator=generator)
    bs = cfg.train.batch_size
    total_loss, total_correct, seen = 0.0, 0, 0
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    for start in range(0, len(order), bs):
        idx = order[start : start + bs]
        xb = split.images[idx].to(device, non_blocking=True)
        yb = split.labels[idx].to(device, non_blocking=True)
        x = transform(xb, generator).contiguous(memory_format=memory_format)
        x = perturb(model, x, yb, cfg.adv, generator, autocast)
        model.train()
        with autocast if autocast is not None else contextlib.nullcontext():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise Diverged(f"training loss {value} at batch {start // bs + 1}")
        total_loss += value * len(yb)
        total_correct += (logits.argmax(1) == yb).sum().item()
        seen += len(yb)
        if progress is not None:
            progress.update(len(yb))
            progress.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{100 * total_correct / seen:.1f}")
    return {"train_running_loss": total_loss / seen, "train_running_acc": 100 * total_correct / seen}


# ----------------------------------------------------------------------------- provenance


def git_commit(repo: Path | None = None) -> str:
    """The commit of the code that trains (``+dirty`` if ``arlib/`` has uncommitted changes)."""
    return commit_of(repo or Path(__file__).resolve().parent.parent, ("arlib",))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} cpu, {torch.get_num_threads()} threads"


def provenance(cfg: RunConfig, ds: data.Dataset, device, precision: str, commit: str) -> dict:
    return {
        "git_commit": commit,
        "arlib_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name(device),
        "precision": precision,
        "dataset": ds.name,
        "dataset_fingerprint": ds.fingerprint,
        "dataset_source": ds.source,
        "n_train": len(ds.train),
        "n_test": len(ds.test),
        "seed": cfg.train.seed,
    }


# ----------------------------------------------------------------------------- the run


def _rng_state(generator: torch.Generator) -> dict:
    """Every RNG's state as tensors, numbers and lists: what ``torch.load(weights_only=True)`` reads back."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def _set_rng_state(generator: torch.Generator, state: dict) -> None:
    """Restore :func:`_rng_state`'s states (or the tuples checkpoints held before issue 21)."""
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    n, p = state["numpy"], state["python"]
    if isinstance(n, dict):
        n = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    if isinstance(p, dict):
        p = (p["version"], tuple(p["internal"]), p["gauss_next"])
    np.random.set_state(n)
    random.setstate(p)


def epoch_hooks_for(cfg: RunConfig, model: nn.Module, input_hw: int, device) -> list[EpochHook]:
    """Hooks run after every epoch: spectral-norm clipping (Appendix B.4.2, D.3) when configured."""
    if cfg.train.spectral_norm is None:
        return []
    from . import spectral

    example = torch.zeros(1, 3, input_hw, input_hw, device=device)
    sizes = spectral.record_input_sizes(model, example)
    # One clip-and-crop round (Sedghi et al.) can leave a layer ~30% above c, and
    # repeated rounds converge slowly (benchmarks: ~2% after 20); three rounds
    # and then a uniform rescale of any layer still above c make every layer's
    # measured operator norm <= c (up to float32 rounding), which is what SP c means.
    return [spectral.spectral_clip_hook(cfg.train.spectral_norm, sizes, max_iter=3, rescale=True)]


_CHECKPOINT_KEYS = {"epoch", "model", "optimizer", "scheduler", "rng", "history", "elapsed"}


def warn(msg: str) -> None:
    """One line on stderr for something repaired on the way (a damaged file moved aside)."""
    print(f"arlib: warning: {msg}", file=sys.stderr, flush=True)


def _repair_unfinished(run: Run, cfg: RunConfig) -> None:
    """Before training resumes: a damaged config.json of an unfinished run is moved aside and written anew.

    The folder's name is the hash of ``cfg``, so the config it should hold is known exactly.
    """
    try:
        run.config  # noqa: B018  (reading the property is the check)
    except DamagedRunError as e:
        moved = run.move_aside("config.json")
        atomic_write_json(run.file("config.json"), cfg.to_dict())
        warn(f"{e.path} was damaged ({e.reason}); kept as {moved.name} and written anew")


def _load_checkpoint(run: Run) -> dict | None:
    """The run's checkpoint, or None when there is none or it does not load (then it is moved aside).

    Read weights only (:func:`arlib.store.load_torch`): a checkpoint that holds pickled code
    is refused before anything in it runs, moved aside like any other damaged one.
    """
    path = run.file("checkpoint.pt")
    if not path.exists():
        return None
    try:
        ckpt = load_torch(path)  # on the CPU: the RNG states must stay there; load_state_dict moves the rest
        if not isinstance(ckpt, dict) or not _CHECKPOINT_KEYS <= set(ckpt):
            raise DamagedRunError(path, "not an arlib checkpoint")
        return ckpt
    except DamagedRunError as e:
        discard_checkpoint(run, e.reason)
        return None


def discard_checkpoint(run: Run, why: str) -> None:
    moved = run.move_aside("checkpoint.pt")
    warn(f"{run.file('checkpoint.pt')}: {why}; kept as {moved.name}; training this run from the start")


@dataclass
class TrainingState:
    """Everything an epoch changes and a checkpoint restores."""

    generator: torch.Generator
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    history: list = field(default_factory=list)
    elapsed: float = 0.0
    epoch: int = 0  # epochs done
    resumed: bool = False

    def checkpoint(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_state(self.generator),
            "history": self.history,
            "elapsed": self.elapsed,
        }


def train_run(
    cfg: RunConfig,
    store: Store | None = None,
    data_root=None,
    device: torch.device | None = None,
    progress: bool = True,
    lock_timeout: float = -1,
    on_saved: SavedNote | None = None,
) -> Run:
    """Train (or resume, or skip if finished) the run of ``cfg``; return its handle.

    ``lock_timeout`` (seconds, -1 = wait forever) bounds the wait for a run another process is
    training. ``on_saved`` is told in one line what is on disk each time that moves on (an epoch
    checkpointed, the run finished or diverged): what ``arlib`` says when a signal stops it.

    Damaged files: a finished run whose files do not parse or match their checksums
    raises :class:`~arlib.errors.DamagedRunError` (reported, not retrained); an
    unfinished run's damaged checkpoint, config or provenance is moved aside
    (``<name>.damaged-<time>``) and the run trains from the start.
    """
    store = store or Store()
    device = device or default_device()
    on_saved = on_saved or _no_note
    existing = store.find(cfg)
    if existing is not None and existing.sealed and require_sound(existing).finished:  # once finished, its files are results
        return existing
    commit = git_commit()  # the commit of the code that trains, read now: the tree may move on during a long run
    ds = _on_device(data.prepare_run(cfg, data_root), device)  # fails before anything is written when data is missing
    if device.type == "cpu":
        tune_cpu_allocator()
    run = store.run(cfg)
    with run.lock(lock_timeout):  # raises store.Timeout if another process holds it past lock_timeout
        if run.sealed and require_sound(run).finished:
            return run
        _repair_unfinished(run, cfg)
        precision = resolve_precision(cfg.train.precision, device)
        state = _start_or_resume(run, cfg, ds.num_classes, device)
        prov = _provenance_at_start(run, cfg, ds, device, precision, commit, state.resumed)
        hooks = epoch_hooks_for(cfg, state.model, data.input_size(cfg.data.dataset, ds.image_size), device)
        ended = _epochs(run, cfg, ds, device, autocast_for(precision, device), state, hooks, prov, progress, on_saved)
        return ended if ended is not None else _finish(run, cfg, ds, device, state, prov, on_saved)


def _on_device(ds: data.Dataset, device: torch.device) -> data.Dataset:
    """``ds`` with its uint8 images on ``device``: on a GPU (150 MB for CIFAR) batches and their augmentation never cross the bus, as in airbench."""
    if device.type != "cuda":
        return ds
    return data.Dataset(
        ds.name,
        ds.classes,
        data.Split(ds.train.images.to(device), ds.train.labels.to(device), ds.train.index),
        data.Split(ds.test.images.to(device), ds.test.labels.to(device), ds.test.index),
        ds.fingerprint,
        ds.source,
    )


def _fresh_state(cfg: RunConfig, num_classes: int, device) -> TrainingState:
    torch.manual_seed(cfg.train.seed)
    generator = torch.Generator().manual_seed(cfg.train.seed)
    model = build_model(cfg, num_classes, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay)
    return TrainingState(generator, model, optimizer, lr_scheduler(optimizer, cfg.train))


def _start_or_resume(run: Run, cfg: RunConfig, num_classes: int, device) -> TrainingState:
    """A fresh training state, or the one of the run's checkpoint (moved aside, and fresh, if it does not fit this run)."""
    state = _fresh_state(cfg, num_classes, device)
    ckpt = _load_checkpoint(run)
    if ckpt is None:
        return state
    try:
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        state.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(state.generator, ckpt["rng"])
    except Exception as e:  # loads, but does not fit this run: as damaged as one that does not load
        discard_checkpoint(run, f"does not fit this run ({type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''})")
        return _fresh_state(cfg, num_classes, device)
    state.history, state.elapsed, state.epoch, state.resumed = ckpt["history"], ckpt["elapsed"], ckpt["epoch"], True
    return state


def _provenance_at_start(run: Run, cfg: RunConfig, ds, device, precision: str, commit: str, resumed: bool) -> dict:
    """The run's provenance, written when training starts (completed at the end), so an unfinished run already says
    which code, data and machine it is being trained with; a resumed run keeps the commit it started with and
    records the one that resumed it."""
    prov = {}
    if resumed and run.file("provenance.json").exists():
        try:
            prov = run.read_json("provenance.json")
        except DamagedRunError as e:
            warn(f"{e.path} was damaged ({e.reason}); kept as {run.move_aside('provenance.json').name} and written anew")
    if not prov:
        prov = provenance(cfg, ds, device, precision, commit)
        prov["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_json(run.file("provenance.json"), prov)
    elif prov.get("git_commit") != commit:
        prov.setdefault("resumed_with_commits", []).append(commit)
    return prov


def _epochs(run: Run, cfg: RunConfig, ds, device, autocast, state: TrainingState, hooks, prov: dict, progress: bool, on_saved: SavedNote) -> Run | None:
    """The epoch loop, a checkpoint after every epoch; returns the run if it diverged, else None."""
    monitored = data.monitor_split(ds, cfg.eval)
    bar = tqdm(
        total=cfg.train.epochs * len(ds.train),
        initial=state.epoch * len(ds.train),
        unit="img",
        desc=f"{cfg.hash[:8]} eps={cfg.adv.eps:g}",
        disable=not progress,
        leave=False,
    )
    with contextlib.closing(bar):
        for epoch in range(state.epoch, cfg.train.epochs):
            t0 = time.perf_counter()
            record = {"epoch": epoch + 1, "lr": state.optimizer.param_groups[0]["lr"]}
            if state.resumed and epoch == state.epoch:
                record["resumed"] = True  # this process restarted from the checkpoint of the epoch before
            try:
                record.update(train_epoch(state.model, state.optimizer, ds.train, cfg, state.generator, device, autocast, bar))
            except Diverged as e:
                return _record_diverged(run, cfg, prov, state.history, state.elapsed + time.perf_counter() - t0, epoch + 1, str(e), on_saved)
            state.scheduler.step()
            for hook in hooks:
                record.update(hook(state.model, epoch) or {})
            test = clean_eval(state.model, monitored, cfg.data.dataset, device, cfg.eval.batch_size)
            if not math.isfinite(test["loss"]):
                return _record_diverged(
                    run, cfg, prov, state.history, state.elapsed + time.perf_counter() - t0, epoch + 1, f"test loss {test['loss']} after the epoch", on_saved
                )
            record.update(test_loss=test["loss"], test_acc=test["acc"], seconds=time.perf_counter() - t0)
            state.elapsed += record["seconds"]
            state.history.append(record)
            state.epoch = epoch + 1
            atomic_torch_save(run.file("checkpoint.pt"), state.checkpoint())
            on_saved(f"epoch {epoch + 1} of {cfg.train.epochs} of run {cfg.hash} is checkpointed in {run.path}")
    return None


def _finish(run: Run, cfg: RunConfig, ds, device, state: TrainingState, prov: dict, on_saved: SavedNote) -> Run:
    """The final evaluation, then the run's result files, sealed."""
    t0 = time.perf_counter()
    metrics, outcomes = final_evaluation(state.model, ds, cfg, device)
    eval_seconds = time.perf_counter() - t0
    for k in ("train_loss", "test_loss"):
        if not math.isfinite(metrics[k]):
            return _record_diverged(run, cfg, prov, state.history, state.elapsed, cfg.train.epochs, f"final {k.replace('_', ' ')} {metrics[k]}", on_saved)
    prov.update(train_seconds=state.elapsed, eval_seconds=eval_seconds, finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    atomic_torch_save(run.file("model.pt"), state.model.state_dict())
    run.save_outcomes(outcomes)
    atomic_write_json(run.file("provenance.json"), prov)
    atomic_write_json(run.file("metrics.json"), {"status": "finished", "config_hash": cfg.hash, "final": metrics, "history": state.history})
    run.seal()
    on_saved(f"run {cfg.hash} finished in {run.path}")
    return run


def _record_diverged(run: Run, cfg: RunConfig, prov: dict, history: list, elapsed: float, epoch: int, reason: str, on_saved: SavedNote) -> Run:
    """End a run whose loss stopped being finite: ``metrics.json`` says ``diverged``, when and why; no weights, no final metrics.

    The final losses are written as null (strict JSON has no NaN), which
    :func:`arlib.regimes.is_diverged` reads as diverged; the run is sealed like a finished one
    and never retrained (the same config would diverge the same way).
    """
    prov.update(train_seconds=elapsed, finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    atomic_write_json(run.file("provenance.json"), prov)
    atomic_write_json(
        run.file("metrics.json"),
        {
            "status": "diverged",
            "config_hash": cfg.hash,
            "diverged": {"epoch": epoch, "reason": reason},
            "final": {"train_loss": None, "test_loss": None},
            "history": history,
        },
    )
    run.seal()
    on_saved(f"run {cfg.hash} diverged and is recorded in {run.path}")
    warn(f"run {cfg.hash} {run.divergence()}: recorded as diverged; it is left out of the analysis, the grid's means and the book")
    return run
