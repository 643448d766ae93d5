"""Predicted-versus-measured latency plots (pure data function + thin matplotlib renderer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ScatterData", "plot_predicted_vs_measured", "scatter_data"]


@dataclass(frozen=True)
class ScatterData:
    """What the plot shows.

    Attributes:
        measured_ms: measured latencies, milliseconds.
        predicted_ms: model name -> predicted latencies, milliseconds (same order).
        lo_ms: lower end of the axes, milliseconds.
        hi_ms: upper end of the axes, milliseconds.
    """

    measured_ms: np.ndarray
    predicted_ms: Mapping[str, np.ndarray]
    lo_ms: float
    hi_ms: float


def scatter_data(measured_ms: ArrayLike, predicted_ms: Mapping[str, ArrayLike]) -> ScatterData:
    """Arrays and a common axis range (5% margin) for :func:`plot_predicted_vs_measured`."""
    y = np.asarray(measured_ms, dtype=float)
    preds = {k: np.asarray(v, dtype=float) for k, v in predicted_ms.items()}
    allv = np.concatenate([y, *preds.values()]) if preds else y
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.05 * (hi - lo if hi > lo else max(hi, 1e-3))
    return ScatterData(y, preds, lo - pad, hi + pad)


def plot_predicted_vs_measured(
    measured_ms: ArrayLike,
    predicted_ms: Mapping[str, ArrayLike],
    out: str | Path,
    *,
    title: str = "",
) -> Path:
    """Scatter of predicted against measured latency with the y = x line and a +/-10% band.

    Args:
        measured_ms: measured latencies, milliseconds.
        predicted_ms: model name -> predicted latencies, milliseconds.
        out: image file to write (format from its suffix).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = scatter_data(measured_ms, predicted_ms)
    fig, ax = plt.subplots(figsize=(5, 5))
    line = np.array([d.lo_ms, d.hi_ms])
    ax.plot(line, line, color="black", lw=1, label="y = x")
    ax.fill_between(line, 0.9 * line, 1.1 * line, color="grey", alpha=0.2, label="+/-10%")
    for name, pred in d.predicted_ms.items():
        ax.scatter(d.measured_ms, pred, s=12, alpha=0.8, label=name)
    ax.set_xlim(d.lo_ms, d.hi_ms)
    ax.set_ylim(d.lo_ms, d.hi_ms)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
