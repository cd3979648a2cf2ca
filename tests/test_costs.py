import pytest

from arlib import costs, profiles


def test_resnet56_forward_flops_match_hand_count():
    # Hand count of ResNet-56 with the paper's parameter-free (option A) shortcuts, 2 FLOPs
    # per multiply-add: stem 3->16 at 32x32, 18 convs 16->16 at 32x32, then per stage one
    # stride-2 conv and 17 convs at the halved size, and the 64->10 classifier.
    conv = lambda cin, cout, k, hw: 2 * cin * cout * k * k * hw * hw  # noqa: E731
    total = conv(3, 16, 3, 32) + 18 * conv(16, 16, 3, 32)
    total += conv(16, 32, 3, 16) + 17 * conv(32, 32, 3, 16)
    total += conv(32, 64, 3, 8) + 17 * conv(64, 64, 3, 8)
    total += 2 * 64 * 10
    assert costs.forward_flops("resnet56", "cifar10") == pytest.approx(total, rel=1e-6)


def test_step_flops_count_attack_and_training_passes():
    cfg = profiles.get("paper").base("cifar10").replace(adv={"method": "pgd", "eps": 8, "steps": 10})
    attack = costs.pass_flops("resnet56", "cifar10", False)
    train = costs.pass_flops("resnet56", "cifar10", True)
    assert train > attack > costs.forward_flops("resnet56", "cifar10")
    assert costs.step_flops(cfg) == pytest.approx(10 * attack + train)


def test_paper_grid_matches_the_papers_tables():
    df = costs.grid_cost("paper")
    # Tables 3/4 (ResNet-56 eps 0,4,8,16 and ResNet-110 4,8,16 on CIFAR-10/100), Table 2 (FGSM on
    # CIFAR-10/100), Table 6 (SP 1,3,5 x 3 on CIFAR-10), Table 5 (WRN-50-2, 4 strengths).
    assert len(df) == 2 * (4 + 3 + 3) + 9 + 4
    assert set(df[df.dataset == "tinyimagenet"].experiment) == {"pgd"}
    assert (df.filter(like="GPU-h").to_numpy() > 0).all()
