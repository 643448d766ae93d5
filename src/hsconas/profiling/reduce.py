"""Per-device reduced search spaces from a block profile, and the random control.

Two rules decide which choices of a gene survive:

``front-rate`` (default)
    The profile's measured architectures are sorted into non-dominated layers (accuracy up,
    latency down); the *near-front* set is the first layers holding at least ``near_share`` of
    them. A choice's front rate is the share of the architectures holding it (where the gene is
    active) that are near-front. The ``protect_cheapest`` choices of lowest latency effect and the
    ``protect_accurate`` choices of highest accuracy effect always stay: the two ends of the front
    are built from them, and few measured architectures reach either end. Any other choice stays only when its front rate reaches
    ``min_rate_ratio`` times the best front rate of its gene, or when it appears at that gene in
    one of the first ``rescue_fronts`` non-dominated layers of the measured architectures.

``dominated``
    A choice is dropped when another choice of the same gene dominates it in *both* marginal
    effects of the profile's regression (no slower by more than ``lat_margin_pct`` of the mean
    latency and more accurate by at least ``acc_margin`` points), unless it appears at that gene in
    one of the first ``rescue_fronts`` non-dominated layers of the profile's own measured
    architectures.

Either way at least ``keep_min`` choices per gene are kept (the friendliest of the dropped ones
come back first).

The file written is ``{"space", "device", "restrict": {gene: [choices]}, ...}``, which
:meth:`SearchSpace.restrict` and ``hsconas search --space-restrict`` accept. No torch here.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.errors import DataFormatError, DataNotFoundError
from hsconas.profiling.friendliness import friendliness
from hsconas.profiling.profile import BlockProfile, ProfileError
from hsconas.search.indicators import non_dominated_sort, objectives
from hsconas.space import SearchSpace, get_space
from hsconas.space.core import Value

__all__ = ["RULES", "Reduction", "load_reduction", "random_reduction", "reduce_space"]

RULES: tuple[str, ...] = ("front-rate", "dominated")


@dataclass(frozen=True)
class Reduction:
    """A reduced space for one device.

    Attributes:
        space: space name.
        device: the device it was reduced for (``random-control`` suffix for the control).
        restrict: gene -> kept choices (every gene with more than one choice in the full space).
        dropped: gene -> dropped choices.
        rule: how it was made.
        size: architectures in the reduced space.
        full_size: architectures in the space it was reduced from.
        keep_min: the minimum choices kept per gene.
        reasons: ``gene=choice`` -> why it was dropped.
    """

    space: str
    device: str
    restrict: Mapping[str, list[Value]]
    dropped: Mapping[str, list[Value]]
    rule: str
    size: int
    full_size: int
    keep_min: int
    reasons: Mapping[str, str] = field(default_factory=dict)

    def apply(self, space: SearchSpace | None = None) -> SearchSpace:
        """The reduced space (a restriction of ``space``, default the registered one)."""
        sp = space if space is not None else get_space(self.space)
        return sp.restrict(self.restrict)

    @property
    def n_choices(self) -> int:
        return sum(len(v) for v in self.restrict.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "device": self.device,
            "restrict": {k: list(v) for k, v in self.restrict.items()},
            "dropped": {k: list(v) for k, v in self.dropped.items()},
            "rule": self.rule,
            "size": self.size,
            "full_size": self.full_size,
            "keep_min": self.keep_min,
            "reasons": dict(self.reasons),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        return p


def load_reduction(path: str | os.PathLike[str]) -> Reduction:
    """Read a reduced-space JSON file and check it against its space."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"reduced space file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("restrict"), dict) or "space" not in doc:
        raise DataFormatError(f'{p}: expected {{"space": ..., "restrict": {{gene: [choices]}}}}')
    sp = get_space(str(doc["space"]))
    reduced = sp.restrict(doc["restrict"])
    return Reduction(
        space=sp.name,
        device=str(doc.get("device", "")),
        restrict={g.name: list(g.choices) for g in reduced.genes},
        dropped=dict(doc.get("dropped", {})),
        rule=str(doc.get("rule", "")),
        size=int(reduced.size()),
        full_size=int(sp.size()),
        keep_min=int(doc.get("keep_min", 1)),
        reasons=dict(doc.get("reasons", {})),
    )


@dataclass(frozen=True)
class _Draws:
    """The profile's measured architectures as reduction rules see them.

    Attributes:
        choices: per architecture, the (gene, str(choice)) pairs of its active genes.
        layer: per architecture, its non-dominated layer (0 = Pareto-optimal among the draws;
            accuracy up, latency down).
    """

    choices: list[set[tuple[str, str]]]
    layer: np.ndarray

    @classmethod
    def of(cls, profile: BlockProfile, space: SearchSpace) -> _Draws:
        d = profile.draws
        acc = d["accuracy"].to_numpy(float)
        lat = d["latency_ms"].to_numpy(float)
        ok = np.isfinite(acc) & np.isfinite(lat)
        choices = []
        for text in d["arch"][ok]:
            a = space.from_string(str(text))
            mask = space.active_mask(a.values)
            choices.append(
                {
                    (g.name, str(v))
                    for g, v, on in zip(space.genes, a.values, mask, strict=True)
                    if on
                }
            )
        layer = np.zeros(len(choices), dtype=np.int64)
        for k, idx in enumerate(non_dominated_sort(objectives(acc[ok], lat[ok]))):
            layer[idx] = k
        return cls(choices, layer)

    def used_by_layers(self, layers: int) -> set[tuple[str, str]]:
        """Choices held by some architecture of the first ``layers`` non-dominated layers."""
        return set().union(
            *(c for c, k in zip(self.choices, self.layer, strict=True) if k < layers)
        )

    def near_front_rates(self, near_share: float) -> dict[tuple[str, str], float]:
        """(gene, str(choice)) -> share of the architectures holding it that lie in the first
        non-dominated layers covering at least ``near_share`` of all of them."""
        if not self.choices:
            return {}
        per_layer = np.cumsum(np.bincount(self.layer))
        last = int(np.searchsorted(per_layer, near_share * len(self.layer)))
        held: dict[tuple[str, str], list[bool]] = {}
        for chosen, k in zip(self.choices, self.layer, strict=True):
            for key in chosen:
                held.setdefault(key, []).append(bool(k <= last))
        return {k: float(np.mean(v)) for k, v in held.items()}


def _front_rate_drops(
    space: SearchSpace,
    draws: _Draws,
    eff: Mapping[str, Mapping[str, tuple[float, float, float]]],
    *,
    near_share: float,
    min_rate_ratio: float,
    protect_cheapest: int,
    protect_accurate: int,
    rescue_fronts: int,
) -> tuple[dict[str, list[Value]], dict[str, str]]:
    rates = draws.near_front_rates(near_share)
    rescued = draws.used_by_layers(rescue_fronts)
    drops: dict[str, list[Value]] = {}
    reasons: dict[str, str] = {}
    for g in space.genes:
        if len(g.choices) < 2:
            continue
        e = eff[g.name]
        cheapest = sorted(g.choices, key=lambda c: e[str(c)][0])[:protect_cheapest]
        accurate = sorted(g.choices, key=lambda c: -e[str(c)][1])[:protect_accurate]
        rate = {str(c): rates.get((g.name, str(c)), 0.0) for c in g.choices}
        best = max(rate.values())
        for c in g.choices:
            if (
                c in cheapest
                or c in accurate
                or rate[str(c)] >= min_rate_ratio * best
                or (g.name, str(c)) in rescued
            ):
                continue
            drops.setdefault(g.name, []).append(c)
            reasons[f"{g.name}={c}"] = (
                f"near-front rate {100 * rate[str(c)]:.0f}% vs {100 * best:.0f}% for the best "
                f"choice of this layer (latency {e[str(c)][0]:+.1f}%, accuracy "
                f"{e[str(c)][1]:+.2f} points: neither among the cheapest nor the most accurate)"
            )
    return drops, reasons


def _dominated_drops(
    space: SearchSpace,
    draws: _Draws,
    eff: Mapping[str, Mapping[str, tuple[float, float, float]]],
    *,
    lat_margin_pct: float,
    acc_margin: float,
    rescue_fronts: int,
) -> tuple[dict[str, list[Value]], dict[str, str]]:
    rescued = draws.used_by_layers(rescue_fronts)
    drops: dict[str, list[Value]] = {}
    reasons: dict[str, str] = {}
    for g in space.genes:
        if len(g.choices) < 2:
            continue
        e = eff[g.name]
        for c in g.choices:
            lc, ac, _ = e[str(c)]
            for d in g.choices:
                if d == c:
                    continue
                ld, ad, _ = e[str(d)]
                if ld <= lc + lat_margin_pct and ad >= ac + acc_margin:
                    if (g.name, str(c)) in rescued:
                        break
                    drops.setdefault(g.name, []).append(c)
                    reasons[f"{g.name}={c}"] = (
                        f"dominated by {d}: latency {ld:+.1f}% vs {lc:+.1f}%, "
                        f"accuracy {ad:+.2f} vs {ac:+.2f} points"
                    )
                    break
    return drops, reasons


def reduce_space(
    profile: BlockProfile,
    *,
    rule: str = "front-rate",
    keep_min: int = 2,
    near_share: float = 0.25,
    min_rate_ratio: float = 0.35,
    protect_cheapest: int = 2,
    protect_accurate: int = 1,
    lat_margin_pct: float = 1.0,
    acc_margin: float = 0.5,
    rescue_fronts: int = 1,
) -> Reduction:
    """Drop, per gene, the choices the profile shows to be unhelpful (see the module docstring).

    Args:
        profile: a profile with accuracy.
        rule: ``"front-rate"`` or ``"dominated"``.
        keep_min: minimum choices kept per gene (capped by the gene's choices).
        near_share: front-rate rule: share of the measured architectures counted as near-front.
        min_rate_ratio: front-rate rule: a choice needs at least this share of its gene's best
            front rate.
        protect_cheapest: front-rate rule: choices of lowest latency effect kept per gene.
        protect_accurate: front-rate rule: choices of highest accuracy effect kept per gene.
        lat_margin_pct: dominated rule: a dominating choice may be slower by at most this share
            of the mean latency, percent.
        acc_margin: dominated rule: a dominating choice must be more accurate by at least this,
            points.
        rescue_fronts: keep choices used by the first this-many non-dominated layers of the
            profile's measured architectures (0 disables the rescue).

    Raises:
        ProfileError: the profile has no accuracy, an unknown rule, ``keep_min`` < 1 or
            ``min_rate_ratio`` outside [0, 1].
    """
    if keep_min < 1:
        raise ProfileError(f"--keep-min must be >= 1, got {keep_min}")
    if not 0.0 <= min_rate_ratio <= 1.0:
        raise ProfileError(f"--min-rate-ratio must be between 0 and 1, got {min_rate_ratio}")
    if rule not in RULES:
        raise ProfileError(f"unknown reduction rule {rule!r}; choose one of {', '.join(RULES)}")
    if not profile.has_accuracy:
        raise ProfileError(
            "reduction needs accuracy effects; profile with --accuracy-table (or an accuracy "
            "callable) first"
        )
    space = profile.space_obj()
    draws = _Draws.of(profile, space)
    f = friendliness(profile)
    eff: dict[str, dict[str, tuple[float, float, float]]] = {}
    for r in f.itertuples():
        eff.setdefault(str(r.gene), {})[str(r.choice)] = (
            float(r.lat_effect_pct),
            float(r.acc_effect),
            float(r.score),
        )
    if rule == "front-rate":
        drops, reasons = _front_rate_drops(
            space,
            draws,
            eff,
            near_share=near_share,
            min_rate_ratio=min_rate_ratio,
            protect_cheapest=protect_cheapest,
            protect_accurate=protect_accurate,
            rescue_fronts=rescue_fronts,
        )
        settings = (
            f"near_share={near_share}, min_rate_ratio={min_rate_ratio}, "
            f"protect_cheapest={protect_cheapest}, protect_accurate={protect_accurate}, "
            f"rescue_fronts={rescue_fronts}"
        )
    else:
        drops, reasons = _dominated_drops(
            space,
            draws,
            eff,
            lat_margin_pct=lat_margin_pct,
            acc_margin=acc_margin,
            rescue_fronts=rescue_fronts,
        )
        settings = (
            f"lat_margin_pct={lat_margin_pct}, acc_margin={acc_margin}, "
            f"rescue_fronts={rescue_fronts}"
        )
    restrict: dict[str, list[Value]] = {}
    dropped: dict[str, list[Value]] = {}
    for g in space.genes:
        if len(g.choices) < 2:
            continue
        drop = drops.get(g.name, [])
        kept = [c for c in g.choices if c not in drop]
        need = min(keep_min, len(g.choices)) - len(kept)
        if need > 0:  # the friendliest dropped choices come back first
            back = sorted(drop, key=lambda c: -eff[g.name][str(c)][2])[:need]
            for c in back:
                reasons.pop(f"{g.name}={c}", None)
            drop = [c for c in drop if c not in back]
            kept = [c for c in g.choices if c not in drop]
        restrict[g.name] = kept
        if drop:
            dropped[g.name] = drop
    reduced = space.restrict(restrict)
    return Reduction(
        space=space.name,
        device=profile.device,
        restrict=restrict,
        dropped=dropped,
        rule=f"{rule}({settings})",
        size=int(reduced.size()),
        full_size=int(space.size()),
        keep_min=keep_min,
        reasons=reasons,
    )


def random_reduction(reduction: Reduction, *, seed: int = 0) -> Reduction:
    """The control: per gene, as many choices as ``reduction`` keeps, drawn uniformly at random.

    Same number of choices per gene, hence the same space size for spaces without elastic depth.
    """
    rng = np.random.default_rng(seed)
    full = get_space(reduction.space)
    restrict: dict[str, list[Value]] = {}
    dropped: dict[str, list[Value]] = {}
    for name, kept in reduction.restrict.items():
        choices = list(full.gene(name).choices)
        k = len(kept)
        pick = sorted(rng.choice(len(choices), size=k, replace=False).tolist())
        restrict[name] = [choices[i] for i in pick]
        dropped_here = [c for i, c in enumerate(choices) if i not in pick]
        if dropped_here:
            dropped[name] = dropped_here
    reduced = full.restrict(restrict)
    return Reduction(
        space=reduction.space,
        device=f"{reduction.device}:random-control",
        restrict=restrict,
        dropped=dropped,
        rule=f"random(seed={seed}, sizes of {reduction.device})",
        size=int(reduced.size()),
        full_size=reduction.full_size,
        keep_min=reduction.keep_min,
        reasons={},
    )


def space_size(restrict: Mapping[str, list[Value]]) -> int:
    """Product of the kept choice counts (the size of a space without elastic depth)."""
    return math.prod(len(v) for v in restrict.values())
