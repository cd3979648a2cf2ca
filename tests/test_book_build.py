"""The book build: papermill execution with stamps, then an incremental Jupyter Book build.

The build tests (marked ``book``) make a small book in a temporary directory from the
repository's ``_config.yml`` and two throwaway chapters, and check that an unchanged
rebuild executes nothing and that changing one chapter's parameter re-executes only that
chapter. They take ~30 s (kernel starts, three Sphinx builds) and need the vendored
JavaScript (fetched with npm on first use).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from arlib.book.build.pipeline import BookError, build_book, load_params, toc_chapters
from arlib.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _notebook(path: Path, parameters: str, body: str) -> None:
    """A chapter template as the book keeps them: a MyST Markdown notebook."""
    import jupytext
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params, nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, str(path), fmt="md:myst")


TOC = """\
format: jb-book
root: book/intro
chapters:
  - file: book/executed/alpha
  - file: book/executed/beta
"""

PARAMS = """\
default:
  alpha: {}
  beta: {scale: 1}
smoke: {}
"""


@pytest.fixture
def small_book(tmp_path: Path) -> Path:
    root = tmp_path / "book_root"
    (root / "book").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    # A frozen copy of arlib (kernels import it from the book's root): the stamps hash its
    # sources, and the repository's copy may be edited while the test runs.
    shutil.copytree(REPO / "arlib", root / "arlib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "book" / "references.bib", root / "book" / "references.bib")
    for extra in ("_vendor", "_extra"):
        if (REPO / "book" / extra).is_dir():
            (root / "book" / extra).symlink_to(REPO / "book" / extra)
    (root / "_toc.yml").write_text(TOC)
    (root / "book" / "params.yml").write_text(PARAMS)
    (root / "book" / "intro.md").write_text("# A small book\n\nMath: $x^2$.\n")
    _notebook(root / "notebooks" / "alpha.md", 'profile = "smoke"', "print('alpha', profile)")
    _notebook(root / "notebooks" / "beta.md", 'profile = "smoke"\nscale = 1', "print('beta', profile, scale * 2)")
    return root


def _outputs(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


@pytest.mark.book
def test_incremental_build(small_book: Path, capsys):
    from arlib.book.build.vendor import ensure_vendored

    ensure_vendored(REPO)  # the small book links to the repository's vendored files
    root = small_book
    executed = root / "book" / "executed"

    t0 = time.perf_counter()
    first = build_book("smoke", root=root)
    t_first = time.perf_counter() - t0
    assert first == {"alpha": "executed", "beta": "executed"}
    assert "alpha smoke" in _outputs(executed / "alpha.ipynb")
    assert (root / "_build" / "html" / "book" / "executed" / "beta.html").is_file()
    assert (root / "_build" / "html" / "mathjax" / "tex-mml-chtml.js").is_file()
    mtimes = {n: (executed / f"{n}.ipynb").stat().st_mtime_ns for n in ("alpha", "beta")}

    t0 = time.perf_counter()
    second = build_book("smoke", root=root)
    t_second = time.perf_counter() - t0
    assert second == {"alpha": "up to date", "beta": "up to date"}
    assert {n: (executed / f"{n}.ipynb").stat().st_mtime_ns for n in mtimes} == mtimes

    (root / "book" / "params.yml").write_text(PARAMS.replace("{scale: 1}", "{scale: 21}"))
    t0 = time.perf_counter()
    third = build_book("smoke", root=root)
    t_third = time.perf_counter() - t0
    assert third == {"alpha": "up to date", "beta": "executed"}
    assert (executed / "alpha.ipynb").stat().st_mtime_ns == mtimes["alpha"]
    assert "beta smoke 42" in _outputs(executed / "beta.ipynb")
    assert "beta smoke 42" in (root / "_build" / "html" / "book" / "executed" / "beta.html").read_text()

    with capsys.disabled():
        print(f"\n  build times: first {t_first:.1f} s, unchanged {t_second:.1f} s, one parameter changed {t_third:.1f} s")


@pytest.mark.book
def test_template_and_profile_changes_reexecute(small_book: Path):
    root = small_book
    build_book("smoke", root=root, html=False)
    _notebook(root / "notebooks" / "alpha.md", 'profile = "smoke"', "print('alpha v2')")
    assert build_book("smoke", root=root, html=False) == {"alpha": "executed", "beta": "up to date"}
    assert build_book("cpu", root=root, html=False) == {"alpha": "executed", "beta": "executed"}
    assert build_book("cpu", root=root, chapters=["beta"], html=False, force=True) == {"beta": "executed"}


@pytest.mark.book
def test_recorded_inputs_are_part_of_the_stamp(small_book: Path):
    root = small_book
    store = root / "results" / "run1"
    store.mkdir(parents=True)
    (store / "metrics.json").write_text('{"acc": 0.5}')
    _notebook(
        root / "notebooks" / "alpha.md",
        'profile = "smoke"',
        "from arlib.book.handshake import record_inputs\nimport json\n"
        "record_inputs('results/run1')\nprint(json.load(open('results/run1/metrics.json'))['acc'])",
    )
    build_book("smoke", root=root, html=False)
    meta = json.loads((root / "book" / "executed" / "alpha.ipynb").read_text())["metadata"]["arbook"]
    assert meta["inputs"] == ["results/run1"]
    assert build_book("smoke", root=root, html=False)["alpha"] == "up to date"
    (store / "metrics.json").write_text('{"acc": 0.75}')
    assert build_book("smoke", root=root, html=False)["alpha"] == "executed"
    assert "0.75" in _outputs(root / "book" / "executed" / "alpha.ipynb")


@pytest.mark.book
def test_failing_chapter_gives_one_line_error(small_book: Path):
    root = small_book
    _notebook(root / "notebooks" / "beta.md", 'profile = "smoke"\nscale = 1', "raise ValueError('scale must be positive')")
    with pytest.raises(BookError) as err:
        build_book("smoke", root=root, html=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert "chapter beta" in msg and "ValueError: scale must be positive" in msg
    assert (root / "book" / "executed" / ".failed" / "beta.ipynb").is_file()
    assert not (root / "book" / "executed" / "beta.ipynb").exists()


# -- fast checks of the pieces (no kernel, no Sphinx) --------------------------------------


def test_repository_toc_lists_the_chapters():
    assert toc_chapters(REPO) == [
        "B1_adversarial_training",
        "B2_singular_values",
        "B3_margins",
        "B4_capacity",
        "B5_smoothing",
        "B6_fgsm",
        "C_bound_illustration",
        "D_implementation",
    ]


def test_repository_params_file_is_valid():
    chapters = toc_chapters(REPO)
    for profile in ("smoke", "cpu", "paper"):
        params = load_params(REPO / "book" / "params.yml", profile, chapters)
        assert set(params) == set(chapters)
        assert all(p["profile"] == profile for p in params.values())


def test_params_reject_unknown_chapter(tmp_path: Path):
    bad = tmp_path / "params.yml"
    bad.write_text("smoke:\n  B9_typo: {epochs: 1}\n")
    with pytest.raises(ConfigError, match="B9_typo"):
        load_params(bad, "smoke", ["B1_adversarial_training"])


def test_eps_explorer_links_slider_to_figures():
    import matplotlib

    matplotlib.use("agg")
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from arlib.book.widgets import eps_explorer

    def fig(eps):
        f, ax = plt.subplots()
        ax.plot([0, 1], [0, eps])
        return f

    box = eps_explorer(fig, [4, 8, 16])
    slider, stack = box.children
    assert isinstance(slider, widgets.SelectionSlider) and isinstance(stack, widgets.Stack)
    assert [label for label, _ in slider.options] == ["4", "8", "16"]
    assert len(stack.children) == 3 and stack.selected_index == 0
    pngs = [out.outputs[0]["data"]["image/png"] for out in stack.children]
    assert len(set(pngs)) == 3
    assert plt.get_fignums() == []  # figures closed: not drawn a second time inline
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_link import Link

    links = [w for w in _instances.values() if isinstance(w, Link) and w.source == (slider, "index") and w.target == (stack, "selected_index")]
    assert links


def test_eps_explorer_mapping_needs_every_value():
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from arlib.book.widgets import eps_explorer

    with pytest.raises(ValueError, match="no figure for ε = 16"):
        eps_explorer({4: plt.figure()}, [4, 16])
    plt.close("all")


def test_one_book_command_line_with_the_profiles_default():
    from arlib import profiles
    from arlib.cli import build_parser

    args = build_parser().parse_args(["book"])
    assert args.profile == profiles.DEFAULT_BOOK_PROFILE and args.params == "book/params.yml" and args.root is None
    assert build_parser().parse_args(["book", "--profile", "smoke", "--chapters", "B5_smoothing"]).chapters == "B5_smoothing"
    import arlib.book.build.pipeline as build

    assert not hasattr(build, "main")  # `arlib book` is the only command line of the build
    assert build.build_book.__defaults__[0] == profiles.DEFAULT_BOOK_PROFILE


def test_chapter_setup_and_show(capsys):
    from arlib.book.chapter import Chapter, explorer, provenance_block, setup, show

    ch = setup("smoke", eps_grid=[0, 8], seeds=[1])
    assert ch == Chapter("smoke", "cifar10", False, {"eps_grid": [0, 8], "spectral_grid": None, "seeds": [1]})  # reading never trains (issue 22)
    assert capsys.readouterr().out.startswith("profile smoke: ")
    show(7, "runs 1234abcd", "Paper: Table 3")  # displayed first, then the notes
    assert capsys.readouterr().out.startswith("7\n")
    block = provenance_block("runs 1234abcd", "", "Paper: Table <3>")  # one collapsed block, empty notes dropped
    assert block["text/plain"] == "runs 1234abcd\nPaper: Table <3>"
    assert block["text/html"] == ('<details class="arbook-provenance"><summary>Provenance</summary><p>runs 1234abcd</p><p>Paper: Table &lt;3&gt;</p></details>')
    assert provenance_block() is None
    assert explorer(lambda e: None, []).data == "No runs to show."


def test_repository_chapters_are_myst_notebooks_with_a_parameters_cell():
    import jupytext

    for name in toc_chapters(REPO):
        nb = jupytext.read(REPO / "notebooks" / f"{name}.md")
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "profile = " in params[0].source, name
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), name
        setup = [c for c in nb.cells if c.cell_type == "code" and "setup(profile" in c.source]
        assert len(setup) == 1, f"{name}: one set-up call (arlib.book.chapter.setup)"


def test_chapter_inputs_hash_follows_the_results_root_and_file_contents(tmp_path, monkeypatch):
    # Issue 12, item 5: a book built from one store must not call itself up to date for another.
    from arlib.book.build.pipeline import _inputs_hash

    run = tmp_path / "a" / "cpu" / "runs" / "0123456789abcdef"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"status": "finished"}')
    (tmp_path / "b").mkdir()
    inputs = ["a/cpu/runs/0123456789abcdef"]
    monkeypatch.setenv("ARLIB_RESULTS", str(tmp_path / "a"))
    first = _inputs_hash(tmp_path, inputs)
    assert _inputs_hash(tmp_path, inputs) == first
    monkeypatch.setenv("ARLIB_RESULTS", str(tmp_path / "b"))
    assert _inputs_hash(tmp_path, inputs) != first
    monkeypatch.setenv("ARLIB_RESULTS", str(tmp_path / "a"))
    (run / "metrics.json").write_text('{"status": "finished", "x": 1}')
    assert _inputs_hash(tmp_path, inputs) != first


def test_a_chapter_that_found_a_cell_missing_is_stale_once_its_run_lands(tmp_path, monkeypatch):
    """collect() records the folder of every cell it looks for, run or not, so a run the grid adds later re-executes the chapter."""
    from arlib.book import handshake, report
    from arlib.book.build.pipeline import _inputs_hash

    monkeypatch.setenv("ARLIB_RESULTS", str(tmp_path / "results"))
    inputs = tmp_path / "inputs.txt"
    monkeypatch.setenv(handshake.INPUTS_ENV, str(inputs))
    assert report.collect("smoke", "pgd", ensure=False).empty
    recorded = inputs.read_text().split()
    assert len(recorded) >= 3 and all(Path(p).parent == tmp_path / "results" / "smoke" / "runs" for p in recorded)
    before = _inputs_hash(tmp_path, recorded)
    assert _inputs_hash(tmp_path, recorded) == before
    landed = Path(recorded[-1])
    landed.mkdir(parents=True)
    (landed / "metrics.json").write_text('{"status": "finished"}')
    assert _inputs_hash(tmp_path, recorded) != before


def test_chapter_captions_are_numbered_per_kind_with_runs_and_command(monkeypatch):
    import pandas as pd

    from arlib.book import chapter

    monkeypatch.setenv(chapter.CHAPTER_ENV, "B5_smoothing")
    chapter.setup("smoke")
    runs = pd.DataFrame({"hash": ["a", "b", "c"], "eps": [0.0, 16.0, 4.0], "seed": [0, 1, 0]})
    first = chapter.caption_block("Figure", "Fig. 8 of the paper.", runs)
    assert first["text/plain"] == (
        "Figure B5.1. Fig. 8 of the paper. Shows 3 runs (ε 0, 4, 16; seed 0 at ε 0, 4; seed 1 at ε 16); their hashes and "
        "commits are under Provenance. Regenerate: arlib book --profile smoke --chapters B5_smoothing"
    )
    assert '<span class="arbook-caption-number">Figure B5.1.</span>' in first["text/html"]
    assert chapter.caption_block("Table", "x")["text/plain"].startswith("Table B5.1. x.")
    assert chapter.caption_block("Figure", "y", runs.iloc[:0])["text/plain"].startswith("Figure B5.2. y. No runs in the results store yet.")
    assert "Shows 1 run (ε 0; seed 0); its hash and commit are under" in chapter.caption_block("Figure", "z", runs.iloc[:1])["text/plain"]
    wide = chapter.breakable(pd.DataFrame({"log10_prod_sigma_min": [1.0]}).rename_axis("run_id"))
    assert list(wide.columns) == ["log10_\u200bprod_\u200bsigma_\u200bmin"] and wide.index.name == "run_\u200bid"


def test_a_slider_and_its_caption_become_one_figure(monkeypatch):
    """The book's transform turns (widget view, slider caption), as MyST-NB writes them, into <figure>…<figcaption>, rendered
    by docutils' own HTML writer; a caption without a widget before it, or a plain caption, is left alone."""
    from html.parser import HTMLParser

    from docutils import nodes
    from docutils.core import publish_from_doctree
    from docutils.utils import new_document

    from arlib.book import chapter
    from arlib.book.build.slider_figures import wrap_sliders

    monkeypatch.setenv(chapter.CHAPTER_ENV, "B3_margins")
    chapter.setup("smoke")
    slider_caption = chapter.caption_block("Figure", "Margins at the chosen ε", slider=True)["text/html"]
    plain_caption = chapter.caption_block("Figure", "Not a slider")["text/html"]
    view = '<script type="application/vnd.jupyter.widget-view+json">{"model_id": "m1"}</script>'
    doc = new_document("test")
    for texts in ([view, slider_caption], [slider_caption], [view, plain_caption]):
        cell = nodes.container(classes=["cell_output"])
        cell += [nodes.raw("", t, format="html", classes=[] if t is view else ["output", "text_html"]) for t in texts]
        doc += cell
    assert wrap_sliders(doc) == 1
    html = publish_from_doctree(doc, writer_name="html").decode()

    class Tree(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.seen = [], []

        def handle_starttag(self, tag, attrs):
            self.seen.append((tag, tuple(self.stack), dict(attrs)))
            self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    tree = Tree()
    tree.feed(html)
    figures = [a for t, _, a in tree.seen if t == "figure"]
    assert figures == [{"class": "arbook-figure arbook-slider", "id": "fig-b3-1"}]
    captions = [parents for t, parents, _ in tree.seen if t == "figcaption"]
    assert len(captions) == 1 and captions[0][-1] == "figure"  # a direct child of the figure
    scripts = [parents for t, parents, _ in tree.seen if t == "script"]
    assert scripts[0][-1] == "figure" and scripts[1][-1] != "figure"
    assert html.count("Figure B3.1.") == 2 and html.count('class="arbook-caption"><span class="arbook-caption-number">Figure B3.2.') == 1


def test_parameter_cells_are_removed_from_the_page():
    import nbformat

    from arlib.book.build.pipeline import hide_parameter_cells

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('profile = "smoke"'),
        nbformat.v4.new_code_cell('profile = "cpu"'),
        nbformat.v4.new_code_cell("setup(profile)"),
        nbformat.v4.new_markdown_cell("text"),
    ]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells[1].metadata["tags"] = ["injected-parameters"]
    hide_parameter_cells(nb)
    hide_parameter_cells(nb)  # idempotent
    assert [c.metadata.get("tags", []) for c in nb.cells] == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], [], []]


def test_build_stamp_names_commit_date_and_profile(tmp_path):
    import datetime as dt

    from arlib.book.build.stamp import build_stamp, stamp_text

    stamp = build_stamp(REPO, "cpu", today=dt.date(2026, 12, 1))
    assert stamp["date"] == "2026-12-01" and stamp["profile"] == "cpu"
    assert stamp["commit"] == "unknown" or len(stamp["commit"].split("+")[0]) == 7
    assert stamp_text({"commit": "1a2b3c4", "date": "2026-12-01", "profile": "cpu"}) == "Built from commit 1a2b3c4 on 2026-12-01, profile cpu."
    assert "(with uncommitted changes)" in stamp_text({"commit": "1a2b3c4+dirty", "date": "2026-12-01", "profile": "cpu"})
    assert build_stamp(tmp_path) | {"date": "-"} == {"commit": "unknown", "date": "-", "profile": "unknown"}  # outside a repository
