"""Test set-up: real CIFAR-10 images from the workplace's shared folder, a fresh results store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

if "ARLIB_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["ARLIB_DATA"] = str(SHARED_DATA)
os.environ.setdefault("ARLIB_NO_DOWNLOAD", "1")  # tests never touch the network


def have_cifar10() -> bool:
    from arlib.data import _locate, candidate_roots

    return _locate("cifar10", candidate_roots(None))[0] is not None


needs_cifar10 = pytest.mark.skipif(not have_cifar10(), reason="CIFAR-10 not available (set ARLIB_DATA)")


@pytest.fixture
def store(tmp_path):
    from arlib.store import Store

    return Store(tmp_path / "results")


@pytest.fixture(scope="session")
def cifar10():
    from arlib.data import load_dataset

    if not have_cifar10():
        pytest.skip("CIFAR-10 not available")
    return load_dataset("cifar10")
