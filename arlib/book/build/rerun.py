"""``arlib chapter``: rerun one chapter notebook with papermill, its parameters checked first.

Usage::

    arlib chapter B5_smoothing                                  # committed cpu results -> B5_smoothing.ipynb
    arlib chapter B5_smoothing -p eps_grid 0,8,16 -o out.ipynb  # or -p eps_grid "[0, 8, 16]"
    arlib chapter B6_fgsm --profile cpu-high --train            # train the runs it lacks first, one bar per run
    arlib chapter --params                                      # the parameters: name, type, default, meaning

Every ``-p NAME VALUE`` is checked against the chapter's ``parameters`` cell and the declared
types (:mod:`arlib.book.params`) before anything runs: an unknown name, a wrong type, a bad
list or an unknown profile is one line and exit 2, and nothing is written. The chapter never
trains unless ``--train`` (or ``-p ensure true``) says so; without it the runs the results store
lacks are named in the notebook with the command that makes them. With it, the chapter is
executed once to learn which runs it lacks (:data:`arlib.book.chapter.MISSING_ENV`), those are
trained and analysed here, in this process, with a progress bar per run, and the chapter is
executed again on the complete store.

The output notebook is signed as trusted (what ``jupyter trust`` does), so JupyterLab renders its
ε slider from the saved widget state instead of the slider's text form.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..handshake import CHAPTER_ENV
from .pipeline import TEMPLATE_DIR, TEMPLATE_SUFFIX, BookError, _captured_output, _one_line, find_root, toc_chapters
from ..params import check_values, notebook_parameters

__all__ = ["book_root", "resolve_chapter", "notebook_parameters", "chapter_parameters", "rerun_chapter"]


def book_root(root: str | os.PathLike | None = None) -> Path:
    """The book's root: ``root``, else the nearest directory with ``_toc.yml`` at or above the working
    directory, else the checkout this package was installed from (so ``arlib chapter`` works from anywhere)."""
    if root is not None:
        return find_root(Path(root))
    try:
        return find_root()
    except BookError:
        return find_root(Path(__file__).resolve().parents[3])


def resolve_chapter(root: Path, name: str) -> str:
    """A chapter's name from what a user typed: ``B5_smoothing``, a unique prefix (``B5``) or ``notebooks/B5_smoothing.md``."""
    chapters = toc_chapters(root)
    stem = Path(name).stem if name.endswith((TEMPLATE_SUFFIX, ".ipynb")) else name
    found = [c for c in chapters if c == stem] or [c for c in chapters if c.lower().startswith(stem.lower())]
    if not found:
        raise ConfigError(f"no chapter {stem!r}; the book has {', '.join(chapters)}")
    if len(found) > 1:
        raise ConfigError(f"chapter {stem!r} could be {', '.join(found)}: name one")
    if not (root / TEMPLATE_DIR / f"{found[0]}{TEMPLATE_SUFFIX}").is_file():
        raise ConfigError(f"chapter {found[0]} has no notebook {TEMPLATE_DIR}/{found[0]}{TEMPLATE_SUFFIX} yet")
    return found[0]


def chapter_parameters(defaults: dict[str, Any], given: list[tuple[str, str]] | None = None, profile: str | None = None, train: bool = False) -> dict[str, Any]:
    """The values to inject: each ``-p NAME VALUE`` of ``given`` checked against the notebook's ``defaults``
    and the declared types (:func:`arlib.book.params.check_values`), ``--profile`` and ``--train`` folded in.

    Only what the user set is returned (the notebook keeps its own defaults for the rest); any
    problem is a one-line :class:`ConfigError`.
    """
    values: dict[str, Any] = {}
    for name, value in given or []:
        if name in values and values[name] != value:
            raise ConfigError(f"parameter {name!r} is given twice ({values[name]!r} and {value!r})")
        values[name] = value
    if profile is not None:
        if "profile" in values and values["profile"] != profile:
            raise ConfigError(f"--profile {profile} and -p profile {values['profile']} disagree")
        values["profile"] = profile
    checked = check_values(values, lenient=True, known=defaults)
    if train:
        if "ensure" in values and checked.get("ensure") is False:
            raise ConfigError("--train and -p ensure false disagree")
        checked["ensure"] = True
        values["ensure"] = True
    return {k: checked[k] for k in values}


def _execute(root: Path, name: str, params: dict[str, Any], dest: Path, env: dict[str, str] | None = None) -> float:
    """Run ``notebooks/<name>.md`` with ``params`` into ``dest`` (written whole, also when a cell fails); seconds taken."""
    import jupytext
    import nbformat
    import papermill as pm
    from nbformat.sign import NotebookNotary
    from papermill.exceptions import PapermillExecutionError

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".ipynb", dir=dest.parent)
    os.close(fd)
    env = {CHAPTER_ENV: name, **(env or {})}  # the chapter's figure numbers, and its name in the missing-runs note
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    error = None
    try:
        with _captured_output():  # the kernel's start-up chatter; the notebook holds everything it printed
            pm.execute_notebook(
                jupytext.read(root / TEMPLATE_DIR / f"{name}{TEMPLATE_SUFFIX}"),
                partial,
                parameters=params,
                kernel_name="python3",
                cwd=str(root),
                progress_bar=False,
                log_output=False,
            )
    except PapermillExecutionError as e:
        error = f"chapter {name} failed in cell [{e.exec_count}]: {e.ename}: {_one_line(e.evalue)} (the notebook with the error: {dest})"
    except BaseException as e:
        Path(partial).unlink(missing_ok=True)
        if isinstance(e, Exception):
            raise BookError(f"chapter {name} could not be executed: {type(e).__name__}: {_one_line(e)}") from None
        raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb = nbformat.read(partial, as_version=4)
    NotebookNotary().sign(nb)  # trusted: JupyterLab renders the saved widget state (the ε slider), as `jupyter trust` would
    nbformat.write(nb, partial)
    os.replace(partial, dest)
    if error:
        raise BookError(error)
    return time.perf_counter() - t0


def _train(missing: list[dict]) -> None:
    """Train and analyse each run of ``missing`` (lines of :data:`arlib.book.chapter.MISSING_ENV`), one progress bar per run."""
    from ...config import RunConfig
    from ...grid import ensure_run
    from ...store import Store
    from ..chapter import _cell

    for i, m in enumerate(missing, 1):
        cfg = RunConfig.from_dict(m["config"])
        print(f"chapter: training and analysing {i}/{len(missing)}: {m['profile']} {_cell(cfg)} ({cfg.hash[:8]})", flush=True)
        ensure_run(cfg, Store.for_profile(m["profile"]), analyse=True, progress=True)


def rerun_chapter(
    name: str,
    given: list[tuple[str, str]] | None = None,
    output: str | os.PathLike | None = None,
    profile: str | None = None,
    train: bool = False,
    root: str | os.PathLike | None = None,
) -> Path:
    """Execute chapter ``name`` with the parameters ``given`` (``[(name, value), ...]``, as typed) into ``output``.

    Checks everything first (chapter, parameters, output folder) and raises a one-line
    :class:`ConfigError` having written nothing; a failing cell raises :class:`BookError` naming
    it, with the executed notebook written to ``output``. Returns the output path.
    """
    import jupytext

    from ..chapter import MISSING_ENV

    root = book_root(root)
    name = resolve_chapter(root, name)
    defaults = notebook_parameters(jupytext.read(root / TEMPLATE_DIR / f"{name}{TEMPLATE_SUFFIX}"))
    params = chapter_parameters(defaults, given, profile, train)
    dest = Path(output) if output is not None else Path(f"{name}.ipynb")
    if dest.suffix != ".ipynb":
        raise ConfigError(f"output {dest} must end in .ipynb")
    if not dest.parent.resolve().is_dir():
        raise ConfigError(f"output folder {dest.parent} does not exist")
    dest = dest.resolve()
    shown = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in params.items()) or "the notebook's defaults"
    print(f"chapter: {name} with {shown}", flush=True)
    if params.get("ensure"):
        fd, missing_file = tempfile.mkstemp(prefix=f"arbook-{name}-", suffix=".missing")
        os.close(fd)
        try:
            seconds = _execute(root, name, {**params, "ensure": False}, dest, {MISSING_ENV: missing_file})
            missing = list({m["hash"]: m for m in map(json.loads, Path(missing_file).read_text().splitlines())}.values())
        finally:
            Path(missing_file).unlink(missing_ok=True)
        print(f"chapter: read the store in {seconds:.0f} s: {len(missing) or 'no'} run{'s' if len(missing) != 1 else ''} to train", flush=True)
        if not missing:
            print(f"chapter: wrote {dest}", flush=True)
            return dest
        _train(missing)
    print(f"chapter: executing {name} ...", flush=True)
    seconds = _execute(root, name, params, dest)
    print(f"chapter: wrote {dest} ({seconds:.0f} s)", flush=True)
    return dest
