"""Short insights in words per device, each claim carrying the numbers it cites.

Every :class:`Insight` keeps the figures it quotes (``numbers``, already formatted as printed), so a
reader (or a test) can check each sentence against the profile tables. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from hsconas.profiling.friendliness import block_friendliness, friendliness, position_table
from hsconas.profiling.profile import BlockProfile
from hsconas.profiling.specs import BlockSpec

__all__ = ["Insight", "cross_device_insights", "device_insights", "format_insights", "pct"]


def pct(x: float) -> str:
    """A signed percentage as printed in insights (``+18%``, ``-3.4%``, ``+0.6%``)."""
    return f"{x:+.0f}%" if abs(x) >= 10 else f"{x:+.1f}%"


def pts(x: float) -> str:
    """Signed accuracy points as printed in insights."""
    return f"{x:+.2f} points"


@dataclass(frozen=True)
class Insight:
    """One sentence about a device (or a comparison of devices).

    Attributes:
        device: the device, or ``"*"`` for cross-device sentences.
        kind: what the claim is about (``costliest``, ``placement``, ``friendliest``, ...).
        text: the sentence.
        numbers: the quoted figures, as they appear in ``text``, by name.
        values: the same figures as floats, by name.
    """

    device: str
    kind: str
    text: str
    numbers: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)


def _ins(device: str, kind: str, template: str, **vals: tuple[float, str]) -> Insight:
    numbers = {k: s for k, (_, s) in vals.items()}
    return Insight(
        device, kind, template.format(**numbers), numbers, {k: v for k, (v, _) in vals.items()}
    )


def device_insights(profile: BlockProfile) -> list[Insight]:
    """Insights about one device's profile (costliest/cheapest blocks, placement, friendliness)."""
    dev = profile.device
    b = block_friendliness(profile).sort_values("lat_effect_pct")
    f = friendliness(profile)
    out: list[Insight] = []
    lat_reg = profile.regression["latency_ms"]
    out.append(
        _ins(
            dev,
            "fit",
            f"On {dev}, block-position features explain R2 = {{r2}} of end-to-end latency "
            f"over {{n}} measured networks (mean {{mean}} ms)"
            + (
                "; latency there depends on more than the blocks (launch overhead, interactions, "
                "noise), so read its block effects with care."
                if lat_reg.r2 < 0.8
                else "."
            ),
            r2=(lat_reg.r2, f"{lat_reg.r2:.2f}"),
            n=(float(lat_reg.n), str(lat_reg.n)),
            mean=(lat_reg.mean, f"{lat_reg.mean:.3g}"),
        )
    )
    hi, lo = b.iloc[-1], b.iloc[0]
    out.append(
        _ins(
            dev,
            "costliest",
            f"The costliest block on {dev} is {hi['block']}: {{hi}} latency on average over its "
            f"positions versus an average choice; the cheapest is {lo['block']} at {{lo}}.",
            hi=(float(hi["lat_effect_pct"]), pct(float(hi["lat_effect_pct"]))),
            lo=(float(lo["lat_effect_pct"]), pct(float(lo["lat_effect_pct"]))),
        )
    )
    multi = b[b["n_positions"] > 1]
    if not multi.empty:
        s = multi.loc[multi["placement_spread_pct"].idxmax()]
        out.append(
            _ins(
                dev,
                "placement",
                f"Placement matters most for {s['block']} on {dev}: its latency effect ranges "
                f"from {{min}} at {s['pos_min']} to {{max}} at {s['pos_max']}.",
                max=(float(s["lat_pct_max"]), pct(float(s["lat_pct_max"]))),
                min=(float(s["lat_pct_min"]), pct(float(s["lat_pct_min"]))),
            )
        )
    if profile.has_accuracy:
        best = f.loc[f["score"].idxmax()]
        worst = f.loc[f["score"].idxmin()]
        for row, kind, word in (
            (best, "friendliest", "friendliest"),
            (worst, "unfriendliest", "least friendly"),
        ):
            out.append(
                _ins(
                    dev,
                    kind,
                    f"The {word} block-position on {dev} is {row['block']} on {row['gene']}: "
                    f"{{lat}} latency for {{acc}} of accuracy.",
                    lat=(float(row["lat_effect_pct"]), pct(float(row["lat_effect_pct"]))),
                    acc=(float(row["acc_effect"]), pts(float(row["acc_effect"]))),
                )
            )
    return out


def _where(gene: str, choice: str) -> str:
    """``nor_conv_3x3 on edge3<-2``, ``kernel=7 on u3.l2``, or ``resolution=224``."""
    value: str | int | float = choice
    if choice.lstrip("-").replace(".", "", 1).isdigit():
        value = float(choice) if "." in choice else int(choice)
    spec = BlockSpec(gene, value, 0)
    return spec.block if spec.block.startswith(f"{gene}=") else f"{spec.block} on {spec.layer}"


def cross_device_insights(profiles: Sequence[BlockProfile], *, top: int = 3) -> list[Insight]:
    """The block-positions whose latency cost differs most between devices."""
    if len(profiles) < 2:
        return []
    t = position_table(profiles)
    spread = t.max(axis=1) - t.min(axis=1)
    out: list[Insight] = []
    blocks_seen: set[str] = set()
    genes_seen: set[str] = set()
    for key in spread.sort_values(ascending=False).index:
        if len(blocks_seen) >= top:
            break
        gene, _, choice = str(key).partition("=")
        where = _where(gene, choice)
        block = where.split(" on ")[0]
        if block in blocks_seen or gene in genes_seen:  # one sentence per block and per gene
            continue
        blocks_seen.add(block)
        genes_seen.add(gene)
        row = t.loc[key]
        dmax, dmin = str(row.idxmax()), str(row.idxmin())
        vmax, vmin = float(row.max()), float(row.min())
        low = pct(vmin)
        out.append(
            _ins(
                "*",
                "cross-device",
                f"{where} costs {{hi}} latency on {dmax} but {{lo}} on {dmin}.",
                hi=(vmax, pct(vmax)),
                lo=(vmin, low),
            )
        )
    b = [
        block_friendliness(p).set_index("block")["lat_effect_pct"].rename(p.device)
        for p in profiles
    ]
    bt = pd.concat(b, axis=1)
    ranks = bt.rank(axis=0, ascending=False)
    if len(bt) > 1:
        flips = (ranks.max(axis=1) - ranks.min(axis=1)).sort_values(ascending=False)
        blk = str(flips.index[0])
        if flips.iloc[0] > 0:
            r = ranks.loc[blk]
            out.append(
                _ins(
                    "*",
                    "rank-change",
                    f"{blk} ranks #{{rmin}} in latency cost on {r.idxmin()} but "
                    f"#{{rmax}} on {r.idxmax()} (of {len(bt)} blocks).",
                    rmin=(float(r.min()), f"{int(r.min())}"),
                    rmax=(float(r.max()), f"{int(r.max())}"),
                )
            )
    return out


def format_insights(insights: Sequence[Insight]) -> str:
    """Plain text: one bullet per insight, grouped by device."""
    lines: list[str] = []
    current = None
    for ins in insights:
        if ins.device != current:
            current = ins.device
            if lines:
                lines.append("")
            lines.append("All devices" if current == "*" else f"{current}")
        lines.append(f"- {ins.text}")
    return "\n".join(lines).strip() + "\n"
