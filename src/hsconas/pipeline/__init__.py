"""The main job: ``hsconas run`` chains profiling, block profiling, supernet training, search,
measurement/export of the chosen network and the HTML report, resumable stage by stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hsconas.pipeline.config import (
    ConfigError,
    PipelineConfig,
    config_from_dict,
    config_to_dict,
    default_config,
    load_config,
)
from hsconas.pipeline.runner import Reporter, Stage, StageContext, StageOutcome, run_stages

__all__ = [
    "ConfigError",
    "PipelineConfig",
    "Reporter",
    "Stage",
    "StageContext",
    "StageOutcome",
    "config_from_dict",
    "config_to_dict",
    "default_config",
    "load_config",
    "run_pipeline",
    "run_stages",
]


def run_pipeline(
    cfg: PipelineConfig, *, reporter: Reporter | None = None, force: Sequence[str] = ()
) -> list[StageOutcome]:
    """Run (or resume) the pipeline of ``cfg`` in ``cfg.run_dir``; returns the stage outcomes."""
    import yaml

    from hsconas.pipeline.runner import atomic_path
    from hsconas.pipeline.stages import build_stages
    from hsconas.store import ResultStore

    run = cfg.run_path
    if (run / "profile" / "stage.done.json").is_file() and not (run / "hw_model").exists():
        raise ConfigError(
            f"{run} was made by an earlier hsconas whose first stage was called 'profile' (now "
            "'hw_model'); rerun in a new run_dir, or delete that folder to start it afresh"
        )
    run.mkdir(parents=True, exist_ok=True)
    with atomic_path(run / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    store = ResultStore(cfg.store_path)
    shared: dict[str, Any] = {"config": cfg, "store": store, "cache": {}}
    stages = [_recorded(s, store) for s in build_stages(cfg)]
    try:
        return run_stages(stages, run, shared=shared, reporter=reporter, force=force)
    finally:
        store.close()


def _recorded(stage: Stage, store: Any) -> Stage:
    """``stage`` whose result summary is also stored as a run of the ResultStore
    (id ``<run folder>-pipeline-<stage>-<key>``, kind ``pipeline:<stage>``)."""
    import dataclasses

    def func(ctx: StageContext) -> Any:
        result = stage.func(ctx)
        run_id = f"{ctx.run_dir.resolve().name}-pipeline-{stage.name}-{ctx.key}"
        store.create_run(run_id, f"pipeline:{stage.name}", {"config": stage.config})
        store.finish_run(run_id, dict(result))
        return result

    return dataclasses.replace(stage, func=func)
