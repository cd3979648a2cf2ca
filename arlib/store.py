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
``outcomes.npz``              per-example outcomes of the final evaluation       yes (small)
                              (clean correct/loss on every train and test
                              image, PGD outcome on the attacked ones; indices)
``analysis.json``             summary statistics of :mod:`arlib.analysis`        yes
``analysis.npz``              per-example / per-layer arrays for the figures     yes (small)
``bound.json``                Theorem 3.1's terms (:mod:`arlib.bound`)          yes
``checkpoint.pt``             last epoch's full training state (for resuming)    no
``model.pt``                  final weights, a state dict loaded with            yes (< 2 MB; runs
                              ``weights_only=True`` (re-analysis, re-attacks)    before issue 19: no)
``checksums.json``            SHA-256 of each file above (but the checkpoint),   yes
                              written when the run finishes and when analysed
============================  =================================================  =========

The committed files are what the book needs to render without training or
checkpoints; checkpoints are large and machine specific, so ``.gitignore``
excludes them. Every write is atomic (temporary file + ``os.replace``, with the
mode the umask gives), and a lock file (``filelock``) guarantees that two
processes never train the same run: the second waits, then finds the run finished.

Every file the store reads is untrusted: one that does not parse, does not load or
does not match its recorded checksum raises :class:`~arlib.errors.DamagedRunError`
naming its path (:meth:`Run.problems` lists them all). Nothing is ever deleted: a
damaged file that the grid may replace (an unfinished run's checkpoint) is renamed
``<name>.damaged-<UTC time>`` first (:meth:`Run.move_aside`).
"""

from __future__ import annotations

import errno
import glob
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from .config import RunConfig, config_from_dict
from .errors import ConfigError, DamagedRunError, StorageError

# The files a run's checksums cover: every result file, not the checkpoint (rewritten every epoch).
RESULT_FILES = ("config.json", "metrics.json", "provenance.json", "outcomes.npz", "analysis.json", "analysis.npz", "bound.json", "model.pt")
CHECKSUMS = "checksums.json"


def default_root() -> Path:
    """``$ARLIB_RESULTS``, else ``results/`` in the repository holding this package."""
    if os.environ.get("ARLIB_RESULTS"):
        return Path(os.environ["ARLIB_RESULTS"])
    return Path(__file__).resolve().parent.parent / "results"


# Temporary files are named <target>.<host>-<pid>.<random>.tmp, so the next write of the same
# target can tell a dead process's leftover (same host, pid gone) from a live writer's file.
_TMP_TAG = f"{socket.gethostname()}-{os.getpid()}"
_TMP_NAME = re.compile(r"\.(?P<host>[^/]+)-(?P<pid>\d+)\.[^.]+\.tmp$")
_STALE_AFTER = 24 * 3600  # any other temporary file older than this (seconds) is a leftover too
# OSErrors of the environment (full, read-only, not permitted, a file where a folder should be),
# which the CLI reports in one line; any other OSError is a bug and keeps its traceback.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR})


def tmp_prefix(path: Path) -> str:
    """Prefix of a temporary file or folder for ``path`` that :func:`remove_stale_tmp` can attribute."""
    return f"{path.name}.{_TMP_TAG}."


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read it the racy way (only this module's writes could see it)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(path: Path) -> list[Path]:
    """Remove temporary files (or folders) of ``path`` left by killed writers; returns what was removed."""
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
        m = _TMP_NAME.search(tmp.name[len(path.name):])
        try:
            stale = (m is not None and m["host"] == socket.gethostname() and not pid_alive(int(m["pid"]))
                     or time.time() - tmp.stat().st_mtime > _STALE_AFTER)
            if stale:
                shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process cleaned it up first
            pass
    return removed


def storage_error(path: Path, e: OSError) -> StorageError:
    """One line for an OSError while writing ``path``: the path, the reason and the errno's name."""
    code = errno.errorcode.get(e.errno, str(e.errno))
    return StorageError(f"cannot write {e.filename or path}: {e.strerror or e} ({code})")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing, with the mode the umask gives (not mkstemp's 0600).

    Raises :class:`~arlib.errors.StorageError` (one line: path, reason, errno) when the disk
    is full or read-only; the previous content of ``path``, if any, is left as it was.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=tmp_prefix(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise storage_error(path, e) from None
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
        """A JSON object of the run; DamagedRunError naming the file if it does not parse."""
        path = self.file(name)
        try:
            obj = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DamagedRunError(path, f"not valid JSON ({getattr(e, 'msg', None) or e.reason})") from None
        if not isinstance(obj, dict):
            raise DamagedRunError(path, "not a JSON object")
        return obj

    @property
    def config(self) -> RunConfig:
        path = self.file("config.json")
        try:
            cfg = config_from_dict(self.read_json("config.json"))
        except ConfigError as e:
            raise DamagedRunError(path, f"not a valid config ({e})") from None
        if cfg.hash != self.hash:
            raise DamagedRunError(path, f"its config hashes to {cfg.hash}, not to the folder's name")
        return cfg

    @property
    def finished(self) -> bool:
        """Whether training finished (only then is ``metrics.json`` written); DamagedRunError if it does not parse."""
        return self.file("metrics.json").exists() and self.read_json("metrics.json").get("status") == "finished"

    @property
    def analysed(self) -> bool:
        return self.file("analysis.json").exists() and self.file("analysis.npz").exists()

    def status(self) -> str:
        """new | partial | finished | analysed, or damaged when a file does not parse or match its checksum."""
        if self.problems(deep=False):
            return "damaged"
        if self.finished:
            return "analysed" if self.analysed else "finished"
        if self.file("checkpoint.pt").exists():
            return "partial"
        return "new"

    def metrics(self) -> dict:
        return self.read_json("metrics.json")

    def analysis(self) -> tuple[dict, dict[str, np.ndarray]]:
        return self.read_json("analysis.json"), self.analysis_arrays()

    def analysis_arrays(self) -> dict[str, np.ndarray]:
        return self._read_npz("analysis.npz")

    def outcomes(self) -> dict[str, np.ndarray] | None:
        """The per-example outcomes of the final evaluation (:func:`arlib.train.final_evaluation`), or None for runs from before them."""
        return self._read_npz("outcomes.npz") if self.file("outcomes.npz").is_file() else None

    def save_outcomes(self, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.file("outcomes.npz"), buf.getvalue())

    def _read_npz(self, name: str) -> dict[str, np.ndarray]:
        path = self.file(name)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise DamagedRunError(path, f"not a readable .npz archive ({type(e).__name__})") from None
        return arrays

    def save_analysis(self, summary: dict, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.file("analysis.npz"), buf.getvalue())
        atomic_write_json(self.file("analysis.json"), summary)
        self.seal()

    # -- integrity ---------------------------------------------------------------------------

    def checksums(self, names: tuple[str, ...] = RESULT_FILES) -> dict[str, str]:
        """SHA-256 of each of the run's result files that exists now, by file name."""
        return {n: sha256_file(self.file(n)) for n in names if self.file(n).is_file()}

    def seal(self) -> None:
        """Record the checksums of the result files, so that later corruption (bit rot, a bad copy) shows."""
        atomic_write_json(self.file(CHECKSUMS), {"sha256": self.checksums()})

    def problems(self, deep: bool = True) -> list[str]:
        """Everything wrong with the run's files, one ``<path>: <what>`` line each; [] when sound.

        Always: every JSON file parses, the config hashes to the folder's name, the
        metrics and analysis name that hash, each file matches its recorded checksum.
        ``deep`` also loads what the JSON does not cover: ``analysis.npz``, ``model.pt``
        (weights only) and the CRCs of ``checkpoint.pt``'s records.
        """
        out: list[str] = []

        def attempt(fn):
            try:
                return fn()
            except DamagedRunError as e:
                out.append(f"{e.path}: {e.reason}")

        if not self.file("config.json").is_file():
            return [f"{self.file('config.json')}: missing"]
        attempt(lambda: self.config)
        for name, key in (("metrics.json", "config_hash"), ("analysis.json", "config_hash"), ("provenance.json", None)):
            if self.file(name).is_file():
                obj = attempt(lambda: self.read_json(name))
                if obj is not None and key and obj.get(key) not in (None, self.hash):
                    out.append(f"{self.file(name)}: belongs to run {obj.get(key)}, not {self.hash}")
        if deep:
            for name in ("analysis.npz", "outcomes.npz"):
                if self.file(name).is_file():
                    attempt(lambda: self._read_npz(name))
            for name in ("model.pt", "checkpoint.pt"):
                if self.file(name).is_file():
                    why = _torch_file_problem(self.file(name), weights=name == "model.pt")
                    if why:
                        out.append(f"{self.file(name)}: {why}")
        recorded = attempt(lambda: self.read_json(CHECKSUMS)) if self.file(CHECKSUMS).is_file() else None
        for name, digest in ((recorded or {}).get("sha256") or {}).items():
            f = self.file(name)
            if name in RESULT_FILES and f.is_file() and not any(p.startswith(f"{f}: ") for p in out) and sha256_file(f) != digest:
                out.append(f"{f}: content differs from its recorded checksum")
        return out

    def move_aside(self, name: str) -> Path:
        """Rename a damaged file to ``<name>.damaged-<UTC time>`` (evidence is kept, never deleted)."""
        src = self.file(name)
        dest = src.with_name(f"{name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        try:
            os.replace(src, dest)
        except OSError as e:
            raise storage_error(dest, e) from None
        return dest

    def lock(self, timeout: float = -1) -> FileLock:
        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.file("run.lock")), timeout=timeout)


def inputs_fingerprint(paths, root: str | os.PathLike | None = None) -> dict:
    """What a book chapter's stamp must hold about the results it read.

    ``paths`` are the run folders (or single files) a chapter reported reading. Returns
    ``{"results_root": <resolved root>, "sha256": {<path>: <hex digest> | None}}`` with one
    entry per result file of each run folder (:data:`RESULT_FILES`, the checkpoint
    excluded) and paths relative to ``root`` (default :func:`default_root`, i.e.
    ``$ARLIB_RESULTS``) where they are under it. A missing file maps to None. Switching
    the results root therefore changes the stamp even when last time's files are untouched.
    """
    root = Path(root if root is not None else default_root()).resolve()
    digests: dict[str, str | None] = {}
    for p in sorted({Path(p).resolve() for p in paths}):
        files = [p / n for n in RESULT_FILES] if p.is_dir() else [p]
        for f in files:
            key = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
            if f.is_file():
                digests[key] = sha256_file(f)
            elif not p.is_dir():
                digests[key] = None
    return {"results_root": str(root), "sha256": digests}


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


def _torch_file_problem(path: Path, weights: bool) -> str | None:
    """Why a torch.save file does not load, or None.

    ``weights``: load it as a state dict of tensors (``weights_only``, no pickled code).
    Otherwise (a checkpoint, which also holds RNG states) only verify the CRC of every record
    of its zip container, which catches truncation and flipped bits without unpickling.
    """
    try:
        if weights:
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        else:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                return f"record {bad} fails its CRC"
    except Exception as e:  # any failure to load means damaged; the type says how
        return f"does not load ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return None


__all__ = ["Store", "Run", "Timeout", "RESULT_FILES", "CHECKSUMS", "sha256_file", "remove_stale_tmp", "inputs_fingerprint", "atomic_write_json", "atomic_write_bytes", "atomic_torch_save", "default_root"]
