"""Test set-up: real CIFAR-10 images from the workplace's shared folder, a fresh results store, and the headless
Chromium that the browser tests (the built book, tests/test_browser.py; JupyterLab, tests/test_lab.py) drive."""

from __future__ import annotations

import os
import shutil
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


# -- the browser ---------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's Chromium (never a Playwright browser download); ``ARBOOK_CHROMIUM`` names another binary."""
    for candidate in (os.environ.get("ARBOOK_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class PageLog:
    """What one page did: blocked network requests, failed loads, console errors."""

    def __init__(self):
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium through Playwright, one per test module; skips, saying why, without Chromium or Playwright."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium not found (apt-get install -y chromium, or set ARBOOK_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()
