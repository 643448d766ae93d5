"""The stages of ``hsconas run``, one function each, and the pipeline that chains them.

1. ``profile``: block LUT and end-to-end samples on the device; fit and validate the HSCoNAS
   hardware model; choose the latency budget.
2. ``blocks``: friendliness of every (layer, op) for the device (block profiling) and insights.
3. ``supernet``: train the weight-sharing supernet on the dataset (checkpointed every epoch).
4. ``search``: the HSCoNAS EA with progressive space shrinking (hardware-model latency, supernet
   accuracy), then dynamic channel scaling of the best candidates to the budget.
5. ``final``: extract the chosen network, measure it on the device against the budget and the
   prediction (stepping down to the next candidate or re-scaled channels if it exceeds the budget),
   export it (ONNX, TorchScript, state dict), optionally train it from scratch.
6. ``report``: the HTML report.

Each stage returns a JSON-ready summary; big outputs go to files in its folder (written
atomically); every measurement, evaluation and training metric also goes to the ResultStore.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsconas.evaluation import SupernetEvaluator
from hsconas.pipeline.config import PipelineConfig, TimingSection, config_to_dict
from hsconas.pipeline.runner import Stage, StageContext, atomic_path, write_json_atomic
from hsconas.space import Architecture, SearchSpace, get_space

__all__ = [
    "SupernetEvaluator",
    "build_stages",
    "stage_blocks",
    "stage_final",
    "stage_profile",
    "stage_report",
    "stage_search",
    "stage_supernet",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- helpers
def _cfg(ctx: StageContext) -> PipelineConfig:
    cfg = ctx.shared["config"]
    assert isinstance(cfg, PipelineConfig)
    return cfg


def _cache(ctx: StageContext) -> dict[str, Any]:
    cache = ctx.shared.get("cache")
    if not isinstance(cache, dict):
        raise RuntimeError("the pipeline needs a shared 'cache' dict")
    return cache


def _space(cfg: PipelineConfig) -> SearchSpace:
    import hsconas.spaces  # noqa: F401

    sp = get_space(cfg.space.name)
    return sp.restrict(cfg.space.restrict) if cfg.space.restrict else sp


def _timing(t: TimingSection) -> Any:
    from hsconas.hardware.timing import TimingConfig

    return TimingConfig(**dataclasses.asdict(t))


def _backend(cfg: PipelineConfig) -> Any:
    from hsconas.hardware.backends import get_backend
    from hsconas.hardware.reference import space_reference

    ref = space_reference(cfg.space.name) if cfg.device.reference else None
    return get_backend(cfg.device.backend, threads=cfg.device.threads, reference=ref)


def _store(ctx: StageContext) -> Any:
    return ctx.shared["store"]


def _run_name(ctx: StageContext) -> str:
    return Path(ctx.run_dir).resolve().name


def _hw_model(ctx: StageContext) -> Any:
    """The stage-1 hardware model (fast decomposition when it agrees with the generic one)."""
    cache = _cache(ctx)
    path = str(ctx.inputs["profile"]["model_path"])
    if cache.get("hw_model_path") != path:
        from hsconas.latency.hsconas.fast import FastHSCoNASModel
        from hsconas.latency.hsconas.model import HSCoNASModel

        fast = bool(ctx.inputs["profile"].get("fast_features", False))
        cls = FastHSCoNASModel if fast else HSCoNASModel
        cache["hw_model"] = cls.load(ctx.run_dir / path)
        cache["hw_model_path"] = path
    return cache["hw_model"]


def _dataset(ctx: StageContext) -> Any:
    """The dataset, with a held-out test split made from half of the validation pool when the
    source has none (``digits``): search accuracy uses ``val``, the final network ``test``."""
    cache = _cache(ctx)
    if "dataset" not in cache:
        from hsconas.data import load_dataset

        cfg = _cfg(ctx)
        ds = load_dataset(
            cfg.dataset.spec(),
            subset=cfg.dataset.subset,
            val_fraction=cfg.dataset.val_fraction,
            seed=cfg.seed,
            progress=False,
        )
        if ds.test_images is None:
            n = len(ds.val_labels)
            half = n // 2
            ds = dataclasses.replace(
                ds,
                val_images=ds.val_images[:half],
                val_labels=ds.val_labels[:half],
                test_images=ds.val_images[half:],
                test_labels=ds.val_labels[half:],
            )
        cache["dataset"] = ds
    return cache["dataset"]


def _supernet(ctx: StageContext) -> Any:
    cache = _cache(ctx)
    path = str(ctx.inputs["supernet"]["checkpoint"])
    if cache.get("supernet_path") != path:
        from hsconas.accuracy import load_trained

        model, _ = load_trained(ctx.run_dir / path)
        cache["supernet"] = model
        cache["supernet_path"] = path
    return cache["supernet"]


def _rel(ctx: StageContext, path: Path) -> str:
    return str(Path(path).resolve().relative_to(Path(ctx.run_dir).resolve()))


def _distinct_sample(
    space: SearchSpace, n: int, rng: np.random.Generator, exclude: set[Architecture]
) -> list[Architecture]:
    out: list[Architecture] = []
    tries = 0
    while len(out) < n and tries < 100 * n:
        a = space.sample(rng)
        tries += 1
        if a not in exclude:
            exclude.add(a)
            out.append(a)
    return out


# ---------------------------------------------------------------------------------- 1 profile
def stage_profile(ctx: StageContext) -> dict[str, Any]:
    """Build the LUT, measure end-to-end samples, fit and validate the hardware model."""
    from hsconas.hardware.fingerprint import fingerprint
    from hsconas.hardware.measure import measure_network
    from hsconas.latency.hsconas.fast import (
        FastHSCoNASModel,
        all_layer_blocks,
        fast_collect_blocks,
        fast_features_agree,
        supports_fast_path,
    )
    from hsconas.latency.hsconas.lut import collect_blocks, measure_blocks
    from hsconas.latency.hsconas.model import HSCoNASModel
    from hsconas.latency.metrics import evaluate

    cfg = _cfg(ctx)
    pr = cfg.profile
    space = _space(cfg)
    be = _backend(cfg)
    store = _store(ctx)
    dev = cfg.device.name
    fast = supports_fast_path(space) and fast_features_agree(space, n=2, seed=cfg.seed)
    t0 = time.perf_counter()

    def on_collect(n: int, k: int) -> None:
        ctx.progress(n, n + max(pr.lut_patience, 1), f"collect blocks ({k})")

    if fast:
        # sampled networks give the stem/head blocks, enumeration every layer block
        blocks = fast_collect_blocks(
            space, seed=cfg.seed, max_samples=pr.lut_max_samples, patience=pr.lut_patience,
            progress=on_collect,
        )  # fmt: skip
        for k, call in all_layer_blocks(space).items():  # type: ignore[arg-type]
            blocks.setdefault(k, call)
    else:
        blocks = collect_blocks(
            space, seed=cfg.seed, max_samples=pr.lut_max_samples, patience=pr.lut_patience,
            progress=on_collect,
        )  # fmt: skip
    t1 = time.perf_counter()
    # measure copies: materialising a block for timing moves it off the meta device in place
    to_measure = {
        k: dataclasses.replace(c, module=copy.deepcopy(c.module)) for k, c in blocks.items()
    }
    lut = measure_blocks(
        to_measure, be, space=space.name, store=store, device=dev, timing=_timing(pr.block_timing),
        progress=lambda n, k: ctx.progress(n, k, "measure LUT blocks"),
    )  # fmt: skip
    t2 = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, 1])
    seen: set[Architecture] = set()
    train_archs = _distinct_sample(space, pr.n_e2e, rng, seen)
    val_archs = _distinct_sample(space, pr.n_validate, rng, seen)
    timing = _timing(pr.e2e_timing)
    measured: list[float] = []
    all_archs = train_archs + val_archs
    for i, a in enumerate(all_archs):
        m = measure_network(a, be, store=store, device=dev, timing=timing, batch=cfg.device.batch)
        measured.append(float(m.median_ms))
        ctx.progress(i + 1, len(all_archs), "measure networks end to end")
    t3 = time.perf_counter()
    fp = fingerprint(be.name, be.settings())
    cls = FastHSCoNASModel if fast else HSCoNASModel
    n_tr = len(train_archs)
    model = cls.fit(
        lut, train_archs, measured[:n_tr],
        info={"fingerprint": fp, "timing": timing.as_dict(), "seed": cfg.seed},
    )  # fmt: skip
    pred = model.predict_ms(val_archs)
    lut_sum = np.array([model.lut_sum(a) for a in val_archs])
    val_ms = np.asarray(measured[n_tr:])
    metrics = evaluate(pred, val_ms)
    lut_metrics = evaluate(lut_sum, val_ms)
    model_path = ctx.dir / "hw_model.json"
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    samples = [
        {
            "arch": space.to_string(a),
            "split": "fit" if i < n_tr else "validate",
            "measured_ms": measured[i],
            "predicted_ms": float(model.predict(a).latency_ms),
            "lut_sum_ms": float(model.lut_sum(a)),
        }
        for i, a in enumerate(all_archs)
    ]
    write_json_atomic(ctx.dir / "samples.json", samples)
    if cfg.search.budget_ms is not None:
        budget, source = float(cfg.search.budget_ms), "search.budget_ms"
    else:
        budget = float(np.percentile(measured, cfg.search.budget_percentile))
        source = f"{cfg.search.budget_percentile:g}th percentile of {len(measured)} e2e samples"
    return {
        "model_path": _rel(ctx, model_path),
        "fast_features": fast,
        "n_blocks": len(lut),
        "lut_complete": fast,
        "n_fit": n_tr,
        "n_validate": len(val_archs),
        "validation": metrics.as_dict(),
        "validation_lut_sum": lut_metrics.as_dict(),
        "loo_mape_pct": model.info.get("fit", {}).get("loo_mape_pct"),
        "measured_range_ms": [float(min(measured)), float(max(measured))],
        "budget_ms": budget,
        "budget_source": source,
        "fingerprint": fp,
        "device": cfg.device.name,
        "backend": be.name,
        "backend_settings": be.settings(),
        "time_s": {"collect": t1 - t0, "lut": t2 - t1, "e2e": t3 - t2},
    }


# ---------------------------------------------------------------------------------- 2 blocks
def _placement_insights(effects: Any) -> list[str]:
    """Two more sentences from the effects table: which layers' op choice matters most, and
    whether kernel size or expansion ratio is the bigger latency lever."""
    out: list[str] = []
    effects = effects[effects["gene"].astype(str).str.endswith(".op")]
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


def stage_blocks(ctx: StageContext) -> dict[str, Any]:
    """Profile blocks (Mills et al.: every op forced at every layer against a random baseline)
    with :mod:`hsconas.profiling` and write the device's insights."""
    import hashlib

    from hsconas.evaluation import BackendLatency, ModelLatency
    from hsconas.profiling import enumerate_specs, profile_blocks
    from hsconas.profiling.insights import device_insights, format_insights

    cfg = _cfg(ctx)
    bc = cfg.blocks
    space = _space(cfg)
    specs = enumerate_specs(space)  # every (layer gene, choice): ops, channel and width factors
    source: Any
    store = _store(ctx)  # the profile's draws are recorded as a run of the store
    if bc.source == "model":
        model_file = ctx.run_dir / str(ctx.inputs["profile"]["model_path"])
        digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
        settings = {"model": "hw_model.json", "sha256": digest}
        source = ModelLatency(_hw_model(ctx), device=cfg.device.name, settings=settings)
    else:
        source = BackendLatency(
            backend=cfg.device.backend, device=cfg.device.name, batch=cfg.device.batch,
            threads=cfg.device.threads,
        )  # fmt: skip
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
        "source": bc.source,
        "n_specs": len(specs),
        "n_networks": profile.n_distinct,
        "baseline_mean_ms": float(profile.stats.loc[0, "lat_mean"]),
        "r2_latency": float(profile.regression["latency_ms"].r2),
    }


# ---------------------------------------------------------------------------------- 3 supernet
def stage_supernet(ctx: StageContext) -> dict[str, Any]:
    """Train the supernet; checkpointed every epoch, resumed after an interruption."""
    from hsconas.accuracy import TrainConfig, train
    from hsconas.accuracy.train import seeded
    from hsconas.nn.supernet import build_supernet

    cfg = _cfg(ctx)
    sc = cfg.supernet
    ds = _dataset(ctx)
    with seeded(cfg.seed):
        model = build_supernet(
            cfg.space.name, restriction=cfg.space.restrict or None, num_classes=ds.num_classes
        )
    tc = TrainConfig(
        epochs=sc.epochs, batch_size=sc.batch_size, optimizer=sc.optimizer, lr=sc.lr,
        weight_decay=sc.weight_decay, sampling=sc.sampling, num_random=sc.num_random,
        seed=cfg.seed, calib_images=sc.calib_images,
    )  # fmt: skip
    out = ctx.dir / f"train-{ctx.key}"
    ctx.progress(0, sc.epochs, "train supernet (epochs)")
    res = train(
        model, ds, tc, out, resume=True, store=_store(ctx),
        run_id=f"{_run_name(ctx)}-supernet-{ctx.key}", extra={"dataset": cfg.dataset.spec()},
        progress=False, on_epoch_end=lambda e, m: ctx.progress(e, sc.epochs, "train supernet (epochs)"),
    )  # fmt: skip
    cache = _cache(ctx)
    cache["supernet"] = model.eval()
    cache["supernet_path"] = _rel(ctx, res.checkpoint)
    return {
        "checkpoint": _rel(ctx, res.checkpoint),
        "epochs": res.epochs,
        "resumed_from": res.resumed_from,
        "history": res.history,
        "dataset": ds.name,
        "n_train": len(ds.train_labels),
        "n_val": len(ds.val_labels),
        "n_test": 0 if ds.test_labels is None else len(ds.test_labels),
    }


# ---------------------------------------------------------------------------------- 4 search
def _evaluator(ctx: StageContext) -> SupernetEvaluator:
    from hsconas.accuracy.evaluate import EvalBatches

    cfg = _cfg(ctx)
    cache = _cache(ctx)
    ident = (ctx.inputs["supernet"]["checkpoint"], ctx.inputs["profile"]["model_path"])
    if cache.get("evaluator_id") != ident:
        ds = _dataset(ctx)
        batches = EvalBatches.from_dataset(
            ds, split="val", calib_images=cfg.supernet.calib_images, seed=cfg.seed
        )
        settings = {
            "kind": "supernet+hw-model",
            "supernet": ctx.inputs["supernet"]["checkpoint"],
            "hw_model": ctx.inputs["profile"]["model_path"],
            "calib_images": cfg.supernet.calib_images,
        }
        cache["evaluator"] = SupernetEvaluator(_supernet(ctx), _hw_model(ctx), batches, settings)
        cache["evaluator_id"] = ident
    ev = cache["evaluator"]
    assert isinstance(ev, SupernetEvaluator)
    return ev


def _norm_hv(acc: np.ndarray, lat: np.ndarray, bounds: tuple[float, float, float, float]) -> float:
    """Hypervolume of (accuracy, latency) points normalised to the unit box (ref 1.01, 1.01)."""
    from hsconas.search.indicators import hypervolume_2d, objectives

    a_lo, a_hi, l_lo, l_hi = bounds
    if acc.size == 0:
        return 0.0
    F = objectives(acc, lat)  # (-accuracy, latency), minimised
    lo = np.array([-a_hi, l_lo])
    hi = np.array([-a_lo, l_hi])
    Fn = (F - lo) / np.maximum(hi - lo, 1e-12)
    return float(hypervolume_2d(Fn, np.array([1.01, 1.01])))


def accuracy_predictor(
    space: SearchSpace, archs: Sequence[Architecture], accuracy: Sequence[float] | np.ndarray
) -> Any:
    """A ridge regression of accuracy on the space's feature vectors, fitted on evaluated
    architectures: the cheap accuracy estimate channel scaling compares many neighbours with."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = space.feature_matrix(list(archs))
    reg = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
    reg.fit(x, np.asarray(accuracy, dtype=float))

    def predict(arch: Architecture) -> float:
        return float(reg.predict(space.features(arch)[None, :])[0])

    return predict


def stage_search(ctx: StageContext) -> dict[str, Any]:
    """HSCoNAS EA with progressive shrinking, then channel scaling of the best candidates."""
    from hsconas.search import HSCoNASEvolution, Problem, run_search
    from hsconas.search.channel_scaling import scale_channels
    from hsconas.search.core.problem import BudgetInfeasibleError
    from hsconas.search.runner import front_of, stage_ranges

    cfg = _cfg(ctx)
    se = cfg.search
    space = _space(cfg)
    budget = float(ctx.inputs["profile"]["budget_ms"])
    ev = _evaluator(ctx)
    problem = Problem(space, mode=se.mode, budget_ms=budget)
    algo = HSCoNASEvolution(
        problem, seed=cfg.seed, population_size=se.population_size,
        initial_queries=se.initial_queries, batch_size=se.batch_size, shrinking=se.shrinking,
        shrink_at=se.shrink_at, shrink_z=se.shrink_z, offspring_per_generation=500,
    )  # fmt: skip
    ctx.progress(0, se.n_queries, "search (distinct architectures)")
    res = run_search(
        problem, algo, ev, se.n_queries, store=_store(ctx),
        run_id=f"{_run_name(ctx)}-search-{ctx.key}", resume=True,
        on_batch=lambda n: ctx.progress(n, se.n_queries, "search (distinct architectures)"),
    )  # fmt: skip
    records = list(res.records)
    acc = np.array([r.accuracy for r in records])
    lat = np.array([r.latency_ms for r in records])

    # dynamic channel scaling of the best distinct operator configurations
    scaled: list[dict[str, Any]] = []
    if se.channel_scaling:
        acc_pred = accuracy_predictor(space, [r.arch for r in records], acc)
        # the most accurate distinct operator configurations, over budget or not: channel
        # scaling brings each to the budget from below (down if over, up while it pays)
        op_idx = [i for i, g in enumerate(space.gene_names) if g.endswith(".op")]
        picked = []
        seen_ops: set[tuple[Any, ...]] = set()
        for r in sorted(records, key=lambda r: (-r.accuracy, r.latency_ms, r.key)):
            ops = tuple(r.arch.values[i] for i in op_idx)
            if ops not in seen_ops:
                seen_ops.add(ops)
                picked.append(r)
            if len(picked) >= se.n_scaled:
                break
        for i, r in enumerate(picked):
            try:
                new, steps = scale_channels(
                    space, r.arch, budget_ms=budget, latency_fn=ev.latency_ms,
                    accuracy_fn=acc_pred,
                )  # fmt: skip
            except BudgetInfeasibleError as exc:
                scaled.append({"from": r.key, "error": str(exc)})
                continue
            scaled.append(
                {
                    "from": r.key,
                    "from_accuracy": r.accuracy,
                    "from_latency_ms": r.latency_ms,
                    "arch": space.to_string(new),
                    "accuracy": ev.accuracy(new),
                    "latency_ms": ev.latency_ms(new),
                    "n_steps": len(steps),
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
                "hv": _norm_hv(acc[:end], lat[:end], bounds),
            }
        )
    step = max(1, se.batch_size)
    qs = sorted({*range(step, len(records) + 1, step), len(records)})
    hv = [_norm_hv(acc[:q], lat[:q], bounds) for q in qs]
    write_json_atomic(
        ctx.dir / "records.json",
        [{"seq": i, "arch": r.key, "accuracy": r.accuracy, "latency_ms": r.latency_ms}
         for i, r in enumerate(records)],
    )  # fmt: skip
    best = res.best
    return {
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
    }


# ---------------------------------------------------------------------------------- 5 final
def stage_final(ctx: StageContext) -> dict[str, Any]:
    """Measure the best candidates on the device until one meets the budget; export it."""
    from hsconas.accuracy import TrainConfig, accuracy, extract_subnet, recalibrate_bn, train
    from hsconas.accuracy.evaluate import EvalBatches, evaluate_model
    from hsconas.accuracy.train import seeded
    from hsconas.hardware.measure import measure_network
    from hsconas.nn import build_model, model_cost
    from hsconas.nn.export import (
        check_onnx_outputs,
        export_onnx,
        export_torchscript,
        save_state_dict,
    )
    from hsconas.search.channel_scaling import scale_channels
    from hsconas.search.core.problem import BudgetInfeasibleError

    cfg = _cfg(ctx)
    fc = cfg.final
    space = _space(cfg)
    full = get_space(space.name)
    budget = float(ctx.inputs["profile"]["budget_ms"])
    model = _hw_model(ctx)
    ev = _evaluator(ctx)
    be = _backend(cfg)
    timing = _timing(cfg.profile.e2e_timing)
    cands = [full.from_string(c["arch"]) for c in ctx.inputs["search"]["candidates"]]
    attempts: list[dict[str, Any]] = []
    chosen: Architecture | None = None
    chosen_ms = float("nan")

    def try_arch(arch: Architecture, why: str) -> bool:
        nonlocal chosen, chosen_ms
        m = measure_network(
            arch, be, store=_store(ctx), device=cfg.device.name, timing=timing, reuse=False,
            batch=cfg.device.batch,
        )  # fmt: skip
        pred = float(model.predict(arch).latency_ms)
        ok = m.median_ms <= budget
        attempts.append(
            {
                "arch": space.to_string(arch),
                "why": why,
                "measured_ms": float(m.median_ms),
                "spread_ms": float(m.spread_ms),
                "predicted_ms": pred,
                "within_budget": bool(ok),
            }
        )
        ctx.progress(len(attempts), fc.max_candidates, "measure candidates on the device")
        if ok:
            chosen, chosen_ms = arch, float(m.median_ms)
        return ok

    predictor: list[Any] = []

    def acc_pred() -> Any:
        if not predictor:
            recs = json.loads((ctx.run_dir / "search" / "records.json").read_text("utf-8"))
            archs = [full.from_string(r["arch"]) for r in recs]
            predictor.append(accuracy_predictor(space, archs, [r["accuracy"] for r in recs]))
        return predictor[0]

    for i, arch in enumerate(cands[: fc.max_candidates]):
        if try_arch(arch, "search candidate" if i == 0 else "next candidate"):
            break
        # step down: re-scale channels to a budget corrected by the measured/predicted ratio
        last = attempts[-1]
        tighter = budget * last["predicted_ms"] / max(last["measured_ms"], 1e-9) * 0.98
        try:
            new, _ = scale_channels(
                space, arch, budget_ms=tighter, latency_fn=ev.latency_ms, accuracy_fn=acc_pred()
            )
        except BudgetInfeasibleError:
            continue
        if new != arch and try_arch(new, f"channels re-scaled to {tighter:.4f} ms"):
            break
    if chosen is None and attempts:
        # the device runs slower than the model predicts (drift since profiling, load): take the
        # most accurate evaluated networks whose prediction times the measured/predicted ratio
        # fits the budget
        ratio = float(np.median([a["measured_ms"] / a["predicted_ms"] for a in attempts]))
        recs = json.loads((ctx.run_dir / "search" / "records.json").read_text("utf-8"))
        tried = {a["arch"] for a in attempts}
        fits = [
            r for r in recs if r["latency_ms"] * ratio <= 0.97 * budget and r["arch"] not in tried
        ]
        fits.sort(key=lambda r: (-r["accuracy"], r["latency_ms"]))
        for r in fits[:3]:
            if try_arch(
                full.from_string(r["arch"]), f"re-selected: measured/predicted {ratio:.2f}"
            ):
                break
    if chosen is None and attempts:  # step further down from the fastest measured attempt
        base = full.from_string(min(attempts, key=lambda a: a["measured_ms"])["arch"])
        for shrink in (0.9, 0.8, 0.7, 0.6, 0.5):
            try:
                new, _ = scale_channels(
                    space, base, budget_ms=budget * shrink, latency_fn=ev.latency_ms,
                    accuracy_fn=acc_pred(),
                )  # fmt: skip
            except BudgetInfeasibleError:
                break
            if try_arch(new, f"channels re-scaled to {shrink:.0%} of the budget"):
                break
    if chosen is None:  # last resort: the fastest measured attempt (reported as over budget)
        best = min(attempts, key=lambda a: a["measured_ms"])
        chosen, chosen_ms = full.from_string(best["arch"]), best["measured_ms"]
    assert chosen is not None
    final = next(a for a in attempts if a["arch"] == space.to_string(chosen))
    pred_ms = final["predicted_ms"]

    # the network with inherited weights, BN-recalibrated; accuracy on the held-out test split
    ds = _dataset(ctx)
    net = extract_subnet(_supernet(ctx), chosen)
    test = EvalBatches.from_dataset(
        ds, split="test", calib_images=cfg.supernet.calib_images, seed=cfg.seed
    )
    recalibrate_bn(net, test.calibration)
    net.eval()
    acc_inherited = 100.0 * accuracy(net, test.evaluation)
    acc_val = ev.accuracy(chosen)
    shape = tuple(int(s) for s in ds.input_shape)
    cost = model_cost(net, shape)  # type: ignore[arg-type]
    ctx.progress(0, 1, "export")
    onnx_path = ctx.dir / "model.onnx"
    with atomic_path(onnx_path) as tmp:
        export_onnx(net, shape, tmp, opset=fc.onnx_opset)  # type: ignore[arg-type]
    check = check_onnx_outputs(net, onnx_path, shape)  # type: ignore[arg-type]
    with atomic_path(ctx.dir / "model.ts.pt") as tmp:
        export_torchscript(net, shape, tmp)  # type: ignore[arg-type]
    with atomic_path(ctx.dir / "state_dict.pt") as tmp:
        save_state_dict(net, tmp)
    arch_doc = {
        "space": chosen.space,
        "arch": space.to_string(chosen),
        "num_classes": ds.num_classes,
        "input_shape": list(shape),
    }
    write_json_atomic(ctx.dir / "arch.json", arch_doc)

    scratch: dict[str, Any] | None = None
    if fc.train_from_scratch:
        with seeded(cfg.seed):
            fresh = build_model(chosen, num_classes=ds.num_classes)
        tc = TrainConfig(
            epochs=fc.epochs, batch_size=fc.batch_size, lr=fc.lr, seed=cfg.seed,
        )  # fmt: skip
        ctx.progress(0, fc.epochs, "train chosen network from scratch (epochs)")
        tr = train(
            fresh, ds, tc, ctx.dir / f"scratch-{ctx.key}", arch=chosen, resume=True,
            store=_store(ctx), run_id=f"{_run_name(ctx)}-scratch-{ctx.key}", progress=False,
            on_epoch_end=lambda e, m: ctx.progress(e, fc.epochs, "train from scratch (epochs)"),
        )  # fmt: skip
        fresh.eval()
        scratch = {
            "test_accuracy": 100.0 * evaluate_model(fresh, ds, split="test"),
            "epochs": tr.epochs,
            "history": tr.history,
            "checkpoint": _rel(ctx, tr.checkpoint),
        }
        with atomic_path(ctx.dir / "model_scratch.onnx") as tmp:
            export_onnx(fresh, shape, tmp, opset=fc.onnx_opset)  # type: ignore[arg-type]
        scratch["onnx"] = "final/model_scratch.onnx"

    layers = [dataclasses.asdict(lp) for lp in space.channel_plan(chosen)]  # type: ignore[attr-defined]
    return {
        "arch": space.to_string(chosen),
        "budget_ms": budget,
        "measured_ms": chosen_ms,
        "predicted_ms": pred_ms,
        "prediction_error_pct": 100.0 * (pred_ms - chosen_ms) / chosen_ms,
        "within_budget": bool(chosen_ms <= budget),
        "budget_margin_pct": 100.0 * (budget - chosen_ms) / budget,
        "attempts": attempts,
        "accuracy_val_inherited": acc_val,
        "accuracy_test_inherited": acc_inherited,
        "scratch": scratch,
        "params": int(cost.params),
        "macs": int(cost.macs),
        "layers": layers,
        "onnx_max_rel_diff": check.relative_diff,
        "exports": {
            "onnx": "final/model.onnx",
            "torchscript": "final/model.ts.pt",
            "state_dict": "final/state_dict.pt",
            "arch": "final/arch.json",
        },
    }


# ---------------------------------------------------------------------------------- 6 report
def stage_report(ctx: StageContext) -> dict[str, Any]:
    """Write ``report.html`` (plots embedded) from every earlier stage's results."""
    from hsconas.report.pipeline_report import write_report

    cfg = _cfg(ctx)
    path = write_report(
        ctx.run_dir,
        results=ctx.inputs,
        config=config_to_dict(cfg),
        out=ctx.dir / "report.html",
        progress=lambda d, t: ctx.progress(d, t, "report"),
    )
    return {"report": _rel(ctx, path)}


# ---------------------------------------------------------------------------------- pipeline
def build_stages(cfg: PipelineConfig) -> list[Stage]:
    """The six stages with the config slice each depends on."""
    d = config_to_dict(cfg)
    device = {k: d["device"][k] for k in ("name", "backend", "threads", "batch")}
    base = {"seed": d["seed"], "device": device, "space": d["space"]}
    return [
        Stage(
            "profile",
            stage_profile,
            {
                **base,
                "profile": d["profile"],
                "budget": [d["search"]["budget_ms"], d["search"]["budget_percentile"]],
            },
            "profile the device and fit the hardware model",
        ),
        Stage("blocks", stage_blocks, {**base, "blocks": d["blocks"]}, "profile blocks"),
        Stage(
            "supernet",
            stage_supernet,
            {
                "seed": d["seed"],
                "space": d["space"],
                "dataset": d["dataset"],
                "supernet": d["supernet"],
            },
            "train the supernet",
        ),
        Stage(
            "search",
            stage_search,
            {**base, "search": d["search"], "calib": d["supernet"]["calib_images"]},
            "search under the latency budget",
        ),
        Stage(
            "final",
            stage_final,
            {**base, "final": d["final"], "timing": d["profile"]["e2e_timing"]},
            "measure, export and train the chosen network",
        ),
        Stage("report", stage_report, d, "write the HTML report"),
    ]


def describe(cfg: PipelineConfig) -> str:
    """The exact configuration as JSON (what the report shows)."""
    return json.dumps(config_to_dict(cfg), indent=1)
