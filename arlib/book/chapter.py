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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..regimes import REGIMES
from . import claims, compare, report

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

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every experiment's rows, as the claims ledger takes them (:func:`arlib.book.claims.frames_for`)."""
        return claims.frames_for(self.profile, self.dataset, ensure=self.ensure, **self.overrides)

    def regimes(self) -> list[tuple[str, "Chapter"]]:
        """The capacity regimes this chapter shows: for a profile of :data:`arlib.regimes.REGIMES` all of them
        (the ``cpu`` book shows low and high capacity side by side), else the profile alone."""
        if self.profile not in {r.profile for r in REGIMES}:
            return [(self.profile, self)]
        return [(r.name, dataclasses.replace(self, profile=r.profile)) for r in REGIMES]

    def verdicts(self, experiments: Sequence[str], ids: Sequence[str]) -> pd.DataFrame:
        """The claims ``ids`` evaluated in every regime (:func:`arlib.book.claims.regime_ledger`), each non-"holds" verdict with its why."""
        return claims.regime_ledger([(name, {e: c.collect(e) for e in experiments}) for name, c in self.regimes()], self.dataset, ids=ids)

    def show_verdicts(self, experiments: Sequence[str], ids: Sequence[str]) -> None:
        """Display :meth:`verdicts` as Markdown, with the runs behind each regime."""
        from IPython.display import Markdown

        long = self.verdicts(experiments, ids)
        notes = [report.provenance_note([c.collect(e) for e in experiments], what=name if len(self.regimes()) > 1 else None)
                 for name, c in self.regimes()]
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
    chapter = Chapter(profile, dataset, ensure, dict(eps_grid=eps_grid, spectral_grid=spectral_grid, seeds=seeds))
    print(f"profile {profile}: {report.resolve_profile(profile, **chapter.overrides).description}")
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


def show(result, *notes: str) -> None:
    """Display ``result`` (a figure, a table, Markdown, a widget) and under it the notes, in a collapsed "Provenance" block.

    The notes are what every figure and table of the book carries: which runs
    (:func:`arlib.book.report.provenance_note`) and which of the paper's numbers
    (:func:`arlib.book.compare.paper_note`).
    """
    from IPython.display import display

    display(result)
    block = provenance_block(*notes)
    if block is not None:
        display(block, raw=True)


def explorer(figure_at: Callable[[float], Any], eps_values: Sequence[float]):
    """The ε slider over ``figure_at(eps)`` for every ε of ``eps_values`` (:func:`arlib.book.widgets.eps_explorer`); a line saying so when there is no run."""
    from IPython.display import Markdown

    from .widgets import eps_explorer

    eps_values = list(eps_values)
    return eps_explorer({e: figure_at(e) for e in eps_values}, eps_values) if eps_values else Markdown("No runs to show.")
