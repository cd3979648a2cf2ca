"""Fault injection: bad input and damaged files give one line and lose nothing (issue 12).

Every case runs a real ``arlib`` subprocess on the ``smoke`` profile against a tiny fake
CIFAR-10 archive (20 training and 10 test images per class, random pixels) in a private
data cache, so nothing here reads or writes the user's cache or the shared data. Faults
that a test cannot cause for real as root on a shared machine (a full disk, a read-only
file system, a kill in the middle of a write) are injected into the subprocess by
:data:`FAULT_RUNNER` through ``$ARLIB_TEST_FAULT``:

* ``enospc:<name>``  - writing a file whose path contains ``<name>`` fails with ENOSPC
  (at the fsync of the store's atomic write, or while a tar member is extracted);
* ``erofs:<dir>``    - creating or writing anything under ``<dir>`` fails with EROFS;
* ``kill:<name>``    - the process SIGKILLs itself while writing ``<name>``'s temporary file.

Each test asserts the exit code, the one-line message, the store's files before and
after, and, where a run is resumed or retrained, results bitwise equal to the
uninterrupted run of the module's reference grid.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

FAULT_RUNNER = r"""
import errno, os, signal, sys, tarfile
kind, _, arg = os.environ["ARLIB_TEST_FAULT"].partition(":")

def target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""

if kind in ("enospc", "kill"):
    real_fsync = os.fsync
    def fsync(fd):
        if arg in os.path.basename(target(fd)):
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)
    os.fsync = fsync
    real_makefile = tarfile.TarFile.makefile
    def makefile(self, tarinfo, targetpath):
        if kind == "enospc" and arg in targetpath:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), targetpath)
        return real_makefile(self, tarinfo, targetpath)
    tarfile.TarFile.makefile = makefile
elif kind == "erofs":
    real_open, real_mkdir = os.open, os.mkdir
    def under(p):
        return os.path.abspath(os.fsdecode(p)).startswith(arg)
    def open_(path, flags, *a, **k):
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *a, **k)
    def mkdir(path, *a, **k):
        if under(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_mkdir(path, *a, **k)
    os.open, os.mkdir = open_, mkdir

from arlib.cli import main
sys.argv[0] = "arlib"
sys.exit(main(sys.argv[1:]))
"""

# The smoke grid's pgd cells (eps 0, 4, 8, 16), trained once per module as the reference.
GRID = ["grid", "--profile", "smoke", "--experiments", "pgd", "--no-analyze", "--quiet"]


# ----------------------------------------------------------------------------- helpers


def fake_cifar10_tarball(path: Path, seed: int = 0, per_class=(20, 10)) -> Path:
    """A ``cifar10-jpeg.tar.gz`` with the real layout and class names, random 32x32 PNGs."""
    from PIL import Image

    from arlib.data import CIFAR10_CLASSES

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for split, n in zip(("train", "test"), per_class):
            for cls in CIFAR10_CLASSES:
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.png")
                    info.size = buf.tell()
                    buf.seek(0)
                    tf.addfile(info, buf)
    return path


def env_for(results: Path, data: Path, cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARLIB_")}
    env.update(ARLIB_RESULTS=str(results), ARLIB_DATA=str(data), ARLIB_CACHE=str(cache), ARLIB_NO_SHARED="1",
               ARLIB_NO_DOWNLOAD="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **extra)
    return env


def arlib(args, env, fault: str | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    if fault:
        cmd = [sys.executable, "-c", FAULT_RUNNER, *args]
        env = dict(env, ARLIB_TEST_FAULT=fault)
    else:
        cmd = [sys.executable, "-m", "arlib.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO, **kw)


def one_line_error(r: subprocess.CompletedProcess, code: int = 2, *needles: str) -> str:
    """The single stderr line of a failed command, checked for its code, prefix and words."""
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == code, (r.returncode, r.stderr)
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("arlib: error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (the store's contents, for before/after)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def same_result(a: Path, b: Path) -> None:
    """Two run folders hold bitwise-equal results: metrics (times aside) and weights."""
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["final"] == mb["final"]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in ma["history"]] == [{k: v for k, v in h.items() if k != "seconds"} for h in mb["history"]]
    sa, sb = (torch.load(d / "model.pt", weights_only=True) for d in (a, b))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Fake data, a warm private cache and the reference smoke grid (4 pgd cells), trained once."""
    base = tmp_path_factory.mktemp("faults")
    data = base / "data"
    fake_cifar10_tarball(data / "cifar10-jpeg.tar.gz")
    cache = base / "cache"
    results = base / "reference"
    r = arlib(GRID, env_for(results, data, cache))
    assert r.returncode == 0, r.stderr
    runs = sorted((results / "smoke" / "runs").iterdir())
    assert len(runs) == 4
    return {"data": data, "cache": cache, "reference": results, "runs": {p.name: p for p in runs}}


@pytest.fixture
def store(world, tmp_path):
    """A copy of the reference results (all four cells finished) and an env pointing at it."""
    results = tmp_path / "results"
    shutil.copytree(world["reference"], results)
    return results, env_for(results, world["data"], world["cache"])


def run_dir(results: Path, h: str) -> Path:
    return results / "smoke" / "runs" / h


def eps_cell(world, eps: float) -> str:
    return next(h for h, p in world["runs"].items() if json.loads((p / "config.json").read_text())["adv"]["eps"] == eps)


# ----------------------------------------------------------------------------- 1. bad input


BAD_CONFIGS = [
    ({"train": {"epochs": "3"}}, "train.epochs must be an integer"),
    ({"train": {"lr": "0.1"}}, "train.lr must be a number > 0"),
    ({"model": {"width": "2"}}, "model.width must be an integer"),
    ({"adv": {"steps": 2.5}}, "adv.steps must be an integer >= 1, got 2.5"),
    ({"train": {"batch_size": 1.5}}, "train.batch_size must be an integer >= 1"),
    ({"train": {"milestones": 5}}, "train.milestones must be a list of integers"),
    ({"data": {"train_per_class": 100000}}, "data.train_per_class 100000 is more than cifar10 has per class"),
    ({"data": {"augment": "no"}}, "data.augment must be true or false"),
    ({"train": {"lr": 1e999}}, "train.lr must be a number > 0"),
    ({"adv": {"method": "pgd", "eps": 4, "alpha": 20}}, "adv.alpha 20 is larger than adv.eps 4"),
]


def main_in_process(args, monkeypatch, capsys, tmp_path) -> tuple[int, str]:
    """``arlib.cli.main(args)`` in this process (the same code path as the command, without
    a second of interpreter start-up per case); returns the exit code and stderr."""
    from arlib.cli import main

    monkeypatch.setenv("ARLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("ARLIB_CACHE", str(tmp_path / "cache"))
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("cfg,needle", BAD_CONFIGS, ids=[n.split(" ")[0] + "-" + json.dumps(c)[-12:] for c, n in BAD_CONFIGS])
def test_bad_config_value_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, cfg, needle):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    code, err = main_in_process(["train", "--config", str(path)], monkeypatch, capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1 and err.startswith("arlib: error: ") and needle in err, err
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


BAD_FLAGS = [
    (["--seed", "99999999999999999999"], "train.seed must be an integer in [0, 4294967295]"),
    (["--alpha", "20", "--eps", "4"], "adv.alpha 20 is larger than adv.eps 4"),
    (["--eps", "1"], "adv.alpha 2 is larger than adv.eps 1"),
    (["--epochs", "0"], "train.epochs must be an integer >= 1, got 0"),
    (["--spectral-norm", "nan"], "train.spectral_norm must be null or a number > 0"),
    (["--config", "DIR"], "is a directory"),
    (["--config", "LATIN1"], "is not UTF-8 text"),
]


def bad_flag_args(tmp_path, args):
    (tmp_path / "dir").mkdir(exist_ok=True)
    (tmp_path / "latin1.json").write_bytes('{"train": {"epochs": 3}} # caf\xe9'.encode("latin-1"))
    return ["train", "--profile", "smoke", *[{"DIR": str(tmp_path / "dir"), "LATIN1": str(tmp_path / "latin1.json")}.get(a, a) for a in args]]


@pytest.mark.parametrize("args,needle", BAD_FLAGS)
def test_bad_flag_or_config_file_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, args, needle):
    code, err = main_in_process(bad_flag_args(tmp_path, args), monkeypatch, capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1 and err.startswith("arlib: error: ") and needle in err, err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("args,needle", [BAD_FLAGS[0], BAD_FLAGS[5]])
def test_bad_input_as_a_command(tmp_path, args, needle):
    r = arlib(bad_flag_args(tmp_path, args), env_for(tmp_path / "results", tmp_path / "nodata", tmp_path / "cache"))
    one_line_error(r, 2, needle)
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_schema_accepts_what_is_valid():
    from arlib.config import config_from_dict

    cfg = config_from_dict({"train": {"epochs": 3.0, "milestones": [1, 2]}, "adv": {"eps": 1, "alpha": 0.5}})
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int) and cfg.train.milestones == (1, 2)
    assert cfg.hash == config_from_dict(cfg.to_dict()).hash


# ----------------------------------------------------------------------------- 2. damaged dataset archives


@pytest.mark.parametrize("damage", ["truncated", pytest.param("garbage", marks=pytest.mark.slow)])
def test_damaged_archive_is_named_and_leaves_no_scratch(tmp_path, world, damage):
    data = tmp_path / "data"
    data.mkdir()
    good = (world["data"] / "cifar10-jpeg.tar.gz").read_bytes()
    bad = good[: len(good) // 2] if damage == "truncated" else os.urandom(4096)
    (data / "cifar10-jpeg.tar.gz").write_bytes(bad)
    cache = tmp_path / "cache"
    r = arlib(["train", "--profile", "smoke", "--eps", "0", "--quiet"], env_for(tmp_path / "results", data, cache))
    one_line_error(r, 2, "archive", "cifar10-jpeg.tar.gz", "damaged")
    assert [p.name for p in (cache / "unpacked").iterdir()] == []  # no half-unpacked tree
    assert not (tmp_path / "results").exists()


def test_full_cache_while_unpacking_leaves_nothing(tmp_path, world):
    cache = tmp_path / "cache"
    r = arlib(["train", "--profile", "smoke", "--eps", "0", "--quiet"], env_for(tmp_path / "results", world["data"], cache), fault="enospc:/train/bird/")
    one_line_error(r, 2, "No space left on device (ENOSPC)", str(cache / "unpacked"))
    assert [p.name for p in (cache / "unpacked").iterdir()] == []
    assert not (tmp_path / "results").exists()


def test_damaged_cifar_batch_file_is_named(tmp_path, monkeypatch):
    from arlib import data
    from arlib.errors import DamagedDataError

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(os.urandom(1000))
    monkeypatch.setenv("ARLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARLIB_NO_SHARED", "1")
    monkeypatch.delenv("ARLIB_DATA", raising=False)
    with pytest.raises(DamagedDataError, match=r"batch file .*data_batch_1 is damaged \(UnpicklingError\)"):
        data.load_dataset("cifar10", tmp_path, download=False)


def test_replaced_archive_is_unpacked_anew(tmp_path, monkeypatch):
    from arlib import data

    monkeypatch.setenv("ARLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARLIB_NO_SHARED", "1")
    monkeypatch.delenv("ARLIB_DATA", raising=False)
    tarball = fake_cifar10_tarball(tmp_path / "d" / "cifar10-jpeg.tar.gz", seed=1, per_class=(2, 1))
    first = data.load_dataset("cifar10", tmp_path / "d")
    fake_cifar10_tarball(tarball, seed=2, per_class=(2, 1))  # same name, other content, warm cache
    second = data.load_dataset("cifar10", tmp_path / "d")
    assert first.fingerprint != second.fingerprint
    assert not torch.equal(first.train.images, second.train.images)
    assert second.source == "tarball:cifar10-jpeg.tar.gz"
    # A scratch folder of a killed unpack (old and new naming) is removed by the next unpack.
    unpacked = tmp_path / "cache" / "unpacked"
    (unpacked / "cifar10-jpeg.tmp999999").mkdir()
    stale = unpacked / f"{next(unpacked.glob('cifar10-jpeg-*')).name}.{os.uname().nodename}-999999.abc.tmp"
    stale.mkdir()
    fake_cifar10_tarball(tarball, seed=3, per_class=(2, 1))
    data.load_dataset("cifar10", tmp_path / "d")
    assert not (unpacked / "cifar10-jpeg.tmp999999").exists()


# ----------------------------------------------------------------------------- 3, 4. damaged runs


def truncate_metrics(world, results) -> tuple[str, Path]:
    h = eps_cell(world, 8)
    metrics = run_dir(results, h) / "metrics.json"
    metrics.write_bytes(metrics.read_bytes()[:40])
    return h, metrics


def test_truncated_metrics_is_listed_and_the_grid_reports_it(world, store):
    results, env = store
    h, metrics = truncate_metrics(world, results)
    before = tree(results)
    r = arlib(["runs"], env)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert f"{h} damaged" in r.stdout and "4 runs, 1 damaged" in r.stdout
    assert [l for l in r.stderr.splitlines() if l.strip()] == [f"arlib: damaged: {metrics}: not valid JSON (Unterminated string starting at)"]
    one_line_error(arlib(GRID, env), 2, "1 of 4 grid cells", str(metrics), "not valid JSON")
    assert tree(results) == before  # reported, never retrained or rewritten


@pytest.mark.slow
def test_truncated_metrics_is_named_by_every_command(world, store):
    results, env = store
    h, metrics = truncate_metrics(world, results)
    before = tree(results)
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 1 and str(metrics) in r.stderr and "Traceback" not in r.stderr
    one_line_error(arlib(["eval", h[:8]], env), 2, str(metrics))
    one_line_error(arlib(["analyze", "--run", h[:8]], env), 2, str(metrics))
    one_line_error(arlib(["train", "--profile", "smoke", "--eps", "8", "--quiet"], env), 2, str(metrics))
    assert tree(results) == before


def test_truncated_config_of_finished_run_is_noticed(world, store):
    results, env = store
    h = eps_cell(world, 4)
    cfg = run_dir(results, h) / "config.json"
    cfg.write_text(cfg.read_text()[:30])
    r = arlib(["runs"], env)
    assert r.returncode == 0 and f"{h} damaged" in r.stdout and str(cfg) in r.stderr


@pytest.mark.slow
def test_truncated_config_stops_grid_and_eval_with_its_name(world, store):
    results, env = store
    h = eps_cell(world, 4)
    cfg = run_dir(results, h) / "config.json"
    cfg.write_text(cfg.read_text()[:30])
    one_line_error(arlib(GRID, env), 2, str(cfg))
    one_line_error(arlib(["eval", h[:8]], env), 2, str(cfg))


def test_check_finds_silent_corruption_and_garbage_npz(world, store):
    results, env = store
    metrics = run_dir(results, eps_cell(world, 16)) / "metrics.json"
    m = json.loads(metrics.read_text())
    m["final"]["test_acc"] += 1  # parses, looks plausible: only the checksum can tell
    metrics.write_text(json.dumps(m))
    d = run_dir(results, eps_cell(world, 0))
    (d / "analysis.json").write_text(json.dumps({"config_hash": d.name}))
    (d / "analysis.npz").write_bytes(os.urandom(2000))
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{metrics}: content differs from its recorded checksum" in r.stderr
    assert f"{d / 'analysis.npz'}: not a readable .npz archive" in r.stderr and "pickled" not in r.stderr
    assert "4 runs, 2 damaged" in r.stdout


def test_clean_store_passes_check(store):
    results, env = store
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 0 and "every run's files parse, load and match their checksums" in r.stdout, r.stderr


def unfinish(d: Path, checkpoint: bytes | None) -> None:
    """Turn a finished run into one killed before its first checkpoint, or with ``checkpoint`` as its checkpoint."""
    for n in ("metrics.json", "model.pt", "checksums.json", "checkpoint.pt"):
        (d / n).unlink(missing_ok=True)
    if checkpoint is not None:
        (d / "checkpoint.pt").write_bytes(checkpoint)


def unfinished_cell(world, store, eps: float) -> tuple[str, Path, dict]:
    """The reference cell of ``eps`` in the test's store, made unfinished (no checkpoint yet)."""
    results, env = store
    h = eps_cell(world, eps)
    unfinish(run_dir(results, h), None)
    return h, run_dir(results, h), env


def train_cell(env, eps: float, fault: str | None = None) -> subprocess.CompletedProcess:
    return arlib(["train", "--profile", "smoke", "--eps", f"{eps:g}", "--quiet"], env, fault=fault)


def test_corrupt_checkpoint_is_moved_aside_and_the_grid_goes_on(world, store):
    results, env = store
    h = eps_cell(world, 4)
    d = run_dir(results, h)
    garbage = os.urandom(5000)
    unfinish(d, garbage)
    other = eps_cell(world, 16)
    shutil.rmtree(run_dir(results, other))  # a cell not trained yet: the grid must still run it
    r = arlib(GRID, env)
    assert r.returncode == 0, r.stderr
    warnings = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("arlib: warning: ") and "checkpoint.pt does not load" in warnings[0]
    kept = list(d.glob("checkpoint.pt.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == garbage  # evidence kept, never deleted
    same_result(d, world["runs"][h])
    same_result(run_dir(results, other), world["runs"][other])


@pytest.mark.slow
def test_damaged_config_of_unfinished_run_is_rewritten(world, store):
    h, d, env = unfinished_cell(world, store, 0)
    (d / "config.json").write_text("{")
    r = train_cell(env, 0)
    assert r.returncode == 0, r.stderr
    assert "config.json was damaged" in r.stderr and len(list(d.glob("config.json.damaged-*"))) == 1
    same_result(d, world["runs"][h])


# ----------------------------------------------------------------------------- 6. storage


def test_disk_full_then_resume_gives_the_same_result(world, store):
    h, d, env = unfinished_cell(world, store, 8)
    one_line_error(train_cell(env, 8, fault="enospc:metrics.json"), 2, f"cannot write {d / 'metrics.json'}", "No space left on device (ENOSPC)")
    assert not (d / "metrics.json").exists() and (d / "checkpoint.pt").exists()
    assert not [p for p in d.iterdir() if ".tmp" in p.name]  # nothing half-written
    r = train_cell(env, 8)
    assert r.returncode == 0, r.stderr
    same_result(d, world["runs"][h])


def test_read_only_store_is_one_line_and_writes_nothing(tmp_path, world):
    results = tmp_path / "ro"
    results.mkdir()
    env = env_for(results, world["data"], world["cache"])
    r = arlib(["train", "--profile", "smoke", "--eps", "4", "--quiet"], env, fault=f"erofs:{results}")
    one_line_error(r, 2, "Read-only file system (EROFS)", str(results))
    assert tree(results) == {}


def test_malformed_params_yml_is_one_line(tmp_path):
    pytest.importorskip("yaml")
    from arlib.errors import ConfigError
    from arlib.book.params import check_params, read_params_file

    chapters = ["B1", "B5"]
    cases = {
        "invalid.yml": (b"default:\n  B1: {ensure: [\n", "not valid YAML (line"),
        "latin1.yml": ("default: {B1: {note: caf\xe9}}\n".encode("latin-1"), "not UTF-8 text"),
        "list.yml": (b"- default\n", "must be a mapping of sections"),
    }
    for name, (content, needle) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ConfigError, match=r"\A[^\n]*\Z") as e:
            read_params_file(tmp_path / name)
        assert needle in str(e.value) and name in str(e.value)
    defaults = {"B1": {"ensure": True, "eps_grid": [0, 4]}, "B5": {}}
    for data, needle in [
        ({"cpu": ["B1"]}, "[cpu] must be a mapping of chapters"),
        ({"default": {"B1": 3}}, "[default][B1] must be a mapping of parameters"),
        ({"default": {"B9": {}}}, "names chapter 'B9'"),
        ({"cpu": {"B1": {"profile": "paper"}}}, "sets 'profile'"),
        ({"cpu": {"B1": {"ensure": "no"}}}, "ensure must be true or false"),
        ({"cpu": {"B1": {"eps_grid": 4}}}, "eps_grid must be a list"),
        ({"cpu": {"B5": {"nosuch": 1}}}, "which the notebook does not define"),
        ({"huge": {}}, "unknown section(s) ['huge']"),
    ]:
        with pytest.raises(ConfigError) as e:
            check_params(data, "cpu", chapters, defaults=defaults)
        assert needle in str(e.value), (needle, str(e.value))
    ok = check_params({"default": {"B1": {"eps_grid": [0, 8]}}, "cpu": {"B1": {"ensure": False}, "B5": None}}, "cpu", chapters, defaults=defaults)
    assert ok == {"B1": {"eps_grid": [0, 8], "ensure": False, "profile": "cpu"}, "B5": {"profile": "cpu"}}


# ----------------------------------------------------------------------------- 5. the chapter stamp's inputs


def test_inputs_fingerprint_names_the_store_and_its_files(store, tmp_path):
    from arlib.store import inputs_fingerprint

    results, _ = store
    runs = sorted((results / "smoke" / "runs").iterdir())
    a = inputs_fingerprint(runs[:2], root=results)
    assert a["results_root"] == str(results.resolve())
    assert set(a["sha256"]) == {f"smoke/runs/{r.name}/{n}" for r in runs[:2] for n in ("config.json", "metrics.json", "provenance.json", "outcomes.npz", "model.pt")}
    other = tmp_path / "other"
    shutil.copytree(results, other)
    b = inputs_fingerprint([other / r.relative_to(results) for r in runs[:2]], root=other)
    assert b["sha256"] == a["sha256"] and b["results_root"] != a["results_root"]  # another store: another stamp
    (runs[0] / "metrics.json").write_text("{}")
    assert inputs_fingerprint(runs[:2], root=results) != a


# ----------------------------------------------------------------------------- 7. small ones


@pytest.mark.parametrize("args,needle", [(["book", "--profile", "nosuch"], "invalid choice: 'nosuch'"), (["book", "--chapters", ","], "names no chapter")])
def test_book_arguments_are_one_line(tmp_path, args, needle):
    one_line_error(arlib(args, env_for(tmp_path / "r", tmp_path / "d", tmp_path / "c")), 2, needle)


def test_kill_during_checkpoint_write_leaves_no_stale_temp(world, store):
    h, d, env = unfinished_cell(world, store, 4)
    assert train_cell(env, 4, fault="kill:checkpoint.pt").returncode == -signal.SIGKILL
    assert [p.name for p in d.glob("checkpoint.pt.*.tmp")]  # what a kill leaves behind
    r = train_cell(env, 4)
    assert r.returncode == 0, r.stderr
    assert not [p for p in d.iterdir() if ".tmp" in p.name]
    same_result(d, world["runs"][h])


def test_results_have_the_umask_mode_and_no_machine_paths(world, tmp_path):
    results = tmp_path / "results"
    env = env_for(results, world["data"], world["cache"])
    r = arlib(["train", "--profile", "smoke", "--eps", "0", "--quiet"], env, umask=0o002)
    assert r.returncode == 0, r.stderr
    d = next((results / "smoke" / "runs").iterdir())
    for name in ("config.json", "metrics.json", "provenance.json", "model.pt", "checksums.json"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o664, name
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["dataset_source"] == "tarball:cifar10-jpeg.tar.gz" and len(prov["dataset_fingerprint"]) == 16
    assert str(world["cache"]) not in (d / "provenance.json").read_text()


def test_committed_results_record_no_machine_paths():
    home = str(Path.home())
    for f in [*REPO.glob("results/*/runs/*/provenance.json"), *REPO.glob("benchmarks/results/*.json")]:
        text = f.read_text()
        assert home + "/" not in text and "/.cache/" not in text, f


# ----------------------------------------------------------------------------- what already held


@pytest.mark.slow
def test_kill_at_random_points_resumes_to_the_same_result(world, store):
    results, env = store
    h = eps_cell(world, 16)
    d = run_dir(results, h)
    rng = np.random.default_rng(12)
    for _ in range(3):
        shutil.rmtree(d)
        delay = float(rng.uniform(1.5, 5.0))
        proc = subprocess.Popen([sys.executable, "-m", "arlib.cli", "train", "--profile", "smoke", "--eps", "16", "--quiet"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        r = arlib(["train", "--profile", "smoke", "--eps", "16", "--quiet"], env)
        assert r.returncode == 0, r.stderr
        same_result(d, world["runs"][h])


@pytest.mark.slow
def test_two_grid_workers_share_one_grid(world, tmp_path):
    results = tmp_path / "results"
    env = env_for(results, world["data"], world["cache"])
    procs = [subprocess.Popen([sys.executable, "-m", "arlib.cli", *GRID], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for h, ref in world["runs"].items():
        d = run_dir(results, h)
        same_result(d, ref)
        assert "resumed_with_commits" not in json.loads((d / "provenance.json").read_text())
