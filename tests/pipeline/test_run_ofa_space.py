"""``hsconas run`` on each OFA-family space with an imagefolder of real CIFAR-10 JPEGs at the
spaces' smallest resolution, 128 px (``slow``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsconas.cli.main import main

CONFIG = """
run_dir: {run}
seed: 1
device: {{name: test-cpu, backend: onnxruntime, threads: 1}}
space: {{name: {space}}}
dataset: {{name: imagefolder, path: {data}, val_fraction: 0.2, image_size: 128}}
profile:
  lut_patience: 60
  n_e2e: 8
  n_validate: 4
  block_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 10, max_time_s: 0.02, target_rel_ci: 0.2}}
  e2e_timing: {{warmup_runs: 1, warmup_time_s: 0.0, min_runs: 5, max_runs: 30, max_time_s: 0.05, target_rel_ci: 0.1}}
blocks: {{samples_per_block: 2, baseline_samples: 6}}
supernet: {{epochs: 1, batch_size: 16, calib_images: 32}}
search: {{n_queries: 16, initial_queries: 8, population_size: 4, batch_size: 4, shrink_at: [10], n_scaled: 1}}
final: {{max_candidates: 2, train_from_scratch: true, epochs: 1, batch_size: 16}}
"""


@pytest.mark.slow  # 18-31 min each on the shared 2-core machine at load 12-17
@pytest.mark.parametrize("space", ["ofa-mbv3", "ofa-mbv3-w1.2", "ofa-resnet50"])
def test_run_on_an_ofa_space_with_real_cifar_jpegs(
    space: str, cifar_jpegs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    cfg = tmp_path / "ofa.yaml"
    cfg.write_text(CONFIG.format(run=run, data=cifar_jpegs, space=space), encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "chosen network: r128|" in out
    assert (run / "report" / "report.html").is_file()
    assert (run / "final" / "model.onnx").stat().st_size > 10_000
    arch = json.loads((run / "final" / "arch.json").read_text())
    assert arch["space"] == space and arch["input_shape"] == [3, 128, 128]
    sn = json.loads((run / "supernet" / "result.json").read_text())
    assert sn["dataset"].startswith("imagefolder:") and sn["n_train"] + sn["n_val"] == 80
