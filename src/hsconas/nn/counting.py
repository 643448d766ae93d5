"""Parameter and multiply-accumulate (MAC) counts with the Once-for-All convention.

MACs count the multiply-accumulates of convolutions and linear layers only (batch-norm, activations,
pooling and additions are free), measured by forward hooks on one input of batch size 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelCost:
    """Static cost of a network for one input image.

    Attributes:
        params: number of trainable and non-trainable parameters (not buffers).
        macs: multiply-accumulates of conv and linear layers for one image.
        input_shape: (channels, height, width) the MACs were counted at.
    """

    params: int
    macs: int
    input_shape: tuple[int, int, int]

    @property
    def params_m(self) -> float:
        """Parameters in millions."""
        return self.params / 1e6

    @property
    def macs_m(self) -> float:
        """MACs in millions."""
        return self.macs / 1e6


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Conv and linear multiply-accumulates of one forward pass on a (1, C, H, W) input."""
    total = 0

    def conv_hook(
        module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        total += output.numel() * per_output

    def linear_hook(
        module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)


def model_cost(model: nn.Module, input_shape: tuple[int, int, int]) -> ModelCost:
    """Parameters and MACs of ``model`` at ``input_shape``."""
    return ModelCost(count_params(model), count_macs(model, input_shape), tuple(input_shape))  # type: ignore[arg-type]
