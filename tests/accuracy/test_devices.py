"""Devices and mixed precision: auto/cpu/cuda resolution, bf16 autocast on the CPU, CUDA paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hsconas.accuracy import TrainConfig, load_checkpoint, train
from hsconas.accuracy.devices import DeviceError, Precision, resolve_device
from hsconas.accuracy.train import seeded
from hsconas.cli.main import main
from hsconas.data import load_dataset
from hsconas.nn.supernet import build_supernet

torch.set_num_threads(1)
HAS_CUDA = torch.cuda.is_available()


def test_resolve_device() -> None:
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    assert resolve_device("CPU") == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("cuda:x")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(DeviceError, match="no usable CUDA GPU"):
        resolve_device("cuda")
    args = ["supernet", "train", "hsconas-digits", "--data", "digits", "--epochs", "1"]
    code = main([*args, "--out", str(tmp_path / "sn"), "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA" in err[0]
    assert not (tmp_path / "sn" / "checkpoint.pt").exists()  # refused before any work


def test_precision_per_device() -> None:
    cpu = torch.device("cpu")
    assert Precision.for_device(cpu, True).dtype == torch.bfloat16
    assert not Precision.for_device(cpu, True).needs_scaler
    assert Precision.for_device(cpu, False).describe() == "fp32"
    with pytest.raises(DeviceError, match="fp16"):
        Precision.for_device(cpu, True, "fp16")
    cuda = torch.device("cuda")
    assert Precision.for_device(cuda, True).needs_scaler  # fp16 by default: a scaler
    assert not Precision.for_device(cuda, True, "bf16").needs_scaler


def test_amp_on_cpu_trains_in_bf16(tmp_path: Path) -> None:
    data = load_dataset("digits", subset=96, val_fraction=0.25, seed=0)
    with seeded(0):
        model = build_supernet("hsconas-digits")
    seen: list[torch.dtype] = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype) if m.training else None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=1, batch_size=16, seed=0, calib_images=16)
    res = train(model, data, cfg, tmp_path / "amp", progress=False, device="cpu", amp=True)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # the forward really ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    last = res.history[-1]
    assert torch.isfinite(torch.tensor(last["train_loss"]))
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert load_checkpoint(tmp_path / "amp")["epoch"] == 1


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_training_with_fp16_and_scaler(tmp_path: Path) -> None:
    data = load_dataset("digits", subset=96, val_fraction=0.25, seed=0)
    with seeded(0):
        model = build_supernet("hsconas-digits")
    cfg = TrainConfig(epochs=1, batch_size=16, seed=0, calib_images=16)
    res = train(model, data, cfg, tmp_path / "gpu", progress=False, device="cuda", amp=True)
    assert next(model.parameters()).device.type == "cuda"
    assert torch.isfinite(torch.tensor(res.history[-1]["train_loss"]))
    assert "scaler" in load_checkpoint(tmp_path / "gpu")
