"""The chapters in a real JupyterLab, driven by headless Chromium (issue 22); run by ``.ci/run``.

``arlib lab`` starts JupyterLab on 127.0.0.1 (its own config, data and workspace folders under
``tmp_path``, a fixed token); Playwright opens a chapter, runs all, moves the ε slider through every
value and checks that the figure changes and no error shows, reloads the page, checks the slider
again, runs all again and checks again; afterwards ``git status`` must show no changed source. A
notebook written by ``arlib chapter`` opens with a working slider without being run, and the
README's rerun commands work verbatim. Every request that does not go to the local server is
blocked and counted.

The chapter reads the ``smoke`` profile's PGD runs (trained here when missing: ``arlib grid
--profile smoke --experiments pgd``, about two minutes on two cores; in CI ``make book-check``
has made them). Needs Debian's Chromium, as ``tests/test_browser.py``. About 3 minutes in all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import PageLog

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "B5_smoothing"  # three slider pages' worth of runs in the smoke store, and a verdict
TOKEN = "arbook-test"
ARLIB = [sys.executable, "-m", "arlib.cli"]
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook tab in front


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory):
    """An environment whose Jupyter config, data (the trust database), runtime, settings and workspaces are private to the test."""
    home = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ)
    for var, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ):
        (home / sub).mkdir()
        env[var] = str(home / sub)
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps({"IdentityProvider": {"token": TOKEN}}))
    return env


@pytest.fixture(scope="module")
def smoke_runs(jupyter_env):
    proc = subprocess.run(
        [*ARLIB, "grid", "--profile", "smoke", "--experiments", "pgd", "--quiet"], cwd=REPO, env=jupyter_env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sources() -> dict[str, str]:
    """What must not change: git's view of the book's sources, and every chapter source's bytes."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--", "notebooks", "book", "lab", "_toc.yml", "_config.yml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {"git status": status, **{p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((REPO / "notebooks").glob("*.md"))}}


@pytest.fixture(scope="module")
def lab(jupyter_env, smoke_runs):
    """``arlib lab`` serving its copies from ``lab/_pytest-<pid>/`` (gitignored) on a free port; yields (base URL, copies folder)."""
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("JupyterLab is not installed (pip install -e '.[book]')")
    lab_dir = REPO / "lab" / f"_pytest-{os.getpid()}"
    lab_dir.parent.mkdir(exist_ok=True)
    port = _free_port()
    log = open(lab_dir.parent / f"_pytest-{os.getpid()}.log", "w")
    proc = subprocess.Popen(
        [*ARLIB, "lab", CHAPTER, "--profile", "smoke", "--dir", str(lab_dir), "--no-browser", "--port", str(port)],
        cwd=REPO,
        env=jupyter_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, f"arlib lab exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"JupyterLab did not answer in 120 s: {Path(log.name).read_text()[-2000:]}"
            time.sleep(1)
        yield base, lab_dir
    finally:
        proc.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(lab_dir, ignore_errors=True)
        Path(log.name).unlink(missing_ok=True)


@pytest.fixture
def page(chromium, lab):
    base, _ = lab
    ctx = chromium.new_context(viewport={"width": 1400, "height": 1000})
    log = PageLog()

    def route(r):
        if r.request.url.startswith((base, "data:", "blob:")):
            r.continue_()
        else:
            log.blocked.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    pg.on("console", lambda m: m.type == "error" and log.errors.append(m.text))
    pg.on("pageerror", lambda e: log.errors.append(f"uncaught: {e}"))
    yield pg, log
    ctx.close()


# -- driving JupyterLab ----------------------------------------------------------------------


def _open(pg, base: str, name: str) -> None:
    pg.goto(f"{base}/lab/tree/{name}?token={TOKEN}")
    pg.wait_for_selector(f"{VISIBLE} .jp-Cell", timeout=90_000)
    pg.wait_for_timeout(2000)  # the kernel starts and, after a reload, the widget manager asks it for its models
    no = pg.locator(".jp-Notification-Toast button", has_text="No")  # "get notified about Jupyter news?"
    if no.count():
        no.first.click()


def _run_all(pg, timeout_s: float = 300) -> float:
    """Run → Run All Cells from the menu; waits until every code cell has its execution count. Returns the seconds."""
    t0 = time.monotonic()
    pg.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
    pg.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    pg.wait_for_timeout(1000)
    prompts: list[str] = []
    while time.monotonic() - t0 < timeout_s:
        prompts = pg.evaluate(
            """(sel) => Array.from(document.querySelectorAll(sel + ' .jp-CodeCell .jp-InputPrompt'))
                                    .map(e => e.textContent.trim())""",
            VISIBLE,
        )
        if prompts and "[*]:" not in prompts:  # nothing queued or running any more: done, or stopped at an error
            errors = pg.evaluate(
                """(sel) => Array.from(document.querySelectorAll(sel + ' .jp-OutputArea-output'))
                                       .map(e => e.innerText).filter(t => /Error|Traceback/.test(t)).map(t => t.slice(-600))""",
                VISIBLE,
            )
            assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"Run All stopped: {prompts}; {errors}"
            return time.monotonic() - t0
        pg.wait_for_timeout(1000)
    raise AssertionError(f"Run All did not finish in {timeout_s} s: {prompts}")


def _state(pg) -> dict:
    return pg.evaluate(
        """(sel) => {
      const root = document.querySelector(sel);
      const slider = root.querySelector('.widget-slider');
      const outputs = Array.from(root.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText);
      return {
        sliders: root.querySelectorAll('.widget-slider').length,
        readout: slider ? slider.querySelector('.widget-readout').innerText.trim() : null,
        figure: Array.from(root.querySelectorAll('.widget-output img')).filter(i => i.offsetParent !== null).map(i => i.src),
        widget_errors: outputs.filter(t => /Error displaying widget|model not found|VBox\\(children/.test(t)).map(t => t.slice(0, 200)),
        raw_myst: outputs.filter(t => /:::\\{|```\\{/.test(t)).map(t => t.slice(0, 200)),
        details: root.querySelectorAll('.jp-OutputArea-output details').length,
      };
    }""",
        VISIBLE,
    )


def _sweep_slider(pg) -> list[str]:
    """Move the ε slider from its first to its last value with the arrow key; every value must show another figure."""
    handle = pg.locator(f"{VISIBLE} .widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    pg.keyboard.press("Home")
    pg.wait_for_timeout(300)
    first = _state(pg)
    assert len(first["figure"]) == 1, f"the slider shows {len(first['figure'])} figures at once"
    seen = [(first["readout"], first["figure"][0])]
    for _ in range(10):
        pg.keyboard.press("ArrowRight")
        pg.wait_for_timeout(400)
        s = _state(pg)
        if s["readout"] == seen[-1][0]:
            break  # the last value
        assert len(s["figure"]) == 1 and s["figure"][0] != seen[-1][1], f"ε {s['readout']}: the figure did not change"
        seen.append((s["readout"], s["figure"][0]))
    assert len({f for _, f in seen}) == len(seen) >= 2, seen
    return [r for r, _ in seen]


def _widget_console_errors(log: PageLog) -> list[str]:
    return [e for e in log.errors if re.search(r"comm|widget|model", e, re.I)]


def _error_outputs(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]


# -- the tests -------------------------------------------------------------------------------


def test_chapter_runs_in_jupyterlab_and_its_slider_survives_a_reload(lab, page):
    base, lab_dir = lab
    pg, log = page
    before = _sources()
    t0 = time.monotonic()

    _open(pg, base, f"{CHAPTER}.ipynb")
    first_run = _run_all(pg)
    s = _state(pg)
    assert s["sliders"] == 1 and not s["widget_errors"], s
    assert s["details"] >= 1 and not s["raw_myst"], f"verdicts are not rendered as in the book: {s['raw_myst']}"
    values = _sweep_slider(pg)
    assert values == ["0", "4", "8", "16"], values  # the smoke store's four PGD runs, one figure each

    pg.keyboard.press("Control+s")  # what autosave does two minutes later
    pg.wait_for_timeout(1500)
    assert _error_outputs(lab_dir / f"{CHAPTER}.ipynb") == []

    pg.reload()
    _open(pg, base, f"{CHAPTER}.ipynb")
    pg.wait_for_function("(sel) => document.querySelector(sel + ' .widget-slider') !== null", arg=VISIBLE, timeout=30_000)
    s = _state(pg)
    assert s["sliders"] == 1 and not s["widget_errors"], f"after a reload: {s}"
    assert _sweep_slider(pg) == values
    second_run = _run_all(pg)
    s = _state(pg)
    assert s["sliders"] == 1 and not s["widget_errors"], f"after a reload and Run All: {s}"
    assert _sweep_slider(pg) == values

    assert not _widget_console_errors(log), log.errors
    assert not log.blocked, f"requests outside the local server: {log.blocked[:5]}"
    pg.keyboard.press("Control+s")
    pg.wait_for_timeout(1500)
    assert _sources() == before, "JupyterLab changed the book's sources (git status or notebooks/*.md)"
    print(f"\nJupyterLab: Run All {first_run:.0f} s, again after a reload {second_run:.0f} s, whole test {time.monotonic() - t0:.0f} s")


def test_notebook_from_arlib_chapter_opens_with_a_working_slider(lab, page, jupyter_env):
    base, lab_dir = lab
    pg, log = page
    out = lab_dir / "B5_rerun.ipynb"
    proc = subprocess.run(
        [*ARLIB, "chapter", CHAPTER, "--profile", "smoke", "-p", "eps_grid", "0,8,16", "-o", str(out)],
        cwd=REPO,
        env=jupyter_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _error_outputs(out) == []
    _open(pg, base, out.name)  # not run: the slider comes from the notebook's saved widget state
    pg.wait_for_function("(sel) => document.querySelector(sel + ' .widget-slider') !== null", arg=VISIBLE, timeout=30_000)
    s = _state(pg)
    assert s["sliders"] == 1 and not s["widget_errors"] and s["details"] >= 1 and not s["raw_myst"], s
    assert _sweep_slider(pg) == ["0", "8", "16"]
    assert not _widget_console_errors(log), log.errors
    assert not log.blocked, log.blocked[:5]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return list(
        dict.fromkeys(
            line.split("  # ")[0].strip()
            for line in text.splitlines()
            if line.startswith(".venv/bin/") and ("papermill -" in line or ".venv/bin/arlib chapter B5_smoothing -p" in line)
        )
    )


def test_readme_rerun_commands_work_verbatim(tmp_path, jupyter_env):
    """The README's two rerun lines, run as written from a folder laid out like a checkout (the venv and
    the chapter sources linked in), so that their ``out.ipynb`` does not land in the repository."""
    from nbformat import read
    from nbformat.sign import NotebookNotary

    commands = _readme_commands()
    assert len(commands) == 2, commands
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    for command in commands:
        t0 = time.monotonic()
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=jupyter_env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"
        out = tmp_path / "out.ipynb"
        assert _error_outputs(out) == [], command
        notary = NotebookNotary(data_dir=jupyter_env["JUPYTER_DATA_DIR"])
        assert notary.check_signature(read(out, as_version=4)), f"{command}: out.ipynb is not trusted, JupyterLab would show the slider as text"
        print(f"\n{time.monotonic() - t0:.0f} s: {command}")
        out.unlink()
