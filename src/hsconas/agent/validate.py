"""Validation of an uploaded ONNX model, run in a separate process with time and memory limits.

A model a client uploads is untrusted bytes. Before the agent keeps it, a worker process (this
module run as ``python -m hsconas.agent.validate FILE LIMITS_JSON``) with an address-space limit
(``RLIMIT_AS``), a CPU-time limit (``RLIMIT_CPU``) and a wall-clock timeout enforced by the agent:

1. parses the bytes as an ONNX ``ModelProto`` (no pickle anywhere; a parse error is a refusal);
2. refuses tensors with external data (they would name files on the agent's disk);
3. runs ``onnx.checker.check_model`` with shape inference;
4. checks the opset of the default domain is within ``[min_opset, max_opset]`` and that no other
   domain (custom operators) is imported;
5. checks every node is an operator of :data:`ALLOWED_OPS` (standard CNN operators, none with a
   subgraph), and the node count;
6. checks the model has exactly one float input of static shape within the limits;
7. loads it into the agent's runtime and runs it once on zeros.

The worker is forked from a fork server with onnx and the runtime already imported (a fresh
interpreter where there is none). Its verdict is one JSON document, ``{"ok": true, ...summary}`` or
``{"ok": false, "reason": ...}``, sent back as bytes (nothing is unpickled) or printed as one line
when run as a command; a crash, a signal or a timeout of the worker is a refusal too, and the agent
keeps serving.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = [
    "ALLOWED_OPS",
    "ModelLimits",
    "ValidationError",
    "check_model_bytes",
    "start_fork_server",
    "validate_in_worker",
]

ALLOWED_OPS = frozenset(
    {
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
        "ConstantOfShape", "Conv", "ConvTranspose", "Div", "Dropout", "Elu", "Erf", "Expand",
        "Flatten", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid",
        "HardSwish", "Identity", "InstanceNormalization", "LayerNormalization", "LeakyRelu",
        "MatMul", "Max", "MaxPool", "Min", "Mul", "Pad", "Pow", "PRelu", "ReduceMean",
        "ReduceMax", "ReduceSum", "Relu", "Reshape", "Resize", "Selu", "Shape", "Sigmoid",
        "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
    }
)  # fmt: skip
"""Operators the agent accepts: the standard-domain operators of CNN classifiers (no control flow,
no subgraphs, no custom domains)."""


class ValidationError(Exception):
    """A model the agent refuses; the message is the reason sent back to the client."""


@dataclass(frozen=True)
class ModelLimits:
    """What an uploaded model may contain.

    Attributes:
        min_opset: lowest opset of the default ONNX domain accepted.
        max_opset: highest opset accepted.
        max_nodes: most graph nodes.
        max_dim: largest size of one input dimension (batch, channels or pixels).
        max_input_elems: most elements in the input tensor.
        worker_mem_mb: address-space limit of the validation worker, MiB.
        worker_time_s: wall-clock (and CPU-time) limit of the validation worker, seconds.
        runtime: the runtime the worker loads the model into (``onnxruntime`` or ``openvino``).
    """

    min_opset: int = 7
    max_opset: int = 21
    max_nodes: int = 20000
    max_dim: int = 4096
    max_input_elems: int = 1 << 24
    worker_mem_mb: int = 4096
    worker_time_s: float = 60.0
    runtime: str = "onnxruntime"


def _fail(reason: str) -> ValidationError:
    return ValidationError(reason)


def check_model_bytes(data: bytes, limits: ModelLimits) -> dict[str, Any]:
    """Checks 1-6 of the module docstring on ``data``; the model's summary.

    Returns:
        ``{"input_shape": [...], "input_name": str, "opset": int, "n_nodes": int, "ops": [...]}``.

    Raises:
        ValidationError: the first check that fails, with its reason.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _fail(f"not an ONNX model: {str(exc)[:200]}") from None
    graph = model.graph
    if len(graph.node) == 0:
        raise _fail("not an ONNX model: the graph has no nodes")
    tensors = list(graph.initializer) + [
        a.t for n in graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR
    ]
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors):
        raise _fail("tensors with external data are refused (they name files)")
    if len(graph.node) > limits.max_nodes:
        raise _fail(f"{len(graph.node)} nodes, more than the limit of {limits.max_nodes}")
    opset = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)
        else:
            raise _fail(f"operator domain {imp.domain!r} is refused (standard ONNX only)")
    if opset is None or not limits.min_opset <= opset <= limits.max_opset:
        raise _fail(f"opset {opset} is outside [{limits.min_opset}, {limits.max_opset}]")
    ops = sorted({n.op_type for n in graph.node})
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise _fail(f"node {node.name!r} of domain {node.domain!r} is refused")
        if node.op_type not in ALLOWED_OPS:
            raise _fail(f"operator {node.op_type!r} is not in the allow-list")
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise _fail(f"node {node.name!r} has a subgraph")
    if model.functions:
        raise _fail("model-local functions are refused")
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise _fail(f"ONNX checker: {str(exc).splitlines()[0][:200]}") from None
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise _fail(f"the model must have exactly one input, it has {len(inputs)}")
    ttype = inputs[0].type.tensor_type
    if ttype.elem_type != onnx.TensorProto.FLOAT:
        raise _fail("the input must be a float32 tensor")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in ttype.shape.dim]
    if not dims or any(d <= 0 for d in dims):
        raise _fail(f"the input shape must be static and positive, it is {dims}")
    if any(d > limits.max_dim for d in dims):
        raise _fail(f"input shape {dims}: a dimension is larger than {limits.max_dim}")
    if math.prod(dims) > limits.max_input_elems:
        raise _fail(f"input shape {dims} has more than {limits.max_input_elems} elements")
    return {
        "input_shape": dims,
        "input_name": inputs[0].name,
        "opset": opset,
        "n_nodes": len(graph.node),
        "ops": ops,
    }


def _run_once(data: bytes, summary: dict[str, Any], runtime: str) -> float:
    """Load ``data`` into ``runtime`` and run it once on zeros; milliseconds taken."""
    import numpy as np

    from hsconas.hardware.runtimes import make_runner

    t0 = time.perf_counter()
    run = make_runner(runtime, data, np.zeros(summary["input_shape"], np.float32), threads=1)
    run()
    return (time.perf_counter() - t0) * 1e3


def _set_limits(mem_mb: int, time_s: float) -> None:
    try:
        import resource
    except ImportError:  # not POSIX: the agent's wall-clock timeout still applies
        return
    mem = int(mem_mb) << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = max(1, math.ceil(time_s))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _verdict(path: Path, limits: ModelLimits) -> dict[str, Any]:
    """The worker's verdict on the file ``path``: ``{"ok": True, ...}`` or a refusal's reason."""
    try:
        data = path.read_bytes()
        summary = check_model_bytes(data, limits)
        summary["load_run_ms"] = round(_run_once(data, summary, limits.runtime), 3)
        doc: dict[str, Any] = {"ok": True, **summary}
    except ValidationError as exc:
        doc = {"ok": False, "reason": str(exc)}
    except MemoryError:
        doc = {"ok": False, "reason": f"the model needs more than {limits.worker_mem_mb} MiB"}
    except Exception as exc:  # a runtime's own error on a hostile model
        if "allocate" in str(exc).lower():
            return {"ok": False, "reason": f"the model needs more than {limits.worker_mem_mb} MiB"}
        first = (str(exc).splitlines() or [""])[0][:200]
        doc = {
            "ok": False,
            "reason": f"{limits.runtime} cannot run it: {type(exc).__name__}: {first}",
        }
    return doc


def _forked_worker(path: str, limits_json: str, conn: Connection) -> None:
    """The worker forked from the agent's fork server: limits, verdict, one JSON message."""
    limits = ModelLimits(**json.loads(limits_json))
    _set_limits(limits.worker_mem_mb, limits.worker_time_s)
    conn.send_bytes(json.dumps(_verdict(Path(path), limits)).encode())
    conn.close()


def _worker_main(argv: list[str]) -> int:
    """The worker as a command: ``FILE LIMITS_JSON``; prints one JSON line; exit 0 either way."""
    path, limits = Path(argv[0]), ModelLimits(**json.loads(argv[1]))
    _set_limits(limits.worker_mem_mb, limits.worker_time_s)
    doc = _verdict(path, limits)
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    return 0


_FORKSERVER: Any = None


def fork_server_preload() -> list[str]:
    """The modules the fork server imports once for every worker.

    The CLI too: each worker re-runs the main module (the ``hsconas`` command), which is then only
    a lookup of modules already imported. Only modules that start no thread on import: forking a
    process with a second thread can deadlock the child (a lock held by the other thread stays
    held), so OpenVINO, whose import starts one, is imported by the worker itself.
    """
    preload = [
        "hsconas.agent.validate", "hsconas.hardware.runtimes", "hsconas.cli.main", "onnx", "numpy",
    ]  # fmt: skip
    if importlib.util.find_spec("onnxruntime") is not None:
        preload.append("onnxruntime")
    return preload


def _forkserver() -> Any:
    """A ``multiprocessing`` fork-server context with onnx and the runtimes imported, or ``None``
    where there is none (not POSIX): each worker is then a fresh interpreter."""
    global _FORKSERVER
    if _FORKSERVER is None:
        import multiprocessing

        if "forkserver" not in multiprocessing.get_all_start_methods():
            _FORKSERVER = False
        else:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(fork_server_preload())
            _FORKSERVER = ctx
    return _FORKSERVER or None


def start_fork_server() -> bool:
    """Start the validation fork server now (it imports onnx and the runtimes once, a few
    seconds), so the first upload does not wait for it; False where there is no fork server."""
    ctx = _forkserver()
    if ctx is None:
        return False
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True


def _verdict_forked(ctx: Any, path: Path, limits: ModelLimits) -> dict[str, Any]:
    """The verdict of a worker forked from ``ctx``'s fork server (a new process per model)."""
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_forked_worker, args=(str(path), json.dumps(asdict(limits)), sender), daemon=True
    )
    proc.start()
    sender.close()
    try:
        if not receiver.poll(limits.worker_time_s):
            raise ValidationError(
                f"validation took longer than {limits.worker_time_s:g} s and was stopped"
            )
        try:
            raw = receiver.recv_bytes(maxlength=1 << 20)  # bytes, never unpickled
        except (EOFError, OSError):
            proc.join(5)
            code = proc.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise ValidationError(f"the validation worker died on this model ({how})") from None
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    try:
        doc = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        raise ValidationError("the validation worker gave no verdict") from None
    return doc if isinstance(doc, dict) else {"ok": False, "reason": "no verdict"}


def _verdict_subprocess(path: Path, limits: ModelLimits) -> dict[str, Any]:
    """The verdict of a fresh interpreter running this module on ``path``."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "hsconas.agent.validate", str(path), json.dumps(asdict(limits))]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=limits.worker_time_s, env=env, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ValidationError(
            f"validation took longer than {limits.worker_time_s:g} s and was stopped"
        ) from None
    if proc.returncode != 0:
        sig = -proc.returncode
        how = f"signal {sig}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        raise ValidationError(f"the validation worker died on this model ({how})")
    try:
        doc = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ValidationError("the validation worker gave no verdict") from None
    return doc if isinstance(doc, dict) else {"ok": False, "reason": "no verdict"}


def validate_in_worker(
    path: Path, limits: ModelLimits, *, fork_server: bool = True
) -> dict[str, Any]:
    """Validate the ONNX file ``path`` in a worker process with ``limits``.

    The worker is forked from a fork server that has onnx and the runtime imported (about 0.1 s
    instead of 1-2 s for a fresh interpreter), one new process per model, so one model's effects
    never reach another's validation; ``fork_server=False`` (or a platform without one) starts a
    fresh interpreter instead.

    Returns:
        The model's summary (see :func:`check_model_bytes`) plus ``load_run_ms``, the time the
        worker took to load and run it once, milliseconds.

    Raises:
        ValidationError: the model is refused, the worker crashed, ran out of memory, or took
            longer than ``limits.worker_time_s``.
    """
    ctx = _forkserver() if fork_server else None
    doc = _verdict_forked(ctx, path, limits) if ctx else _verdict_subprocess(path, limits)
    if not doc.get("ok"):
        raise ValidationError(str(doc.get("reason") or "refused"))
    doc.pop("ok")
    return doc


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
