"""Attribute end-to-end latency and accuracy to block positions: an ordinary least-squares
regression on one-hot (gene, choice) features of every measured architecture, with standard
errors and 95% confidence intervals (the regression half of block profiling). No torch here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hsconas.errors import HsconasError
from hsconas.profiling.specs import block_label
from hsconas.space import Architecture, SearchSpace
from hsconas.space.core import Value, _same_value

__all__ = ["ProfileError", "Regression", "fit_block_regression", "json_default", "json_records"]

_Z95 = 1.959963984540054


class ProfileError(HsconasError, ValueError):
    """Bad profiling settings, or a profile file that cannot be read."""


def json_default(v: object) -> object:
    """``json.dumps`` default: numpy scalars as Python numbers."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``df`` as JSON-ready dicts (non-finite floats as ``None``)."""
    recs = df.to_dict(orient="records")
    out = []
    for r in recs:
        out.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not np.isfinite(v)
                    else json_default(v)
                    if isinstance(v, np.generic)
                    else v
                )
                for k, v in r.items()
            }
        )
    return out


@dataclass(frozen=True)
class Regression:
    """OLS attribution of a target to (gene, choice) features.

    Effects are *centred* per gene: the effect of a choice is its contribution minus the mean
    contribution of the gene's choices, so effects of one gene sum to zero and say how much a choice
    moves the target relative to an average choice at that position.

    Attributes:
        target: ``latency_ms`` or ``accuracy``.
        frame: one row per (gene, choice): position, block, effect, se, ci_low, ci_high (95%),
            effect_pct (effect relative to the mean target, percent).
        mean: mean target over the fitted architectures.
        r2: coefficient of determination of the fit.
        rmse: residual root-mean-square error (target units).
        n: number of architectures fitted.
        ridge: ridge penalty used (0 = plain OLS).
    """

    target: str
    frame: pd.DataFrame
    mean: float
    r2: float
    rmse: float
    n: int
    ridge: float = 0.0

    def effect(self, gene: str, choice: Value) -> float:
        row = self._row(gene, choice)
        return float(row["effect"])

    def _row(self, gene: str, choice: Value) -> pd.Series:
        hit = self.frame[
            (self.frame["gene"] == gene) & (self.frame["choice"].astype(str) == str(choice))
        ]
        if hit.empty:
            raise KeyError(f"no regression row for {gene}={choice}")
        return hit.iloc[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mean": self.mean,
            "r2": self.r2,
            "rmse": self.rmse,
            "n": self.n,
            "ridge": self.ridge,
            "rows": json_records(self.frame),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Regression:
        return cls(
            str(doc["target"]),
            pd.DataFrame(doc["rows"]),
            float(doc["mean"]),
            float(doc["r2"]),
            float(doc["rmse"]),
            int(doc["n"]),
            float(doc.get("ridge", 0.0)),
        )


def fit_block_regression(
    space: SearchSpace,
    archs: Sequence[Architecture],
    y: np.ndarray,
    *,
    target: str = "latency_ms",
    ridge: float = 0.0,
) -> Regression:
    """Fit ``y ~ intercept + sum of (gene, choice) dummies`` by OLS (or ridge) with standard errors.

    Each gene with more than one choice gets dummy columns for all but its first choice. Standard
    errors come from ``sigma^2 (X'X + ridge I)^-1 X'X (X'X + ridge I)^-1`` (the plain OLS covariance
    when ``ridge`` is 0), with a pseudo-inverse when choices are collinear; confidence intervals are
    normal 95% intervals.

    Args:
        space: the space (its current genes and choices define the features).
        archs: distinct architectures.
        y: target per architecture (ms or percent).
        target: name of the target.
        ridge: L2 penalty on the dummy coefficients (not on the intercept).
    """
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    archs = [a for a, k in zip(archs, ok, strict=True) if k]
    y = y[ok]
    genes = [(i, g) for i, g in enumerate(space.genes) if len(g.choices) > 1]
    cols: list[tuple[int, int]] = []  # (gene list index, choice index) of each dummy column
    for gi, (_, g) in enumerate(genes):
        cols.extend((gi, ci) for ci in range(1, len(g.choices)))
    n, p = len(archs), 1 + len(cols)
    if n < 2:
        raise ProfileError(f"the regression needs at least 2 measured architectures, got {n}")
    X = np.zeros((n, p))
    X[:, 0] = 1.0
    col_of = {c: j + 1 for j, c in enumerate(cols)}
    for r, a in enumerate(archs):
        mask = space.active_mask(a.values)
        for gi, (i, g) in enumerate(genes):
            if not mask[i]:
                continue
            for ci in range(1, len(g.choices)):
                if _same_value(g.choices[ci], a.values[i]):
                    X[r, col_of[(gi, ci)]] = 1.0
                    break
    penalty = np.eye(p) * ridge
    penalty[0, 0] = 0.0
    xtx = X.T @ X
    inv = np.linalg.pinv(xtx + penalty)
    beta = inv @ X.T @ y
    resid = y - X @ beta
    rank = int(np.linalg.matrix_rank(X))
    dof = max(n - rank, 1)
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * inv @ xtx @ inv
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else 1.0
    # centred effects: T maps the parameters to one effect per (gene, choice)
    rows: list[dict[str, Any]] = []
    T = np.zeros((sum(len(g.choices) for _, g in genes), p))
    k = 0
    for gi, (_i, g) in enumerate(genes):
        m = len(g.choices)
        for ci in range(m):
            for cj in range(1, m):
                j = col_of[(gi, cj)]
                T[k, j] = (1.0 if ci == cj else 0.0) - 1.0 / m
            k += 1
    eff = T @ beta
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", T, cov, T), 0.0, None))
    mean = float(y.mean())
    k = 0
    for _gi, (i, g) in enumerate(genes):
        for c in g.choices:
            rows.append(
                {
                    "gene": g.name,
                    "choice": c,
                    "position": i,
                    "block": block_label(g.name, c),
                    "effect": float(eff[k]),
                    "se": float(se[k]),
                    "ci_low": float(eff[k] - _Z95 * se[k]),
                    "ci_high": float(eff[k] + _Z95 * se[k]),
                    "effect_pct": float(100.0 * eff[k] / mean) if mean else float("nan"),
                }
            )
            k += 1
    return Regression(
        target, pd.DataFrame(rows), mean, r2, float(np.sqrt(resid @ resid / n)), n, ridge
    )


# ---------------------------------------------------------------------------------- profile
