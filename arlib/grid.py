"""Expand a profile's grid and run what is missing.

``run_grid("cpu", ["cifar10"], ["pgd", "fgsm"])`` trains every cell that is
not finished yet (finished runs are never recomputed; partial ones resume),
then analyses every trained cell that has no analysis yet. Cells are
independent; a lock per run lets several processes share one grid.
:mod:`arlib.cells` reads a cell's state from the store for any executor
(local workers, SLURM array tasks of :mod:`arlib.cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tqdm.auto import tqdm

from . import profiles
from .config import RunConfig
from .errors import ArlibError, DamagedRunError
from .store import Run, Store, Timeout


@dataclass(frozen=True)
class Cell:
    experiment: str
    config: RunConfig


def expand(
    profile: str | profiles.Profile, datasets: list[str] | None = None, experiments: list[str] | None = None, with_claim_seeds: bool = True
) -> list[Cell]:
    """All cells of ``profile`` (a name or a :class:`~arlib.profiles.Profile`) for the datasets and experiments asked, without duplicates."""
    prof = profiles.get(profile) if isinstance(profile, str) else profile
    datasets = datasets or list(prof.datasets)
    experiments = experiments or list(profiles.EXPERIMENTS)
    cells, seen = [], set()
    for ds in datasets:
        for exp in experiments:
            cfgs = prof.cells(ds, exp)
            if with_claim_seeds:
                cfgs += prof.claim_cells(ds, exp)
            for cfg in cfgs:
                if cfg.hash not in seen:
                    seen.add(cfg.hash)
                    cells.append(Cell(exp, cfg))
    return cells


def ensure_run(cfg: RunConfig, store: Store, data_root=None, analyse: bool = True, progress: bool = True, lock_timeout: float = -1, on_saved=None) -> Run:
    """The finished (and, if asked, analysed) run of ``cfg``, training it if needed.

    Raises :class:`arlib.store.Timeout` if another process holds the run for
    longer than ``lock_timeout`` seconds (-1: wait as long as it takes). ``on_saved``:
    as :func:`arlib.train.train_run`'s.
    """
    from .train import train_run

    run = train_run(cfg, store, data_root=data_root, progress=progress, lock_timeout=lock_timeout, on_saved=on_saved)
    if analyse and not run.analysed and not run.diverged:  # a diverged run has no weights to analyse
        analyse_run(run, data_root=data_root, lock_timeout=lock_timeout)
    return run


def analyse_run(run: Run, data_root=None, lock_timeout: float = -1) -> None:
    """Run :func:`arlib.analysis.analyse` and :func:`arlib.bound.bound_terms` on a finished run and store their results.

    The loss variation runs on the per-epoch monitor subset of the test set (its cost grows
    with the images attacked); the PGD accuracy is the one the run's final evaluation stored
    per example (``outcomes.npz``), not a second attack. A diverged run is left as it is.
    """
    from . import analysis, bound, data
    from .networks import load_model
    from .store import require_sound

    cfg = run.config
    with run.lock(lock_timeout):
        if require_sound(run).analysed or run.diverged:  # damaged weights or outcomes are reported, never analysed
            return
        ds = data.prepare_run(cfg, data_root)
        model = load_model(run, num_classes=ds.num_classes)
        outcomes = run.outcomes()
        pgd = None
        if outcomes is not None and "pgd_robust" in outcomes:
            e = cfg.eval
            pgd = analysis.pgd_summary(outcomes["pgd_clean_correct"], outcomes["pgd_robust"], e.eps, e.alpha, e.steps)
        summary, arrays = analysis.analyse(
            model,
            ds,
            data.input_size(cfg.data.dataset, ds.image_size),
            seed=cfg.train.seed,
            eval_cfg=cfg.eval,
            attack_split=data.monitor_split(ds, cfg.eval),
            pgd=pgd,
        )
        summary["config_hash"] = cfg.hash
        bound.bound_terms(run, data_root, recompute=True)
        run.save_analysis(summary, arrays)


def run_grid(
    profile: str,
    datasets=None,
    experiments=None,
    store: Store | None = None,
    data_root=None,
    analyse: bool = True,
    progress: bool = True,
    with_claim_seeds: bool = True,
    on_saved=None,
) -> list[Run]:
    """Train and analyse every missing cell; several processes may share one grid.

    A cell another process is working on is skipped at first (lock timeout 0)
    and waited for at the end, so two workers never queue behind each other.
    A finished cell whose files are damaged is reported, not retrained, and the other
    cells go on; at the end one :class:`~arlib.errors.ArlibError` lists them all. A cell
    whose training diverged is recorded as such (:func:`arlib.train.train_run`), not analysed,
    and the grid goes on.
    (An unfinished cell's damaged checkpoint is moved aside and retrained: :func:`arlib.train.train_run`.)
    ``on_saved``: as :func:`arlib.train.train_run`'s, for every cell trained.
    """
    store = store or Store.for_profile(profile)
    cells = expand(profile, datasets, experiments, with_claim_seeds)
    done: dict[str, Run] = {}
    deferred: list[Cell] = []
    bar = tqdm(total=len(cells), desc=f"grid {profile}", unit="run", disable=not progress)
    damaged: list[DamagedRunError] = []
    for cell in cells:
        try:
            done[cell.config.hash] = ensure_run(cell.config, store, data_root, analyse, progress, lock_timeout=0, on_saved=on_saved)
            bar.update(1)
        except Timeout:
            deferred.append(cell)
        except DamagedRunError as e:
            damaged.append(e)
    for cell in deferred:
        try:
            done[cell.config.hash] = ensure_run(cell.config, store, data_root, analyse, progress, on_saved=on_saved)
            bar.update(1)
        except DamagedRunError as e:
            damaged.append(e)
    bar.close()
    if damaged:
        listed = "; ".join(f"{e.path}: {e.reason}" for e in damaged)
        raise ArlibError(f"{len(damaged)} of {len(cells)} grid cells have damaged files and were left as they are, the others are done: {listed}")
    return [done[c.config.hash] for c in cells]
