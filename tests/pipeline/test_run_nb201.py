"""``hsconas run`` end to end on the NAS-Bench-201 space with a small CIFAR-10 subset (``slow``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hsconas.cli.main import main

CONFIG = """
run_dir: {run}
seed: 1
device: {{name: test-cpu, backend: onnxruntime, threads: 1}}
space: {{name: nb201}}
dataset: {{name: cifar10, path: {archive}, subset: 200, val_fraction: 0.3}}
profile:
  lut_patience: 5
  n_e2e: 6
  n_validate: 3
  block_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 10, max_time_s: 0.02, target_rel_ci: 0.2}}
  e2e_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 30, max_time_s: 0.05, target_rel_ci: 0.1}}
blocks: {{samples_per_block: 2, baseline_samples: 6, source: model}}
supernet: {{epochs: 1, batch_size: 32, calib_images: 32, device: {device}}}
search: {{n_queries: 12, initial_queries: 6, population_size: 4, batch_size: 4, shrink_at: [8], n_scaled: 1}}
final: {{max_candidates: 2, train_from_scratch: true, epochs: 1, batch_size: 32}}
"""


@pytest.mark.slow  # 3-8 min on the shared 2-core machine at load 13-17
@pytest.mark.parametrize(
    "device",
    [
        "auto",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here"),
        ),
    ],
)
def test_run_on_nb201_with_a_cifar10_subset(
    device: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training, BN recalibration and evaluation on ``supernet.device``; export on the CPU."""
    run = tmp_path / "run"
    cfg = tmp_path / "nb201.yaml"
    archive = data_dir / "images" / "cifar10_jpg.tar.gz"
    cfg.write_text(CONFIG.format(run=run, archive=archive, device=device), encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "chosen network: |" in out and "within budget" in out
    hw = json.loads((run / "hw_model" / "result.json").read_text())
    # the LUT holds NB201's edge blocks, all of them: every network later timed decomposes
    assert hw["n_blocks"] == 21 and hw["n_fit"] == 6 and hw["n_validate"] == 3
    final = json.loads((run / "final" / "result.json").read_text())
    assert final["within_budget"] and final["measured_ms"] <= final["budget_ms"]
    assert final["onnx_max_rel_diff"] < 1e-3
    assert 0.0 <= final["scratch"]["test_accuracy"] <= 100.0
    arch = json.loads((run / "final" / "arch.json").read_text())
    assert arch["space"] == "nb201" and arch["input_shape"] == [3, 32, 32]
    sn = json.loads((run / "supernet" / "result.json").read_text())
    assert sn["input_shape"] == [3, 32, 32] and sn["n_train"] + sn["n_val"] == 200
    assert (run / "report" / "report.html").is_file()
