"""Sources read from recorded tables: a benchmark's accuracy column, a device's latency column,
and the evaluator of two joined tables (whose exact Pareto front is known). No torch here."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.errors import DataFormatError
from hsconas.evaluation.base import ArchPool, measure_cached
from hsconas.space import Architecture, SearchSpace
from hsconas.store import ResultStore

__all__ = ["TableAccuracy", "TableLatency", "TabularEvaluator", "check_coverage"]


def check_coverage(space: SearchSpace, archs: Sequence[Architecture], what: str) -> None:
    """Raise unless ``archs`` hold every architecture of ``space`` (a search may ask any).

    Raises:
        DataFormatError: naming the share held and how to fix it.
    """
    # rows of a table of the space are members of the full space; check membership only when
    # the searched space is restricted (15625 NB201 checks take seconds)
    held = {a for a in archs if space.contains(a)} if space.is_restricted else set(archs)
    size = space.size()
    if len(held) < size:
        raise DataFormatError(
            f"the {what} holds {len(held)} of the {size:.3g} architectures of space {space.name} "
            "but the search may ask for any of them; give a table covering the space, restrict "
            "the space (--space-restrict), or use a model instead (a latency model fitted on the "
            "table with `hsconas latency fit-table`, or a supernet for accuracy)"
        )


class _TableColumn:
    """One column of a recorded table; it answers for the table's rows only (:meth:`pool`)."""

    _what = "table"
    _key = "column"

    def __init__(self, table: Any, column: str) -> None:
        self._values = np.asarray(table.column(column), dtype=np.float64)  # names the columns
        self.table = table
        self._column = column
        self._pool: ArchPool | None = None

    @property
    def path(self) -> str:
        """The table's file, or empty for a table built in memory."""
        return str(getattr(self.table, "path", "") or "")

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"kind": "table", "table": self.path, self._key: self._column}

    def _check_space(self, space: SearchSpace) -> None:
        if space.name != self.table.space:
            raise DataFormatError(
                f"the {self._what} is for space {self.table.space!r}, not {space.name!r}"
            )

    def pool(self, space: SearchSpace) -> ArchPool:
        """The table's rows that are members of ``space``.

        Raises:
            DataFormatError: a table of another space.
        """
        self._check_space(space)
        if self._pool is None or self._pool.space is not space:
            self._pool = ArchPool(space, (a for a in self.table.archs if space.contains(a)))
        return self._pool

    def check_covers(self, space: SearchSpace) -> None:
        """Raise unless the table is of ``space`` and holds every one of its architectures."""
        self._check_space(space)
        check_coverage(space, tuple(self.table.archs), f"{self._what} {self.path}".strip())

    def _value(self, arch: Architecture) -> float:
        return float(self._values[self.table.index_of(arch)])

    def _values_of(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.array([self._values[self.table.index_of(a)] for a in archs], dtype=np.float64)


class TableAccuracy(_TableColumn):
    """Accuracy read from an :class:`~hsconas.data.tables.AccuracyTable` column (percent).

    Raises:
        DataFormatError: an unknown column (the message lists the table's columns).
    """

    _what = "accuracy table"

    @classmethod
    def from_path(cls, path: str | os.PathLike[str] | None, column: str) -> TableAccuracy:
        """The NAS-Bench-201 accuracy table at ``path`` (``None``: the shipped data's)."""
        from hsconas.data.tables import load_nb201_accuracy

        return cls(load_nb201_accuracy(path), column)

    @property
    def column(self) -> str:
        return self._column

    @property
    def name(self) -> str:
        return f"table:{self._column}"

    def accuracy(self, arch: Architecture) -> float:
        return self._value(arch)

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        return self._values_of(archs)


class TableLatency(_TableColumn):
    """Latency read from one device column of a :class:`~hsconas.data.tables.LatencyTable` (ms).

    The table may be a user's own recording with any device column names.

    Raises:
        DataFormatError: an unknown device (the message lists the table's columns).
    """

    _what = "latency table"
    _key = "device"
    kind = "table"

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], device: str, space: str) -> TableLatency:
        """The ``device`` column of the latency CSV at ``path``, which must be a table of
        ``space``."""
        from hsconas.data.tables import load_latency_table

        table = load_latency_table(Path(path), space=space, devices=[device])
        if table.space != space:
            raise DataFormatError(f"{path} is a {table.space} table, not a {space} table")
        return cls(table, device)

    @property
    def device(self) -> str:
        return self._column

    def latency_ms(self, arch: Architecture) -> float:
        return self._value(arch)

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        return measure_cached(self, space, archs, store, self._values_of)


class TabularEvaluator:
    """Accuracy and latency read from benchmark tables (e.g. NAS-Bench-201 and HELP latencies).

    Args:
        space: the space the tables describe.
        archs: architectures of the rows (the same order for both arrays).
        accuracy: accuracy per row, percent.
        latency_ms: latency per row on the target device, ms.
        settings: JSON-ready description (table paths, columns) stored with runs.
    """

    def __init__(
        self,
        space: SearchSpace,
        archs: Sequence[Architecture],
        accuracy: np.ndarray,
        latency_ms: np.ndarray,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        acc = np.asarray(accuracy, dtype=np.float64)
        lat = np.asarray(latency_ms, dtype=np.float64)
        if not (len(archs) == len(acc) == len(lat)):
            raise DataFormatError(
                "accuracy and latency tables must have one value per architecture"
            )
        if not np.all(np.isfinite(acc)) or not np.all(np.isfinite(lat)):
            raise DataFormatError("accuracy and latency tables must not contain missing values")
        self.space = space
        self.archs = tuple(archs)
        self.accuracy = acc
        self.latency_ms = lat
        self._settings = dict(settings or {})
        self._row = {a: i for i, a in enumerate(self.archs)}

    @classmethod
    def from_tables(
        cls,
        space: SearchSpace,
        accuracy_table: Any,
        accuracy_column: str,
        latency_table: Any,
        device: str,
    ) -> TabularEvaluator:
        """Join an :class:`~hsconas.data.tables.AccuracyTable` and a ``LatencyTable`` on architecture.

        Only architectures present in both tables (and in ``space``) are kept.

        Raises:
            DataFormatError: unknown column/device, a table of another space, or no common rows.
        """
        for name, table in (("accuracy", accuracy_table), ("latency", latency_table)):
            if table.space != space.name:
                raise DataFormatError(
                    f"the {name} table is for space {table.space!r}, not {space.name!r}"
                )
        acc_col = accuracy_table.column(accuracy_column)
        lat_col = latency_table.column(device)
        archs, acc, lat = [], [], []
        for i, arch in enumerate(latency_table.archs):
            if arch in accuracy_table and space.contains(arch):
                archs.append(arch)
                acc.append(acc_col[accuracy_table.index_of(arch)])
                lat.append(lat_col[i])
        if not archs:
            raise DataFormatError(
                "the accuracy and latency tables have no architecture in common within the space"
            )
        settings = {
            "kind": "tabular",
            "accuracy_table": str(getattr(accuracy_table, "path", "")),
            "accuracy_column": accuracy_column,
            "latency_table": str(getattr(latency_table, "path", "")),
            "device": device,
        }
        return cls(space, archs, np.asarray(acc), np.asarray(lat), settings=settings)

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self._settings)

    def row_of(self, arch: Architecture) -> int:
        """Row of ``arch``; raises :class:`DataFormatError` if the tables do not hold it."""
        try:
            return self._row[arch]
        except KeyError:
            raise DataFormatError(
                f"architecture {self.space.to_string(arch)} is not in the tables"
            ) from None

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        i = self.row_of(arch)
        return {"accuracy": float(self.accuracy[i]), "latency_ms": float(self.latency_ms[i])}

    def restricted_to(self, space: SearchSpace) -> TabularEvaluator:
        """The same tables limited to the members of ``space`` (a restriction of this space)."""
        keep = [i for i, a in enumerate(self.archs) if space.contains(a)]
        if not keep:
            raise DataFormatError("the restricted space holds no architecture of the tables")
        idx = np.asarray(keep)
        settings = {**self._settings, "restrict": space.restriction()}
        return TabularEvaluator(
            space,
            [self.archs[i] for i in keep],
            self.accuracy[idx],
            self.latency_ms[idx],
            settings=settings,
        )
