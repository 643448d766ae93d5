"""Readers of the image-file formats: decoded arrays in, :class:`ImageDataset` out.

- scikit-learn's bundled 8x8 digits (:func:`load_digits`);
- MNIST idx files or the 784-pixels-then-label CSV (:func:`load_mnist`);
- CIFAR-10 ``cifar-10-batches-py`` pickles (:func:`load_cifar10_batches`), read by a restricted
  unpickler that refuses everything but plain data (:class:`CifarUnpickler`);
- image trees ``[{train,test}/]{class}/*.jpg|png`` in a folder or a tar archive
  (:func:`_decode_tree`; the cached loader around it is
  :func:`hsconas.data.datasets.load_image_tree`).
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from hsconas.data.image_dataset import Augment, ImageDataset, _assemble, _subset_indices
from hsconas.errors import DataFormatError, DataNotFoundError

__all__ = ["CifarUnpickler", "load_cifar10_batches", "load_digits", "load_mnist", "safe_unpickle"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def _data_root() -> Path:
    from hsconas.data.tables import data_dir

    return data_dir()


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
def _latin1_encode(text: object, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (``latin1`` only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("a CIFAR-10 batch encodes bytes as latin1 text only")
    return text.encode("latin1")


def _plain_dtype(spec: object, *args: object) -> np.dtype:
    dtype = np.dtype(spec, *args)  # type: ignore[call-overload]
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed in a CIFAR-10 batch")
    return dtype


def _reconstruct(subtype: object, shape: object, dtype: object) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed in a CIFAR-10 batch")
    return np.ndarray.__new__(np.ndarray, shape, _plain_dtype(dtype))  # type: ignore[arg-type]


def _frombuffer(buf: object, dtype: object, shape: object, order: str) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=_plain_dtype(dtype))  # type: ignore[call-overload]
    return arr.reshape(shape, order=order)


def _scalar(dtype: object, raw: object = b"") -> object:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(raw, bytes):
        raise pickle.UnpicklingError("only plain numpy scalars are allowed in a CIFAR-10 batch")
    return np.frombuffer(raw, dtype=dtype, count=1)[0]


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only what a CIFAR-10 batch holds: dicts, lists, bytes, str,
    numbers and plain (non-object) numpy arrays.

    Every other global (``os.system``, ``builtins.eval``, any class) is refused before anything
    runs, so a crafted batch file raises instead of executing code. The allowed callables are
    wrappers that check their arguments (``_codecs.encode`` for latin1 only, numpy's array
    reconstruction for ``numpy.ndarray`` and non-object dtypes).
    """

    _ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "dtype"): _plain_dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.multiarray", "scalar"): _scalar,
        ("numpy._core.multiarray", "scalar"): _scalar,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    }

    def find_class(self, module: str, name: str) -> object:
        """The allowed callable for ``module.name``; anything else raises UnpicklingError."""
        found = self._ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                "bytes and numpy arrays"
            )
        return found


def safe_unpickle(data: bytes, where: str) -> object:
    """Read a CIFAR-10-style pickle without executing code (see :class:`CifarUnpickler`).

    Raises:
        DataFormatError: if it is not a pickle or it asks for anything beyond plain data.
    """
    try:
        return CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataFormatError(f"{where}: not a CIFAR-10 pickle batch ({exc})") from None


def _unpickle(path: Path) -> dict[bytes, object]:
    if not path.is_file():
        raise DataNotFoundError(f"CIFAR-10 batch file not found: expected {path}")
    doc = safe_unpickle(path.read_bytes(), str(path))
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
        doc = safe_unpickle(meta.read_bytes(), str(meta))
        names = doc.get(b"label_names") if isinstance(doc, dict) else None
        if isinstance(names, list) and names:
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
