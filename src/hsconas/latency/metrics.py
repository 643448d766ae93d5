"""Accuracy metrics of latency predictions: RMSE, MAPE, share within +/-5%/10%, Kendall, Spearman.

Every latency model of hsconas reports the same :class:`LatencyMetrics` on held-out architectures.
numpy/scipy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["LatencyMetrics", "evaluate", "kendall_tau", "spearman_rho"]


@dataclass(frozen=True)
class LatencyMetrics:
    """Agreement of predicted and measured latencies on ``n`` architectures.

    Attributes:
        rmse_ms: root mean squared error, milliseconds.
        mape_pct: mean absolute percentage error, percent of the measured latency.
        within_5pct: share (0..1) of predictions within +/-5% of the measured latency.
        within_10pct: share (0..1) of predictions within +/-10% of the measured latency.
        kendall: Kendall rank correlation (tau-b, ties handled), -1..1.
        spearman: Spearman rank correlation (average ranks for ties), -1..1.
        n: number of architectures compared.
    """

    rmse_ms: float
    mape_pct: float
    within_5pct: float
    within_10pct: float
    kendall: float
    spearman: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain ``{name: value}`` dict (JSON-serialisable)."""
        return asdict(self)


def spearman_rho(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman rank correlation: Pearson correlation of average ranks (``nan`` if constant)."""
    ra = stats.rankdata(np.asarray(a, dtype=np.float64))
    rb = stats.rankdata(np.asarray(b, dtype=np.float64))
    ra -= ra.mean()
    rb -= rb.mean()
    den = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb / den) if den > 0 else float("nan")


def kendall_tau(a: ArrayLike, b: ArrayLike) -> float:
    """Kendall tau-b rank correlation (``nan`` if one side is constant); O(n log n)."""
    res = stats.kendalltau(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return float(res.statistic)


def evaluate(pred_ms: ArrayLike, true_ms: ArrayLike) -> LatencyMetrics:
    """Compare predicted with measured latencies (both milliseconds, same order).

    Raises:
        ValueError: if the shapes differ, the vectors are empty, or a measured latency is not
            positive (percentage errors would be undefined).
    """
    pred = np.asarray(pred_ms, dtype=np.float64).ravel()
    true = np.asarray(true_ms, dtype=np.float64).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"pred has {pred.size} values but true has {true.size}")
    if pred.size == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    if not np.all(true > 0):
        raise ValueError("measured latencies must be positive to compute percentage errors")
    err = pred - true
    rel = np.abs(err) / true
    return LatencyMetrics(
        rmse_ms=float(np.sqrt(np.mean(err**2))),
        mape_pct=float(100.0 * np.mean(rel)),
        within_5pct=float(np.mean(rel <= 0.05)),
        within_10pct=float(np.mean(rel <= 0.10)),
        kendall=kendall_tau(pred, true),
        spearman=spearman_rho(pred, true),
        n=int(pred.size),
    )
