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
