import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

import pytest

from arlib.config import RunConfig, config_from_dict
from arlib.store import Store, atomic_write_json


def test_config_hash_stable_across_processes():
    cfg = RunConfig().replace(adv={"eps": 4}, data={"train_per_class": 10})
    code = "from arlib.config import RunConfig; print(RunConfig().replace(adv={'eps': 4.0}, data={'train_per_class': 10}).hash)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == cfg.hash
    # JSON round trip gives the same hash, and a changed field a different one.
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))).hash == cfg.hash
    assert cfg.replace(train={"seed": 1}).hash != cfg.hash


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(p, {"x": Boom()})
    assert json.loads(p.read_text()) == {"x": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def _hold_lock(path, seconds, q):
    from arlib.store import Run
    from pathlib import Path

    run = Run(Path(path))
    with run.lock():
        q.put(time.time())
        time.sleep(seconds)
    q.put(time.time())


def test_lock_excludes_second_process(tmp_path):
    store = Store(tmp_path)
    run = store.run(RunConfig())
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_hold_lock, args=(str(run.path), 2.0, q))
    p.start()
    t_acquired = q.get(timeout=60)
    with run.lock():
        t_me = time.time()
    released = q.get(timeout=60)
    p.join()
    assert t_me >= released - 0.05 and t_me > t_acquired


def test_store_lists_runs(tmp_path):
    store = Store(tmp_path)
    a = store.run(RunConfig())
    b = store.run(RunConfig().replace(adv={"eps": 4}))
    assert {r.hash for r in store.runs()} == {a.hash, b.hash}
    assert a.status() == "new" and store.find(RunConfig()).hash == a.hash


def test_stale_temp_of_a_dead_writer_is_removed_a_live_one_kept(tmp_path):
    import socket

    host = socket.gethostname()
    dead = tmp_path / f"x.json.{host}-999999999.abc.tmp"  # above any pid_max: that writer is gone
    live = tmp_path / f"x.json.{host}-{os.getpid()}.def.tmp"
    elsewhere = tmp_path / "x.json.otherhost-1.ghi.tmp"  # another machine's writer: not ours to judge
    for p in (dead, live, elsewhere):
        p.write_text("partial")
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert not dead.exists() and live.exists() and elsewhere.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_every_json_read_is_strict_and_shaped(tmp_path):
    from arlib.errors import DamagedRunError
    from arlib.store import Run

    store = Store(tmp_path)
    run = store.run(RunConfig())
    cases = {
        "[" * 100_000 + "]" * 100_000: "nested too deeply",
        '{"status": "finishee"}': "metrics.json.status must be one of",
        '{"status": "finished", "final": {"test_acc": "x"}}': "metrics.json.final.test_acc must be a finite number or null",
        '{"status": "finished", "final": {"test_acc": NaN}}': "must be a finite number or null, got NaN",
        '{"status": "finished", "x": ' + "1" * 5000 + "}": "not valid JSON",
        "\xff": "not UTF-8",
    }
    for text, needle in cases.items():
        run.file("metrics.json").write_bytes(text.encode("latin-1") if text == "\xff" else text.encode())
        with pytest.raises(DamagedRunError, match=r"\A[^\n]*\Z") as e:
            run.read_json("metrics.json")
        assert needle in e.value.reason and str(run.file("metrics.json")) in str(e.value), (needle, e.value.reason)
    run.file("checksums.json").write_text('{"sha256": []}')
    assert any("checksums.json.sha256 must be an object" in p for p in Run(run.path).problems())


def test_written_json_is_strict(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": float("nan"), "y": [float("inf"), 1.5]})
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == {"x": None, "y": [None, 1.5]}


def test_checkpoint_rng_states_load_weights_only_and_restore_exactly(tmp_path):
    import random

    import numpy as np
    import torch

    from arlib.store import atomic_torch_save, load_torch
    from arlib.train import _rng_state, _set_rng_state

    g = torch.Generator().manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    np.random.standard_normal()  # a cached Gaussian in NumPy's state
    atomic_torch_save(tmp_path / "new.pt", {"rng": _rng_state(g)})
    torch.save(
        {"rng": {"generator": g.get_state(), "torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}},
        tmp_path / "legacy.pt",
    )
    draws = (torch.rand(3, generator=g), torch.rand(3), np.random.standard_normal(3), random.random())
    for name in ("new.pt", "legacy.pt"):  # checkpoints written before issue 21 held NumPy's state as an array
        g2 = torch.Generator()
        _set_rng_state(g2, load_torch(tmp_path / name)["rng"])
        again = (torch.rand(3, generator=g2), torch.rand(3), np.random.standard_normal(3), random.random())
        assert torch.equal(draws[0], again[0]) and torch.equal(draws[1], again[1]) and np.array_equal(draws[2], again[2]) and draws[3] == again[3]
