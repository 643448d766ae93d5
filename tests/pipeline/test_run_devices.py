"""``hsconas run`` refuses a GPU this machine does not have, for every supernet space: one line,
exit 2, before any stage starts (skipped where a CUDA GPU is present)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hsconas.cli.main import main

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")

DATA = {
    "nb201": "{{name: cifar10, path: {archive}}}",
    "ofa-resnet50": "{{name: imagefolder, path: {folder}, image_size: 128}}",
    "ofa-mbv3-w1.2": "{{name: imagefolder, path: {folder}, image_size: 128}}",
    "proxylessnas": "{{name: cifar10, path: {archive}, image_size: 128}}",
}


@pytest.mark.parametrize("space", sorted(DATA))
@pytest.mark.parametrize(
    ("field", "expect"),
    [
        ("supernet: {device: cuda}", "no usable CUDA GPU"),
        ("device: {backend: cuda}", "'device.backend' is 'cuda', which cannot run here"),
    ],
)
def test_run_refuses_cuda_without_a_gpu_before_any_stage(
    space: str, field: str, expect: str, data_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "imgs" / "train" / "a").mkdir(parents=True)
    data = DATA[space].format(
        archive=data_dir / "images" / "cifar10_jpg.tar.gz", folder=tmp_path / "imgs"
    )
    run = tmp_path / "run"
    text = f"run_dir: {run}\nspace: {{name: {space}}}\ndataset: {data}\n{field}\n"
    cfg = tmp_path / "gpu.yaml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err
    assert not (run / "hw_model").exists()  # no stage started
