"""The surrogates of the HSCoNAS search: accuracy and latency models refitted on every query.

Latency: a ridge on the space's latency features (one-hot genes; NB201: op counts, then the
per-edge one-hot scaled down, see :meth:`~hsconas.space.core.SearchSpace.surrogate_features`),
with the robust spread of its leave-one-out residuals as its uncertainty (measured latencies are
noisy). Accuracy (``model``): by default extra-trees averaged with a Gaussian process, both on the
log error rate (:class:`~hsconas.search.surrogate.models.ErrorLogScale`), the trees' spread and the
GP's posterior giving the uncertainty; or extra-trees alone, or a bootstrap ridge ensemble. With
the generic one-hot features (every space but NB201) the trees split on the genes' one-hot columns
and the GP's RBF on one-hot plus pairwise columns is computed from gene matches
(:class:`~hsconas.search.surrogate.gp_kernels.OneHotMatchRBF`): on OFA-MobileNetV3 the pairwise
matrix has 12445 columns, and building it and fitting trees on it took most of a search's CPU
time. Where
the space groups its members into classes computing the same function (NB201 cells with dead
edges), the pooled within-class spread of the queried accuracies is added to the uncertainty: that
spread is training noise, so an unqueried member of a well-known class still has a chance to beat
its class mean.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from hsconas.search.surrogate.models import (
    ErrorLogScale,
    RidgeEnsemble,
    gp_posterior,
    loo_residuals,
    robust_sd,
    within_class_noise,
)
from hsconas.space import SearchSpace
from hsconas.space.codec import CodeFeatures, GeneCodec, OneHotFeatures

__all__ = ["ACCURACY_MODELS", "SearchSurrogates"]

ACCURACY_MODELS: tuple[str, ...] = ("trees+gp", "trees", "ridge")
"""Accuracy surrogates :class:`SearchSurrogates` can fit."""


class SearchSurrogates:
    """Accuracy and latency surrogates over gene codes of one space.

    Args:
        space: the searched space (its unrestricted features are used throughout).
        codec: the codec of ``space``.
        model: accuracy surrogate, one of :data:`ACCURACY_MODELS`.
        n_trees: trees of the extra-trees surrogate.
        alpha: ridge penalty of the ``ridge`` accuracy surrogate.
        n_members: bootstrap ensemble size of the ``ridge`` accuracy surrogate.
    """

    def __init__(
        self,
        space: SearchSpace,
        codec: GeneCodec,
        *,
        model: str = "trees+gp",
        n_trees: int = 50,
        alpha: float = 3.0,
        n_members: int = 5,
    ) -> None:
        self.model = model
        self.n_trees = n_trees
        self.alpha = alpha
        self.n_members = n_members
        self.acc_features = space.surrogate_features(codec, "accuracy")
        self.lat_features = space.surrogate_features(codec, "latency")
        # generic one-hot features: the trees split on the genes' one-hot columns (depth models
        # the interactions; the pairwise columns made every fit ~50x slower on OFA-MBv3 for no
        # better ranking) and the GP takes the gene codes with a kernel equal to the RBF on the
        # full features (OneHotMatchRBF), so neither builds the wide pairwise matrix
        self._onehot = isinstance(self.acc_features, OneHotFeatures)
        self._pairwise = (
            isinstance(self.acc_features, OneHotFeatures) and self.acc_features.pairwise
        )
        self.tree_features: CodeFeatures = (
            OneHotFeatures(codec, pairwise=False) if self._onehot else self.acc_features
        )
        self.lat_resid = np.zeros(0)  # the latency model's leave-one-out residuals, ms
        self._gp_kernel: Any = None
        self._n_fits = 0

    @property
    def lat_sd(self) -> float:
        """Robust standard deviation of the latency model's error (ms; 0 before any fit)."""
        return robust_sd(self.lat_resid)

    def predict(
        self, pool: np.ndarray, hist: np.ndarray, acc: np.ndarray, lat: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit on the history and predict the pool.

        Args:
            pool: codes of the candidates, shape (n, genes).
            hist: codes of the evaluated architectures, shape (m, genes).
            acc: their accuracies, percent.
            lat: their latencies, ms.
            seed: seed of this fit (trees, bootstrap, GP optimiser).

        Returns:
            (accuracy mean, accuracy sd, latency mean) of each candidate; accuracy in the units
            of ``acc``, latency in ms. Sets :attr:`lat_resid`.
        """
        if self.model in ("trees", "trees+gp"):
            return self._predict_trees(pool, hist, acc, lat, seed)
        with threadpool_limits(1):  # small solves: threads only add contention
            acc_model = RidgeEnsemble(alpha=self.alpha, n_members=self.n_members, seed=seed)
            Xh = self.acc_features.transform(hist)
            acc_model.fit(Xh, acc)
            Lh = self.lat_features.transform(hist)
            lat_model = RidgeEnsemble(alpha=0.1, n_members=1).fit(Lh, lat)
            pa = acc_model.predict(self.acc_features.transform(pool))
            pl = lat_model.predict(self.lat_features.transform(pool))
            self.lat_resid = loo_residuals(lat_model, Lh, lat)
            resid = acc - acc_model.predict(Xh).mean
        noise = float(np.sqrt(np.mean(resid**2)))
        return pa.mean, np.sqrt(pa.std**2 + noise**2), pl.mean

    def _predict_trees(
        self, pool: np.ndarray, hist: np.ndarray, acc: np.ndarray, lat: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.ensemble import ExtraTreesRegressor

        Xh = self.lat_features.transform(hist)
        Xp = self.lat_features.transform(pool)
        Ah = self.tree_features.transform(hist)
        # members may share their accuracy features (NB201 dead edges): predict each vector once
        row_ids = self.acc_features.row_ids(pool)
        if row_ids is not None:
            _, first, inverse = np.unique(row_ids, return_index=True, return_inverse=True)
            Ap = self.tree_features.transform(pool[first])
        else:
            first, inverse = np.arange(len(pool)), np.arange(len(pool))
            Ap = self.tree_features.transform(pool)
        with threadpool_limits(1):
            lat_model = RidgeEnsemble(alpha=0.1, n_members=1).fit(Xh, lat)
            scale = ErrorLogScale(acc) if self.model == "trees+gp" else None
            target = acc if scale is None else scale.forward(acc)
            trees = ExtraTreesRegressor(
                n_estimators=self.n_trees, max_features=0.5, random_state=seed, n_jobs=1
            ).fit(Ah, target)
            # the trees' low-level predict on one float32 copy (sklearn's per-call validation
            # converts the whole pool again for every tree)
            Ap32 = np.ascontiguousarray(Ap, dtype=np.float32)
            per_tree = np.stack([t.tree_.predict(Ap32)[:, 0] for t in trees.estimators_])
            pl = lat_model.predict(Xp).mean
            self.lat_resid = loo_residuals(lat_model, Xh, lat)
        mean, sd = per_tree.mean(axis=0), per_tree.std(axis=0) + 1e-6
        if scale is not None:  # average with a GP on the log error scale, then map back
            if self._onehot:  # the GP reads gene codes (OneHotMatchRBF)
                Gh, Gp = hist.astype(np.float64), pool[first].astype(np.float64)
            else:
                Gh, Gp = Ah, Ap
            gp_mean, gp_sd = self._gp_predict(Gh, target, Gp, seed)
            mix_sd = np.sqrt((sd**2 + gp_sd**2) / 2 + (mean - gp_mean) ** 2 / 4)
            mean = (mean + gp_mean) / 2
            sd = mix_sd * scale.slope(mean) + 1e-6
            mean = scale.inverse(mean)
        mean, sd = mean[inverse], sd[inverse]
        classes = self.acc_features.classes(hist)
        if classes is not None:
            # members of one class differ only by training noise: an unqueried member's
            # accuracy is its class's predicted mean plus that noise
            noise = within_class_noise(classes, acc, prior_sd=0.005 * float(np.ptp(acc)))
            sd = np.sqrt(sd**2 + noise**2)
        return mean, sd, pl

    def _gp_predict(
        self, X: np.ndarray, y: np.ndarray, Xp: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian-process mean and standard deviation (RBF + white noise); the kernel's
        hyper-parameters are re-fitted every fifth call and reused in between. With generic
        one-hot features ``X`` and ``Xp`` are gene codes and the RBF is
        :class:`~hsconas.search.surrogate.gp_kernels.OneHotMatchRBF` (the same kernel)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        from hsconas.search.surrogate.gp_kernels import OneHotMatchRBF

        refit = self._gp_kernel is None or self._n_fits % 5 == 0
        self._n_fits += 1
        # bounded hyper-parameters (targets are normalised): an unbounded fit on a few hundred
        # points sometimes collapses to pure noise or to a length scale that memorises them
        rbf = (
            OneHotMatchRBF(3.0, (0.5, 50.0), pairwise=self._pairwise)
            if self._onehot
            else RBF(3.0, (0.5, 50.0))
        )
        kernel = (
            ConstantKernel(1.0, (0.05, 20.0)) * rbf + WhiteKernel(0.05, (1e-3, 1.0))
            if self._gp_kernel is None
            else self._gp_kernel
        )
        gp = GaussianProcessRegressor(
            kernel, optimizer="fmin_l_bfgs_b" if refit else None, random_state=seed
        )
        y_mean, y_sd = float(np.mean(y)), float(np.std(y)) or 1.0  # targets normalised here
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a bound reached is fine here
            gp.fit(X, (y - y_mean) / y_sd)
            mean, sd = gp_posterior(gp, Xp)
        self._gp_kernel = gp.kernel_
        return y_mean + y_sd * mean, y_sd * sd
