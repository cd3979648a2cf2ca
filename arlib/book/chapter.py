"""What every chapter notebook does around its figures: one set-up call and one way to show a result.

A chapter is a thin page: a ``parameters`` cell (papermill injects the profile and the
chapter's parameters from ``book/params.yml``), then::

    from arlib.book import claims, compare, plots, report
    from arlib.book.chapter import explorer, setup, show

    ch = setup(profile, dataset, eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds, ensure=ensure)
    pgd = ch.collect("pgd")
    show(plots.gap_curves(pgd), report.provenance_note(pgd))

:func:`setup` does the chapter's set-up (inline figures, table cells shown in full, the line
naming the profile) and returns a :class:`Chapter` that carries the parameters to every call
that needs them; :func:`show` displays a figure or table and prints the notes under it;
:func:`explorer` is the ε slider of :func:`arlib.book.widgets.eps_explorer`, or a line saying
there is nothing to show.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import profiles
from ..regimes import REGIMES
from . import claims, compare, report
from .build import CHAPTER_ENV

__all__ = ["Chapter", "setup", "show", "provenance_block", "explorer"]


@dataclass(frozen=True)
class Chapter:
    """The parameters of one chapter: the profile, the dataset, the notebook's grid overrides and whether to train what is missing."""

    profile: str
    dataset: str = "cifar10"
    ensure: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)  # eps_grid, spectral_grid, seeds (None: the profile's)

    def collect(self, experiment: str, dataset: str | None = None) -> pd.DataFrame:
        """:func:`arlib.book.report.collect` of ``experiment`` with the chapter's parameters."""
        return report.collect(self.profile, experiment, dataset or self.dataset, ensure=self.ensure, **self.overrides)

    def spectral_targets(self) -> tuple[float, ...]:
        """The spectral-norm targets of B.4.2: the notebook's ``spectral_grid``, else the profile's."""
        return tuple(self.overrides.get("spectral_grid") or profiles.get(self.profile).spectral_grid)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every experiment's rows, as the claims ledger takes them (:func:`arlib.book.claims.frames_for`)."""
        return claims.frames_for(self.profile, self.dataset, ensure=self.ensure, **self.overrides)

    def regimes(self) -> list[tuple[str, "Chapter"]]:
        """The capacity regimes this chapter shows: for a profile of :data:`arlib.regimes.REGIMES` all of them
        (the ``cpu`` book shows low and high capacity side by side), else the profile alone."""
        if self.profile not in {r.profile for r in REGIMES}:
            return [(self.profile, self)]
        return [(r.name, dataclasses.replace(self, profile=r.profile)) for r in REGIMES]

    def _regime_frames(self, experiments: Sequence[str]) -> list[tuple[str, dict[str, pd.DataFrame]]]:
        return [(name, {e: c.collect(e) for e in experiments}) for name, c in self.regimes()]

    def verdicts(self, experiments: Sequence[str], ids: Sequence[str], frames=None) -> pd.DataFrame:
        """The claims ``ids`` evaluated in every regime (:func:`arlib.book.claims.regime_ledger`), each non-"holds" verdict with its why."""
        return claims.compared_ledger(frames if frames is not None else self._regime_frames(experiments), self.dataset, ids=ids)

    def show_verdicts(self, experiments: Sequence[str], ids: Sequence[str]) -> None:
        """Display :meth:`verdicts` as Markdown, with the runs behind each regime."""
        from IPython.display import Markdown

        frames = self._regime_frames(experiments)  # collected once, for the verdicts and their notes
        long = self.verdicts(experiments, ids, frames)
        notes = [report.provenance_note(list(f.values()), what=name if len(frames) > 1 else None) for name, f in frames]
        show(Markdown(claims.verdicts_markdown(long)), *notes)

    def dataset_table(self, dataset: str, model: str) -> tuple[pd.DataFrame, str]:
        """:func:`arlib.book.compare.dataset_table` with the chapter's parameters."""
        return compare.dataset_table(self.profile, dataset, model, ensure=self.ensure, **self.overrides)


def setup(profile: str, dataset: str = "cifar10", *, eps_grid: Sequence[float] | None = None,
          spectral_grid: Sequence[float] | None = None, seeds: Sequence[int] | None = None, ensure: bool = True) -> Chapter:
    """The set-up cell of every chapter: figures inline, table cells in full, one line naming the profile.

    Returns the :class:`Chapter` that the chapter's calls take their parameters from.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if getattr(shell, "kernel", None) is not None:  # a Jupyter kernel (papermill, Jupyter), not a plain shell
        shell.run_line_magic("matplotlib", "inline")
    pd.set_option("display.max_colwidth", None)
    from .plots import use_style

    use_style()
    _context.update(chapter=os.environ.get(CHAPTER_ENV), profile=profile)
    _numbers.clear()
    chapter = Chapter(profile, dataset, ensure, dict(eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds))
    for name, c in chapter.regimes():
        print(settings_line(c.profile, name if name != c.profile else None, **chapter.overrides))
    return chapter


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
    return {"text/html": f'<details class="arbook-provenance"><summary>Provenance</summary>{body}</details>',
            "text/plain": "\n".join(notes)}


# Figure and table numbers of the chapter running in this kernel (one kernel per chapter).
_numbers: dict[str, int] = {}
_context: dict[str, str | None] = {"chapter": None, "profile": None}


def chapter_label(name: str | None) -> str:
    """The prefix of a chapter's figure and table numbers: ``B1`` for ``B1_adversarial_training``, ``C``, ``D``; ``""`` outside a book build."""
    return name.split("_", 1)[0] if name else ""


def runs_summary(runs: pd.DataFrame | Sequence[pd.DataFrame]) -> str:
    """"8 runs (ε 0, 4, 8, 16; seeds 0, 1, 2)": how many runs a figure or table shows, at which ε and seeds."""
    frames = [runs] if isinstance(runs, pd.DataFrame) else [f for f in runs if f is not None]
    frames = [f for f in frames if len(f)]
    if not frames:
        return "no runs"
    df = pd.concat(frames, ignore_index=True).drop_duplicates("hash") if all("hash" in f for f in frames) else pd.concat(frames)
    eps = ", ".join(f"{e:g}" for e in sorted(df["eps"].astype(float).unique())) if "eps" in df else "?"
    seeds = ", ".join(str(s) for s in sorted(df["seed"].unique())) if "seed" in df else "?"
    return f"{len(df)} run{'s' if len(df) != 1 else ''} (ε {eps}; seed{'s' if ',' in seeds else ''} {seeds})"


def caption_block(kind: str, text: str, runs=None) -> dict[str, str]:
    """A numbered caption ("Figure B1.2. …"): ``text``, which runs and seeds it shows (``runs``: rows of
    :func:`arlib.book.report.collect`), and the command that regenerates it; a MIME bundle (HTML, plain text)."""
    import html

    _numbers[kind] = _numbers.get(kind, 0) + 1
    label = chapter_label(_context["chapter"])
    number = f"{kind} {label}{'.' if label else ''}{_numbers[kind]}."
    parts = [text.rstrip(".") + "."]
    if runs is not None:
        shows = runs_summary(runs)
        parts.append("No runs in the results store yet." if shows == "no runs" else
                     f"Shows {shows}; {'its hash and commit are' if shows.startswith('1 run ') else 'their hashes and commits are'} under Provenance.")
    regen = (f"arlib book --profile {_context['profile']} --chapters {_context['chapter']}"
             if _context["chapter"] and _context["profile"] else None)
    plain = " ".join([number, *parts] + ([f"Regenerate: {regen}"] if regen else []))
    body = " ".join(html.escape(p) for p in parts)
    if regen:
        body += f' <span class="arbook-regen">Regenerate: <code>{html.escape(regen)}</code></span>'
    return {"text/html": f'<p class="arbook-caption"><span class="arbook-caption-number">{html.escape(number)}</span> {body}</p>',
            "text/plain": plain}


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
    return (f"{head}: {prof.description}; ε {eps}; seed{'s' if len(prof.seeds) > 1 else ''} {seeds}"
            + (f" (at ε {', '.join(f'{e:g}' for e in prof.claim_eps)} also {extra})" if extra else "") + ".")


def show(result, *notes: str, caption: str | None = None, runs=None) -> None:
    """Display ``result`` (a figure, a table, Markdown, a widget) with its numbered caption, and the notes in a collapsed "Provenance" block.

    ``caption``: what the figure or table shows and which of the paper's figures or tables it
    corresponds to; it is numbered per chapter ("Figure B1.2", "Table B1.1"; tables are captioned
    above, figures and sliders below) and followed by ``runs`` summarised (:func:`runs_summary`)
    and the command that regenerates it. The notes are what every figure and table of the book
    carries: which runs (:func:`arlib.book.report.provenance_note`) and which of the paper's numbers
    (:func:`arlib.book.compare.paper_note`).
    """
    from IPython.display import display

    table = _is_table(result)
    cap = caption_block("Table" if table else "Figure", caption, runs) if caption else None
    if cap is not None and table:
        display(cap, raw=True)
    display(breakable(result) if isinstance(result, pd.DataFrame) else result)
    if cap is not None and not table:
        display(cap, raw=True)
    block = provenance_block(*notes)
    if block is not None:
        display(block, raw=True)


def explorer(figure_at: Callable[[float], Any], eps_values: Sequence[float]):
    """The ε slider over ``figure_at(eps)`` for every ε of ``eps_values`` (:func:`arlib.book.widgets.eps_explorer`); a line saying so when there is no run."""
    from IPython.display import Markdown

    from .widgets import eps_explorer

    eps_values = list(eps_values)
    return eps_explorer({e: figure_at(e) for e in eps_values}, eps_values) if eps_values else Markdown("No runs to show.")
