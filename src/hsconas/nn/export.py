"""Export a built network: ONNX (checked and compared with ONNX Runtime), TorchScript, state dict.

All exporters put the model in eval mode, trace it on a zero-mean random input of batch size 1 and
create the parent directory of the output path. ONNX files take an input called ``input`` of shape
``(batch, C, H, W)`` and give ``logits`` of shape ``(batch, num_classes)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "OnnxCheck",
    "check_onnx_outputs",
    "export_onnx",
    "export_torchscript",
    "save_state_dict",
]

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def _example_input(
    input_shape: tuple[int, int, int], batch: int = 1, seed: int = 0
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_shape, generator=gen)


def export_onnx(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    path: str | Path,
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Path:
    """Write ``model`` as an ONNX file and check it with ``onnx.checker``.

    Args:
        model: the network; exported in eval mode (its training flag is restored afterwards).
        input_shape: (channels, height, width) of one input image, in pixels.
        path: output file; its parent directory is created.
        opset: ONNX operator set version.
        dynamic_batch: make the batch dimension of input and output symbolic.

    Returns:
        The path written.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notes
            torch.onnx.export(
                model,
                (_example_input(input_shape),),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    onnx.checker.check_model(str(path), full_check=True)
    return path


@dataclass(frozen=True)
class OnnxCheck:
    """Agreement of an ONNX file with its PyTorch model on one random input batch.

    Attributes:
        max_abs_diff: largest absolute difference of ONNX Runtime and PyTorch outputs.
        max_abs_output: largest absolute PyTorch output (the scale the difference is relative to;
            freshly initialised networks can have outputs near zero).
    """

    max_abs_diff: float
    max_abs_output: float

    @property
    def relative_diff(self) -> float:
        """``max_abs_diff / max_abs_output`` (infinite if the outputs are all zero)."""
        if self.max_abs_output == 0.0:
            return 0.0 if self.max_abs_diff == 0.0 else float("inf")
        return self.max_abs_diff / self.max_abs_output


def check_onnx_outputs(
    model: nn.Module,
    path: str | Path,
    input_shape: tuple[int, int, int],
    *,
    batch: int = 2,
    seed: int = 1,
) -> OnnxCheck:
    """Compare ONNX Runtime (CPU) and PyTorch outputs of the same random input.

    Args:
        model: the PyTorch network the file was exported from (evaluated in eval mode).
        path: the ONNX file.
        input_shape: (channels, height, width) of one input image.
        batch: batch size of the comparison input (use 1 for files exported without a dynamic
            batch dimension).
        seed: seed of the random input.
    """
    import onnxruntime as ort

    x = _example_input(input_shape, batch=batch, seed=seed)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model(x).numpy()
    finally:
        model.train(was_training)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return OnnxCheck(
        max_abs_diff=float(np.max(np.abs(np.asarray(got) - expected))),
        max_abs_output=float(np.max(np.abs(expected))),
    )


def export_torchscript(
    model: nn.Module, input_shape: tuple[int, int, int], path: str | Path
) -> Path:
    """Write ``model`` traced to TorchScript (load with ``torch.jit.load``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, _example_input(input_shape))
        traced.save(str(path))
    finally:
        model.train(was_training)
    return path


def save_state_dict(model: nn.Module, path: str | Path) -> Path:
    """Write ``model.state_dict()`` with ``torch.save`` (load into a model of the same build)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
