"""Stage 2, ``blocks``: the friendliness of every (layer, op) for the device (block profiling,
Mills et al.) and the insights in words."""

from __future__ import annotations

from typing import Any

import numpy as np

from hsconas.pipeline.runner import StageContext, atomic_path
from hsconas.pipeline.stages.common import (
    config_of,
    hw_model_of,
    space_of,
    store_of,
)


def _placement_insights(effects: Any) -> list[str]:
    """Two more sentences from the effects table: which layers' op choice matters most, and
    whether kernel size or expansion ratio is the bigger latency lever."""
    out: list[str] = []
    effects = effects[effects["gene"].astype(str).str.endswith(".op")]
    if effects.empty:  # no per-layer op gene (OFA family: kernel/expand genes; nb201: edges)
        return out
    spread = effects.groupby("gene")["lat_effect_pct"].agg(lambda x: float(x.max() - x.min()))
    top = spread.sort_values(ascending=False)
    out.append(
        "The op choice moves latency most at "
        + ", ".join(
            f"{g.removesuffix('.op')} ({v:.1f} points between ops)" for g, v in top[:3].items()
        )
        + " and least at "
        + ", ".join(f"{g.removesuffix('.op')} ({v:.1f})" for g, v in top[::-1][:2].items())
        + "."
    )
    k_cost: dict[int, list[float]] = {}
    e_cost: dict[int, list[float]] = {}
    for choice, v in zip(effects["choice"], effects["lat_effect_pct"], strict=True):
        op = str(choice)
        if op.startswith("mb_k"):
            k, e = (int(x[1:]) for x in op.removeprefix("mb_").split("_"))
            k_cost.setdefault(k, []).append(float(v))
            e_cost.setdefault(e, []).append(float(v))
    if len(k_cost) > 1 and len(e_cost) > 1:
        kd = {k: float(np.mean(v)) for k, v in k_cost.items()}
        ed = {e: float(np.mean(v)) for e, v in e_cost.items()}
        k_range = max(kd.values()) - min(kd.values())
        e_range = max(ed.values()) - min(ed.values())
        bigger = "expansion ratio" if e_range > k_range else "kernel size"
        out.append(
            f"Kernel size moves latency by {k_range:.1f} points on average, the expansion ratio "
            f"by {e_range:.1f} points: on this device the {bigger} is the bigger latency lever."
        )
    return out


def blocks_source_kind(cfg: Any) -> str:
    """``measure`` or ``model``: ``blocks.source``, with ``auto`` measuring end to end on a
    local backend and using the hardware model on a remote one (each network a round trip)."""
    source = str(cfg.blocks.source)
    if source == "auto":
        return "model" if str(cfg.device.backend).startswith("remote:") else "measure"
    return source


def blocks_latency_source(ctx: StageContext) -> Any:
    """The latency source of the block profile (the same one when the search stage profiles
    again with accuracy: measurements come back from the store)."""
    import hashlib

    from hsconas.evaluation import BackendLatency, ModelLatency

    cfg = config_of(ctx)
    if blocks_source_kind(cfg) == "model":
        model_file = ctx.run_dir / str(ctx.inputs["hw_model"]["model_path"])
        digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
        settings = {"model": "hw_model.json", "sha256": digest}
        return ModelLatency(hw_model_of(ctx), device=cfg.device.name, settings=settings)
    return BackendLatency(
        backend=cfg.device.backend, device=cfg.device.name, batch=cfg.device.batch,
        threads=cfg.device.threads,
    )  # fmt: skip


def stage_blocks(ctx: StageContext) -> dict[str, Any]:
    """Profile blocks (Mills et al.: every op forced at every layer against a random baseline)
    with :mod:`hsconas.profiling` and write the device's insights; latency measured end to end on
    a local device (``blocks.source``, see :func:`blocks_source_kind`)."""
    from hsconas.profiling import enumerate_specs, profile_blocks
    from hsconas.profiling.insights import device_insights, format_insights

    cfg = config_of(ctx)
    bc = cfg.blocks
    space = space_of(cfg)
    specs = enumerate_specs(space)  # every (layer gene, choice): ops, channel and width factors
    store = store_of(ctx)  # the profile's draws are recorded as a run of the store
    kind = blocks_source_kind(cfg)
    source = blocks_latency_source(ctx)
    profile = profile_blocks(
        space, specs, source, samples=bc.samples_per_block, baseline_samples=bc.baseline_samples,
        seed=cfg.seed, store=store,
        progress=lambda d, t: ctx.progress(d, t, "profile blocks (networks)"),
    )  # fmt: skip
    profile.save(ctx.dir / "profile")
    insights = [i.text for i in device_insights(profile)]
    insights += _placement_insights(profile.effects())
    with atomic_path(ctx.dir / "insights.md") as tmp:
        tmp.write_text(
            f"# Block insights: {cfg.device.name} ({cfg.device.backend})\n\n"
            + format_insights(device_insights(profile))
            + "".join(f"- {s}\n" for s in insights[len(device_insights(profile)) :]),
            encoding="utf-8",
        )
    return {
        "profile_dir": "blocks/profile",
        "insights": insights,
        "source": kind,
        "n_specs": len(specs),
        "n_networks": profile.n_distinct,
        "baseline_mean_ms": float(profile.stats.loc[0, "lat_mean"]),
        "r2_latency": float(profile.regression["latency_ms"].r2),
    }
