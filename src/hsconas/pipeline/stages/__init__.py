"""The stages of ``hsconas run``, one module each, and the list that chains them.

1. ``hw_model``: block LUT and end-to-end samples on the device; fit and validate the HSCoNAS
   hardware model; choose the latency budget.
2. ``blocks``: friendliness of every (layer, op) for the device (block profiling) and insights.
3. ``supernet``: train the weight-sharing supernet on the dataset (checkpointed every epoch).
4. ``search``: the HSCoNAS EA with progressive space shrinking (hardware-model latency, supernet
   accuracy), then dynamic channel scaling of the best candidates to the budget.
5. ``final``: measure the candidates on the device until one meets the budget (re-scaling
   channels when one misses), export it (ONNX, TorchScript, state dict), optionally train it from
   scratch.
6. ``report``: the HTML report.

Each stage returns a JSON-ready summary; big outputs go to files in its folder (written
atomically); every measurement, evaluation and training metric also goes to the ResultStore.
"""

from __future__ import annotations

import json

from hsconas.pipeline.config import PipelineConfig, config_to_dict
from hsconas.pipeline.runner import Stage
from hsconas.pipeline.stages.blocks import stage_blocks
from hsconas.pipeline.stages.final import stage_final
from hsconas.pipeline.stages.hw_model import stage_hw_model
from hsconas.pipeline.stages.report import stage_report
from hsconas.pipeline.stages.search import stage_search
from hsconas.pipeline.stages.supernet import stage_supernet

__all__ = [
    "STAGE_NAMES",
    "build_stages",
    "describe",
    "stage_blocks",
    "stage_final",
    "stage_hw_model",
    "stage_report",
    "stage_search",
    "stage_supernet",
]

STAGE_NAMES: tuple[str, ...] = ("hw_model", "blocks", "supernet", "search", "final", "report")
"""The stages in order (their folders in the run directory)."""


def build_stages(cfg: PipelineConfig) -> list[Stage]:
    """The six stages with the config slice each depends on."""
    d = config_to_dict(cfg)
    device = {k: d["device"][k] for k in ("name", "backend", "threads", "batch")}
    base = {"seed": d["seed"], "device": device, "space": d["space"]}
    return [
        Stage(
            "hw_model",
            stage_hw_model,
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
            {
                **base,
                "search": d["search"],
                "calib": d["supernet"]["calib_images"],
                # a search in the profile's reduced space depends on the profile
                **({"blocks": d["blocks"]} if d["blocks"]["reduce_search"] else {}),
            },
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
