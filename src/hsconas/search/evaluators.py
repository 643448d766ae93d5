"""Evaluators made of one accuracy source and one latency source, mixed freely.

A search needs accuracy (percent) and latency (ms) of every architecture it queries. Each comes from
one *source*:

- accuracy: a benchmark table (:class:`TableAccuracy`) or a trained supernet whose members are
  extracted, batch-norm recalibrated and evaluated on a validation split (:class:`SupernetAccuracy`);
- latency: a recorded table, maybe a user's own file with other device columns
  (:class:`TableLatency`), or a saved latency model (:class:`ModelLatency`): an HSCoNAS hardware
  model (``hsconas-hw-model``) or a learned predictor (``hsconas-latency-model``).

:class:`CombinedEvaluator` joins any accuracy source with any latency source of the same space and
satisfies the :class:`~hsconas.search.problem.Evaluator` protocol. This module does not import torch:
:class:`SupernetAccuracy` imports the accuracy code only when it first evaluates.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hsconas.errors import DataFormatError
from hsconas.space import Architecture, SearchSpace

__all__ = [
    "AccuracySource",
    "CombinedEvaluator",
    "LatencySource",
    "ModelLatency",
    "SupernetAccuracy",
    "SupernetEvaluator",
    "TableAccuracy",
    "TableLatency",
    "file_digest",
    "load_latency_model",
]


class AccuracySource(Protocol):
    """Where accuracy comes from: a pure function of the architecture and ``settings``."""

    @property
    def settings(self) -> Mapping[str, Any]:
        """JSON-ready identity of the source (stored with a run)."""
        ...

    def accuracy(self, arch: Architecture) -> float:
        """Top-1 accuracy of ``arch``, percent."""
        ...


class LatencySource(Protocol):
    """Where latency comes from: a pure function of the architecture and ``settings``."""

    @property
    def settings(self) -> Mapping[str, Any]:
        """JSON-ready identity of the source (stored with a run)."""
        ...

    def latency_ms(self, arch: Architecture) -> float:
        """Latency of ``arch`` on the source's device, milliseconds."""
        ...


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex): identifies a checkpoint or model file in run settings."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_coverage(space: SearchSpace, archs: tuple[Architecture, ...], what: str) -> None:
    """Raise unless ``archs`` hold every architecture of ``space`` (the search may ask any)."""
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
    """One column of a recorded table, checked to cover every architecture of the space."""

    _what = "table"
    _key = "column"

    def __init__(self, table: Any, column: str, space: SearchSpace) -> None:
        if table.space != space.name:
            raise DataFormatError(
                f"the {self._what} is for space {table.space!r}, not {space.name!r}"
            )
        self._values = np.asarray(table.column(column), dtype=np.float64)
        _check_coverage(space, tuple(table.archs), f"{self._what} {table.path or ''}".strip())
        self.table = table
        self._column = column

    @property
    def settings(self) -> Mapping[str, Any]:
        return {
            "kind": "table",
            "table": str(getattr(self.table, "path", "") or ""),
            self._key: self._column,
        }

    def _value(self, arch: Architecture) -> float:
        return float(self._values[self.table.index_of(arch)])


class TableAccuracy(_TableColumn):
    """Accuracy read from an :class:`~hsconas.data.tables.AccuracyTable` column.

    Args:
        table: the accuracy table (percent).
        column: the dataset column.
        space: the searched space; the table must hold every one of its architectures.

    Raises:
        DataFormatError: a table of another space, an unknown column, or missing architectures.
    """

    _what = "accuracy table"

    @property
    def column(self) -> str:
        return self._column

    def accuracy(self, arch: Architecture) -> float:
        return self._value(arch)


class TableLatency(_TableColumn):
    """Latency read from one device column of a :class:`~hsconas.data.tables.LatencyTable`.

    The table may be a user's own recording with any device column names.

    Args:
        table: the latency table (ms).
        device: the device column.
        space: the searched space; the table must hold every one of its architectures.

    Raises:
        DataFormatError: a table of another space, an unknown device, or missing architectures.
    """

    _what = "latency table"
    _key = "device"

    @property
    def device(self) -> str:
        return self._column

    def latency_ms(self, arch: Architecture) -> float:
        return self._value(arch)


class LatencyModelLike(Protocol):
    """A saved latency model: the space and device it describes and batched predictions in ms
    (:class:`~hsconas.latency.hw_model.HSCoNASModel` and
    :class:`~hsconas.latency.model_io.LatencyModel` both are one)."""

    @property
    def space(self) -> str: ...

    @property
    def device(self) -> str: ...

    def predict_ms(self, archs: Sequence[Architecture]) -> np.ndarray: ...

    def predict_with_uncertainty(
        self, archs: Sequence[Architecture]
    ) -> tuple[np.ndarray, np.ndarray]: ...


class ModelLatency:
    """Latency predicted by a saved model: an HSCoNAS hardware model or a learned predictor.

    Args:
        model: an :class:`~hsconas.latency.hw_model.HSCoNASModel` or a
            :class:`~hsconas.latency.model_io.LatencyModel`.
        settings: JSON-ready identity (file name and digest).
    """

    def __init__(
        self, model: LatencyModelLike, *, settings: Mapping[str, Any] | None = None
    ) -> None:
        self.model = model
        self._settings = dict(settings or {"kind": "model", "device": str(model.device)})

    @property
    def space(self) -> str:
        """Space name the model predicts."""
        return str(self.model.space)

    @property
    def device(self) -> str:
        """Device the model predicts."""
        return str(self.model.device)

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self._settings)

    def latency_ms(self, arch: Architecture) -> float:
        return float(self.model.predict_ms([arch])[0])


def load_latency_model(
    path: str | os.PathLike[str], *, space: str | None = None, device: str | None = None
) -> ModelLatency:
    """Read a latency model file of either kind, checking its space and device.

    Args:
        path: an ``hsconas-hw-model`` file (``hsconas latency profile``) or an
            ``hsconas-latency-model`` file (``hsconas latency fit-table``).
        space: the space the search runs on (``None``: not checked).
        device: the device the caller asks for (``None``: the model's own).

    Raises:
        DataNotFoundError: no such file.
        ModelFileError: not a latency model file, or one of another space or device.
    """
    from hsconas.latency.model_io import FORMAT, ModelFileError, load_model, read_model_json

    p, doc = read_model_json(path)
    fmt = doc.get("format")
    settings: dict[str, Any] = {"kind": "model", "file": p.name, "sha256": file_digest(p)}
    if fmt == "hsconas-hw-model":
        from hsconas.latency.hw_model import HSCoNASModel, IncompatibleModelError

        try:
            hw = HSCoNASModel.from_json(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{p}: malformed HSCoNAS latency model ({exc})") from None
        for what, mine, theirs in (("space", hw.space, space), ("device", hw.device, device)):
            if theirs is not None and theirs != mine:
                raise IncompatibleModelError(
                    f"{p} is an HSCoNAS latency model of {what} {mine!r} (space {hw.space!r}, "
                    f"device {hw.device!r}), not of {what} {theirs!r}"
                )
        settings.update(format=fmt, space=hw.space, device=hw.device)
        return ModelLatency(hw, settings=settings)
    if fmt == FORMAT:
        lm = load_model(p, space=space, device=device)
        settings.update(format=fmt, space=lm.space, device=lm.device)
        return ModelLatency(lm, settings=settings)
    raise ModelFileError(
        f"{p}: not a latency model file (format {fmt!r}; expected 'hsconas-hw-model' from "
        f"`hsconas latency profile` or {FORMAT!r} from `hsconas latency fit-table`)"
    )


class SupernetAccuracy:
    """Accuracy of a member with weights inherited from a trained supernet.

    Each member is extracted, its batch norms are recalibrated on the calibration batches, and its
    top-1 accuracy is measured on the evaluation batches
    (:func:`hsconas.accuracy.evaluate.evaluate_subnets`). Values are cached per architecture.

    Args:
        supernet: the trained :class:`~hsconas.nn.supernet.Supernet` (eval mode).
        batches: pre-loaded :class:`~hsconas.accuracy.evaluate.EvalBatches`.
        settings: JSON-ready identity (checkpoint digest, data, calibration images).
    """

    def __init__(
        self, supernet: Any, batches: Any, *, settings: Mapping[str, Any] | None = None
    ) -> None:
        self.supernet = supernet
        self.batches = batches
        self._settings = dict(settings or {"kind": "supernet"})
        self._cache: dict[Architecture, float] = {}
        self.n_evals = 0

    @property
    def space(self) -> SearchSpace:
        """The supernet's space (maybe restricted)."""
        sp = self.supernet.space
        assert isinstance(sp, SearchSpace)
        return sp

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self._settings)

    def accuracy(self, arch: Architecture) -> float:
        if arch not in self._cache:
            from hsconas.accuracy.evaluate import evaluate_subnets

            (top1,) = evaluate_subnets(self.supernet, [arch], batches=self.batches)
            self._cache[arch] = 100.0 * top1
            self.n_evals += 1
        return self._cache[arch]


class CombinedEvaluator:
    """An :class:`~hsconas.search.problem.Evaluator` from one accuracy and one latency source.

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


class SupernetEvaluator(CombinedEvaluator):
    """Supernet accuracy (BN-recalibrated) with latency from a latency model object.

    Args:
        supernet: the trained supernet.
        latency_model: an HSCoNAS hardware model or a :class:`~hsconas.latency.model_io.LatencyModel`.
        batches: pre-loaded calibration and evaluation batches.
        settings: JSON-ready identity stored with runs.
    """

    def __init__(
        self,
        supernet: Any,
        latency_model: Any,
        batches: Any,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            SupernetAccuracy(supernet, batches),
            ModelLatency(latency_model),
            settings=settings,
        )

    @property
    def supernet(self) -> Any:
        """The trained supernet."""
        return self.accuracy_source.supernet  # type: ignore[attr-defined]
