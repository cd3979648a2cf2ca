import pytest
import torch

from arlib import models


@pytest.mark.parametrize("name, expected", [("resnet56", 0.85e6), ("resnet110", 1.7e6)])
def test_parameter_counts(name, expected):
    # He et al. 2016, Table 6: ResNet-56 0.85M, ResNet-110 1.7M parameters.
    n = models.count_parameters(models.create(name, num_classes=10))
    assert abs(n - expected) / expected < 0.03, n


def test_wrn50_2_shape_and_size():
    net = models.create("wrn50_2", num_classes=200)
    n = models.count_parameters(net)
    assert 66e6 < n < 68e6  # WRN-50-2 with a 3x3 stem and 200 classes
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 3, 56, 56)).shape == (1, 200)


def test_fixup_blocks_are_identity_at_init():
    torch.manual_seed(0)
    net = models.create("resnet20", num_classes=10).eval()
    x = torch.rand(4, 3, 32, 32)
    seen = []

    def check(block, inp, out):
        (i,) = inp
        expected = i if block.shortcut is None else torch.relu(block.shortcut(i))
        seen.append(torch.allclose(out, expected, atol=1e-6))

    for b in net.blocks:
        b.register_forward_hook(check)
    with torch.no_grad():
        logits = net(x)
    assert len(seen) == 9 and all(seen)
    assert torch.count_nonzero(logits) == 0  # Fixup: classifier initialised to zero


def test_no_batchnorm_unless_asked():
    net = models.create("resnet56")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in models.create("resnet56", bn=True).modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in net.modules())


def test_normalisation_inside_model():
    net = models.create("resnet8", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x = torch.full((1, 3, 4, 4), 0.75)
    assert torch.allclose(net.normalize(x), torch.ones_like(x))


def test_unknown_model():
    from arlib.errors import ConfigError

    with pytest.raises(ConfigError):
        models.create("resnet57")
