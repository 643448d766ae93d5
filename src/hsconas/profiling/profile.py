"""Block and design-space profiling from end-to-end measurements (after Mills et al., CIKM 2021).

For each block specification (a choice forced on a gene), ``samples`` architectures holding it are
drawn and measured end to end; their latency and accuracy distributions (mean, std, 1/5/50/95/99%
quantiles) are compared with a uniformly drawn baseline. An ordinary least-squares regression on
one-hot (gene, choice) features of every measured architecture attributes end-to-end latency and
accuracy to block positions, with standard errors and 95% confidence intervals.

Measurements are shared: the baseline is drawn first, and each specification first reuses already
drawn architectures that hold its block (uniformly chosen among them) before drawing new ones, so
one network serves every specification it matches. Every measurement goes through the results
store, so a second run with the same store measures nothing new. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hsconas.errors import DataFormatError, HsconasError
from hsconas.evaluation import AccuracySource, ArchPool, LatencySource
from hsconas.profiling.draws import draw_forced, draw_random
from hsconas.profiling.regression import (
    ProfileError,
    Regression,
    fit_block_regression,
    json_default,
    json_records,
)
from hsconas.profiling.specs import BlockSpec
from hsconas.space import Architecture, SearchSpace, get_space
from hsconas.space.core import Value, _same_value
from hsconas.store import ResultStore

__all__ = [
    "FORMAT",
    "QUANTILES",
    "BlockProfile",
    "ProfileError",
    "Regression",
    "fit_block_regression",
    "load_profile",
    "profile_blocks",
]

logger = logging.getLogger(__name__)

FORMAT = "hsconas-block-profile"
FORMAT_VERSION = 1
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.5, 0.95, 0.99)
BASELINE = "baseline"


@dataclass
class BlockProfile:
    """The result of :func:`profile_blocks` (also what ``profile.json`` holds).

    Attributes:
        space: space name.
        restrict: the space's restriction at profiling time (empty for the full space).
        device: device name.
        source: description of the latency source (kind, settings).
        accuracy: accuracy source name, or ``None`` for latency-only profiles.
        samples: architectures per specification (requested).
        seed: random seed.
        specs: the specifications, in order.
        draws: one row per distinct measured architecture: arch, latency_ms, accuracy, specs
            (space-separated keys it was drawn for; ``baseline`` for the random baseline).
        stats: one row per specification plus the baseline row: distribution statistics.
        regression: ``latency_ms`` and (with accuracy) ``accuracy`` regressions.
        n_distinct: distinct architectures measured (the profiling cost).
        n_new: of those, how many were measured by this run rather than read from the store.
    """

    space: str
    device: str
    source: Mapping[str, Any]
    accuracy: str | None
    samples: int
    seed: int
    specs: list[BlockSpec]
    draws: pd.DataFrame
    stats: pd.DataFrame
    regression: dict[str, Regression]
    n_distinct: int
    n_new: int
    restrict: Mapping[str, list[Any]] = field(default_factory=dict)

    @property
    def has_accuracy(self) -> bool:
        return self.accuracy is not None and "accuracy" in self.regression

    def space_obj(self) -> SearchSpace:
        sp = get_space(self.space)
        return sp.restrict(self.restrict) if self.restrict else sp

    def effects(self) -> pd.DataFrame:
        """Per (gene, choice): latency effect (ms, %) and accuracy effect (points) with SEs."""
        lat = self.regression["latency_ms"].frame
        out = lat[["gene", "choice", "position", "block"]].copy()
        out["lat_effect_ms"] = lat["effect"].to_numpy()
        out["lat_se_ms"] = lat["se"].to_numpy()
        out["lat_effect_pct"] = lat["effect_pct"].to_numpy()
        if self.has_accuracy:
            acc = self.regression["accuracy"].frame
            out["acc_effect"] = acc["effect"].to_numpy()
            out["acc_se"] = acc["se"].to_numpy()
        else:
            out["acc_effect"] = np.nan
            out["acc_se"] = np.nan
        st = self.stats[self.stats["spec"] != BASELINE].set_index("spec")
        keys = [f"{g}={c}" for g, c in zip(out["gene"], out["choice"], strict=True)]
        out["lat_delta_pct"] = [st["lat_delta_pct"].get(k, np.nan) for k in keys]
        out["acc_delta"] = [st["acc_delta"].get(k, np.nan) for k in keys]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "space": self.space,
            "restrict": {k: list(v) for k, v in self.restrict.items()},
            "device": self.device,
            "source": dict(self.source),
            "accuracy": self.accuracy,
            "samples": self.samples,
            "seed": self.seed,
            "n_specs": len(self.specs),
            "n_distinct": self.n_distinct,
            "n_new": self.n_new,
            "specs": [
                {"gene": s.gene, "choice": s.choice, "position": s.position} for s in self.specs
            ],
            "stats": json_records(self.stats),
            "regression": {k: r.to_json() for k, r in self.regression.items()},
            "draws": json_records(self.draws),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BlockProfile:
        if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
            raise ProfileError(f"not a block profile (expected format {FORMAT!r})")
        if int(doc.get("format_version", 0)) > FORMAT_VERSION:
            raise ProfileError(
                f"block profile format version {doc.get('format_version')} is newer than this "
                f"hsconas reads ({FORMAT_VERSION}); upgrade hsconas"
            )
        return cls(
            space=str(doc["space"]),
            device=str(doc["device"]),
            source=dict(doc["source"]),
            accuracy=doc.get("accuracy"),
            samples=int(doc["samples"]),
            seed=int(doc["seed"]),
            specs=[BlockSpec(s["gene"], s["choice"], int(s["position"])) for s in doc["specs"]],
            draws=pd.DataFrame(doc["draws"]),
            stats=pd.DataFrame(doc["stats"]),
            regression={k: Regression.from_json(v) for k, v in doc["regression"].items()},
            n_distinct=int(doc["n_distinct"]),
            n_new=int(doc["n_new"]),
            restrict=dict(doc.get("restrict", {})),
        )

    def save(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``profile.json`` and the tables (CSV and Parquet) into directory ``out``."""
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        p = d / "profile.json"
        p.write_text(json.dumps(self.to_json(), indent=1, default=json_default), encoding="utf-8")
        paths["profile"] = p
        tables = {"stats": self.stats, "draws": self.draws, "effects": self.effects()}
        for k, r in self.regression.items():
            tables[f"regression_{k}"] = r.frame
        for name, df in tables.items():
            csv = d / f"{name}.csv"
            df.to_csv(csv, index=False)
            pq = d / f"{name}.parquet"
            _stringify_mixed(df).to_parquet(pq, index=False)
            paths[name] = csv
            paths[f"{name}_parquet"] = pq
        return paths


def _stringify_mixed(df: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing strings and numbers (gene choices) as strings, so Parquet accepts them."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: v if v is None else str(v))
    return out


def load_profile(path: str | os.PathLike[str]) -> BlockProfile:
    """Read a ``profile.json`` (or the directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "profile.json"
    if not p.is_file():
        from hsconas.errors import DataNotFoundError

        raise DataNotFoundError(f"profile file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{p}: not a JSON profile ({exc})") from None
    try:
        return BlockProfile.from_json(doc)
    except ProfileError as exc:
        raise ProfileError(f"{p}: {exc}") from None


def _dist_stats(x: np.ndarray, prefix: str) -> dict[str, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        keys = ["mean", "std"] + [f"q{round(q * 100):02d}" for q in QUANTILES]
        return {f"{prefix}_{k}": float("nan") for k in keys}
    out = {
        f"{prefix}_mean": float(x.mean()),
        f"{prefix}_std": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
    }
    for q in QUANTILES:
        out[f"{prefix}_q{round(q * 100):02d}"] = float(np.quantile(x, q))
    return out


def profile_blocks(
    space: SearchSpace,
    specs: Sequence[BlockSpec],
    source: LatencySource,
    *,
    accuracy: AccuracySource | None = None,
    samples: int = 20,
    baseline_samples: int | None = None,
    seed: int = 0,
    store: ResultStore | None = None,
    reuse_draws: bool = True,
    ridge: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> BlockProfile:
    """Profile every specification of ``specs`` on ``source``'s device.

    Args:
        space: the (possibly restricted) space the specifications belong to.
        specs: block specifications (see :func:`~hsconas.profiling.specs.enumerate_specs`).
        source: where latency comes from.
        accuracy: where accuracy comes from (``None``: latency-only).
        samples: architectures per specification (fewer if a table has fewer rows holding it).
        baseline_samples: size of the random baseline (default: ``max(samples, 4 * samples)``).
        seed: seed of every draw.
        store: results store; measurements are read from and written to it.
        reuse_draws: let a specification reuse already drawn architectures holding its block.
        ridge: ridge penalty of the regressions (0 = OLS).
        progress: called with (done, total) architectures measured.

    Raises:
        ProfileError: ``samples`` < 2, or no specification.
        DataFormatError: the sources do not fit the space.
    """
    if samples < 2:
        raise ProfileError(f"--samples must be >= 2 per specification, got {samples}")
    if not specs:
        raise ProfileError("no block specification to profile")
    for s in specs:
        if s.position >= len(space.genes) or space.genes[s.position].name != s.gene:
            raise ProfileError(f"specification {s.key} does not belong to space {space.name}")
    n_base = baseline_samples if baseline_samples is not None else 4 * samples
    rng = np.random.default_rng(seed)
    pool = _joint_pool(space, source, accuracy)
    drawn: dict[Architecture, list[str]] = {}
    vals: list[tuple[Value, ...]] = []
    act: list[tuple[bool, ...]] = []
    order: list[Architecture] = []

    def add(a: Architecture, label: str) -> None:
        if a not in drawn:
            drawn[a] = []
            order.append(a)
            vals.append(a.values)
            act.append(space.active_mask(a.values))
        drawn[a].append(label)

    for a in draw_random(space, n_base, rng, pool=pool):
        add(a, BASELINE)
    members: dict[str, list[Architecture]] = {}
    for s in specs:
        take: list[Architecture] = []
        if reuse_draws:
            cand = [
                order[i]
                for i in range(len(order))
                if act[i][s.position] and _same_value(s.choice, vals[i][s.position])
            ]
            if len(cand) > samples:
                pick = rng.choice(len(cand), size=samples, replace=False)
                cand = [cand[i] for i in sorted(pick)]
            take = cand
        fresh = (
            draw_forced(
                space,
                s,
                samples - len(take),
                rng,
                pool=pool,
                exclude=drawn if reuse_draws else take,
            )
            if len(take) < samples
            else []
        )
        members[s.key] = take + fresh
        for a in members[s.key]:
            add(a, s.key)
        if not members[s.key]:
            raise ProfileError(f"no architecture of the sources holds {s.key}")
    # measure every distinct architecture once
    lat, n_new = _measure(space, source, order, store, progress)
    acc = accuracy.evaluate(order) if accuracy is not None else np.full(len(order), np.nan)
    lat_of = dict(zip(order, lat, strict=True))
    acc_of = dict(zip(order, acc, strict=True))
    draws = pd.DataFrame(
        {
            "arch": [space.to_string(a) for a in order],
            "latency_ms": lat,
            "accuracy": acc,
            "specs": [" ".join(dict.fromkeys(drawn[a])) for a in order],
        }
    )
    base = [a for a in order if BASELINE in drawn[a]]
    rows = [_stats_row(BASELINE, None, base, lat_of, acc_of)]
    for s in specs:
        rows.append(_stats_row(s.key, s, members[s.key], lat_of, acc_of))
    stats = pd.DataFrame(rows)
    b_lat, b_acc = float(stats.loc[0, "lat_mean"]), float(stats.loc[0, "acc_mean"])
    stats["lat_delta_pct"] = 100.0 * (stats["lat_mean"] - b_lat) / b_lat
    stats["lat_q50_delta_pct"] = (
        100.0 * (stats["lat_q50"] - stats.loc[0, "lat_q50"]) / float(stats.loc[0, "lat_q50"])
    )
    stats["acc_delta"] = stats["acc_mean"] - b_acc
    regression = {"latency_ms": fit_block_regression(space, order, lat, ridge=ridge)}
    if accuracy is not None:
        regression["accuracy"] = fit_block_regression(
            space, order, acc, target="accuracy", ridge=ridge
        )
    if store is not None:
        _record_run(store, space, source, accuracy, samples, seed, order, lat, acc)
    return BlockProfile(
        space=space.name,
        device=source.device,
        source={"kind": source.kind, **dict(source.settings)},
        accuracy=accuracy.name if accuracy is not None else None,
        samples=samples,
        seed=seed,
        specs=list(specs),
        draws=draws,
        stats=stats,
        regression=regression,
        n_distinct=len(order),
        n_new=n_new,
        restrict={k: list(v) for k, v in space.restriction().items()},
    )


def _joint_pool(
    space: SearchSpace, source: LatencySource, accuracy: AccuracySource | None
) -> ArchPool | None:
    lp = source.pool(space)
    ap = accuracy.pool(space) if accuracy is not None else None
    if lp is None:
        return ap
    if ap is None:
        return lp
    joint = lp.restricted(lambda a: a in ap)
    if len(joint) == 0:
        raise DataFormatError("the latency and accuracy sources have no architecture in common")
    return joint


def _measure(
    space: SearchSpace,
    source: LatencySource,
    archs: list[Architecture],
    store: ResultStore | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, int]:
    chunk = 50 if source.kind not in ("table", "model") else max(len(archs), 1)
    out: list[np.ndarray] = []
    new = 0
    for i in range(0, len(archs), chunk):
        part = archs[i : i + chunk]
        v, k = source.measure(space, part, store=store)
        out.append(v)
        new += k
        if progress is not None:
            progress(min(i + chunk, len(archs)), len(archs))
    return (np.concatenate(out) if out else np.zeros(0)), new


def _stats_row(
    key: str,
    spec: BlockSpec | None,
    archs: list[Architecture],
    lat_of: Mapping[Architecture, float],
    acc_of: Mapping[Architecture, float],
) -> dict[str, Any]:
    lat = np.array([lat_of[a] for a in archs], dtype=np.float64)
    acc = np.array([acc_of[a] for a in archs], dtype=np.float64)
    return {
        "spec": key,
        "gene": spec.gene if spec else "",
        "choice": spec.choice if spec else "",
        "position": spec.position if spec else -1,
        "block": spec.block if spec else BASELINE,
        "n": len(archs),
        **_dist_stats(lat, "lat"),
        **_dist_stats(acc, "acc"),
    }


def _record_run(
    store: ResultStore,
    space: SearchSpace,
    source: LatencySource,
    accuracy: AccuracySource | None,
    samples: int,
    seed: int,
    archs: list[Architecture],
    lat: np.ndarray,
    acc: np.ndarray,
) -> None:
    config = {
        "space": space.name,
        "restrict": {k: [str(v) for v in vs] for k, vs in space.restriction().items()},
        "device": source.device,
        "source": {"kind": source.kind, **dict(source.settings)},
        "accuracy": accuracy.name if accuracy is not None else None,
        "samples": samples,
        "seed": seed,
    }
    run_id = f"profile-{space.name}-{source.device}-{source.kind}-n{samples}-s{seed}"
    try:
        store.create_run(run_id, "profile", config)
    except HsconasError:
        digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode())
        run_id = f"{run_id}-{digest.hexdigest()[:8]}"
        store.create_run(run_id, "profile", config)
    for i, (a, la, ac) in enumerate(zip(archs, lat, acc, strict=True)):
        values: dict[str, float | None] = {"latency_ms": float(la)}
        values["accuracy"] = float(ac) if np.isfinite(ac) else None
        store.add_evaluation(run_id, i, space.to_string(a), values)
    store.finish_run(run_id, {"n_distinct": len(archs)})
