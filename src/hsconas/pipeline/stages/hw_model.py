"""Stage 1, ``hw_model``: build the block LUT and measure end-to-end samples on the device, fit
and validate the HSCoNAS hardware model, choose the latency budget."""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import numpy as np

from hsconas.pipeline.runner import StageContext, atomic_path, write_json_atomic
from hsconas.pipeline.stages.common import (
    backend_of,
    config_of,
    relative_path,
    space_of,
    store_of,
    timing_config,
)
from hsconas.space import Architecture, SearchSpace


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


def stage_hw_model(ctx: StageContext) -> dict[str, Any]:
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
    from hsconas.latency.metrics import evaluate, quality_warning

    cfg = config_of(ctx)
    pr = cfg.profile
    space = space_of(cfg)
    be = backend_of(cfg)
    store = store_of(ctx)
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
        to_measure, be, space=space.name, store=store, device=dev, timing=timing_config(pr.block_timing),
        progress=lambda n, k: ctx.progress(n, k, "measure LUT blocks"),
    )  # fmt: skip
    t2 = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, 1])
    seen: set[Architecture] = set()
    train_archs = _distinct_sample(space, pr.n_e2e, rng, seen)
    val_archs = _distinct_sample(space, pr.n_validate, rng, seen)
    timing = timing_config(pr.e2e_timing)
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
        "model_path": relative_path(ctx, model_path),
        "fast_features": fast,
        "n_blocks": len(lut),
        "lut_complete": fast,
        "n_fit": n_tr,
        "n_validate": len(val_archs),
        "validation": metrics.as_dict(),
        "validation_lut_sum": lut_metrics.as_dict(),
        "loo_mape_pct": model.info.get("fit", {}).get("loo_mape_pct"),
        "quality_warning": quality_warning(
            metrics.within_10pct, metrics.kendall, metrics.n, spread_pct=metrics.mape_pct
        ),
        "measured_range_ms": [float(min(measured)), float(max(measured))],
        "budget_ms": budget,
        "budget_source": source,
        "fingerprint": fp,
        "device": cfg.device.name,
        "backend": be.name,
        "backend_settings": be.settings(),
        "time_s": {"collect": t1 - t0, "lut": t2 - t1, "e2e": t3 - t2},
    }
