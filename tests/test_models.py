import pytest
import torch

from arlib import models


@pytest.mark.parametrize("name, expected", [("resnet20", 0.27e6), ("resnet56", 0.85e6), ("resnet110", 1.7e6)])
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_parameter_counts(name, expected, shortcut):
    # He et al. 2016, Table 6 (option A): ResNet-20 0.27M, ResNet-56 0.85M, ResNet-110 1.7M parameters.
    n = models.count_parameters(models.create(name, num_classes=10, shortcut=shortcut))
    assert abs(n - expected) / expected < 0.03, n


def test_registry_builders_take_the_same_keywords():
    import inspect

    for name, build in models.registry().items():
        params = set(inspect.signature(build).parameters)
        assert {"num_classes", "bn", "width", "shortcut", "mean", "std"} <= params, name


def test_wrn50_2_shape_and_size():
    net = models.create("wrn50_2", num_classes=200)
    n = models.count_parameters(net)
    assert 66e6 < n < 68e6  # WRN-50-2 with a 3x3 stem and 200 classes
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 3, 56, 56)).shape == (1, 200)


def _circular_conv_count(net):
    return sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())


@pytest.mark.parametrize("depth", [8, 20, 56, 110])
def test_option_a_layer_counts(depth):
    # Option A (the paper's): depth - 2 branch convs + the stem, no shortcut convs;
    # option B adds one 1x1 conv at each of the two stage transitions.
    a, b = models.create(f"resnet{depth}"), models.create(f"resnet{depth}", shortcut="B")
    assert _circular_conv_count(a) == depth - 1
    assert _circular_conv_count(b) == depth + 1
    assert sum(isinstance(m, torch.nn.Linear) for m in a.modules()) == 1


def test_resnet56_b2_layer_count_matches_paper():
    # The paper's B.2 sums: 4.7465 / 0.1158 ~ 41 layers in group 1 and 0.4372 / 0.0312 ~ 14 in group 2
    # (CIFAR-10, eps 4): 55 analysed layers. The spectral analysis must see 55 convs (+ the classifier).
    from arlib import spectral

    net = models.create("resnet56")
    sizes = spectral.record_input_sizes(net, torch.zeros(1, 3, 32, 32))
    assert len(sizes) == round(4.7465 / 0.1158) + round(0.4372 / 0.0312) == 55
    svs = spectral.layer_singular_values(net, sizes)
    assert sum(1 for name in svs if name != "fc") == 55


def test_option_a_shortcut_is_subsample_and_zero_channels():
    # Independent reference: the Fixup code's AvgPool2d(1, stride=2) followed by cat with zeros.
    block = models.create("resnet20").blocks[3]
    x = torch.randn(2, 16, 8, 8)
    ref = torch.cat([torch.nn.AvgPool2d(1, stride=2)(x), torch.zeros(2, 16, 4, 4)], 1)
    assert torch.equal(block.shortcut(x), ref)


def test_fixup_init_follows_reference():
    # hongyi-zhang/Fixup: branch conv1 ~ N(0, 2 / (c_out k^2)) * L^-0.5 (fan_out), conv2 and fc zero.
    torch.manual_seed(0)
    net = models.create("resnet110", width=2)
    L = 54
    w = torch.cat([b.conv1.weight.flatten() for b in net.blocks if b.conv1.weight.shape[0] == 128])
    expected = (2 / (128 * 9)) ** 0.5 * L**-0.5
    assert abs(w.std().item() / expected - 1) < 0.02
    assert all(torch.count_nonzero(b.conv2.weight) == 0 for b in net.blocks)


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
