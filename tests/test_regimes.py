import math

from arlib.regimes import REGIMES, is_collapsed, is_degenerate, is_diverged


def test_constant_classifier_is_collapsed():
    # The low-capacity eps-16 seed-1 run of the first cpu grid: 10 % train and test, loss 2.303.
    assert is_collapsed({"train_acc": 10.0, "train_loss": 2.3026}, 10)
    assert is_collapsed({"train_acc": 11.9, "train_loss": math.log(10) * 1.019}, 10)


def test_weak_but_learning_runs_are_not_collapsed():
    # Near-chance accuracy with a loss well below ln K, or a loss near ln K with accuracy off chance.
    assert not is_collapsed({"train_acc": 12.5, "train_loss": 2.303}, 10)
    assert not is_collapsed({"train_acc": 10.0, "train_loss": 2.20}, 10)
    assert not is_collapsed({"train_acc": 20.3, "train_loss": 2.25}, 10)
    # 100 classes: chance 1 %, ln 100 = 4.605.
    assert is_collapsed({"train_acc": 1.0, "train_loss": 4.6}, 100)
    assert not is_collapsed({"train_acc": 5.0, "train_loss": 4.6}, 100)


def test_missing_metrics_are_not_collapsed():
    assert not is_collapsed({}, 10)
    assert not is_collapsed({"train_acc": float("nan"), "train_loss": 2.3}, 10)


def test_regimes_name_existing_profiles():
    from arlib import profiles

    assert [r.profile for r in REGIMES] == ["cpu", "cpu-high"]
    assert all(r.profile in profiles.PROFILES or r.profile == "cpu-high" for r in REGIMES)


def test_diverged_runs_are_degenerate():
    assert is_diverged({"train_acc": 10.0, "train_loss": float("nan"), "test_loss": float("nan")})
    assert is_diverged({"train_loss": 0.5, "test_loss": float("inf")})
    assert not is_diverged({"train_loss": 0.5, "test_loss": 2.0}) and not is_diverged({})
    assert is_degenerate({"train_acc": 10.0, "train_loss": float("nan"), "test_loss": float("nan")}, 10)
    assert is_degenerate({"train_acc": 10.0, "train_loss": 2.3026, "test_loss": 2.3026}, 10)
    assert not is_degenerate({"train_acc": 60.0, "train_loss": 1.0, "test_loss": 2.0}, 10)
