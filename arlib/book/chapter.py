"""What every chapter notebook does around its figures: one set-up call and one way to show a result.

A chapter is a thin page: a ``parameters`` cell (:data:`arlib.book.params.PARAMETERS`; papermill
injects the profile and the chapter's parameters from ``book/params.yml`` or ``arlib chapter -p``), then::

    from arlib.book import claims, compare, plots, report
    from arlib.book.chapter import explorer, setup, show

    ch = setup(profile, dataset, eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds, ensure=ensure)
    pgd = ch.collect("pgd")
    show(plots.gap_curves(pgd), caption="Loss gap and error gap against ε", runs=pgd)

:func:`setup` checks the parameters (one line naming a bad one, :func:`arlib.book.params.check_values`),
does the chapter's set-up (inline figures, table cells shown in full, the line naming the profile)
and returns a :class:`Chapter` that carries the parameters to every call that needs them;
:func:`show` displays a figure or table and prints the notes under it; :func:`explorer` is the
ε slider of :func:`arlib.book.widgets.eps_explorer`, or a line saying there is nothing to show.

Reading a chapter never trains: with ``ensure = False`` (the default) every run the chapter
needs and the results store lacks is named once, with the command that makes it
(:func:`missing_note`); ``ensure = True`` trains and analyses them first, one progress bar per run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import grid, profiles
from ..errors import ConfigError
from ..regimes import REGIMES
from ..store import Store
from . import claims, compare, report
from .handshake import CHAPTER_ENV, INPUTS_ENV
from .params import BY_NAME, check_values

__all__ = ["Chapter", "ParameterError", "setup", "show", "provenance_block", "settings_block", "explorer", "missing_note"]

#: Set by ``arlib chapter --train``: the file each run a chapter lacks is appended to (one JSON line:
#: profile, hash, config), so that the command can train them before it executes the chapter again.
MISSING_ENV = "ARBOOK_MISSING_FILE"


class ParameterError(ConfigError):
    """A chapter parameter of the wrong type or value. In a notebook its traceback is its one line."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of the frames
        return [f"{type(self).__name__}: {self}"]


@dataclass(frozen=True)
class Chapter:
    """The parameters of one chapter: the profile, the dataset, the notebook's grid overrides and whether to train what is missing."""

    profile: str
    dataset: str = "cifar10"
    ensure: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # eps_grid, spectral_grid, seeds (None: the profile's)

    def collect(self, experiment: str, dataset: str | None = None) -> pd.DataFrame:
        """:func:`arlib.book.report.collect` of ``experiment`` with the chapter's parameters: the runs the store
        holds, after training the missing ones if ``ensure``, else naming them (:meth:`complete`)."""
        self.complete(experiment, dataset or self.dataset)
        return report.collect(self.profile, experiment, dataset or self.dataset, ensure=False, **self.overrides)

    def complete(self, experiment: str, dataset: str | None = None) -> None:
        """The runs of ``experiment`` that the store lacks (not finished, or not analysed): trained and analysed
        one by one with a progress bar if ``ensure``, else named once per kernel with the command that makes them."""
        dataset = dataset or self.dataset
        store = Store.for_profile(self.profile)
        todo = [(cfg, store.find(cfg)) for cfg in report.cells(self.profile, experiment, dataset, **self.overrides)]
        todo = [(cfg, run) for cfg, run in todo if run is None or not run.finished or not run.analysed]
        if not todo:
            return
        if self.ensure:
            live = not os.environ.get(INPUTS_ENV)  # a book build trains quietly: its pages show results, not progress bars
            for i, (cfg, _) in enumerate(todo, 1):
                if live:
                    print(f"training and analysing {i}/{len(todo)}: {self.profile} {experiment} {_cell(cfg)} ({cfg.hash[:8]})", flush=True)
                grid.ensure_run(cfg, store, analyse=True, progress=live)
            return
        key = (self.profile, experiment, dataset, json.dumps(self.overrides, sort_keys=True, default=str))
        if key in _reported:
            return
        _reported.add(key)
        record = os.environ.get(MISSING_ENV)
        if record:
            with open(record, "a", encoding="utf-8") as f:
                for cfg, _ in todo:
                    f.write(json.dumps({"profile": self.profile, "hash": cfg.hash, "config": cfg.to_dict()}) + "\n")
        in_grid = {c.config.hash for c in grid.expand(self.profile, [dataset], [experiment])}
        print(
            missing_note(
                self.profile,
                experiment,
                dataset,
                [c for c, r in todo if r is None or not r.finished],
                [c for c, r in todo if r is not None and r.finished],
                all(c.hash in in_grid for c, _ in todo),
                _context["chapter"],
            ),
            flush=True,
        )

    def spectral_targets(self) -> tuple[float, ...]:
        """The spectral-norm targets of B.4.2: the notebook's ``spectral_grid``, else the profile's."""
        return tuple(self.overrides.get("spectral_grid") or profiles.get(self.profile).spectral_grid)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every experiment's rows, as the claims ledger takes them (:func:`arlib.book.claims.frames_for`)."""
        for experiment in profiles.EXPERIMENTS:
            self.complete(experiment)
        return claims.frames_for(self.profile, self.dataset, ensure=False, **self.overrides)

    def regimes(self) -> list[tuple[str, "Chapter"]]:
        """The capacity regimes this chapter shows: for the first profile of :data:`arlib.regimes.REGIMES`
        (``cpu``, the book's) all of them side by side; for another regime's profile (``cpu-high``) that
        regime alone, under its name; else the profile alone."""
        if self.profile == REGIMES[0].profile:
            return [(r.name, dataclasses.replace(self, profile=r.profile)) for r in REGIMES]
        return [next(((r.name, self) for r in REGIMES if r.profile == self.profile), (self.profile, self))]

    def _regime_frames(self, experiments: Sequence[str]) -> list[tuple[str, dict[str, pd.DataFrame]]]:
        return [(name, {e: c.collect(e) for e in experiments}) for name, c in self.regimes()]

    def _ledger_frames(self) -> list[tuple[str, dict[str, pd.DataFrame]]]:
        """Every experiment of every regime, as D's ledger reads them: a chapter's verdicts are judged in the same
        Holm family as the ledger's, so the two never disagree (the missing runs are named by the chapter's own collects)."""
        return [(name, claims.frames_for(c.profile, c.dataset, ensure=False, **c.overrides)) for name, c in self.regimes()]

    def verdicts(self, experiments: Sequence[str], ids: Sequence[str], frames=None) -> pd.DataFrame:
        """The claims ``ids`` evaluated in every regime (:func:`arlib.book.claims.regime_ledger`), each non-"holds" verdict with its why.

        ``experiments``: the ones the chapter shows; the verdicts are judged on every experiment (``frames``
        default :meth:`_ledger_frames`), as the ledger is."""
        return claims.compared_ledger(frames if frames is not None else self._ledger_frames(), self.dataset, ids=ids)

    def show_verdicts(self, experiments: Sequence[str], ids: Sequence[str]) -> None:
        """Display :meth:`verdicts` as Markdown, with the runs behind each regime."""
        from IPython.display import Markdown

        frames = self._regime_frames(experiments)  # the runs the chapter shows, for the notes
        long = self.verdicts(experiments, ids)
        notes = [report.provenance_note(list(f.values()), what=name if len(frames) > 1 else None) for name, f in frames]
        show(Markdown(claims.verdicts_markdown(long)), *notes)

    def dataset_table(self, dataset: str, model: str) -> tuple[pd.DataFrame, str]:
        """:func:`arlib.book.compare.dataset_table` with the chapter's parameters."""
        if dataset in profiles.get(self.profile).datasets:
            self.complete("deep" if model == "resnet110" else "pgd", dataset)
        return compare.dataset_table(self.profile, dataset, model, ensure=False, **self.overrides)


def setup(
    profile: str = "cpu",
    dataset: str = "cifar10",
    *,
    eps_grid: Sequence[float] | None = None,
    spectral_grid: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    ensure: bool = False,
) -> Chapter:
    """The set-up cell of every chapter: the parameters checked, figures inline, table cells in full, one line naming the profile.

    The parameters are checked as :func:`arlib.book.params.check_values` does (papermill injects
    ``-p eps_grid 0,8,16`` as a string; it is read as the list), and papermill must not have injected
    any other name (``-p epsilon 8``, :func:`_stray_parameters`). A bad one raises
    :class:`ParameterError`, whose traceback in a notebook is its one line.
    Returns the :class:`Chapter` that the chapter's calls take their parameters from.
    """
    from IPython import get_ipython

    shell = get_ipython()
    try:
        v = check_values(dict(profile=profile, dataset=dataset, eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds, ensure=ensure))
        stray = _stray_parameters(shell)
        if stray:
            check_values({name: None for name in stray})  # the one-line "unknown parameter" error
    except ConfigError as e:
        raise ParameterError(str(e)) from None
    if getattr(shell, "kernel", None) is not None:  # a Jupyter kernel (papermill, Jupyter), not a plain shell
        shell.run_line_magic("matplotlib", "inline")
    pd.set_option("display.max_colwidth", None)
    from .plots import use_style

    use_style()
    _context.update(chapter=os.environ.get(CHAPTER_ENV), profile=v["profile"])
    _numbers.clear()
    _reported.clear()
    chapter = Chapter(v["profile"], v["dataset"], v["ensure"], {k: v[k] for k in ("eps_grid", "spectral_grid", "seeds")})
    lines = [settings_line(c.profile, name if name != c.profile else None, **chapter.overrides) for name, c in chapter.regimes()]
    if os.environ.get(INPUTS_ENV):  # in the book, one closed line per page; the settings are D's table
        from IPython.display import display

        display(settings_block(lines), raw=True)
    else:
        print("\n".join(lines))
    return chapter


def settings_block(lines: Sequence[str]) -> dict[str, str]:
    """The settings lines of a chapter as one collapsed "Settings" block (a MIME bundle, as :func:`provenance_block`)."""
    import html

    profiles_ = ", ".join(re.findall(r"profile ([\w-]+)", " ".join(lines)))
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    summary = f"Settings: profile{'s' if ',' in profiles_ else ''} {html.escape(profiles_)}"
    return {"text/html": f'<details class="arbook-provenance arbook-settings"><summary>{summary}</summary>{body}</details>', "text/plain": "\n".join(lines)}


def _stray_parameters(shell) -> list[str]:
    """Names papermill injected that are not parameters (``-p epsilon 8``), read from the kernel's history.

    Papermill runs its injected cell (``# Parameters`` then one assignment per ``-p``) before the
    set-up cell; papermill itself only warns about such a name and the chapter would run without it.
    """
    import ast

    if shell is None:
        return []
    cells = [src for src in shell.user_ns.get("_ih", []) if isinstance(src, str) and src.startswith("# Parameters\n")]
    if not cells:
        return []
    try:
        tree = ast.parse(cells[-1])
    except SyntaxError:
        return []
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]
    return [n for n in dict.fromkeys(names) if n not in BY_NAME]


def _cell(cfg) -> str:
    """A run's cell in a few words: "ε 8 seed 0", with the model and the spectral-norm target where they set it apart."""
    parts = [f"ε {cfg.adv.eps:g}"]
    if cfg.adv.eps and cfg.adv.method != "pgd":
        parts.append(cfg.adv.method.upper())
    if cfg.train.spectral_norm is not None:
        parts.append(f"SP {cfg.train.spectral_norm:g}")
    return " ".join(parts + [f"seed {cfg.train.seed}"])


def missing_note(
    profile: str, experiment: str, dataset: str, missing: Sequence, unanalysed: Sequence = (), in_grid: bool = True, chapter: str | None = None
) -> str:
    """One paragraph naming the runs (configs) a chapter needs that the store lacks, and the command that makes them.

    ``in_grid``: every one of them is a cell of the profile's own grid, so ``arlib grid`` makes them;
    otherwise (``eps_grid``, ``spectral_grid`` or ``seeds`` changed) only ``ensure = True`` does.
    ``chapter``: the chapter's name, for the ``arlib chapter … --train`` that trains them from it.
    """

    def runs(cfgs):
        return "; ".join(f"{_cell(c)} ({c.hash[:8]})" for c in cfgs)

    parts = []
    if missing:
        parts.append(
            f"Not in the results store of profile {profile} yet: {len(missing)} {experiment} run{'s' if len(missing) > 1 else ''} "
            f"({runs(missing)}); {'they are' if len(missing) > 1 else 'it is'} left out below."
        )
    if unanalysed:
        parts.append(f"Trained but not analysed: {runs(unanalysed)} (their analysis columns are empty).")
    datasets = f" --datasets {dataset}" if len(profiles.get(profile).datasets) > 1 else ""
    here = f"`arlib chapter {chapter} --profile {profile} --train`" if chapter else "`ensure = True` in the parameters cell"
    if in_grid:
        parts.append(
            f"Make {'them' if len(missing) + len(unanalysed) > 1 else 'it'}: `arlib grid --profile {profile} --experiments {experiment}{datasets}`"
            + (" (or `arlib analyse` for the analysis alone)" if unanalysed and not missing else "")
            + f"; or train from this chapter: {here}."
        )
    else:
        parts.append(f"They are outside the profile's grid (eps_grid, spectral_grid or seeds changed); train them from this chapter: {here}.")
    return " ".join(parts)


def live_markdown(text: str) -> str:
    """MyST Markdown (:func:`arlib.book.claims.verdicts_markdown`) as plain Markdown for Jupyter, where :func:`show`
    displays it outside a book build: each ``:::{dropdown} title`` block becomes an HTML ``<details>`` block."""
    from markdown_it import MarkdownIt

    inline = MarkdownIt("commonmark").renderInline
    return re.sub(
        r"^:::\{dropdown\} ?(.*)\n((?:(?!:::$).*\n)*?):::$",
        lambda m: f"<details><summary>{inline(m.group(1))}</summary>\n\n{m.group(2).strip()}\n\n</details>",
        text,
        flags=re.M,
    )


def provenance_block(*notes: str) -> dict[str, str] | None:
    """The notes under a figure or table as one collapsed "Provenance" block: a MIME bundle (HTML ``<details>``, plain text), or ``None`` without notes.

    Closed, it is one line as wide as the word; open, its lines wrap at any character, so the
    hashes and commits of many runs fit the page's column instead of running off it. In a plain
    notebook the block's text form is the notes one per line.
    """
    import html

    notes = [n for n in notes if n]
    if not notes:
        return None
    body = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return {"text/html": f'<details class="arbook-provenance"><summary>Provenance</summary>{body}</details>', "text/plain": "\n".join(notes)}


# Figure and table numbers of the chapter running in this kernel (one kernel per chapter).
_numbers: dict[str, int] = {}
_context: dict[str, str | None] = {"chapter": None, "profile": None}
_reported: set[tuple] = set()  # (profile, experiment, dataset, overrides) whose missing runs were named


def chapter_label(name: str | None) -> str:
    """The prefix of a chapter's figure and table numbers: ``B1`` for ``B1_adversarial_training``, ``C``, ``D``; ``""`` outside a book build."""
    return name.split("_", 1)[0] if name else ""


_CELL_COLUMNS = ("experiment", "dataset", "model", "method", "spectral_norm", "eps")  # what sets one grid cell apart from another


def _frames(runs) -> list[pd.DataFrame]:
    """``runs`` (one frame, several, or a mapping of names to either) as a flat list of non-empty frames."""
    if runs is None:
        return []
    if isinstance(runs, pd.DataFrame):
        return [runs] if len(runs) else []
    if isinstance(runs, dict):
        return [f for v in runs.values() for f in _frames(v)]
    return [f for v in runs for f in _frames(v)]


def runs_summary(runs) -> str:
    """ "8 runs (ε 0, 4, 8, 16; seeds 0, 1)": how many runs a figure or table shows, at which ε and seeds.

    Where the cells differ in their seeds, each set of seeds is named with the ε of its cells
    ("11 runs (ε 0, 4, 8, 16; seeds 0, 1, 2 at ε 8; seeds 0, 1 at ε 0, 4, 16)"), so a caption never
    claims three seeds for a cell that has two.
    """
    frames = _frames(runs)
    if not frames:
        return "no runs"
    df = pd.concat(frames, ignore_index=True).drop_duplicates("hash") if all("hash" in f for f in frames) else pd.concat(frames)

    def eps_text(values) -> str:
        return ", ".join(f"{e:g}" for e in sorted({float(e) for e in values}))

    eps = eps_text(df["eps"]) if "eps" in df else "?"
    n = f"{len(df)} run{'s' if len(df) != 1 else ''}"
    if "seed" not in df:
        return f"{n} (ε {eps})"

    def seeds_text(seeds) -> str:
        return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}"

    keys = [c for c in _CELL_COLUMNS if c in df]
    per_cell = df.groupby(keys, dropna=False)["seed"].agg(lambda s: tuple(sorted(set(s)))) if keys else None
    if per_cell is None or per_cell.nunique() <= 1:
        return f"{n} (ε {eps}; {seeds_text(sorted(df['seed'].unique()))})"
    cells = per_cell.reset_index()
    groups = sorted(cells.groupby("seed")["eps"].agg(eps_text).items(), key=lambda kv: (-len(kv[0]), kv[0]))
    return f"{n} (ε {eps}; " + "; ".join(f"{seeds_text(seeds)} at ε {at}" for seeds, at in groups) + ")"


def _caption_parts(kind: str, text: str, runs=None) -> tuple[str, list[str], str | None]:
    """The next number of ``kind`` in this chapter ("Figure B1.2."), the caption's sentences and the command that regenerates it."""
    _numbers[kind] = _numbers.get(kind, 0) + 1
    label = chapter_label(_context["chapter"])
    number = f"{kind} {label}{'.' if label else ''}{_numbers[kind]}."
    parts = [text.rstrip(".") + "."]
    if runs is not None:
        shows = runs_summary(runs)
        parts.append(
            "No runs in the results store yet."
            if shows == "no runs"
            else f"Shows {shows}; {'its hash and commit are' if shows.startswith('1 run ') else 'their hashes and commits are'} under Provenance."
        )
    regen = f"arlib book --profile {_context['profile']} --chapters {_context['chapter']}" if _context["chapter"] and _context["profile"] else None
    return number, parts, regen


def caption_block(kind: str, text: str, runs=None, slider: bool = False, label: str | None = None) -> dict[str, str]:
    """A numbered caption ("Figure B1.2. …"): ``text``, which runs and seeds it shows (``runs``: rows of
    :func:`arlib.book.report.collect`), and the command that regenerates it; a MIME bundle (HTML, plain text).

    ``slider``: the caption of the ε slider displayed just before it, marked (class ``arbook-slider-caption``
    and the figure's anchor ``fig-…``, :func:`_label`) for the book build, which makes the pair one ``<figure>``
    with this caption as its ``<figcaption>`` (:mod:`arlib.book.build.slider_figures`)."""
    import html

    number, parts, regen = _caption_parts(kind, text, runs)
    plain = " ".join([number, *parts] + ([f"Regenerate: {regen}"] if regen else []))
    body = " ".join(html.escape(p) for p in parts)
    if regen:
        body += f' <span class="arbook-regen">Regenerate: <code>{html.escape(regen)}</code></span>'
    mark = f' arbook-slider-caption" data-target="{_label(kind, label)}' if slider else ""
    return {"text/html": f'<p class="arbook-caption{mark}"><span class="arbook-caption-number">{html.escape(number)}</span> {body}</p>', "text/plain": plain}


def _myst_text(text: str) -> str:
    """Plain text safe inside MyST Markdown: no HTML, no math, no emphasis, no role or substitution syntax."""
    import html

    return re.sub(r"([\\`*_$|{}\[\]])", r"\\\1", html.escape(text, quote=False))


def _myst_caption(number: str, parts: Sequence[str], regen: str | None) -> str:
    """A caption as one MyST paragraph: the number (class ``arbook-caption-number``), the sentences, the regenerate command."""
    import html

    body = f'<span class="arbook-caption-number">{html.escape(number)}</span> ' + " ".join(_myst_text(p) for p in parts)
    if regen:
        body += f' <span class="arbook-regen">Regenerate: `{regen}`</span>'
    return body


def _label(kind: str, label: str | None) -> str:
    """The cross-reference target of the figure or table just numbered: ``fig-<label>``/``tab-<label>``, by default
    the chapter and number (``fig-b3-2``); link to it from any page with ``{ref}`text <fig-b3-2>```."""
    prefix = "fig" if kind == "Figure" else "tab"
    if label:
        return label if label.startswith(prefix + "-") else f"{prefix}-{label}"
    chapter = chapter_label(_context["chapter"]).lower() or "x"
    return f"{prefix}-{chapter}-{_numbers[kind]}"


def figure_alt(fig, caption: str) -> str:
    """The alt text of a figure: what it shows (the caption's first sentence) and what each panel plots against what."""
    panels = []
    for ax in fig.axes:
        y, x, title = ax.get_ylabel().strip(), ax.get_xlabel().strip(), ax.get_title().strip()
        if not (y or x or title):
            continue
        what = title or y
        panels.append(f"{what} against {x}" if x else what)
    panels = list(dict.fromkeys(panels))
    head = re.split(r"(?<!Fig)(?<!Tab)\. (?=[A-Z])", caption)[0].rstrip(".")
    return head + (f". Panels: {'; '.join(panels)}." if panels else ".")


def figure_markdown(fig, caption: str, runs=None, label: str | None = None, alt: str | None = None) -> str:
    """A Matplotlib figure as a MyST ``{figure}``: the PNG inline (a data URI, as the notebook holds it), its alt text
    (:func:`figure_alt`), a cross-reference target (:func:`_label`) and the numbered caption, which Sphinx renders as a
    ``<figcaption>``. A figure whose legend or a boxed text covers data (:func:`arlib.book.plots.legend_overlaps`) carries the
    class ``arbook-legend-overlap`` (the book's reader test fails on it)."""
    import base64

    from IPython.core.pylabtools import print_figure

    from .plots import legend_overlaps

    number, parts, regen = _caption_parts("Figure", caption, runs)
    png = print_figure(fig, "png", bbox_inches="tight")
    classes = "arbook-figure" + (" arbook-legend-overlap" if legend_overlaps(fig) else "")
    alt_text = re.sub(r"\s+", " ", alt or figure_alt(fig, caption)).strip()
    return (
        f":::{{figure}} data:image/png;base64,{base64.b64encode(png).decode()}\n"
        f":name: {_label('Figure', label)}\n:alt: {alt_text}\n:figclass: {classes}\n\n"
        f"{_myst_caption(number, parts, regen)}\n:::\n"
    )


def table_caption_markdown(caption: str, runs=None, label: str | None = None) -> str:
    """A table's numbered caption as MyST: a cross-reference target (:func:`_label`) and the caption paragraph."""
    number, parts, regen = _caption_parts("Table", caption, runs)
    return f"({_label('Table', label)})=\n{_myst_caption(number, parts, regen)}\n"


def breakable(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a zero-width space after every ``_`` and ``/`` of its column and index labels, so that a
    header such as ``log10_prod_sigma_min`` may wrap in the book's column instead of widening the table."""

    def f(label):
        return label.replace("_", "_\u200b").replace("/", "/\u200b") if isinstance(label, str) else label

    out = df.rename(columns=f, index=f)
    out.columns.names = [f(n) for n in out.columns.names]
    out.index.names = [f(n) for n in out.index.names]
    return out


def _is_table(result) -> bool:
    return isinstance(result, pd.DataFrame) or type(result).__name__ == "Styler"


def settings_line(profile: str, regime: str | None = None, **overrides) -> str:
    """The resolved settings of a chapter in one line: the profile (and regime), what it trains, its ε grid and seeds."""
    prof = report.resolve_profile(profile, **overrides)
    eps = ", ".join(f"{e:g}" for e in sorted({float(e) for e in ((0.0,) if prof.include_eps0 else ()) + tuple(prof.eps_grid)}))
    seeds = ", ".join(map(str, prof.seeds))
    extra = ", ".join(map(str, sorted(set(prof.claim_seeds) - set(prof.seeds))))
    head = f"{regime} (profile {profile})" if regime else f"profile {profile}"
    return (
        f"{head}: {prof.description}; ε {eps}; seed{'s' if len(prof.seeds) > 1 else ''} {seeds}"
        + (f" (at ε {', '.join(f'{e:g}' for e in prof.claim_eps)} also {extra})" if extra else "")
        + "."
    )


def runs_notes(runs) -> list[str]:
    """The provenance notes of ``runs`` (:func:`arlib.book.report.provenance_note`): one for a frame or a list of frames,
    one per name for a mapping of names (the capacity regimes) to frames."""
    if runs is None:
        return []
    if isinstance(runs, dict):
        return [report.provenance_note(_frames(v), what=name) for name, v in runs.items()]
    return [report.provenance_note(runs if isinstance(runs, pd.DataFrame) else _frames(runs))]


LONG_TABLE_ROWS = 24  # a table with more rows is shown collapsed in the book: taller than about 1.5 screens of 900 px


def _rows(result) -> int:
    return len(result.data if type(result).__name__ == "Styler" else result)


def _collapsed_table(result) -> dict[str, str]:
    """A long table as a closed ``<details>`` block whose summary says how many rows it holds."""
    body = result.to_html() if type(result).__name__ == "Styler" else breakable(result).to_html(classes="dataframe", border=0)
    n = _rows(result)
    return {
        "text/html": f'<details class="arbook-long-table"><summary>Show the table ({n} rows)</summary>{body}</details>',
        "text/plain": result.to_string() if isinstance(result, pd.DataFrame) else str(result),
    }


def _is_figure(result) -> bool:
    return type(result).__name__ == "Figure" and hasattr(result, "savefig")


def show(result, *notes: str, caption: str | None = None, runs=None, label: str | None = None, alt: str | None = None) -> None:
    """Display ``result`` (a figure, a table, Markdown, a widget) with its numbered caption, and the notes in a collapsed "Provenance" block.

    ``caption``: what the figure or table shows and which of the paper's figures or tables it
    corresponds to; it is numbered per chapter ("Figure B1.2", "Table B1.1"; tables are captioned
    above, figures and sliders below) and followed by ``runs`` summarised (:func:`runs_summary`)
    and the command that regenerates it. ``runs`` (rows of :func:`arlib.book.report.collect`, a list
    of such frames, or a mapping of regime names to them) also gives the first notes, which runs
    (:func:`runs_notes`); ``notes`` adds others, e.g. which of the paper's numbers
    (:func:`arlib.book.compare.paper_note`).

    In a book build a Matplotlib figure with a caption is a MyST ``{figure}`` (:func:`figure_markdown`):
    a ``<figure>`` with alt text and ``<figcaption>``, and a target ``label`` (default ``fig-<chapter>-<n>``)
    that any page links to with ``{ref}``; a captioned table gets the target ``tab-…`` the same way.
    """
    from IPython.display import Markdown, display

    book = bool(os.environ.get(INPUTS_ENV))
    if isinstance(result, Markdown) and not book:  # Jupyter renders no MyST directive
        result = Markdown(live_markdown(result.data))
    notes = (*runs_notes(runs), *notes)
    table = _is_table(result)
    if caption and book and _is_figure(result):
        display(Markdown(figure_markdown(result, caption, runs, label, alt)))
    else:
        if caption and book and table:
            display(Markdown(table_caption_markdown(caption, runs, label)))
        elif caption and table:
            display(caption_block("Table", caption, runs), raw=True)
        if book and table and _rows(result) > LONG_TABLE_ROWS:
            display(_collapsed_table(result), raw=True)
        else:
            display(breakable(result) if isinstance(result, pd.DataFrame) else result)
        if caption and not table:
            display(caption_block("Figure", caption, runs, slider=book and not _is_figure(result), label=label), raw=True)
    block = provenance_block(*notes)
    if block is not None:
        display(block, raw=True)


def explorer(figure_at: Callable[[float], Any], eps_values: Sequence[float]):
    """The ε slider over ``figure_at(eps)`` for every ε of ``eps_values`` (:func:`arlib.book.widgets.eps_explorer`); a line saying so when there is no run."""
    from IPython.display import Markdown

    from .widgets import eps_explorer

    eps_values = list(eps_values)
    return eps_explorer({e: figure_at(e) for e in eps_values}, eps_values) if eps_values else Markdown("No runs to show.")
