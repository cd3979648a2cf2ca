"""A committed run's weights are enough to redo its analysis: no training, the same numbers.

Takes the cheapest committed run of the ``cpu`` store that carries its weights (``model.pt``),
copies it into a temporary store without its analysis (``analysis.json``, ``analysis.npz``,
``bound.json``), reruns the analysis step of the grid from the weights alone, and compares every
number with the committed files. The grid's workers ran with one thread; so does this test.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from arlib.grid import analyse_run
from arlib.store import Run, Store, default_root
from conftest import needs_cifar10

REL = 1e-4  # the same weights and code; only a different CPU's float rounding may differ


def _numbers(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{prefix}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, float(obj)


def _cheapest_run_with_weights() -> Run | None:
    store = Store.for_profile("cpu", default_root())
    runs = []
    for run in store.runs():
        try:
            if run.analysed and run.file("model.pt").is_file() and run.file("bound.json").is_file():
                prov = run.read_json("provenance.json")
                runs.append((float(prov.get("train_seconds") or 0) * (1 if run.config.adv.eps == 0 else 10), run))
        except Exception:
            continue
    return min(runs, key=lambda x: x[0])[1] if runs else None


@needs_cifar10
def test_a_committed_run_reanalysed_from_its_weights_matches_its_analysis(tmp_path):
    committed = _cheapest_run_with_weights()
    if committed is None:
        pytest.skip("no committed cpu run carries its weights yet")
    copy = Store(tmp_path).run(committed.config)
    shutil.copytree(committed.path, copy.path, dirs_exist_ok=True)
    for name in ("analysis.json", "analysis.npz", "bound.json", "checksums.json"):
        copy.file(name).unlink(missing_ok=True)
    assert not copy.analysed
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        analyse_run(copy)
    finally:
        torch.set_num_threads(threads)
    for name in ("analysis.json", "bound.json"):
        old = dict(_numbers(json.loads(committed.file(name).read_text())))
        new = dict(_numbers(json.loads(copy.file(name).read_text())))
        assert old.keys() == new.keys(), name
        off = [k for k in old if not math.isclose(old[k], new[k], rel_tol=REL, abs_tol=1e-6)]
        assert not off, f"{name}: {[(k, old[k], new[k]) for k in off[:5]]}"
    a, b = committed.analysis_arrays(), copy.analysis_arrays()
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind in "fc":
            assert np.allclose(a[k], b[k], rtol=REL, atol=1e-5), k
        else:
            assert (a[k] == b[k]).all(), k
