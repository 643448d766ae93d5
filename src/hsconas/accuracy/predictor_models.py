"""The model kinds of the accuracy predictor: fitting and predicting each kind's components.

Every fitted component is plain JSON data (coefficients, scalers, tree dumps), so a model file
never holds a pickle. ``macs`` is the MACs-only baseline (quadratic in log MACs); ``ridge`` a bag
of ridge regressions; ``gbdt`` gradient-boosted trees; ``ridge+gbdt`` their mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hsconas.errors import HsconasError

__all__ = [
    "KINDS",
    "AccuracyModelError",
    "IncompatibleAccuracyModelError",
    "fit_kind",
    "predict_kind",
]

KINDS: tuple[str, ...] = ("macs", "ridge", "gbdt", "ridge+gbdt")
"""Model kinds :func:`fit_accuracy_model` knows; ``macs`` is the MACs-only baseline."""

_RIDGE_ALPHAS = np.logspace(-3, 3, 13)
_N_RIDGE_BAG = 8
_GBDT = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.7}
_N_GBDT_MEMBERS = 2


class AccuracyModelError(HsconasError, ValueError):
    """An accuracy model file that cannot be read, or a table that cannot be fitted."""


class IncompatibleAccuracyModelError(AccuracyModelError):
    """An accuracy model used with an architecture or space other than its own."""


def _macs_design(X: np.ndarray) -> np.ndarray:
    lm = X[:, -2]
    return np.column_stack([np.ones(len(lm)), lm, lm**2])


def fit_macs(X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    coef, *_ = np.linalg.lstsq(_macs_design(X), y, rcond=None)
    return {"coef": coef.tolist()}


def predict_macs(p: Mapping[str, Any], X: np.ndarray) -> np.ndarray:
    return np.asarray(_macs_design(X) @ np.asarray(p["coef"], dtype=np.float64))[:, None]


def _scaler(X: np.ndarray) -> dict[str, Any]:
    sd = X.std(axis=0)
    return {"mean": X.mean(axis=0).tolist(), "scale": np.where(sd > 0, sd, 1.0).tolist()}


def _scale(p: Mapping[str, Any], X: np.ndarray) -> np.ndarray:
    return (X - np.asarray(p["mean"], dtype=np.float64)) / np.asarray(p["scale"], dtype=np.float64)


def _fit_ridge(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    from sklearn.linear_model import Ridge, RidgeCV

    scaler = _scaler(X)
    Z = _scale(scaler, X)
    full = RidgeCV(alphas=_RIDGE_ALPHAS).fit(Z, y)
    alpha = float(full.alpha_)
    members = [(float(full.intercept_), np.asarray(full.coef_).tolist())]
    rng = np.random.default_rng(seed)
    for _ in range(_N_RIDGE_BAG):
        idx = rng.integers(0, len(y), len(y))
        m = Ridge(alpha=alpha).fit(Z[idx], y[idx])
        members.append((float(m.intercept_), np.asarray(m.coef_).tolist()))
    return {
        "scaler": scaler,
        "alpha": alpha,
        "intercepts": [m[0] for m in members],
        "coefs": [m[1] for m in members],
    }


def _predict_ridge(p: Mapping[str, Any], X: np.ndarray) -> np.ndarray:
    """Predictions of every member, shape (n, members); column 0 is the fit on all rows."""
    Z = _scale(p["scaler"], X)
    W = np.asarray(p["coefs"], dtype=np.float64).T
    return np.asarray(Z @ W + np.asarray(p["intercepts"], dtype=np.float64))


def _fit_gbdt(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import GradientBoostingRegressor

    from hsconas.latency.predictors_trees import dump_tree

    members = []
    for k in range(_N_GBDT_MEMBERS):
        m = GradientBoostingRegressor(random_state=seed + k, **_GBDT).fit(X, y)
        init = float(np.asarray(m.init_.constant_).ravel()[0])
        members.append({"init": init, "trees": [dump_tree(e[0].tree_) for e in m.estimators_]})
    return {"learning_rate": _GBDT["learning_rate"], "members": members}


def _predict_gbdt(p: Mapping[str, Any], X: np.ndarray) -> np.ndarray:
    from hsconas.latency.predictors_trees import ArrayTree

    lr = float(p["learning_rate"])
    cols = []
    for member in p["members"]:
        out = np.full(len(X), float(member["init"]))
        for t in member["trees"]:
            out += lr * ArrayTree(t).predict(X)
        cols.append(out)
    return np.column_stack(cols)


def fit_kind(kind: str, X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    if kind == "macs":
        return {"macs": fit_macs(X, y)}
    out: dict[str, Any] = {}
    if kind in ("ridge", "ridge+gbdt"):
        out["ridge"] = _fit_ridge(X, y, seed)
    if kind in ("gbdt", "ridge+gbdt"):
        out["gbdt"] = _fit_gbdt(X, y, seed)
    if not out:
        raise AccuracyModelError(
            f"unknown accuracy model kind {kind!r}; choose from {', '.join(KINDS)}"
        )
    return out


def predict_kind(components: Mapping[str, Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, member spread) of the components' predictions."""
    parts = []
    spreads = []
    if "macs" in components:
        parts.append(predict_macs(components["macs"], X)[:, 0])
        spreads.append(np.zeros(len(X)))
    if "ridge" in components:
        P = _predict_ridge(components["ridge"], X)
        parts.append(P[:, 0])
        spreads.append(P[:, 1:].std(axis=1, ddof=1) if P.shape[1] > 2 else np.zeros(len(X)))
    if "gbdt" in components:
        P = _predict_gbdt(components["gbdt"], X)
        parts.append(P.mean(axis=1))
        spreads.append(P.std(axis=1, ddof=1) if P.shape[1] > 1 else np.zeros(len(X)))
    if not parts:
        raise AccuracyModelError("an accuracy model without components")
    mean = np.mean(parts, axis=0)
    # spread: members' disagreement within each part plus the parts' disagreement
    spread2 = np.mean(np.square(spreads), axis=0)
    if len(parts) > 1:
        spread2 = spread2 + np.var(parts, axis=0, ddof=1)
    return mean, np.sqrt(spread2)
