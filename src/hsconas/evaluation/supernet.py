"""Accuracy of members of a trained weight-sharing supernet, and any accuracy function, as
accuracy sources. This module does not import torch: the accuracy code is imported when a supernet
first evaluates."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hsconas.evaluation.base import CombinedEvaluator
from hsconas.evaluation.models import ModelLatency
from hsconas.space import Architecture, SearchSpace

__all__ = ["CallableAccuracy", "SupernetAccuracy", "SupernetEvaluator"]


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

    @property
    def name(self) -> str:
        return "supernet"

    def pool(self, space: SearchSpace) -> None:
        return None

    def accuracy(self, arch: Architecture) -> float:
        if arch not in self._cache:
            from hsconas.accuracy.evaluate import evaluate_subnets

            (top1,) = evaluate_subnets(self.supernet, [arch], batches=self.batches)
            self._cache[arch] = 100.0 * top1
            self.n_evals += 1
        return self._cache[arch]

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.array([self.accuracy(a) for a in archs], dtype=np.float64)


class SupernetEvaluator(CombinedEvaluator):
    """Supernet accuracy (BN-recalibrated) with latency from a latency model object.

    Args:
        supernet: the trained supernet.
        latency_model: an HSCoNAS hardware model or a :class:`~hsconas.latency.model_io.PredictorModel`.
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
            SupernetAccuracy(supernet, batches), ModelLatency(latency_model), settings=settings
        )

    @property
    def supernet(self) -> Any:
        """The trained supernet."""
        return self.accuracy_source.supernet  # type: ignore[attr-defined]


@dataclass
class CallableAccuracy:
    """Accuracy from any function of a list of architectures (percent)."""

    fn: Callable[[Sequence[Architecture]], Sequence[float]]
    label: str = "callable"

    @property
    def name(self) -> str:
        return self.label

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"kind": self.label}

    def pool(self, space: SearchSpace) -> None:
        return None

    def accuracy(self, arch: Architecture) -> float:
        return float(self.evaluate([arch])[0])

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.asarray(self.fn(archs), dtype=np.float64)
