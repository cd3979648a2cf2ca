import pytest
import torch
import torch.nn.functional as F

from arlib import models
from arlib.attacks import fgsm, pgd
from arlib import data as arlib_data
from conftest import needs_cifar10


def _random_net(seed=0, bn=False):
    torch.manual_seed(seed)
    net = models.create("resnet8", num_classes=10, bn=bn)
    for p in net.parameters():  # Fixup zero-inits branches and classifier: give them weights
        if p.dim() > 1:
            torch.nn.init.normal_(p, 0, 0.1)
    return net


def test_pgd_and_fgsm_stay_in_ball_and_box():
    net = _random_net()
    x = torch.rand(8, 3, 32, 32)
    y = torch.randint(0, 10, (8,))
    for eps in (1 / 255, 8 / 255, 16 / 255):
        for adv in (pgd(net, x, y, eps, 2 / 255, 5), fgsm(net, x, y, eps)):
            assert (adv - x).abs().max() <= eps + 1e-6
            assert adv.min() >= 0 and adv.max() <= 1


def test_attack_mode_and_no_parameter_gradients():
    net = _random_net(bn=True).train()
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    modes = []
    net.register_forward_pre_hook(lambda m, i: modes.append(m.training))
    pgd(net, x, y, 8 / 255, 2 / 255, 3, mode="eval")
    assert modes and not any(modes)  # attacked in eval mode
    assert net.training  # mode restored
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())
    modes.clear()
    fgsm(net.eval(), x, y, 8 / 255, mode="train")
    assert all(modes) and not net.training
    with pytest.raises(ValueError):
        pgd(net, x, y, 8 / 255, 2 / 255, 1, mode="test")


def test_zero_eps_returns_input():
    net = _random_net()
    x, y = torch.rand(2, 3, 32, 32), torch.randint(0, 10, (2,))
    assert torch.equal(pgd(net, x, y, 0, 2 / 255, 10), x)
    assert torch.equal(fgsm(net, x, y, 0), x)


@pytest.fixture(scope="module")
def trained(cifar10):
    """A ResNet-8 trained briefly on 500 real CIFAR-10 images (clean training)."""
    from arlib.data import balanced_indices

    torch.manual_seed(0)
    idx = balanced_indices(cifar10.train.labels, 50, seed=0)
    x = arlib_data.test_transform("cifar10")(cifar10.train.images[idx])
    y = cifar10.train.labels[idx]
    net = models.create("resnet8", num_classes=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(8):
        perm = torch.randperm(len(y))
        for s in range(0, len(y), 50):
            b = perm[s : s + 50]
            loss = F.cross_entropy(net(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    tidx = balanced_indices(cifar10.test.labels, 20, seed=1)
    return net.eval(), arlib_data.test_transform("cifar10")(cifar10.test.images[tidx]), cifar10.test.labels[tidx]


@needs_cifar10
def test_loss_ordering_on_trained_model(trained):
    net, x, y = trained
    eps = 4 / 255
    with torch.no_grad():
        clean = F.cross_entropy(net(x), y).item()
        l_fgsm = F.cross_entropy(net(fgsm(net, x, y, eps)), y).item()
        l_pgd = F.cross_entropy(net(pgd(net, x, y, eps, 1 / 255, 10)), y).item()
    assert l_pgd >= l_fgsm >= clean


@needs_cifar10
def test_pgd_agrees_with_torchattacks(trained):
    torchattacks = pytest.importorskip("torchattacks")
    net, x, y = trained
    eps, alpha = 8 / 255, 2 / 255
    torch.manual_seed(1)
    ours = pgd(net, x, y, eps, alpha, 10)
    torch.manual_seed(1)
    theirs = torchattacks.PGD(net, eps=eps, alpha=alpha, steps=10, random_start=True)(x, y)
    with torch.no_grad():
        acc_ours = (net(ours).argmax(1) == y).float().mean().item()
        acc_theirs = (net(theirs).argmax(1) == y).float().mean().item()
        loss_ours = F.cross_entropy(net(ours), y).item()
        loss_theirs = F.cross_entropy(net(theirs), y).item()
    # Same random start, same steps: the two must agree up to float noise in the sign of tiny gradients.
    assert abs(acc_ours - acc_theirs) <= 0.03
    assert abs(loss_ours - loss_theirs) <= 0.05 * max(loss_theirs, 1e-3)
    assert (ours - theirs).abs().gt(1e-4).float().mean() < 0.05
