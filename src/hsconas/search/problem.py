"""Search problems: objectives, constraints, evaluators and the distinct-query counter.

An evaluation is a pure function of (architecture, evaluator settings) returning an immutable
:class:`EvalRecord`; nothing here holds hidden global state, so evaluations can later be spread over
processes or machines. Evaluators from other parts of hsconas (supernet accuracy, latency models)
plug in through the :class:`Evaluator` protocol. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from hsconas.errors import DataFormatError, HsconasError
from hsconas.space import Architecture, SearchSpace

Mode = Literal["pareto", "constraint", "weighted"]
MODES: tuple[str, ...] = ("pareto", "constraint", "weighted")


class SearchConfigError(HsconasError, ValueError):
    """A search configured with values that cannot work (bad mode, budget, query count, ...)."""


class BudgetInfeasibleError(HsconasError, ValueError):
    """No architecture of the space meets the latency budget."""


@runtime_checkable
class Evaluator(Protocol):
    """Anything that maps an architecture to its objective values.

    ``evaluate`` must be a pure function of the architecture and the evaluator's ``settings``; it
    returns at least ``accuracy`` (percent) and ``latency_ms`` (milliseconds).
    """

    @property
    def settings(self) -> Mapping[str, Any]:
        """JSON-ready description of what the evaluator computes (stored with a run)."""
        ...

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        """Objective values of ``arch``: ``accuracy`` (%) and ``latency_ms`` (ms), maybe more."""
        ...


@dataclass(frozen=True)
class EvalRecord:
    """One evaluated architecture: the immutable record that crosses module boundaries.

    Attributes:
        arch: the architecture.
        key: its canonical string.
        accuracy: accuracy, percent (higher is better).
        latency_ms: latency, milliseconds (lower is better).
        extra: other values the evaluator returned.
    """

    arch: Architecture
    key: str
    accuracy: float
    latency_ms: float
    extra: Mapping[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """All values as a JSON-ready dict (what the store keeps)."""
        return {"accuracy": self.accuracy, "latency_ms": self.latency_ms, **self.extra}


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


class QueryCounter:
    """Caches evaluations and counts *distinct* architectures queried.

    Asking for an architecture evaluated before returns the cached record and costs nothing.
    Records may be pre-loaded (``preload``) from a stored run: they count as queries of the run
    (they were paid for) but the evaluator is not called again.

    Args:
        evaluator: the underlying evaluator.
        space: the space (for canonical strings).
    """

    def __init__(self, evaluator: Evaluator, space: SearchSpace) -> None:
        self.evaluator = evaluator
        self.space = space
        self._cache: dict[Architecture, EvalRecord] = {}
        self._order: list[EvalRecord] = []
        self.n_evaluator_calls = 0

    def __len__(self) -> int:
        return len(self._order)

    @property
    def n_queries(self) -> int:
        """Number of distinct architectures evaluated so far."""
        return len(self._order)

    @property
    def records(self) -> list[EvalRecord]:
        """Every distinct evaluation, in query order."""
        return list(self._order)

    def __contains__(self, arch: object) -> bool:
        return arch in self._cache

    def get(self, arch: Architecture) -> EvalRecord | None:
        return self._cache.get(arch)

    def _add(self, record: EvalRecord) -> EvalRecord:
        self._cache[record.arch] = record
        self._order.append(record)
        return record

    def evaluate(self, arch: Architecture) -> tuple[EvalRecord, bool]:
        """The record of ``arch`` and whether it was a new (counted) query."""
        cached = self._cache.get(arch)
        if cached is not None:
            return cached, False
        values = dict(self.evaluator.evaluate(arch))
        self.n_evaluator_calls += 1
        return self._add(make_record(self.space, arch, values)), True

    def preload(self, record: EvalRecord) -> None:
        """Add a stored record as if it had just been queried (no evaluator call)."""
        if record.arch not in self._cache:
            self._add(record)


def make_record(space: SearchSpace, arch: Architecture, values: Mapping[str, float]) -> EvalRecord:
    """Build an :class:`EvalRecord` from evaluator values (needs ``accuracy`` and ``latency_ms``)."""
    try:
        acc = float(values["accuracy"])
        lat = float(values["latency_ms"])
    except KeyError as exc:
        raise HsconasError(
            f"an evaluator must return 'accuracy' and 'latency_ms'; missing {exc}"
        ) from None
    extra = {k: float(v) for k, v in values.items() if k not in ("accuracy", "latency_ms")}
    return EvalRecord(arch, space.to_string(arch), acc, lat, extra)


@dataclass(frozen=True)
class Problem:
    """A hardware-aware search problem.

    Attributes:
        space: the (possibly restricted) search space.
        mode: ``pareto`` (accuracy vs latency front), ``constraint`` (best accuracy with
            latency <= ``budget_ms``) or ``weighted`` (MnasNet reward
            ``accuracy * (latency_ms / budget_ms) ** w`` with ``w = weight`` when over budget and
            0 otherwise).
        budget_ms: latency budget, ms (required by ``constraint`` and ``weighted``).
        weight: exponent of the weighted reward (negative).
    """

    space: SearchSpace
    mode: str = "pareto"
    budget_ms: float | None = None
    weight: float = -0.07

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SearchConfigError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode in ("constraint", "weighted") and self.budget_ms is None:
            raise SearchConfigError(f"mode {self.mode!r} needs a latency budget (--budget-ms)")
        if self.budget_ms is not None and not self.budget_ms > 0:
            raise SearchConfigError(f"the latency budget must be positive, got {self.budget_ms} ms")
        if self.weight > 0:
            raise SearchConfigError(f"the reward weight must be <= 0, got {self.weight}")

    def scalar_fitness(self, accuracy: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
        """Scalar fitness (higher is better) for ``constraint`` and ``weighted`` modes.

        Constraint mode: accuracy if within budget, else ``-latency_ms`` minus a large constant
        (infeasible points rank below every feasible one, closer-to-budget first). Pareto mode has
        no scalar fitness; this returns accuracy scaled down by latency rank as a fallback.
        """
        acc = np.asarray(accuracy, dtype=np.float64)
        lat = np.asarray(latency_ms, dtype=np.float64)
        if self.mode == "constraint":
            assert self.budget_ms is not None
            return np.where(lat <= self.budget_ms, acc, -1e6 - lat)
        if self.mode == "weighted":
            assert self.budget_ms is not None
            ratio = np.maximum(lat / self.budget_ms, 1.0)
            return acc * ratio**self.weight
        return acc - 1e-3 * lat
