"""Block friendliness per device, per position, and across devices (pure data, no plotting).

The friendliness of a block at a position weighs its latency cost against its accuracy effect,
both taken from the profile's regression (centred effects: relative to an average choice at that
position). Each term is scaled by its spread over all block-positions of the device, so that
``score = acc_effect / sd(acc_effect) - lat_effect_pct / sd(lat_effect_pct)``: positive means the
block buys more accuracy than its latency costs on this device (latency-only profiles use the
latency term alone). ``ms_per_point`` is the raw exchange rate (latency ms per accuracy point).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hsconas.profiling.profile import BlockProfile

__all__ = ["block_friendliness", "compare_devices", "friendliness", "position_table"]


def _scale(x: pd.Series) -> float:
    s = float(np.nanstd(x.to_numpy(dtype=float)))
    return s if s > 0 else 1.0


def friendliness(profile: BlockProfile) -> pd.DataFrame:
    """Per (gene, choice) of one device: effects, score and rank (1 = friendliest).

    Columns: device, gene, choice, position, block, lat_effect_ms, lat_effect_pct, lat_se_ms,
    acc_effect, acc_se, lat_delta_pct, acc_delta, ms_per_point, score, rank.
    """
    e = profile.effects().copy()
    e.insert(0, "device", profile.device)
    lat_term = e["lat_effect_pct"] / _scale(e["lat_effect_pct"])
    if profile.has_accuracy:
        acc_term = e["acc_effect"] / _scale(e["acc_effect"])
        with np.errstate(divide="ignore", invalid="ignore"):
            e["ms_per_point"] = np.where(
                e["acc_effect"].abs() > 1e-9, e["lat_effect_ms"] / e["acc_effect"], np.nan
            )
    else:
        acc_term = 0.0 * lat_term
        e["ms_per_point"] = np.nan
    e["score"] = acc_term - lat_term
    e["rank"] = e["score"].rank(ascending=False, method="min").astype(int)
    return e


def block_friendliness(profile: BlockProfile) -> pd.DataFrame:
    """Per block (over its positions) of one device.

    Columns: device, block, n_positions, lat_effect_pct (mean), lat_pct_min, lat_pct_max,
    placement_spread_pct (max - min over positions), pos_min, pos_max (gene names), acc_effect
    (mean), score (mean), rank.
    """
    f = friendliness(profile)
    rows = []
    for block, g in f.groupby("block", sort=False):
        imin = g["lat_effect_pct"].idxmin()
        imax = g["lat_effect_pct"].idxmax()
        rows.append(
            {
                "device": profile.device,
                "block": block,
                "n_positions": len(g),
                "lat_effect_pct": float(g["lat_effect_pct"].mean()),
                "lat_pct_min": float(g.loc[imin, "lat_effect_pct"]),
                "lat_pct_max": float(g.loc[imax, "lat_effect_pct"]),
                "placement_spread_pct": float(
                    g.loc[imax, "lat_effect_pct"] - g.loc[imin, "lat_effect_pct"]
                ),
                "pos_min": str(g.loc[imin, "gene"]),
                "pos_max": str(g.loc[imax, "gene"]),
                "acc_effect": float(g["acc_effect"].mean()),
                "score": float(g["score"].mean()),
            }
        )
    out = pd.DataFrame(rows)
    out["rank"] = out["score"].rank(ascending=False, method="min").astype(int)
    return out


def compare_devices(
    profiles: Sequence[BlockProfile], *, value: str = "lat_effect_pct"
) -> pd.DataFrame:
    """The same block on every device: rows = blocks, columns = devices (``value`` per block).

    ``value`` is a column of :func:`block_friendliness` (``lat_effect_pct``, ``score``, ...).
    """
    frames = [block_friendliness(p).set_index("block")[value].rename(p.device) for p in profiles]
    return pd.concat(frames, axis=1)


def position_table(
    profiles: Sequence[BlockProfile], *, value: str = "lat_effect_pct"
) -> pd.DataFrame:
    """Each block at each position on every device: index ``gene=choice``, columns = devices."""
    frames = []
    for p in profiles:
        f = friendliness(p)
        f.index = [f"{g}={c}" for g, c in zip(f["gene"], f["choice"], strict=True)]
        frames.append(f[value].rename(p.device))
    return pd.concat(frames, axis=1)
