"""Plots of a search: found front against the true front, and hypervolume over queries.

Pure data functions compute what is drawn (testable without matplotlib); thin renderers draw it
with the Agg backend and write PNG files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsconas.search.pareto import TrueFront, objectives, pareto_mask


@dataclass(frozen=True)
class FrontPlotData:
    """Points to draw: every evaluated architecture, its front, and the true front if known."""

    evaluated: np.ndarray  # (n, 2): latency_ms, accuracy
    found_front: np.ndarray  # (k, 2) by latency
    true_front: np.ndarray | None  # (t, 2) by latency
    budget_ms: float | None


def front_plot_data(
    accuracy: Sequence[float],
    latency_ms: Sequence[float],
    *,
    truth: TrueFront | None = None,
    budget_ms: float | None = None,
) -> FrontPlotData:
    acc = np.asarray(accuracy, float)
    lat = np.asarray(latency_ms, float)
    mask = pareto_mask(objectives(acc, lat)) if len(acc) else np.zeros(0, bool)
    front = np.column_stack([lat[mask], acc[mask]]) if len(acc) else np.zeros((0, 2))
    front = front[np.argsort(front[:, 0], kind="stable")]
    true = None if truth is None else truth.points[:, ::-1].copy()
    return FrontPlotData(np.column_stack([lat, acc]), front, true, budget_ms)


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


def render_front(data: FrontPlotData, path: str | Path, *, title: str = "") -> Path:
    """Write the front plot (latency on x, accuracy on y) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(data.evaluated[:, 0], data.evaluated[:, 1], s=6, c="0.75", label="evaluated")
    if data.true_front is not None:
        ax.step(
            data.true_front[:, 0],
            data.true_front[:, 1],
            where="post",
            c="k",
            lw=1,
            label="true front",
        )
    ax.plot(
        data.found_front[:, 0],
        data.found_front[:, 1],
        "o-",
        c="tab:red",
        ms=3,
        lw=1,
        label="found front",
    )
    if data.budget_ms is not None:
        ax.axvline(data.budget_ms, ls="--", c="tab:blue", lw=1, label="budget")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
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
