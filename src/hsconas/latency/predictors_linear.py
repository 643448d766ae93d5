"""The ``linear`` latency predictor: Bayesian ridge regression of log-latency (no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hsconas.latency.predictors_base import FloatArray, LatencyPredictor


class LinearPredictor(LatencyPredictor):
    """Bayesian ridge regression of log-latency on the features (evidence-tuned prior).

    Args:
        max_iter: evidence-maximisation iterations of :class:`sklearn.linear_model.BayesianRidge`.
    """

    kind = "linear"

    def __init__(self, *, max_iter: int = 300) -> None:
        super().__init__()
        if max_iter < 1:
            raise ValueError("max_iter must be >= 1")
        self.max_iter = max_iter
        self.coef: FloatArray = np.zeros(0)
        self.intercept = 0.0
        self.x_offset: FloatArray = np.zeros(0)
        self.sigma: FloatArray = np.zeros((0, 0))
        self.noise_var = 0.0

    def config(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter}

    def _fit_log(self, Z: FloatArray, ly: FloatArray) -> None:
        from sklearn.linear_model import BayesianRidge

        m = BayesianRidge(max_iter=self.max_iter, compute_score=False).fit(Z, ly)
        self.coef = np.asarray(m.coef_, dtype=np.float64)
        self.intercept = float(m.intercept_)
        self.x_offset = Z.mean(axis=0)
        self.sigma = np.asarray(m.sigma_, dtype=np.float64)
        self.noise_var = float(1.0 / m.alpha_)

    def _predict_log(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        mu = Z @ self.coef + self.intercept
        D = Z - self.x_offset
        var = np.einsum("ij,jk,ik->i", D, self.sigma, D) + self.noise_var
        return mu, var

    def _params(self) -> dict[str, Any]:
        return {
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "x_offset": self.x_offset.tolist(),
            "sigma": self.sigma.tolist(),
            "noise_var": self.noise_var,
        }

    def _load_params(self, p: dict[str, Any]) -> None:
        self.coef = np.asarray(p["coef"], dtype=np.float64)
        self.intercept = float(p["intercept"])
        self.x_offset = np.asarray(p["x_offset"], dtype=np.float64)
        self.sigma = np.asarray(p["sigma"], dtype=np.float64).reshape(
            self.coef.size, self.coef.size
        )
        self.noise_var = float(p["noise_var"])
