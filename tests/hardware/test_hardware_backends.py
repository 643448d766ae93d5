"""Measurement backends: torch and onnxruntime on a real tiny network, cuda unavailable here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hsconas.errors import HsconasError
from hsconas.hardware.backends import (
    BackendUnavailableError,
    CudaBackend,
    CudaEventTimer,
    OnnxRuntimeBackend,
    OpenVinoBackend,
    TorchBackend,
    UnknownBackendError,
    get_backend,
    list_backends,
    torch_threads,
)
from hsconas.hardware.fingerprint import fingerprint
from hsconas.hardware.timing import TimingConfig

_FAST = TimingConfig(max_time_s=0.3)


def _tiny() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10),
    )  # fmt: skip


def test_torch_and_onnxruntime_agree_within_a_generous_factor() -> None:
    net = _tiny()
    t = TorchBackend(threads=1).measure(net, (3, 64, 64), timing=_FAST)
    o = OnnxRuntimeBackend(threads=1).measure(net, (3, 64, 64), timing=_FAST)
    assert t.median_ms > 0 and o.median_ms > 0
    assert 1 / 10 < t.median_ms / o.median_ms < 10
    assert net.training  # training flag restored


def test_bigger_network_is_slower_on_both_backends() -> None:
    small, big = nn.Conv2d(16, 16, 1), nn.Conv2d(16, 256, 5, padding=2)
    for be in (TorchBackend(threads=1), OnnxRuntimeBackend(threads=1)):
        s = be.measure(small, (16, 32, 32), timing=_FAST).median_ms
        b = be.measure(big, (16, 32, 32), timing=_FAST).median_ms
        assert b > 3 * s, be.name


@pytest.mark.skipif(not OpenVinoBackend.available(), reason="openvino is not installed")
def test_openvino_times_a_network_with_the_same_protocol() -> None:
    net = _tiny()
    be = get_backend("openvino", threads=1)
    assert isinstance(be, OpenVinoBackend)
    small = be.measure(nn.Conv2d(16, 16, 1), (16, 32, 32), timing=_FAST)
    big = be.measure(nn.Conv2d(16, 256, 5, padding=2), (16, 32, 32), timing=_FAST)
    assert big.median_ms > 3 * small.median_ms
    r = be.measure(net, (3, 64, 64), timing=_FAST)
    o = OnnxRuntimeBackend(threads=1).measure(net, (3, 64, 64), timing=_FAST)
    assert 1 / 10 < r.median_ms / o.median_ms < 10
    assert (
        r.n_runs >= 10
        and r.warmup_runs >= 3
        and r.stop_reason in ("precision", "max_time", "max_runs")
    )
    settings = be.settings()
    assert settings["threads"] == 1 and settings["openvino_version"] and settings["hint"]
    fp = be.device_fingerprint()
    assert fp["backend"] == "openvino" and fp["openvino"] and fp["settings"] == settings


def test_torch_threads_context_restores() -> None:
    old = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old


def test_settings_and_fingerprint() -> None:
    be = get_backend("onnxruntime", threads=2)
    assert be.settings()["threads"] == 2 and "ort_version" in be.settings()
    fp = fingerprint(be.name, be.settings())
    assert fp["backend"] == "onnxruntime" and fp["settings"]["threads"] == 2
    assert len(fp["load_avg"]) == 3 and fp["torch"] == torch.__version__
    assert fp["cpu_count"] >= 1 and fp["cpu_model"]


def test_unknown_backend_lists_the_backends() -> None:
    with pytest.raises(UnknownBackendError, match="cuda, onnxruntime, openvino, torch") as err:
        get_backend("tpu")
    assert isinstance(err.value, HsconasError)
    assert "remote:http(s)://HOST:PORT" in str(err.value)
    assert list_backends() == ["cuda", "onnxruntime", "openvino", "torch"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_backend_reports_unavailable_cleanly() -> None:
    be = get_backend("cuda")
    assert not be.available()
    assert "CUDA" in (be.unavailable_reason() or "")
    with pytest.raises(BackendUnavailableError, match="cuda"):
        be.measure(_tiny(), (3, 8, 8))


class _FakeEvent:
    """Stand-in for torch.cuda.Event: records a fake device clock (unit test of the arithmetic
    and call order only; it does not exercise a GPU)."""

    def __init__(self, clock: list[float], log: list[str]) -> None:
        self.clock, self.log, self.t = clock, log, None

    def record(self) -> None:
        self.t = self.clock[0]
        self.log.append("record")

    def synchronize(self) -> None:
        self.log.append("sync")

    def elapsed_time(self, end: _FakeEvent) -> float:
        assert self.t is not None and end.t is not None
        return end.t - self.t


def test_cuda_event_timer_arithmetic_with_fake_events() -> None:
    clock, log = [100.0], []

    def work() -> None:
        log.append("work")
        clock[0] += 2.5  # the "device" takes 2.5 ms

    timer = CudaEventTimer(work, lambda: _FakeEvent(clock, log))
    assert timer() == pytest.approx(2.5)
    assert log == ["record", "work", "record", "sync"]
    assert CudaBackend(device_index=0).settings()["device_index"] == 0


def test_thread_cpu_clock_needs_one_thread_and_is_part_of_the_settings() -> None:
    be = get_backend("torch", threads=1, clock="thread_cpu")
    assert be.settings() == {"threads": 1, "clock": "thread_cpu"}
    assert get_backend("torch", threads=1).settings() == {"threads": 1}
    r = be.measure(nn.Conv2d(16, 64, 3, padding=1), (16, 32, 32), timing=_FAST)
    assert r.median_ms > 0
    with pytest.raises(HsconasError, match="threads=1"):
        get_backend("onnxruntime", threads=2, clock="thread_cpu")
    with pytest.raises(HsconasError, match="no clock"):
        get_backend("cuda", clock="thread_cpu")
