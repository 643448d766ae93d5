"""Building sources from what a user types, and joining two sources into an evaluator: the one
place the CLI, the pipeline and the benchmarks assemble their evaluations. No torch here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hsconas.evaluation.backend import BackendLatency
from hsconas.evaluation.base import AccuracySource, CombinedEvaluator, LatencySource, SourceError
from hsconas.evaluation.models import ModelLatency
from hsconas.evaluation.predictor import PredictorAccuracy
from hsconas.evaluation.tables import TableAccuracy, TableLatency, TabularEvaluator
from hsconas.space import SearchSpace, get_space

__all__ = ["accuracy_model_source", "make_evaluator", "parse_latency_source"]


def parse_latency_source(
    text: str, *, space: str, device: str | None, reference: bool = False
) -> LatencySource:
    """A latency source from ``backend:NAME``, ``model:FILE`` or ``table:CSV`` (the CLI's
    ``--source``).

    Args:
        text: the source as typed.
        space: the space it must describe.
        device: the table's device column; for a model or a backend, the name results are
            filed under (default: the model's device, or ``local-cpu``).
        reference: backends only: time against the space's middle network.

    Raises:
        SourceError: an unknown prefix, or a table source without a device column.
    """
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise SourceError(f"--source {text!r} must be backend:NAME, model:FILE or table:CSV")
    if kind == "table":
        if not device:
            raise SourceError("a table source needs --device COLUMN (the device column)")
        return TableLatency.from_path(Path(rest), device, space)
    if kind == "model":
        return ModelLatency.from_file(Path(rest), file_device=device or None)
    if kind == "backend":
        return BackendLatency(rest, device or "local-cpu", reference=reference)
    raise SourceError(f"--source {text!r}: unknown kind {kind!r}; use backend:, model: or table:")


def accuracy_model_source(
    path: str | Path,
    *,
    space: str,
    data: str | None = None,
    store: Any = None,
    supernet: Callable[[], Any] | None = None,
) -> PredictorAccuracy:
    """The accuracy source of a saved accuracy model (``hsconas accuracy fit``; the CLI's
    ``--accuracy-model``).

    Args:
        path: the model file.
        space: the space it must describe.
        data: dataset spec of the images its proxy inputs are computed on.
        store: results store caching the proxy values.
        supernet: builds the supernet's accuracy source, for a model with a supernet input
            (called only then: loading a checkpoint and its images takes a while).

    Raises:
        DataNotFoundError: no such file.
        AccuracyModelError: not an accuracy model file, or a model of another space.
        MissingInputError: the model needs proxies and no ``data``, or a supernet and none.
        SourceError: ``data`` or ``supernet`` given to a model that does not use it.
    """
    from hsconas.accuracy.predictor import load_accuracy_model

    model = load_accuracy_model(Path(path), space=space)
    if data is not None and not model.inputs:
        raise SourceError(
            f"{path}: this accuracy model has no proxy or supernet inputs; --data is not used"
        )
    if supernet is not None and not model.features.supernet:
        raise SourceError(f"{path}: this accuracy model has no supernet input; drop --supernet")
    return PredictorAccuracy.from_file(
        Path(path),
        space=space,
        data=data if model.features.proxies else None,
        store=store,
        supernet=supernet() if supernet is not None else None,
    )


def make_evaluator(
    space: SearchSpace,
    accuracy: AccuracySource,
    latency: LatencySource,
    *,
    settings: Mapping[str, Any] | None = None,
) -> TabularEvaluator | CombinedEvaluator:
    """The search evaluator of ``space`` from one accuracy and one latency source.

    Two tables are joined on their common rows (:class:`TabularEvaluator`: the exact Pareto front
    of the space is then known). Otherwise each table among the sources must hold every
    architecture of ``space``, since the search may ask for any.

    Args:
        space: the searched space (maybe restricted).
        accuracy: the accuracy source.
        latency: the latency source.
        settings: JSON-ready identity stored with runs (default: the sources').

    Raises:
        DataFormatError: a table of another space, or one that misses architectures.
    """
    if isinstance(accuracy, TableAccuracy) and isinstance(latency, TableLatency):
        full = get_space(space.name)
        ev = TabularEvaluator.from_tables(
            full, accuracy.table, accuracy.column, latency.table, latency.device
        )
        return ev.restricted_to(space) if space.is_restricted else ev
    for source in (accuracy, latency):
        if isinstance(source, TableAccuracy | TableLatency):
            source.check_covers(space)
    return CombinedEvaluator(accuracy, latency, settings=settings)
