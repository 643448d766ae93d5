"""Fixtures of the pipeline tests: a tiny image folder of real CIFAR-10 JPEGs."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pytest


def cifar_folder(archive: Path, root: Path, per_class: dict[str, int]) -> None:
    """``root/{train,val}/<class>/*.jpg``: the first JPEGs of each class of the shared archive
    (its ``test`` split becomes ``val``); ``per_class`` gives the images per class and split."""
    taken: Counter[tuple[str, str]] = Counter()
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3:
                continue
            split, cls, name = parts[-3:]
            out_split = "train" if split == "train" else "val"
            if taken[(out_split, cls)] >= per_class[out_split]:
                continue
            taken[(out_split, cls)] += 1
            fh = tar.extractfile(member)
            assert fh is not None
            target = root / out_split / cls / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(fh.read())


@pytest.fixture(scope="session")
def cifar_jpegs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageNet-layout folder of 8 training and 3 validation CIFAR-10 JPEGs per class (110
    real 32x32 images), built once per session from ``images/cifar10_jpg.tar.gz``."""
    root = tmp_path_factory.mktemp("cifar_jpegs")
    cifar_folder(data_dir / "images" / "cifar10_jpg.tar.gz", root, {"train": 8, "val": 3})
    return root
