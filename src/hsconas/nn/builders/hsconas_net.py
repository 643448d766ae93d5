"""Builder of the ``hsconas`` space family (``hsconas``, ``hsconas-cifar``, ``hsconas-digits``).

Stem ``conv3x3 -> BN -> ReLU6``, the searchable MBConv / skip layers sized by
:meth:`HSCoNASSpace.channel_plan`, a ``conv1x1 -> BN -> ReLU6`` head, global average pooling,
dropout and a linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from hsconas.nn.blocks import ConvBNAct, MBConv
from hsconas.nn.registry import register_builder
from hsconas.space import Architecture, SearchSpace
from hsconas.spaces.hsconas_space import HSCoNASSpace, LayerPlan, op_kernel_expand


def make_layer(plan: LayerPlan, *, act: str = "relu6") -> nn.Module:
    """The module of one searchable layer: identity for ``skip``, else an MBConv."""
    if plan.op == "skip":
        return nn.Identity()
    kernel, expand = op_kernel_expand(plan.op)
    return MBConv(
        plan.in_channels,
        plan.out_channels,
        kernel,
        plan.stride,
        expand,
        act=act,
        mid_channels=plan.mid_channels,
    )


class HSCoNASNet(nn.Module):
    """A standalone network of an HSCoNAS space.

    Args:
        in_channels: input image channels.
        stem_width: stem output channels.
        stem_stride: stem stride.
        plan: the searchable layers (see :meth:`HSCoNASSpace.channel_plan`).
        head_width: channels of the 1x1 head convolution.
        num_classes: classifier outputs.
        dropout_rate: dropout before the classifier.
    """

    def __init__(
        self,
        in_channels: int,
        stem_width: int,
        stem_stride: int,
        plan: list[LayerPlan],
        head_width: int,
        num_classes: int,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = ConvBNAct(in_channels, stem_width, 3, stem_stride, act="relu6")
        self.layers = nn.Sequential(*(make_layer(p) for p in plan))
        last = plan[-1].out_channels if plan else stem_width
        self.head = ConvBNAct(last, head_width, 1, act="relu6")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.classifier = nn.Linear(head_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))  # (N, last, H / 32, W / 32) for the ImageNet variant
        x = torch.flatten(self.pool(self.head(x)), 1)  # (N, head_width)
        return self.classifier(self.dropout(x))  # (N, num_classes)


def _build(
    space: SearchSpace,
    arch: Architecture,
    *,
    num_classes: int | None = None,
    dropout_rate: float = 0.0,
) -> nn.Module:
    """The network of ``arch`` (``num_classes`` defaults to the variant's)."""
    if not isinstance(space, HSCoNASSpace):
        raise TypeError(f"expected an HSCoNASSpace, got {type(space).__name__}")
    return HSCoNASNet(
        space.in_channels,
        space.stem_width,
        space.stem_stride,
        space.channel_plan(arch),
        space.head_width,
        space.num_classes if num_classes is None else num_classes,
        dropout_rate,
    )


build_hsconas = register_builder("hsconas")(_build)
register_builder("hsconas-cifar")(_build)
register_builder("hsconas-digits")(_build)
