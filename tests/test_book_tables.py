"""Every table a built chapter shows has numbers in it: no column that is empty in every row.

A column that is None, NaN or "—" in every row means a measurement never reached the page (as
Theorem 3.1's terms once did: ``log10_prod_sigma_min`` and ``first_term`` were null for every run).
Reads the executed notebooks of the last ``arlib book`` build; skips when there is none.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

EXECUTED = Path(__file__).resolve().parent.parent / "book" / "executed"
EMPTY = {"", "nan", "none", "—", "-", "<na>", "nat"}
# Columns that are empty by design in some books: a spectral norm is "uncontrolled" (NaN) in every
# row of an unclipped table; a note column may be blank.
ALLOWED_EMPTY = {"spectral_norm", "note", "notes", "why"}


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
            try:
                yield from pd.read_html(io.StringIO(html))
            except ValueError:
                continue


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


def test_the_check_finds_an_all_null_column():
    df = pd.DataFrame({"eps": [4, 8], "first_term": [None, float("nan")], "w_min": [1.2, 1.3]})
    assert _empty_columns(df) == ["first_term"]
    assert _empty_columns(df.assign(first_term=[1.0, None])) == []
