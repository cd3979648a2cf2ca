"""The claims ledger on hand-made results whose verdicts are known (no training, no store)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from arlib.book import claims

LAYERS = [f"layer{i}" for i in range(12)]


def frame(values_by_eps: dict, experiment="pgd", spectral_norm=np.nan, extra: dict | None = None) -> pd.DataFrame:
    """Rows like arlib.book.report.collect's: {eps: {metric: [value per seed]}}."""
    rows = []
    for eps, metrics in values_by_eps.items():
        n = len(next(iter(metrics.values())))
        for s in range(n):
            r = {
                "hash": f"{experiment}{eps}{spectral_norm}{s}".ljust(16, "0"),
                "experiment": experiment,
                "eps": float(eps),
                "seed": s,
                "spectral_norm": spectral_norm,
                "dataset": "cifar10",
                "model": "resnet8",
                "method": "pgd",
            }
            r["short"] = r["hash"][:8]
            for m, vals in metrics.items():
                r[m] = vals[s]
            for k, v in (extra or {}).get(eps, {}).items():
                r[k] = v[s] if isinstance(v, list) else v
            rows.append(r)
    return pd.DataFrame(rows)


def verdict(frames, claim_id, **opts):
    led = claims.evaluate(frames, ids=[claim_id], **opts)
    assert list(led["id"]) == [claim_id]
    return led["verdict"].iloc[0], led["ours"].iloc[0]


# ----------------------------------------------------------------------------- the rule


def test_compare_clear_trend_holds_with_welch_interval():
    from scipy import stats

    df = frame({4: {"delta_loss": [1.00, 1.02, 0.98]}, 16: {"delta_loss": [0.50, 0.52, 0.48]}})
    t = claims.compare(df, "delta_loss", -1, 4, 16)
    assert t.verdict == "holds"
    assert t.diff == pytest.approx(-0.5)
    # No per-example outcomes: the seed component alone, Welch's t (here equal variances: df = 4).
    assert t.change.se == pytest.approx(np.sqrt(2 * 0.02**2 / 3)) and t.change.df == pytest.approx(4.0)
    assert t.change.ci[1] == pytest.approx(-0.5 + stats.t.ppf(0.975, 4) * t.change.se)
    assert t.lo == (pytest.approx(1.0), pytest.approx(0.02), 3)
    assert "95 % CI" in t.evidence() and "resolution" in t.evidence()


def test_compare_reversed_is_contradicted():
    df = frame({4: {"delta_loss": [0.50, 0.52, 0.48]}, 16: {"delta_loss": [1.00, 1.02, 0.98]}})
    assert claims.compare(df, "delta_loss", -1).verdict == "contradicted"


def test_compare_within_noise_is_below_resolution():
    df = frame({4: {"delta_loss": [1.0, 0.8, 1.2]}, 16: {"delta_loss": [0.95, 0.75, 1.15]}})
    t = claims.compare(df, "delta_loss", -1)
    assert t.verdict == "below resolution" and t.reason == "interval includes 0"
    assert t.change.resolution > abs(t.diff)


def test_the_old_rule_would_have_judged_what_the_interval_cannot():
    # |diff| > sqrt(s_lo² + s_hi²) (the old rule) but |t| = 2.0 < t(0.975, 4) = 2.78: below resolution now.
    df = frame({4: {"x": [1.0, 1.1, 1.2]}, 16: {"x": [1.163, 1.263, 1.363]}})
    t = claims.compare(df, "x", +1)
    assert abs(t.diff) > np.sqrt(2) * 0.1
    assert t.verdict == "below resolution"


def test_compare_single_seed_has_no_interval_unless_noise_can_be_borrowed():
    one = frame({4: {"delta_loss": [1.0]}, 16: {"delta_loss": [0.5]}}, experiment="fgsm")
    t = claims.compare(one, "delta_loss", -1)
    assert t.verdict == "below resolution" and "no interval" in t.reason
    pgd = frame({4: {"delta_loss": [0.9, 0.91, 0.89]}, 16: {"delta_loss": [0.6, 0.61, 0.59]}})
    t = claims.compare(one, "delta_loss", -1, noise_df=pgd)
    assert t.verdict == "holds" and t.borrowed
    assert t.change.se == pytest.approx(np.sqrt(2) * 0.01)
    assert "borrowed" in t.evidence()


def test_compare_missing_cell_is_not_run():
    df = frame({4: {"delta_loss": [1.0, 1.1]}})
    t = claims.compare(df, "delta_loss", -1, 4, 16)
    assert t.verdict == "not run" and t.reason == "not run"
    assert claims.compare(None, "delta_loss", -1).verdict == "not run"


def test_holm_over_the_column_can_withhold_a_verdict():
    # p = 0.02 alone holds; in a family where 20 other trends are judged, Holm needs p < 0.05 / 21.
    df = frame({4: {"x": [1.0, 1.1, 1.2]}, 16: {"x": [1.35, 1.45, 1.55]}})
    t = claims.compare(df, "x", +1)
    assert t.verdict == "holds" and 0.001 < t.change.p < 0.05
    key = claims._trend_key(df, "x", 4.0, 16.0)
    ctx = claims.Context(adjusted={key: min(1.0, 21 * t.change.p)})
    t2 = claims.compare(df, "x", +1, ctx=ctx)
    assert t2.verdict == "below resolution" and "Holm" in t2.reason


def test_combine():
    assert claims.combine(["holds", "holds"]) == "holds"
    assert claims.combine(["holds", "below resolution"]) == "below resolution"
    assert claims.combine(["holds", "not run"]) == "not run"
    assert claims.combine(["holds", "contradicted", "below resolution"]) == "contradicted"
    assert claims.combine([]) == "not run"


def test_claim_eps_defaults_to_4_and_16_else_the_grid_ends():
    assert claims.claim_eps(frame({0: {"x": [1]}, 4: {"x": [1]}, 8: {"x": [1]}, 16: {"x": [1]}})) == (4.0, 16.0)
    assert claims.claim_eps(frame({0: {"x": [1]}, 2: {"x": [1]}, 6: {"x": [1]}})) == (2.0, 6.0)


def test_a_block_run_at_one_eps_is_not_compared_with_itself():
    # the deeper network run at ε 4 only: its trend needs ε 16, which is not run
    deep = frame({4: {"delta_loss": [0.47], "test_acc": [35.4]}}, experiment="deep")
    assert claims.claim_eps(deep) == (4.0, 16.0)
    pgd = frame({4: {"delta_loss": [0.30, 0.31], "test_acc": [36, 37]}, 16: {"delta_loss": [0.02, 0.03], "test_acc": [20, 21]}})
    v, ours = verdict({"pgd": pgd, "deep": deep}, "deep_same_trends")
    assert v == "not run" and "not run" in ours and "at ε=4 → 0.474" not in ours


# ----------------------------------------------------------------------------- the claims


def test_loss_gap_and_accuracy_claims():
    pgd = frame(
        {
            0: {"delta_loss": [2.0, 2.1, 1.9], "test_acc": [80, 81, 79]},
            4: {"delta_loss": [1.5, 1.55, 1.45], "test_acc": [70, 71, 69]},
            16: {"delta_loss": [0.8, 0.85, 0.75], "test_acc": [76, 77, 75]},
        }
    )
    assert verdict({"pgd": pgd}, "loss_gap_falls")[0] == "holds"
    v, ours = verdict({"pgd": pgd}, "test_acc_falls")
    assert v == "contradicted"  # accuracy rose 70 -> 76, beyond its interval
    assert "ε=4" in ours and "ε=16" in ours and "n=3" in ours


def test_margins_claim_needs_train_and_test():
    base = {
        "train_margin_std": [2.0, 2.05, 1.95],
        "train_margin_abs_mean": [3.0, 3.05, 2.95],
        "test_margin_std": [2.0, 2.05, 1.95],
        "test_margin_abs_mean": [3.0, 3.05, 2.95],
    }
    smaller = {k: [v - 1.0 for v in vals] for k, vals in base.items()}
    assert verdict({"pgd": frame({4: base, 16: smaller})}, "margins_concentrate")[0] == "holds"
    mixed = dict(smaller, test_margin_std=[3.0, 3.05, 2.95])
    assert verdict({"pgd": frame({4: base, 16: mixed})}, "margins_concentrate")[0] == "contradicted"


def test_loss_variation_claim_checks_every_radius():
    lo = {"lv_mean_eps1": [0.03, 0.031, 0.029], "lv_mean_eps2": [0.06, 0.061, 0.059], "lv_mean_eps4": [0.13, 0.131, 0.129]}
    hi = {"lv_mean_eps1": [0.02, 0.021, 0.019], "lv_mean_eps2": [0.04, 0.041, 0.039], "lv_mean_eps4": [0.09, 0.091, 0.089]}
    v, ours = verdict({"pgd": frame({4: lo, 16: hi})}, "loss_variation_falls")
    assert v == "holds" and "ε'=4" in ours
    hi_noisy = dict(hi, lv_mean_eps4=[0.13, 0.2, 0.06])
    assert verdict({"pgd": frame({4: lo, 16: hi_noisy})}, "loss_variation_falls")[0] == "below resolution"


def sv_frame(std4: list[float], std16: list[float]) -> pd.DataFrame:
    d4 = {"sv_std_operator": dict(zip(LAYERS, std4)), "sv_std_reshaped": dict(zip(LAYERS, std4))}
    d16 = {"sv_std_operator": dict(zip(LAYERS, std16)), "sv_std_reshaped": dict(zip(LAYERS, std16))}
    return frame({4: {"delta_loss": [1.0]}, 16: {"delta_loss": [0.5]}}, extra={4: d4, 16: d16})


def test_sv_claim_counts_layers():
    rng = np.random.default_rng(0)
    s4 = list(1 + rng.random(12))
    assert verdict({"pgd": sv_frame(s4, [s - 0.3 for s in s4])}, "sv_std_falls")[0] == "holds"
    assert verdict({"pgd": sv_frame(s4, [s + 0.3 for s in s4])}, "sv_std_falls")[0] == "contradicted"
    half = [s - 0.3 if i % 2 else s + 0.3 for i, s in enumerate(s4)]
    v, ours = verdict({"pgd": sv_frame(s4, half)}, "sv_std_falls")
    assert v == "below resolution"
    assert "6 of 12 layers" in ours and "raw spread" in ours


def test_sv_claim_uses_the_b2_sums():
    # 10 of 12 layers fall a little, 2 rise a lot: the summed increase wins -> not "holds".
    s4 = [1.0] * 12
    s16 = [0.99] * 10 + [2.0, 2.0]
    assert verdict({"pgd": sv_frame(s4, s16)}, "sv_std_falls")[0] == "below resolution"


def test_fgsm_claim_borrows_pgd_noise():
    pgd = frame({4: {"delta_loss": [1.0, 1.01, 0.99], "test_acc": [70, 70.5, 69.5]}, 16: {"delta_loss": [0.7, 0.71, 0.69], "test_acc": [65, 65.5, 64.5]}})
    fgsm = frame(
        {4: {"delta_loss": [0.9], "test_acc": [72]}, 8: {"delta_loss": [0.8], "test_acc": [70]}, 16: {"delta_loss": [0.6], "test_acc": [66]}}, experiment="fgsm"
    )
    v, ours = verdict({"pgd": pgd, "fgsm": fgsm}, "fgsm_same_trends")
    assert v == "holds" and "borrowed" in ours
    assert verdict({"fgsm": fgsm}, "fgsm_same_trends")[0] == "below resolution"
    assert verdict({"pgd": pgd}, "fgsm_same_trends") == ("not run", "not run")


def test_spectral_claim_turn_of_the_error_gap():
    pgd = frame(
        {4: {"delta_loss": [0.70, 0.71, 0.69], "delta_acc": [10.0, 10.1, 9.9]}, 16: {"delta_loss": [0.55, 0.56, 0.54], "delta_acc": [12.0, 12.1, 11.9]}}
    )
    sp1 = frame({4: {"delta_loss": [0.22], "delta_acc": [6.4]}, 16: {"delta_loss": [0.17], "delta_acc": [4.8]}}, experiment="spectral", spectral_norm=1.0)
    sp3 = frame({4: {"delta_loss": [0.60], "delta_acc": [9.6]}, 16: {"delta_loss": [0.47], "delta_acc": [10.5]}}, experiment="spectral", spectral_norm=3.0)
    frames = {"pgd": pgd, "spectral": pd.concat([sp1, sp3], ignore_index=True)}
    v, ours = verdict(frames, "spectral_turns_error_gap")
    assert v == "holds", ours
    assert "SP 1" in ours and "uncontrolled" in ours
    # SP 3 lies between: its error gap is shown with its change but carries no verdict of its own.
    sp3_part = ours.split("SP 3: ")[1].split(" | ")[0]
    assert "change +0.90" in sp3_part and sp3_part.endswith("[intermediate level: shown, not judged]")
    # Tightest clip leaves the error gap rising: the turn is not there.
    sp1_up = sp1.assign(delta_acc=np.where(sp1["eps"] == 16, 8.0, 6.4))
    frames = {"pgd": pgd, "spectral": pd.concat([sp1_up, sp3], ignore_index=True)}
    assert verdict(frames, "spectral_turns_error_gap")[0] == "contradicted"
    # Without clipping the error gap falls: there is no rise to turn, so the premise is not met.
    pgd_down = pgd.assign(delta_acc=np.where(pgd["eps"] == 16, pgd["delta_acc"] - 4, pgd["delta_acc"]))
    v, ours = verdict({"pgd": pgd_down, "spectral": pd.concat([sp1, sp3], ignore_index=True)}, "spectral_turns_error_gap")
    assert v == "premise not met" and "no rise to turn" in ours
    # A collapsed run set aside at one target is counted at that target only (collect keeps them in attrs).
    both = pd.concat([sp1, sp3], ignore_index=True)
    both.attrs["collapsed"] = ({"hash": "c" * 16, "short": "cccccccc", "eps": 16.0, "spectral_norm": 1.0, "seed": 1},)
    _, ours = verdict({"pgd": pgd, "spectral": both}, "spectral_turns_error_gap")
    sp1_part, sp3_part = ours.split("SP 1: ")[1].split(" | ")[0], ours.split("SP 3: ")[1].split(" | ")[0]
    assert "(n=1; 2 seeds, 1 collapsed) at ε=16" in sp1_part and "collapsed" not in sp3_part


def test_pgd_accuracy_claim_and_error_gap_claim():
    pgd = frame(
        {
            4: {"pgd_acc_correct": [40, 41, 39], "delta_acc": [5, 5.1, 4.9], "delta_loss": [1, 1.01, 0.99]},
            16: {"pgd_acc_correct": [55, 56, 54], "delta_acc": [4, 4.1, 3.9], "delta_loss": [0.8, 0.81, 0.79]},
        }
    )
    assert verdict({"pgd": pgd}, "pgd_acc_rises")[0] == "holds"
    fit = pgd.assign(train_acc=99.0)
    assert verdict({"pgd": fit}, "error_gap_rises_cifar10")[0] == "contradicted"
    # The same runs where the networks do not fit their training sets: B.3's premise fails, nothing is judged.
    v, ours = verdict({"pgd": pgd.assign(train_acc=np.where(pgd["eps"] == 16, 45.0, 99.0))}, "error_gap_rises_cifar10")
    assert v == "premise not met" and "45.0 % at ε 16" in ours and "[shown, not judged]" in ours


def test_uncontrolled_rows_only_for_pgd_claims():
    pgd = frame({4: {"delta_loss": [1.0, 1.01, 0.99]}, 16: {"delta_loss": [0.5, 0.51, 0.49]}})
    clipped = frame({4: {"delta_loss": [0.1, 0.1, 0.1]}, 16: {"delta_loss": [5.0, 5.0, 5.0]}}, spectral_norm=1.0)
    assert verdict({"pgd": pd.concat([pgd, clipped], ignore_index=True)}, "loss_gap_falls")[0] == "holds"


# ----------------------------------------------------------------------------- the ledger


def test_evaluate_every_claim_on_empty_frames_is_not_run():
    led = claims.evaluate({})
    assert list(led.columns)[:7] == ["id", "section", "claim", "paper", "ours", "verdict", "reason"]
    assert len(led) == len(claims.CLAIMS)
    assert set(led["verdict"]) == {"not run"}
    assert led["paper"].str.len().min() > 20  # the paper's evidence is always there


def test_paper_evidence_quotes_the_tables():
    led = claims.evaluate({}).set_index("id")
    assert "0.669 / 0.606 / 0.545" in led.at["loss_gap_falls", "paper"]  # Table 3, ResNet-56
    assert "4.7465" in led.at["sv_std_falls", "paper"] and "0.4372" in led.at["sv_std_falls", "paper"]
    assert "0.0273 / 0.0236 / 0.0215" in led.at["loss_variation_falls", "paper"]  # Table 1
    assert "6.44 / 5.51 / 4.76" in led.at["spectral_turns_error_gap", "paper"]  # Table 6, SP 1
    assert "0.429 / 0.409 / 0.385" in led.at["fgsm_same_trends", "paper"]  # Table 2


def test_unknown_claim_id_raises():
    with pytest.raises(KeyError):
        claims.evaluate({}, ids=["no_such_claim"])


def test_ledger_with_given_frames_and_summary():
    pgd = frame({4: {"delta_loss": [1.0, 1.01, 0.99], "test_acc": [70, 70.5, 69.5]}, 16: {"delta_loss": [0.5, 0.51, 0.49], "test_acc": [65, 65.5, 64.5]}})
    led = claims.ledger("smoke", frames={"pgd": pgd})
    v = led.set_index("id")["verdict"]
    assert v["loss_gap_falls"] == "holds" and v["test_acc_falls"] == "holds"
    assert set(v) <= set(claims.VERDICTS)
    text = claims.summary(led)
    assert text.startswith(f"Of {len(led)} claims") and "2 holds" in text


def test_regime_ledger_explains_every_verdict_that_does_not_hold():
    import numpy as np
    import pandas as pd

    from arlib.book import claims

    def frame(train_acc, gaps):
        rows = []
        for eps, per_seed in gaps.items():
            for s, g in enumerate(per_seed):
                rows.append(
                    {
                        "hash": f"{eps:02d}{s:02d}".ljust(16, "0"),
                        "short": f"{eps:02d}{s:02d}0000",
                        "eps": float(eps),
                        "seed": s,
                        "spectral_norm": np.nan,
                        "delta_loss": g,
                        "train_acc": train_acc[eps],
                        "test_acc": 30.0,
                    }
                )
        return pd.DataFrame(rows)

    fits = frame({4: 99.0, 8: 98.0, 16: 92.0}, {4: [0.6, 0.62, 0.64], 8: [0.5], 16: [0.3, 0.31, 0.32]})
    weak = frame({4: 50.0, 8: 40.0, 16: 20.0}, {4: [0.30, 0.5, 0.1], 16: [0.29, 0.1, 0.45]})
    long = claims.regime_ledger([("low", {"pgd": weak}), ("high", {"pgd": fits})], ids=["loss_gap_falls"])
    assert list(long["regime"]) == ["low", "high"]
    assert list(long["verdict"]) == ["below resolution", "holds"]
    low_why = long.loc[0, "why"]
    assert "low regime" in low_why and "includes 0" in low_why and "do not fit" in low_why and "50.0 / 20.0" in low_why
    assert long.loc[1, "why"] == ""
    assert "fit their adversarial training sets: clean training accuracy 99.0 / 98.0 / 92.0" in claims.fit_summary({"pgd": fits})
    wide = claims.ledger_wide(long)
    assert list(wide.columns) == ["section", "claim", "paper", "low", "high"] and wide.loc[0, "high"] == "holds"
    md = claims.verdicts_markdown(long)
    assert ":::{dropdown} *low*: **below resolution**\n" in md and ":::{dropdown} *high*: **holds**\nEvidence:" in md
    assert md.count(":::{dropdown}") == md.count("\n:::\n") == len(long)  # one collapsed block per verdict

    # The deeper-network claim's paragraph reports the fit of the deeper networks, not of the base ones beside them.
    deep = frame({4: 60.0, 8: 45.0, 16: 25.0}, {4: [0.5, 0.1], 8: [0.3], 16: [0.45, 0.2]})
    why = claims.regime_ledger([("low", {"pgd": weak}), ("high", {"pgd": fits, "deep": deep})], ids=["deep_same_trends"]).loc[1, "why"]
    assert "The deeper networks do not fit their adversarial training sets: clean training accuracy 60.0 / 45.0 / 25.0" in why
    assert "99.0" not in why
    assert claims.fit_summary({"pgd": fits}, "fgsm", "FGSM-trained networks").startswith("No FGSM runs: whether the FGSM-trained networks fit")


def test_findings_table_links_each_claim_to_its_chapter():
    long = pd.DataFrame(
        [
            {
                "id": "a",
                "section": "B.4.2",
                "claim": "Clip <turns>",
                "paper": "Table 6",
                "regime": "low",
                "verdict": "below resolution",
                "ours": "",
                "why": "x",
            },
            {"id": "a", "section": "B.4.2", "claim": "Clip <turns>", "paper": "Table 6", "regime": "high", "verdict": "holds", "ours": "", "why": ""},
            {"id": "b", "section": "D.2 / Fig. 12", "claim": "PGD", "paper": "", "regime": "low", "verdict": "contradicted", "ours": "", "why": "y"},
            {"id": "b", "section": "D.2 / Fig. 12", "claim": "PGD", "paper": "", "regime": "high", "verdict": "holds", "ours": "", "why": ""},
        ]
    )
    out = claims.findings_html(long, href=lambda ch: f"executed/{ch}.html")
    assert out.count("<tr>") == 3 and "<th>low</th><th>high</th>" in out
    assert '<a href="executed/B4_capacity.html">B.4.2</a>' in out and '<a href="executed/D_implementation.html">' in out
    assert "Clip &lt;turns&gt;" in out and out.index("below resolution") < out.index("holds")
    assert "arbook-contradicted" in out
    assert claims.findings_html(long.iloc[:0]).startswith("<p>")


def test_a_regime_that_fits_only_up_to_eps_8_is_also_compared_there():
    import numpy as np
    import pandas as pd

    from arlib.book import claims

    rows = [
        {
            "hash": f"{e:02d}{s}".ljust(16, "0"),
            "short": f"{e:02d}{s}00000",
            "eps": float(e),
            "seed": s,
            "spectral_norm": np.nan,
            "train_acc": {4: 99.0, 8: 97.0, 16: 60.0}[e],
            "delta_loss": {4: 0.6, 8: 0.5, 16: 0.2}[e] + 0.01 * s,
            "test_acc": 30.0,
        }
        for e in (4, 8, 16)
        for s in range(3)
    ]
    frames = {"pgd": pd.DataFrame(rows)}
    assert claims.fitted_eps(frames) == [4.0, 8.0]
    cmps = claims.comparisons("high capacity", frames)
    assert [c[0] for c in cmps] == ["high capacity", "high capacity, ε 4 → 8 (where it fits)"] and cmps[1][2] == {"eps_lo": 4.0, "eps_hi": 8.0}
    long = claims.regime_ledger(cmps, ids=["loss_gap_falls"])
    assert "at ε=8" in long.loc[1, "ours"] and "at ε=16" in long.loc[0, "ours"]
    fits_all = {"pgd": pd.DataFrame([dict(r, train_acc=99.0) for r in rows])}
    assert len(claims.comparisons("x", fits_all)) == 1


def test_a_damaged_run_reads_not_run_and_says_damaged(tmp_path):
    """A store whose only run at ε 16 is damaged: the ledger says not run and names the damage, never raises."""
    import shutil

    from arlib.book import report
    from arlib.store import Store, default_root

    src = Store.for_profile("cpu", default_root())
    done = [r for r in src.runs() if r.analysed]
    if len(done) < 2:
        pytest.skip("needs two analysed runs in the committed cpu store")
    for r in done:
        shutil.copytree(r.path, tmp_path / "runs" / r.hash)
    store = Store(tmp_path)
    before = report.collect("cpu", "pgd", store=store, ensure=False)
    eps_hi = float(before["eps"].max())
    victims = set(before.loc[before["eps"] == eps_hi, "hash"])
    for h in victims:  # every seed of the top cell
        (tmp_path / "runs" / h / "metrics.json").write_text('{"status": "finished", "final": ')  # truncated
    df = report.collect("cpu", "pgd", store=store, ensure=False)
    assert not victims & set(df["hash"]) and victims == {d["hash"] for d in df.attrs["damaged"]}
    t = claims.compare(df, "test_acc", -1, float(df["eps"].min()), eps_hi)
    assert t.verdict == "not run" and "damaged" in t.reason and "metrics.json" in t.reason
    led = claims.evaluate({"pgd": df})
    assert set(led["verdict"]) <= set(claims.VERDICTS)
