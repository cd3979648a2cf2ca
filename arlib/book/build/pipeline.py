"""Build the book: execute the chapter notebooks that changed, then run Jupyter Book.

Chapters are the ``_toc.yml`` entries under ``book/executed/``; chapter ``<name>`` is
executed from the template ``notebooks/<name>.md`` (a MyST Markdown notebook, so that
prose and code diff as text; jupytext reads it into a notebook) by papermill, which injects
``profile`` and the chapter's parameters from ``book/params.yml``, and is written to
``book/executed/<name>.ipynb``. Jupyter Book itself never executes anything
(``execute_notebooks: off``), and Sphinx's incremental build is kept, so a page is
re-rendered only when its notebook was re-executed.

A chapter is skipped when its *stamp* is unchanged. The stamp is a hash of

* the template's bytes,
* its parameters, ``profile`` included,
* the sources of the ``arlib`` package the kernel imports (the build subpackage,
  :mod:`arlib.book.build`, excluded: the build driver does not change what a chapter computes),
* the contents of the results-store files the chapter read last time, which the
  notebook reports through :func:`record_inputs` (:mod:`arlib.book.report` and
  :mod:`arlib.book.speed` call it for every run directory and results file they read).

The stamp and the list of inputs are kept in the executed notebook's metadata
(``metadata.arbook``), so they travel with it.

One build at a time per checkout: ``arlib book`` holds ``_build/.arbook-build.lock``
(:func:`build_lock`; a second one says in one line which process holds it and waits). A
chapter is executed into ``_build/.executing/``, outside the book's sources, and moved into
``book/executed/`` only when complete; whatever a killed build left there (or, from builds
before issue 21, as ``book/executed/.<chapter>.*.ipynb``) is removed when the next one starts.

Usage (the command line is ``arlib book``, :mod:`arlib.cli`)::

    arlib book                                        # every chapter, profile DEFAULT_BOOK_PROFILE (cpu)
    arlib book --profile cpu --chapters B5_smoothing  # one chapter
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...errors import ArlibError
from ...profiles import DEFAULT_BOOK_PROFILE, PROFILES
from ..handshake import CHAPTER_ENV, INPUTS_ENV, inputs_fingerprint
from ..params import check_params, notebook_parameters, read_params_file
from .stamp import STAMP_ENV, build_stamp

EXECUTED_DIR = "book/executed"
SCRATCH_DIR = "_build/.executing"  # the chapter being executed and its inputs file: outside the book's sources
LOCK_FILE = "_build/.arbook-build.lock"
TEMPLATE_DIR = "notebooks"
TEMPLATE_SUFFIX = ".md"  # MyST Markdown notebooks, read by jupytext
STAMP_VERSION = 2  # 2: inputs are the results root + result-file checksums


class BookError(ArlibError):
    """The book could not be built: a chapter failed, or the configuration is wrong."""


# -- inputs reported by the notebooks (arlib.book.handshake) ------------------------------------


def _inputs_hash(root: Path, inputs: list[str]) -> str:
    """Hash of what a chapter read: the results root it read from and the checksum of every result file of each run it reported.

    :func:`arlib.book.handshake.inputs_fingerprint`: switching stores (``ARLIB_RESULTS``) or any change of
    a result file re-executes the chapter; a reported path that is gone counts as changed.
    """
    fingerprint = inputs_fingerprint([Path(rel) if Path(rel).is_absolute() else root / rel for rel in sorted(set(inputs))])
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


# -- configuration ---------------------------------------------------------------------------


def find_root(start: Path | None = None) -> Path:
    """The book's root: the nearest directory at or above ``start`` holding ``_toc.yml``."""
    start = Path(start or Path.cwd()).resolve()
    for d in (start, *start.parents):
        if (d / "_toc.yml").is_file():
            return d
    raise BookError(f"no _toc.yml in {start} or above; run from the repository root")


def toc_chapters(root: Path) -> list[str]:
    """Chapter names, in book order: the ``_toc.yml`` files under ``book/executed/``."""
    import yaml

    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file") or node.get("root")
            if isinstance(f, str) and f.startswith(EXECUTED_DIR + "/"):
                found.append(Path(f).stem)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return found


def chapter_names(chapters: str | list[str] | None) -> list[str]:
    """The chapters asked for: ``"B5_smoothing,B6_fgsm"``, ``["B5_smoothing", "B6_fgsm"]`` or both mixed, as a
    list of names (blanks dropped; ``arlib book --chapters`` and :func:`build_book` both read it so)."""
    if isinstance(chapters, str):
        chapters = [chapters]
    return [c.strip() for arg in chapters or [] for c in arg.split(",") if c.strip()]


def load_params(path: Path, profile: str, chapters: list[str], templates: Path | None = None) -> dict[str, dict]:
    """Per-chapter parameters for ``profile``: ``default`` entries, then the profile's (checked by :mod:`arlib.book.params`).

    ``templates``: the folder of the chapter notebooks; each entry is then checked against its own notebook's
    parameters cell (its names and default kinds), else against the declared chapter parameters.
    """
    data = read_params_file(path) if path.is_file() else {}
    defaults = None
    if templates is not None:
        import jupytext

        defaults = {
            n: notebook_parameters(jupytext.read(templates / f"{n}{TEMPLATE_SUFFIX}")) for n in chapters if (templates / f"{n}{TEMPLATE_SUFFIX}").is_file()
        }
    return check_params(data, profile, chapters, defaults=defaults, where=str(path))


def _arlib_dir(root: Path) -> Path:
    """The arlib package the kernels import: the one in the book's root if there is one."""
    local = root / "arlib"
    return local if (local / "__init__.py").is_file() else Path(__file__).resolve().parents[2]


def arlib_sources_hash(root: Path) -> str:
    pkg = _arlib_dir(root)
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        if f.is_relative_to(pkg / "book" / "build"):
            continue
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def chapter_stamp(template_hash: str, params: dict, arlib_hash: str, inputs_hash: str) -> str:
    payload = {
        "version": STAMP_VERSION,
        "template": template_hash,
        "parameters": params,
        "arlib": arlib_hash,
        "inputs": inputs_hash,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _title(path: Path) -> str | None:
    """The first Markdown heading of a notebook: the page title in the navigation."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return None
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return None


def _executed_meta(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("arbook", {})
    except ValueError:
        return {}


# -- execution -------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _one_line(text: str, limit: int = 300) -> str:
    lines = [l.strip() for l in _ANSI.sub("", str(text)).splitlines() if l.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ipykernel warns at every start that papermill's kernels talk over local TCP, and sometimes
# reports the interrupt papermill sends at shutdown; neither says anything about the chapter.
_KERNEL_NOISE = re.compile(
    r"Kernel is running over TCP without encryption"
    r"|KeyboardInterrupt caught in kernel"
)


@contextlib.contextmanager
def _captured_output():
    """Send file descriptors 1 and 2 to a buffer while a chapter runs.

    The kernel inherits them, and low-level output of its libraries would otherwise land
    in the middle of the progress lines. Yields a list that, on exit, holds the captured
    lines minus known noise.
    """
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as buf:
        for fd in saved:
            os.dup2(buf.fileno(), fd)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            buf.seek(0)
            text = buf.read().decode("utf-8", "replace")
            lines.extend(l for l in text.splitlines() if l.strip() and not _KERNEL_NOISE.search(l))


def _write_placeholder(dest: Path, name: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"# {name}\n\n```{{warning}}\nThe template `{TEMPLATE_DIR}/{name}{TEMPLATE_SUFFIX}` does not exist "
            f"yet, so this chapter has not been executed.\n```\n"
        )
    ]
    nb.metadata["arbook"] = {"placeholder": True}
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def execute_chapter(root: Path, name: str, params: dict, arlib_hash: str) -> tuple[float, list[str]]:
    """Run ``notebooks/<name>.md`` with papermill into ``book/executed/<name>.ipynb``.

    Returns the seconds it took and what the run wrote to stdout/stderr outside the
    notebook (papermill's warnings, e.g. about an unknown parameter). On failure the partly executed notebook is kept in
    ``book/executed/.failed/`` and a one-line :class:`BookError` is raised.
    """
    import jupytext
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    template = root / TEMPLATE_DIR / f"{name}{TEMPLATE_SUFFIX}"
    dest = root / EXECUTED_DIR / f"{name}.ipynb"
    failed = root / EXECUTED_DIR / ".failed" / f"{name}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = root / SCRATCH_DIR  # never published; cleared by the next build if this one is killed
    scratch.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f"{name}.", suffix=".ipynb", dir=scratch)
    os.close(fd)
    fd, inputs_file = tempfile.mkstemp(prefix=f"{name}.", suffix=".inputs", dir=scratch)
    os.close(fd)

    template_hash = _file_hash(template)  # before running: an edit meanwhile re-executes
    t0 = time.perf_counter()
    old_env = os.environ.get(INPUTS_ENV)
    os.environ[INPUTS_ENV] = inputs_file
    os.environ[CHAPTER_ENV] = name
    try:
        with _captured_output() as output_lines:
            pm.execute_notebook(jupytext.read(template), partial, parameters=params, kernel_name="python3", cwd=str(root), progress_bar=False, log_output=False)
    except PapermillExecutionError as e:
        failed.parent.mkdir(exist_ok=True)
        shutil.move(partial, failed)
        raise BookError(f"chapter {name} failed in cell [{e.exec_count}]: {e.ename}: {_one_line(e.evalue)} (notebook: {failed.relative_to(root)})") from None
    except Exception as e:  # kernel died, missing kernel, bad template JSON...
        raise BookError(f"chapter {name} could not be executed: {type(e).__name__}: {_one_line(e)}") from None
    finally:
        os.environ.pop(CHAPTER_ENV, None)
        if old_env is None:
            os.environ.pop(INPUTS_ENV, None)
        else:
            os.environ[INPUTS_ENV] = old_env
        reported = Path(inputs_file).read_text(encoding="utf-8").splitlines()
        Path(inputs_file).unlink(missing_ok=True)
        if sys.exc_info()[0] is not None:  # failed or interrupted: no half-written notebook
            Path(partial).unlink(missing_ok=True)
    seconds = time.perf_counter() - t0

    inputs = []
    for p in dict.fromkeys(filter(None, reported)):
        try:
            inputs.append(Path(p).relative_to(root).as_posix())
        except ValueError:
            inputs.append(p)  # outside the repository: kept absolute
    nb = nbformat.read(partial, as_version=4)
    hide_parameter_cells(nb)
    nb.metadata["arbook"] = {
        "stamp": chapter_stamp(template_hash, params, arlib_hash, _inputs_hash(root, inputs)),
        "profile": params["profile"],
        "parameters": params,
        "inputs": inputs,
        "seconds": round(seconds, 1),
    }
    nbformat.write(nb, partial)
    os.replace(partial, dest)
    failed.unlink(missing_ok=True)
    return seconds, output_lines


# Tags of the cells papermill reads and writes: the template's defaults and the values it injected.
PARAMETER_TAGS = ("parameters", "injected-parameters")
HIDDEN_TAG = "remove-cell"  # MyST-NB leaves such a cell out of the page


def hide_parameter_cells(nb) -> None:
    """Tag the parameter cells of an executed notebook ``remove-cell``: the page shows the settings once,
    as the chapter's set-up cell prints them resolved (:func:`arlib.book.chapter.setup`), not the
    template's defaults (``profile = "smoke"``) followed by papermill's injected values."""
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and set(tags) & set(PARAMETER_TAGS) and HIDDEN_TAG not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, HIDDEN_TAG]


def _jupyter_book() -> list[str]:
    script = Path(sys.executable).parent / "jupyter-book"
    if script.is_file():
        return [str(script)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise BookError("jupyter-book is not installed (pip install 'jupyter-book<2')")
    return [found]


def run_jupyter_book(root: Path, strict: bool = False, all_pages: bool = False, stamp: dict[str, str] | None = None) -> tuple[float, list[str]]:
    """``jupyter-book build <root>``, incremental unless ``all_pages``.

    ``stamp``: the build stamp every page's footer shows (:mod:`arlib.book.build.stamp`).
    Returns the seconds it took and the warning lines.
    """
    env = dict(os.environ)
    if stamp is not None:
        env[STAMP_ENV] = json.dumps(stamp)
    cmd = [*_jupyter_book(), "build", str(root)]
    if all_pages:
        cmd.append("--all")
    if strict:
        cmd += ["-W", "--keep-going"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    out = _ANSI.sub("", proc.stdout + proc.stderr)
    warnings = [l.strip() for l in out.splitlines() if re.search(r"\b(WARNING|ERROR)\b", l)]
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    return seconds, warnings


@contextlib.contextmanager
def build_lock(root: Path):
    """Hold the checkout's book-build lock (``_build/.arbook-build.lock``) for the ``with`` block.

    A second build says in one line which process holds it, then waits for it. The lock is
    the kernel's (``flock``): a killed holder releases it.
    """
    from filelock import FileLock, Timeout

    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = path.with_suffix(".holder")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            who = json.loads(holder.read_text())
            who = f"pid {who['pid']} on {who['host']}, started {who['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            who = "another process"
        print(f"book: another arlib book is building {root} ({who}); waiting for it to finish", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        holder.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def clear_partial_outputs(root: Path, chapters: list[str]) -> list[Path]:
    """Remove what a killed build left: ``_build/.executing/`` and older builds' ``book/executed/.<chapter>.*.ipynb``.

    Called with the build lock held, so nothing there belongs to a running build.
    """
    removed = []
    scratch = root / SCRATCH_DIR
    if scratch.is_dir():
        removed += sorted(scratch.iterdir())
        shutil.rmtree(scratch)
    for name in chapters:
        for debris in (root / EXECUTED_DIR).glob(f".{glob.escape(name)}.*.ipynb"):
            debris.unlink(missing_ok=True)
            removed.append(debris)
    return removed


def build_book(
    profile: str = DEFAULT_BOOK_PROFILE,
    chapters: list[str] | None = None,
    params_path: str | os.PathLike = "book/params.yml",
    force: bool = False,
    root: str | os.PathLike | None = None,
    html: bool = True,
    strict: bool = False,
) -> dict[str, str]:
    """Execute the chapters whose stamp changed, then build the HTML.

    Args:
        profile: ``smoke`` (seconds per cell, for CI), ``cpu`` (a small real
            reproduction on a 2-core CPU, both capacity regimes), ``cpu-high`` (its
            high-capacity regime alone) or ``paper`` (Appendix D's settings, GPUs).
        chapters: names to (re-)consider; default every chapter in ``_toc.yml``. Other
            chapters keep their executed notebooks as they are.
        params_path: the per-profile, per-chapter parameters (relative to ``root``).
        force: execute even when the stamp is unchanged.
        root: the book's root; default the nearest directory with ``_toc.yml``.
        html: run ``jupyter-book build`` after executing.
        strict: make Sphinx warnings errors (``-W --keep-going``).

    Returns:
        ``{chapter: "executed" | "up to date" | "missing template"}``.

    Raises:
        BookError: with a one-line message naming the chapter and the cell's error.
    """
    if profile not in PROFILES:
        raise BookError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    root = find_root(Path(root) if root else None)
    all_chapters = toc_chapters(root)
    selected = _selected(chapter_names(chapters), all_chapters)
    params = load_params(root / params_path, profile, all_chapters, root / TEMPLATE_DIR)
    with build_lock(root):
        removed = clear_partial_outputs(root, all_chapters)
        if removed:
            print(f"book: removed {len(removed)} partial output(s) of an interrupted build", flush=True)
        return _execute_and_render(root, profile, all_chapters, selected, params, force, html, strict)


def _selected(chapters: list[str], all_chapters: list[str]) -> list[str]:
    """The chapters to consider: those asked for (each one of the book's), or every chapter."""
    unknown = [c for c in chapters if c not in all_chapters]
    if unknown:
        raise BookError(f"unknown chapter(s) {', '.join(unknown)}; the book has {', '.join(all_chapters)}")
    return chapters or all_chapters


def _execute_and_render(
    root: Path, profile: str, all_chapters: list[str], selected: list[str], params: dict, force: bool, html: bool, strict: bool
) -> dict[str, str]:
    """:func:`build_book`'s work, under its lock: execute the chapters whose stamp changed, then run Jupyter Book."""
    from .vendor import ensure_vendored

    t_start = time.perf_counter()
    if html:
        ensure_vendored(root)
    arlib_hash = arlib_sources_hash(root)
    print(f"book: profile {profile}, {len(selected)} of {len(all_chapters)} chapters, root {root}", flush=True)
    width = max(map(len, all_chapters), default=0)
    status: dict[str, str] = {}
    # Sphinx's incremental build re-renders only changed pages, so every other page would keep
    # a stale chapter title in its navigation sidebar; a changed title rebuilds all pages.
    titles_changed = False
    for name in all_chapters:
        outcome, retitled = _build_chapter(root, name, name in selected, params[name], arlib_hash, force, width)
        if outcome is not None:
            status[name] = outcome
        titles_changed |= retitled
    if html:
        _render(root, profile, strict, titles_changed)
        print(f"book: {root / '_build' / 'html' / 'index.html'} (total {time.perf_counter() - t_start:.1f} s)", flush=True)
    return status


def _build_chapter(root: Path, name: str, selected: bool, params: dict, arlib_hash: str, force: bool, width: int) -> tuple[str | None, bool]:
    """One chapter's turn: a placeholder page while its template is missing, else executed if selected and its stamp
    changed (or ``force``). Returns its status (None: not considered) and whether its page title changed."""
    template = root / TEMPLATE_DIR / f"{name}{TEMPLATE_SUFFIX}"
    dest = root / EXECUTED_DIR / f"{name}.ipynb"
    if not template.is_file():
        retitled = False
        if not dest.is_file():  # written once: rewriting it would re-render the page
            _write_placeholder(dest, name)
            retitled = True
        if not _executed_meta(dest).get("placeholder"):
            return None, retitled
        print(f"  {name:<{width}}  missing template {TEMPLATE_DIR}/{name}{TEMPLATE_SUFFIX} (placeholder page)", flush=True)
        return "missing template", retitled
    if not selected:
        return None, False
    old_title = _title(dest)
    meta = _executed_meta(dest)
    stamp = chapter_stamp(_file_hash(template), params, arlib_hash, _inputs_hash(root, meta.get("inputs", [])))
    if not force and meta.get("stamp") == stamp:
        print(f"  {name:<{width}}  up to date", flush=True)
        return "up to date", False
    print(f"  {name:<{width}}  executing ...", end="", flush=True)
    try:
        seconds, notes = execute_chapter(root, name, params, arlib_hash)
    except BookError:
        print(" failed", flush=True)
        raise
    print(f" done in {seconds:.1f} s", flush=True)
    for line in notes:
        print(f"    {line}", flush=True)
    return "executed", _title(dest) != old_title


def _render(root: Path, profile: str, strict: bool, titles_changed: bool) -> None:
    """``jupyter-book build``: incremental, unless a page title, the extra files, ``_config.yml`` or the build stamp changed."""
    # Sphinx does not recopy html_extra_path files (the widget glue script) or re-read
    # _config.yml on an incremental build: rebuild every page when either changed.
    # The same for the build stamp in every page's footer (commit, day, profile).
    stamp = build_stamp(root, profile)
    extra_hash = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted((root / "book" / "_extra").rglob("*")) + [root / "_config.yml"] if p.is_file())
        + json.dumps(stamp, sort_keys=True).encode()
    ).hexdigest()
    extra_stamp = root / "_build" / ".arbook-extra-hash"
    extra_changed = not extra_stamp.exists() or extra_stamp.read_text() != extra_hash
    seconds, warnings = run_jupyter_book(root, strict=strict, all_pages=titles_changed or extra_changed, stamp=stamp)
    extra_stamp.parent.mkdir(parents=True, exist_ok=True)
    extra_stamp.write_text(extra_hash)
    print(f"jupyter-book build: {seconds:.1f} s, {len(warnings)} warning(s)", flush=True)
    for w in warnings:
        print(f"  {w}")


def book_server(root: str | os.PathLike | None = None, port: int = 8000):
    """An HTTP server (not yet serving) for the built book, ``_build/html`` of ``root``, on 127.0.0.1:``port`` (0: any free port)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    html = find_root(Path(root) if root else None) / "_build" / "html"
    if not (html / "index.html").is_file():
        raise BookError(f"no built book in {html}; run `arlib book` first")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # one line per request would drown the URL
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(html)))


def serve_book(root: str | os.PathLike | None = None, port: int = 8000) -> None:
    """Serve the built book over HTTP until Ctrl-C (``arlib book --serve``). The book also works opened
    from disk; served, the browser runs Sphinx's search exactly as written (its snippets fetch each page)."""
    with book_server(root, port) as server:
        print(f"book: serving http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("book: stopped", flush=True)
