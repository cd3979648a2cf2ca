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
    env.update(
        ARLIB_RESULTS=str(results),
        ARLIB_DATA=str(data),
        ARLIB_CACHE=str(cache),
        ARLIB_NO_SHARED="1",
        ARLIB_NO_DOWNLOAD="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
        **extra,
    )
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
    """Two run folders hold bitwise-equal results: metrics (times and the mark of a resumed epoch aside) and weights."""
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["final"] == mb["final"]
    assert [{k: v for k, v in h.items() if k not in ("seconds", "resumed")} for h in ma["history"]] == [
        {k: v for k, v in h.items() if k not in ("seconds", "resumed")} for h in mb["history"]
    ]
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
    assert len(warnings) == 1 and warnings[0].startswith("arlib: warning: ") and "checkpoint.pt: does not load" in warnings[0]
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
    from arlib.book.handshake import inputs_fingerprint

    results, _ = store
    runs = sorted((results / "smoke" / "runs").iterdir())
    a = inputs_fingerprint(runs[:2], root=results)
    assert a["results_root"] == str(results.resolve())
    assert set(a["sha256"]) == {
        f"smoke/runs/{r.name}/{n}" for r in runs[:2] for n in ("config.json", "metrics.json", "provenance.json", "outcomes.npz", "model.pt")
    }
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
        proc = subprocess.Popen(
            [sys.executable, "-m", "arlib.cli", "train", "--profile", "smoke", "--eps", "16", "--quiet"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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
    procs = [
        subprocess.Popen([sys.executable, "-m", "arlib.cli", *GRID], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for h, ref in world["runs"].items():
        d = run_dir(results, h)
        same_result(d, ref)
        assert "resumed_with_commits" not in json.loads((d / "provenance.json").read_text())


# ----------------------------------------------------------------------------- 8. a store nobody can subvert (issue 21)


class _Payload:
    """Unpickling this runs ``touch <marker>``: what a crafted results store would plant."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant_code(d: Path, name: str, marker: Path) -> None:
    """Replace ``d/name`` (a .pt or .npz file) by one whose unpickling would run a command."""
    if name.endswith(".pt"):
        torch.save({"epoch": 1, "model": _Payload(marker), "optimizer": {}, "scheduler": {}, "rng": {}, "history": [], "elapsed": 0.0}, d / name)
    else:
        with open(d / name, "wb") as f:
            np.savez(f, train_index=np.array([_Payload(marker)], dtype=object))


def reseal(d: Path) -> None:
    """Recompute a run's checksums after editing it, as someone who wants the edit to pass would."""
    from arlib.store import Run

    Run(d).seal()


def test_crafted_store_never_runs_code(world, store, tmp_path):
    results, env = store
    marker = tmp_path / "PWNED"
    a, b, c = eps_cell(world, 0), eps_cell(world, 8), eps_cell(world, 16)
    plant_code(run_dir(results, a), "model.pt", marker)
    plant_code(run_dir(results, a), "outcomes.npz", marker)
    plant_code(run_dir(results, b), "analysis.npz", marker)
    (run_dir(results, b) / "analysis.json").write_text(json.dumps({"config_hash": b}))
    reseal(run_dir(results, b))
    unfinish(run_dir(results, c), None)
    plant_code(run_dir(results, c), "checkpoint.pt", marker)
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for d, name in ((a, "model.pt"), (a, "outcomes.npz"), (b, "analysis.npz"), (c, "checkpoint.pt")):
        assert str(run_dir(results, d) / name) in r.stderr, (name, r.stderr)
    assert "pickled callable, posix.system, which is never run" in r.stderr
    for args in (["eval", a[:8], "--steps", "1"], ["analyse", "--run", a[:8]]):
        one_line_error(arlib(args, env), 2, str(run_dir(results, a)))
    r = arlib(["analyse", "--run", b[:8]], env)  # analysis.npz is its own output: the run is analysed already, nothing loads it
    assert r.returncode == 0 and "Traceback" not in r.stderr
    r = train_cell(env, 16)  # the unfinished run: its checkpoint is refused, kept aside, and the run trained from the start
    assert r.returncode == 0 and "pickled callable, posix.system" in r.stderr, r.stderr
    assert len(list(run_dir(results, c).glob("checkpoint.pt.damaged-*"))) == 1
    same_result(run_dir(results, c), world["runs"][c])
    one_line_error(arlib(GRID, env), 2, "1 of 4 grid cells", "model.pt")
    assert not marker.exists()


def test_rot_that_still_parses_is_reported_not_retrained(world, store):
    results, env = store
    h = eps_cell(world, 4)
    metrics = run_dir(results, h) / "metrics.json"
    metrics.write_bytes(metrics.read_bytes().replace(b'"finished"', b'"finishee"'))
    before = tree(results)
    r = arlib(["runs"], env)
    assert r.returncode == 0 and f"{h} damaged" in r.stdout and "metrics.json.status must be one of ['diverged', 'finished', 'stopped']" in r.stderr
    one_line_error(train_cell(env, 4), 2, str(metrics), "finishee")
    one_line_error(arlib(GRID, env), 2, "1 of 4 grid cells", str(metrics))
    assert tree(results) == before  # byte-identical: nothing retrained, rewritten or moved
    # Only the explicit command moves it aside; then the grid trains it anew.
    r = arlib(["runs", "--repair", h[:8]], env)
    assert r.returncode == 0 and "moved" in r.stdout, r.stderr
    assert {p.name.split(".damaged-")[0] for p in run_dir(results, h).glob("*.damaged-*")} >= {"metrics.json", "model.pt", "checksums.json"}
    assert arlib(GRID, env).returncode == 0
    same_result(run_dir(results, h), world["runs"][h])


MALFORMED = {
    "deep": ("metrics.json", lambda t: "[" * 100_000 + "]" * 100_000, False, "nested too deeply"),
    "checksums-shape": ("checksums.json", lambda t: json.dumps({"sha256": ["config.json"]}), False, "checksums.json.sha256 must be an object"),
    "final-x": (
        "metrics.json",
        lambda t: json.dumps({**json.loads(t), "final": {**json.loads(t)["final"], "pgd_acc_correct": "x"}}),
        True,
        "final.pgd_acc_correct must be a finite number",
    ),
    "final-str": ("metrics.json", lambda t: json.dumps({**json.loads(t), "final": "x"}), True, "metrics.json.final must be an object"),
    "train-seconds-x": (
        "provenance.json",
        lambda t: json.dumps({**json.loads(t), "train_seconds": "x"}),
        True,
        "provenance.json.train_seconds must be a finite number",
    ),
    "nan": ("metrics.json", lambda t: t.replace('"test_acc": ', '"test_acc": NaN, "x": ', 1), True, "must be a finite number"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_json_is_named_in_one_line(world, store, case):
    results, env = store
    name, edit, resealed, needle = MALFORMED[case]
    h = eps_cell(world, 8)
    f = run_dir(results, h) / name
    f.write_text(edit(f.read_text()))
    if resealed:
        reseal(run_dir(results, h))
    r = arlib(["runs"], env)
    assert r.returncode == 0 and f"{h} damaged" in r.stdout and "Traceback" not in r.stderr, r.stderr
    assert f"arlib: damaged: {f}: " in r.stderr and needle in r.stderr, r.stderr
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 1 and "Traceback" not in r.stderr and needle in r.stderr
    one_line_error(arlib(["eval", h[:8], "--steps", "1"], env), 2, str(f), needle)


def test_truncated_bound_json_is_named(world, store):
    from arlib.store import Run

    results, env = store
    h = eps_cell(world, 0)
    d = run_dir(results, h)
    (d / "bound.json").write_text('{"version": 1, "hash": "' + h + '", "w_m')
    Run(d).seal()
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 1 and f"{d / 'bound.json'}: not valid JSON" in r.stderr
    (d / "bound.json").write_text(json.dumps({"version": 1, "hash": h}))  # parses, sealed, but not bound terms
    Run(d).seal()
    r = arlib(["runs"], env)
    assert f"{d / 'bound.json'}: bound.json.w_min is missing" in r.stderr
    one_line_error(train_cell(env, 0), 2, str(d / "bound.json"))  # what a chapter's collect() runs into, naming the file


def test_weights_column_and_check_of_weights_and_outcomes(world, store):
    results, env = store
    absent, damaged, outcomes = eps_cell(world, 0), eps_cell(world, 4), eps_cell(world, 8)
    (run_dir(results, absent) / "model.pt").unlink()  # as the runs committed before issue 19
    weights = run_dir(results, damaged) / "model.pt"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 1
    weights.write_bytes(bytes(raw))
    out = run_dir(results, outcomes) / "outcomes.npz"
    out.write_bytes(out.read_bytes()[:-200])
    r = arlib(["runs"], env)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    rows = {l.split()[1]: l for l in r.stdout.splitlines() if l.startswith("smoke ")}
    assert rows[absent].split()[-2] == "absent" and rows[eps_cell(world, 16)].split()[-2] == "present"
    assert "damaged" in rows[damaged] and rows[damaged].split()[-2] == "damaged"
    r = arlib(["runs", "--check"], env)
    assert r.returncode == 1
    assert f"{weights}: " in r.stderr and f"{out}: " in r.stderr and str(run_dir(results, absent)) not in r.stderr
    one_line_error(arlib(["eval", absent[:8]], env), 2, "model.pt is absent")


def test_reanalysis_from_weights_alone_gives_the_same_numbers(world, store):
    results, env = store
    h = eps_cell(world, 8)
    d = run_dir(results, h)
    r = arlib(["analyse", "--run", h[:8]], env)
    assert r.returncode == 0 and "analysed 1 runs" in r.stdout, r.stderr
    first = {n: (d / n).read_bytes() for n in ("analysis.json", "analysis.npz", "bound.json")}
    trained = {n: (d / n).read_bytes() for n in ("metrics.json", "model.pt", "outcomes.npz", "provenance.json", "checkpoint.pt") if (d / n).exists()}
    for n in first:
        (d / n).unlink()
    r = arlib(["analyse", "--run", h[:8]], env)
    assert r.returncode == 0 and "analysed 1 runs" in r.stdout, r.stderr
    assert json.loads((d / "analysis.json").read_text()) == json.loads(first["analysis.json"])
    assert json.loads((d / "bound.json").read_text()) == json.loads(first["bound.json"])
    with np.load(io.BytesIO(first["analysis.npz"])) as a, np.load(d / "analysis.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert {n: (d / n).read_bytes() for n in trained} == trained  # from the weights alone: nothing trained or rewritten
    assert arlib(["runs", "--check"], env).returncode == 0


def diverging(tmp_path, eps: float = 8) -> Path:
    from arlib import profiles
    from arlib.config import standard_adv

    cfg = profiles.get("smoke").base("cifar10")
    cfg = cfg.replace(adv=standard_adv(eps, "pgd", cfg.adv.steps, cfg.adv.alpha), train={"lr": 1e4})
    path = tmp_path / "lr1e4.json"
    path.write_text(json.dumps(cfg.to_dict()))
    return path


def test_diverged_run_is_recorded_and_skipped(world, tmp_path):
    results = tmp_path / "results"
    env = env_for(results, world["data"], world["cache"])
    r = arlib(["train", "--config", str(diverging(tmp_path)), "--analyse", "--quiet"], env)
    assert r.returncode == 0, r.stderr
    warning = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(warning) == 1 and "diverged at epoch" in warning[0] and "recorded as diverged" in warning[0], r.stderr
    out = json.loads(r.stdout)
    d = Path(out["path"])
    assert out["status"] == "diverged"
    text = (d / "metrics.json").read_text()
    m = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert m["status"] == "diverged" and m["final"] == {"train_loss": None, "test_loss": None} and m["diverged"]["epoch"] >= 1
    assert not (d / "model.pt").exists() and not (d / "analysis.json").exists()
    for f in d.glob("*.json"):
        json.loads(f.read_text(), parse_constant=lambda c, f=f: pytest.fail(f"{c} in {f}"))
    r = arlib(["runs"], env)
    assert f"{d.name} diverged" in r.stdout and f"excluded from analysis, means and the book: custom/{d.name}: diverged at epoch" in r.stdout
    r = arlib(["analyse"], env)
    assert r.returncode == 0 and "analysed 0 runs (1 diverged, left out)" in r.stdout, r.stderr
    r = arlib(["train", "--config", str(diverging(tmp_path)), "--quiet"], env)  # recorded once, never retrained
    assert r.returncode == 0 and r.stderr == "" and json.loads(r.stdout)["status"] == "diverged"
    from arlib.regimes import is_degenerate

    assert is_degenerate(m["final"], 10)  # the book's rule leaves it out and lists it


DIVERGE_RUNNER = FAULT_RUNNER.replace(
    "from arlib.cli import main",
    """from arlib import profiles
_cells = profiles.Profile.cells
def _diverging_cells(self, *a, **k):  # the grid's eps-16 cell at lr 1e4: it diverges
    return [c.replace(train={"lr": 1e4}) if c.adv.eps == 16 else c for c in _cells(self, *a, **k)]
profiles.Profile.cells = _diverging_cells
from arlib.cli import main""",
)


def test_diverged_cell_does_not_stop_the_grid(world, store):
    results, env = store
    ref16 = eps_cell(world, 16)
    env = dict(env, ARLIB_TEST_FAULT="none:")
    r = subprocess.run([sys.executable, "-c", DIVERGE_RUNNER, *GRID], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert r.returncode == 0 and "4 runs finished" in r.stdout, r.stderr
    diverged = [p for p in (results / "smoke" / "runs").iterdir() if p.name not in world["runs"]]
    assert len(diverged) == 1 and json.loads((diverged[0] / "metrics.json").read_text())["status"] == "diverged"
    assert "diverged at epoch" in r.stderr and ref16 in world["runs"]


# ----------------------------------------------------------------------------- 9. signals and the small ones (issue 21)


@pytest.mark.parametrize(
    "sig",
    [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow), pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_signal_during_train_says_what_was_saved(world, store, sig):
    h, d, env = unfinished_cell(world, store, 16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "arlib.cli", "train", "--profile", "smoke", "--eps", "16", "--quiet"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (d / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # past the line that notes the checkpoint, well before the last epoch
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    lines = [l for l in err.splitlines() if l.strip()]
    assert proc.returncode == 128 + sig, err
    assert (
        len(lines) == 1
        and lines[0].startswith(f"arlib: stopped by {signal.Signals(sig).name}; epoch ")
        and f"of run {h} is checkpointed in {d}; rerun the same command to resume" in lines[0]
    ), err
    assert not [p for p in d.iterdir() if ".tmp" in p.name]
    r = train_cell(env, 16)
    assert r.returncode == 0, r.stderr
    same_result(d, world["runs"][h])


def test_small_ones_are_one_line(world, store, tmp_path):
    results, env = store
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    one_line_error(arlib(["runs", "--check"], dict(env, ARLIB_RESULTS=str(a_file))), 2, f"results root {a_file} is not a directory")
    one_line_error(arlib(["runs", "--check"], dict(env, ARLIB_RESULTS=str(tmp_path / "none"))), 2, "does not exist")
    one_line_error(arlib(["train", "--profile", "smoke", "--eps", "8", "--alpha", "0"], env), 2, "adv.alpha must be > 0 for PGD")
    one_line_error(arlib(["eval", "zzzz"], env), 2, "no run", "'zzzz'")
    one_line_error(arlib(["analyse", "--run", "zzzz"], env), 2, "no run", "'zzzz'")
    # The same config trained through --config lands in custom/ under the same hash: eval says how to choose.
    h = eps_cell(world, 8)
    shutil.copytree(run_dir(results, h), results / "custom" / "runs" / h)
    one_line_error(arlib(["eval", h, "--steps", "1"], env), 2, f"run {h} is in 2 stores (custom, smoke): choose one with --store custom")
    r = arlib(["eval", h, "--store", "smoke", "--steps", "1"], env)
    assert r.returncode == 0 and "pgd_acc_all" in r.stdout, r.stderr


@pytest.mark.slow
def test_two_books_and_a_killed_one(tmp_path):
    """A tiny book (one chapter, no HTML): a second build waits for the first, saying who holds it; a killed build's
    partial chapter is never in the book's sources and the next build removes its scratch and completes."""
    pytest.importorskip("papermill")
    root = tmp_path / "book"
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: book/executed/T1\n")
    (root / "book" / "params.yml").write_text("default: {}\n")
    (root / "notebooks" / "T1.md").write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: "
        "myst\nkernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        '# T1\n\n```{code-cell} ipython3\n:tags: [parameters]\nprofile = "smoke"\nseconds = 8\n```\n\n'
        "```{code-cell} ipython3\nimport time\ntime.sleep(seconds)\n```\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "arlib.cli", "book", "--root", str(root), "--no-html", "--force"]
    first = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scratch = root / "_build" / ".executing"
    deadline = time.time() + 120
    while not (scratch.is_dir() and any(scratch.iterdir())) and time.time() < deadline:
        time.sleep(0.1)
    second = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    waiting = [l for l in second.stderr.splitlines() if "another arlib book is building" in l]
    assert len(waiting) == 1 and f"pid {first.pid}" in waiting[0], second.stderr
    # Killed in the middle of the chapter: nothing partial in book/executed, and the next build cleans up and completes.
    killed = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (scratch.is_dir() and any(scratch.iterdir())) and time.time() < deadline + 120:
        time.sleep(0.1)
    time.sleep(2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert sorted(p.name for p in (root / "book" / "executed").iterdir()) == ["T1.ipynb"]
    (root / "book" / "executed" / ".T1.abc123.ipynb").write_text("{}")  # what builds before issue 21 left there
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "removed 3 partial output(s) of an interrupted build" in r.stdout, (r.stdout, r.stderr)
    assert sorted(p.name for p in (root / "book" / "executed").iterdir()) == ["T1.ipynb"] and not any(scratch.iterdir())
    # SIGTERM: one line, exit 143, the chapter being executed discarded.
    term = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (scratch.is_dir() and any(scratch.iterdir())):
        time.sleep(0.1)
    time.sleep(2)
    term.send_signal(signal.SIGTERM)
    _, err = term.communicate(timeout=120)
    assert term.returncode == 143 and [l for l in err.splitlines() if l.strip()][-1].startswith(
        "arlib: stopped by SIGTERM; chapters executed before it are kept"
    ), err
    assert not any(scratch.iterdir())
