"""arlib.book.report, .compare and .speed on synthetic tables, a fake results store and a hand-made benchmark file (no training)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from arlib.book import compare, paper, report, speed
from arlib.store import Store, atomic_write_json


def runs_frame(values: dict, metrics=("delta_loss", "test_acc")) -> pd.DataFrame:
    """{eps: [per-seed value tuples]} -> rows like collect's."""
    rows = []
    for eps, per_seed in values.items():
        for s, vals in enumerate(per_seed):
            rows.append(
                {
                    "hash": f"{int(eps):02d}{s:02d}".ljust(16, "a"),
                    "short": f"{int(eps):02d}{s:02d}aaaa",
                    "profile": "smoke",
                    "experiment": "pgd",
                    "dataset": "cifar10",
                    "model": "resnet8",
                    "method": "pgd",
                    "eps": float(eps),
                    "spectral_norm": np.nan,
                    "seed": s,
                    "commit": "0123456789abcdef+dirty",
                    **dict(zip(metrics, vals)),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- summarise


def test_summarise_mean_std_n_against_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(2, 2))
    df = runs_frame({4: [tuple(r) for r in a], 16: [tuple(r) for r in b], 8: [(1.5, 2.5)]})
    s = report.summarise(df, by=["eps"]).set_index("eps")
    assert list(s.index) == [4.0, 8.0, 16.0]
    assert s.at[4.0, "n"] == 3 and s.at[16.0, "n"] == 2 and s.at[8.0, "n"] == 1
    np.testing.assert_allclose(s.at[4.0, "delta_loss_mean"], a[:, 0].mean())
    np.testing.assert_allclose(s.at[4.0, "delta_loss_std"], np.std(a[:, 0], ddof=1))
    np.testing.assert_allclose(s.at[16.0, "test_acc_std"], np.std(b[:, 1], ddof=1))
    assert s.at[8.0, "delta_loss_mean"] == 1.5 and np.isnan(s.at[8.0, "delta_loss_std"])
    assert "seed_mean" not in s.columns  # the seed is what is averaged over


def test_summarise_default_keys_keep_nan_spectral_norm_as_a_group():
    df = pd.concat([runs_frame({4: [(1.0, 0), (3.0, 0)]}), runs_frame({4: [(10.0, 0)]}).assign(spectral_norm=1.0)], ignore_index=True)
    s = report.summarise(df, metrics=["delta_loss"])
    assert len(s) == 2
    unc = s[s["spectral_norm"].isna()].iloc[0]
    assert unc["delta_loss_mean"] == 2.0 and unc["n"] == 2
    assert s[s["spectral_norm"] == 1.0].iloc[0]["delta_loss_mean"] == 10.0


def test_summarise_skips_nan_values():
    df = runs_frame({4: [(1.0, 0), (np.nan, 0), (3.0, 0)]})
    s = report.summarise(df, by=["eps"], metrics=["delta_loss"]).iloc[0]
    assert s["delta_loss_mean"] == 2.0 and s["delta_loss_std"] == pytest.approx(np.sqrt(2))


def test_format_pm():
    assert report.format_pm(0.12345, 0.0041, digits=3) == "0.123 ± 0.004"
    assert report.format_pm(0.12345, float("nan"), digits=2) == "0.12"
    assert report.format_pm(float("nan"), 1.0) == "—"


# ----------------------------------------------------------------------------- side_by_side


def test_side_by_side_aligns_eps_and_metrics_with_table_3():
    metrics = ("train_acc", "test_acc", "delta_acc", "train_loss", "test_loss", "delta_loss", "pgd_acc_correct")
    ours = runs_frame(
        {
            0: [(100, 80, 20, 0.01, 1.0, 0.99, 0.0)],
            4: [(99, 70, 29, 0.1, 1.2, 1.1, 40.0), (97, 72, 25, 0.2, 1.0, 0.8, 42.0)],
            8: [(95, 68, 27, 0.3, 1.1, 0.8, 50.0)],
            16: [(90, 65, 25, 0.5, 1.0, 0.5, 60.0)],
        },
        metrics=metrics,
    )
    block = paper.wide(3, model="resnet56")
    t = compare.side_by_side(ours, block)
    assert set(t["metric"]) == set(block.index)
    assert sorted(t["eps"].unique()) == [0.0, 4.0, 8.0, 16.0]
    row = t[(t["metric"] == "delta_loss") & (t["eps"] == 8.0)].iloc[0]
    assert row["paper"] == 0.606 and row["ours_mean"] == 0.8 and row["n"] == 1 and np.isnan(row["ours_std"])
    row = t[(t["metric"] == "test_loss") & (t["eps"] == 4.0)].iloc[0]
    assert row["paper"] == 0.683 and row["ours_mean"] == pytest.approx(1.1) and row["ours_std"] == pytest.approx(np.std([1.2, 1.0], ddof=1))
    assert row["ours"] == "1.100 ± 0.141" and row["diff"] == pytest.approx(1.1 - 0.683)
    # The paper's "PGD" row is our accuracy over originally correct examples.
    row = t[(t["metric"] == "pgd_acc") & (t["eps"] == 16.0)].iloc[0]
    assert row["paper"] == 72.16 and row["ours_mean"] == 60.0
    # eps 0: ours only.
    row = t[(t["metric"] == "train_acc") & (t["eps"] == 0.0)].iloc[0]
    assert np.isnan(row["paper"]) and row["ours_mean"] == 100
    # Paper's metric order.
    assert list(dict.fromkeys(t["metric"])) == list(block.index)

    w = compare.side_by_side(ours, block, layout="wide")
    assert list(w.index) == list(block.index)
    assert w.loc["delta_loss", ("8", "paper")] == "0.606" and w.loc["delta_loss", ("8", "ours")] == "0.800"
    assert w.loc["delta_loss", ("0", "paper")] == "—"
    # Tidy paper rows give the same alignment as the wide block.
    tidy = paper.table(3)
    tidy = tidy[tidy["model"] == "resnet56"]
    pd.testing.assert_frame_equal(compare.side_by_side(ours, tidy), t)


def test_side_by_side_marks_eps_we_did_not_run_and_table_1_attack_radii():
    ours = runs_frame({4: [(0.03, 0.10)], 16: [(0.02, 0.06)]}, metrics=("lv_mean_eps1", "lv_std_eps1"))
    t = compare.side_by_side(ours, paper.wide(1, dataset="cifar10"))
    assert "attack_eps" in t.columns
    row = t[(t["attack_eps"] == 1.0) & (t["metric"] == "loss_variation_mean") & (t["eps"] == 16.0)].iloc[0]
    assert row["paper"] == 0.0215 and row["ours_mean"] == 0.02
    row = t[(t["attack_eps"] == 1.0) & (t["metric"] == "loss_variation_std") & (t["eps"] == 8.0)].iloc[0]
    assert row["paper"] == 0.0778 and row["n"] == 0 and row["ours"] == "not run"
    row = t[(t["attack_eps"] == 4.0) & (t["metric"] == "loss_variation_mean") & (t["eps"] == 4.0)].iloc[0]
    assert row["paper"] == 0.1337 and np.isnan(row["ours_mean"])  # we have no eps' = 4 column here


def test_side_by_side_rejects_several_blocks():
    df = pd.concat([runs_frame({4: [(1.0, 0)]}), runs_frame({4: [(2.0, 0)]}).assign(spectral_norm=1.0)])
    with pytest.raises(ValueError):
        compare.side_by_side(report.summarise(df), paper.wide(3, model="resnet56"))


# ----------------------------------------------------------------------------- provenance


def test_provenance_note_names_runs_profile_and_commit():
    df = runs_frame({4: [(1.0, 0), (1.0, 0)], 16: [(1.0, 0)]})
    note = report.provenance_note(df)
    for short in df["short"]:
        assert short in note
    assert "3 runs" in note and "profile smoke" in note and "commit 0123456+dirty" in note and "\n" not in note
    both = report.provenance_note([df, df.assign(hash="b" * 16, short="bbbbbbbb", commit="fedcba9876")])
    assert "4 runs" in both and "commits 0123456+dirty, fedcba9" in both
    assert report.provenance_note(df.iloc[:0]).startswith("no runs")
    assert "Table 3" in compare.paper_note(3)


# ----------------------------------------------------------------------------- collect from a fake store


def fake_run(store: Store, cfg, delta_loss: float, analysed: bool = True, commit: str = "abcdef0123456789", train_acc: float = 90.0, train_loss: float = 0.5):
    run = store.run(cfg)
    atomic_write_json(
        run.file("metrics.json"),
        {
            "status": "finished",
            "config_hash": cfg.hash,
            "history": [{"epoch": 1, "train_running_loss": 2.0, "test_loss": 2.1, "test_acc": 20.0}],
            "final": {
                "train_acc": train_acc,
                "test_acc": 70.0,
                "delta_acc": train_acc - 70.0,
                "train_loss": train_loss,
                "test_loss": train_loss + delta_loss,
                "delta_loss": delta_loss,
                "pgd_acc_all": 20.0,
                "pgd_acc_correct": 30.0,
            },
        },
    )
    atomic_write_json(run.file("provenance.json"), {"git_commit": commit, "train_seconds": 120.0, "device": "cpu"})
    if analysed:
        m = np.array([-1.0, 0.5, 2.0, 3.0], np.float32)
        summary = {
            "train_margin": {"mean": 1.125, "std": 1.5, "skewness": -0.2, "median": 1.25, "frac_below_zero": 0.25},
            "test_margin": {"mean": 0.0, "std": 1.0, "skewness": 0.0, "median": 0.0, "frac_below_zero": 0.5},
            "loss_variation": {"1": {"mean": 0.01, "std": 0.02}, "2": {"mean": 0.02, "std": 0.03}},
            "spectral": {
                "spectral_complexity": 100.0,
                "log_spectral_complexity": float(np.log(100.0)),
                "sv_std_operator": {"conv1": 0.5, "fc": 0.1},
                "sv_std_reshaped": {"conv1": 0.4, "fc": 0.1},
                "spectral_norms": {"conv1": 2.0, "fc": 1.0},
            },
            "test_true_prob": {"mean": 0.6},
        }
        run.save_analysis(
            summary,
            {
                "train_margin": m,
                "test_margin": -m,
                "test_loss": np.abs(m),
                "test_true_prob": np.full(4, 0.5, np.float16),
                "loss_variation_eps1": np.abs(m) / 10,
                "loss_variation_eps2": np.abs(m) / 5,
            },
        )
    return run


def test_collect_reads_a_store_without_training(tmp_path):
    store = Store(tmp_path / "smoke")
    cfgs = report.cells("smoke", "pgd")
    assert sorted({c.adv.eps for c in cfgs}) == [0, 4, 8, 16]
    for i, cfg in enumerate(cfgs[:-1]):  # the last cell is missing
        fake_run(store, cfg, delta_loss=1.0 - 0.1 * i, analysed=i != 0)
    df = report.collect("smoke", "pgd", store=store, ensure=False)
    assert len(df) == len(cfgs) - 1
    assert list(df["eps"]) == sorted(df["eps"])
    r = df.iloc[1]
    assert r["hash"] == cfgs[1].hash and r["short"] == cfgs[1].hash[:8] and r["profile"] == "smoke"
    assert r["experiment"] == "pgd" and r["dataset"] == "cifar10" and r["model"] == cfgs[1].model.name and r["method"] == "pgd"
    assert r["train_minutes"] == 2.0 and r["commit"] == "abcdef0123456789" and r["delta_loss"] == pytest.approx(0.9)
    assert r["train_margin_abs_mean"] == pytest.approx(np.mean([1, 0.5, 2, 3]))
    assert r["lv_mean_eps1"] == 0.01 and r["lv_std_eps2"] == 0.03
    assert r["log10_spectral_complexity"] == pytest.approx(2.0)
    assert r["sv_std_operator"] == {"conv1": 0.5, "fc": 0.1}
    assert df.iloc[0]["method"] == "none" and not df.iloc[0]["analysed"] and np.isnan(df.iloc[0]["train_margin_std"])
    # helpers over the collected rows
    assert set(report.runs_by_eps(df)) == set(df["eps"])
    hist = report.training_history(df)
    assert len(hist) == len(df) and set(hist["eps"]) == set(df["eps"])
    arrays = report.load_arrays(df.iloc[1])
    np.testing.assert_array_equal(arrays["test_margin"], -np.array([-1.0, 0.5, 2.0, 3.0], np.float32))
    # no weights, no bound.json: the bound is reported unavailable, not computed
    b = report.bound_table(df)
    assert not b["available"].any()


def test_collapsed_runs_are_left_out_of_means_and_listed(tmp_path):
    # Three seeds at eps 16, one of them a constant classifier (10 % train accuracy, loss ln 10).
    store = Store(tmp_path / "smoke")
    cfg = [c for c in report.cells("smoke", "pgd", eps_grid=[16], seeds=[0, 1, 2], with_claim_seeds=False) if c.adv.eps == 16]
    assert len(cfg) == 3
    fake_run(store, cfg[0], delta_loss=0.2)
    fake_run(store, cfg[1], delta_loss=0.0, train_acc=10.0, train_loss=float(np.log(10)))
    fake_run(store, cfg[2], delta_loss=0.4)
    df = report.collect("smoke", "pgd", store=store, ensure=False, eps_grid=[16], seeds=[0, 1, 2], with_claim_seeds=False)
    assert sorted(df["seed"]) == [0, 2]
    s = report.summarise(df, by=["eps"], metrics=["delta_loss"]).iloc[0]
    assert s["n"] == 2 and s["delta_loss_mean"] == pytest.approx(0.3)
    gone = report.collapsed_runs(df)
    assert list(gone["hash"]) == [cfg[1].hash]
    note = report.provenance_note(df)
    assert cfg[1].hash[:8] in note and "collapsed" in note and "seed 1" in note
    # a sorted or filtered copy still knows, and frames concatenate
    assert list(report.collapsed_runs(df.sort_values("seed"))["seed"]) == [1]
    pd.concat([df, df])
    assert len(report.collect("smoke", "pgd", store=store, ensure=False, eps_grid=[16], seeds=[0, 1, 2], with_claim_seeds=False, include_collapsed=True)) == 3


def test_collect_of_an_empty_store_has_the_columns(tmp_path):
    df = report.collect("smoke", "fgsm", store=Store(tmp_path / "none"), ensure=False)
    assert df.empty and {"hash", "eps", "seed", "delta_loss", "commit"} <= set(df.columns)


def test_overrides_change_the_grid_not_the_store():
    prof = report.resolve_profile("smoke", eps_grid=[0, 2], seeds=[3, 4])
    assert prof.name == "smoke" and prof.eps_grid == (2.0,) and prof.include_eps0 and prof.seeds == (3, 4)
    cfgs = report.cells(prof, "pgd")
    assert sorted((c.adv.eps, c.train.seed) for c in cfgs) == [(0, 3), (0, 4), (2, 3), (2, 4)]
    # 8.0 and 8 are the same run
    assert {c.hash for c in report.cells("smoke", "fgsm", eps_grid=[8.0])} == {c.hash for c in report.cells("smoke", "fgsm", eps_grid=[8])}


# ----------------------------------------------------------------------------- chapter tables


def test_b2_table_two_groups_and_paper_rows():
    rows = []
    for eps, stds in ((4, {"a": 1.0, "b": 0.5, "c": 0.2}), (16, {"a": 0.7, "b": 0.4, "c": 0.3})):
        rows.append({"eps": float(eps), "seed": 0, "sv_std_operator": stds, "sv_std_reshaped": stds})
    t = compare.b2_table(pd.DataFrame(rows))
    ours = t.loc["ours, operator singular values"]
    assert ours["first_sum"] == pytest.approx(0.4) and ours["first_n"] == 2
    assert ours["second_sum"] == pytest.approx(0.1) and ours["second_n"] == 1
    c100 = t.loc["paper, CIFAR100 ResNet-56"]
    assert c100["second_sum"] == 0.4372 and c100["second_n"] == 4 and "repeats" in c100["note"]
    assert t.loc["paper, CIFAR10 ResNet-56"]["first_n"] == 41


def test_margin_table_rows_and_columns():
    df = pd.DataFrame(
        [
            {"eps": e, "seed": s, "train_margin_std": 2.0 / (1 + e) + s, "test_margin_std": 1.0, "train_margin_abs_mean": 1.0, "test_margin_abs_mean": 1.0}
            for e in (0.0, 16.0)
            for s in (0, 1)
        ]
    )
    t = report.margin_table(df)
    assert list(t.columns) == ["0", "16"]
    assert t.loc[("train", "std"), "0"] == "2.500 ± 0.707"
    assert ("test", "mean |margin|") in t.index


def test_paper_blocks_and_dataset_table_for_a_dataset_not_run():
    assert compare.paper_block("cifar10", "pgd")[0] == 3
    assert compare.paper_block("cifar100", "deep")[0] == 4
    assert compare.paper_block("tinyimagenet", "deep") == (None, None)
    assert compare.paper_block("cifar10", "fgsm")[0] == 2
    assert compare.paper_block("cifar10", "spectral", 2.0) == (None, None)
    assert compare.paper_block("cifar10", "spectral", float("nan"))[1].loc["delta_acc", 16] == 11.08
    w, note = compare.dataset_table("smoke", "cifar100", ensure=False)
    assert (w.xs("ours", axis=1, level=1) == "not run here").all().all()
    assert w.loc["test_acc", ("4", "paper")] == "61.31"
    assert "arlib grid --profile paper --datasets cifar100" in note
    series = compare.paper_pgd_series()
    assert len(series) == 3 and list(series.values())[2][0] == 0.0


def test_settings_table():
    s = compare.settings_table("paper", "cifar10")
    assert s.loc["epochs"].iloc[0] == "200" and s.loc["batch size"].iloc[0] == "256"
    both = compare.settings_table(["smoke", "paper"], "cifar10")
    assert list(both.columns) == ["ours (smoke)", "ours (paper)", "paper (App. D)"]
    assert both.loc["epochs", "ours (paper)"] == "200" and both.loc["epochs", "ours (smoke)"] != "200"


def test_every_figure_builds_from_collected_rows(tmp_path):
    from matplotlib.figure import Figure

    from arlib.book import plots

    store = Store(tmp_path / "smoke")
    for i, cfg in enumerate(report.cells("smoke", "pgd")):
        fake_run(store, cfg, delta_loss=1.0 - 0.1 * i)
    df = report.collect("smoke", "pgd", store=store, ensure=False)
    block = paper.wide(3, model="resnet56")
    figs = [
        plots.gap_curves(df, paper=block, others={"again": df}, note=report.provenance_note(df)),
        plots.loss_error_curves(df, paper=block),
        plots.training_curves(report.training_history(df)),
        plots.margin_distributions(df),
        plots.prob_loss_histograms(df),
        plots.sv_std_per_layer(df),
        plots.loss_variation_curves(df, paper=paper.wide(1, dataset="cifar10")),
        plots.pgd_accuracy_curve(df, paper=compare.paper_pgd_series()),
        plots.spectral_grid_gaps(pd.concat([df.assign(spectral_norm=1.0), df], ignore_index=True)),
        plots.spectral_complexity(df),
        plots.bound_terms_plot(report.bound_table(df)),
    ]
    for e in sorted(df["eps"].unique()):
        figs += [plots.margins_at(df, e), plots.prob_loss_at(df, e), plots.sv_std_at(df, e), plots.loss_variation_at(df, e)]
    for f in figs:
        assert isinstance(f, Figure)
        f.savefig(tmp_path / "f.png")  # draws without error


def test_speed_bound_levers_and_quality_from_a_hand_made_results_file(tmp_path):
    p = tmp_path / "training.json"
    main = {
        "threads": 2,
        "flops": {"per_image_per_step": 1e9},
        "matmul_peak_gflops": {"threads_2": {"float32": 200.0, "bfloat16": 400.0}},
        "loops": {
            "peer": {"images_per_s": 10.0, "ratio_vs_peer": 1.0, "gflops_per_s": 100.0},
            "arlib": {
                "images_per_s": 20.0,
                "ratio_vs_peer": 2.0,
                "gflops_per_s": 200.0,
                "conv_share_of_op_time": 0.8,
                "conv_gflops_per_s": 300.0,
                "ceiling_ratio_vs_peer_convs_only": 2.5,
            },
        },
    }
    runs = [
        {"loop": loop, "seed": seed, "train_acc": acc, "test_acc": acc, "pgd_acc_all": acc, "pgd_acc_correct": acc, "train_seconds": 1.0}
        for loop, accs in (("peer", (40.0, 44.0)), ("arlib", (42.0, 42.0)))
        for seed, acc in enumerate(accs)
    ]
    p.write_text(
        json.dumps(
            {
                "main_net": main,
                "main_net_1thread_loaded_machine": main,
                "levers_net": {"net": "net", "loops": {"peer": {"threads": 2, "images_per_s": 10.0, "gflops_per_s": 100.0, "ratio_vs_first": 1.0}}},
                "quality_x": {"net": "net", "n_train": 500, "n_test": 1000, "epochs": 40, "eps": 8, "runs": runs},
                "machine_last_run": {"cpu": "x"},
            }
        )
    )
    bound = speed.bound(p)
    # 400 / 100 = 4.00x at the bf16 peak; 75% of the bf16 peak for the convs; the loaded-machine copy is not repeated
    assert bound.count("**net**") == 1 and "4.00× the peer" in bound and "(75% of the bf16 peak)" in bound and "2.50× the peer" in bound
    assert list(speed.summary(p).index) == ["net", "net_1thread_loaded_machine"]
    assert speed.levers(p).loc[("net", "peer"), "img/s"] == 10.0
    q = speed.quality(p)
    assert q.loc[("quality_x", "peer"), "test_acc"] == "42.0 ± 2.8" and q.loc[("quality_x", "arlib"), "test_acc"] == "42.0 ± 0.0"


def test_ledger_counts_collapsed_seeds(tmp_path):
    from arlib.book import claims

    store = Store(tmp_path / "smoke")
    cfgs = [c for c in report.cells("smoke", "pgd", eps_grid=[4, 16], seeds=[0, 1, 2], with_claim_seeds=False) if c.adv.eps > 0]
    for c in cfgs:
        dead = c.adv.eps == 16 and c.train.seed == 1
        fake_run(
            store,
            c,
            delta_loss=0.0 if dead else (0.5 if c.adv.eps == 4 else 0.1) + 0.01 * c.train.seed,
            train_acc=10.0 if dead else 90.0,
            train_loss=float(np.log(10)) if dead else 0.5,
        )
    df = report.collect("smoke", "pgd", store=store, ensure=False, eps_grid=[4, 16], seeds=[0, 1, 2], with_claim_seeds=False)
    t = claims.compare(df, "delta_loss", -1, 4, 16)
    assert t.hi[2] == 2 and t.collapsed == (0, 1)
    assert "3 seeds, 1 collapsed" in t.evidence() and t.verdict == "holds"


def test_layers_in_network_order():
    stored = ["blocks.0.conv1", "blocks.0.conv2", "blocks.1.conv1", "blocks.1.shortcut", "blocks.10.conv1", "blocks.2.conv1", "conv1", "fc"]
    assert report.network_order(stored) == [
        "conv1",
        "blocks.0.conv1",
        "blocks.0.conv2",
        "blocks.1.conv1",
        "blocks.1.shortcut",
        "blocks.2.conv1",
        "blocks.10.conv1",
        "fc",
    ]


def test_split_constant_columns():
    df = pd.DataFrame({"run": ["a", "b"], "augment": [False, False], "lr": [0.05, 0.1]})
    varying, same = report.split_constant(df)
    assert list(varying.columns) == ["run", "lr"] and same == "augment False"
    assert report.split_constant(df.iloc[:1])[1] == ""  # one row: nothing is "constant"


def test_commits_note_groups_rows_by_commit_and_explains_dirty():
    df = pd.DataFrame({"run": ["r1", "r2", "r3"], "commit": ["abc1234", "def5678+dirty", "abc1234"]})
    note = report.commits_note(df)
    assert note.startswith("Trained at commit abc1234: r1, r3; commit def5678+dirty: r2.")
    assert "+dirty: trained from a checkout whose arlib/ had uncommitted changes" in note
    assert "+dirty:" not in report.commits_note(df.iloc[[0, 2]])
    assert report.commits_note(df.drop(columns="commit")) == ""


def test_provenance_note_explains_data_precision_and_dirty():
    df = pd.DataFrame(
        {
            "hash": ["a" * 16],
            "short": ["aaaaaaaa"],
            "profile": ["cpu"],
            "dataset": ["cifar10"],
            "commit": ["42118c0abc+dirty"],
            "data_source": ["tarball:cifar10-jpeg.tar.gz"],
            "precision": ["bf16"],
        }
    )
    note = report.provenance_note(df)
    assert "commit 42118c0+dirty" in note and "+dirty: trained from a checkout whose arlib/ had uncommitted changes" in note
    assert "the archive cifar10-jpeg.tar.gz (JPEG re-encoded images" in note and "bf16 autocast" in note


def test_collapse_evidence_sets_zero_initialised_layers_beside_healthy_runs(tmp_path):
    store = Store(tmp_path / "cpu")
    cfgs = [c for c in report.cells("smoke", "pgd", eps_grid=[16], seeds=[0, 1, 2], with_claim_seeds=False) if c.adv.eps == 16]
    norms = [
        {"conv1": 2.0, "blocks.0.conv2": 1.5, "fc": 1.2},
        {"conv1": 1.8, "blocks.0.conv2": 0.1, "fc": 0.02},
        {"conv1": 2.2, "blocks.0.conv2": 1.7, "fc": 1.4},
    ]
    for cfg, n in zip(cfgs, norms):
        dead = n["fc"] < 0.1
        run = fake_run(store, cfg, 0.0, train_acc=10.0 if dead else 30.0, train_loss=float(np.log(10)) if dead else 2.0)
        summary, arrays = run.analysis()
        summary["spectral"]["spectral_norms"] = n
        run.save_analysis(summary, arrays)
    ev = report.collapse_evidence(["cpu"], root=tmp_path)
    assert len(ev) == 1
    r = ev.iloc[0]
    assert r["seed"] == 1 and r["fc"] == 0.02 and r["branch conv2"] == 0.1 and r["other layers"] == 1.8
    assert r["healthy runs (n)"] == 2 and r["healthy: fc"] == pytest.approx(1.3) and r["healthy: branch conv2"] == pytest.approx(1.6)
    assert report.collapse_evidence(["nothing"], root=tmp_path).empty


def test_target_binding_counts_the_layers_each_target_clips():
    df = pd.DataFrame(
        {
            "eps": [4.0, 4.0, 4.0, 16.0],
            "spectral_norm": [None, None, 1.0, None],
            "spectral_norms": [{"a": 1.0, "b": 3.0}, {"a": 3.0, "b": 5.0}, {"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.9}],
        }
    )
    t = report.target_binding(df, (1, 3, 5))
    # eps 4: layer means a = 2, b = 4 (the clipped run is not a baseline); eps 16: nothing above 1.
    assert list(t.index) == [4.0, 16.0] and list(t["runs"]) == [2, 1]
    assert list(t.loc[4.0, ["SP 1 binds", "SP 3 binds", "SP 5 binds"]]) == ["2 / 2", "1 / 2", "0 / 2"]
    assert t.loc[16.0, "SP 1 binds"] == "0 / 2" and t.loc[4.0, "max norm"] == 4.0
