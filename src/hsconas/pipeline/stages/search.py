"""Stage 4, ``search``: the HSCoNAS EA with progressive space shrinking (hardware-model latency,
accuracy from ``search.accuracy``: the ensemble of zero-cost proxies and the supernet, the
supernet alone or proxies only), then dynamic channel scaling of the best candidates to the
budget."""

from __future__ import annotations

from typing import Any

import numpy as np

from hsconas.pipeline.runner import StageContext, write_json_atomic
from hsconas.pipeline.stages.common import (
    config_of,
    run_name,
    search_evaluator_of,
    space_of,
    store_of,
)


def stage_search(ctx: StageContext) -> dict[str, Any]:
    """HSCoNAS EA with progressive shrinking, then channel scaling of the best candidates."""
    from hsconas.search import HSCoNASEvolution, Problem, run_search
    from hsconas.search.budget_fit import BudgetScaler
    from hsconas.search.channel_scaling import distinct_operator_configs
    from hsconas.search.indicators import normalised_hypervolume
    from hsconas.search.runner import front_of, stage_ranges

    cfg = config_of(ctx)
    se = cfg.search
    space = space_of(cfg)
    budget = float(ctx.inputs["hw_model"]["budget_ms"])
    ev = search_evaluator_of(ctx)
    reduction = _blocks_reduction(ctx, space, ev) if cfg.blocks.reduce_search else None
    if reduction is not None:
        space = space.restrict(reduction.restrict)
    problem = Problem(space, mode=se.mode, budget_ms=budget)
    algo = HSCoNASEvolution(
        problem, seed=cfg.seed, population_size=se.population_size,
        initial_queries=se.initial_queries, batch_size=se.batch_size, shrinking=se.shrinking,
        shrink_at=se.shrink_at, shrink_z=se.shrink_z,
        offspring_per_generation=se.offspring_per_generation,
    )  # fmt: skip
    ctx.progress(0, se.n_queries, "search (distinct architectures)")
    res = run_search(
        problem, algo, ev, se.n_queries, store=store_of(ctx),
        run_id=f"{run_name(ctx)}-search-{ctx.key}", resume=True,
        on_batch=lambda n: ctx.progress(n, se.n_queries, "search (distinct architectures)"),
    )  # fmt: skip
    records = list(res.records)
    acc = np.array([r.accuracy for r in records])
    lat = np.array([r.latency_ms for r in records])

    # dynamic channel scaling of the best distinct operator configurations, by the EA's operator
    scaled: list[dict[str, Any]] = []
    if se.channel_scaling:
        scaler = BudgetScaler(
            space, [(r.key, r.accuracy, r.latency_ms) for r in records], ev.latency_ms
        )
        # the most accurate distinct operator configurations, over budget or not: channel
        # scaling brings each to the budget from below (down if over, up while it pays)
        picked = distinct_operator_configs(space, records, se.n_scaled)
        for i, r in enumerate(picked):
            new = scaler.scale(r.arch, budget)
            if new is None:
                scaled.append(
                    {"from": r.key, "error": f"channel scaling cannot meet {budget:.4g} ms"}
                )
                continue
            scaled.append(
                {
                    "from": r.key,
                    "from_accuracy": r.accuracy,
                    "from_latency_ms": r.latency_ms,
                    "arch": space.to_string(new),
                    "accuracy": ev.accuracy(new),
                    "latency_ms": ev.latency_ms(new),
                    "n_steps": sum(a != b for a, b in zip(r.arch.values, new.values, strict=True)),
                }
            )
            ctx.progress(i + 1, len(picked), "channel scaling")

    # candidates for the final stage: feasible by prediction, most accurate first
    pool: dict[str, tuple[float, float]] = {r.key: (r.accuracy, r.latency_ms) for r in records}
    for s in scaled:
        if "arch" in s:
            pool[s["arch"]] = (s["accuracy"], s["latency_ms"])
    feasible = sorted(
        ((k, a, la) for k, (a, la) in pool.items() if la <= budget),
        key=lambda t: (-t[1], t[2], t[0]),
    )
    candidates = [{"arch": k, "accuracy": a, "latency_ms": la} for k, a, la in feasible[:50]]
    if not candidates:  # nothing predicted within budget: fastest first
        fastest = sorted(pool.items(), key=lambda kv: kv[1][1])[:10]
        candidates = [{"arch": k, "accuracy": a, "latency_ms": la} for k, (a, la) in fastest]

    # fronts per shrinking stage and hypervolume over the search
    stages = list(res.info.get("stages", []))
    bounds = (float(acc.min()), float(acc.max()), float(lat.min()), float(lat.max()))
    stage_fronts = []
    for s, (start, end) in zip(stages, stage_ranges(stages, len(records)), strict=True):
        sub = records[start:end]
        front = front_of(records[:end])
        stage_fronts.append(
            {
                "stage": int(s["stage"]),
                "space_size": int(s["space_size"]),
                "dropped": s.get("dropped", {}),
                "queries": [start, end],
                "points": [[r.latency_ms, r.accuracy] for r in sub],
                "front": [[r.latency_ms, r.accuracy] for r in front],
                "hv": normalised_hypervolume(acc[:end], lat[:end], bounds),
            }
        )
    step = max(1, se.batch_size)
    qs = sorted({*range(step, len(records) + 1, step), len(records)})
    hv = [normalised_hypervolume(acc[:q], lat[:q], bounds) for q in qs]
    write_json_atomic(
        ctx.dir / "records.json",
        [{"seq": i, "arch": r.key, "accuracy": r.accuracy, "latency_ms": r.latency_ms}
         for i, r in enumerate(records)],
    )  # fmt: skip
    best = res.best
    return {
        "estimator": _estimator(se.accuracy, ev),
        "budget_ms": budget,
        "n_queries": res.n_queries,
        "n_replayed": res.n_replayed,
        "n_accuracy_evals": ev.n_accuracy_evals,
        "time_s": res.time_s,
        "best": None
        if best is None
        else {"arch": best.key, "accuracy": best.accuracy, "latency_ms": best.latency_ms},
        "stages": stage_fronts,
        "hv_curve": {"queries": qs, "hv": hv, "bounds": list(bounds)},
        "scaled": scaled,
        "candidates": candidates,
        "final_space": {k: [str(v) for v in vs] for k, vs in res.info.get("space", {}).items()},
        "blocks_reduction": None
        if reduction is None
        else {
            "full_size": reduction.full_size,
            "size": reduction.size,
            "dropped": {k: [str(v) for v in vs] for k, vs in reduction.dropped.items()},
            "rule": reduction.rule,
        },
    }


def _estimator(accuracy: str, ev: Any) -> dict[str, Any]:
    """What steered the search: the configured ``search.accuracy``, the signals it combines and
    the scale of its values (``percent`` for the supernet, else a 0..100 ``score``)."""
    source = getattr(ev, "accuracy_source", None)
    signals = list(getattr(source, "settings", {}).get("signals", []))
    if not signals:
        signals = list(getattr(source, "members", ("supernet",)))
    return {
        "accuracy": accuracy,
        "signals": signals,
        "scale": "percent" if accuracy == "supernet" else "score",
        "reference": int(getattr(source, "reference_size", 0)),
    }


def _blocks_reduction(ctx: StageContext, space: Any, ev: Any) -> Any:
    """The space reduction of the block profile (:func:`~hsconas.profiling.reduce.reduce_space`,
    front-rate rule). The blocks stage ran before any accuracy existed, so the profile is drawn
    again (same seed and specifications: the same networks, their latencies read back from the
    store) with the search's accuracy (the supernet's, or the configured proxy)."""
    from hsconas.evaluation.supernet import CallableAccuracy
    from hsconas.pipeline.stages.blocks import blocks_latency_source
    from hsconas.profiling import enumerate_specs, profile_blocks
    from hsconas.profiling.reduce import reduce_space

    cfg = config_of(ctx)
    bc = cfg.blocks
    accuracy = CallableAccuracy(lambda archs: [ev.accuracy(a) for a in archs], label="search")
    profile = profile_blocks(
        space, enumerate_specs(space), blocks_latency_source(ctx), accuracy=accuracy,
        samples=bc.samples_per_block, baseline_samples=bc.baseline_samples, seed=cfg.seed,
        store=store_of(ctx),
        progress=lambda d, t: ctx.progress(d, t, "block profile with accuracy (networks)"),
    )  # fmt: skip
    profile.save(ctx.dir / "blocks_profile")
    return reduce_space(profile, keep_min=bc.keep_min)
