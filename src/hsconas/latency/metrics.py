"""Accuracy metrics of latency predictions: RMSE, MAPE, share within +/-5%/10%, Kendall, Spearman.

Every latency model of hsconas reports the same :class:`LatencyMetrics` on held-out architectures.
numpy/scipy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "GOOD_KENDALL",
    "GOOD_WITHIN_10PCT",
    "LatencyMetrics",
    "evaluate",
    "kendall_tau",
    "quality_warning",
    "spearman_rho",
]

GOOD_WITHIN_10PCT = 0.9
"""A latency model is trusted when at least this share of held-out networks is within +/-10%."""
GOOD_KENDALL = 0.8
"""... and when it ranks held-out networks at least this well (Kendall tau)."""


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


def quality_warning(
    within_10pct: float,
    kendall: float | None,
    n: int,
    *,
    held_out: str = "held-out networks",
    spread_pct: float | None = None,
) -> str | None:
    """A warning with a remedy when a latency model is weaker than a search can trust, else None.

    Args:
        within_10pct: share (0..1) of ``held_out`` predictions within +/-10% of the measurement.
        kendall: their Kendall tau, or ``None`` when not known.
        n: number of held-out networks.
        held_out: what they were (``leave-one-out over the 30 fitted networks``).
        spread_pct: typical relative error (percent), named in the warning when given.

    Weak means fewer than :data:`GOOD_WITHIN_10PCT` within +/-10% or Kendall below
    :data:`GOOD_KENDALL`. The usual cause is a busy or throttling machine (the measurements vary
    more than the networks differ); more end-to-end samples and the reference network help.
    """
    weak = within_10pct < GOOD_WITHIN_10PCT or (kendall is not None and kendall < GOOD_KENDALL)
    if not weak or n == 0:
        return None
    figures = f"{100 * within_10pct:.0f}% of {n} {held_out} within +/-10%"
    if kendall is not None:
        figures += f", Kendall tau {kendall:.2f}"
    if spread_pct is not None:
        figures += f", typical error {spread_pct:.1f}%"
    return (
        f"the latency model is weak: {figures} (trusted: >= {100 * GOOD_WITHIN_10PCT:.0f}% and "
        f"tau >= {GOOD_KENDALL}). Measurements vary more than the networks differ: quiet the "
        "machine (stop other jobs, fix the CPU governor), measure more end-to-end networks "
        "(--samples), and time against the reference network (--reference); then profile again"
    )


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
