"""Benchmark tables: recorded device latencies and tabular accuracies, mapped to architectures.

A latency table is a CSV (optionally gzipped) with one row per architecture and one numeric column
per device setting, in one of the schemas of ``shared/data``:

* NB201: ``arch_str`` (the NAS-Bench-201 string), optional ``arch_idx``;
* FBNet: ``arch_str`` (22 op names) and/or ``op_idx_list``, optional ``idx``;
* OFA MobileNetV3 (w1.0): ``ks``, ``e`` (20 values each), ``d`` (5 unit depths), ``r``, optional ``idx``.

Every other numeric column is a device, so a user's own table with other device columns works.
No torch here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hsconas.errors import DataFormatError, DataNotFoundError, InvalidArchitectureError
from hsconas.space import Architecture, SearchSpace, get_space, list_spaces

_INDEX_COLUMNS = {"arch_idx", "idx", "index", "Unnamed: 0"}
_ARCH_COLUMNS = {"arch_str", "op_idx_list", "ks", "e", "d", "r", "unique_str"}

NB201_ACCURACY_COLUMNS = {
    "cifar10": "cifar10_test_acc_200ep",
    "cifar100": "cifar100_test_acc_200ep",
    "imagenet16-120": "imagenet16_120_test_acc_200ep",
}


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The shared data directory: ``path``, else ``$HSCONAS_DATA_DIR``, else ``../shared/data``.

    The default is looked up relative to the working directory, then relative to the source
    checkout. Raises :class:`DataNotFoundError` if none exists.
    """
    if path is not None:
        candidates = [Path(path)]
    elif os.environ.get("HSCONAS_DATA_DIR"):
        candidates = [Path(os.environ["HSCONAS_DATA_DIR"])]
    else:
        repo = Path(__file__).resolve().parents[3]
        candidates = [Path("../shared/data"), repo.parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    raise DataNotFoundError(
        f"data directory not found (tried {', '.join(str(c) for c in candidates)}); "
        "set HSCONAS_DATA_DIR to the folder holding nb201/, fbnet/, ofa_mbv3/"
    )


def _read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"table file not found: {p}")
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataFormatError(f"{p}: not a readable CSV table ({exc})") from None


def _detect_space(df: pd.DataFrame, path: Path) -> str:
    cols = set(df.columns)
    if {"ks", "e", "d", "r"} <= cols:
        return "ofa-mbv3"
    if "op_idx_list" in cols:
        return "fbnet"
    if "arch_str" in cols:
        first = str(df["arch_str"].iloc[0]) if len(df) else ""
        if first.startswith("|") or not first:
            return "nb201"
        for name in dict.fromkeys(("fbnet", *list_spaces())):  # FBNet first, then the rest
            try:
                get_space(name).from_string(first)
            except (InvalidArchitectureError, ValueError):
                continue
            return name
        raise DataFormatError(
            f"{path}: the first arch_str {first[:60]!r} is an architecture of no registered "
            f"space ({', '.join(list_spaces())})"
        )
    raise DataFormatError(
        f"{path}: cannot tell the space of this table; expected an 'arch_str' column (nb201, "
        "fbnet) or 'ks', 'e', 'd', 'r' columns (ofa-mbv3)"
    )


def _ints(cell: object) -> list[int]:
    return [int(x) for x in str(cell).split()]


def _ofa_row_to_arch(space: SearchSpace, ks: str, e: str, d: str, r: object) -> Architecture:
    kernels, expands, depths = _ints(ks), _ints(e), _ints(d)
    if len(kernels) != 20 or len(expands) != 20 or len(depths) != 5:
        raise DataFormatError("ofa-mbv3 rows need 20 ks, 20 e and 5 d values")
    genes: dict[str, object] = {"resolution": int(str(r))}
    for u in range(5):
        genes[f"u{u + 1}.depth"] = depths[u]
        for j in range(depths[u]):
            genes[f"u{u + 1}.l{j + 1}.kernel"] = kernels[4 * u + j]
            genes[f"u{u + 1}.l{j + 1}.expand"] = expands[4 * u + j]
    return space.make(genes)  # type: ignore[arg-type]


def _rows_to_archs(df: pd.DataFrame, space: SearchSpace, path: Path) -> list[Architecture]:
    archs: list[Architecture] = []
    for i, row in enumerate(df.itertuples(index=False)):
        rec = row._asdict()
        try:
            if space.name.startswith("ofa-mbv3"):
                arch = _ofa_row_to_arch(space, rec["ks"], rec["e"], rec["d"], rec["r"])
            elif space.name == "fbnet" and "arch_str" not in rec:
                from hsconas.spaces.fbnet import FBNET_OPS

                arch = space.make([FBNET_OPS[k] for k in _ints(rec["op_idx_list"])])
            else:
                arch = space.from_string(str(rec["arch_str"]))
        except (InvalidArchitectureError, DataFormatError, IndexError, ValueError) as exc:
            raise DataFormatError(
                f"{path}: row {i} is not an architecture of space {space.name}: {exc}"
            ) from None
        archs.append(arch)
    return archs


def check_values(
    values: np.ndarray,
    columns: Sequence[str],
    path: Path,
    *,
    what: str,
    low: float = 0.0,
    high: float = float("inf"),
    positive: bool = False,
) -> None:
    """Refuse a table whose value columns hold missing, non-finite or out-of-range numbers.

    Args:
        values: array (n_rows, n_columns) as read from ``path``.
        columns: the column names, in order.
        path: the file, named in the message.
        what: what the values are (``latency``, ``accuracy``), for the message.
        low, high: the allowed closed range.
        positive: also refuse ``low`` itself (latencies must be > 0 ms).

    Raises:
        DataFormatError: naming the file, the column, the first bad row (1-based data row, the
            header not counted) and its value.
    """
    for j, column in enumerate(columns):
        col = values[:, j]
        bad = ~np.isfinite(col) | (col < low) | (col > high)
        if positive:
            bad |= col <= low
        if bad.any():
            i = int(np.argmax(bad))
            value = col[i]
            kind = (
                "missing"
                if np.isnan(value)
                else "not finite"
                if not np.isfinite(value)
                else (
                    f"out of range for a {what} (allowed: "
                    f"{'>' if positive else '>='} {low:g}{'' if high == float('inf') else f' and <= {high:g}'})"
                )
            )
            raise DataFormatError(
                f"{path}: column {column!r}, row {i + 1}: {what} value {value!r} is {kind} "
                f"({int(bad.sum())} such rows); fix or drop those rows"
            )


def check_unique(archs: Sequence[Architecture], space: SearchSpace, path: Path) -> None:
    """Refuse a table that lists one architecture in two rows (which one would count?).

    Raises:
        DataFormatError: naming both rows and the architecture.
    """
    seen: dict[Architecture, int] = {}
    for i, arch in enumerate(archs):
        first = seen.setdefault(arch, i)
        if first != i:
            shown = space.to_string(arch)
            shown = shown if len(shown) <= 120 else shown[:117] + "..."
            raise DataFormatError(
                f"{path}: rows {first + 1} and {i + 1} are the same architecture ({shown}); "
                "keep one row per architecture (average repeated measurements first)"
            )


class _ArchRows:
    """Row lookup shared by the tables: one architecture per row (the loaders refuse repeats)."""

    archs: tuple[Architecture, ...]
    _index: dict[Architecture, int]

    def __post_init__(self) -> None:
        for i, a in enumerate(self.archs):
            self._index.setdefault(a, i)

    def __len__(self) -> int:
        return len(self.archs)

    def index_of(self, arch: Architecture) -> int:
        """Row of ``arch``; raises KeyError if the table does not hold it."""
        return self._index[arch]

    def __contains__(self, arch: object) -> bool:
        return arch in self._index


@dataclass(frozen=True)
class LatencyTable(_ArchRows):
    """Recorded end-to-end latencies of many architectures on several device settings.

    Attributes:
        space: the space every row belongs to.
        archs: one architecture per row (row order of the file).
        devices: device column names.
        latency_ms: array (n_archs, n_devices), milliseconds.
        path: the file it came from.
    """

    space: str
    archs: tuple[Architecture, ...]
    devices: tuple[str, ...]
    latency_ms: np.ndarray
    path: Path | None = None
    _index: dict[Architecture, int] = field(default_factory=dict, repr=False, compare=False)

    def column(self, device: str) -> np.ndarray:
        """Latencies (ms) of every row on ``device``; raises DataFormatError naming the columns."""
        try:
            j = self.devices.index(device)
        except ValueError:
            raise DataFormatError(
                f"no device column {device!r} in {self.path or 'the latency table'}; "
                f"columns are: {', '.join(self.devices)}"
            ) from None
        return self.latency_ms[:, j]

    def lookup(self, arch: Architecture, device: str) -> float:
        """Recorded latency (ms) of ``arch`` on ``device``."""
        return float(self.column(device)[self.index_of(arch)])

    @cached_property
    def arch_strings(self) -> tuple[str, ...]:
        space = get_space(self.space)
        return tuple(space.to_string(a) for a in self.archs)


def load_latency_table(
    path: str | os.PathLike[str],
    *,
    space: str | None = None,
    devices: Sequence[str] | None = None,
) -> LatencyTable:
    """Read a latency table and map its rows to architectures.

    Args:
        path: CSV or CSV.gz file.
        space: expected space name; detected from the columns if omitted. ``nb201``, ``fbnet`` and
            ``ofa-mbv3`` schemas are understood.
        devices: keep only these device columns (all numeric non-architecture columns by default).

    Raises:
        DataNotFoundError: the file does not exist.
        DataFormatError: the columns or rows do not match the space, or a device is unknown.
    """
    p = Path(path)
    df = _read_csv(p)
    if space is not None and "arch_str" in df.columns:
        name = space  # every row is parsed in that space below, with a per-row error
    else:
        detected = _detect_space(df, p)
        name = space or detected
        if space is not None and not space.startswith(detected):
            raise DataFormatError(f"{p} is a {detected} table, not a {space} table")
    sp = get_space(name)
    device_cols = [
        c
        for c in df.columns
        if c not in _INDEX_COLUMNS | _ARCH_COLUMNS and pd.api.types.is_numeric_dtype(df[c])
    ]
    if devices is not None:
        missing = [d for d in devices if d not in device_cols]
        if missing:
            raise DataFormatError(
                f"no device column {missing[0]!r} in {p}; columns are: {', '.join(device_cols)}"
            )
        device_cols = list(devices)
    if not device_cols:
        raise DataFormatError(f"{p}: no numeric device columns")
    archs = _rows_to_archs(df, sp, p)
    check_unique(archs, sp, p)
    values = df[device_cols].to_numpy(dtype=np.float64)
    check_values(values, device_cols, p, what="latency (ms)", positive=True)
    return LatencyTable(name, tuple(archs), tuple(device_cols), values, p)


@dataclass(frozen=True)
class AccuracyTable(_ArchRows):
    """Tabular accuracies (percent) of architectures, e.g. NAS-Bench-201 test accuracy.

    Attributes:
        space: space name.
        archs: one architecture per row.
        columns: dataset names (``cifar10``, ``cifar100``, ``imagenet16-120`` for NB201).
        accuracy: array (n_archs, n_columns), percent.
    """

    space: str
    archs: tuple[Architecture, ...]
    columns: tuple[str, ...]
    accuracy: np.ndarray
    path: Path | None = None
    _index: dict[Architecture, int] = field(default_factory=dict, repr=False, compare=False)

    def column(self, name: str) -> np.ndarray:
        """Accuracies (%) of every row for dataset ``name``."""
        key = _accuracy_alias(name)
        if key not in self.columns:
            raise DataFormatError(
                f"no accuracy column {name!r} in {self.path or 'the accuracy table'}; "
                f"columns are: {', '.join(self.columns)}"
            )
        return self.accuracy[:, self.columns.index(key)]

    def lookup(self, arch: Architecture, column: str) -> float:
        return float(self.column(column)[self.index_of(arch)])


def _accuracy_alias(name: str) -> str:
    aliases: Mapping[str, str] = {
        "cifar10_test_acc_200ep": "cifar10",
        "cifar100_test_acc_200ep": "cifar100",
        "imagenet16_120_test_acc_200ep": "imagenet16-120",
        "imagenet16_120": "imagenet16-120",
        "imagenet16": "imagenet16-120",
        "ImageNet16-120": "imagenet16-120",
    }
    return aliases.get(name, name.lower())


def load_nb201_accuracy(path: str | os.PathLike[str] | None = None) -> AccuracyTable:
    """Read the NAS-Bench-201 accuracy table (``nb201/accuracy.csv`` of the data directory).

    Any CSV with an ``arch_str`` column and accuracy columns works; the three NB201 columns get the
    short names ``cifar10``, ``cifar100``, ``imagenet16-120``; other numeric columns keep theirs.
    """
    p = Path(path) if path is not None else data_dir() / "nb201" / "accuracy.csv"
    df = _read_csv(p)
    if "arch_str" not in df.columns:
        raise DataFormatError(f"{p}: an accuracy table needs an 'arch_str' column")
    cols = [
        c
        for c in df.columns
        if c not in _INDEX_COLUMNS | _ARCH_COLUMNS and pd.api.types.is_numeric_dtype(df[c])
    ]
    if not cols:
        raise DataFormatError(f"{p}: no numeric accuracy columns")
    space = get_space("nb201")
    archs = _rows_to_archs(df, space, p)
    check_unique(archs, space, p)
    values = df[cols].to_numpy(dtype=np.float64)
    check_values(values, cols, p, what="accuracy (%)", high=100.0)
    return AccuracyTable("nb201", tuple(archs), tuple(_accuracy_alias(c) for c in cols), values, p)
