"""The in-memory image dataset: uint8 splits, the batch loader and batch augmentation.

:class:`ImageDataset` holds ``uint8`` ``(N, C, H, W)`` train / val (/ test) tensors with the
per-channel statistics of its training split; :class:`TensorLoader` yields normalised float batches
(``(x / 255 - mean) / std``); :class:`Augment` crops and flips whole batches with an explicit
``torch.Generator``. :func:`_assemble` builds a dataset from decoded numpy arrays: the seeded
subset, the seeded train/validation split and the statistics. The format readers live in
:mod:`hsconas.data.image_formats`, the spec parser in :mod:`hsconas.data.datasets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from hsconas.errors import DataFormatError

__all__ = ["Augment", "ImageDataset", "TensorLoader"]


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
        shard: ``(rank, world_size)``: this process takes every ``world_size``-th image of each
            pass's order (the same order on every rank), all ranks the same number of batches.
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
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.rank, self.world = shard
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def _per_rank(self) -> int:
        return len(self.labels) // self.world if self.world > 1 else len(self.labels)

    def __len__(self) -> int:
        n = self._per_rank()
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
        if self.world > 1:
            order = order[: self._per_rank() * self.world][self.rank :: self.world]
            n = len(order)
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
        shard: tuple[int, int] = (0, 1),
        pin_memory: bool = False,
    ) -> TensorLoader:
        """A batch loader of ``split`` (``train``, ``val`` or ``test``).

        By default the training split is shuffled and augmented, the others are not. ``shard``
        splits each pass between distributed ranks (see :class:`TensorLoader`); ``pin_memory``
        is accepted for the streamed datasets' interface (in-memory batches are not pinned).
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
            shard=shard,
        )

    def with_test_from_val(self) -> ImageDataset:
        """Without a test split: the second half of ``val`` becomes ``test`` (the first stays)."""
        if self.test_images is not None:
            return self
        half = len(self.val_labels) // 2
        return dataclasses.replace(
            self,
            val_images=self.val_images[:half],
            val_labels=self.val_labels[:half],
            test_images=self.val_images[half:],
            test_labels=self.val_labels[half:],
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


# ---------------------------------------------------------------------------------- assembly
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
