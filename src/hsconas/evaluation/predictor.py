"""Accuracy predicted by a saved accuracy model (``hsconas accuracy fit``) as an accuracy source.

This module does not import torch: the model file is read when the source is created, and the
predictor computes MACs and parameters in closed form for the MobileNet spaces.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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
    """

    def __init__(self, model: Any, *, settings: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self._settings = dict(settings or {"kind": "accuracy-model", "space": model.space})
        self._cache: dict[Architecture, tuple[float, float]] = {}

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, space: str | None = None
    ) -> PredictorAccuracy:
        """The accuracy model saved at ``path``, identified in settings by name and SHA-256.

        Raises:
            DataNotFoundError: no such file.
            AccuracyModelError: not an accuracy model file, or a malformed one.
            IncompatibleAccuracyModelError: a model of another space than ``space``.
        """
        from hsconas.accuracy.predictor import load_accuracy_model

        p = Path(path)
        model = load_accuracy_model(p, space=space)
        settings = {
            "kind": "accuracy-model",
            "file": p.name,
            "sha256": file_digest(p),
            "space": model.space,
            "model": model.kind,
        }
        return cls(model, settings=settings)

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
            mean, sd = self.model.predict(todo)
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
