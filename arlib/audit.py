"""Is PGD-10 fooled? The robust accuracy of a trained run re-measured with stronger gradient attacks.

Appendix D.2 measures robustness with PGD-10 (10 steps of 2/255 in a radius of 8/255, last
iterate). A network can look robust to such a short, fixed-step attack without being so,
when its loss surface hides the gradient (gradient masking). The audit attacks the same test
images with APGD (:func:`arlib.attacks.apgd`, 100 steps, adaptive step size, best iterate)
on the cross-entropy loss and on the scale-free DLR loss, the two gradient attacks of
AutoAttack (Croce & Hein 2020), in AutoAttack's cascade: APGD-CE attacks the images the
network classifies correctly, APGD-DLR the ones APGD-CE left standing. An image counts as
robust when it survived every attack, PGD-10 included (its per-image outcome is the run's
``outcomes.npz``).

The images: a fixed class-balanced draw of ``per_class`` test images per class, drawn with the
seed of :func:`arlib.data.attack_split`, so they are a subset of the images PGD-10 attacked in
every run (checked). Results go into the run's folder, ``attack_audit.json`` (summary, settings,
provenance) and ``attack_audit.npz`` (per image), both covered by ``checksums.json``.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import data, grid
from .analysis import _batches, strict_fp32
from .attacks import apgd
from .errors import DamagedRunError
from .gitinfo import commit_of
from .networks import load_model
from .store import Run, Store, atomic_write_bytes, atomic_write_json

AUDIT_JSON = "attack_audit.json"
AUDIT_NPZ = "attack_audit.npz"
AUDIT_VERSION = 1


@dataclass(frozen=True)
class AuditConfig:
    """The audit's settings: ``per_class`` test images per class, APGD's ``steps`` and restarts."""

    per_class: int = 50
    steps: int = 100
    n_restarts: int = 1
    seed: int = 0
    batch_size: int = 250


def audit_images(ds: data.Dataset, eval_cfg, per_class: int) -> data.Split:
    """The audited test images: the first ``per_class`` a class of the fixed draw PGD-10 attacked."""
    if eval_cfg.attack_per_class is not None and per_class > eval_cfg.attack_per_class:
        raise ValueError(f"per_class {per_class} is more than the {eval_cfg.attack_per_class} a class PGD-10 attacked")
    return data.eval_subset(ds.test, per_class, data.ATTACK_SUBSET_SEED)


def stored_pgd(run: Run, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PGD-10's per-image ``(clean_correct, robust)`` from the run's final evaluation, at ``positions`` of the test set."""
    out = run.outcomes()
    if out is None or "pgd_index" not in out:
        raise DamagedRunError(run.file("outcomes.npz"), "no per-image PGD outcomes (a run from before issue 19)")
    where = {int(i): k for k, i in enumerate(out["pgd_index"])}
    missing = [int(p) for p in positions if int(p) not in where]
    if missing:
        raise ValueError(f"{len(missing)} audited images were not attacked by PGD-10 in {run.hash} (e.g. test image {missing[0]})")
    k = np.array([where[int(p)] for p in positions])
    return out["pgd_clean_correct"][k].astype(bool), out["pgd_robust"][k].astype(bool)


def _still_correct(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1) == y


def cascade(model, split: data.Split, transform, eps: float, cfg: AuditConfig, device) -> dict[str, np.ndarray]:
    """AutoAttack's cascade of APGD-CE then APGD-DLR on ``split``, per image (bool arrays).

    ``clean_correct``; ``apgd_ce_robust`` (APGD-CE run on every clean-correct image);
    ``dlr_attacked`` (the images APGD-CE left correct) and ``apgd_dlr_robust`` (correct after
    APGD-DLR; False where it was not run, those images being lost already).
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("clean_correct", "apgd_ce_robust", "dlr_attacked", "apgd_dlr_robust")}
    for _, x, y in _batches(split, transform, cfg.batch_size, device):
        clean = _still_correct(model, x, y)
        ce = torch.zeros_like(clean)
        if clean.any():
            x_ce = apgd(model, x[clean], y[clean], eps, cfg.steps, "ce", cfg.n_restarts, cfg.seed)
            ce[clean] = _still_correct(model, x_ce, y[clean])
        dlr = torch.zeros_like(clean)
        if ce.any():
            x_dlr = apgd(model, x[ce], y[ce], eps, cfg.steps, "dlr", cfg.n_restarts, cfg.seed)
            dlr[ce] = _still_correct(model, x_dlr, y[ce])
        for k, v in (("clean_correct", clean), ("apgd_ce_robust", ce), ("dlr_attacked", ce), ("apgd_dlr_robust", dlr)):
            parts[k].append(v.cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0, bool) for k, v in parts.items()}


def accuracies(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """Robust accuracy in % of all audited images, under each attack and under all of them."""
    n = len(per_image["clean_correct"])

    def pct(a: np.ndarray) -> float:
        return 100.0 * float(np.sum(a)) / n if n else float("nan")

    return {
        "clean": pct(per_image["clean_correct"]),
        "pgd10": pct(per_image["pgd10_robust"]),
        "apgd_ce": pct(per_image["apgd_ce_robust"]),
        "apgd_ce_then_dlr": pct(per_image["apgd_dlr_robust"]),
        "worst": pct(per_image["worst_robust"]),
    }


def audit_run(run: Run, cfg: AuditConfig = AuditConfig(), device: torch.device | None = None, data_root=None) -> dict:
    """Audit one finished run (weights in its folder); writes and returns its ``attack_audit.json``.

    fp32, eval mode, the run's own test transform; the attack radius is the run's D.2 one
    (``eval.eps``). Raises :class:`DamagedRunError` when the run has no weights or no PGD outcomes.
    """
    started = time.time()
    rc = run.config
    device = device or torch.device("cpu")
    model = load_model(run, device)
    ds = data.prepare_run(rc, data_root)
    split = audit_images(ds, rc.eval, cfg.per_class)
    positions = split.positions().numpy()
    pgd_clean, pgd_robust = stored_pgd(run, positions)
    with strict_fp32():
        per_image = cascade(model, split, data.test_transform(rc.data.dataset), rc.eval.eps / 255, cfg, device)
    # The clean predictions are the final evaluation's, recomputed: they must agree image by image.
    clean_disagree = int(np.sum(per_image["clean_correct"] != pgd_clean))
    per_image.update(
        test_index=positions.astype(np.int32),
        pgd10_robust=pgd_robust,
        worst_robust=pgd_robust & per_image["apgd_dlr_robust"],
    )
    import torchattacks

    summary = {
        "version": AUDIT_VERSION,
        "hash": run.hash,
        "eps255": float(rc.eval.eps),
        "steps": cfg.steps,
        "n_restarts": cfg.n_restarts,
        "per_class": cfg.per_class,
        "seed": cfg.seed,
        "n": int(len(positions)),
        "accuracy": accuracies(per_image),
        "clean_disagreements": clean_disagree,
        "attacks": "PGD-10 (the run's final evaluation); APGD-CE on the clean-correct images; APGD-DLR on those APGD-CE left correct",
        "torchattacks_version": torchattacks.__version__,
        "torch_version": torch.__version__,
        "git_commit": commit_of(Path(__file__).resolve().parent.parent, ("arlib",)),
        "device": str(device),
        "seconds": round(time.time() - started, 1),
        "audited_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": asdict(cfg),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **per_image)
    atomic_write_bytes(run.file(AUDIT_NPZ), buf.getvalue())
    atomic_write_json(run.file(AUDIT_JSON), summary)
    run.seal()
    return summary


def audited(run: Run, cfg: AuditConfig = AuditConfig()) -> bool:
    """Whether ``run`` has an audit with ``cfg``'s settings."""
    if not run.file(AUDIT_JSON).is_file() or not run.file(AUDIT_NPZ).is_file():
        return False
    return run.read_json(AUDIT_JSON).get("config") == asdict(cfg)


def audit_arrays(run: Run) -> dict[str, np.ndarray] | None:
    """The per-image audit of ``run`` (see :func:`cascade`), or None when it was not audited."""
    return run.read_npz(AUDIT_NPZ) if run.file(AUDIT_NPZ).is_file() else None


def pgd_cells(profile: str, store: Store) -> list[Run]:
    """The runs the audit is for: the finished, PGD-trained (ε > 0) cells of ``profile``'s PGD experiment, in grid order."""
    runs = []
    for cell in grid.expand(profile, experiments=["pgd"]):
        run = store.find(cell.config)
        if cell.config.adv.eps > 0 and run is not None and run.finished and not run.diverged:
            runs.append(run)
    return runs


def audit_profile(profile: str, store: Store, cfg: AuditConfig = AuditConfig(), data_root=None, progress: bool = True) -> list[dict]:
    """Audit every PGD cell of ``profile`` that has weights and no audit with ``cfg`` yet (resumable run by run)."""
    from tqdm.auto import tqdm

    todo = [r for r in pgd_cells(profile, store) if r.file("model.pt").is_file() and not audited(r, cfg)]
    done = []
    for run in tqdm(todo, desc=f"audit {profile}", unit="run", disable=not progress):
        with run.lock():
            done.append(audit_run(run, cfg, data_root=data_root))
    return done
