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

Every file the store reads is untrusted and read one way: JSON strictly parsed (depth
bounded, no bytes that are not UTF-8) and checked against the shape its readers rely on
(:data:`SCHEMAS`), every ``.pt`` with ``torch.load(weights_only=True)`` (:func:`load_torch`:
tensors, numbers, strings and containers, never a pickled callable), every ``.npz`` with
``allow_pickle=False``. A file that does not parse, load, fit its shape or match its
recorded checksum raises :class:`~arlib.errors.DamagedRunError` naming its path and why
(:meth:`Run.problems` lists them all); nothing in it is executed. Nothing is ever deleted
or overwritten: a damaged file that the grid may replace (an unfinished run's checkpoint)
is renamed ``<name>.damaged-<UTC time>`` first (:meth:`Run.move_aside`); a damaged
finished run is left byte-identical until ``arlib runs --repair <hash>``
(:meth:`Run.repair`) moves its files aside the same way. Everything written is strict
JSON: a non-finite number is written as ``null``.

A run whose training loss stopped being finite is recorded as ``diverged``
(``metrics.json`` status, with the epoch and the reason): it is over, like a finished
run, but has no weights and is never analysed (:attr:`Run.diverged`).
"""

from __future__ import annotations

import errno
import glob
import hashlib
import io
import json
import math
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

from .config import RunConfig, config_from_dict, to_jsonable
from .errors import ConfigError, DamagedRunError, StorageError

# The files a run's checksums cover: every result file, not the checkpoint (rewritten every epoch).
RESULT_FILES = (
    "config.json",
    "metrics.json",
    "provenance.json",
    "outcomes.npz",
    "analysis.json",
    "analysis.npz",
    "bound.json",
    "model.pt",
    "attack_audit.json",
    "attack_audit.npz",
)
CHECKSUMS = "checksums.json"
# Result files a sealed run may lack without being damaged: the analysis products (recomputed
# from the weights by `arlib analyse`), the weights of runs committed without them, and the
# attack audit (`arlib audit`, run after training on the runs that have weights).
MAY_BE_ABSENT = frozenset({"analysis.json", "analysis.npz", "bound.json", "model.pt", "attack_audit.json", "attack_audit.npz"})
# What metrics.json's status says: training ended (finished or diverged), or was stopped by hand (sizing probes).
OVER = ("finished", "diverged")


# ----------------------------------------------------------------------------- shapes of the JSON files
#
# A schema is: a type (float: a finite number, never a bool; int; str; bool), None (null),
# "number" (any number, NaN included: legacy per-epoch records), a tuple (any of these),
# a frozenset (one of these literal values), a dict (a JSON object: "key" required, "key?"
# optional, "*" the schema of every other key, other keys free when "*" is absent) or a list
# of one schema (a JSON array of such items). Only what some reader relies on is spelled out.

_NUM = (float, None)  # a finite number or null (strict JSON's NaN)
_STATS = {"*": ("number", None, str, list, dict)}  # a table of statistics: read with float(), NaN when absent
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
SCHEMAS: dict[str, Any] = {
    "metrics.json": {
        "status": frozenset(OVER + ("stopped",)),
        "config_hash?": str,
        "final?": ({"*": _NUM}, None),
        "history?": [{"*": ("number", bool, str, None)}],
        "diverged?": {"epoch": int, "reason": str},
    },
    "provenance.json": {
        "git_commit?": str,
        "train_seconds?": _NUM,
        "eval_seconds?": _NUM,
        "started_at?": str,
        "finished_at?": str,
        "device?": str,
        "precision?": str,
        "dataset?": str,
        "dataset_source?": str,
        "dataset_fingerprint?": str,
        "seed?": int,
        "n_train?": int,
        "n_test?": int,
        "resumed_with_commits?": [str],
    },
    "analysis.json": {
        "config_hash?": str,
        "num_classes?": int,
        "n_train?": int,
        "n_test?": int,
        "train_margin?": _STATS,
        "test_margin?": _STATS,
        "test_true_prob?": _STATS,
        "pgd?": _STATS,
        "gaps?": _STATS,
        "loss_variation?": {"*": _STATS},
        "spectral?": {
            "spectral_complexity?": _NUM,
            "log_spectral_complexity?": _NUM,
            "spectral_norms?": {"*": _NUM},
            "sv_std_operator?": {"*": _NUM},
            "sv_std_reshaped?": {"*": _NUM},
        },
    },
    "bound.json": {
        "version": int,
        "hash": str,
        "w_min": _NUM,
        "w_min_pair": [int],
        "n_layers": int,
        "n_wide": int,
        "layers": [{"layer": str, "sigma_min": _NUM, "sigma_max": _NUM, "n_values": int, "dim_in": int, "dim_out": int, "wide": bool}],
        "log10_prod_sigma_min": _NUM,
        "log10_prod_sigma_min_not_wide": _NUM,
        "v_min": _NUM,
        "v_q01": _NUM,
        "v_median": _NUM,
        "v_n": int,
        "input_dim": int,
        "u_min": _NUM,
        "u_median": _NUM,
        "log10_u_lower": _NUM,
    },
    "attack_audit.json": {
        "version": int,
        "hash": str,
        "eps255": float,
        "steps": int,
        "n_restarts": int,
        "per_class": int,
        "n": int,
        "accuracy": {"*": _NUM},
    },
    CHECKSUMS: {"sha256": {"*": _HEX64}},
}


def _shape_problem(value: Any, schema: Any, where: str) -> str | None:
    """Why ``value`` does not fit ``schema`` (``<where> must be ..., got ...``), or None."""
    if isinstance(schema, tuple):
        whys = [_shape_problem(value, s, where) for s in schema]
        if None in whys:
            return None
        for s, why in zip(schema, whys):  # the alternative of the value's own kind says best what is wrong inside it
            if isinstance(s, dict) and isinstance(value, dict) or isinstance(s, list) and isinstance(value, list):
                return why
        return f"{where} must be {' or '.join(map(_kind, schema))}, got {_show(value)}"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where} must be an object, got {_show(value)}"
        for key, sub in schema.items():
            name = key.rstrip("?")
            if key == "*":
                continue
            if name in value:
                why = _shape_problem(value[name], sub, f"{where}.{name}")
                if why:
                    return why
            elif not key.endswith("?"):
                return f"{where}.{name} is missing"
        for name, v in value.items() if "*" in schema else ():
            if name not in schema and f"{name}?" not in schema:
                why = _shape_problem(v, schema["*"], f"{where}.{name}")
                if why:
                    return why
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where} must be an array, got {_show(value)}"
        for i, v in enumerate(value):
            why = _shape_problem(v, schema[0], f"{where}[{i}]")
            if why:
                return why
        return None
    if isinstance(schema, frozenset):
        ok = isinstance(value, str) and value in schema
    elif isinstance(schema, re.Pattern):
        ok = isinstance(value, str) and schema.match(value) is not None
    elif schema is None:
        ok = value is None
    elif schema in ("number", float, int):
        ok = isinstance(value, int if schema is int else (int, float)) and not isinstance(value, bool) and (schema is not float or math.isfinite(value))
    else:
        ok = isinstance(value, schema)
    return None if ok else f"{where} must be {_kind(schema)}, got {_show(value)}"


def _kind(schema: Any) -> str:
    """How a schema reads in a message: 'a finite number', 'an object', 'one of [...]'."""
    if isinstance(schema, frozenset):
        return f"one of {sorted(schema)}"
    if isinstance(schema, re.Pattern):
        return "a SHA-256 hex digest"
    if isinstance(schema, (dict, list)):
        return "an object" if isinstance(schema, dict) else "an array"
    return {
        None: "null",
        "number": "a number",
        float: "a finite number",
        int: "an integer",
        str: "a string",
        bool: "true or false",
        list: "an array",
        dict: "an object",
    }.get(schema, str(schema))


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else ("an object" if isinstance(value, dict) else "an array")
    return text if len(text) <= 40 else text[:39] + "…"


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
        m = _TMP_NAME.search(tmp.name[len(path.name) :])
        try:
            stale = m is not None and m["host"] == socket.gethostname() and not pid_alive(int(m["pid"])) or time.time() - tmp.stat().st_mtime > _STALE_AFTER
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
    """``obj`` as strict JSON (a non-finite number becomes null: :func:`arlib.config.to_jsonable`), written atomically."""
    atomic_write_bytes(path, (json.dumps(to_jsonable(obj), indent=1, sort_keys=True, allow_nan=False) + "\n").encode())


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
        """A JSON object of the run, checked against its shape in :data:`SCHEMAS`; DamagedRunError naming the file and why if it is not one."""
        return read_json_file(self.file(name), SCHEMAS.get(name))

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
        """Whether training is over, finished or diverged (only then is ``metrics.json`` written); DamagedRunError if it does not parse."""
        return self.file("metrics.json").exists() and self.read_json("metrics.json")["status"] in OVER

    @property
    def diverged(self) -> bool:
        """Whether training ended on a non-finite loss (then there are no weights, no final metrics and no analysis)."""
        return self.file("metrics.json").exists() and self.read_json("metrics.json")["status"] == "diverged"

    @property
    def sealed(self) -> bool:
        """Whether the run was ever finished (a ``metrics.json`` or ``checksums.json`` exists): its files are results, never rewritten."""
        return self.file("metrics.json").exists() or self.file(CHECKSUMS).exists()

    @property
    def analysed(self) -> bool:
        return self.file("analysis.json").exists() and self.file("analysis.npz").exists()

    def status(self) -> str:
        """new | partial | finished | analysed | diverged, or damaged when a file does not parse, fit its shape or match its checksum."""
        if self.problems(deep=False):
            return "damaged"
        if self.finished:
            return "diverged" if self.diverged else "analysed" if self.analysed else "finished"
        if self.file("checkpoint.pt").exists():
            return "partial"
        return "new"

    def weights(self, problems: list[str] | None = None) -> str:
        """``present``, ``absent`` (runs committed before issue 19 have none) or ``damaged`` (among ``problems``, default :meth:`problems`)."""
        path = self.file("model.pt")
        if not path.is_file():
            return "absent"
        problems = self.problems(deep=False) if problems is None else problems
        return "damaged" if any(p.startswith(f"{path}: ") for p in problems) else "present"

    def divergence(self) -> str:
        """Why a diverged run was left out, one phrase: ``diverged at epoch 3 (training loss nan at batch 2)``."""
        d = self.read_json("metrics.json").get("diverged") or {}
        return f"diverged at epoch {d.get('epoch', '?')} ({d.get('reason', 'loss not finite')})"

    def metrics(self) -> dict:
        return self.read_json("metrics.json")

    def analysis(self) -> tuple[dict, dict[str, np.ndarray]]:
        return self.read_json("analysis.json"), self.analysis_arrays()

    def analysis_arrays(self) -> dict[str, np.ndarray]:
        return self._read_npz("analysis.npz")

    def outcomes(self) -> dict[str, np.ndarray] | None:
        """The per-example outcomes of the final evaluation (:func:`arlib.evaluation.final_evaluation`), or None for runs from before them."""
        return self._read_npz("outcomes.npz") if self.file("outcomes.npz").is_file() else None

    def save_outcomes(self, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.file("outcomes.npz"), buf.getvalue())

    def read_npz(self, name: str) -> dict[str, np.ndarray]:
        """One of the run's ``.npz`` files (no pickles); DamagedRunError naming it when unreadable."""
        return self._read_npz(name)

    def _read_npz(self, name: str) -> dict[str, np.ndarray]:
        path = self.file(name)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # ValueError: also an array of pickled objects
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
        # bound.json's "hash" is not compared: runs whose config gained fields were renamed (config_migrated) and keep the old one there.
        for name, key in (("metrics.json", "config_hash"), ("analysis.json", "config_hash"), ("bound.json", None), ("provenance.json", None)):
            if self.file(name).is_file():
                obj = attempt(lambda name=name: self.read_json(name))
                if obj is not None and key and obj.get(key) not in (None, self.hash):
                    out.append(f"{self.file(name)}: belongs to run {obj.get(key)}, not {self.hash}")
        if deep:
            for name in ("analysis.npz", "outcomes.npz", "attack_audit.npz"):
                if self.file(name).is_file():
                    attempt(lambda name=name: self._read_npz(name))
            if self.file("model.pt").is_file():
                attempt(lambda: load_state_dict(self.file("model.pt")))
            if self.file("checkpoint.pt").is_file():
                attempt(lambda: load_torch(self.file("checkpoint.pt")))
        recorded = attempt(lambda: self.read_json(CHECKSUMS)) if self.file(CHECKSUMS).is_file() else None
        for name, digest in ((recorded or {}).get("sha256") or {}).items():
            f = self.file(name)
            if name not in RESULT_FILES or any(p.startswith(f"{f}: ") for p in out):
                continue
            if not f.is_file():
                if name not in MAY_BE_ABSENT:
                    out.append(f"{f}: missing (its checksum is recorded in {CHECKSUMS})")
            elif sha256_file(f) != digest:
                out.append(f"{f}: content differs from its recorded checksum")
        return out

    def move_aside(self, name: str, when: str | None = None) -> Path:
        """Rename a damaged file to ``<name>.damaged-<UTC time>`` (evidence is kept, never deleted)."""
        src = self.file(name)
        dest = src.with_name(f"{name}.damaged-{when or time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        try:
            os.replace(src, dest)
        except OSError as e:
            raise storage_error(dest, e) from None
        return dest

    def repair(self) -> list[Path]:
        """Move every file of a damaged run aside (``<name>.damaged-<UTC time>``), so that the grid trains it anew.

        The explicit step ``arlib runs --repair <hash>`` takes; nothing else ever moves a finished
        run's files. A run without problems is left as it is (returns []). A config.json that
        is sound is kept: the folder stays the run of that config.
        """
        problems = self.problems(deep=True)
        if not problems:
            return []
        when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        config_damaged = any(p.startswith(f"{self.file('config.json')}: ") for p in problems)
        names = [*RESULT_FILES, CHECKSUMS, "checkpoint.pt"]
        return [self.move_aside(n, when) for n in names if self.file(n).is_file() and (n != "config.json" or config_damaged)]

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

    def path_of(self, cfg: RunConfig) -> Path:
        """Where ``cfg``'s run lives, whether or not it exists yet."""
        return self.root / "runs" / cfg.hash

    def find(self, cfg: RunConfig) -> Run | None:
        run = Run(self.path_of(cfg))
        return run if run.file("config.json").exists() else None

    def runs(self) -> list[Run]:
        base = self.root / "runs"
        if not base.is_dir():
            return []
        return [Run(p) for p in sorted(base.iterdir()) if (p / "config.json").exists()]


# ----------------------------------------------------------------------------- the one way to read a result file


def read_json_file(path: Path, schema: Any = None) -> dict:
    """The JSON object in ``path``, checked against ``schema`` (:data:`SCHEMAS`); DamagedRunError naming the file otherwise.

    Not UTF-8, not JSON, nested too deep for the parser, a number too long, not an object,
    or of the wrong shape: each is one reason. ``NaN`` tokens parse (per-epoch records of
    stopped probes hold them); the schema says where a non-finite number is allowed.
    """
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as e:
        raise DamagedRunError(path, f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DamagedRunError(path, f"not valid JSON ({e.msg})") from None
    except RecursionError:
        raise DamagedRunError(path, "not valid JSON (nested too deeply)") from None
    except ValueError as e:  # e.g. an integer longer than Python converts
        raise DamagedRunError(path, f"not valid JSON ({_first_line(e)})") from None
    except OSError as e:
        raise DamagedRunError(path, f"cannot be read ({e.strerror or type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise DamagedRunError(path, "not a JSON object")
    why = _shape_problem(obj, schema, path.name) if schema is not None else None
    if why:
        raise DamagedRunError(path, why)
    return obj


# numpy's uint32 arrays, which checkpoints written before issue 21 held (numpy's RNG state): data, never code.
def _numpy_array_globals() -> list:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_torch(path: Path, map_location: Any = "cpu") -> Any:
    """``torch.load`` of a results-store file, weights only: tensors, numbers, strings, containers and uint32 arrays.

    A pickled callable (code) is refused by the unpickler before anything runs; that, and
    any other failure to load, is a :class:`DamagedRunError` naming the file.
    """
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated zip, garbage, a foreign or malicious pickle: the type says how
        refused = re.search(r"(?:unsupported|Unsupported) (?:GLOBAL|global:? (?:GLOBAL )?)\s*([\w.]+)", str(e))
        if refused:
            raise DamagedRunError(path, f"does not load (it holds a pickled callable, {refused[1]}, which is never run)") from None
        raise DamagedRunError(path, f"does not load ({type(e).__name__}: {_first_line(e, 100)})") from None


def load_state_dict(path: Path, map_location: Any = "cpu") -> dict:
    """The weights in ``model.pt``: :func:`load_torch`, and a mapping of names to tensors."""
    import torch

    state = load_torch(path, map_location)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise DamagedRunError(path, "does not load (not a state dict of tensors)")
    return state


def _first_line(e: BaseException, limit: int = 120) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else ""


__all__ = [
    "Store",
    "Run",
    "Timeout",
    "require_sound",
    "RESULT_FILES",
    "CHECKSUMS",
    "SCHEMAS",
    "sha256_file",
    "remove_stale_tmp",
    "atomic_write_json",
    "atomic_write_bytes",
    "atomic_torch_save",
    "default_root",
    "read_json_file",
    "load_torch",
    "load_state_dict",
]


def require_sound(run: Run) -> Run:
    """``run`` if its files parse, fit their shapes and match their checksums; else DamagedRunError naming the first bad file.

    A finished run whose files are damaged is reported, never silently retrained or
    rewritten: its numbers may already be in a book or a paper (``arlib runs --repair``
    moves it aside explicitly).
    """
    problems = run.problems(deep=False)
    if problems:
        path, _, why = problems[0].partition(": ")
        more = f" (and {len(problems) - 1} more; arlib runs --check lists them)" if len(problems) > 1 else ""
        raise DamagedRunError(path, why + more)
    return run
