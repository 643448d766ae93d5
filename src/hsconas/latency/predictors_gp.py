"""The ``gp`` latency predictor: a Gaussian process with a linear + RBF kernel (no torch).

scikit-learn tunes the hyper-parameters by marginal likelihood; the posterior is computed and
stored with numpy / scipy over plain arrays.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hsconas.latency.predictors_base import FloatArray, LatencyPredictor


def _sqdist(A: FloatArray, B: FloatArray) -> FloatArray:
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(d, 0.0)


class GPPredictor(LatencyPredictor):
    """Gaussian-process regression of standardised log-latency with a linear + RBF kernel.

    ``k(x, x') = a * (s0^2 + x.x') + b * exp(-|x - x'|^2 / (2 l^2)) + noise * [x == x']``: the linear
    part is the additive per-layer cost, the RBF part the interactions (fusion, cut-off paths).
    Hyper-parameters maximise the marginal likelihood (scikit-learn's optimiser) on a seeded subset
    of at most ``max_opt_rows`` rows; the posterior then conditions on all rows.

    Args:
        max_opt_rows: rows used to tune the hyper-parameters (cost grows with its cube).
        seed: seed of that subset.
    """

    kind = "gp"

    def __init__(self, *, max_opt_rows: int = 200, seed: int = 0) -> None:
        super().__init__()
        if max_opt_rows < 2:
            raise ValueError("max_opt_rows must be >= 2")
        self.max_opt_rows = max_opt_rows
        self.seed = seed
        self.hyper: dict[str, float] = {}
        self.y_mean = 0.0
        self.y_std = 1.0
        self.X_train: FloatArray = np.zeros((0, 0))
        self.alpha: FloatArray = np.zeros(0)
        self._chol: FloatArray | None = None

    def config(self) -> dict[str, Any]:
        return {"max_opt_rows": self.max_opt_rows, "seed": self.seed}

    def _kernel(self, A: FloatArray, B: FloatArray) -> FloatArray:
        h = self.hyper
        lin = h["a"] * (h["s0"] ** 2 + A @ B.T)
        rbf = h["b"] * np.exp(-_sqdist(A, B) / (2.0 * h["l"] ** 2))
        return lin + rbf

    def _fit_log(self, Z: FloatArray, ly: FloatArray) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, DotProduct, WhiteKernel
        from sklearn.gaussian_process.kernels import ConstantKernel as C

        self.y_mean = float(ly.mean())
        self.y_std = float(ly.std()) or 1.0
        t = (ly - self.y_mean) / self.y_std
        rng = np.random.default_rng(self.seed)
        sub = rng.permutation(ly.size)[: self.max_opt_rows]
        d = Z.shape[1]
        kernel = (
            C(0.3, (1e-4, 1e2)) * DotProduct(0.1, (1e-3, 1e2))
            + C(0.5, (1e-4, 1e2)) * RBF(np.sqrt(d) / 2, (1e-1, 1e3))
            + WhiteKernel(0.05, (1e-5, 1e1))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = GaussianProcessRegressor(kernel, random_state=self.seed).fit(Z[sub], t[sub])
        k = g.kernel_
        self.hyper = {
            "a": float(k.k1.k1.k1.constant_value),
            "s0": float(k.k1.k1.k2.sigma_0),
            "b": float(k.k1.k2.k1.constant_value),
            "l": float(k.k1.k2.k2.length_scale),
            "noise": float(k.k2.noise_level),
        }
        self.X_train = Z.copy()
        self._factor()
        assert self._chol is not None
        from scipy.linalg import cho_solve

        self.alpha = cho_solve((self._chol, True), t)

    def _factor(self) -> None:
        K = self._kernel(self.X_train, self.X_train)
        K[np.diag_indices_from(K)] += self.hyper["noise"] + 1e-8
        self._chol = np.linalg.cholesky(K)

    def _predict_log(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        from scipy.linalg import solve_triangular

        if self._chol is None:
            self._factor()
        assert self._chol is not None
        Ks = self._kernel(Z, self.X_train)
        mu = Ks @ self.alpha
        v = solve_triangular(self._chol, Ks.T, lower=True)
        kss = self.hyper["a"] * (self.hyper["s0"] ** 2 + (Z * Z).sum(1)) + self.hyper["b"]
        var = np.maximum(kss - (v * v).sum(0), 0.0) + self.hyper["noise"]
        return mu * self.y_std + self.y_mean, var * self.y_std**2

    def _params(self) -> dict[str, Any]:
        return {
            "hyper": self.hyper,
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "X_train": self.X_train.tolist(),
            "alpha": self.alpha.tolist(),
        }

    def _load_params(self, p: dict[str, Any]) -> None:
        self.hyper = {k: float(v) for k, v in p["hyper"].items()}
        self.y_mean = float(p["y_mean"])
        self.y_std = float(p["y_std"])
        self.alpha = np.asarray(p["alpha"], dtype=np.float64)
        self.X_train = np.asarray(p["X_train"], dtype=np.float64).reshape(self.alpha.size, -1)
        self._chol = None
