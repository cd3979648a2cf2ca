"""``arlib grid --executor slurm`` against a real SLURM (no mocks).

The cluster is ``../shared/tools/slurm_localhost.sh up`` (CI starts it in
``.ci/run``, with ``SLURM_LOCAL_FAKE_GPUS=2``): one node, slurmctld, slurmd,
munge and slurmdbd with accounting. Tests marked ``slurm`` skip, saying why,
when no such cluster answers; they never submit to another SLURM unless
``ARLIB_TEST_SLURM=1`` says so. The tasks run the interpreter of the test
process and import this checkout's ``arlib`` (``PYTHONPATH``, passed on by
sbatch), with one thread each: ``--cpus-per-task 1`` here, ``OMP_NUM_THREADS=1``
for the local reference, so both stores must be bit-for-bit equal.

Measured on the 2-core CI machine while two other trainings ran on it
(load 4-5): cluster up 2-3 s (about 50 s the first time, installing
Debian's packages), down 11 s; the array of 4 smoke cells 40-60 s from
submission to finished; the pre-empted task started again 10-12 s after
SIGUSR2 (5 s of it the test cluster's cred_expire); the slurm tests in all
about 130 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from arlib import cluster, profiles
from arlib.config import standard_adv
from arlib.cells import cell_status
from arlib.store import Run, Store, atomic_write_json
from conftest import REPO, needs_cifar10

MARK = "# managed by slurm_localhost.sh"
GRID = ["grid", "--profile", "smoke", "--experiments", "pgd", "--quiet", "--no-analyze"]  # training and evaluation: what the equality check needs


def cli(args, **env):
    e = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-m", "arlib.cli", *map(str, args)], capture_output=True, text=True, env=e, cwd=REPO, timeout=400)


def why_no_cluster() -> str:
    """Why the slurm tests cannot run here ('' when they can)."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install -e '.[cluster]')"
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    ours = conf.is_file() and conf.read_text().startswith(MARK)
    if not ours and os.environ.get("ARLIB_TEST_SLURM") != "1":
        return (
            f"no test cluster: {conf} is not slurm_localhost.sh's (start one with "
            "../shared/tools/slurm_localhost.sh up, or set ARLIB_TEST_SLURM=1 to use this SLURM)"
        )
    try:
        cluster.check_slurm()
    except cluster.ClusterError as e:
        return f"no SLURM controller answers (start the test cluster with ../shared/tools/slurm_localhost.sh up): {e}"
    return ""


@pytest.fixture(scope="module")
def slurm():
    reason = why_no_cluster()
    if reason:
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(REPO))  # tasks submitted from this process import this checkout
        yield


def wait_gone(job: str, timeout: float = 120) -> None:
    """Until SLURM no longer lists any task of ``job``."""
    end = time.monotonic() + timeout
    while cluster.queued_tasks({job}):
        assert time.monotonic() < end, f"job {job} still listed after {timeout} s"
        time.sleep(0.5)


def finals(store_root: Path) -> dict:
    return {r.hash: r.metrics()["final"] for r in Store(store_root).runs()}


@pytest.fixture(scope="module")
def grids(slurm, tmp_path_factory):
    """The smoke pgd grid (4 cells) as one SLURM array, and the same grid run by a local worker."""
    root = tmp_path_factory.mktemp("grids")
    gpus = "gpu" in subprocess.run(["sinfo", "--noheader", "--format", "%G"], capture_output=True, text=True).stdout
    t0 = time.monotonic()
    on_slurm = cli([*GRID, "--results", root / "slurm", "--executor", "slurm", "--time", "10", "--cpus-per-task", "1"] + ["--gpus-per-job", "1"] * gpus)
    slurm_s = time.monotonic() - t0
    assert on_slurm.returncode == 0, on_slurm.stderr
    local = cli([*GRID, "--results", root / "local"])
    assert local.returncode == 0, local.stderr
    print(f"array of 4 smoke cells, submitted to finished: {slurm_s:.0f} s")
    return root, on_slurm, gpus


@needs_cifar10
@pytest.mark.slurm
def test_array_of_smoke_cells_equals_the_local_grid(grids):
    root, on_slurm, _ = grids
    submitted = json.loads((root / "slurm" / "smoke" / "slurm" / "cells.json").read_text())
    assert len(submitted) == 4 and len({j.split("_")[0] for j in submitted.values()}) == 1  # one array, one task per cell
    assert "submitted 4 cells as SLURM job" in on_slurm.stderr
    a, b = finals(root / "slurm" / "smoke"), finals(root / "local" / "smoke")
    assert set(a) == set(b) == set(submitted)
    assert a == b  # same thread count and precision: bit-for-bit the same metrics


@needs_cifar10
@pytest.mark.slurm
def test_rerun_submits_nothing_when_all_cells_finished(grids):
    root, _, _ = grids
    folder = root / "slurm" / "smoke" / "slurm"
    before = sorted(p.name for p in folder.iterdir())
    r = cli([*GRID, "--results", root / "slurm", "--executor", "slurm"])
    assert r.returncode == 0, r.stderr
    assert "nothing to submit: 4 of 4 cells finished" in r.stdout and "submitted" not in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before  # no sbatch script, no pickle
    dry = cli([*GRID, "--results", root / "slurm", "--dry-run"])
    assert [line.split()[2] for line in dry.stdout.splitlines()] == ["finished"] * 4
    # A task whose cell finished meanwhile (a duplicate, a late requeue) leaves it alone.
    run = Store.for_profile("smoke", root / "slurm").runs()[0]
    stamp = {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()}
    assert cluster.run_cell(str(root / "slurm"), "smoke", run.hash, analyse="0") == "finished"
    assert {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()} == stamp


@needs_cifar10
@pytest.mark.slurm
def test_gpus_per_job_reaches_the_scheduler_and_the_task(grids):
    root, on_slurm, gpus = grids
    if not gpus:
        pytest.skip("the cluster declares no GPUs (SLURM_LOCAL_FAKE_GPUS=2 slurm_localhost.sh up)")
    folder = root / "slurm" / "smoke" / "slurm"
    assert "#SBATCH --gpus-per-node=1" in next(folder.glob("*_submission.sh")).read_text()
    logs = sorted(folder.glob("*_log.out"))
    assert len(logs) == 4
    for log in logs:  # one fake GPU each; no CUDA behind it, so the task trains on the CPU
        assert any(f"CUDA_VISIBLE_DEVICES={i}," in log.read_text() for i in (0, 1)), log.read_text()


@needs_cifar10
@pytest.mark.slurm
def test_preempted_task_is_requeued_and_resumes_from_its_checkpoint(slurm, tmp_path):
    import torch

    from arlib.train import train_run

    cfg = profiles.get("smoke").base("cifar10").replace(adv=standard_adv(8), train={"epochs": 4})
    store = Store.for_profile("smoke", tmp_path / "slurm")
    run = store.run(cfg)
    job = cluster.submit(store, [cfg.hash], cluster.SlurmOptions(time_min=20), analyse=False)  # a signal in the first 10 min is a pre-emption, not a time-out
    ckpt = run.file("checkpoint.pt")
    end = time.monotonic() + 120
    while not (ckpt.exists() and torch.load(ckpt, weights_only=False)["epoch"] >= 1):
        assert time.monotonic() < end and not run.finished, "the task did not checkpoint an epoch"
        time.sleep(0.2)
    assert cell_status(run) == ("running", job)
    # SLURM's pre-emption / time-limit signal; scancel may exit non-zero although it delivered it.
    subprocess.run(["scancel", "--signal", "USR2", job], capture_output=True)

    # The uninterrupted reference, trained while the task is requeued and restarts.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the task runs (--cpus-per-task 1)
    try:
        reference = train_run(cfg, Store(tmp_path / "reference"), progress=False)
    finally:
        torch.set_num_threads(threads)
    wait_gone(job)
    out = (cluster.log_folder(store) / f"{job}_0_log.out").read_text()
    assert run.finished, out[-2000:]
    history = run.metrics()["history"]
    assert [h["epoch"] for h in history] == list(range(1, 5))
    assert [h["epoch"] for h in history if h.get("resumed")] and history[0].get("resumed") is None  # restarted mid-run
    assert run.metrics()["final"] == reference.metrics()["final"]

    stamp = lambda line: datetime.strptime(line.split("(", 1)[1][:23], "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    caught = [stamp(line) for line in out.splitlines() if "Caught signal SIGUSR2" in line and "preempted" in line]
    started = [stamp(line) for line in out.splitlines() if "Starting with JobEnvironment" in line]
    assert len(caught) == 1 and len(started) == 2 and "Requeued job" in out, out
    print(f"pre-emption to resumed: {(started[1] - caught[0]).total_seconds():.1f} s")


@pytest.mark.slurm
def test_a_refused_submission_is_a_one_line_error(slurm, tmp_path):
    r = cli([*GRID, "--results", tmp_path / "results", "--executor", "slurm", "--partition", "no-such-partition"])
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "sbatch refused" in r.stderr and "partition" in r.stderr, r.stderr


@pytest.mark.slurm
def test_a_failed_task_ends_the_wait_with_an_error(slurm, tmp_path):
    store = Store.for_profile("smoke", tmp_path)
    job = cluster.submit(store, ["0" * 16], cluster.SlurmOptions(time_min=5))  # no such cell: the task raises
    with pytest.raises(cluster.ClusterError, match=f"job {job} ended with 1 cell"):
        cluster.wait(store, ["0" * 16], job, progress=False, poll_s=0.5)
    assert "no config.json" in (cluster.log_folder(store) / f"{job}_0_log.err").read_text()


# ----------------------------------------------------------------------------- without a cluster


def test_missing_sbatch_is_a_one_line_error(tmp_path):
    r = cli([*GRID, "--results", tmp_path / "results", "--executor", "slurm"], PATH=str(tmp_path / "empty"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "sbatch" in r.stderr and "not on PATH" in r.stderr, r.stderr
    assert not (tmp_path / "results").exists()


def test_silent_controller_is_a_one_line_error(tmp_path):
    import shutil

    if shutil.which("scontrol") is None:
        pytest.skip("SLURM's client tools are not installed")
    conf = tmp_path / "slurm.conf"  # a controller nobody runs
    conf.write_text("ClusterName=nowhere\nSlurmctldHost=localhost\nSlurmctldPort=1\nAuthType=auth/none\nNodeName=localhost\nPartitionName=p Nodes=localhost\n")
    t0 = time.monotonic()
    r = cli([*GRID, "--results", tmp_path / "results", "--executor", "slurm"], SLURM_CONF=str(conf))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "controller" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 30 and not (tmp_path / "results").exists()


def test_slurm_flags_need_the_slurm_executor(tmp_path):
    r = cli([*GRID, "--results", tmp_path / "results", "--partition", "gpu"])
    assert r.returncode == 2 and "--executor slurm" in r.stderr and not (tmp_path / "results").exists()


def test_a_locked_cell_is_running_and_names_its_task(tmp_path):
    cfg = profiles.get("smoke").base("cifar10")
    store = Store(tmp_path)
    run = store.run(cfg)
    assert cell_status(run) == ("missing", "")
    assert cell_status(run, queued={run.hash: "7_3"}) == ("queued", "7_3")
    atomic_write_json(run.file(cluster.HOLDER), {"job_id": "7_3"})
    with run.lock(0):  # another open file description: the same as another process holding it
        assert cell_status(Run(run.path)) == ("running", "7_3")
    assert cell_status(run)[0] == "missing"
