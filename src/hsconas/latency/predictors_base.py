"""The contract every latency predictor shares: :class:`LatencyPredictor` and its helpers.

:class:`LatencyPredictor` encodes architectures as features (:func:`as_features`), standardises
the non-binary columns, fits and predicts ``log(latency)`` through the methods a family implements
(``_fit_log``, ``_predict_log``, ``_params``, ``_load_params``), turns log-normal predictions back
into milliseconds and (de)serialises itself as plain JSON. The families live in
:mod:`hsconas.latency.predictors_linear`, :mod:`hsconas.latency.predictors_trees` and
:mod:`hsconas.latency.predictors_gp`; the registry in :mod:`hsconas.latency.predictors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from hsconas.space import Architecture, get_space

FloatArray = np.ndarray
_MIN_MS = 1e-3  # latencies are clipped to this floor before taking logs (degenerate cells)


class NotFittedError(RuntimeError):
    """A predictor used before :meth:`LatencyPredictor.fit`."""


def as_features(X: ArrayLike | Sequence[Architecture]) -> FloatArray:
    """Feature matrix (n, d) of ``X``: an array, or architectures of one space (one-hot encoded)."""
    if isinstance(X, np.ndarray):
        out = X
    elif isinstance(X, Sequence) and len(X) > 0 and isinstance(X[0], Architecture):
        archs: Sequence[Architecture] = X  # type: ignore[assignment]
        out = get_space(archs[0].space).feature_matrix(archs)
    else:
        out = np.asarray(X, dtype=np.float64)
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"features must be a 2-d matrix (n, d), got shape {out.shape}")
    return out


def _log_ms(y_ms: ArrayLike) -> FloatArray:
    y = np.asarray(y_ms, dtype=np.float64).ravel()
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("latencies must be finite and positive (milliseconds)")
    return np.log(np.maximum(y, _MIN_MS))


def _lognormal_ms(mu: FloatArray, var: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median (ms) and standard deviation (ms) of exp(N(mu, var))."""
    var = np.maximum(var, 0.0)
    med = np.exp(mu)
    std = np.exp(mu + var / 2) * np.sqrt(np.expm1(var))
    return med, std


class _Scaler:
    """Centres and scales the non-binary feature columns; one-hot columns pass unchanged."""

    def __init__(self, mean: FloatArray, scale: FloatArray) -> None:
        self.mean = mean
        self.scale = scale

    @classmethod
    def fit(cls, X: FloatArray) -> _Scaler:
        binary = np.all((X == 0) | (X == 1), axis=0)
        mean = np.where(binary, 0.0, X.mean(axis=0))
        sd = X.std(axis=0)
        scale = np.where(binary | (sd == 0), 1.0, sd)
        return cls(mean, scale)

    def __call__(self, X: FloatArray) -> FloatArray:
        if X.shape[1] != self.mean.size:
            raise ValueError(f"expected {self.mean.size} feature columns, got {X.shape[1]}")
        return (X - self.mean) / self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Scaler:
        return cls(
            np.asarray(d["mean"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64)
        )


class LatencyPredictor(ABC):
    """Base class: a model of one device's latency (ms) as a function of architecture features."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        self._scaler: _Scaler | None = None
        self.n_features: int | None = None

    # ---------------------------------------------------------------- public interface
    def fit(self, X: ArrayLike | Sequence[Architecture], y_ms: ArrayLike) -> LatencyPredictor:
        """Fit on features (or architectures) ``X`` and measured latencies ``y_ms`` (ms)."""
        F = as_features(X)
        ly = _log_ms(y_ms)
        if F.shape[0] != ly.size:
            raise ValueError(f"{F.shape[0]} feature rows but {ly.size} latencies")
        if ly.size < 2:
            raise ValueError("need at least 2 measured architectures to fit a predictor")
        self._scaler = _Scaler.fit(F)
        self.n_features = F.shape[1]
        self._fit_log(self._scaler(F), ly)
        return self

    def predict(self, X: ArrayLike | Sequence[Architecture]) -> FloatArray:
        """Predicted latency (ms) of each row of ``X``."""
        return self.predict_with_uncertainty(X)[0]

    def predict_with_uncertainty(
        self, X: ArrayLike | Sequence[Architecture]
    ) -> tuple[FloatArray, FloatArray]:
        """(predicted latency, standard deviation), both ms, one value per row of ``X``."""
        if self._scaler is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        mu, var = self._predict_log(self._scaler(as_features(X)))
        return _lognormal_ms(mu, var)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``kind``, ``config``, ``scaler``, ``params``)."""
        if self._scaler is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; nothing to save")
        return {
            "kind": self.kind,
            "config": self.config(),
            "n_features": self.n_features,
            "scaler": self._scaler.to_dict(),
            "params": self._params(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyPredictor:
        """Rebuild a fitted predictor from :meth:`to_dict` output."""
        if d.get("kind") != cls.kind:
            raise ValueError(f"document describes a {d.get('kind')!r} model, not {cls.kind!r}")
        obj = cls(**d["config"])
        obj._scaler = _Scaler.from_dict(d["scaler"])
        obj.n_features = int(d["n_features"])
        obj._load_params(d["params"])
        return obj

    # ---------------------------------------------------------------- to implement
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments."""

    @abstractmethod
    def _fit_log(self, Z: FloatArray, ly: FloatArray) -> None: ...

    @abstractmethod
    def _predict_log(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(mean, variance) of log-latency."""

    @abstractmethod
    def _params(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load_params(self, p: dict[str, Any]) -> None: ...
