"""Streamed image datasets: files decoded per batch by ``DataLoader`` workers, never held in RAM.

:func:`load_streamed` indexes an image tree ``[{train,val,test}/]{class}/*.jpg|jpeg|png|bmp``
in a folder or a tar archive and returns a :class:`StreamedImageDataset`. Only the index (one
path or archive offset and one label per image) lives in memory; images are read, decoded and
transformed when a batch asks for them, in ``workers`` processes. A compressed archive
(``.tar.gz``) cannot be read at random, so it is decompressed once into the cache folder as a
plain ``.tar`` with an index of member offsets; reads are then ``pread`` calls at those offsets.

Splits follow :mod:`hsconas.data.datasets`: ``train`` and ``val`` come from the source's training
pool (or its one class tree) by a seeded share, ``test`` is the source's ``val``/``test`` folder.
Training batches are augmented with the transforms of :mod:`hsconas.data.transforms`
(RandomResizedCrop + flip, or pad-crop + flip for CIFAR-sized images); evaluation batches are
resized and centre-cropped. The per-channel mean and std are estimated from a seeded sample of
training images.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsconas.data.image_formats import _classify_paths, _Entry
from hsconas.data.image_index import ImageReader, open_index, sub_reader
from hsconas.errors import DataFormatError, DataNotFoundError

__all__ = ["StreamLoader", "StreamedImageDataset", "load_streamed"]

log = logging.getLogger(__name__)

_STATS_IMAGES = 500


# ---------------------------------------------------------------------------------- reading
def _decode_pil(data: bytes, where: str) -> Any:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"{where}: cannot decode image ({exc})") from None


class _SplitData(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """One split as a map-style dataset: (transformed image, label)."""

    def __init__(self, reader: ImageReader, labels: torch.Tensor, transform: Any) -> None:
        self.reader = reader
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = _decode_pil(self.reader.read(i), self.reader.where(i))
        return self.transform(img), int(self.labels[i])


class _Take(torch.utils.data.Sampler[int]):
    def __init__(self, order: torch.Tensor) -> None:
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


class StreamLoader:
    """Batches of one streamed split, read by a ``DataLoader`` with ``workers`` processes.

    The same interface as :class:`hsconas.data.image_dataset.TensorLoader`: ``len()`` batches,
    and :meth:`batches` for one pass whose shuffle and augmentation come from a generator.

    Args:
        data: the split's map-style dataset.
        batch_size: images per batch.
        shuffle: a new order every pass.
        drop_last: drop the final incomplete batch.
        workers: loader processes (0: decode in this process).
        shard: ``(rank, world_size)``: this process reads every ``world_size``-th image of each
            pass's order (the same order on every rank), all ranks the same number of batches.
        pin_memory: pin batches (for CUDA transfers).
    """

    def __init__(
        self,
        data: _SplitData,
        *,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        workers: int = 0,
        shard: tuple[int, int] = (0, 1),
        pin_memory: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.workers = workers
        self.rank, self.world = shard
        self.pin_memory = pin_memory

    def _per_rank(self) -> int:
        return len(self.data) // self.world if self.world > 1 else len(self.data)

    def __len__(self) -> int:
        n = self._per_rank()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(
        self, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass: (normalised float images (N, C, H, W), int64 labels (N,)).

        ``generator`` draws the order and the seed of the augmentation (per worker); without
        it the order is the split's and augmentation uses a fixed seed.
        """
        n = len(self.data)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        if self.world > 1:
            order = order[: self._per_rank() * self.world][self.rank :: self.world]
        seed = int(torch.randint(0, 2**62, (1,), generator=gen).item())
        loader = torch.utils.data.DataLoader(
            self.data,
            batch_size=self.batch_size,
            sampler=_Take(order),
            num_workers=self.workers,
            drop_last=self.drop_last,
            pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(seed),
        )
        if self.workers > 0:
            yield from loader
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # in-process augmentation, reproducible from the generator
            yield from loader


@dataclass
class StreamedImageDataset:
    """An image classification dataset whose images stay on disk (see the module docstring).

    Attributes mirror :class:`hsconas.data.image_dataset.ImageDataset` where they are cheap
    (``name``, ``classes``, ``mean``, ``std``, ``*_labels``); images are only reachable through
    :meth:`loader`.

    Attributes:
        name: the spec it was loaded from.
        classes: class names, index = label.
        image_size: side of every batch image, pixels.
        mean: per-channel mean of ``[0, 1]`` training images (seeded sample).
        std: per-channel standard deviation.
        train_labels: int64 labels of the training split (likewise ``val_labels``,
            ``test_labels`` or ``None``).
        crop: training crop, ``resized`` or ``padded`` (see :func:`train_transform`).
        crop_ratio: centre-crop share of evaluation images.
        workers: ``DataLoader`` processes per loader.
    """

    name: str
    classes: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_labels: torch.Tensor
    val_labels: torch.Tensor
    test_labels: torch.Tensor | None
    crop: str
    crop_ratio: float
    workers: int
    _readers: dict[str, ImageReader] = dataclasses.field(repr=False, default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one batch image, pixels (always RGB)."""
        return (3, self.image_size, self.image_size)

    def labels(self, split: str) -> torch.Tensor:
        """Labels of ``split``.

        Raises:
            ValueError: an unknown split or a missing test split.
        """
        if split == "train":
            return self.train_labels
        if split == "val":
            return self.val_labels
        if split == "test":
            if self.test_labels is None:
                raise ValueError(f"dataset {self.name!r} has no test split; use 'val'")
            return self.test_labels
        raise ValueError(f"unknown split {split!r}; choose train, val or test")

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
    ) -> StreamLoader:
        """A batch loader of ``split``; training batches are shuffled and augmented by default."""
        from hsconas.data.transforms import eval_transform, train_transform

        labels = self.labels(split)
        is_train = split == "train"
        use_aug = is_train if augment is None else augment
        transform = (
            train_transform(self.image_size, self.mean, self.std, crop=self.crop)
            if use_aug
            else eval_transform(self.image_size, self.mean, self.std, crop_ratio=self.crop_ratio)
        )
        return StreamLoader(
            _SplitData(self._readers[split], labels, transform),
            batch_size=batch_size,
            shuffle=is_train if shuffle is None else shuffle,
            drop_last=drop_last,
            workers=self.workers,
            shard=shard,
            pin_memory=pin_memory,
        )

    def with_test_from_val(self) -> StreamedImageDataset:
        """Without a test split: the second half of ``val`` becomes ``test`` (the first stays)."""
        if self.test_labels is not None:
            return self
        reader = self._readers["val"]
        half = len(self.val_labels) // 2
        first, second = sub_reader(reader, slice(0, half)), sub_reader(reader, slice(half, None))
        return dataclasses.replace(
            self,
            val_labels=self.val_labels[:half],
            test_labels=self.val_labels[half:],
            _readers={**self._readers, "val": first, "test": second},
        )


# ---------------------------------------------------------------------------------- loading
def _estimate_stats(
    reader: ImageReader, size: int, n: int, seed: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``[0, 1]`` pixels over ``n`` seeded images (resized)."""
    from hsconas.data.transforms import CenterCrop, Resize, ToTensor

    rng = np.random.default_rng([seed, 3])
    pick = rng.choice(len(reader), size=min(n, len(reader)), replace=False)
    resize, crop, to_tensor = Resize(size), CenterCrop(size), ToTensor()
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for i in pick:
        x = to_tensor(crop(resize(_decode_pil(reader.read(int(i)), reader.where(int(i))))))
        total += x.sum(dim=(1, 2)).double().numpy()
        total_sq += x.double().square().sum(dim=(1, 2)).numpy()
        count += x.shape[1] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def load_streamed(
    path: str | Path,
    *,
    image_size: int,
    subset: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    crop: str = "resized",
    crop_ratio: float = 0.875,
    name: str | None = None,
    stats_images: int = _STATS_IMAGES,
) -> StreamedImageDataset:
    """Index an image tree (folder or tar archive) as a streamed dataset.

    Args:
        path: folder or ``.tar[.gz]`` of ``[{train,val,test}/]{class}/*.jpg|jpeg|png|bmp``.
        image_size: side of the batch images, pixels.
        subset: keep at most this many images of the training pool and of the test split
            (seeded choice).
        val_fraction: share of the training pool held out as ``val``.
        seed: seed of the subset, the split and the statistics sample.
        cache_dir: where a compressed archive is decompressed and indexed (default
            ``$HSCONAS_CACHE_DIR`` or ``~/.cache/hsconas``).
        workers: ``DataLoader`` processes per loader (0: this process decodes).
        crop: training crop, ``resized`` or ``padded``.
        crop_ratio: centre-crop share of evaluation images.
        name: dataset name (default ``imagefolder:PATH``).
        stats_images: training images sampled for the normalisation statistics.

    Raises:
        DataNotFoundError: ``path`` does not exist.
        DataFormatError: no images, no training images, or an unreadable archive.
    """
    from hsconas.data.datasets import default_cache_dir
    from hsconas.data.image_dataset import _subset_indices

    source = Path(path)
    if not source.exists():
        raise DataNotFoundError(
            f"image folder or archive not found: {source} (expected [{{train,val}}/]{{class}}/"
            "*.jpg|png in a folder or .tar[.gz])"
        )
    if image_size < 8:
        raise DataFormatError(f"image size must be >= 8 pixels, got {image_size}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    index = open_index(source, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    position = {n: i for i, n in enumerate(index.names)}
    entries: list[_Entry] = _classify_paths(index.names)
    if not entries:
        raise DataFormatError(
            f"{source}: no images found; expected [{{train,val}}/]{{class}}/*.jpg|png"
        )
    classes = tuple(sorted({e.label for e in entries}))
    label_of = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(seed)
    pool = [e for e in entries if e.split in ("train", "")]
    test = [e for e in entries if e.split == "test"]
    if not pool:
        raise DataFormatError(f"{source}: no training images (only a val/ or test/ folder?)")
    pool = [pool[i] for i in _subset_indices(len(pool), subset, rng)]
    test = [test[i] for i in _subset_indices(len(test), subset, rng)]
    order = np.random.default_rng([seed, 1]).permutation(len(pool))
    n_val = round(val_fraction * len(pool))
    if val_fraction > 0 and n_val == 0 and len(pool) > 1:
        n_val = 1
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if len(train_idx) == 0:
        raise DataFormatError(f"{source}: no training images left after the validation split")

    def part(group: list[_Entry]) -> tuple[ImageReader, torch.Tensor]:
        pos = np.asarray([position[e.name] for e in group], dtype=np.int64)
        labels = torch.tensor([label_of[e.label] for e in group], dtype=torch.int64)
        return ImageReader(index, pos), labels

    readers: dict[str, ImageReader] = {}
    readers["train"], train_y = part([pool[i] for i in train_idx])
    readers["val"], val_y = part([pool[i] for i in val_idx])
    test_y: torch.Tensor | None = None
    if test:
        readers["test"], test_y = part(test)
    mean, std = _estimate_stats(readers["train"], image_size, stats_images, seed)
    log.info("%s: %d train, %d val, %d test images", source, len(train_y), len(val_y), len(test))
    return StreamedImageDataset(
        name=name or f"imagefolder:{source}",
        classes=classes,
        image_size=int(image_size),
        mean=mean,
        std=std,
        train_labels=train_y,
        val_labels=val_y,
        test_labels=test_y,
        crop=crop,
        crop_ratio=crop_ratio,
        workers=workers,
        _readers=readers,
    )
