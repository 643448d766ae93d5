"""Parameters and MACs of an architecture without building it (no torch for MobileNet spaces).

For the MobileNet-family spaces (``ofa-mbv3``, ``ofa-mbv3-w1.2``, the ProxylessNAS spaces) the
counts follow in closed form from the space's macro and :meth:`block_specs`: this module sums them
with the Once-for-All convention of :mod:`hsconas.nn.counting` (conv and linear multiply-accumulates
of one image; parameters of convolutions, batch norms, squeeze-excitation and the classifier), so an
accuracy predictor or the search can afford the counts of thousands of networks. The tests check
that both agree exactly with the project's counters on built networks. Other spaces fall back to
building the network and counting with :func:`hsconas.nn.counting.model_cost` (torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hsconas.space import Architecture, SearchSpace
from hsconas.space.channels import make_divisible

__all__ = ["ArchCost", "arch_cost", "closed_form_supported"]

IMAGENET_CLASSES = 1000
"""Classifier outputs the counts assume (the ImageNet heads of the published networks)."""


@dataclass(frozen=True)
class ArchCost:
    """Static cost of one network for one image.

    Attributes:
        params: parameters (convolutions, batch norms, SE, classifier).
        macs: conv + linear multiply-accumulates of one forward pass.
    """

    params: int
    macs: int


def closed_form_supported(space: SearchSpace) -> bool:
    """Whether :func:`arch_cost` counts ``space`` in closed form (a MobileNet-family macro)."""
    macro = getattr(space, "macro", None)
    return (
        macro is not None
        and hasattr(space, "block_specs")
        and getattr(macro, "family", None) in ("MobileNetV3", "ProxylessNASNets")
    )


def _conv(
    cin: int, cout: int, k: int, size: int, stride: int, groups: int = 1, bn: bool = True
) -> tuple[int, int, int]:
    """(params, macs, output size) of a padded k x k convolution on a size x size input."""
    out = math.ceil(size / stride)
    per_out = (cin // groups) * k * k
    params = cout * per_out + (2 * cout if bn else 0)
    return params, out * out * cout * per_out, out


def _mobilenet_cost(space: Any, arch: Architecture, num_classes: int) -> ArchCost:
    macro = space.macro
    channels, size, _ = space.input_shape(arch)
    params, macs, size = _conv(channels, macro.stem_width, 3, size, 2)
    last_ch = macro.stem_width
    for b in space.block_specs(arch):
        if not (b.expand_ratio == 1 and b.mid_channels == b.in_channels):
            p, m, _ = _conv(b.in_channels, b.mid_channels, 1, size, 1)
            params, macs = params + p, macs + m
        p, m, size = _conv(
            b.mid_channels, b.mid_channels, b.kernel_size, size, b.stride, b.mid_channels
        )
        params, macs = params + p, macs + m
        if b.use_se:
            se = make_divisible(b.mid_channels // 4, 8)
            params += 2 * b.mid_channels * se + se + b.mid_channels  # two 1x1 convs with bias
            macs += 2 * b.mid_channels * se
        p, m, _ = _conv(b.mid_channels, b.out_channels, 1, size, 1)
        params, macs = params + p, macs + m
        last_ch = b.out_channels
    if macro.family == "MobileNetV3":
        p, m, _ = _conv(last_ch, macro.final_expand_width, 1, size, 1)
        params, macs = params + p, macs + m
        p, m, _ = _conv(
            macro.final_expand_width, macro.feature_mix_width, 1, 1, 1, bn=macro.feature_mix_bn
        )
    else:
        p, m, _ = _conv(last_ch, macro.feature_mix_width, 1, size, 1, bn=macro.feature_mix_bn)
    params, macs = params + p, macs + m
    params += macro.feature_mix_width * num_classes + num_classes
    macs += macro.feature_mix_width * num_classes
    return ArchCost(int(params), int(macs))


def arch_cost(
    space: SearchSpace, arch: Architecture, *, num_classes: int = IMAGENET_CLASSES
) -> ArchCost:
    """Parameters and MACs of ``arch`` (one image at the architecture's resolution).

    Closed form for MobileNet-family spaces (:func:`closed_form_supported`); otherwise the network
    is built and counted with :func:`hsconas.nn.counting.model_cost` (loads torch).

    Args:
        space: the architecture's space.
        arch: a valid member of ``space``.
        num_classes: classifier outputs (the built fallback uses the builder's default).
    """
    if closed_form_supported(space):
        return _mobilenet_cost(space, arch, num_classes)
    from hsconas.nn import build_model
    from hsconas.nn.counting import model_cost

    cost = model_cost(build_model(arch), space.input_shape(arch))
    return ArchCost(cost.params, cost.macs)
