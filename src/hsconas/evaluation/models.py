"""Latency predicted by a saved latency model: the HSCoNAS hardware model or a learned predictor
(:func:`hsconas.latency.base.load_latency_model` reads either). No torch here."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.evaluation.base import SourceError, measure_cached
from hsconas.latency.base import LatencyModel, file_digest, load_latency_model
from hsconas.latency.model_file import HW_MODEL_FORMAT, PREDICTOR_FORMAT
from hsconas.latency.model_io import PredictorModel
from hsconas.space import Architecture, SearchSpace
from hsconas.store import ResultStore

__all__ = ["ModelLatency"]


class ModelLatency:
    """Latency predicted by a latency model object.

    Args:
        model: an :class:`~hsconas.latency.hsconas.model.HSCoNASModel` or a
            :class:`~hsconas.latency.model_io.PredictorModel`.
        device: the device name results are filed under (default: the model's own).
        settings: JSON-ready identity (file name and digest).
    """

    kind = "model"

    def __init__(
        self,
        model: LatencyModel,
        *,
        device: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._device = device or str(model.device)
        self._settings = dict(settings or {"kind": "model", "device": str(model.device)})

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        space: str | None = None,
        device: str | None = None,
        file_device: str | None = None,
        fast: bool = False,
    ) -> ModelLatency:
        """The model saved at ``path``, identified in settings by file name and SHA-256.

        Args:
            path: a latency model file of either kind.
            space: the space it will be used with (``None``: not checked).
            device: the device the caller asks for (``None``: the model's own; checked).
            file_device: the device name results are filed under, unchecked (block profiling
                files a model's predictions under the user's device name).
            fast: see :func:`~hsconas.latency.base.load_latency_model`.

        Raises:
            DataNotFoundError: no such file.
            ModelFileError: not a latency model file, or one of another space or device.
        """
        p = Path(path)
        model = load_latency_model(p, space=space, device=device, fast=fast)
        settings = {
            "kind": "model",
            "file": p.name,
            "sha256": file_digest(p),
            "format": PREDICTOR_FORMAT if isinstance(model, PredictorModel) else HW_MODEL_FORMAT,
            "space": model.space,
            "device": model.device,
        }
        return cls(model, device=file_device or device, settings=settings)

    @property
    def space(self) -> str:
        """Space name the model predicts."""
        return str(self.model.space)

    @property
    def device(self) -> str:
        """Device the predictions are filed under."""
        return self._device

    @property
    def settings(self) -> Mapping[str, Any]:
        return dict(self._settings)

    def pool(self, space: SearchSpace) -> None:
        """Any member of the model's space.

        Raises:
            SourceError: a space other than the model's.
        """
        if space.name != self.space:
            raise SourceError(f"a latency model of space {self.space!r}, not {space.name!r}")
        return None

    def latency_ms(self, arch: Architecture) -> float:
        return float(self.model.predict_ms([arch])[0])

    def measure(
        self, space: SearchSpace, archs: Sequence[Architecture], *, store: ResultStore | None
    ) -> tuple[np.ndarray, int]:
        predict = self.model.predict_ms
        return measure_cached(self, space, archs, store, lambda todo: np.asarray(predict(todo)))
