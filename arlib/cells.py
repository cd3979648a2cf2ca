"""The state of a grid's cells, read from the results store, for every executor.

A cell is ``missing``, ``partial``, ``queued`` (a SLURM task waits for it), ``running`` (a worker
or an array task holds its lock), ``finished``, ``analysed`` or ``diverged``. Local workers
(:mod:`arlib.grid`) and SLURM array tasks (:mod:`arlib.cluster`) both read and write it through this
module, which imports neither of them.
"""

from __future__ import annotations

import json

from filelock import FileLock, Timeout

from .store import Run, Store

HOLDER = "slurm.json"  # in a run's directory while an array task works on it


def holder(run: Run) -> dict | None:
    """What ``slurm.json`` says about the task working on ``run`` (None if no task is)."""
    try:
        return json.loads(run.file(HOLDER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def locked(run: Run) -> bool:
    """Whether a process (a local worker or an array task) holds the run's lock right now."""
    path = run.file("run.lock")
    if not path.exists():
        return False
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # a read-only store: nobody can be training in it
        return False
    lock.release()
    return False


def complete(run: Run | None, analyse: bool = True) -> bool:
    """Whether ``run`` needs no more work: diverged, or finished and analysed if ``analyse``."""
    return run is not None and run.finished and (run.analysed or not analyse or run.diverged)


def cell_status(run: Run | None, queued: dict[str, str] | None = None, analyse: bool = True) -> tuple[str, str]:
    """``(status, job)`` of a cell, read from the store.

    status: ``missing`` (nothing yet), ``partial`` (a checkpoint, nobody on
    it), ``queued`` (a SLURM task waits for it), ``running`` (locked),
    ``finished``, ``analysed`` or ``diverged``; job: the SLURM array task on it, if any.
    ``queued`` maps config hashes to the job ids SLURM still lists
    (:func:`arlib.cluster.queued`).
    """
    queued = queued or {}
    if run is None:
        return "missing", ""
    if complete(run, analyse):
        return run.status(), ""
    if locked(run):
        return "running", (holder(run) or {}).get("job_id", "")
    if run.hash in queued:
        return "queued", queued[run.hash]
    return {"new": "missing"}.get(run.status(), run.status()), ""


def todo(cells: list, store: Store, queued: dict[str, str] | None = None, analyse: bool = True) -> tuple[list, list]:
    """``(cells to run, cells some worker or queued task already has)``: what a new submission should add."""
    new, busy = [], []
    for cell in cells:
        run = store.find(cell.config)
        status, _ = cell_status(run, queued, analyse)
        if status in ("running", "queued"):
            busy.append(cell)
        elif not complete(run, analyse):
            new.append(cell)
    return new, busy
