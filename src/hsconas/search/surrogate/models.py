"""Cheap predictors fitted on the architectures a search has queried (no torch).

They are fitted on the features of gene codes (:mod:`hsconas.space.codec`; a space may bring its
own through :meth:`~hsconas.space.core.SearchSpace.surrogate_features`). :class:`RidgeEnsemble`
fits closed-form ridge regressions on bootstrap resamples: the mean is the prediction and the
spread across members an uncertainty.

On NAS-Bench-201 the latency of a cell is nearly additive in per-edge op costs, so a ridge model on
one-hot features is close to exact after a few dozen queries; accuracy needs the pairwise terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """Mean and standard deviation of an ensemble prediction (units of the target)."""

    mean: np.ndarray
    std: np.ndarray


class RidgeEnsemble:
    """Bootstrap ensemble of closed-form ridge regressions.

    Args:
        alpha: L2 penalty (features are 0/1 columns; the target is centred).
        n_members: ensemble size; 1 fits the full data once (std is then zero).
        seed: seed of the bootstrap resampling.
    """

    def __init__(self, *, alpha: float = 1.0, n_members: int = 5, seed: int = 0) -> None:
        if alpha <= 0 or n_members < 1:
            raise ValueError("alpha must be > 0 and n_members >= 1")
        self.alpha = alpha
        self.n_members = n_members
        self.seed = seed
        self._coefs: list[tuple[np.ndarray, float]] = []

    @staticmethod
    def _solve(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
        mu_x = X.mean(axis=0)
        mu_y = float(y.mean())
        Xc = X - mu_x
        n, d = Xc.shape
        if n < d:  # dual form: (Xc Xc^T + aI) c = y
            K = Xc @ Xc.T
            c = np.linalg.solve(K + alpha * np.eye(n), y - mu_y)
            w = Xc.T @ c
        else:
            w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(d), Xc.T @ (y - mu_y))
        return w, mu_y - float(mu_x @ w)

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeEnsemble:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        rng = np.random.default_rng(self.seed)
        self._coefs = [self._solve(X, y, self.alpha)]
        for _ in range(self.n_members - 1):
            idx = rng.integers(0, len(y), len(y))
            self._coefs.append(self._solve(X[idx], y[idx], self.alpha))
        return self

    def predict(self, X: np.ndarray) -> Prediction:
        if not self._coefs:
            raise RuntimeError("fit the ensemble first")
        preds = np.stack([X @ w + b for w, b in self._coefs])
        mean = preds[0] if len(preds) == 1 else preds.mean(axis=0)
        std = preds.std(axis=0) if len(preds) > 1 else np.zeros(len(X))
        return Prediction(mean, std)


def inflated_residuals(model: RidgeEnsemble, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Measured minus predicted values of the rows ``X`` the model was fitted on (units of ``y``),
    inflated for its degrees of freedom: in-sample residuals understate the error on new rows."""
    inflate = np.sqrt(len(y) / max(len(y) - X.shape[1], 1))
    return np.asarray((y - model.predict(X).mean) * inflate)


def loo_residuals(model: RidgeEnsemble, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out residuals (units of ``y``) of a single ridge fitted on the rows ``X``
    (``n_members=1``, centred, penalty ``model.alpha``): the error each row would have if the
    model had been fitted on the others, ``e_i / (1 - h_ii)`` with ``h_ii`` the leverage of row
    ``i`` (exact, no refitting).

    The honest estimate of the error on new rows. Inflating every in-sample residual by the
    column count's degrees of freedom instead (:func:`inflated_residuals`) treats a penalised
    column as a free one: with 95 columns mostly held down by the penalty and 100 rows it
    overstates the error several times over.

    Raises:
        ValueError: a bootstrap ensemble (its mean is not the fit on all rows).
    """
    if model.n_members != 1:
        raise ValueError("loo_residuals needs a single ridge fitted on all rows (n_members=1)")
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    if n <= d:  # hat matrix of the dual form: K (K + aI)^-1
        K = Xc @ Xc.T
        lev = np.diag(K @ np.linalg.inv(K + model.alpha * np.eye(n)))
    else:
        inv = np.linalg.inv(Xc.T @ Xc + model.alpha * np.eye(d))
        lev = np.einsum("ij,jk,ik->i", Xc, inv, Xc)
    lev = lev + 1.0 / n  # the intercept
    resid = np.asarray(y, dtype=np.float64) - model.predict(X).mean
    return np.asarray(resid / np.maximum(1.0 - lev, 1e-6))


def robust_sd(residuals: np.ndarray) -> float:
    """Standard deviation from the median absolute residual (Gaussian scale; 0 with none), so
    that a few outlying measurements do not blur every prediction."""
    if len(residuals) == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(residuals)))


def gp_posterior(gp: Any, Xp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of a fitted scikit-learn
    ``GaussianProcessRegressor`` with kernel ``Constant * RBF + White`` and ``normalize_y=False``,
    as ``gp.predict(Xp, return_std=True)`` computes them (observation noise included), but with
    the squared distances taken by one matrix product instead of ``cdist`` (several times faster
    for a whole-space pool of wide feature vectors). Only public fitted attributes are read.

    Raises:
        ValueError: a GP fitted with ``normalize_y=True``.
    """
    from scipy.linalg import solve_triangular

    if gp.normalize_y:
        raise ValueError("gp_posterior needs normalize_y=False (normalise the targets yourself)")
    from hsconas.search.surrogate.gp_kernels import OneHotMatchRBF

    (const, rbf), white = (gp.kernel_.k1.k1, gp.kernel_.k1.k2), gp.kernel_.k2
    if isinstance(rbf, OneHotMatchRBF):  # inputs are gene codes: distances from gene matches
        K = const.constant_value * rbf(Xp, gp.X_train_)
    else:
        scale = np.asarray(rbf.length_scale, dtype=np.float64)
        A, B = Xp / scale, gp.X_train_ / scale
        d2 = (A * A).sum(axis=1)[:, None] + (B * B).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
        K = const.constant_value * np.exp(-0.5 * np.maximum(d2, 0.0))
    mean = np.asarray(K @ gp.alpha_).reshape(-1)
    V = solve_triangular(gp.L_, K.T, lower=True, check_finite=False)
    var = const.constant_value + white.noise_level - np.einsum("ij,ij->j", V, V)
    return mean, np.sqrt(np.maximum(var, 0.0))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length arrays."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def within_class_noise(
    classes: np.ndarray, y: np.ndarray, *, prior_sd: float, prior_n: int = 4
) -> float:
    """Pooled within-class standard deviation of ``y`` (units of ``y``), shrunk towards
    ``prior_sd`` as if ``prior_n`` degrees of freedom had shown it.

    Members of one class compute the same function, so their spread is measurement or training
    noise that no feature can predict: it is the floor of any surrogate's error, and the chance
    that an unqueried member beats its class mean.
    """
    y = np.asarray(y, dtype=np.float64)
    _, member_of, size = np.unique(np.asarray(classes), return_inverse=True, return_counts=True)
    member_of = member_of.reshape(-1)
    class_mean = np.bincount(member_of, weights=y) / size
    ss = float(((y - class_mean[member_of]) ** 2).sum())  # singletons add nothing
    dof = len(y) - len(size)
    return float(np.sqrt((ss + prior_n * prior_sd**2) / (dof + prior_n)))


class ErrorLogScale:
    """Accuracy on the scale ``-log(ceiling - accuracy)`` (log error rate).

    Near the top of a space accuracies differ by tenths of a point while the worst members sit tens
    of points lower; on the log error scale the top is spread out and the tail compressed, so a
    regression spends its capacity where the search needs it. Accuracies are percentages, or
    fractions when none exceeds 1; the ceiling sits 0.5% of the scale above a perfect score.

    Args:
        accuracy: the accuracies seen so far (only their scale is used).
    """

    def __init__(self, accuracy: np.ndarray) -> None:
        self.ceiling = 1.005 if float(np.max(accuracy)) <= 1.0 else 100.5

    def forward(self, accuracy: np.ndarray) -> np.ndarray:
        """Log error of ``accuracy``."""
        return np.asarray(-np.log(np.maximum(self.ceiling - np.asarray(accuracy), 1e-9)))

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Accuracy of log error ``z``."""
        return np.asarray(self.ceiling - np.exp(-np.asarray(z)))

    def slope(self, z: np.ndarray) -> np.ndarray:
        """d accuracy / d z at ``z`` (turns a standard deviation in z into accuracy units)."""
        return np.asarray(np.exp(-np.asarray(z)))
