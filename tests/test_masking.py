"""D.2's attack check (arlib.book.masking) on the committed audits, against the runs' own files."""

from __future__ import annotations

import numpy as np
import pytest

from arlib import audit
from arlib.book import masking


@pytest.fixture(scope="module")
def audited():
    frame = masking.audit_frame("cpu", root="results")
    if frame.empty:
        pytest.skip("no committed cpu run has an attack audit")
    return frame


def test_pgd10_column_is_the_final_evaluations_outcome_on_the_audited_images(audited):
    # independent of the audit's own summary: read outcomes.npz (written by training) at the audited image ids
    for run in audited["run"]:
        per = audit.audit_arrays(run)
        out = run.outcomes()
        where = {int(i): k for k, i in enumerate(out["pgd_index"])}
        robust = out["pgd_robust"][[where[int(i)] for i in per["test_index"]]]
        row = audited[audited["hash"] == run.hash].iloc[0]
        assert row["pgd10"] == pytest.approx(100 * robust.mean())
        assert row["clean"] == pytest.approx(100 * out["pgd_clean_correct"][[where[int(i)] for i in per["test_index"]]].mean())


def test_overstatement_is_the_difference_of_the_columns_and_never_negative(audited):
    table = masking.masking_table(("cpu",), root="results")
    assert len(table) == audited["eps"].nunique()
    for _, row in table.iterrows():
        cell = audited[audited["eps"] == float(row["ε (train)"])]
        mean = float(row["PGD-10 − worst [95 % CI]"].split(" ")[0])
        assert mean == pytest.approx((cell["pgd10"] - cell["worst"]).mean(), abs=0.051) and mean >= 0
        lo, hi = (float(x) for x in row["PGD-10 − worst [95 % CI]"].split("[")[1].rstrip("]").split(", "))
        assert lo <= mean <= hi
    assert masking.masking_sentence(table)


def test_one_run_interval_is_the_binomial_width_of_its_broken_images(audited):
    # one run, image component only: the bootstrap SE of a mean of 0/1 gaps over n images is sqrt(p(1-p)/n)
    run = audited["run"].iloc[0]
    per = audit.audit_arrays(run)
    gap = per["pgd10_robust"].astype(float) - per["worst_robust"].astype(float)
    lv = masking.overstatement([run], draws=2000)
    p, n = gap.mean(), len(gap)
    assert lv.se == pytest.approx(100 * np.sqrt(p * (1 - p) / n), rel=0.15)


def test_trend_table_compares_both_attacks_on_the_same_runs(audited):
    trends = masking.trend_table(("cpu",), root="results")
    if trends.empty:
        pytest.skip("no cpu cell audited at both eps 4 and 16")
    assert list(trends["attack"]) == ["PGD-10", "worst of the three"]
    for _, row in trends.iterrows():
        column = "pgd10" if row["attack"] == "PGD-10" else "worst"
        for eps in (4, 16):
            assert float(row[f"ε {eps}"]) == pytest.approx(audited[audited["eps"] == eps][column].mean(), abs=0.051)
        diff = float(row["change [95 % CI]"].split(" ")[0])
        assert diff == pytest.approx(float(row["ε 16"]) - float(row["ε 4"]), abs=0.11)
    # the worst case can never exceed PGD-10 in any cell
    assert float(trends.iloc[1]["ε 4"]) <= float(trends.iloc[0]["ε 4"]) and float(trends.iloc[1]["ε 16"]) <= float(trends.iloc[0]["ε 16"])
    assert masking.trend_sentence(trends).startswith("D.2's trend")
