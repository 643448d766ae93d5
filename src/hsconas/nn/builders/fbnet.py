"""Builder of the ``fbnet`` space: the FBNet-A/B/C macro network (Wu et al., CVPR 2019, Table 1).

``conv3x3(3 -> 16, stride 2)``, 22 searchable layers in stages of
16 x1 (s1), 24 x4 (s2), 32 x4 (s2), 64 x4 (s2), 112 x4 (s1), 184 x4 (s2), 352 x1 (s1),
a ``conv1x1 -> head_width`` (1984 in the paper's table; FBNet-A uses 1504), global average pooling
and a linear classifier.

Ops follow the FBNet reference builder (``mobile-vision`` / ``maskrcnn-benchmark`` ``IRFBlock``):
``k{3,5}_e{1,3,6}`` is an inverted residual block with ReLU, without the 1x1 expansion for
``e1``; ``_g2`` makes the 1x1 convolutions grouped (2 groups) with a channel shuffle before the
depthwise convolution; ``skip`` is the identity where shapes match and, at the two layers that
change width or stride (the first of each stage), a ``conv1x1(stride) -> BN -> ReLU`` as FBNet's
``Identity`` op does.
"""

from __future__ import annotations

import torch
from torch import nn

from hsconas.nn.blocks import ConvBNAct
from hsconas.nn.registry import register_builder
from hsconas.space import Architecture, SearchSpace

#: (channels, stride) of the 22 searchable layers.
FBNET_LAYERS: tuple[tuple[int, int], ...] = (
    ((16, 1),)
    + ((24, 2),) + ((24, 1),) * 3
    + ((32, 2),) + ((32, 1),) * 3
    + ((64, 2),) + ((64, 1),) * 3
    + ((112, 1),) * 4
    + ((184, 2),) + ((184, 1),) * 3
    + ((352, 1),)
)  # fmt: skip
FBNET_STEM_WIDTH = 16
FBNET_HEAD_WIDTH = 1984


def parse_fbnet_op(op: str) -> tuple[int, int, int]:
    """(kernel, expand ratio, groups) of an FBNet op such as ``k5_e1_g2``; raises on ``skip``."""
    parts = op.split("_")
    try:
        if len(parts) not in (2, 3) or parts[0][0] != "k" or parts[1][0] != "e":
            raise ValueError
        groups = 1
        if len(parts) == 3:
            if parts[2][0] != "g":
                raise ValueError
            groups = int(parts[2][1:])
        return int(parts[0][1:]), int(parts[1][1:]), groups
    except (ValueError, IndexError):
        raise ValueError(
            f"not an FBNet block op: {op!r} (expected like 'k3_e6' or 'k5_e1_g2')"
        ) from None


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle with ``groups`` groups."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        return x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)


class IRFBlock(nn.Module):
    """FBNet's inverted residual block.

    ``[conv1x1(in -> mid, groups) -> BN -> ReLU]`` (absent when ``expand == 1``),
    ``[shuffle]`` (when ``groups > 1``), ``dwconv k x k(stride) -> BN -> ReLU``,
    ``conv1x1(mid -> out, groups) -> BN``; identity shortcut when ``stride == 1`` and ``in == out``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        expand: int,
        groups: int,
    ) -> None:
        super().__init__()
        mid = in_channels * expand
        self.pw: nn.Module = (
            nn.Identity()
            if expand == 1
            else ConvBNAct(in_channels, mid, 1, groups=groups, act="relu")
        )
        self.shuffle: nn.Module = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.dw = ConvBNAct(mid, mid, kernel, stride, groups=mid, act="relu")
        self.pwl = ConvBNAct(mid, out_channels, 1, groups=groups, act=None)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwl(self.dw(self.shuffle(self.pw(x))))  # (N, out, H / s, W / s)
        return x + y if self.use_residual else y


def make_fbnet_layer(op: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The module of one searchable FBNet layer."""
    if op == "skip":
        if stride == 1 and in_channels == out_channels:
            return nn.Identity()
        return ConvBNAct(in_channels, out_channels, 1, stride, act="relu")
    kernel, expand, groups = parse_fbnet_op(op)
    return IRFBlock(in_channels, out_channels, kernel, stride, expand, groups)


class FBNet(nn.Module):
    """A standalone FBNet-space network.

    Args:
        ops: the 22 layer ops.
        num_classes: classifier outputs.
        head_width: channels of the final 1x1 convolution.
        dropout_rate: dropout before the classifier.
    """

    def __init__(
        self,
        ops: tuple[str, ...],
        num_classes: int = 1000,
        head_width: int = FBNET_HEAD_WIDTH,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(ops) != len(FBNET_LAYERS):
            raise ValueError(f"FBNet has {len(FBNET_LAYERS)} searchable layers, got {len(ops)} ops")
        self.stem = ConvBNAct(3, FBNET_STEM_WIDTH, 3, 2, act="relu")
        layers = []
        c = FBNET_STEM_WIDTH
        for op, (out, stride) in zip(ops, FBNET_LAYERS, strict=True):
            layers.append(make_fbnet_layer(op, c, out, stride))
            c = out
        self.layers = nn.Sequential(*layers)
        self.head = ConvBNAct(c, head_width, 1, act="relu")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.classifier = nn.Linear(head_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))  # (N, 352, H / 32, W / 32)
        x = torch.flatten(self.pool(self.head(x)), 1)  # (N, head_width)
        return self.classifier(self.dropout(x))  # (N, num_classes)


@register_builder("fbnet")
def build_fbnet(
    space: SearchSpace,
    arch: Architecture,
    *,
    num_classes: int = 1000,
    head_width: int = FBNET_HEAD_WIDTH,
    dropout_rate: float = 0.0,
) -> nn.Module:
    """The FBNet network of ``arch`` (ImageNet defaults: 1000 classes, 1984-wide head)."""
    ops = tuple(str(v) for v in arch.values)
    return FBNet(ops, num_classes=num_classes, head_width=head_width, dropout_rate=dropout_rate)
