import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arlib import data
from arlib.config import DataConfig
from conftest import needs_cifar10


@needs_cifar10
def test_cifar10_class_order_and_sizes(cifar10):
    # CIFAR-10's own label order is alphabetical (batches.meta): airplane=0 ... truck=9.
    assert cifar10.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert tuple(cifar10.train.images.shape) == (50000, 3, 32, 32)
    assert tuple(cifar10.test.images.shape) == (10000, 3, 32, 32)
    assert cifar10.train.images.dtype == torch.uint8
    assert torch.bincount(cifar10.train.labels).tolist() == [5000] * 10
    assert torch.bincount(cifar10.test.labels).tolist() == [1000] * 10
    assert len(cifar10.fingerprint) == 16


def test_balanced_indices_balance_and_determinism():
    labels = np.repeat(np.arange(5), [30, 40, 50, 60, 70])
    rng = np.random.default_rng(1)
    labels = rng.permutation(labels)
    a = data.balanced_indices(labels, 20, seed=3)
    b = data.balanced_indices(labels, 20, seed=3)
    c = data.balanced_indices(labels, 20, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.bincount(labels[a]).tolist() == [20] * 5
    assert len(np.unique(a)) == len(a)
    with pytest.raises(ValueError):
        data.balanced_indices(labels, 31, seed=0)


@needs_cifar10
def test_prepare_subset_is_balanced():
    ds = data.prepare(DataConfig("cifar10", train_per_class=7, test_per_class=3))
    assert torch.bincount(ds.train.labels).tolist() == [7] * 10
    assert torch.bincount(ds.test.labels).tolist() == [3] * 10


def _is_crop_of_padded(out: torch.Tensor, img: torch.Tensor, pad: int) -> bool:
    """Independent check: out equals some (flipped) crop of the zero-padded image."""
    padded = F.pad(img, (pad, pad, pad, pad))
    h, w = img.shape[-2:]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            if torch.equal(crop, out) or torch.equal(crop.flip(-1), out):
                return True
    return False


def test_random_crop_flip_is_a_padded_crop():
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(1, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = data.random_crop_flip(imgs, pad=2, generator=g)
    assert out.shape == imgs.shape and out.dtype == torch.uint8
    for i in range(len(imgs)):
        assert _is_crop_of_padded(out[i], imgs[i], 2)
    # Over a large batch, flips and shifts both occur (not the identity every time).
    many = data.random_crop_flip(imgs.repeat(16, 1, 1, 1), pad=2, generator=g)
    assert sum(not torch.equal(many[i], imgs[i % 16]) for i in range(len(many))) > 100


def test_cifar_train_transform_range_and_test_transform_identity():
    imgs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    x = data.train_transform("cifar10")(imgs, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal(data.test_transform("cifar10")(imgs), imgs.float() / 255)


def test_tinyimagenet_transforms():
    imgs = torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8)
    x = data.train_transform("tinyimagenet")(imgs, torch.Generator().manual_seed(0))
    assert x.shape == (6, 3, 56, 56) and 0 <= x.min() and x.max() <= 1
    t = data.test_transform("tinyimagenet")(imgs)
    assert torch.equal(t, imgs[:, :, 4:60, 4:60].float() / 255)


def test_missing_dataset_message(tmp_path, monkeypatch):
    monkeypatch.delenv("ARLIB_DATA", raising=False)
    monkeypatch.setenv("ARLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "candidate_roots", lambda root: [tmp_path / "nothing"])
    with pytest.raises(data.DataNotFoundError) as e:
        data.load_dataset("cifar100", download=False)
    msg = str(e.value)
    assert "cifar100" in msg and str(tmp_path / "nothing") in msg and "\n" not in msg


def test_imagefolder_and_tinyimagenet_layouts(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("ARLIB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    # a tiny-imagenet-200 tree with 2 classes
    root = tmp_path / "d" / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for k, w in enumerate(wnids):
        (root / "train" / w / "images").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "train" / w / "images" / f"{w}_{i}.JPEG")
        for i in range(2):
            name = f"val_{k}_{i}.JPEG"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "val" / "images" / name)
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    (root / "wnids.txt").write_text("\n".join(wnids))
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines))
    ds = data.load_dataset("tinyimagenet", tmp_path / "d", download=False)
    assert ds.classes == tuple(wnids) and ds.train.images.shape == (6, 3, 64, 64)
    assert ds.test.labels.tolist() == [0, 0, 1, 1]
    # generic imagefolder
    ifroot = tmp_path / "if"
    for split in ("train", "test"):
        for c in ("b", "a"):
            (ifroot / split / c).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(ifroot / split / c / "x.png")
    ds = data.load_dataset("imagefolder", ifroot, download=False)
    assert ds.classes == ("a", "b") and len(ds.train) == 2
