"""Datasets as uint8 tensors, class-balanced subsets and batched augmentation.

Every dataset is decoded once into ``uint8`` arrays (N, C, H, W) and cached as
``.npy`` files next to a small JSON with the class names and a fingerprint
(SHA-256 of the decoded pixels and labels). Training then augments whole
batches on tensors (Appendix D.1), on the GPU when there is one.

Where data is looked for, in order: the ``root`` argument, ``$ARLIB_DATA``,
the per-user cache directory (``platformdirs.user_cache_dir("arlib")``).
Under a root, a dataset may be present as

* ``cifar10`` / ``cifar100``: torchvision's ``cifar-10-batches-py`` /
  ``cifar-100-python`` folders, an ImageFolder tree ``cifar10/{train,test}/<class>/``,
  or the tarball ``cifar10-jpeg.tar.gz`` holding such a tree (unpacked once into the cache,
  keyed by the archive's SHA-256, so a replaced archive is unpacked anew);
* ``tinyimagenet``: the official ``tiny-imagenet-200`` layout
  (``train/<wnid>/images/*.JPEG``, ``val/images`` + ``val/val_annotations.txt``);
* ``imagefolder``: any ``train/<class>/`` + ``test/<class>/`` tree at the root itself.

When none is found, CIFAR is downloaded with torchvision if the network allows;
otherwise :class:`~arlib.errors.DataNotFoundError` names the paths tried. A damaged
archive or image raises :class:`~arlib.errors.DamagedDataError` naming the file, and
leaves nothing half-unpacked in the cache; a cached array that no longer loads is
decoded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, DamagedDataError, DataNotFoundError
from .store import ENVIRONMENT_ERRNOS, pid_alive, remove_stale_tmp, sha256_file, storage_error, tmp_prefix

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean/std of the training sets, used by the model's input normalisation.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)),
    "imagefolder": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class Split:
    """One split of a dataset: uint8 images (N, C, H, W), int64 labels (N,) and, for a subset,
    the index of each image in the full split (None: the full split itself)."""

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> "Split":
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return Split(self.images[idx_t], self.labels[idx_t], self.positions()[idx_t])

    def positions(self) -> torch.Tensor:
        """The index of every image in the full split (which images a per-example outcome belongs to)."""
        return self.index if self.index is not None else torch.arange(len(self.labels))


@dataclass(frozen=True)
class Dataset:
    name: str
    classes: tuple[str, ...]
    train: Split
    test: Split
    fingerprint: str  # SHA-256 (16 hex) of the full decoded dataset, before subsetting
    source: str  # kind and file name of what it was read from, e.g. "tarball:cifar10-jpeg.tar.gz"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])


# ----------------------------------------------------------------------------- roots


def default_cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("ARLIB_CACHE", platformdirs.user_cache_dir("arlib")))


def candidate_roots(root: str | os.PathLike | None) -> list[Path]:
    """The directories searched for data, in order (argument, $ARLIB_DATA, cache)."""
    roots: list[Path] = []
    if root is not None:
        roots.append(Path(root).expanduser())
    if os.environ.get("ARLIB_DATA"):
        roots.append(Path(os.environ["ARLIB_DATA"]).expanduser())
    roots.append(default_cache_dir() / "data")
    # The workplace's shared folder next to a checkout (../shared/data), where
    # this project's machines and CI keep the CIFAR-10 images.
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    if shared.is_dir() and not os.environ.get("ARLIB_NO_SHARED"):
        roots.append(shared)
    seen, out = set(), []
    for r in roots:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def _missing(name: str, tried: list[Path], hint: str) -> DataNotFoundError:
    paths = "; ".join(str(p) for p in tried)
    return DataNotFoundError(f"dataset '{name}' not found (tried: {paths}). {hint}")


# ----------------------------------------------------------------------------- readers


def _read_image(path: Path) -> np.ndarray:
    """One image as uint8 (H, W, 3); DamagedDataError naming the file if it does not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            raise
        raise DamagedDataError(f"image {path} does not decode ({type(e).__name__}); replace it or the archive it came from") from None


def _read_imagefolder_split(split_dir: Path, classes: tuple[str, ...] | None = None):
    if classes is None:
        classes = tuple(sorted(d.name for d in split_dir.iterdir() if d.is_dir()))
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(f for f in (split_dir / cls).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        for f in files:
            images.append(_read_image(f))
            labels.append(label)
    if not images:
        raise DataNotFoundError(f"no images under {split_dir}")
    x = np.stack(images).transpose(0, 3, 1, 2).copy()
    return x, np.asarray(labels, dtype=np.int64), classes


def _read_cifar_batches(folder: Path, name: str):
    def load(path: Path):
        try:
            with open(path, "rb") as f:
                return pickle.load(f, encoding="latin1")
        except FileNotFoundError:
            raise DataNotFoundError(f"{name}: {path} is missing from {folder}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
            raise DamagedDataError(f"{name} batch file {path} is damaged ({type(e).__name__}); delete {folder} to download it again") from None

    if name == "cifar10":
        train = [load(folder / f"data_batch_{i}") for i in range(1, 6)]
        test = [load(folder / "test_batch")]
        key = "labels"
        meta = load(folder / "batches.meta")["label_names"]
    else:
        train, test = [load(folder / "train")], [load(folder / "test")]
        key = "fine_labels"
        meta = load(folder / "meta")["fine_label_names"]

    def stack(batches):
        x = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
        y = np.concatenate([np.asarray(b[key], dtype=np.int64) for b in batches])
        return x, y

    return stack(train), stack(test), tuple(meta)


def _read_tinyimagenet(folder: Path):
    wnids = tuple((folder / "wnids.txt").read_text().split())

    def read(files_labels):
        xs = [_read_image(f) for f, _ in files_labels]
        return np.stack(xs).transpose(0, 3, 1, 2).copy(), np.asarray([l for _, l in files_labels], dtype=np.int64)

    train = []
    for label, w in enumerate(wnids):
        for f in sorted((folder / "train" / w / "images").iterdir()):
            train.append((f, label))
    index = {w: i for i, w in enumerate(wnids)}
    val = []
    for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            val.append((folder / "val" / "images" / parts[0], index[parts[1]]))
    return read(train), read(val), wnids


# ----------------------------------------------------------------------------- locate + cache


def _locate(name: str, roots: list[Path]):
    """Return (kind, path) of the first source found for dataset ``name``."""
    for r in roots:
        if name in ("cifar10", "cifar100"):
            batches = r / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
            if batches.is_dir():
                return "batches", batches
            for folder in (r / name, r / f"{name}-jpeg", r / "cifar-10-jpeg" if name == "cifar10" else r / "_"):
                if (folder / "train").is_dir() and (folder / "test").is_dir():
                    return "imagefolder", folder
            if name == "cifar10" and (r / "cifar10-jpeg.tar.gz").is_file():
                return "tarball", r / "cifar10-jpeg.tar.gz"
        elif name == "tinyimagenet":
            folder = r / "tiny-imagenet-200"
            if (folder / "val" / "val_annotations.txt").is_file():
                return "tinyimagenet", folder
        elif name == "imagefolder":
            if (r / "train").is_dir() and (r / "test").is_dir():
                return "imagefolder", r
    return None, None


def _try_download(name: str, dest: Path) -> tuple[str, Path] | tuple[None, None]:
    if name not in ("cifar10", "cifar100") or os.environ.get("ARLIB_NO_DOWNLOAD"):
        return None, None
    import torchvision

    import shutil
    import tempfile

    klass = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    # Download into a scratch folder and move it into the cache only when complete, so an
    # offline attempt leaves nothing behind.
    scratch = Path(tempfile.mkdtemp(prefix="arlib-download-"))
    try:
        klass(str(scratch), train=True, download=True)
        klass(str(scratch), train=False, download=True)
        kind, found = _locate(name, [scratch])
        if kind is None:
            return None, None
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / found.name
        if not target.exists():
            shutil.move(str(found), str(target))
        return _locate(name, [dest])
    except Exception:  # offline, proxy, partial file: any failure means "not available"
        return None, None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unpack(tarball: Path, cache: Path) -> Path:
    """The tree of ``tarball``, unpacked once into ``<cache>/unpacked/<name>-<sha256[:16]>/``.

    Keyed by the archive's content, so a replaced archive is never answered from the
    old tree. Unpacked into a scratch folder that is moved into place only when complete
    and removed on any failure (a truncated or garbage archive, a full disk); scratch
    folders of killed processes are removed by the next unpack.
    """
    stem = tarball.name.removesuffix(".tar.gz")
    target = cache / "unpacked" / f"{stem}-{sha256_file(tarball)[:16]}"
    if (target / ".complete").exists():
        return target
    scratch = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(target)
        for old in target.parent.glob(f"{stem}.tmp[0-9]*"):  # arlib < 0.2 named its scratch folders so
            pid = old.name.rsplit(".tmp", 1)[1]
            if not (pid.isdigit() and pid_alive(int(pid))):
                shutil.rmtree(old, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=tmp_prefix(target), suffix=".tmp"))
        with tarfile.open(tarball) as tf:
            tf.extractall(scratch, filter="data")
        # The tree is either at the top of the archive or inside one folder.
        inner = scratch if (scratch / "train").is_dir() else next((p for p in scratch.iterdir() if (p / "train").is_dir()), None)
        if inner is None or not (inner / "test").is_dir():
            raise DamagedDataError(f"archive {tarball} holds no train/ and test/ folders")
        (inner / ".complete").touch()
        if target.exists():  # an unfinished tree of an older arlib, or another process was faster
            if (target / ".complete").exists():
                return target
            shutil.rmtree(target)
        os.replace(inner, target)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            raise storage_error(target, e) from None
        raise DamagedDataError(
            f"archive {tarball} is damaged ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}); replace it (nothing was unpacked)"
        ) from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _fingerprint(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load a whole dataset as uint8 tensors, decoding it only on the first call.

    Raises :class:`DataNotFoundError` (one line: dataset, paths tried, how to
    provide it) when the data is neither on disk nor downloadable.
    """
    if root is not None and not Path(root).expanduser().is_dir():
        raise DataNotFoundError(f"data root '{root}' does not exist")
    roots = candidate_roots(root)
    cache = default_cache_dir()
    kind, path = _locate(name, roots)
    if kind is None and download:
        kind, path = _try_download(name, cache / "data")
    if kind is None:
        hints = {
            "cifar10": "Put torchvision's cifar-10-batches-py, an ImageFolder tree cifar10/{train,test}/<class>/ "
            "or cifar10-jpeg.tar.gz under one of these roots, or set ARLIB_DATA, or go online to download it.",
            "cifar100": "Put torchvision's cifar-100-python under one of these roots, set ARLIB_DATA, or go online to download it.",
            "tinyimagenet": "Download tiny-imagenet-200.zip from http://cs231n.stanford.edu/ and unzip it under one of these roots (or set ARLIB_DATA).",
            "imagefolder": "Give a root holding train/<class>/ and test/<class>/ image folders.",
        }
        raise _missing(name, roots, hints.get(name, ""))
    # What provenance records: the kind of source and its file name, never a path of this machine.
    origin = f"{kind}:{Path(path).name}"
    if kind == "tarball":
        path, kind = _unpack(path, cache), "imagefolder"

    key = hashlib.sha256(f"{name}:{Path(path).resolve()}".encode()).hexdigest()[:12]
    arrays_dir = cache / "arrays" / f"{name}-{key}"
    cached = _load_arrays(arrays_dir)
    if cached is None:
        if kind == "batches":
            (xtr, ytr), (xte, yte), classes = _read_cifar_batches(path, name)
        elif kind == "tinyimagenet":
            (xtr, ytr), (xte, yte), classes = _read_tinyimagenet(path)
        else:
            fixed = CIFAR10_CLASSES if name == "cifar10" else None
            xtr, ytr, classes = _read_imagefolder_split(path / "train", fixed)
            xte, yte, _ = _read_imagefolder_split(path / "test", classes)
        meta = {"classes": list(classes), "fingerprint": _fingerprint([xtr, ytr, xte, yte]), "source": str(path)}
        _save_arrays(arrays_dir, {"xtr": xtr, "ytr": ytr, "xte": xte, "yte": yte}, meta)
        cached = meta, {k: torch.from_numpy(v) for k, v in (("xtr", xtr), ("ytr", ytr), ("xte", xte), ("yte", yte))}
    meta, arrays = cached
    return Dataset(
        name=name,
        classes=tuple(meta["classes"]),
        train=Split(arrays["xtr"], arrays["ytr"]),
        test=Split(arrays["xte"], arrays["yte"]),
        fingerprint=meta["fingerprint"],
        source=origin,
    )


def _save_arrays(arrays_dir: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write the decoded arrays, meta.json last (it marks the folder complete); no temporary left on failure."""
    try:
        arrays_dir.mkdir(parents=True, exist_ok=True)
        for fname, arr in arrays.items():
            tmp = arrays_dir / f"{fname}.tmp{os.getpid()}.npy"
            try:
                np.save(tmp, arr)
                os.replace(tmp, arrays_dir / f"{fname}.npy")
            finally:
                tmp.unlink(missing_ok=True)
        tmp = arrays_dir / f"meta.tmp{os.getpid()}.json"
        try:
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, arrays_dir / "meta.json")
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise storage_error(arrays_dir, e) from None


def _load_arrays(arrays_dir: Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """The cached meta and arrays, or None when absent or no longer loadable (then they are decoded again)."""
    try:
        meta = json.loads((arrays_dir / "meta.json").read_text())
        arrays = {f: torch.from_numpy(np.load(arrays_dir / f"{f}.npy", allow_pickle=False)) for f in ("xtr", "ytr", "xte", "yte")}
        meta["classes"], meta["fingerprint"]  # noqa: B018 - both must be there
        return meta, arrays
    except FileNotFoundError:
        return None
    except (ValueError, OSError, KeyError, TypeError, EOFError):  # truncated or garbage cache: it is derived data
        return None


def balanced_indices(labels: np.ndarray | torch.Tensor, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of every class, drawn with ``seed``, sorted.

    Deterministic: the same labels, size and seed give the same subset on any
    machine (NumPy's PCG64 stream is platform independent).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has {len(idx)} examples, fewer than {per_class}")
        picked.append(rng.permutation(idx)[:per_class])
    return np.sort(np.concatenate(picked))


def subset_seed(data_cfg, train_seed: int) -> int:
    """The seed of a run's subset draws: the configured one, or the training seed when it is None."""
    return data_cfg.subset_seed if data_cfg.subset_seed is not None else train_seed


# The fixed draws of evaluation subsets (attacked images, per-epoch test curve): the same test
# images for every run of a profile, whatever its seed, so outcomes can be compared image by image.
ATTACK_SUBSET_SEED = 7919
MONITOR_SUBSET_SEED = 7907


def eval_subset(split: Split, per_class: int | None, seed: int) -> Split:
    """A fixed class-balanced subset of an evaluation split (``per_class`` None: the whole split)."""
    if per_class is None:
        return split
    return split.subset(balanced_indices(split.labels, per_class, seed))


def attack_split(ds: Dataset, eval_cfg) -> Split:
    """The test images the final PGD attacks: a fixed class-balanced draw of ``eval_cfg.attack_per_class`` (or all)."""
    return eval_subset(ds.test, eval_cfg.attack_per_class, ATTACK_SUBSET_SEED)


def monitor_split(ds: Dataset, eval_cfg) -> Split:
    """The test images of the per-epoch test curve (and of the loss variation): a fixed draw of ``eval_cfg.monitor_per_class`` (or all)."""
    return eval_subset(ds.test, eval_cfg.monitor_per_class, MONITOR_SUBSET_SEED)


def prepare(data_cfg, root=None, train_seed: int = 0) -> Dataset:
    """The dataset of a :class:`~arlib.config.DataConfig`, subset as it asks.

    ``train_seed`` draws the subsets when ``data_cfg.subset_seed`` is None (pass the run's
    ``cfg.train.seed``; :func:`prepare_run` does).
    """
    ds = load_dataset(data_cfg.dataset, root)
    train, test = ds.train, ds.test
    seed = subset_seed(data_cfg, train_seed)
    try:
        if data_cfg.train_per_class:
            train = train.subset(balanced_indices(train.labels, data_cfg.train_per_class, seed))
        if data_cfg.test_per_class:
            test = test.subset(balanced_indices(test.labels, data_cfg.test_per_class, seed + 1))
    except ValueError as e:  # an imagefolder smaller than asked (the fixed datasets are checked by the config)
        raise ConfigError(f"data.train_per_class / test_per_class: {e} in {ds.name} ({ds.source})") from None
    return Dataset(ds.name, ds.classes, train, test, ds.fingerprint, ds.source)


def prepare_run(cfg, root=None) -> Dataset:
    """The dataset of a :class:`~arlib.config.RunConfig`: its data section, drawn with its seed."""
    return prepare(cfg.data, root, cfg.train.seed)


# ----------------------------------------------------------------------------- augmentation


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255)


def random_crop_flip(images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """CIFAR augmentation of Appendix D.1 on a whole batch.

    Zero-pad ``pad`` pixels on each side, take a random crop of the original
    size and flip it horizontally with probability 1/2, independently per
    image, by one gather (no per-image Python). Works on any dtype.
    """
    n, c, h, w = images.shape
    dev = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
    flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
    rows = dy[:, None] + torch.arange(h, device=dev)[None, :]  # (n, h)
    cols_base = torch.arange(w, device=dev)[None, :]
    cols = torch.where(flip[:, None], w - 1 - cols_base, cols_base) + dx[:, None]  # (n, w)
    batch = torch.arange(n, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


def random_resized_crop_flip(
    images: torch.Tensor,
    size: int = 56,
    scale: tuple[float, float] = (0.35, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Tiny-ImageNet training augmentation (Appendix D.1) on a whole batch.

    A random crop covering ``scale`` of the area with aspect ratio in
    ``ratio`` (log-uniform), resized to ``size`` x ``size`` bilinearly, then a
    random horizontal flip; one ``grid_sample`` for the batch. Returns float
    in [0, 1].
    """
    n = images.shape[0]
    dev = images.device
    x = images.float().div(255) if images.dtype == torch.uint8 else images
    area = torch.empty(n).uniform_(*scale, generator=generator)
    log_r = torch.empty(n).uniform_(np.log(ratio[0]), np.log(ratio[1]), generator=generator)
    r = torch.exp(log_r)
    sw = torch.sqrt(area * r).clamp(max=1.0)  # crop width as a fraction of the image
    sh = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sw)
    cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sh)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sw * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sh
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(dev), (n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The single central ``size`` x ``size`` crop (Tiny-ImageNet test images)."""
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


def train_transform(dataset: str):
    """Batch augmentation for ``dataset``: uint8 batch -> float [0,1] batch."""
    if dataset == "tinyimagenet":
        return lambda x, g=None: random_resized_crop_flip(x, 56, generator=g)
    return lambda x, g=None: to_float(random_crop_flip(x, 4, generator=g))


def test_transform(dataset: str):
    """Test-time preprocessing (no augmentation): uint8 batch -> float [0,1]."""
    if dataset == "tinyimagenet":
        return lambda x: to_float(center_crop(x, 56))
    return to_float


def input_size(dataset: str, native: int) -> int:
    return 56 if dataset == "tinyimagenet" else native
