"""Every table a built chapter shows has numbers in it: no column that is empty in every row.

A column that is None, NaN or "—" in every row means a measurement never reached the page (as
Theorem 3.1's terms once did: ``log10_prod_sigma_min`` and ``first_term`` were null for every run).
Reads the executed notebooks of the last ``arlib book`` build; skips when there is none.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

EXECUTED = Path(__file__).resolve().parent.parent / "book" / "executed"
EMPTY = {"", "nan", "none", "—", "-", "<na>", "nat"}
# Columns that are empty by design in some books: a spectral norm is "uncontrolled" (NaN) in every
# row of an unclipped table; a note column may be blank.
ALLOWED_EMPTY = {"spectral_norm", "note", "notes", "why"}


class _TableParser(HTMLParser):
    """The tables of an HTML fragment as frames, with the standard library's parser (``pd.read_html`` needs lxml or
    html5lib, which the book does not install): columns named by the last header row (colspans expanded), one row per
    body row; a body row's leading ``th`` cells are its index."""

    def __init__(self):
        super().__init__()
        self.tables: list[pd.DataFrame] = []
        self._stack: list[dict] = []  # nested tables
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._stack.append({"head": [], "body": [], "row": None, "in_head": False})
        elif not self._stack:
            return
        t = self._stack[-1]
        if tag == "thead":
            t["in_head"] = True
        elif tag == "tbody":
            t["in_head"] = False
        elif tag == "tr":
            t["row"] = []
        elif tag in ("td", "th") and t["row"] is not None:
            self._cell = []
            t["row"].append((tag, self._cell, int(dict(attrs).get("colspan") or 1)))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if not self._stack:
            return
        t = self._stack[-1]
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "tr" and t["row"] is not None:
            (t["head"] if t["in_head"] or all(k == "th" for k, _, _ in t["row"]) and not t["body"] else t["body"]).append(t["row"])
            t["row"] = None
        elif tag == "table":
            self._stack.pop()
            rows = [[("".join(c)).strip() for k, c, _ in r if k == "td"] for r in t["body"]]
            width = max((len(r) for r in rows), default=0)
            names = [n for k, c, span in (t["head"][-1] if t["head"] else []) for n in ["".join(c).strip()] * span]
            names = (names[-width:] if len(names) >= width else names + [""] * (width - len(names))) if width else []
            names = [n or f"unnamed {j}" for j, n in enumerate(names)]
            self.tables.append(pd.DataFrame([r + [""] * (width - len(r)) for r in rows], columns=pd.Index(names, dtype=object)))


def _tables(nb_path: Path):
    nb = json.loads(nb_path.read_text())
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            html = (out.get("data") or {}).get("text/html")
            if not html:
                continue
            html = "".join(html) if isinstance(html, list) else html
            if "<table" not in html:
                continue
            parser = _TableParser()
            parser.feed(html)
            yield from parser.tables


def _empty_columns(df: pd.DataFrame) -> list[str]:
    out = []
    if len(df) == 0:
        return out
    for col in df.columns:
        name = " ".join(str(c) for c in col) if isinstance(col, tuple) else str(col)
        if name.lower().startswith("unnamed") or name.strip().lower() in ALLOWED_EMPTY:
            continue
        values = df[col]
        text = values.astype("object").map(lambda v: str(v).strip().lower())
        if (values.isna() | text.isin(EMPTY)).all():
            out.append(name)
    return out


@pytest.mark.book
def test_no_chapter_table_has_a_column_empty_in_every_row():
    notebooks = sorted(EXECUTED.glob("*.ipynb")) if EXECUTED.is_dir() else []
    notebooks = [p for p in notebooks if not p.name.startswith(".")]
    if not notebooks:
        pytest.skip("no built book (book/executed/ is empty): run `arlib book` first")
    bad = []
    for nb in notebooks:
        for i, df in enumerate(_tables(nb)):
            cols = _empty_columns(df)
            if cols:
                bad.append(f"{nb.name} table {i + 1}: {', '.join(cols)}")
    assert not bad, "tables with a column empty in every row: " + "; ".join(bad)


def test_tables_are_read_without_lxml():
    parser = _TableParser()
    parser.feed(
        "<table><thead><tr><th></th><th>eps</th><th>first_term</th></tr></thead>"
        "<tbody><tr><th>0</th><td>4</td><td>—</td></tr><tr><th>1</th><td>8</td><td>nan</td></tr></tbody></table>"
    )
    (df,) = parser.tables
    assert list(df.columns) == ["eps", "first_term"] and _empty_columns(df) == ["first_term"]


def test_the_check_finds_an_all_null_column():
    df = pd.DataFrame({"eps": [4, 8], "first_term": [None, float("nan")], "w_min": [1.2, 1.3]})
    assert _empty_columns(df) == ["first_term"]
    assert _empty_columns(df.assign(first_term=[1.0, None])) == []
