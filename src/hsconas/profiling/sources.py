"""Where block profiling gets its numbers: measurement sources, accuracy sources, forced draws.

A latency source measures architectures end to end on one device:

* :class:`TableSource`: a recorded device table (a column of a HELP-style latency CSV); only the
  table's architectures can be measured, so forcing a block means drawing table rows that hold it;
* :class:`ModelSource`: a latency model file (``hsconas-latency-model`` predictors of
  :mod:`hsconas.latency.model_io`, or the LUT + correction model of
  :mod:`hsconas.latency.hw_model`);
* :class:`BackendSource`: real timing on this machine through
  :func:`hsconas.hardware.measure.measure_network` (torch, onnxruntime, cuda).

An accuracy source is a tabular oracle (:class:`TableAccuracy`, e.g. NAS-Bench-201), any callable
(:class:`CallableAccuracy`, e.g. a supernet evaluator), or nothing (latency-only profiling).
No torch is imported here unless a backend source measures.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hsconas.errors import DataFormatError, HsconasError
from hsconas.profiling.specs import BlockSpec, holds
from hsconas.space.core import Architecture, SearchSpace, _same_value
from hsconas.store import Measurement, ResultStore

__all__ = [
    "AccuracySource",
    "ArchPool",
    "BackendSource",
    "CallableAccuracy",
    "LatencySource",
    "ModelSource",
    "SourceError",
    "TableAccuracy",
    "TableSource",
    "draw_forced",
    "draw_random",
    "parse_source",
]


class SourceError(HsconasError, ValueError):
    """A measurement source that is malformed, unavailable, or does not fit the space."""


# ---------------------------------------------------------------------------------- pools
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

    def mask(self, spec: BlockSpec) -> np.ndarray:
        """Boolean mask of the members holding ``spec`` on an active gene."""
        col = self._values[:, spec.position]
        same = np.fromiter((_same_value(spec.choice, v) for v in col), bool, len(col))
        return same & self._active[:, spec.position]

    def restricted(self, keep: Callable[[Architecture], bool]) -> ArchPool:
        return ArchPool(self.space, (a for a in self.archs if keep(a)))


def draw_forced(
    space: SearchSpace,
    spec: BlockSpec,
    n: int,
    rng: np.random.Generator,
    *,
    pool: ArchPool | None = None,
    exclude: Iterable[Architecture] = (),
    max_tries: int = 10_000,
) -> list[Architecture]:
    """Up to ``n`` distinct architectures holding ``spec``, none of them in ``exclude``.

    With a pool (a table), the rows holding the block are drawn uniformly without replacement
    (fewer than ``n`` if the table has fewer). Without one, architectures are sampled from the space
    with the gene set to the block (genes it needs active, such as a unit's depth, are resampled
    until it is active), rejecting duplicates.
    """
    excluded = set(exclude)
    if pool is not None:
        idx = np.flatnonzero(pool.mask(spec))
        cand = [pool.archs[i] for i in idx if pool.archs[i] not in excluded]
        if len(cand) <= n:
            return cand
        pick = rng.choice(len(cand), size=n, replace=False)
        return [cand[i] for i in sorted(pick)]
    out: dict[Architecture, None] = {}
    tries = 0
    while len(out) < n and tries < max_tries:
        tries += 1
        values = list(space._random_values(rng))
        values[spec.position] = spec.choice
        canon = space._canonical(values)
        if not space._valid_values(canon):
            continue
        arch = Architecture(space.name, canon)
        if arch in excluded or arch in out or not holds(space, arch, spec):
            continue
        out[arch] = None
    return list(out)


def draw_random(
    space: SearchSpace,
    n: int,
    rng: np.random.Generator,
    *,
    pool: ArchPool | None = None,
) -> list[Architecture]:
    """``n`` distinct architectures drawn uniformly (table rows without replacement, or samples)."""
    if pool is not None:
        if n >= len(pool):
            return list(pool.archs)
        pick = rng.choice(len(pool), size=n, replace=False)
        return [pool.archs[i] for i in sorted(pick)]
    out: dict[Architecture, None] = {}
    tries = 0
    while len(out) < min(n, space.size()) and tries < 100 * max(n, 1):
        tries += 1
        out[space.sample(rng)] = None
    return list(out)


# ---------------------------------------------------------------------------------- latency
class LatencySource(Protocol):
    """Measures end-to-end latency (ms) of architectures on one device."""

    @property
    def kind(self) -> str:
        """``table``, ``model`` or the backend name (the store's ``backend`` field)."""
        ...

    @property
    def device(self) -> str: ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """JSON-ready settings that key stored measurements."""
        ...

    def pool(self, space: SearchSpace) -> ArchPool | None:
        """The architectures this source can measure, or ``None`` for any member of the space."""
        ...

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        """(latency in ms of each arch, how many were newly measured rather than read back)."""
        ...


def _cached(
    source: LatencySource,
    space: SearchSpace,
    archs: Sequence[Architecture],
    store: ResultStore | None,
    compute: Callable[[list[Architecture]], np.ndarray],
) -> tuple[np.ndarray, int]:
    """Read what the store has for these archs, compute the rest and store it."""
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


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@dataclass
class TableSource:
    """A recorded device table: one device column of a latency CSV.

    Args:
        path: the CSV (or CSV.gz) file.
        device: its device column.
        space: the space the table must belong to (a table of another space is refused).
    """

    path: Path
    device: str
    space_name: str
    _table: Any = field(default=None, repr=False)
    _pool: ArchPool | None = field(default=None, repr=False)

    kind = "table"

    def __post_init__(self) -> None:
        from hsconas.data.tables import load_latency_table

        self.path = Path(self.path)
        self._table = load_latency_table(self.path, space=self.space_name, devices=[self.device])
        if self._table.space != self.space_name:
            raise DataFormatError(
                f"{self.path} is a {self._table.space} table, not a {self.space_name} table"
            )

    @classmethod
    def from_table(cls, table: Any, device: str) -> TableSource:
        """Wrap an already loaded :class:`~hsconas.data.tables.LatencyTable` (no re-reading)."""
        table.column(device)  # raises DataFormatError naming the columns
        obj = cls.__new__(cls)
        obj.path = Path(table.path) if table.path is not None else Path("<table>")
        obj.device = device
        obj.space_name = table.space
        obj._table = table
        obj._pool = None
        return obj

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"table": self.path.name, "column": self.device}

    def pool(self, space: SearchSpace) -> ArchPool:
        if space.name != self._table.space:
            raise DataFormatError(
                f"{self.path} is a {self._table.space} table, not a {space.name} table"
            )
        if self._pool is None or self._pool.space is not space:
            self._pool = ArchPool(space, (a for a in self._table.archs if space.contains(a)))
        return self._pool

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        col = self._table.column(self.device)

        def compute(todo: list[Architecture]) -> np.ndarray:
            return np.array([col[self._table.index_of(a)] for a in todo], dtype=np.float64)

        return _cached(self, space, archs, store, compute)


@dataclass
class ModelSource:
    """Latency predicted by a model file (either format of :mod:`hsconas.latency`).

    Args:
        path: the JSON model file.
        device: the device name results are filed under (default: the model's own device).
    """

    path: Path
    device: str = ""
    _predict: Callable[[Sequence[Architecture]], np.ndarray] | None = field(
        default=None, repr=False
    )
    _space: str = ""
    _digest: str = ""

    kind = "model"

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            from hsconas.errors import DataNotFoundError

            raise DataNotFoundError(f"latency model file not found: {self.path}")
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.path}: not a JSON latency model file ({exc})") from None
        fmt = doc.get("format") if isinstance(doc, dict) else None
        if fmt == "hsconas-latency-model":
            from hsconas.latency.model_io import load_model

            model = load_model(self.path)
            self._predict = model.predict
            self._space, own = model.space, model.device
        elif fmt == "hsconas-hw-model":
            from hsconas.latency.hw_model import HSCoNASModel

            hw = HSCoNASModel.load(self.path)
            self._predict = hw.predict_ms
            self._space, own = hw.space, hw.device
        else:
            raise SourceError(
                f"{self.path}: not an hsconas latency model (format {fmt!r}); expected "
                "'hsconas-latency-model' or 'hsconas-hw-model'"
            )
        self.device = self.device or own
        self._digest = _file_digest(self.path)

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"model": self.path.name, "sha1": self._digest}

    def pool(self, space: SearchSpace) -> None:
        if space.name != self._space:
            raise SourceError(
                f"{self.path} is a latency model of space {self._space!r}, not {space.name!r}"
            )
        return None

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        assert self._predict is not None
        predict = self._predict
        return _cached(self, space, archs, store, lambda todo: np.asarray(predict(todo), float))


@dataclass
class BackendSource:
    """Real end-to-end timing on this machine (:func:`hsconas.hardware.measure.measure_network`).

    Args:
        backend: ``torch``, ``onnxruntime`` or ``cuda``.
        device: the device name results are filed under.
        batch: batch size.
        threads: intra-op threads of the backend.
        image_size: input resolution override, pixels (default: the space's).
        timing: a :class:`hsconas.hardware.timing.TimingConfig` (default: the protocol's own).
        reference: time every run against the space's middle network (cancels the machine's
            speed drift; see :mod:`hsconas.hardware.reference`).
    """

    backend: str
    device: str = "local-cpu"
    batch: int = 1
    threads: int | None = 1
    image_size: int | None = None
    timing: Any = None
    reference: bool = False
    # the backend of the last measure() call and its space: kept, so that every chunk of one
    # profile is timed against one reference with one calibration
    _backend: Any = field(default=None, repr=False, compare=False)
    _backend_space: str | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.backend

    @property
    def settings(self) -> Mapping[str, Any]:
        return {
            "batch": self.batch,
            "threads": self.threads,
            "image_size": self.image_size,
            "reference": self.reference,
        }

    def pool(self, space: SearchSpace) -> None:
        return None

    def _measure_fn(self) -> Callable[..., Any]:
        try:
            from hsconas.hardware.measure import measure_network
        except ImportError as exc:  # the measurement package or torch is missing
            raise SourceError(
                f"backend:{self.backend} needs hsconas.hardware.measure (and torch), which cannot "
                f"be imported here ({exc}); use --source table:CSV or model:FILE instead"
            ) from None
        return measure_network

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        measure_network = self._measure_fn()
        from hsconas.hardware.backends import get_backend
        from hsconas.hardware.measure import arch_input_shape, measurement_settings

        if self._backend is None or self._backend_space != space.name:
            from hsconas.hardware.reference import space_reference

            # the middle network of the space being profiled (a restricted space: among its
            # choices, e.g. at its one resolution)
            ref = space_reference(space, self.image_size) if self.reference else None
            try:
                self._backend = get_backend(self.backend, threads=self.threads, reference=ref)
            except (KeyError, ValueError, RuntimeError) as exc:
                raise SourceError(f"backend {self.backend!r} is not usable here: {exc}") from None
            self._backend_space = space.name
        be = self._backend

        out = np.empty(len(archs))
        new = 0
        for i, a in enumerate(archs):
            settings = measurement_settings(be, arch_input_shape(a, self.image_size), self.batch)
            stored = None
            if store is not None:
                stored = store.get_measurement(
                    space=space.name, kind="network", key=space.to_string(a),
                    device=self.device, backend=be.name, settings=settings,
                )  # fmt: skip
            if stored is None:
                new += 1
                stored = measure_network(
                    a, be, timing=self.timing, batch=self.batch, image_size=self.image_size,
                    store=store, device=self.device, reuse=False,
                )  # fmt: skip
            out[i] = stored.median_ms
        return out, new


# ---------------------------------------------------------------------------------- accuracy
class AccuracySource(Protocol):
    """Accuracy (percent) of architectures."""

    @property
    def name(self) -> str: ...

    def pool(self, space: SearchSpace) -> ArchPool | None: ...

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray: ...


@dataclass
class TableAccuracy:
    """Tabular accuracy (e.g. the NAS-Bench-201 table) of one column."""

    table: Any
    column: str
    _pool: ArchPool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.table.column(self.column)  # raises DataFormatError listing the columns

    @classmethod
    def from_path(cls, path: str | os.PathLike[str] | None, column: str) -> TableAccuracy:
        from hsconas.data.tables import load_nb201_accuracy

        return cls(load_nb201_accuracy(path), column)

    @property
    def name(self) -> str:
        return f"table:{self.column}"

    def pool(self, space: SearchSpace) -> ArchPool:
        if space.name != self.table.space:
            raise DataFormatError(
                f"the accuracy table is for space {self.table.space!r}, not {space.name!r}"
            )
        if self._pool is None or self._pool.space is not space:
            self._pool = ArchPool(space, (a for a in self.table.archs if space.contains(a)))
        return self._pool

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        col = self.table.column(self.column)
        return np.array([col[self.table.index_of(a)] for a in archs], dtype=np.float64)


@dataclass
class CallableAccuracy:
    """Accuracy from any function of a list of architectures (e.g. a supernet evaluator)."""

    fn: Callable[[Sequence[Architecture]], Sequence[float]]
    label: str = "callable"

    @property
    def name(self) -> str:
        return self.label

    def pool(self, space: SearchSpace) -> None:
        return None

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.asarray(self.fn(archs), dtype=np.float64)


# ---------------------------------------------------------------------------------- parsing
def parse_source(
    text: str, *, space: str, device: str | None, reference: bool = False
) -> LatencySource:
    """A source from ``backend:NAME``, ``model:FILE`` or ``table:CSV`` (the CLI's ``--source``).

    ``reference`` (backends only): time against the space's middle network.

    Raises:
        SourceError: an unknown prefix, or a table source without a device column.
    """
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise SourceError(f"--source {text!r} must be backend:NAME, model:FILE or table:CSV")
    if kind == "table":
        if not device:
            raise SourceError("a table source needs --device COLUMN (the device column)")
        return TableSource(Path(rest), device, space)
    if kind == "model":
        return ModelSource(Path(rest), device or "")
    if kind == "backend":
        return BackendSource(rest, device or "local-cpu", reference=reference)
    raise SourceError(f"--source {text!r}: unknown kind {kind!r}; use backend:, model: or table:")
