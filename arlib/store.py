"""Content-addressed results store.

One directory per run, named by the hash of its full config
(``<root>/runs/<hash>/``), holding

============================  =================================================  =========
file                          what                                               in git?
============================  =================================================  =========
``config.json``               the full :class:`~arlib.config.RunConfig`          yes
``metrics.json``              final metrics and the per-epoch history            yes
``provenance.json``           git commit, versions, device, data fingerprint,    yes
                              seed, wall time
``analysis.json``             summary statistics of :mod:`arlib.analysis`        yes
``analysis.npz``              per-example / per-layer arrays for the figures     yes (small)
``checkpoint.pt``             last epoch's full training state (for resuming)    no
``model.pt``                  final weights (for re-analysis)                    no
============================  =================================================  =========

The committed files are what the book needs to render without training or
checkpoints; checkpoints are large and machine specific, so ``.gitignore``
excludes them. Every write is atomic (temporary file + ``os.replace``), and a
lock file (``filelock``) guarantees that two processes never train the same
run: the second waits, then finds the run finished.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from .config import RunConfig, config_from_dict


def default_root() -> Path:
    """``$ARLIB_RESULTS``, else ``results/`` in the repository holding this package."""
    if os.environ.get("ARLIB_RESULTS"):
        return Path(os.environ["ARLIB_RESULTS"])
    return Path(__file__).resolve().parent.parent / "results"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def atomic_torch_save(path: Path, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


@dataclass(frozen=True)
class Run:
    """Handle on one run's directory."""

    path: Path

    @property
    def hash(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    @property
    def config(self) -> RunConfig:
        return config_from_dict(self.read_json("config.json"))

    @property
    def finished(self) -> bool:
        return self.file("metrics.json").exists() and self.read_json("metrics.json").get("status") == "finished"

    @property
    def analysed(self) -> bool:
        return self.file("analysis.json").exists() and self.file("analysis.npz").exists()

    def status(self) -> str:
        if self.finished:
            return "analysed" if self.analysed else "finished"
        if self.file("checkpoint.pt").exists():
            return "partial"
        return "new"

    def metrics(self) -> dict:
        return self.read_json("metrics.json")

    def analysis(self) -> tuple[dict, dict[str, np.ndarray]]:
        with np.load(self.file("analysis.npz")) as z:
            arrays = {k: z[k] for k in z.files}
        return self.read_json("analysis.json"), arrays

    def save_analysis(self, summary: dict, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.file("analysis.npz"), buf.getvalue())
        atomic_write_json(self.file("analysis.json"), summary)

    def lock(self, timeout: float = -1) -> FileLock:
        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.file("run.lock")), timeout=timeout)


class Store:
    """The results store rooted at ``root`` (default :func:`default_root`)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()

    @classmethod
    def for_profile(cls, profile: str, root: str | os.PathLike | None = None) -> "Store":
        """The store of one profile: ``<root>/<profile>/`` (``results/cpu`` is committed, ``results/smoke`` is not)."""
        return cls(Path(root if root is not None else default_root()) / profile)

    def run(self, cfg: RunConfig) -> Run:
        """The run directory of ``cfg``, created with its ``config.json`` if new."""
        run = Run(self.root / "runs" / cfg.hash)
        if not run.file("config.json").exists():
            atomic_write_json(run.file("config.json"), cfg.to_dict())
        return run

    def find(self, cfg: RunConfig) -> Run | None:
        run = Run(self.root / "runs" / cfg.hash)
        return run if run.file("config.json").exists() else None

    def runs(self) -> list[Run]:
        base = self.root / "runs"
        if not base.is_dir():
            return []
        return [Run(p) for p in sorted(base.iterdir()) if (p / "config.json").exists()]


__all__ = ["Store", "Run", "Timeout", "atomic_write_json", "atomic_write_bytes", "atomic_torch_save", "default_root"]
