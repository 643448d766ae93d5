"""Stage 5, ``final``: fit the chosen network to the budget on the device
(:mod:`hsconas.search.budget_fit`), export it (ONNX, TorchScript, state dict), optionally train it
from scratch."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hsconas.pipeline.runner import StageContext, atomic_path, write_json_atomic
from hsconas.pipeline.stages.common import (
    backend_of,
    config_of,
    dataset_of,
    evaluator_of,
    hw_model_of,
    relative_path,
    run_name,
    space_of,
    store_of,
    supernet_of,
    timing_config,
)
from hsconas.space import Architecture, get_space


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
    from hsconas.search.budget_fit import fit_to_budget

    cfg = config_of(ctx)
    fc = cfg.final
    space = space_of(cfg)
    full = get_space(space.name)
    budget = float(ctx.inputs["hw_model"]["budget_ms"])
    model = hw_model_of(ctx)
    ev = evaluator_of(ctx)
    be = backend_of(cfg)
    timing = timing_config(cfg.profile.e2e_timing)
    cands = [full.from_string(c["arch"]) for c in ctx.inputs["search"]["candidates"]]
    records_path = ctx.run_dir / "search" / "records.json"

    evaluated_cache: list[tuple[str, float, float]] = []

    def evaluated() -> list[tuple[str, float, float]]:
        """The search's evaluations (arch string, accuracy, predicted ms), read once."""
        if not evaluated_cache:
            recs = json.loads(records_path.read_text("utf-8"))
            evaluated_cache.extend((r["arch"], r["accuracy"], r["latency_ms"]) for r in recs)
        return evaluated_cache

    def measure(arch: Architecture) -> tuple[float, float]:
        m = measure_network(
            arch, be, store=store_of(ctx), device=cfg.device.name, timing=timing, reuse=False,
            batch=cfg.device.batch,
        )  # fmt: skip
        return float(m.median_ms), float(m.spread_ms)

    fit = fit_to_budget(
        space, cands, budget, measure=measure,
        predict_ms=lambda a: float(model.predict(a).latency_ms), latency_fn=ev.latency_ms,
        evaluated=evaluated, max_candidates=fc.max_candidates,
        on_attempt=lambda n: ctx.progress(n, fc.max_candidates, "measure candidates on the device"),
    )  # fmt: skip
    chosen, chosen_ms = fit.chosen, fit.chosen_ms
    attempts = [dataclasses.asdict(a) for a in fit.attempts]
    pred_ms = fit.final.predicted_ms

    # the network with inherited weights, BN-recalibrated; accuracy on the held-out test split
    ds = dataset_of(ctx)
    net = extract_subnet(supernet_of(ctx), chosen)
    test = EvalBatches.from_dataset(
        ds, split="test", calib_images=cfg.supernet.calib_images, seed=cfg.seed
    )
    recalibrate_bn(net, test.calibration)  # on the supernet's device (supernet.device)
    net.eval()
    acc_inherited = 100.0 * accuracy(net, test.evaluation)
    net = net.cpu()  # counted and exported on the CPU
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
            store=store_of(ctx), run_id=f"{run_name(ctx)}-scratch-{ctx.key}", progress=False,
            on_epoch_end=lambda e, m: ctx.progress(e, fc.epochs, "train from scratch (epochs)"),
            device=cfg.supernet.device, amp=cfg.supernet.amp,
        )  # fmt: skip
        scratch = {
            "test_accuracy": 100.0 * evaluate_model(fresh.eval(), ds, split="test"),
            "epochs": tr.epochs,
            "history": tr.history,
            "checkpoint": relative_path(ctx, tr.checkpoint),
        }
        fresh.cpu()
        with atomic_path(ctx.dir / "model_scratch.onnx") as tmp:
            export_onnx(fresh, shape, tmp, opset=fc.onnx_opset)  # type: ignore[arg-type]
        scratch["onnx"] = "final/model_scratch.onnx"

    layers = _layer_rows(space, chosen)
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


def _layer_rows(space: Any, arch: Architecture) -> list[dict[str, Any]]:
    """The chosen network's layers for the report: the channel plan of an ``hsconas`` space;
    for the other spaces (OFA family, nb201) one row per gene with its value."""
    if hasattr(space, "channel_plan"):
        return [dataclasses.asdict(lp) for lp in space.channel_plan(arch)]
    dash = {k: "-" for k in ("in_channels", "mid_channels", "out_channels", "kernel", "stride")}
    return [
        {"name": name, "op": str(value), **dash, "input_size": "-"}
        for name, value in zip(space.gene_names, arch.values, strict=True)
    ]
