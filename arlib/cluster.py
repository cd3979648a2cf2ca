"""Run a profile's grid on SLURM: one job array through submitit, one task per missing cell.

``arlib grid --profile paper --executor slurm`` decides from the results store
which cells are not finished, writes their ``config.json``, and submits them
as one ``map_array`` job array. Each array task is :class:`CellTask`, an
importable callable of this package that takes plain strings (results root,
profile, config hash), reads the config from the store and calls
:func:`arlib.grid.ensure_run`, the same code path as a local worker: train,
evaluate, analyse, every write atomic and under the cell's lock.

Pre-emption and time limits: SLURM sends SIGUSR2 ``signal_delay_s`` before it
stops a task; submitit catches it, and because :class:`CellTask` is
``Checkpointable`` it requeues the task. The requeued task resumes from the
cell's last per-epoch ``checkpoint.pt`` (at most one epoch is lost), and a
task whose cell is already finished returns without touching its files.

Tasks import ``arlib`` from the interpreter that submitted them
(``sys.executable``, e.g. ``.venv/bin/python`` with ``pip install -e .``);
submitit pickles :class:`CellTask` by reference, so the package must be
importable on the compute nodes (a shared file system, as usual), and
``sbatch`` passes the submitting shell's environment (``ARLIB_DATA``,
``PYTHONPATH``) on to the tasks.

While a task works on a cell, ``slurm.json`` in the run's directory names its
job (``<array id>_<task index>``); :func:`arlib.grid.cell_status` shows it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArlibError
from .cells import HOLDER, complete, holder
from .store import Run, Store, atomic_write_json

CLIENT_TOOLS = ("sbatch", "srun", "squeue", "scontrol", "scancel")
CONTROLLER_TIMEOUT_S = 5.0


class ClusterError(ArlibError):
    """SLURM is not usable from here, refused the submission, or its tasks failed."""


@dataclass
class SlurmOptions:
    """What one array task asks of the scheduler (``arlib grid --executor slurm`` flags)."""

    partition: str | None = None
    time_min: int = 240  # per task; a task that runs out is requeued and resumes (up to max_requeues times)
    cpus_per_task: int = 1  # also torch's thread count in the task
    mem_gb: float | None = None  # None: the partition's default (DefMemPerCPU)
    gpus_per_job: int = 0
    array_parallelism: int = 256  # tasks running at once
    extra: dict[str, str] = field(default_factory=dict)  # any other sbatch option, e.g. {"account": "abc"}
    signal_delay_s: int = 90  # SIGUSR2 this long before the time limit: time to stop and requeue
    max_requeues: int = 10  # time-limit requeues per task (pre-emptions are not counted)


def check_slurm(timeout: float = CONTROLLER_TIMEOUT_S) -> None:
    """Raise :class:`ClusterError` unless SLURM's client tools exist and the controller answers in ``timeout`` s."""
    missing = [t for t in CLIENT_TOOLS if shutil.which(t) is None]
    if missing:
        raise ClusterError(
            f"--executor slurm needs SLURM's client tools, but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH; nothing was submitted"
        )
    try:
        r = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"the SLURM controller did not answer within {timeout:g} s (scontrol ping); nothing was submitted") from None
    if " is UP" not in r.stdout:  # one line per controller (primary, backups); one that is up is enough
        raise ClusterError(f"the SLURM controller does not answer ({_first_line(r.stdout + r.stderr)}); nothing was submitted")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0]


def log_folder(store: Store) -> Path:
    """``<root>/<profile>/slurm/``: sbatch scripts, submitit pickles, one stdout/stderr log per task."""
    return store.root / "slurm"


def executor(store: Store, opts: SlurmOptions, name: str):
    """A submitit ``SlurmExecutor`` writing into :func:`log_folder` with ``opts``."""
    try:
        import submitit
    except ImportError:
        raise ClusterError("--executor slurm needs submitit: pip install 'arlib[cluster]'") from None
    ex = submitit.SlurmExecutor(folder=log_folder(store), max_num_timeout=opts.max_requeues)
    params = dict(
        job_name=name, time=opts.time_min, cpus_per_task=opts.cpus_per_task, array_parallelism=opts.array_parallelism, signal_delay_s=opts.signal_delay_s
    )
    if opts.partition:
        params["partition"] = opts.partition
    if opts.mem_gb:
        params["mem"] = f"{int(opts.mem_gb * 1024)}MB"
    if opts.gpus_per_job:
        params["gpus_per_node"] = opts.gpus_per_job  # one node per task: the task's GPUs
    if opts.extra:
        params["additional_parameters"] = dict(opts.extra)
    ex.update_parameters(**params)
    return ex


def submit(store: Store, hashes: list[str], opts: SlurmOptions, data_root=None, analyse: bool = True) -> str:
    """Submit one array task per config hash (their ``config.json`` must be in ``store``); return the job id."""
    check_slurm()
    root = str(store.root.parent.resolve())
    profile = store.root.name
    n = len(hashes)
    ex = executor(store, opts, name=f"arlib-{profile}")
    data_root = str(Path(data_root).expanduser().resolve()) if data_root else ""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr; the error below says it in one line
            jobs = ex.map_array(CellTask(), [root] * n, [profile] * n, hashes, [data_root] * n, ["1" if analyse else "0"] * n)
    except Exception as e:  # submitit wraps sbatch's stderr in FailedJobError
        raise ClusterError(f"sbatch refused the job array: {_first_line(e)}") from None
    job_id = jobs[0].job_id.split("_")[0]
    record_submission(store, hashes, job_id)
    return job_id


def record_submission(store: Store, hashes: list[str], job_id: str) -> None:
    """Remember which array task got which cell (``slurm/cells.json``), so that a rerun does not submit it twice."""
    path = log_folder(store) / "cells.json"
    cells = json.loads(path.read_text()) if path.exists() else {}
    cells.update({h: f"{job_id}_{i}" if len(hashes) > 1 else job_id for i, h in enumerate(hashes)})
    atomic_write_json(path, cells)


def queued(store: Store) -> dict[str, str]:
    """Config hash -> job id of the cells whose array task SLURM still lists (pending or running).

    Empty when nothing was ever submitted from this store or SLURM is not reachable.
    """
    path = log_folder(store) / "cells.json"
    if not path.exists() or shutil.which("squeue") is None:
        return {}
    cells = json.loads(path.read_text())
    try:
        listed = queued_tasks({j.split("_")[0] for j in cells.values()}, timeout=CONTROLLER_TIMEOUT_S)
    except (subprocess.TimeoutExpired, ClusterError):
        return {}
    return {h: j for h, j in cells.items() if j in listed}


def queued_tasks(job_ids: set[str], timeout: float = 30) -> set[str]:
    """The tasks (``<array>_<index>``, or plain job ids) of ``job_ids`` that SLURM still lists: pending, running, requeued."""
    import getpass

    # All of this user's jobs, filtered here: squeue fails as a whole on one id it has forgotten.
    r = subprocess.run(["squeue", "--noheader", "--array", "--user", getpass.getuser(), "--format", "%i"], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise ClusterError(f"squeue failed: {_first_line(r.stderr)}")
    return {t for t in r.stdout.split() if t.split("_")[0] in job_ids}


def wait(store: Store, hashes: list[str], job_id: str, analyse: bool = True, progress: bool = True, poll_s: float = 2.0) -> None:
    """Block until every cell of ``hashes`` is finished in the store, with a bar counting them.

    Progress is read from the store, never from submitit's result files. If
    SLURM no longer lists any task of the array while cells are missing, the
    tasks failed: :class:`ClusterError` names the cells and the log folder.
    """
    from tqdm.auto import tqdm

    runs = [Run(store.root / "runs" / h) for h in hashes]
    bar = tqdm(total=len(runs), desc=f"job {job_id}", unit="cell", disable=not progress)
    gone_since = None
    while True:
        n = sum(complete(r, analyse) for r in runs)
        bar.update(n - bar.n)
        if n == len(runs):
            break
        try:
            listed = bool(queued_tasks({job_id}))
        except (subprocess.TimeoutExpired, ClusterError):  # the controller is busy or restarting: ask again later
            listed = True
        if listed:
            gone_since = None
        elif gone_since is None:
            gone_since = time.monotonic()
        elif time.monotonic() - gone_since > 3 * poll_s:  # a last write may still be landing
            bar.close()
            missing = [r.hash for r in runs if not complete(r, analyse)]
            raise ClusterError(f"job {job_id} ended with {len(missing)} cell(s) unfinished ({', '.join(missing)}); see {log_folder(store)}/{job_id}_*_log.err")
        time.sleep(poll_s)
    bar.close()


# ----------------------------------------------------------------------------- the array task (runs on a compute node)


def _cuda_devices() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def job_id_here() -> str:
    """``<array id>_<task index>`` inside an array task, the plain job id otherwise ('' outside SLURM)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID", "")


def run_cell(results_root: str, profile: str, config_hash: str, data_root: str = "", analyse: str = "1") -> str:
    """Train, evaluate and analyse one cell of the store ``<results_root>/<profile>``; return its status.

    Plain strings in, so that a shell or another scheduler can call it too. A
    finished cell is returned as it is (nothing retrained or rewritten).
    """
    store = Store.for_profile(profile, results_root)
    run = Run(store.root / "runs" / config_hash)
    if not run.file("config.json").exists():
        raise ClusterError(f"no config.json for {config_hash} in {store.root}")
    import torch

    from .grid import ensure_run

    cfg = run.config
    analyse = analyse not in ("0", "", "false", "False")
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:  # the allocation, not the node's core count: same threads, same numbers as a local worker with OMP_NUM_THREADS
        torch.set_num_threads(int(cpus))
    job = job_id_here() or "(no SLURM job)"
    print(
        f"arlib task {job}: cell {config_hash} ({profile}) on {socket.gethostname()}, CUDA_VISIBLE_DEVICES={_cuda_devices() or '-'}, "
        f"cuda available {torch.cuda.is_available()}, {torch.get_num_threads()} threads",
        flush=True,
    )
    if complete(run, analyse):
        print(f"arlib task {job}: {config_hash} already {run.status()}; nothing to do", flush=True)
        return run.status()
    info = {
        "job_id": job,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cuda_visible_devices": _cuda_devices(),
        "restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
    }
    atomic_write_json(run.file(HOLDER), info)
    try:
        ensure_run(cfg, store, data_root or None, analyse=analyse, progress=False)
    finally:
        if (holder(run) or {}).get("pid") == os.getpid():
            run.file(HOLDER).unlink(missing_ok=True)
    print(f"arlib task {job}: {config_hash} {run.status()}", flush=True)
    return run.status()


def _checkpointable():
    try:
        from submitit.helpers import Checkpointable
    except ImportError:  # arlib without its cluster extra: the class still exists, submit() says what is missing
        return object
    return Checkpointable


class CellTask(_checkpointable()):
    """:func:`run_cell` as a submitit ``Checkpointable``: on SIGUSR2 the task is requeued with the same arguments.

    Its own state is nothing: the cell's ``checkpoint.pt`` in the store is what
    the requeued task resumes from.
    """

    def __call__(self, results_root: str, profile: str, config_hash: str, data_root: str = "", analyse: str = "1") -> str:
        return run_cell(results_root, profile, config_hash, data_root, analyse)


if __name__ == "__main__":  # python -m arlib.cluster <results_root> <profile> <config_hash>: one cell, as a task runs it
    print(run_cell(*sys.argv[1:]))
