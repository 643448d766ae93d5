"""ONNX runtimes without PyTorch: load serialised ONNX bytes into ONNX Runtime or OpenVINO.

The local ``onnxruntime`` and ``openvino`` backends and the device agent
(:mod:`hsconas.agent`) load models through these functions, so a model timed through the agent
runs with exactly the session options of a local measurement. Importing this module imports
neither PyTorch nor the runtimes (each is imported when first used), so a device that only has
numpy and one runtime installed can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "RUNTIMES",
    "make_runner",
    "onnxruntime_settings",
    "onnxruntime_unavailable",
    "openvino_settings",
    "openvino_unavailable",
    "ort_session",
    "runtime_settings",
    "runtime_unavailable",
]

RUNTIMES = ("onnxruntime", "openvino")
"""Runtimes that execute serialised ONNX (the agent's backends)."""


def onnxruntime_unavailable() -> str | None:
    """Why ONNX Runtime cannot run here, or ``None`` if it can."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime)"
    if "CPUExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CPUExecutionProvider"
    return None


def openvino_unavailable() -> str | None:
    """Why OpenVINO's CPU plugin cannot run here, or ``None`` if it can."""
    try:
        import openvino as ov
    except ImportError:
        return "openvino is not installed (pip install openvino)"
    try:
        devices = ov.Core().available_devices
    except RuntimeError as exc:  # a broken installation
        return f"openvino cannot list its devices: {exc}"
    if "CPU" not in devices:
        return "openvino has no CPU device"
    return None


def onnxruntime_settings(threads: int | None) -> dict[str, Any]:
    """The settings that identify an ONNX Runtime measurement (threads, version, graph level)."""
    import onnxruntime as ort

    return {"threads": threads, "ort_version": ort.__version__, "graph_opt": "all"}


def openvino_settings(threads: int | None) -> dict[str, Any]:
    """The settings that identify an OpenVINO measurement (threads, version, hint)."""
    import openvino as ov

    return {"threads": threads, "openvino_version": ov.get_version(), "hint": "LATENCY"}


def ort_session(model_bytes: bytes, threads: int | None) -> Any:
    """An ONNX Runtime ``InferenceSession`` for ``model_bytes``: CPU provider, every graph
    optimisation, sequential execution, ``threads`` intra-op threads (one inter-op thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def openvino_compiled(model_bytes: bytes, threads: int | None) -> Any:
    """An OpenVINO ``CompiledModel`` of ONNX ``model_bytes`` on the CPU plugin: latency hint,
    one stream, ``threads`` inference threads."""
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(core.read_model(model_bytes), "CPU", config)


def make_runner(
    runtime: str, model_bytes: bytes, x: np.ndarray, threads: int | None
) -> Callable[[], object]:
    """A function that runs ONNX ``model_bytes`` once on input ``x`` with ``runtime``.

    Args:
        runtime: ``onnxruntime`` or ``openvino``.
        model_bytes: a serialised ONNX model with one input.
        x: the input array (float32, the model's input shape).
        threads: intra-op threads (``None``: the runtime's default).
    """
    feed = np.ascontiguousarray(x, dtype=np.float32)
    if runtime == "onnxruntime":
        sess = ort_session(model_bytes, threads)
        feeds = {sess.get_inputs()[0].name: feed}
        return lambda: sess.run(None, feeds)
    if runtime == "openvino":
        request = openvino_compiled(model_bytes, threads).create_infer_request()
        return lambda: request.infer({0: feed})
    raise ValueError(f"unknown ONNX runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")


def runtime_unavailable(runtime: str) -> str | None:
    """Why ``runtime`` cannot run here, or ``None`` if it can."""
    if runtime == "onnxruntime":
        return onnxruntime_unavailable()
    if runtime == "openvino":
        return openvino_unavailable()
    return f"unknown ONNX runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}"


def runtime_settings(runtime: str, threads: int | None) -> dict[str, Any]:
    """The settings of ``runtime`` with ``threads`` (see the two functions above)."""
    if runtime == "onnxruntime":
        return onnxruntime_settings(threads)
    if runtime == "openvino":
        return openvino_settings(threads)
    raise ValueError(f"unknown ONNX runtime {runtime!r}; choose one of: {', '.join(RUNTIMES)}")
