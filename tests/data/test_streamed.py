"""Streamed image datasets: index, splits, workers, archives and shards."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hsconas.data.datasets import load_dataset
from hsconas.data.streamed import StreamedImageDataset
from hsconas.errors import DataFormatError, DataNotFoundError


def _tree(root: Path, splits: tuple[str, ...] = ("train", "val"), per_class: int = 6) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for c, cls in enumerate(("cat", "dog", "emu")):
            folder = root / split / cls if split else root / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, size=(20 + i, 24, 3), dtype=np.uint8)
                arr[..., c] = 255  # a class-dependent channel: statistics are not uniform
                Image.fromarray(arr).save(folder / f"{i:03d}.png")


def _all(loader: object, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader.batches(torch.Generator().manual_seed(seed)), strict=True)  # type: ignore[attr-defined]
    return torch.cat(xs), torch.cat(ys)


def test_imagenet_layout_splits_and_batches(tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    d = load_dataset(f"imagefolder:{tmp_path / 'tree'}", image_size=16, val_fraction=0.2, seed=1)
    assert isinstance(d, StreamedImageDataset)
    assert d.classes == ("cat", "dog", "emu") and d.input_shape == (3, 16, 16)
    assert len(d.train_labels) + len(d.val_labels) == 18 and len(d.val_labels) == 4
    assert (
        d.test_labels is not None and sorted(d.test_labels.tolist()) == [0] * 6 + [1] * 6 + [2] * 6
    )
    assert d.mean[0] > 0.6 and d.mean[1] > 0.6  # a channel at 255 in a third of the images
    x, y = _all(d.loader("train", 5, drop_last=True))
    assert x.shape == (10, 3, 16, 16) and x.dtype == torch.float32 and len(y) == 10
    ev, ey = _all(d.loader("test", 4))
    assert ev.shape == (18, 3, 16, 16) and torch.equal(ey, d.test_labels)
    # the same seed gives the same augmented batches; another seed others
    a, _ = _all(d.loader("train", 5, drop_last=True), seed=3)
    b, _ = _all(d.loader("train", 5, drop_last=True), seed=3)
    c, _ = _all(d.loader("train", 5, drop_last=True), seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_workers_read_the_same_images(tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    d0 = load_dataset(f"imagefolder:{tmp_path / 'tree'}", image_size=16, workers=0)
    d2 = load_dataset(f"imagefolder:{tmp_path / 'tree'}", image_size=16, workers=2)
    a, ya = _all(d0.loader("test", 4))
    b, yb = _all(d2.loader("test", 4))
    assert torch.equal(a, b) and torch.equal(ya, yb)


def test_one_class_tree_is_split_by_a_seeded_share(tmp_path: Path) -> None:
    _tree(tmp_path / "flat", splits=("",))
    a = load_dataset(f"imagefolder:{tmp_path / 'flat'}", image_size=16, val_fraction=0.25, seed=0)
    b = load_dataset(f"imagefolder:{tmp_path / 'flat'}", image_size=16, val_fraction=0.25, seed=0)
    assert a.test_labels is None and len(a.val_labels) == round(0.25 * 18)
    assert len(a.train_labels) + len(a.val_labels) == 18
    assert torch.equal(_all(a.loader("val", 8))[0], _all(b.loader("val", 8))[0])
    t = a.with_test_from_val()
    assert t.test_labels is not None and len(t.val_labels) + len(t.test_labels) == len(a.val_labels)
    assert torch.equal(
        _all(t.loader("test", 8))[0], _all(a.loader("val", 8))[0][len(t.val_labels) :]
    )


def test_archive_streams_like_the_folder(tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    archive = tmp_path / "tree.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "tree" / "train", arcname="train")
        tar.add(tmp_path / "tree" / "val", arcname="val")
    folder = load_dataset(f"imagefolder:{tmp_path / 'tree'}", image_size=16)
    packed = load_dataset(f"imagefolder:{archive}", image_size=16, cache_dir=tmp_path / "c")
    assert torch.equal(_all(folder.loader("test", 7))[0], _all(packed.loader("test", 7))[0])
    assert len(list((tmp_path / "c").glob("*.tar"))) == 1  # decompressed once, then indexed


def test_shards_split_each_pass_between_ranks(tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    d = load_dataset(f"imagefolder:{tmp_path / 'tree'}", image_size=16, val_fraction=0.0)
    full = d.loader("train", 3, shuffle=True, augment=False)
    r0 = d.loader("train", 3, shuffle=True, augment=False, shard=(0, 2))
    r1 = d.loader("train", 3, shuffle=True, augment=False, shard=(1, 2))
    assert len(r0) == len(r1) == 3
    x, _ = _all(full)
    x0, _ = _all(r0)
    x1, _ = _all(r1)
    assert torch.equal(x0, x[0::2]) and torch.equal(x1, x[1::2])


def test_streamed_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="not found"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}")
    with pytest.raises(DataFormatError, match="needs a path"):
        load_dataset("imagefolder")
    bad = tmp_path / "bad" / "train" / "cat"
    bad.mkdir(parents=True)
    (bad / "0.jpg").write_bytes(b"junk")
    with pytest.raises(DataFormatError, match="cannot decode"):
        load_dataset(f"imagefolder:{tmp_path / 'bad'}", image_size=16)
    _tree(tmp_path / "v2", splits=("val",))
    with pytest.raises(DataFormatError, match="no training images"):
        load_dataset(f"imagefolder:{tmp_path / 'v2'}", image_size=16)


def test_shared_cifar10_archive_streams(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "images" / "cifar10_jpg.tar.gz"
    d = load_dataset(f"cifar10:{path}", subset=200, seed=0, cache_dir=tmp_path, workers=2)
    assert isinstance(d, StreamedImageDataset) and d.input_shape == (3, 32, 32)
    np.testing.assert_allclose(d.mean, (0.4914, 0.4822, 0.4465), atol=0.05)
    x, y = _all(d.loader("test", 50))
    assert x.shape == (200, 3, 32, 32) and int(y.max()) <= 9
    big = load_dataset(f"cifar10:{path}", subset=20, seed=0, cache_dir=tmp_path, image_size=64)
    assert next(big.loader("train", 4).batches(torch.Generator()))[0].shape == (4, 3, 64, 64)
