"""The plots of the ``hsconas run`` report, each returned as a base64 PNG string.

Each takes plain stage-result data (lists and dicts), so a report can be rebuilt from a run
folder without the objects that produced it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_hv", "plot_pred_vs_measured", "plot_stage_fronts", "plot_training"]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pred_vs_measured(samples: Sequence[Mapping[str, Any]]) -> str:
    """Predicted (model and plain LUT sum) against measured latency; base64 PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    meas = np.array([s["measured_ms"] for s in samples])
    for split, marker, color in (("fit", "o", "tab:blue"), ("validate", "s", "tab:red")):
        sel = [s for s in samples if s["split"] == split]
        if not sel:
            continue
        ax.scatter(
            [s["measured_ms"] for s in sel],
            [s["predicted_ms"] for s in sel],
            marker=marker, c=color, s=22, label=f"model ({split})",
        )  # fmt: skip
    val = [s for s in samples if s["split"] == "validate"]
    ax.scatter(
        [s["measured_ms"] for s in val], [s["lut_sum_ms"] for s in val],
        marker="x", c="0.5", s=22, label="LUT sum only (validate)",
    )  # fmt: skip
    lo, hi = float(meas.min()) * 0.9, float(meas.max()) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_training(history: Sequence[Mapping[str, float]], title: str) -> str:
    """Loss and accuracy per epoch."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.grid(alpha=0.3)
    a2.plot(ep, [100 * h["train_acc"] for h in history], "o-", label="train")
    for key in sorted({k for h in history for k in h if k.startswith("val_acc")}):
        pts = [(h["epoch"], 100 * h[key]) for h in history if key in h]
        a2.plot([p[0] for p in pts], [p[1] for p in pts], "s-", label=key.replace("_", " "))
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.suptitle(title)
    return _png(fig)


def plot_stage_fronts(
    stages: Sequence[Mapping[str, Any]],
    budget_ms: float,
    chosen: Mapping[str, float] | None = None,
    y_label: str = "supernet accuracy (%)",
) -> str:
    """Evaluated points and the cumulative Pareto front after each shrinking stage.

    ``chosen`` (``predicted_ms``, ``measured_ms``, ``accuracy``) marks the chosen network at its
    predicted latency and, joined by an arrow, at its measured latency. ``y_label`` names what
    steered the search (the points' accuracy values).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    cmap = plt.get_cmap("viridis")
    n = max(len(stages), 1)
    for i, s in enumerate(stages):
        c = cmap(i / max(n - 1, 1))
        pts = np.asarray(s["points"], float).reshape(-1, 2)
        fr = np.asarray(s["front"], float).reshape(-1, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=7, color=c, alpha=0.35)
        ax.step(
            fr[:, 0], fr[:, 1], where="post", color=c, lw=1.6, marker="o", ms=3,
            label=f"stage {s['stage']}: front after {s['queries'][1]} queries "
            f"(space {s['space_size']:.2g})",
        )  # fmt: skip
    ax.axvline(budget_ms, ls="--", c="tab:red", lw=1, label=f"budget {budget_ms:.4g} ms")
    if chosen is not None:
        y = chosen["accuracy"]
        ax.scatter(
            [chosen["predicted_ms"]],
            [y],
            s=60,
            facecolors="none",
            edgecolors="k",
            zorder=5,
            label=f"chosen, predicted {chosen['predicted_ms']:.4g} ms",
        )
        ax.scatter(
            [chosen["measured_ms"]],
            [y],
            s=140,
            marker="*",
            color="tab:orange",
            edgecolors="k",
            zorder=6,
            label=f"chosen, measured {chosen['measured_ms']:.4g} ms",
        )
        ax.annotate(
            "",
            xy=(chosen["measured_ms"], y),
            xytext=(chosen["predicted_ms"], y),
            arrowprops={"arrowstyle": "->", "color": "k", "lw": 1},
        )
    ax.set_xlabel("latency (ms): points and fronts predicted by the hardware model")
    ax.set_ylabel(y_label)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_hv(queries: Sequence[int], hv: Sequence[float], stage_ends: Sequence[int]) -> str:
    """Normalised hypervolume of the evaluated set against the number of queries."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(queries, hv, c="tab:red")
    for q in stage_ends[:-1]:
        ax.axvline(q, ls=":", c="0.4", lw=1)
    ax.set_xlabel("distinct architectures evaluated")
    ax.set_ylabel("normalised hypervolume")
    ax.set_title("hypervolume over the search (dotted: shrinking steps)")
    ax.grid(alpha=0.3)
    return _png(fig)
