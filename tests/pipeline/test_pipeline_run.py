"""The pipeline's fast block decomposition, and one tiny real end-to-end run (``slow``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import hsconas.spaces  # noqa: F401
from hsconas.latency.hsconas.fast import all_layer_blocks, fast_block_calls, fast_network_features
from hsconas.latency.hsconas.model import network_features
from hsconas.space import get_space


def test_fast_features_equal_the_generic_decomposition() -> None:
    space = get_space("hsconas-digits")
    rng = np.random.default_rng(3)
    for _ in range(3):
        arch = space.sample(rng)
        fast, slow = fast_network_features(arch), network_features(arch)
        assert fast.block_keys == slow.block_keys
        assert fast.block_heights == slow.block_heights
        assert fast.macs_m == pytest.approx(slow.macs_m, rel=1e-12)


def test_enumerated_layer_blocks_cover_sampled_networks() -> None:
    space = get_space("hsconas-digits").restrict({"u1.l1.op": ["mb_k3_e3", "mb_k5_e6"]})
    blocks = all_layer_blocks(space)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for _ in range(40):
        for call in fast_block_calls(space.sample(rng)):
            if call.name.startswith("layers."):
                assert call.key in blocks
    # the restriction is honoured: fewer blocks than the full space
    assert len(blocks) < len(all_layer_blocks(get_space("hsconas-digits")))  # type: ignore[arg-type]


TINY = """
run_dir: {run}
seed: 1
device: {{name: test-cpu, backend: onnxruntime, threads: 1}}
space: {{name: hsconas-digits}}
dataset: {{name: digits, subset: 600, val_fraction: 0.3}}
profile:
  lut_patience: 5
  n_e2e: 8
  n_validate: 4
  block_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 10, max_time_s: 0.02, target_rel_ci: 0.2}}
  e2e_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 30, max_time_s: 0.05, target_rel_ci: 0.1}}
blocks: {{samples_per_block: 2, baseline_samples: 6}}
supernet: {{epochs: 1, batch_size: 64, calib_images: 128}}
search: {{n_queries: 24, initial_queries: 10, population_size: 6, batch_size: 6, shrink_at: [14], n_scaled: 1}}
final: {{max_candidates: 3, train_from_scratch: true, epochs: 1}}
"""


@pytest.mark.slow
def test_tiny_pipeline_end_to_end_resumes_and_reruns_from_a_deleted_stage(tmp_path: Path) -> None:
    from hsconas.cli.main import main

    run = tmp_path / "run"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(run=run), encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0

    stages = ["hw_model", "blocks", "supernet", "search", "final", "report"]
    for s in stages:
        assert (run / s / "stage.done.json").is_file(), s
    final = json.loads((run / "final" / "result.json").read_text())
    assert final["within_budget"] is True
    assert final["measured_ms"] <= final["budget_ms"]
    assert final["attempts"][-1]["measured_ms"] == final["measured_ms"]
    assert 0.0 <= final["accuracy_test_inherited"] <= 100.0
    for f in ("model.onnx", "model.ts.pt", "state_dict.pt", "arch.json", "model_scratch.onnx"):
        assert (run / "final" / f).stat().st_size > 0, f
    assert final["onnx_max_rel_diff"] < 1e-3

    report = (run / "report" / "report.html").read_text(encoding="utf-8")
    for heading in (
        "Device and software fingerprint",
        "Hardware performance model",
        "Block profiling and insights",
        "Supernet training",
        "Search",
        "The chosen network",
        "Configuration (to reproduce this run)",
    ):
        assert heading in report
    assert len(re.findall(r"data:image/png;base64,", report)) >= 6
    # the report's config block is the exact config of the run
    block = report.split("<pre>", 1)[1].split("</pre>", 1)[0]
    import html

    assert yaml.safe_load(html.unescape(block))["run_dir"] == str(run)

    # second run: everything fresh, nothing recomputed
    markers = {s: (run / s / "stage.done.json").read_text() for s in stages}
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    # unchanged markers: no stage ran again (their hashes and timestamps would differ)
    assert {s: (run / s / "stage.done.json").read_text() for s in stages} == markers

    # deleting the search's results reruns search, final and report only
    shutil.rmtree(run / "search")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    for s in ("hw_model", "blocks", "supernet"):
        assert (run / s / "stage.done.json").read_text() == markers[s], s
    for s in ("search", "final", "report"):
        assert (run / s / "stage.done.json").read_text() != markers[s], s
