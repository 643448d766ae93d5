"""Versioned JSON model files of latency predictors (no pickles: readable after any upgrade).

A file holds ``format`` (``hsconas-latency-model``), ``format_version``, the space name, the device,
the space's feature names (checked on load and on use), training metadata and the predictor's
parameters (:meth:`~hsconas.latency.predictors.LatencyPredictor.to_dict`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsconas import __version__
from hsconas.latency.model_file import PREDICTOR_FORMAT, ModelFileError, read_model_json
from hsconas.latency.predictors import LatencyPredictor, predictor_from_dict
from hsconas.space import Architecture, get_space

__all__ = ["FORMAT", "FORMAT_VERSION", "PredictorModel", "load_model", "save_model"]

FORMAT = PREDICTOR_FORMAT
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PredictorModel:
    """A fitted predictor bound to its space and device.

    Attributes:
        space: space name whose features the predictor expects.
        device: device (setting) whose latency it predicts.
        feature_names: the space's feature names at training time.
        predictor: the fitted predictor.
        meta: training metadata (table, rows, seed, held-out metrics, ...).
    """

    space: str
    device: str
    feature_names: tuple[str, ...]
    predictor: LatencyPredictor
    meta: Mapping[str, Any] = field(default_factory=dict)

    def _features(self, archs: Sequence[Architecture]) -> np.ndarray:
        for a in archs:
            if a.space != self.space:
                raise ModelFileError(
                    f"this latency model is for space {self.space!r} (device {self.device!r}) "
                    f"but was given an architecture of space {a.space!r}"
                )
        return get_space(self.space).feature_matrix(archs)

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted latency (ms) on :attr:`device` of each architecture."""
        return self.predictor.predict(self._features(archs))

    def predict_ms(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted latency (ms) of each architecture; the same call as
        :meth:`HSCoNASModel.predict_ms <hsconas.latency.hsconas.model.HSCoNASModel.predict_ms>`."""
        return self.predict(archs)

    def predict_with_uncertainty(
        self, archs: Sequence[Architecture]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(predicted latency, standard deviation), ms."""
        return self.predictor.predict_with_uncertainty(self._features(archs))


def save_model(
    model: LatencyPredictor,
    path: str | os.PathLike[str],
    *,
    space: str,
    device: str,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted predictor of ``device`` latency over ``space`` to a JSON model file."""
    sp = get_space(space)
    names = list(sp.feature_names)
    if model.n_features is not None and model.n_features != len(names):
        raise ModelFileError(
            f"the predictor was fitted on {model.n_features} features but space {space!r} has "
            f"{len(names)}; fit it on this space's feature_matrix"
        )
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hsconas_version": __version__,
        "space": sp.name,
        "device": device,
        "feature_names": names,
        "meta": dict(meta or {}),
        "predictor": model.to_dict(),
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    tmp.replace(p)
    return p


def load_model(
    path: str | os.PathLike[str], *, space: str | None = None, device: str | None = None
) -> PredictorModel:
    """Read a model file; checks the format version and the space's current feature names.

    Args:
        path: the JSON file written by :func:`save_model`.
        space: if given, the space the caller will use the model with.
        device: if given, the device the caller wants predictions for.

    Raises:
        DataNotFoundError: the file does not exist.
        ModelFileError: not a model file, an unsupported version, or a space/device mismatch (the
            message names both).
    """
    p, doc = read_model_json(path)
    if doc.get("format") != FORMAT:
        raise ModelFileError(f"{p}: not an hsconas latency model file (no format {FORMAT!r})")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{p}: model file format version {version!r} is not supported (this hsconas reads "
            f"version {FORMAT_VERSION}); refit the model with `hsconas latency fit-table`"
        )
    m_space, m_device = str(doc["space"]), str(doc["device"])
    if space is not None and space != m_space:
        raise ModelFileError(
            f"{p} is a latency model of space {m_space!r} (device {m_device!r}), "
            f"not of space {space!r}"
        )
    if device is not None and device != m_device:
        raise ModelFileError(
            f"{p} is a latency model of device {m_device!r} (space {m_space!r}), "
            f"not of device {device!r}"
        )
    names = tuple(str(n) for n in doc["feature_names"])
    current = get_space(m_space).feature_names
    if names != tuple(current):
        raise ModelFileError(
            f"{p}: its features ({len(names)} columns) do not match the current features of "
            f"space {m_space!r} ({len(current)} columns); the space changed since the model was "
            "fitted, refit it"
        )
    try:
        predictor = predictor_from_dict(doc["predictor"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{p}: malformed predictor parameters ({exc})") from None
    return PredictorModel(m_space, m_device, names, predictor, dict(doc.get("meta", {})))
