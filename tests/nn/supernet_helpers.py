"""Helpers shared by the supernet tests."""

from __future__ import annotations

import torch
from torch import nn


def randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine weights, so that wrong slicing shows in outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
