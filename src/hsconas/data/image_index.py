"""Where the images of a folder or a tar archive are: an index of paths or archive offsets (cached
beside a decompressed copy of a ``.tar.gz``), and a reader of one image's bytes by position that
works across forked ``DataLoader`` workers (``pread``)."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.errors import DataFormatError

__all__ = ["ImageIndex", "ImageReader", "open_index", "sub_reader"]


@dataclass(frozen=True)
class ImageIndex:
    """Where the images are: a folder (``root`` + relative names) or a plain tar (offsets)."""

    root: str  # folder or plain .tar path
    is_tar: bool
    names: list[str]
    offsets: np.ndarray | None = None  # int64 (N,), tar only
    sizes: np.ndarray | None = None  # int64 (N,), tar only


def _source_key(source: Path) -> str:
    st = source.stat()
    text = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|stream-v1"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _index_tar(tar_path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    names: list[str] = []
    offsets: list[int] = []
    sizes: list[int] = []
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for m in tar:
                if m.isfile():
                    names.append(m.name)
                    offsets.append(m.offset_data)
                    sizes.append(m.size)
    except (tarfile.TarError, OSError) as exc:
        raise DataFormatError(f"{tar_path}: not a tar archive of images ({exc})") from None
    return names, np.asarray(offsets, dtype=np.int64), np.asarray(sizes, dtype=np.int64)


def open_index(source: Path, cache_dir: Path) -> ImageIndex:
    """Index a folder, or a tar archive (a compressed one decompressed once into ``cache_dir``)."""
    if source.is_dir():
        names = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
        return ImageIndex(str(source), False, names)
    with source.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        key = _source_key(source)
        stem = source.name.split(".")[0] or "images"
        plain = cache_dir / f"{stem}_{key}.tar"
        if not plain.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = plain.with_name(f"{plain.name}.tmp{os.getpid()}")
            try:
                with gzip.open(source, "rb") as src, tmp.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (OSError, EOFError) as exc:
                tmp.unlink(missing_ok=True)
                raise DataFormatError(f"{source}: not a valid .tar.gz ({exc})") from None
            tmp.replace(plain)
        tar_path = plain
    else:
        tar_path = source
    index_file = cache_dir / f"{tar_path.name.split('.')[0]}_{_source_key(tar_path)}.index.npz"
    if index_file.is_file():
        try:
            with np.load(index_file, allow_pickle=False) as npz:
                return ImageIndex(
                    str(tar_path),
                    True,
                    [str(n) for n in npz["names"]],
                    npz["offsets"],
                    npz["sizes"],
                )
        except (OSError, ValueError, KeyError):
            pass  # a damaged index: rebuild it
    names, offsets, sizes = _index_tar(tar_path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp_index = index_file.with_name(f"{index_file.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp_index, names=np.asarray(names), offsets=offsets, sizes=sizes)
    tmp_index.replace(index_file)
    return ImageIndex(str(tar_path), True, names, offsets, sizes)


class ImageReader:
    """Reads one image's bytes by position in the index; safe across forked workers (pread)."""

    def __init__(self, index: ImageIndex, positions: np.ndarray) -> None:
        self.root = index.root
        self.is_tar = index.is_tar
        if index.is_tar:
            assert index.offsets is not None and index.sizes is not None
            self.offsets = index.offsets[positions]
            self.sizes = index.sizes[positions]
            self.names: list[str] = []
        else:
            self.names = [index.names[int(p)] for p in positions]
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.offsets) if self.is_tar else len(self.names)

    def where(self, i: int) -> str:
        return f"{self.root}@{int(self.offsets[i])}" if self.is_tar else self.names[i]

    def read(self, i: int) -> bytes:
        if not self.is_tar:
            return (Path(self.root) / self.names[i]).read_bytes()
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.root, os.O_RDONLY)
            self._pid = os.getpid()
        return os.pread(self._fd, int(self.sizes[i]), int(self.offsets[i]))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"] = None  # every process opens its own descriptor
        return state


def sub_reader(reader: ImageReader, part: slice) -> ImageReader:
    out = ImageReader.__new__(ImageReader)
    out.__dict__.update(reader.__getstate__())
    if reader.is_tar:
        out.offsets, out.sizes = reader.offsets[part], reader.sizes[part]
    else:
        out.names = reader.names[part]
    return out
