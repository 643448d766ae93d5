"""Executors without a Ray cluster: the local executor, the names of fan-out units, and the one-line
errors of ``--executor`` (the Ray fan-out itself is tested against live agents in
tests/agent/test_agent_fanout.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hsconas.cli.main import main
from hsconas.hardware.fanout import (
    FanoutError,
    LocalExecutor,
    MeasureJob,
    RayUnavailableError,
    make_executor,
)
from hsconas.hardware.fanout_ray import WorkerSpec, import_ray, parse_worker
from hsconas.hardware.timing import TimingConfig
from hsconas.space import get_space
from hsconas.spaces.resolve import resolve_source
from hsconas.store import ResultStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "nb201:|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_worker_names() -> None:
    assert parse_worker("remote:http://10.0.0.5:8765") == WorkerSpec("remote:http://10.0.0.5:8765")
    spec = parse_worker("ray:device:pi5:onnxruntime")
    assert spec == WorkerSpec("onnxruntime", "device:pi5")
    assert spec.label == "ray:device:pi5:onnxruntime"
    for bad in ("torch", "ray:device:pi5:tensorrt", "ray::onnxruntime", "ray:onnxruntime"):
        with pytest.raises(FanoutError):
            parse_worker(bad)


def test_local_executor_takes_one_backend_here() -> None:
    with pytest.raises(FanoutError, match="--executor ray"):
        make_executor("local", ["torch", "onnxruntime"])
    with pytest.raises(FanoutError, match="add --executor ray"):
        make_executor("local", ["ray:device:pi5:onnxruntime"])
    with pytest.raises(FanoutError, match="unknown executor"):
        make_executor("dask", ["torch"])
    ex = make_executor("local", ["torch"], threads=1)
    assert isinstance(ex, LocalExecutor) and ex.name == "torch" and ex.reference is None


def test_local_executor_measures_in_order_through_the_store(
    tmp_path: Path,
) -> None:
    arch = resolve_source(ARCH)[0].arch
    other = get_space("nb201").sample(np.random.default_rng(1))
    store = ResultStore(tmp_path / "s.db")
    ex = LocalExecutor("torch")
    quick = TimingConfig(max_time_s=0.05)
    done: list[tuple[int, int]] = []
    first = ex.measure(
        [MeasureJob(arch), MeasureJob(other)], timing=quick, store=store,
        progress=lambda n, k: done.append((n, k)),
    )  # fmt: skip
    assert [m.key for m in first] == [get_space("nb201").to_string(a) for a in (arch, other)]
    assert done == [(1, 2), (2, 2)] and all(m.median_ms > 0 for m in first)
    again = ex.measure([MeasureJob(other), MeasureJob(arch)], timing=quick, store=store)
    assert [m.median_ms for m in again] == [first[1].median_ms, first[0].median_ms]  # stored


def test_executor_ray_without_ray_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as when not installed
    with pytest.raises(RayUnavailableError, match=r"pip install hsconas\[ray\]"):
        import_ray()
    argv = [
        "latency",
        "measure",
        ARCH,
        "--backend",
        "remote:http://127.0.0.1:9",
        "--executor",
        "ray",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install hsconas[ray]" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "torch", "--backend", "onnxruntime"], "2 --backend: spreading"),
        (["--backend", "ray:device:pi5:onnxruntime"], "needs --executor ray"),
        (["--backend", "torch", "--executor", "ray"], "not 'torch'"),
        (["--backend", "ray:device:pi5:nope", "--executor", "ray"], "bad Ray backend"),
        (["--backend", "remote:ftp://10.0.0.5:1", "--executor", "ray"], "bad agent URL"),
    ],
)
def test_fanout_mistakes_are_one_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["latency", "measure", ARCH, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
