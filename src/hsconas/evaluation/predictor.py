"""Accuracy predicted by a saved accuracy model (``hsconas accuracy fit``) as an accuracy source.

This module does not import torch: the model file is read when the source is created, and the
predictor computes MACs and parameters in closed form for the MobileNet spaces. A model fitted
with extra inputs (zero-cost proxies, a supernet's accuracy) gets them from
:class:`~hsconas.accuracy.predictor_inputs.PredictorInputs` (torch is imported when a proxy is
computed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.evaluation.base import SourceError
from hsconas.latency.model_file import file_digest
from hsconas.space import Architecture, SearchSpace

__all__ = ["PredictorAccuracy"]


class PredictorAccuracy:
    """Top-1 accuracy (percent) predicted by an
    :class:`~hsconas.accuracy.predictor.AccuracyPredictor`; values cached per architecture.

    Args:
        model: the fitted accuracy predictor.
        settings: JSON-ready identity (file name and digest).
        inputs: computes the model's extra inputs of architectures (needed when the model has
            any: :class:`~hsconas.accuracy.predictor_inputs.PredictorInputs`).

    Raises:
        MissingInputError: the model needs extra inputs and ``inputs`` is ``None``.
    """

    def __init__(
        self,
        model: Any,
        *,
        settings: Mapping[str, Any] | None = None,
        inputs: Callable[[Sequence[Architecture]], Mapping[str, Any]] | None = None,
    ) -> None:
        from hsconas.accuracy.predictor import MissingInputError

        if model.inputs and inputs is None:
            raise MissingInputError(model.features.missing_message())
        self.model = model
        self.inputs = inputs
        self._settings = dict(settings or {"kind": "accuracy-model", "space": model.space})
        if inputs is not None and hasattr(inputs, "settings"):
            self._settings["inputs"] = dict(inputs.settings())
        self._cache: dict[Architecture, tuple[float, float]] = {}

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        space: str | None = None,
        data: str | None = None,
        store: Any = None,
        supernet: Any = None,
    ) -> PredictorAccuracy:
        """The accuracy model saved at ``path``, identified in settings by name and SHA-256.

        Args:
            path: the model file.
            space: the space it must describe (``None``: not checked).
            data: dataset spec of the proxies' images (models with proxy inputs).
            store: results store of the proxy values.
            supernet: accuracy source of the supernet (models with a supernet input).

        Raises:
            DataNotFoundError: no such file.
            AccuracyModelError: not an accuracy model file, or a malformed one.
            IncompatibleAccuracyModelError: a model of another space than ``space``, or proxies
                of another dataset than ``data``.
            MissingInputError: the model needs proxies and no ``data``, or a supernet and none.
        """
        from hsconas.accuracy.predictor import load_accuracy_model

        p = Path(path)
        model = load_accuracy_model(p, space=space)
        inputs = None
        if model.inputs:
            from hsconas.accuracy.predictor_inputs import PredictorInputs

            inputs = PredictorInputs(model, data=data, store=store, supernet=supernet)
        settings = {
            "kind": "accuracy-model",
            "file": p.name,
            "sha256": file_digest(p),
            "space": model.space,
            "model": model.kind,
        }
        return cls(model, settings=settings, inputs=inputs)

    @property
    def name(self) -> str:
        return f"model:{self._settings.get('file', self.model.kind)}"

    @property
    def space(self) -> str:
        """Space name the model predicts."""
        return str(self.model.space)

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self._settings)

    @property
    def covered(self) -> dict[str, list[Any]]:
        """Gene values the model's table held where it did not span the space (resolutions)."""
        return dict(self.model.covered)

    def pool(self, space: SearchSpace) -> None:
        """Any member of the model's space.

        Raises:
            SourceError: a space other than the model's.
        """
        if space.name != self.space:
            raise SourceError(f"an accuracy model of space {self.space!r}, not {space.name!r}")
        return None

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """(predicted accuracy, its sd), percent, of each architecture."""
        todo = list(dict.fromkeys(a for a in archs if a not in self._cache))
        if todo:
            extra = self.inputs(todo) if self.inputs is not None else None
            mean, sd = self.model.predict(todo, extra)
            for a, m, s in zip(todo, mean, sd, strict=True):
                self._cache[a] = (float(m), float(s))
        vals = [self._cache[a] for a in archs]
        return (
            np.array([v[0] for v in vals], dtype=np.float64),
            np.array([v[1] for v in vals], dtype=np.float64),
        )

    def accuracy(self, arch: Architecture) -> float:
        """Predicted top-1 accuracy of ``arch``, percent."""
        return float(self.predict([arch])[0][0])

    def evaluate(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted accuracy of each architecture, percent."""
        return self.predict(archs)[0]
