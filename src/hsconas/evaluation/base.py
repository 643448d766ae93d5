"""The two contracts every evaluation source fulfils, and what they share (no torch here).

A search, block profiling and the pipeline need the accuracy (percent) and the latency (ms) of the
architectures they look at. Each number comes from one *source*, a pure function of the
architecture and the source's ``settings``:

- an :class:`AccuracySource`: a benchmark table, a trained supernet, any function;
- a :class:`LatencySource`: a recorded device table, a saved latency model, or real timing on a
  backend of this machine.

Sources of either kind mix freely (:class:`CombinedEvaluator`). A source that can only answer
for some architectures (a table's rows) says which through :meth:`pool`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hsconas.errors import HsconasError
from hsconas.space.core import Architecture, SearchSpace, _same_value
from hsconas.store import Measurement, ResultStore

__all__ = [
    "AccuracySource",
    "ArchPool",
    "CombinedEvaluator",
    "LatencySource",
    "SourceError",
    "measure_cached",
]


class SourceError(HsconasError, ValueError):
    """A source that is malformed, unavailable, or does not fit the space."""


class ArchPool:
    """A fixed set of architectures (table rows) with a vectorised ``holds`` test.

    Args:
        space: the space of the architectures.
        archs: the members (duplicates are dropped, first occurrence kept).
    """

    def __init__(self, space: SearchSpace, archs: Iterable[Architecture]) -> None:
        self.space = space
        self.archs: tuple[Architecture, ...] = tuple(dict.fromkeys(archs))
        self._set = set(self.archs)
        n = len(space.genes)
        self._values = np.empty((len(self.archs), n), dtype=object)
        self._active = np.zeros((len(self.archs), n), dtype=bool)
        for i, a in enumerate(self.archs):
            self._values[i] = a.values
            self._active[i] = space.active_mask(a.values)

    def __len__(self) -> int:
        return len(self.archs)

    def __contains__(self, arch: object) -> bool:
        return arch in self._set

    def mask_of(self, position: int, choice: Any) -> np.ndarray:
        """Boolean mask of the members holding ``choice`` on the active gene ``position``."""
        col = self._values[:, position]
        same = np.fromiter((_same_value(choice, v) for v in col), bool, len(col))
        return same & self._active[:, position]

    def restricted(self, keep: Callable[[Architecture], bool]) -> ArchPool:
        return ArchPool(self.space, (a for a in self.archs if keep(a)))


class AccuracySource(Protocol):
    """Where accuracy comes from."""

    @property
    def name(self) -> str:
        """Short label (``table:cifar100``, ``supernet``)."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """JSON-ready identity of the source (stored with a run)."""
        ...

    def pool(self, space: SearchSpace) -> ArchPool | None:
        """The architectures this source can answer for, or ``None`` for any member."""
        ...

    def accuracy(self, arch: Architecture) -> float:
        """Top-1 accuracy of ``arch``, percent."""
        ...

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Accuracy of each architecture, percent."""
        ...


class LatencySource(Protocol):
    """Where latency on one device comes from."""

    @property
    def kind(self) -> str:
        """``table``, ``model`` or the backend name (the store's ``backend`` field)."""
        ...

    @property
    def device(self) -> str:
        """The device whose latency this source gives."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """JSON-ready identity of the source (stored with a run; keys stored measurements)."""
        ...

    def pool(self, space: SearchSpace) -> ArchPool | None:
        """The architectures this source can measure, or ``None`` for any member of the space."""
        ...

    def latency_ms(self, arch: Architecture) -> float:
        """Latency of ``arch`` on :attr:`device`, milliseconds."""
        ...

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        """(latency in ms of each arch, how many were newly measured rather than read back)."""
        ...


def measure_cached(
    source: LatencySource,
    space: SearchSpace,
    archs: Sequence[Architecture],
    store: ResultStore | None,
    compute: Callable[[list[Architecture]], np.ndarray],
) -> tuple[np.ndarray, int]:
    """Read what the store has for these archs from ``source``, compute the rest and store it.

    Returns:
        (latency in ms of each arch, how many were computed rather than read back).
    """
    keys = [space.to_string(a) for a in archs]
    known: dict[str, float] = {}
    if store is not None:
        for m in store.measurements(
            space=space.name,
            kind="network",
            device=source.device,
            backend=source.kind,
            settings=source.settings,
        ):
            known[m.key] = m.median_ms
    todo = [a for a, k in zip(archs, keys, strict=True) if k not in known]
    todo = list(dict.fromkeys(todo))
    if todo:
        vals = compute(todo)
        for a, v in zip(todo, vals, strict=True):
            k = space.to_string(a)
            known[k] = float(v)
            if store is not None:
                store.put_measurement(
                    Measurement(
                        space=space.name,
                        kind="network",
                        key=k,
                        device=source.device,
                        backend=source.kind,
                        settings=dict(source.settings),
                        median_ms=float(v),
                        spread_ms=0.0,
                        n_runs=1,
                        stable=True,
                    )
                )
    return np.array([known[k] for k in keys], dtype=np.float64), len(todo)


class CombinedEvaluator:
    """A search :class:`~hsconas.search.core.problem.Evaluator` from one accuracy and one latency
    source.

    Args:
        accuracy: the accuracy source (percent).
        latency: the latency source (ms).
        settings: JSON-ready identity stored with runs (default: both sources' settings).
    """

    def __init__(
        self,
        accuracy: AccuracySource,
        latency: LatencySource,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.accuracy_source = accuracy
        self.latency_source = latency
        if settings is None:
            settings = {"accuracy": dict(accuracy.settings), "latency": dict(latency.settings)}
        self._settings = dict(settings)

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self._settings)

    @property
    def n_accuracy_evals(self) -> int:
        """Accuracy computations so far (supernet evaluations; 0 for tables)."""
        return int(getattr(self.accuracy_source, "n_evals", 0))

    def accuracy(self, arch: Architecture) -> float:
        """Accuracy of ``arch``, percent."""
        return self.accuracy_source.accuracy(arch)

    def latency_ms(self, arch: Architecture) -> float:
        """Latency of ``arch``, ms."""
        return self.latency_source.latency_ms(arch)

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        return {"accuracy": self.accuracy(arch), "latency_ms": self.latency_ms(arch)}
