"""Recorded-device and accuracy tables load as architectures of their spaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsconas.data import load_latency_table, load_nb201_accuracy
from hsconas.errors import DataFormatError, DataNotFoundError
from hsconas.space import get_space


def test_nb201_tables_align(data_dir: Path) -> None:
    lat = load_latency_table(data_dir / "nb201" / "latency_help.csv.gz")
    acc = load_nb201_accuracy(data_dir / "nb201" / "accuracy.csv")
    assert lat.space == "nb201" and len(lat) == 15625 and len(lat.devices) == 21
    assert len(set(lat.archs)) == 15625  # every NB201 cell once
    # row order is the NB201 index in both tables
    assert lat.archs == acc.archs
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    arch = get_space("nb201").from_string(best)
    assert acc.lookup(arch, "cifar10") == pytest.approx(94.37, abs=0.05)
    assert lat.lookup(arch, "pixel3") > 0


def test_fbnet_table(data_dir: Path) -> None:
    lat = load_latency_table(data_dir / "fbnet" / "latency_help.csv.gz")
    assert lat.space == "fbnet" and len(lat) == 5000 and len(lat.devices) == 24
    assert np.all(lat.latency_ms > 0)


def test_user_table_with_other_devices(tmp_path: Path) -> None:
    space = get_space("nb201")
    archs = space.sample_many(5, 0, unique=True)
    path = tmp_path / "mine.csv"
    lines = ["arch_str,my_board,my_phone"] + [
        f"{a},{i + 1.5},{2 * i + 1}" for i, a in enumerate(archs)
    ]
    path.write_text("\n".join(lines) + "\n")
    lat = load_latency_table(path)
    assert lat.devices == ("my_board", "my_phone")
    assert lat.lookup(archs[2], "my_board") == 3.5
    with pytest.raises(DataFormatError, match="my_board"):
        lat.column("pixel3")


def test_bad_tables(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError):
        load_latency_table(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("arch_str,dev\n|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    with pytest.raises(DataFormatError, match="row 0"):
        load_latency_table(bad)
    nocols = tmp_path / "nocols.csv"
    nocols.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match="cannot tell the space"):
        load_latency_table(nocols)


def test_user_table_of_any_registered_space_is_detected(tmp_path: Path) -> None:
    space = get_space("hsconas-digits")
    archs = space.sample_many(4, 0, unique=True)
    path = tmp_path / "digits_board.csv"
    lines = ["arch_str,board"] + [f'"{space.to_string(a)}",{i + 0.25}' for i, a in enumerate(archs)]
    path.write_text("\n".join(lines) + "\n")
    for lat in (load_latency_table(path), load_latency_table(path, space="hsconas-digits")):
        assert lat.space == "hsconas-digits"
        assert lat.lookup(archs[3], "board") == 3.25
    with pytest.raises(DataFormatError, match="row 0 is not an architecture of space nb201"):
        load_latency_table(path, space="nb201")
    junk = tmp_path / "junk.csv"
    junk.write_text("arch_str,board\nnot-an-arch,1.0\n")
    with pytest.raises(DataFormatError, match="no registered space"):
        load_latency_table(junk)
