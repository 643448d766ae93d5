"""Model validation: the checks on real ONNX bytes, and the limited worker process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from agent_helpers import tiny_onnx
from onnx import TensorProto, helper, numpy_helper

from hsconas.agent.validate import (
    ModelLimits,
    ValidationError,
    check_model_bytes,
    validate_in_worker,
)

LIMITS = ModelLimits()


def _model(nodes: list[onnx.NodeProto], *, shape: list[str | int] | None = None, opset: int = 17,
           extra_opsets: tuple[tuple[str, int], ...] = (), inits: list[onnx.TensorProto] | None = None,
           ) -> bytes:  # fmt: skip
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape or [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape or [1, 3, 8, 8])],
        inits or [],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def test_a_valid_model_gives_its_summary() -> None:
    s = check_model_bytes(tiny_onnx(8, 16), LIMITS)
    assert s["input_shape"] == [1, 3, 16, 16] and s["opset"] == 17
    assert s["ops"] == ["Conv", "GlobalAveragePool", "Relu"] and s["n_nodes"] == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not an ONNX model"),
        (b"\x08\x07\x12\xff\xff\xff\xff\x0f garbage", "not an ONNX model"),
        (tiny_onnx()[:-40], "not an ONNX model|checker|input"),
        (_model([helper.make_node("Relu", ["input"], ["output"])], opset=3), "opset 3"),
        (
            _model(
                [helper.make_node("Evil", ["input"], ["output"], domain="com.evil")],
                extra_opsets=(("com.evil", 1),),
            ),
            "domain 'com.evil'",
        ),
        (_model([helper.make_node("Unique", ["input"], ["output"])]), "'Unique' is not in"),
        (_model([helper.make_node("Relu", ["input"], ["output"])], shape=["N", 3, 8, 8]), "static"),
        (
            _model([helper.make_node("Relu", ["input"], ["output"])], shape=[1, 3, 5000, 8]),
            "larger than 4096",
        ),
        (
            _model([helper.make_node("Relu", ["input"], ["output"])], shape=[64, 64, 64, 128]),
            "elements",
        ),
    ],
    ids=[
        "empty",
        "garbage",
        "truncated",
        "old-opset",
        "custom-domain",
        "op-not-allowed",
        "dynamic-shape",
        "dim-too-large",
        "too-many-elements",
    ],
)
def test_refusals_name_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        check_model_bytes(data, LIMITS)


def test_external_data_is_refused_before_anything_reads_a_file() -> None:
    w = numpy_helper.from_array(np.ones((3,), np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    data = _model([helper.make_node("Add", ["input", "w"], ["output"])], inits=[w])
    with pytest.raises(ValidationError, match="external data"):
        check_model_bytes(data, LIMITS)


@pytest.mark.parametrize("fork_server", [True, False], ids=["fork-server", "interpreter"])
def test_worker_accepts_a_model_after_a_trial_run(tmp_path: Path, fork_server: bool) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_onnx())
    s = validate_in_worker(path, LIMITS, fork_server=fork_server)
    assert s["input_shape"] == [1, 3, 16, 16] and s["load_run_ms"] > 0


def test_worker_refuses_garbage_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValidationError, match="not an ONNX model"):
        validate_in_worker(path, LIMITS)


def test_worker_out_of_memory_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    # a valid model whose one convolution writes a 1 GiB tensor, under a 1 GiB address space
    w = numpy_helper.from_array(np.ones((64, 3, 3, 3), np.float32), "w")
    conv = helper.make_node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [conv], "big",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 2048, 2048])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 64, 2048, 2048])],
        [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "big.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ValidationError, match="needs more than 1024 MiB"):
        validate_in_worker(path, ModelLimits(worker_mem_mb=1024))


def test_worker_timeout_is_a_refusal(tmp_path: Path) -> None:
    # a trial run of about 2 G multiply-adds: far longer than 0.05 s even with a warm fork server
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_onnx(channels=64, size=1024))
    with pytest.raises(ValidationError, match=r"longer than 0\.05 s"):
        validate_in_worker(path, ModelLimits(worker_time_s=0.05))


def test_fork_server_preloads_nothing_that_starts_a_thread() -> None:
    # a fork server with a second thread can fork a worker that deadlocks on a lock held by it
    import subprocess
    import sys

    from hsconas.agent.validate import fork_server_preload

    code = (
        "import importlib, threading\n"
        f"for m in {fork_server_preload()!r}: importlib.import_module(m)\n"
        "print(threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
