"""Figures and the HTML report of block profiles: heatmaps, cross-device comparison, tables.

Data functions (:func:`heatmap_matrix`, :func:`cross_device_matrix`) return what is drawn; thin
renderers draw with matplotlib's Agg backend; :func:`write_html` bundles tables, insights and the
figures (embedded as base64 PNG) into one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hsconas.profiling.friendliness import block_friendliness, compare_devices, friendliness
from hsconas.profiling.insights import Insight, cross_device_insights, device_insights
from hsconas.profiling.profile import BlockProfile

__all__ = [
    "cross_device_matrix",
    "heatmap_matrix",
    "render_cross_device",
    "render_heatmap",
    "write_html",
    "write_profile_figures",
]


def heatmap_matrix(
    profile: BlockProfile, value: str = "lat_effect_pct"
) -> tuple[list[str], list[str], np.ndarray]:
    """(positions, blocks, matrix) of ``value`` per block (columns) at each position (rows).

    Cells of blocks a position does not offer are NaN. ``value`` is a column of
    :func:`~hsconas.profiling.friendliness.friendliness` (``lat_effect_pct``, ``acc_effect``,
    ``score``, ``lat_delta_pct``).
    """
    f = friendliness(profile)
    rows = list(dict.fromkeys(f["gene"]))
    cols = list(dict.fromkeys(f["block"]))
    m = np.full((len(rows), len(cols)), np.nan)
    for g, b, v in zip(f["gene"], f["block"], f[value], strict=True):
        m[rows.index(g), cols.index(b)] = float(v)
    return rows, cols, m


def cross_device_matrix(
    profiles: Sequence[BlockProfile], value: str = "lat_effect_pct"
) -> tuple[list[str], list[str], np.ndarray]:
    """(blocks, devices, matrix): each block's mean ``value`` over positions on every device."""
    t = compare_devices(profiles, value=value)
    return [str(i) for i in t.index], [str(c) for c in t.columns], t.to_numpy(dtype=float)


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_matrix(
    rows: list[str], cols: list[str], m: np.ndarray, title: str, label: str, path: Path | io.BytesIO
) -> None:
    plt = _plt()
    h = max(2.5, 0.28 * len(rows) + 1.5)
    w = max(4.0, 0.55 * len(cols) + 3.0)
    fig, ax = plt.subplots(figsize=(min(w, 18), min(h, 30)))
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    im = ax.imshow(np.ma.masked_invalid(m), cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    if len(rows) * len(cols) <= 200:
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


_LABELS = {
    "lat_effect_pct": "latency vs an average choice (%)",
    "acc_effect": "accuracy effect (points)",
    "score": "friendliness score",
    "lat_delta_pct": "latency vs random baseline (%)",
}


def render_heatmap(
    profile: BlockProfile, path: str | Path | io.BytesIO, *, value: str = "lat_effect_pct"
) -> None:
    """Heatmap block x position of one device's profile, written as PNG."""
    rows, cols, m = heatmap_matrix(profile, value)
    _draw_matrix(
        rows, cols, m, f"{profile.space} on {profile.device}: {_LABELS.get(value, value)}",
        _LABELS.get(value, value),
        path if isinstance(path, io.BytesIO) else Path(path),
    )  # fmt: skip


def render_cross_device(
    profiles: Sequence[BlockProfile],
    path: str | Path | io.BytesIO,
    *,
    value: str = "lat_effect_pct",
) -> None:
    """The same blocks compared across devices (heatmap block x device), written as PNG."""
    rows, cols, m = cross_device_matrix(profiles, value)
    _draw_matrix(
        rows, cols, m, f"{profiles[0].space}: {_LABELS.get(value, value)} per block across devices",
        _LABELS.get(value, value), path if isinstance(path, io.BytesIO) else Path(path),
    )  # fmt: skip


def write_profile_figures(
    profile: BlockProfile, out: str | Path, *, values: Sequence[str] | None = None
) -> list[Path]:
    """Heatmap PNGs ``heatmap_<value>.png`` of a profile into directory ``out``.

    ``values`` defaults to the latency effect, plus the friendliness score when the profile has
    accuracy (see :data:`_LABELS` for the others: ``lat_delta_pct``, ``acc_effect``).
    """
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    if values is None:
        values = ["lat_effect_pct", "score"] if profile.has_accuracy else ["lat_effect_pct"]
    paths = []
    for v in values:
        p = d / f"heatmap_{v}.png"
        render_heatmap(profile, p, value=v)
        paths.append(p)
    return paths


def _png64(draw) -> str:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    draw(buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table(df: pd.DataFrame, *, digits: int = 2) -> str:
    return df.to_html(index=False, float_format=lambda x: f"{x:.{digits}f}", border=0, classes="t")


def write_html(
    profiles: Sequence[BlockProfile],
    out: str | Path,
    *,
    insights: Sequence[Insight] | None = None,
    title: str = "Block profiles",
    heatmap_devices: Sequence[str] | None = None,
) -> Path:
    """One self-contained HTML report of several device profiles (figures embedded as base64).

    Args:
        profiles: one profile per device (same space).
        out: the HTML file to write.
        insights: the sentences to show (default: generated from the profiles).
        title: page title.
        heatmap_devices: draw the per-device heatmaps only for these devices (default: all);
            tables and the cross-device figure cover every device.
    """
    if not profiles:
        raise ValueError("write_html needs at least one profile")
    ins = (
        list(insights)
        if insights is not None
        else [i for p in profiles for i in device_insights(p)] + cross_device_insights(profiles)
    )
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;max-width:1200px;"
        "margin:auto}} table.t{{border-collapse:collapse;font-size:12px}} table.t td,table.t th"
        "{{padding:2px 6px;border-bottom:1px solid #ddd;text-align:right}} img{{max-width:100%}}"
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<h2>Profiles</h2>",
        _table(
            pd.DataFrame(
                [
                    {
                        "device": p.device,
                        "space": p.space,
                        "source": str(p.source.get("kind", "")),
                        "accuracy": p.accuracy or "-",
                        "specifications": len(p.specs),
                        "samples per spec": p.samples,
                        "distinct networks measured": p.n_distinct,
                        "latency R2": p.regression["latency_ms"].r2,
                    }
                    for p in profiles
                ]
            )
        ),
    ]
    if len(profiles) > 1:
        parts.append("<h2>Across devices</h2>")
        parts.append(
            "<ul>" + "".join(f"<li>{esc(i.text)}</li>" for i in ins if i.device == "*") + "</ul>"
        )
        img = _png64(lambda b: render_cross_device(profiles, b))
        parts.append(f"<img alt='cross-device' src='data:image/png;base64,{img}'>")
        parts.append(_table(compare_devices(profiles).reset_index(names="block"), digits=1))
    for p in profiles:
        parts.append(f"<h2>{esc(p.device)}</h2>")
        parts.append(
            "<ul>"
            + "".join(f"<li>{esc(i.text)}</li>" for i in ins if i.device == p.device)
            + "</ul>"
        )
        draw = heatmap_devices is None or p.device in heatmap_devices
        if draw:
            img = _png64(lambda b, p=p: render_heatmap(p, b))
            parts.append(f"<img alt='heatmap {esc(p.device)}' src='data:image/png;base64,{img}'>")
        if p.has_accuracy and draw:
            img = _png64(lambda b, p=p: render_heatmap(p, b, value="score"))
            parts.append(
                f"<img alt='friendliness {esc(p.device)}' src='data:image/png;base64,{img}'>"
            )
        bf = block_friendliness(p).drop(columns=["device"])
        parts.append("<h3>Blocks</h3>" + _table(bf))
        f = friendliness(p).drop(columns=["device"]).sort_values("rank")
        parts.append("<h3>Block-positions (by friendliness)</h3>" + _table(f.head(40)))
    parts.append("</body></html>")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
