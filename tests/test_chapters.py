"""The chapters as notebooks (issue 22): their parameters declared once and checked before a chapter runs,
no training unless asked, missing runs named with the command that makes them, the profile honoured,
and the working copies ``arlib lab`` gives JupyterLab. Fast: no kernel, no JupyterLab
(``tests/test_lab.py`` drives a real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arlib.book import params as P
from arlib.cli import main
from arlib.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _chapters():
    from arlib.book.build.pipeline import toc_chapters

    return toc_chapters(REPO)


# -- the parameters, declared once -----------------------------------------------------------


def test_every_chapter_holds_the_declared_parameters_cell():
    import jupytext

    from arlib.book.build.rerun import notebook_parameters

    for name in _chapters():
        nb = jupytext.read(REPO / "notebooks" / f"{name}.md")
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert [c.source for c in cells] == [P.parameters_cell()], f"{name}: its parameters cell is not params.parameters_cell()"
        assert notebook_parameters(nb) == {p.name: p.default for p in P.PARAMETERS}, name


def test_readme_documents_the_parameters_as_declared():
    assert P.parameters_table(markdown=True) in (REPO / "README.md").read_text(encoding="utf-8"), (
        "README's parameter table differs from arlib.book.params.parameters_table(markdown=True)"
    )


def test_defaults_render_the_committed_results_without_training():
    assert P.BY_NAME["profile"].default == "cpu" and P.BY_NAME["ensure"].default is False


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("eps_grid", "[0,8,16]", [0.0, 8.0, 16.0]),  # papermill -p passes this as a string
        ("eps_grid", "0, 8, 16", [0.0, 8.0, 16.0]),
        ("eps_grid", 8, [8.0]),
        ("eps_grid", "None", None),
        ("seeds", 1, [1]),  # papermill -p seeds 1 passes an int
        ("seeds", "0,1", [0, 1]),
        ("ensure", "false", False),
        ("ensure", "True", True),
        ("profile", "cpu-high", "cpu-high"),
    ],
)
def test_values_typed_on_a_command_line_are_read_in_their_type(name, value, expected):
    assert P.parse_value(name, value) == expected


# -- bad parameters: one line, exit 2, nothing written ---------------------------------------

BAD = [
    (["-p", "eps_grid", "[0,8,x]"], "eps_grid must be a list of numbers"),
    (["-p", "eps_grid", "0,8,abc"], "eps_grid must be a list of numbers"),
    (["-p", "eps_grid", "300"], "eps_grid values must be between 0 and 255"),
    (["-p", "seeds", "x"], "seeds must be a list of whole numbers"),
    (["-p", "seeds", "1.5"], "seeds must be a list of whole numbers"),
    (["-p", "profile", "cpu-hi"], "unknown profile 'cpu-hi'"),
    (["-p", "epsilon", "8"], "unknown parameter 'epsilon'"),
    (["-p", "ensure", "maybe"], "ensure must be true or false, got 'maybe'"),
    (["-p", "dataset", "cifar100"], "dataset 'cifar100' is not in profile cpu"),
    (["-p", "profile", "cpu", "--profile", "smoke"], "disagree"),
    (["-p", "ensure", "false", "--train"], "disagree"),
]


@pytest.mark.parametrize("args, needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_chapter_parameter_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "out.ipynb"
    assert main(["chapter", "B5_smoothing", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("arlib: error: ") and needle in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, needle",
    [
        (["B9"], "no chapter 'B9'"),
        (["B"], "could be B1_adversarial_training"),
        ([], "name a chapter"),
        (["B5", "-o", "/nonexistent/out.ipynb"], "does not exist"),
        (["B5", "-o", "out.txt"], "must end in .ipynb"),
    ],
)
def test_bad_chapter_or_output_is_one_line(capsys, args, needle):
    assert main(["chapter", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_chapter_params_lists_name_type_default_and_meaning(capsys):
    assert main(["chapter", "--params"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["name", "type", "default", "meaning"]
    assert all(p.name in out and p.meaning in out for p in P.PARAMETERS)


def test_chapter_parameters_fold_in_profile_and_train():
    from arlib.book.build.rerun import chapter_parameters

    defaults = {p.name: p.default for p in P.PARAMETERS}
    assert chapter_parameters(defaults, [("eps_grid", "0,8,16")], "cpu-high", train=True) == {
        "eps_grid": [0.0, 8.0, 16.0],
        "profile": "cpu-high",
        "ensure": True,
    }
    assert chapter_parameters(defaults) == {}  # the notebook keeps its own defaults


def test_params_yml_is_checked_against_the_declared_parameters_before_any_chapter_runs(tmp_path, capsys):
    chapters = _chapters()
    for text, needle in [
        ("cpu:\n  B5_smoothing: {eps_grid: '[0, 8'}\n", "eps_grid must be a list"),
        ("cpu:\n  B5_smoothing: {epsilon: 8}\n", "sets 'epsilon', which the notebook does not define"),
        ("default:\n  B5_smoothing: {eps_grid: [0, 300]}\n", "eps_grid values must be between 0 and 255"),
        ("cpu:\n  B5_smoothing: {ensure: maybe}\n", "ensure must be true or false"),
    ]:
        bad = tmp_path / "params.yml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=r"\A[^\n]*\Z") as e:
            from arlib.book.build.pipeline import load_params

            load_params(bad, "cpu", chapters)  # what `arlib book` calls before executing anything
        assert needle in str(e.value), str(e.value)
        # the command stops with one line before executing a chapter (nothing is written under book/executed)
        assert main(["book", "--params", str(bad), "--chapters", "B5_smoothing", "--no-html", "--root", str(REPO)]) == 2
        assert needle in capsys.readouterr().err


# -- the set-up cell -------------------------------------------------------------------------


def test_setup_checks_the_parameters_with_a_one_line_error():
    from arlib.book.chapter import ParameterError, setup

    with pytest.raises(ParameterError) as e:
        setup("cpu-hi")
    assert e.value._render_traceback_() == ["ParameterError: unknown profile 'cpu-hi' (choose from smoke, cpu, cpu-high, paper)"]
    with pytest.raises(ParameterError, match="ensure must be true or false"):
        setup("smoke", ensure="maybe")
    ch = setup("smoke", eps_grid="[0,8,16]", seeds=1, ensure="false")  # as papermill injects them
    assert ch.overrides == {"eps_grid": [0.0, 8.0, 16.0], "spectral_grid": None, "seeds": [1]} and ch.ensure is False


def test_setup_rejects_a_name_papermill_injected_that_is_no_parameter():
    from types import SimpleNamespace

    from arlib.book.chapter import _stray_parameters

    shell = SimpleNamespace(user_ns={"_ih": ["", "profile = 'cpu'", '# Parameters\nepsilon = 8\nprofile = "smoke"\n', "ch = setup(profile)"]})
    assert _stray_parameters(shell) == ["epsilon"]
    assert _stray_parameters(SimpleNamespace(user_ns={"_ih": ["", "x = 1"]})) == []  # a user's own cell is no injection


def test_profile_is_honoured_throughout(monkeypatch):
    from arlib.book.chapter import Chapter

    cpu = Chapter("cpu")
    assert [(name, c.profile) for name, c in cpu.regimes()] == [("low capacity", "cpu"), ("high capacity", "cpu-high")]
    high = Chapter("cpu-high")
    assert high.regimes() == [("high capacity", high)]  # not both regimes: settings line, tables and verdicts follow
    assert Chapter("smoke").regimes() == [("smoke", Chapter("smoke"))]


# -- missing runs: named with the command, never trained unless asked ------------------------


def test_missing_runs_are_named_with_the_command_that_makes_them(tmp_path, monkeypatch, capsys):
    from arlib.book import chapter

    monkeypatch.setenv("ARLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv(chapter.MISSING_ENV, str(tmp_path / "missing"))
    monkeypatch.setitem(chapter._context, "chapter", "B6_fgsm")
    chapter._reported.clear()
    ch = chapter.Chapter("smoke")
    df = ch.collect("fgsm")
    assert df.empty and not (tmp_path / "results").exists()  # nothing trained, nothing written to the store
    out = capsys.readouterr().out
    assert "Not in the results store of profile smoke yet: 3 fgsm runs (ε 4 FGSM seed 0 (" in out
    assert "`arlib grid --profile smoke --experiments fgsm`" in out and "`arlib chapter B6_fgsm --profile smoke --train`" in out
    assert len((tmp_path / "missing").read_text().splitlines()) == 3
    ch.collect("fgsm")
    assert capsys.readouterr().out == ""  # named once per kernel
    chapter.Chapter("smoke", overrides={"eps_grid": [12], "spectral_grid": None, "seeds": None}).collect("fgsm")
    assert "outside the profile's grid" in capsys.readouterr().out


def test_live_markdown_turns_dropdowns_into_details():
    from arlib.book.chapter import live_markdown

    md = "**B.5: claim** Paper: x.\n\n:::{dropdown} *low capacity*: **holds**\nEvidence: a < b.\n:::\n"
    out = live_markdown(md)
    assert ":::" not in out and "<details><summary><em>low capacity</em>: <strong>holds</strong></summary>" in out
    assert "\n\nEvidence: a < b.\n\n</details>" in out


# -- arlib lab's working copies --------------------------------------------------------------


def test_lab_copies_are_plain_notebooks_made_once(tmp_path):
    import nbformat

    from arlib.book.build.lab import lab_command, lab_copies

    lab = tmp_path / "lab"
    assert lab_copies(REPO, lab) == []
    copies = sorted(p.name for p in lab.glob("*.ipynb"))
    assert copies == sorted(f"{c}.ipynb" for c in _chapters())
    nb = nbformat.read(lab / "B5_smoothing.ipynb", as_version=4)
    assert "jupytext" not in nb.metadata and nb.metadata["kernelspec"]["name"] == "python3"
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    (lab / "B5_smoothing.ipynb").write_text((lab / "B5_smoothing.ipynb").read_text() + " ")  # a user's edit stays
    before = (lab / "B5_smoothing.ipynb").read_text()
    assert lab_copies(REPO, lab) == [] and (lab / "B5_smoothing.ipynb").read_text() == before
    lines = lab_copies(REPO, lab, profile="smoke")  # another profile: fresh copies, the old ones kept aside
    assert len(lines) == len(copies) and len(list((lab / ".previous").glob("*.ipynb"))) == len(copies)
    nb = nbformat.read(lab / "B5_smoothing.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    with pytest.raises(ConfigError, match="unknown profile"):
        lab_copies(REPO, lab, profile="cpu-hi")
    cmd = lab_command(lab, "B5_smoothing", port=8890, browser=False)
    assert f"--ServerApp.root_dir={lab}" in cmd and "--LabApp.default_url=/lab/tree/B5_smoothing.ipynb" in cmd
    assert "--ServerApp.open_browser=False" in cmd and "--ServerApp.ip=127.0.0.1" in cmd


def test_lab_and_outputs_are_gitignored():
    import subprocess

    for path in (
        "lab/B5_smoothing.ipynb",
        "lab/.ipynb_checkpoints/B5_smoothing-checkpoint.ipynb",
        "notebooks/.ipynb_checkpoints/B5_smoothing-checkpoint.md",
        "out.ipynb",
        "B5_smoothing.ipynb",
    ):
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0, f"{path} is not ignored"
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", "notebooks/B5_smoothing.md"], cwd=REPO).returncode == 1


def test_make_lab_and_book_extra_install_jupyterlab():
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["book"]
    assert any(d.split("<")[0].split(">")[0].strip() == "jupyterlab" for d in extra)
    assert "jupyterlab" in (REPO / "environment.yml").read_text()
    assert "\nlab:" in (REPO / "Makefile").read_text()


# -- figures, tables and text a reader can trust (issue 24) -----------------------------------


def _runs():
    import pandas as pd

    return pd.DataFrame(
        {
            "hash": [f"{i:016x}" for i in range(7)],
            "short": [f"{i:08x}" for i in range(7)],
            "profile": "cpu",
            "dataset": "cifar10",
            "commit": "0123456789abcdef",
            "eps": [0.0, 0.0, 8.0, 8.0, 8.0, 16.0, 16.0],
            "seed": [0, 1, 0, 1, 2, 0, 1],
        }
    )


def test_caption_names_the_seeds_of_each_cell_not_the_union():
    from arlib.book.chapter import runs_summary

    runs = _runs()
    assert runs_summary(runs) == "7 runs (ε 0, 8, 16; seeds 0, 1, 2 at ε 8; seeds 0, 1 at ε 0, 16)"
    assert runs_summary(runs[runs["eps"] != 8]) == "4 runs (ε 0, 16; seeds 0, 1)"
    assert runs_summary({"low": runs.iloc[:2], "high": [runs.iloc[5:]]}) == "4 runs (ε 0, 16; seeds 0, 1)"


def test_show_adds_the_provenance_of_its_runs_itself(monkeypatch):
    import pandas as pd
    from IPython.display import Markdown

    from arlib.book import chapter, report

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    runs = _runs()
    chapter.show(Markdown("x"), "Paper: Table 3.", runs=runs)
    block = shown[-1]["text/plain"].splitlines()
    assert block == [report.provenance_note(runs), "Paper: Table 3."]
    chapter.show(Markdown("y"), runs={"low capacity": runs, "high capacity": [runs.iloc[:1]]})
    assert shown[-1]["text/plain"].splitlines() == [
        report.provenance_note(runs, what="low capacity"),
        report.provenance_note([runs.iloc[:1]], what="high capacity"),
    ]
    assert isinstance(pd.DataFrame(), pd.DataFrame)


def test_a_figure_in_the_book_is_a_myst_figure_with_alt_text_a_target_and_the_legend_check(monkeypatch):
    from matplotlib.figure import Figure

    from arlib.book import chapter

    monkeypatch.setenv(chapter.CHAPTER_ENV, "B3_margins")
    chapter.setup("smoke")
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 2], label="ours")
    ax.set(xlabel="defensive strength ε", ylabel="loss gap")
    ax.legend(loc="center")  # over the line: the figure is marked
    md = chapter.figure_markdown(fig, "Loss gap against ε (the paper's Fig. 3a)", _runs(), label="gaps-x")
    head, _, caption = md.partition("\n\n")
    assert head.startswith(":::{figure} data:image/png;base64,")
    assert ":name: fig-gaps-x" in head and ":figclass: arbook-figure arbook-legend-overlap" in head
    assert ":alt: Loss gap against ε (the paper's Fig. 3a). Panels: loss gap against defensive strength ε." in head
    assert caption.startswith('<span class="arbook-caption-number">Figure B3.1.</span> Loss gap against ε')
    assert "seeds 0, 1, 2 at ε 8" in caption and "`arlib book --profile smoke --chapters B3_margins`" in caption
    ax.get_legend().remove()
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))  # outside the axes: not marked
    assert "arbook-legend-overlap" not in chapter.figure_markdown(fig, "Loss gap")
    assert chapter.table_caption_markdown("Runs_of *this* {profile}").startswith("(tab-b3-1)=\n")
    assert r"Runs\_of \*this\* \{profile\}." in chapter.table_caption_markdown("Runs_of *this* {profile}")


def test_long_tables_are_collapsed_in_the_book():
    import pandas as pd

    from arlib.book import chapter

    block = chapter._collapsed_table(pd.DataFrame({"a": range(chapter.LONG_TABLE_ROWS + 1)}))
    assert block["text/html"].startswith('<details class="arbook-long-table"><summary>Show the table (25 rows)</summary>')


def test_the_training_code_check_is_made_with_git_not_asserted():
    from arlib.book import report

    assert report.code_changes_since("unknown") is None
    assert report.code_changes_since("0" * 40) is None  # no such commit: not checkable
    head = __import__("subprocess").run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    assert report.code_changes_since(head) == []
    sentence = report.code_check_sentence([head, "0" * 40])
    assert f"unchanged between {head[:7]} and the build's commit" in sentence and "no git history was available" in sentence


def test_search_snippets_carry_no_markup():
    from arlib.book.build.offline_search import plain_math

    assert plain_math(r"\max\{0, 1 - \tfrac{1}{\gamma} \prod_{i=1}^{L-1} \sigma^i_{\min}\}") == "max 0, 1 - 1 γ Π i=1 L-1 σ i min"
    assert plain_math(r"\epsilon \le 8/255") == "ε ≤ 8/255"


def test_search_text_of_a_page_is_what_a_reader_sees():
    from docutils import nodes
    from docutils.utils import new_document
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser

    from arlib.book.build.offline_search import page_text

    doc = new_document("x", get_default_settings(Parser))
    para = nodes.paragraph("", "", nodes.Text("Margins of "), nodes.math("", r"\epsilon"), nodes.Text("-robust nets."))
    raw = nodes.raw("", "<style>.dataframe td { x: 1 }</style><table><tr><td>0.5</td></tr></table>", format="html")
    doc += [para, raw, nodes.image(uri="_images/abc.png", alt="abc.png"), nodes.comment("", "TODO")]
    text = page_text(doc)
    assert text == "Margins of ε -robust nets. 0.5", text


def test_generated_bound_sentences_follow_the_data():
    import numpy as np
    import pandas as pd

    from arlib.book import report

    layers = pd.DataFrame(
        {"eps": 0.0, "short": "a", "layer": ["conv1", "blocks.0.conv2", "blocks.1.conv1", "blocks.1.conv2"], "wide": [False, False, True, False],
         "sigma_min": [0.5, 1e-4, 0.15, 0.0]}
    )  # fmt: skip
    text = report.sigma_min_sentence(layers)
    assert "wide layers' σ_min ranges over 0.15" in text and "1 of 4 layer spectra" in text
    bound = pd.DataFrame({"log10_u_lower": [-np.inf, -6.0], "u_min": [0.1, 0.01]})
    assert report.bound_gap_sentence(bound) == (
        "On these runs, where the lower bound is positive (1 of 2 runs), the measured smallest margin exceeds it by 4.0 to 4.0 "
        "orders of magnitude; in 1 run a layer's σ_min of 0 makes the lower bound 0, and the bound's first term 1."
    )
