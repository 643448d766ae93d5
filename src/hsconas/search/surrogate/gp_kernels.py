"""Gaussian-process kernels of the search surrogates that work on gene codes directly.

Imported lazily (scikit-learn's kernels load on first use, not when :mod:`hsconas.search` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.gaussian_process.kernels import RBF


class OneHotMatchRBF(RBF):
    """The RBF kernel of one-hot (optionally plus pairwise one-hot) gene features, computed from
    the gene codes themselves.

    The inputs are gene-code rows (one column per gene, the choice index, as floats). Two rows
    that agree on ``m`` of their ``G`` genes have one-hot vectors at squared Euclidean distance
    ``2 (s(G) - s(m))`` with ``s(m) = m`` (one-hot) or ``m + m (m - 1) / 2`` (one-hot plus the
    one-hot of every gene pair: a pair's column matches iff both genes do), so the kernel equals
    scikit-learn's ``RBF`` on :class:`~hsconas.space.codec.OneHotFeatures` (same length scale,
    same gradient) without building those features: 12445 columns for OFA-MobileNetV3, 46 codes.

    Args:
        length_scale: isotropic length scale (in one-hot feature units).
        length_scale_bounds: bounds of the length scale during the marginal-likelihood fit.
        pairwise: the features include the pairwise one-hot columns.
    """

    def __init__(
        self,
        length_scale: float = 1.0,
        length_scale_bounds: Any = (1e-5, 1e5),
        pairwise: bool = True,
    ) -> None:
        super().__init__(length_scale=length_scale, length_scale_bounds=length_scale_bounds)
        self.pairwise = pairwise

    def _size(self, m: np.ndarray) -> np.ndarray:
        return m + m * (m - 1.0) / 2.0 if self.pairwise else m

    def sq_dists(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Squared Euclidean distances of the feature vectors of code rows ``X`` and ``Y``
        (unscaled; exact integers as floats)."""
        X, Y = np.atleast_2d(X), np.atleast_2d(Y)
        m = np.zeros((len(X), len(Y)))
        for g in range(X.shape[1]):
            m += X[:, g, None] == Y[None, :, g]
        g_all = float(X.shape[1])
        return np.asarray(2.0 * (self._size(np.asarray(g_all)) - self._size(m)))

    def __call__(
        self, X: np.ndarray, Y: np.ndarray | None = None, eval_gradient: bool = False
    ) -> Any:
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        X = np.atleast_2d(X)
        ls = float(np.squeeze(self.length_scale))
        d2 = self.sq_dists(X, X if Y is None else Y) / ls**2
        K = np.exp(-0.5 * d2)
        if not eval_gradient:
            return K
        if self.hyperparameter_length_scale.fixed:
            return K, np.empty((X.shape[0], X.shape[0], 0))
        return K, (K * d2)[:, :, np.newaxis]
