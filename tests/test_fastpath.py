"""The fast path (bf16 autocast + channels_last) computes the same function as the fp32 path.

Training uses bf16 autocast on CPUs with native bf16 (fp32 master weights, fp32
loss) and channels_last; the attacks run under the same autocast. These tests
check, on a weight-randomised Fixup ResNet-8, that predictions agree within
bf16 tolerance, that PGD from the fast path respects the eps-ball and [0, 1],
that the attack is as strong as in fp32, and that a training step's gradient
and update match fp32's. Autocast is exercised even on CPUs without native
bf16 (it is emulated there: slower, same numerics), so this runs anywhere.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from arlib import data, device, models, profiles, train
from arlib import networks
from arlib.attacks import fgsm, pgd
from arlib.config import standard_adv
from arlib.models import resnet_cifar

CPU = torch.device("cpu")
BF16 = torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def _net(seed: int = 0) -> torch.nn.Module:
    """ResNet-8 whose Fixup zero-inits are filled in (He-scaled like each branch's first conv)."""
    torch.manual_seed(seed)
    mean, std = data.STATS["cifar10"]
    net = models.create("resnet8", num_classes=10, mean=mean, std=std)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, resnet_cifar.BasicBlock):
                m.conv2.weight.normal_(0, float(m.conv1.weight.std()))
            if isinstance(m, resnet_cifar.Bias):
                m.bias.normal_(0, 0.1)
        net.fc.reset_parameters()
    return net


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these small nets do not gain from more, and a shared machine's load stalls them."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def batch():
    """64 real CIFAR-10 test images when available, else random ones."""
    try:
        ds = data.load_dataset("cifar10", download=False)
        idx = data.balanced_indices(ds.test.labels, 7, seed=0)[:64]
        return data.to_float(ds.test.images[idx]), ds.test.labels[idx]
    except Exception:
        g = torch.Generator().manual_seed(0)
        return torch.rand(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)


@pytest.fixture(scope="module")
def trained(batch):
    """The ResNet-8 of :func:`_net` after 20 quick fp32 SGD steps on 256 other images (real when available)."""
    try:
        ds = data.load_dataset("cifar10", download=False)
        idx = data.balanced_indices(ds.train.labels, 26, seed=0)[:256]
        xs, ys = data.to_float(ds.train.images[idx]), ds.train.labels[idx]
    except Exception:
        g = torch.Generator().manual_seed(1)
        xs, ys = torch.rand(256, 3, 32, 32, generator=g), torch.randint(0, 10, (256,), generator=g)
    net = _net().train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        perm = torch.randperm(256, generator=g)
        for s in range(0, 256, 64):
            b = perm[s : s + 64]
            opt.zero_grad()
            F.cross_entropy(net(xs[b]), ys[b]).backward()
            opt.step()
    return net.eval()


def _fast(net: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(net).to(memory_format=torch.channels_last)


@pytest.mark.parametrize("which", ["randomised", "trained"])
def test_fast_path_computes_the_same_function(batch, trained, which):
    x, _ = batch
    net = _net().eval() if which == "randomised" else trained
    fast = _fast(net).eval()
    with torch.no_grad():
        ref = net(x)
        with BF16:
            out = fast(x.contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.bfloat16
    out = out.float()
    scale = ref.abs().max()
    assert scale > 0.1  # a non-trivial function
    # bf16 has an 8-bit mantissa (relative rounding 2^-9 per op): allow 2% of the logit scale,
    # worst case over the batch and the classes (measured: ~0.4%).
    tol = 0.02 * scale
    assert (out - ref).abs().max() <= tol
    # Same predictions: everywhere fp32's top-1 margin exceeds twice that tolerance, and overall.
    top2 = ref.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * tol
    assert clear.float().mean() > 0.5
    assert torch.equal(out.argmax(1)[clear], ref.argmax(1)[clear])
    assert (out.argmax(1) == ref.argmax(1)).float().mean() >= 0.95


@pytest.mark.parametrize("eps", [4 / 255, 8 / 255, 16 / 255])
def test_fast_path_pgd_stays_in_ball_and_box(batch, eps):
    x, y = batch
    fast = _fast(_net())
    xc = x.contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    for mode in ("train", "eval"):
        adv = pgd(fast, xc, y, eps, 2 / 255, 5, mode=mode, generator=g, autocast=BF16)
        assert adv.dtype == torch.float32 and adv.shape == x.shape
        assert (adv - x).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    adv = fgsm(fast, xc, y, eps, autocast=BF16)
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert all(p.grad is None and p.requires_grad and p.dtype == torch.float32 for p in fast.parameters())


def test_fast_path_attack_is_as_strong_as_fp32(batch, trained):
    x, y = batch
    net = trained
    fast = _fast(net)
    eps, alpha = 8 / 255, 2 / 255

    def fp32_loss(z):
        with torch.no_grad():
            return F.cross_entropy(net.eval()(z), y).item()

    clean = fp32_loss(x)
    adv32 = pgd(net, x, y, eps, alpha, 10, generator=torch.Generator().manual_seed(1))
    adv16 = pgd(fast, x.contiguous(memory_format=torch.channels_last), y, eps, alpha, 10, generator=torch.Generator().manual_seed(1), autocast=BF16)
    noise = (x + eps * torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).sign()).clamp(0, 1)
    gain32, gain16, gain_noise = fp32_loss(adv32) - clean, fp32_loss(adv16) - clean, fp32_loss(noise) - clean
    assert gain32 > 0.05 and gain32 > 5 * abs(gain_noise)  # a real attack, far above random sign noise
    # Judged by the fp32 model: the bf16-crafted examples raise the loss as much (measured: equal to 4 digits).
    assert gain16 >= 0.9 * gain32
    # Most pixels end on the same side of the ball (PGD's iterates saturate at +-eps).
    assert ((adv16 - adv32).abs() < 1e-3).float().mean() > 0.5


def test_fast_path_training_step_matches_fp32(batch):
    x, y = batch
    net = _net().train()
    fast = _fast(net).train()
    F.cross_entropy(net(x), y).backward()
    with BF16:
        logits = fast(x.contiguous(memory_format=torch.channels_last))
    loss = F.cross_entropy(logits.float(), y)  # the loss in fp32, as train_epoch computes it
    loss.backward()
    g32 = torch.cat([p.grad.flatten() for p in net.parameters()])
    g16 = torch.cat([p.grad.flatten() for p in fast.parameters()])
    assert all(p.grad.dtype == torch.float32 for p in fast.parameters())  # fp32 master weights and grads
    cos = F.cosine_similarity(g32, g16, dim=0).item()
    assert cos > 0.99
    assert abs(g16.norm() / g32.norm() - 1) < 0.05


def test_train_epoch_fast_and_fp32_agree(batch):
    """arlib's own training epoch (PGD-3, batch 32) with bf16+channels_last vs fp32: same loss, close weights."""
    x, y = batch
    split = data.Split((x * 255).round().to(torch.uint8), y)
    base = (
        profiles.get("smoke")
        .base("cifar10")
        .replace(model={"name": "resnet8"}, data={"augment": False}, adv=standard_adv(8, "pgd", steps=3), train={"batch_size": 32, "lr": 0.01})
    )
    out, weights = {}, {}
    for name, overrides in (("fp32", {"precision": "fp32", "channels_last": False}), ("fast", {"precision": "bf16", "channels_last": True})):
        cfg = base.replace(train=overrides)
        model = networks.build_model(cfg, 10, CPU)
        model.load_state_dict(_net().state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum)
        autocast = device.autocast_for(cfg.train.precision, CPU)
        out[name] = train.train_epoch(model, opt, split, cfg, torch.Generator().manual_seed(0), CPU, autocast)
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
        assert all(p.dtype == torch.float32 for p in model.parameters())
        if cfg.train.channels_last:
            assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert abs(out["fast"]["train_running_loss"] - out["fp32"]["train_running_loss"]) < 0.05 * out["fp32"]["train_running_loss"]
    start = torch.cat([p.detach().flatten() for p in _net().parameters()])
    d32, d16 = weights["fp32"] - start, weights["fast"] - start
    assert F.cosine_similarity(d32, d16, dim=0).item() > 0.95


def test_precision_resolution():
    assert device.resolve_precision("fp32", CPU) == "fp32"
    assert device.resolve_precision("bf16", CPU) == "bf16"
    assert device.resolve_precision("auto", CPU) == ("bf16" if device.cpu_has_bf16() else "fp32")
    assert device.autocast_for("fp32", CPU) is None
    ac = device.autocast_for("bf16", CPU)
    assert ac.fast_dtype == torch.bfloat16 and ac.device == "cpu"


def test_activations_stay_bf16_under_autocast_and_the_head_is_the_spatial_mean(batch):
    """Fixup's float32 scalar biases must not promote bf16 activations to float32 (each elementwise
    op would move twice the bytes); the pooling head is the plain spatial mean of the last block."""
    x, _ = batch
    net = _net().to(memory_format=torch.channels_last)
    dtypes, last = [], {}
    for m in net.modules():
        if isinstance(m, (resnet_cifar.BasicBlock, resnet_cifar.Bias)):
            m.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    net.blocks[-1].register_forward_hook(lambda mod, inp, out: last.update(out=out))
    with torch.no_grad(), BF16:
        net(x.contiguous(memory_format=torch.channels_last))
    assert dtypes and set(dtypes) == {torch.bfloat16}
    with torch.no_grad():
        feats = net.features(x)
    reference = last["out"].double().mean(dim=(2, 3))  # independent: a float64 mean of the same activations
    torch.testing.assert_close(feats.double(), reference, rtol=1e-5, atol=1e-6)


def test_pooling_backward_keeps_channels_last(batch):
    """The gradient reaching the last block's output is channels_last, as the activations are
    (a layout mismatch makes the ReLU backward and the conv backward reorder every step)."""
    x, y = batch
    net = _net().to(memory_format=torch.channels_last)
    seen = {}
    net.blocks[-1].register_full_backward_hook(lambda mod, gin, gout: seen.update(g=gout[0]))
    with BF16:
        loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)).float(), y)
    loss.backward()
    assert seen["g"].is_contiguous(memory_format=torch.channels_last)


def test_allocator_tuning_is_applied_on_glibc_and_can_be_turned_off(monkeypatch):
    import platform

    monkeypatch.setenv("ARLIB_MALLOC_TUNING", "0")
    assert device.tune_cpu_allocator() is False
    monkeypatch.delenv("ARLIB_MALLOC_TUNING")
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert device.tune_cpu_allocator() is True
