"""What the stages share: the config, the run's cache and store, and the objects built once
per run (the space, the backend, the hardware model, the dataset, the supernet, the evaluator)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from hsconas.evaluation import CombinedEvaluator, ModelLatency, SupernetEvaluator
from hsconas.pipeline.config import PipelineConfig, TimingSection
from hsconas.pipeline.runner import StageContext
from hsconas.space import SearchSpace, get_space

log = logging.getLogger(__name__)


def config_of(ctx: StageContext) -> PipelineConfig:
    cfg = ctx.shared["config"]
    assert isinstance(cfg, PipelineConfig)
    return cfg


def cache_of(ctx: StageContext) -> dict[str, Any]:
    cache = ctx.shared.get("cache")
    if not isinstance(cache, dict):
        raise RuntimeError("the pipeline needs a shared 'cache' dict")
    return cache


def space_of(cfg: PipelineConfig) -> SearchSpace:
    import hsconas.spaces  # noqa: F401

    sp = get_space(cfg.space.name)
    return sp.restrict(cfg.space.restrict) if cfg.space.restrict else sp


def timing_config(t: TimingSection) -> Any:
    from hsconas.hardware.timing import TimingConfig

    return TimingConfig(**dataclasses.asdict(t))


def backend_of(cfg: PipelineConfig) -> Any:
    from hsconas.hardware.backends import get_backend
    from hsconas.hardware.reference import space_reference

    ref = space_reference(cfg.space.name) if cfg.device.reference else None
    return get_backend(cfg.device.backend, threads=cfg.device.threads, reference=ref)


def store_of(ctx: StageContext) -> Any:
    return ctx.shared["store"]


def run_name(ctx: StageContext) -> str:
    return Path(ctx.run_dir).resolve().name


def hw_model_of(ctx: StageContext) -> Any:
    """The stage-1 hardware model (fast decomposition when it agrees with the generic one)."""
    cache = cache_of(ctx)
    path = str(ctx.inputs["hw_model"]["model_path"])
    if cache.get("hw_model_path") != path:
        from hsconas.latency.base import load_latency_model

        fast = bool(ctx.inputs["hw_model"].get("fast_features", False))
        cache["hw_model"] = load_latency_model(ctx.run_dir / path, fast=fast)
        cache["hw_model_path"] = path
    return cache["hw_model"]


def dataset_of(ctx: StageContext) -> Any:
    """The dataset, with a held-out test split made from half of the validation pool when the
    source has none (``digits``): search accuracy uses ``val``, the final network ``test``."""
    cache = cache_of(ctx)
    if "dataset" not in cache:
        from hsconas.data import load_dataset

        cfg = config_of(ctx)
        ds = load_dataset(
            cfg.dataset.spec(),
            subset=cfg.dataset.subset,
            val_fraction=cfg.dataset.val_fraction,
            seed=cfg.seed,
            progress=False,
            image_size=cfg.dataset.image_size,
            workers=cfg.dataset.workers,
        )
        cache["dataset"] = ds.with_test_from_val()
    return cache["dataset"]


def supernet_of(ctx: StageContext) -> Any:
    cache = cache_of(ctx)
    path = str(ctx.inputs["supernet"]["checkpoint"])
    if cache.get("supernet_path") != path:
        from hsconas.accuracy import load_trained

        model, _ = load_trained(ctx.run_dir / path)
        cache["supernet"] = model
        cache["supernet_path"] = path
    return cache["supernet"]


def relative_path(ctx: StageContext, path: Path) -> str:
    return str(Path(path).resolve().relative_to(Path(ctx.run_dir).resolve()))


def search_evaluator_of(ctx: StageContext) -> SupernetEvaluator | CombinedEvaluator:
    """The search's evaluator: :func:`evaluator_of` when ``search.accuracy`` is ``supernet``;
    else hardware-model latency with a label-free estimate: the zero-cost proxies and the
    supernet (``ensemble``) or the proxies only (``proxy:METHOD``)."""
    cfg = config_of(ctx)
    if cfg.search.accuracy == "supernet":
        return evaluator_of(ctx)
    cache = cache_of(ctx)
    ident = (
        cfg.search.accuracy,
        ctx.inputs["hw_model"]["model_path"],
        ctx.inputs.get("supernet", {}).get("checkpoint"),
    )
    if cache.get("proxy_evaluator_id") != ident:
        from hsconas.accuracy.devices import resolve_device
        from hsconas.evaluation.proxy import (
            EnsembleAccuracy,
            ProxyAccuracy,
            StoredAccuracy,
            proxy_accuracy_source,
        )

        # proxies run beside the supernet on a CUDA GPU (seconds per network on a CPU at OFA
        # resolutions), else on the CPU (values agree up to rounding; the store keeps one)
        device = resolve_device(cfg.supernet.device)
        proxy_device = str(device) if device.type == "cuda" else "cpu"
        source: ProxyAccuracy
        if cfg.search.accuracy == "ensemble":
            from hsconas.latency.model_file import file_digest

            checkpoint = str(ctx.inputs["supernet"]["checkpoint"])
            identity = {
                "kind": "supernet", "checkpoint_sha256": file_digest(ctx.run_dir / checkpoint),
                "dataset": cfg.dataset.spec(), "subset": cfg.dataset.subset,
                "image_size": cfg.dataset.image_size, "val_fraction": cfg.dataset.val_fraction,
                "calib_images": cfg.supernet.calib_images, "seed": cfg.seed,
            }  # fmt: skip
            supernet = StoredAccuracy(
                evaluator_of(ctx).accuracy_source, store_of(ctx), space_of(cfg), identity
            )
            source = EnsembleAccuracy(
                space_of(cfg), cfg.dataset.spec(), {"supernet": supernet}, seed=cfg.seed,
                store=store_of(ctx), device=proxy_device,
            )  # fmt: skip
        else:
            source = proxy_accuracy_source(
                cfg.search.accuracy, space=space_of(cfg), data=cfg.dataset.spec(), seed=cfg.seed,
                store=store_of(ctx), device=proxy_device,
            )  # fmt: skip
        cache["proxy_evaluator"] = CombinedEvaluator(source, ModelLatency(hw_model_of(ctx)))
        cache["proxy_evaluator_id"] = ident
    ev = cache["proxy_evaluator"]
    assert isinstance(ev, CombinedEvaluator)
    return ev


def evaluator_of(ctx: StageContext) -> SupernetEvaluator:
    """Hardware-model latency with the supernet's BN-recalibrated validation accuracy."""
    from hsconas.accuracy.evaluate import EvalBatches

    cfg = config_of(ctx)
    cache = cache_of(ctx)
    ident = (ctx.inputs["supernet"]["checkpoint"], ctx.inputs["hw_model"]["model_path"])
    if cache.get("evaluator_id") != ident:
        ds = dataset_of(ctx)
        batches = EvalBatches.from_dataset(
            ds, split="val", calib_images=cfg.supernet.calib_images, seed=cfg.seed
        )
        settings = {
            "kind": "supernet+hw-model",
            "supernet": ctx.inputs["supernet"]["checkpoint"],
            "hw_model": ctx.inputs["hw_model"]["model_path"],
            "calib_images": cfg.supernet.calib_images,
        }
        from hsconas.accuracy.devices import resolve_device

        # members are BN-recalibrated and evaluated where the supernet trained (supernet.device)
        supernet = supernet_of(ctx).to(resolve_device(cfg.supernet.device))
        cache["evaluator"] = SupernetEvaluator(supernet, hw_model_of(ctx), batches, settings)
        cache["evaluator_id"] = ident
    ev = cache["evaluator"]
    assert isinstance(ev, SupernetEvaluator)
    return ev
