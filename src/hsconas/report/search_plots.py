"""Plots of a search: found front against the true front, and hypervolume over queries.

Pure data functions compute what is drawn (testable without matplotlib); thin renderers draw it
with the Agg backend and write PNG files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.search.indicators import TrueFront, objectives, pareto_mask


@dataclass(frozen=True)
class FrontPlotData:
    """Points to draw: every evaluated architecture, its front, and the true front if known.

    Attributes:
        evaluated: (n, 2) latency_ms, accuracy of every evaluated architecture.
        found_front: (k, 2) the evaluated points' front, by latency.
        true_front: (t, 2) the table's exact front by latency, or ``None``.
        true_found: (t,) whether each true-front point is among the evaluated points (what the
            front share counts), or ``None``.
        budget_ms: the latency budget, or ``None``.
    """

    evaluated: np.ndarray
    found_front: np.ndarray
    true_front: np.ndarray | None
    true_found: np.ndarray | None
    budget_ms: float | None

    def zoom_floor(self) -> float:
        """Lower accuracy limit of the close-up panel (percent): the 20th percentile of the
        front's accuracies (the true front's when known), less a small margin. A front usually
        climbs steeply from a few trivial fast networks; the close-up shows where it flattens."""
        ref = self.true_front if self.true_front is not None else self.found_front
        if len(ref) == 0:
            return float("-inf")
        lo, hi = float(np.percentile(ref[:, 1], 20)), float(ref[:, 1].max())
        return lo - 0.05 * max(hi - lo, 1e-9)


def front_plot_data(
    accuracy: Sequence[float],
    latency_ms: Sequence[float],
    *,
    truth: TrueFront | None = None,
    budget_ms: float | None = None,
) -> FrontPlotData:
    """What :func:`render_front` draws, from the evaluated accuracies (percent) and latencies
    (ms) and, when known, the true front."""
    acc = np.asarray(accuracy, float)
    lat = np.asarray(latency_ms, float)
    mask = pareto_mask(objectives(acc, lat)) if len(acc) else np.zeros(0, bool)
    front = np.column_stack([lat[mask], acc[mask]]) if len(acc) else np.zeros((0, 2))
    front = front[np.argsort(front[:, 0], kind="stable")]
    true = found = None
    if truth is not None:
        true = truth.points[:, ::-1].copy()
        found = truth.found(acc, lat)
    return FrontPlotData(np.column_stack([lat, acc]), front, true, found, budget_ms)


def hv_curve(
    accuracy: Sequence[float], latency_ms: Sequence[float], truth: TrueFront, *, step: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """HV ratio to the true front after every ``step`` queries (and at the end)."""
    acc = np.asarray(accuracy, float)
    lat = np.asarray(latency_ms, float)
    n = len(acc)
    qs = sorted(set([*range(step, n + 1, step), n])) if n else []
    hv = [truth.hv_ratio(acc[:q], lat[:q]) for q in qs]
    return np.asarray(qs), np.asarray(hv)


def _draw_front(ax: Any, data: FrontPlotData, *, legend: bool) -> None:
    ax.scatter(data.evaluated[:, 0], data.evaluated[:, 1], s=6, c="0.75", label="evaluated")
    if data.true_front is not None:
        t = data.true_front
        ax.step(t[:, 0], t[:, 1], where="post", c="k", lw=1, label="true front")
        if data.true_found is not None:
            hit, miss = t[data.true_found], t[~data.true_found]
            ax.scatter(
                hit[:, 0], hit[:, 1], s=22, c="tab:green", zorder=3, label="true front, found"
            )
            ax.scatter(
                miss[:, 0], miss[:, 1], s=22, facecolors="none", edgecolors="k", zorder=3,
                label="true front, missed",
            )  # fmt: skip
    f = data.found_front
    ax.step(f[:, 0], f[:, 1], where="post", c="tab:red", lw=1, label="found front")
    ax.plot(f[:, 0], f[:, 1], "o", c="tab:red", ms=2.5)
    if data.budget_ms is not None:
        ax.axvline(data.budget_ms, ls="--", c="tab:blue", lw=1, label="budget")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="lower right", fontsize=7)


def render_front(data: FrontPlotData, path: str | Path, *, title: str = "") -> Path:
    """Write the front plot as a PNG: latency on x, accuracy on y; every evaluated architecture,
    the found front as a staircase, and the true front with the points found and missed. A
    second panel is a close-up of the front's upper part (see :meth:`FrontPlotData.zoom_floor`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_all, ax_top) = plt.subplots(1, 2, figsize=(11, 4.5))
    _draw_front(ax_all, data, legend=True)
    _draw_front(ax_top, data, legend=False)
    floor = data.zoom_floor()
    if np.isfinite(floor):
        ref = data.true_front if data.true_front is not None else data.found_front
        top = float(max(ref[:, 1].max(), data.found_front[:, 1].max(initial=-np.inf)))
        ax_top.set_ylim(floor, top + 0.02 * max(top - floor, 1e-9))
    ax_all.set_title(title or "accuracy-latency front")
    ax_top.set_title("close-up of the upper front")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def render_hv_curve(
    queries: np.ndarray, hv: np.ndarray, path: str | Path, *, title: str = ""
) -> Path:
    """Write the hypervolume-ratio-over-queries plot as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(queries, hv, c="tab:red")
    ax.set_xlabel("distinct architectures queried")
    ax.set_ylabel("hypervolume ratio to the true front")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
