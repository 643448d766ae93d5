"""Search problems: objectives, constraints, evaluators and the distinct-query counter.

An evaluation is a pure function of (architecture, evaluator settings) returning an immutable
:class:`EvalRecord`; nothing here holds hidden global state, so evaluations can later be spread over
processes or machines. Evaluators from other parts of hsconas (supernet accuracy, latency models)
plug in through the :class:`Evaluator` protocol. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from hsconas.errors import HsconasError
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
