"""Image classification datasets held in memory as uint8 tensors, with torch-side augmentation.

A dataset spec names where the images come from:

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes, no download);
- ``mnist[:PATH]``: MNIST in idx format (``*-images-idx3-ubyte[.gz]`` with its ``labels-idx1``
  partner) or the 5k CSV (784 pixels then the label, ``.csv[.gz]``); ``PATH`` may be one of those
  files or a folder holding them; without ``PATH`` the shared data folder's ``images/`` is used;
- ``cifar10[:PATH]``: CIFAR-10 as the standard ``cifar-10-batches-py`` pickles (a folder with
  ``data_batch_1..5`` and ``test_batch``) or as an image tree ``{train,test}/{class}/*.jpg|png``
  (a folder or a ``.tar[.gz]`` archive, e.g. ``images/cifar10_jpg.tar.gz`` of the shared data,
  which is the default without ``PATH``);
- ``folder:PATH``: any image tree ``[{train,test}/]{class}/*.jpg|jpeg|png|bmp`` (folder or archive).

Images are kept as ``uint8`` ``(N, C, H, W)`` tensors; decoded image trees are cached as ``.npz``
files in a cache folder (``cache_dir``, else ``$HSCONAS_CACHE_DIR``, else ``~/.cache/hsconas``), so
decoding happens once. The validation split is a seeded random share of the training pool; a
``test`` split exists when the source has one. Batches are normalised floats
(``(x / 255 - mean) / std``, per-channel statistics of the training split); augmentation (random
crop with zero padding, horizontal flip where sensible) runs on whole batches with an explicit
``torch.Generator``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsconas.errors import DataFormatError, DataNotFoundError

__all__ = [
    "Augment",
    "ImageDataset",
    "TensorLoader",
    "default_cache_dir",
    "load_cifar10_batches",
    "load_dataset",
    "load_digits",
    "load_image_tree",
    "load_mnist",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation applied to whole batches.

    Attributes:
        crop_padding: zero padding in pixels around each image before a random crop back to the
            original size; 0 disables cropping.
        hflip: flip each image horizontally with probability 0.5 (not for digits).
    """

    crop_padding: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0 pixels, got {self.crop_padding}")

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch ``x`` of shape (N, C, H, W) (any dtype); returns a new tensor."""
        n, _, h, w = x.shape
        if self.crop_padding > 0:
            p = self.crop_padding
            padded = torch.nn.functional.pad(x, (p, p, p, p))  # (N, C, H + 2p, W + 2p)
            oy = torch.randint(0, 2 * p + 1, (n,), generator=generator)
            ox = torch.randint(0, 2 * p + 1, (n,), generator=generator)
            rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (N, H, 1)
            cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (N, 1, W)
            idx = torch.arange(n)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)  # (N, C, H, W)
        if self.hflip:
            flip = torch.rand(n, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.contiguous()


class TensorLoader:
    """Batches of an in-memory split: normalised float images and int64 labels.

    Args:
        images: uint8 tensor (N, C, H, W).
        labels: int64 tensor (N,).
        batch_size: images per batch.
        mean: per-channel mean of ``images / 255``.
        std: per-channel standard deviation of ``images / 255``.
        shuffle: draw a new order every pass (from the generator given to :meth:`batches`).
        augment: augmentation applied to every batch (``None`` for none).
        drop_last: drop the final incomplete batch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        shuffle: bool = False,
        augment: Augment | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(
        self, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the split; ``generator`` drives the shuffle and the augmentation.

        Raises:
            ValueError: if shuffling or augmentation is on and no generator is given.
        """
        n = len(self.labels)
        needs_rng = self.shuffle or (self.augment is not None)
        if needs_rng and generator is None:
            raise ValueError("a torch.Generator is needed to shuffle or augment batches")
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            x = self.images[idx]
            if self.augment is not None:
                assert generator is not None
                x = self.augment.apply(x, generator)
            x = (x.float() / 255.0 - self._mean) / self._std
            yield x, self.labels[idx]


@dataclass(frozen=True)
class ImageDataset:
    """An in-memory image classification dataset with train / val (/ test) splits.

    Attributes:
        name: the spec it was loaded from.
        train_images: uint8 (N_train, C, H, W).
        train_labels: int64 (N_train,).
        val_images: uint8 (N_val, C, H, W), a seeded share of the source's training pool.
        val_labels: int64 (N_val,).
        classes: class names, index = label.
        mean: per-channel mean of the training images scaled to [0, 1].
        std: per-channel standard deviation of the training images scaled to [0, 1].
        augment: the default training augmentation of this dataset.
        test_images: uint8 test split when the source has one, else ``None``.
        test_labels: int64 test labels, else ``None``.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment = field(default_factory=Augment)
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image, in pixels."""
        c, h, w = self.train_images.shape[1:]
        return (int(c), int(h), int(w))

    def loader(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool | None = None,
        augment: bool | None = None,
        drop_last: bool = False,
    ) -> TensorLoader:
        """A batch loader of ``split`` (``train``, ``val`` or ``test``).

        By default the training split is shuffled and augmented, the others are not.
        """
        images, labels = self.split(split)
        is_train = split == "train"
        use_aug = is_train if augment is None else augment
        return TensorLoader(
            images,
            labels,
            batch_size=batch_size,
            mean=self.mean,
            std=self.std,
            shuffle=is_train if shuffle is None else shuffle,
            augment=self.augment if use_aug else None,
            drop_last=drop_last,
        )

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of ``split``.

        Raises:
            ValueError: for an unknown split or a missing test split.
        """
        if split == "train":
            return self.train_images, self.train_labels
        if split == "val":
            return self.val_images, self.val_labels
        if split == "test":
            if self.test_images is None or self.test_labels is None:
                raise ValueError(f"dataset {self.name!r} has no test split; use 'val'")
            return self.test_images, self.test_labels
        raise ValueError(f"unknown split {split!r}; choose train, val or test")


# ---------------------------------------------------------------------------------- helpers
def _data_root() -> Path:
    from hsconas.data.tables import data_dir

    return data_dir()


def default_cache_dir() -> Path:
    """``$HSCONAS_CACHE_DIR``, else ``~/.cache/hsconas``: where decoded image trees are cached."""
    env = os.environ.get("HSCONAS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "hsconas"


def _subset_indices(n: int, subset: int | None, rng: np.random.Generator) -> np.ndarray:
    if subset is None or subset >= n:
        return np.arange(n)
    if subset <= 0:
        raise ValueError(f"subset must be positive, got {subset}")
    return np.sort(rng.choice(n, size=subset, replace=False))


def _channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``images / 255``, in chunks (no full float copy)."""
    c = images.shape[1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].astype(np.float32) / 255.0  # (n, C, H, W)
        total += chunk.sum(axis=(0, 2, 3), dtype=np.float64)
        total_sq += np.square(chunk).sum(axis=(0, 2, 3), dtype=np.float64)
    count = max(1, images.size // c)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _assemble(
    name: str,
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    classes: tuple[str, ...],
    augment: Augment,
    *,
    subset: int | None,
    val_fraction: float,
    seed: int,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    presubset: bool = False,
) -> ImageDataset:
    """Subset the pools, split the training pool into train/val (seeded) and wrap as tensors."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    if pool_x.ndim != 4 or pool_x.dtype != np.uint8:
        raise DataFormatError(f"{name}: images must be uint8 (N, C, H, W), got {pool_x.shape}")
    rng = np.random.default_rng(seed)
    if not presubset:
        keep = _subset_indices(len(pool_y), subset, rng)
        pool_x, pool_y = pool_x[keep], pool_y[keep]
        if test is not None:
            keep_t = _subset_indices(len(test[1]), subset, rng)
            test = (test[0][keep_t], test[1][keep_t])
    order = np.random.default_rng([seed, 1]).permutation(len(pool_y))
    n_val = round(val_fraction * len(pool_y))
    if val_fraction > 0 and n_val == 0 and len(pool_y) > 1:
        n_val = 1
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if len(train_idx) == 0:
        raise DataFormatError(f"{name}: no training images left after the validation split")
    train_x = pool_x[train_idx]
    mean, std = _channel_stats(train_x)

    def t(a: np.ndarray, labels: bool = False) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.astype(np.int64) if labels else a))

    return ImageDataset(
        name=name,
        train_images=t(train_x),
        train_labels=t(pool_y[train_idx], True),
        val_images=t(pool_x[val_idx]),
        val_labels=t(pool_y[val_idx], True),
        classes=classes,
        mean=mean,
        std=std,
        augment=augment,
        test_images=None if test is None else t(test[0]),
        test_labels=None if test is None else t(test[1], True),
    )


# ---------------------------------------------------------------------------------- digits
def load_digits(
    *, subset: int | None = None, val_fraction: float = 0.2, seed: int = 0
) -> ImageDataset:
    """scikit-learn's 8x8x1 digits (values 0..16 rescaled to 0..255), 10 classes, no test split.

    Augmentation: random crop with 1 pixel of padding, no flip.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]  # (N,1,8,8)
    y = bunch.target.astype(np.int64)
    classes = tuple(str(c) for c in range(10))
    return _assemble(
        "digits",
        x,
        y,
        classes,
        Augment(crop_padding=1),
        subset=subset,
        val_fraction=val_fraction,
        seed=seed,
    )


# ---------------------------------------------------------------------------------- MNIST
def _open_maybe_gz(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"MNIST file not found: {path}") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataFormatError(f"{path}: not a valid gzip file ({exc})") from None
    return raw


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    data = _open_maybe_gz(path)
    if len(data) < 8:
        raise DataFormatError(f"{path}: too short for an idx file")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        raise DataFormatError(
            f"{path}: idx magic number {magic}, expected {expected_magic} "
            f"({'images' if expected_magic == 2051 else 'labels'} file)"
        )
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataFormatError(f"{path}: idx header says {dims}, but holds {body.size} bytes")
    return body.reshape(dims)


def _read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    if not path.is_file():
        raise DataNotFoundError(f"MNIST CSV file not found: {path}")
    try:
        frame = pd.read_csv(path, header=None)
    except Exception as exc:  # pandas raises many types for malformed files
        raise DataFormatError(f"{path}: cannot read as CSV ({exc})") from None
    if frame.shape[1] != 785:
        raise DataFormatError(
            f"{path}: expected 785 columns (784 pixels then the label), got {frame.shape[1]}"
        )
    values = frame.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        raise DataFormatError(f"{path}: non-numeric values; expected pixels 0..255 and a label")
    x = values[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return x, values[:, 784].astype(np.int64)


def _mnist_files(path: Path) -> tuple[str, Path, Path | None]:
    """("idx", images, labels) or ("csv", csv, None) for a file or folder ``path``."""
    if path.is_dir():
        for prefix in ("train", "t10k"):
            for gz in (".gz", ""):
                img = path / f"{prefix}-images-idx3-ubyte{gz}"
                if img.is_file():
                    return "idx", img, path / f"{prefix}-labels-idx1-ubyte{gz}"
        csvs = sorted(path.glob("*mnist*.csv*"))
        if csvs:
            return "csv", csvs[0], None
        raise DataNotFoundError(
            f"no MNIST files in {path}: expected train- or t10k-images-idx3-ubyte[.gz] with its "
            "labels-idx1-ubyte[.gz] partner, or a *mnist*.csv[.gz] file"
        )
    name = path.name
    if ".csv" in name:
        return "csv", path, None
    if "images-idx3" in name:
        return "idx", path, path.with_name(name.replace("images-idx3", "labels-idx1"))
    if not path.exists():
        raise DataNotFoundError(
            f"MNIST path not found: {path} (give a folder, an images-idx3-ubyte[.gz] file or a "
            ".csv[.gz] file)"
        )
    raise DataFormatError(
        f"{path}: not an MNIST file; expected *-images-idx3-ubyte[.gz] or a .csv[.gz] of 784 "
        "pixels then the label"
    )


def load_mnist(
    path: str | Path | None = None,
    *,
    subset: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ImageDataset:
    """MNIST (28x28x1, 10 classes) from idx files or the 784-pixels-then-label CSV.

    Args:
        path: a folder, an ``*-images-idx3-ubyte[.gz]`` file (its ``labels-idx1`` partner is read
            too) or a ``.csv[.gz]``; default: the shared data's ``images/`` folder.
        subset: keep at most this many images (seeded random choice).
        val_fraction: share of the images held out for validation.
        seed: seed of the subset and of the split.

    Augmentation: random crop with 2 pixels of padding, no flip.
    """
    where = Path(path) if path is not None else _data_root() / "images"
    kind, first, labels_path = _mnist_files(where)
    if kind == "csv":
        x, y = _read_mnist_csv(first)
    else:
        assert labels_path is not None
        if not labels_path.is_file():
            raise DataNotFoundError(f"MNIST labels file not found: expected {labels_path}")
        images = _read_idx(first, 2051)
        x = images[:, None]  # (N, 1, 28, 28)
        y = _read_idx(labels_path, 2049).astype(np.int64)
        if len(y) != len(x):
            raise DataFormatError(
                f"{first} holds {len(x)} images but {labels_path} {len(y)} labels"
            )
    if y.min() < 0 or y.max() > 9:
        raise DataFormatError(f"{first}: labels must lie in 0..9, got {y.min()}..{y.max()}")
    classes = tuple(str(c) for c in range(10))
    return _assemble(
        f"mnist:{first}",
        x,
        y,
        classes,
        Augment(crop_padding=2),
        subset=subset,
        val_fraction=val_fraction,
        seed=seed,
    )


# ---------------------------------------------------------------------------------- CIFAR pickles
def _unpickle(path: Path) -> dict[bytes, object]:
    if not path.is_file():
        raise DataNotFoundError(f"CIFAR-10 batch file not found: expected {path}")
    try:
        with path.open("rb") as fh:
            doc = pickle.load(fh, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a CIFAR-10 pickle batch ({exc})") from None
    if not isinstance(doc, dict) or b"data" not in doc or b"labels" not in doc:
        raise DataFormatError(f"{path}: a CIFAR-10 batch is a dict with b'data' and b'labels'")
    return doc


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    doc = _unpickle(path)
    data = np.asarray(doc[b"data"], dtype=np.uint8)
    labels = np.asarray(doc[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataFormatError(
            f"{path}: expected b'data' of shape (N, 3072) and N labels, got {data.shape} and "
            f"{len(labels)}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10_batches(
    path: str | Path,
    *,
    subset: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ImageDataset:
    """CIFAR-10 from the ``cifar-10-batches-py`` folder (data_batch_1..5, test_batch).

    Augmentation: random crop with 4 pixels of padding and horizontal flips.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataNotFoundError(f"CIFAR-10 batches folder not found: {root}")
    parts = [_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    test = _cifar_batch(root / "test_batch")
    classes: tuple[str, ...] = _CIFAR_CLASSES
    meta = root / "batches.meta"
    if meta.is_file():
        names = pickle.loads(meta.read_bytes(), encoding="bytes").get(b"label_names")
        if names:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return _assemble(
        f"cifar10:{root}",
        x,
        y,
        classes,
        Augment(crop_padding=4, hflip=True),
        subset=subset,
        val_fraction=val_fraction,
        seed=seed,
        test=test,
    )


# ---------------------------------------------------------------------------------- image trees
@dataclass(frozen=True)
class _Entry:
    split: str  # "train", "test" or "" (no split folders)
    label: str
    name: str  # member name (archive) or path (folder)


def _classify_paths(names: list[str]) -> list[_Entry]:
    """Image entries of a tree ``[prefix/][{train,test}/]{class}/file`` from their paths."""
    entries: list[_Entry] = []
    for name in names:
        if not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        parts = Path(name).parts
        if len(parts) < 2:
            continue
        label = parts[-2]
        split = parts[-3] if len(parts) >= 3 and parts[-3] in ("train", "test", "val") else ""
        entries.append(_Entry("test" if split == "val" else split, label, name))
    return entries


def _decode(data: bytes, where: str, size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            im: Image.Image = opened
            im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"{where}: cannot decode image ({exc})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)


def _stack(arrays: list[np.ndarray], source: str) -> np.ndarray:
    channels = max(a.shape[0] for a in arrays)
    if channels == 3:
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataFormatError(
            f"{source}: images have different sizes {sorted(shapes)[:3]}...; pass image_size= to "
            "resize them to one size"
        )
    return np.stack(arrays)


def _select(
    entries: list[_Entry], subset: int | None, seed: int
) -> tuple[list[_Entry], list[_Entry]]:
    """(train-pool entries, test entries), each subsetted to ``subset`` with a seeded choice."""
    rng = np.random.default_rng(seed)
    pool = [e for e in entries if e.split in ("train", "")]
    test = [e for e in entries if e.split == "test"]
    pool = [pool[i] for i in _subset_indices(len(pool), subset, rng)]
    test = [test[i] for i in _subset_indices(len(test), subset, rng)]
    return pool, test


def _cache_key(source: Path, subset: int | None, seed: int, size: int | None) -> str:
    st = source.stat()
    text = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{subset}|{seed}|{size}|v1"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _decode_tree(
    source: Path, subset: int | None, seed: int, size: int | None, progress: bool
) -> dict[str, np.ndarray]:
    """Decode the (subset of the) tree into arrays: train_x/train_y/test_x/test_y/classes."""
    from tqdm import tqdm

    if source.is_dir():
        names = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
        archive = None
    else:
        try:
            archive = tarfile.open(source, "r:*")  # noqa: SIM115  (closed in finally below)
        except (tarfile.TarError, OSError) as exc:
            raise DataFormatError(
                f"{source}: not a folder or a tar archive of images ({exc})"
            ) from None
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        names = sorted(members)
    entries = _classify_paths(names)
    if not entries:
        raise DataFormatError(
            f"{source}: no images found; expected [{{train,test}}/]{{class}}/*.jpg|png"
        )
    classes = tuple(sorted({e.label for e in entries}))
    label_of = {c: i for i, c in enumerate(classes)}
    pool, test = _select(entries, subset, seed)
    wanted = {e.name for e in pool} | {e.name for e in test}
    decoded: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(wanted), desc=f"decoding {source.name}", unit="img", disable=not progress)
    try:
        if archive is None:
            for name in sorted(wanted):
                decoded[name] = _decode((source / name).read_bytes(), str(source / name), size)
                bar.update()
        else:
            # Sequential pass in archive order: a compressed tar cannot seek backwards cheaply.
            for member in archive:
                if member.name in wanted:
                    fh = archive.extractfile(member)
                    assert fh is not None
                    decoded[member.name] = _decode(fh.read(), f"{source}:{member.name}", size)
                    bar.update()
    finally:
        bar.close()
        if archive is not None:
            archive.close()
    out: dict[str, np.ndarray] = {"classes": np.asarray(classes)}
    for split, group in (("train", pool), ("test", test)):
        if group:
            out[f"{split}_x"] = _stack([decoded[e.name] for e in group], str(source))
            out[f"{split}_y"] = np.asarray([label_of[e.label] for e in group], dtype=np.int64)
    return out


def load_image_tree(
    path: str | Path,
    *,
    subset: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    image_size: int | None = None,
    augment: Augment | None = None,
    name: str | None = None,
    progress: bool = True,
) -> ImageDataset:
    """An image tree ``[{train,test}/]{class}/*.jpg|png`` from a folder or a ``.tar[.gz]``.

    Decoded arrays are cached in ``cache_dir`` as ``<source name>_<key>.npz`` where the key hashes
    the source path, size, modification time, subset, seed and image size; a second call loads the
    cache without decoding.

    Args:
        path: folder or tar archive.
        subset: decode at most this many images of the training pool and of the test split (seeded
            random choice); ``None`` decodes everything (a one-off, with a progress bar).
        val_fraction: share of the training pool held out for validation.
        seed: seed of the subset and of the split.
        cache_dir: folder of the ``.npz`` cache; default :func:`default_cache_dir`.
        image_size: resize every image to this square size in pixels; ``None`` requires all images
            to have one size.
        augment: training augmentation; default crop padding of size/8 and horizontal flips.
        name: dataset name; default ``folder:PATH``.
        progress: show a progress bar (stderr) while decoding.

    Raises:
        DataNotFoundError: if ``path`` does not exist.
        DataFormatError: if it holds no images or undecodable ones.
    """
    source = Path(path)
    if not source.exists():
        raise DataNotFoundError(
            f"image folder or archive not found: {source} (expected [{{train,test}}/]{{class}}/"
            "*.jpg|png in a folder or .tar.gz)"
        )
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = source.name.split(".")[0] or "images"
    cache = cache_root / f"{stem}_{_cache_key(source, subset, seed, image_size)}.npz"
    arrays: dict[str, np.ndarray] | None = None
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError):
            arrays = None  # a truncated cache: decode again
    if arrays is None:
        arrays = _decode_tree(source, subset, seed, image_size, progress)
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(cache)
    classes = tuple(str(c) for c in arrays["classes"])
    if "train_x" not in arrays:
        raise DataFormatError(f"{source}: no training images (only a test/ folder?)")
    test = (arrays["test_x"], arrays["test_y"]) if "test_x" in arrays else None
    h = int(arrays["train_x"].shape[2])
    aug = augment if augment is not None else Augment(crop_padding=max(1, h // 8), hflip=True)
    return _assemble(
        name or f"folder:{source}",
        arrays["train_x"],
        arrays["train_y"],
        classes,
        aug,
        subset=subset,
        val_fraction=val_fraction,
        seed=seed,
        test=test,
        presubset=True,
    )


# ---------------------------------------------------------------------------------- spec parser
DATASET_SPECS = ("digits", "mnist[:PATH]", "cifar10[:PATH]", "folder:PATH")


def load_dataset(
    spec: str,
    *,
    subset: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ImageDataset:
    """Load a dataset named by ``spec`` (see the module docstring).

    Args:
        spec: ``digits``, ``mnist[:PATH]``, ``cifar10[:PATH]`` or ``folder:PATH``.
        subset: keep at most this many images of the training pool (and of the test split).
        val_fraction: share of the training pool held out as the validation split.
        seed: seed of the subset and of the train/validation split.
        cache_dir: cache folder of decoded image trees.
        progress: show a progress bar while decoding image trees.

    Raises:
        DataNotFoundError: a missing path (the message names the expected file).
        DataFormatError: a file in the wrong format, or an unknown spec.
    """
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    path = Path(rest) if sep and rest else None
    common: dict[str, Any] = {"subset": subset, "val_fraction": val_fraction, "seed": seed}
    if kind == "digits":
        return load_digits(**common)
    if kind == "mnist":
        return load_mnist(path, **common)
    if kind in ("cifar10", "cifar-10"):
        where = path if path is not None else _data_root() / "images" / "cifar10_jpg.tar.gz"
        if where.is_dir() and (where / "data_batch_1").exists():
            return load_cifar10_batches(where, **common)
        if where.is_dir() and (where / "cifar-10-batches-py").is_dir():
            return load_cifar10_batches(where / "cifar-10-batches-py", **common)
        return load_image_tree(
            where,
            cache_dir=cache_dir,
            image_size=32,
            augment=Augment(4, True),
            name=f"cifar10:{where}",
            progress=progress,
            **common,
        )
    if kind == "folder":
        if path is None:
            raise DataFormatError("folder: needs a path, like folder:/data/my_images")
        return load_image_tree(path, cache_dir=cache_dir, progress=progress, **common)
    raise DataFormatError(f"unknown dataset {spec!r}; give one of: {', '.join(DATASET_SPECS)}")
