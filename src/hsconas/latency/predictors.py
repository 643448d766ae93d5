"""Latency predictors learned from end-to-end measurements (numpy + scikit-learn, no torch).

Every predictor maps architecture features to milliseconds and shares one interface:

* ``fit(X, y_ms)``: ``X`` is a feature matrix (n, d) or a sequence of architectures (encoded with
  their space's :meth:`~hsconas.space.SearchSpace.feature_matrix`); ``y_ms`` positive latencies.
* ``predict(X) -> ms`` and ``predict_with_uncertainty(X) -> (mean_ms, std_ms)``.
* ``to_dict()`` / :func:`predictor_from_dict`: a JSON-serialisable description holding every fitted
  parameter (plain lists and numbers, never pickles), so model files survive library upgrades.

All models work on ``log(latency)``: device latencies are positive, multiplicative in the layers'
cost and span an order of magnitude, and relative error is what matters. scikit-learn is used only
to fit; prediction is plain numpy over the stored parameters.

Models:

* :class:`LinearPredictor` (``linear``): Bayesian ridge over the (one-hot) features; the standard
  deviation comes from the posterior of the weights plus the noise level.
* :class:`GBDTPredictor` (``gbdt``): a small bag of gradient-boosted regression trees; the trees are
  dumped to JSON arrays; the standard deviation is the spread of the bag.
* :class:`GPPredictor` (``gp``): a Gaussian process with a linear + RBF kernel (additive main effects
  plus smooth interactions); hyper-parameters by marginal likelihood on at most ``max_opt_rows``
  rows; the standard deviation is the posterior standard deviation.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from hsconas.space import Architecture, get_space

__all__ = [
    "PREDICTORS",
    "GBDTPredictor",
    "GPPredictor",
    "LatencyPredictor",
    "LinearPredictor",
    "NotFittedError",
    "make_predictor",
    "predictor_from_dict",
]

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


# ==================================================================== linear
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


# ==================================================================== trees
def _dump_tree(tree: Any) -> dict[str, list[float] | list[int]]:
    """Arrays of a fitted sklearn ``Tree`` (public attributes): children, split, leaf value."""
    return {
        "left": tree.children_left.astype(int).tolist(),
        "right": tree.children_right.astype(int).tolist(),
        "feature": tree.feature.astype(int).tolist(),
        "threshold": tree.threshold.astype(float).tolist(),
        "value": tree.value.reshape(-1).astype(float).tolist(),
    }


class _Tree:
    """A regression tree as arrays; leaves have ``left == -1``."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.left = np.asarray(d["left"], dtype=np.int64)
        self.right = np.asarray(d["right"], dtype=np.int64)
        self.feature = np.asarray(d["feature"], dtype=np.int64)
        self.threshold = np.asarray(d["threshold"], dtype=np.float64)
        self.value = np.asarray(d["value"], dtype=np.float64)

    def predict(self, Z: FloatArray) -> FloatArray:
        node = np.zeros(Z.shape[0], dtype=np.int64)
        rows = np.arange(Z.shape[0])
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                return self.value[node]
            idx = rows[inner]
            n = node[idx]
            go_left = Z[idx, self.feature[n]] <= self.threshold[n]
            node[idx] = np.where(go_left, self.left[n], self.right[n])


class GBDTPredictor(LatencyPredictor):
    """A bag of gradient-boosted regression-tree ensembles on log-latency.

    Each member is a :class:`sklearn.ensemble.GradientBoostingRegressor` with row subsampling and
    its own seed; the prediction is the members' mean, the uncertainty their spread (plus the
    members' mean training residual variance, so it is never zero).

    Args:
        n_members: bag size (>= 2 for a spread).
        n_estimators: trees per member.
        learning_rate: shrinkage per tree.
        max_depth: depth of every tree.
        subsample: row fraction per tree (0, 1].
        seed: base random seed.
    """

    kind = "gbdt"

    def __init__(
        self,
        *,
        n_members: int = 4,
        n_estimators: int = 200,
        learning_rate: float = 0.08,
        max_depth: int = 4,
        subsample: float = 0.7,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if n_members < 1 or n_estimators < 1 or max_depth < 1:
            raise ValueError("n_members, n_estimators and max_depth must be >= 1")
        if not 0 < subsample <= 1 or not 0 < learning_rate <= 1:
            raise ValueError("subsample and learning_rate must be in (0, 1]")
        self.n_members = n_members
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.seed = seed
        self.members: list[tuple[float, list[_Tree]]] = []
        self.resid_var = 0.0

    def config(self) -> dict[str, Any]:
        return {
            "n_members": self.n_members,
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "subsample": self.subsample,
            "seed": self.seed,
        }

    def _fit_log(self, Z: FloatArray, ly: FloatArray) -> None:
        from sklearn.ensemble import GradientBoostingRegressor

        self.members = []
        dumped: list[dict[str, Any]] = []
        for k in range(self.n_members):
            m = GradientBoostingRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                subsample=self.subsample if ly.size >= 20 else 1.0,
                min_samples_leaf=min(3, max(1, ly.size // 10)),
                random_state=self.seed + k,
            ).fit(Z, ly)
            init = float(np.asarray(m.init_.constant_).ravel()[0])
            trees = [_dump_tree(est[0].tree_) for est in m.estimators_]
            dumped.append({"init": init, "trees": trees})
        self._load_params({"members": dumped, "learning_rate": self.learning_rate})
        pred = np.stack([self._member_predict(i, Z) for i in range(len(self.members))])
        self.resid_var = float(np.mean((pred.mean(axis=0) - ly) ** 2))
        self._dumped = dumped

    def _member_predict(self, i: int, Z: FloatArray) -> FloatArray:
        init, trees = self.members[i]
        out = np.full(Z.shape[0], init)
        for t in trees:
            out += self.learning_rate * t.predict(Z)
        return out

    def _predict_log(self, Z: FloatArray) -> tuple[FloatArray, FloatArray]:
        pred = np.stack([self._member_predict(i, Z) for i in range(len(self.members))])
        var = pred.var(axis=0, ddof=1) if len(self.members) > 1 else np.zeros(Z.shape[0])
        return pred.mean(axis=0), var + self.resid_var

    def _params(self) -> dict[str, Any]:
        return {"members": self._dumped, "resid_var": self.resid_var}

    def _load_params(self, p: dict[str, Any]) -> None:
        self._dumped = p["members"]
        self.members = [(float(m["init"]), [_Tree(t) for t in m["trees"]]) for m in p["members"]]
        self.resid_var = float(p.get("resid_var", 0.0))


# ==================================================================== Gaussian process
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


PREDICTORS: dict[str, type[LatencyPredictor]] = {
    LinearPredictor.kind: LinearPredictor,
    GBDTPredictor.kind: GBDTPredictor,
    GPPredictor.kind: GPPredictor,
}


def make_predictor(kind: str, **options: Any) -> LatencyPredictor:
    """A new, unfitted predictor by name (``linear``, ``gbdt``, ``gp``)."""
    try:
        cls = PREDICTORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown latency model {kind!r}; choose one of: {', '.join(PREDICTORS)}"
        ) from None
    return cls(**options)


def predictor_from_dict(d: dict[str, Any]) -> LatencyPredictor:
    """Rebuild any fitted predictor from its :meth:`LatencyPredictor.to_dict` document."""
    kind = d.get("kind")
    if kind not in PREDICTORS:
        raise ValueError(f"unknown latency model kind {kind!r}; known: {', '.join(PREDICTORS)}")
    return PREDICTORS[str(kind)].from_dict(d)
