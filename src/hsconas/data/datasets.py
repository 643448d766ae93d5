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
- ``imagefolder:PATH``: an ImageNet-style tree ``PATH/train/<class>/*`` and ``PATH/val/<class>/*``
  (or one class tree, split by a seeded validation share), folder or tar archive, **streamed**
  (:mod:`hsconas.data.streamed`): decoded per batch by ``DataLoader`` workers with the standard
  transforms at the requested resolution, so memory does not grow with the dataset;
- ``folder:PATH``: any image tree ``[{train,test}/]{class}/*.jpg|jpeg|png|bmp`` (folder or archive),
  decoded once into memory (the right thing for small trees).

The CIFAR-10 image tree is streamed too (pad-crop + flip at 32 px by default), unless
``stream=False`` asks for the in-memory path.

Images are kept as ``uint8`` ``(N, C, H, W)`` tensors; decoded image trees are cached as ``.npz``
files in a cache folder (``cache_dir``, else ``$HSCONAS_CACHE_DIR``, else ``~/.cache/hsconas``), so
decoding happens once. The validation split is a seeded random share of the training pool; a
``test`` split exists when the source has one. Batches are normalised floats
(``(x / 255 - mean) / std``, per-channel statistics of the training split); augmentation (random
crop with zero padding, horizontal flip where sensible) runs on whole batches with an explicit
``torch.Generator``.

The in-memory dataset, its loader and augmentation live in :mod:`hsconas.data.image_dataset`, the
format readers in :mod:`hsconas.data.image_formats`; this module holds the spec parser
(:func:`load_dataset`) and the cached image-tree loader (:func:`load_image_tree`), and re-exports
the names of the other two.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.data.image_dataset import Augment, ImageDataset, TensorLoader, _assemble
from hsconas.data.image_formats import (
    IMAGE_SUFFIXES as IMAGE_SUFFIXES,
)
from hsconas.data.image_formats import (
    _data_root,
    _decode_tree,
    load_cifar10_batches,
    load_digits,
    load_mnist,
)
from hsconas.data.streamed import StreamedImageDataset
from hsconas.errors import DataFormatError, DataNotFoundError

__all__ = [
    "AnyDataset",
    "Augment",
    "ImageDataset",
    "StreamedImageDataset",
    "TensorLoader",
    "default_cache_dir",
    "load_cifar10_batches",
    "load_dataset",
    "load_digits",
    "load_image_tree",
    "load_mnist",
]


def default_cache_dir() -> Path:
    """``$HSCONAS_CACHE_DIR``, else ``~/.cache/hsconas``: where decoded image trees are cached."""
    env = os.environ.get("HSCONAS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "hsconas"


def _cache_key(source: Path, subset: int | None, seed: int, size: int | None) -> str:
    st = source.stat()
    text = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{subset}|{seed}|{size}|v1"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
DATASET_SPECS = ("digits", "mnist[:PATH]", "cifar10[:PATH]", "imagefolder:PATH", "folder:PATH")

AnyDataset = ImageDataset | StreamedImageDataset
"""What :func:`load_dataset` returns: in-memory or streamed, with the same ``loader`` interface."""


def load_dataset(
    spec: str,
    *,
    subset: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    image_size: int | None = None,
    workers: int = 0,
    stream: bool | None = None,
) -> Any:
    """Load a dataset named by ``spec`` (see the module docstring).

    ``imagefolder:PATH`` and the CIFAR-10 image tree (``cifar10`` with the JPEG archive or a
    folder of JPEGs) are streamed (:class:`~hsconas.data.streamed.StreamedImageDataset`: images
    stay on disk and are decoded per batch by ``workers`` processes); ``digits``, ``mnist``, the
    CIFAR-10 python batches and ``folder:PATH`` are held in memory (:class:`ImageDataset`).

    Args:
        spec: ``digits``, ``mnist[:PATH]``, ``cifar10[:PATH]``, ``imagefolder:PATH`` or
            ``folder:PATH``.
        subset: keep at most this many images of the training pool (and of the test split).
        val_fraction: share of the training pool held out as the validation split.
        seed: seed of the subset and of the train/validation split.
        cache_dir: cache folder of decoded image trees and decompressed archives.
        progress: show a progress bar while decoding image trees (in-memory path).
        image_size: side of the images in pixels (streamed datasets; default 32 for CIFAR-10,
            224 for ``imagefolder``).
        workers: ``DataLoader`` processes decoding streamed images (0: in this process).
        stream: ``False`` decodes a CIFAR-10 image tree into memory (the ``.npz``-cached path)
            instead of streaming it; ``None`` streams where the spec streams by default.

    Raises:
        DataNotFoundError: a missing path (the message names the expected file).
        DataFormatError: a file in the wrong format, or an unknown spec.
    """
    from hsconas.data.streamed import load_streamed

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
        if stream is False:
            return load_image_tree(
                where,
                cache_dir=cache_dir,
                image_size=32,
                augment=Augment(4, True),
                name=f"cifar10:{where}",
                progress=progress,
                **common,
            )
        return load_streamed(
            where,
            image_size=image_size or 32,
            cache_dir=cache_dir,
            workers=workers,
            crop="padded",
            crop_ratio=1.0,
            name=f"cifar10:{where}",
            **common,
        )
    if kind == "imagefolder":
        if path is None:
            raise DataFormatError("imagefolder: needs a path, like imagefolder:/data/imagenet")
        return load_streamed(
            path, image_size=image_size or 224, cache_dir=cache_dir, workers=workers, **common
        )
    if kind == "folder":
        if path is None:
            raise DataFormatError("folder: needs a path, like folder:/data/my_images")
        return load_image_tree(
            path, cache_dir=cache_dir, progress=progress, image_size=image_size, **common
        )
    raise DataFormatError(f"unknown dataset {spec!r}; give one of: {', '.join(DATASET_SPECS)}")
