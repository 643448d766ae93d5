"""Weight-sharing supernet of the Once-for-All ResNet50 space (``ofa-resnet50``).

Every layer is stored once at its widest: the stem at width multipliers 1.0, every bottleneck
slot at unit width 1.0 and expand ratio 0.35. A member

- runs the residual middle stem convolution only at ``stem.depth`` 2 (OFA's stem skipping),
- runs the first ``u{i}.depth`` slots of each unit (elastic depth, as in OFA),
- uses the leading channels of every convolution, batch norm and of the classifier's inputs
  (elastic width multiplier and expand ratio; OFA's channel sorting is not used).

Elastic resolution is a property of the input (global pooling makes every resolution valid).
Standalone parameter names are those of :mod:`hsconas.nn.builders.resnet`, whose ``blocks.{k}``
count active blocks and whose ``stem.{k}`` count active stem layers; the supernet counts slots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from hsconas.nn.blocks import ConvBNAct
from hsconas.nn.builders.resnet import Bottleneck, _ResidualConv
from hsconas.nn.supernet.base import Supernet
from hsconas.nn.supernet.slicing import fit_tensor, sliced_bn, sliced_conv, sliced_linear
from hsconas.space import Architecture
from hsconas.space.channels import make_divisible
from hsconas.spaces.ofa_resnet import (
    RESNET_BASE_WIDTHS,
    RESNET_MAX_DEPTHS,
    RESNET_STEM_BASE,
    RESNET_STRIDES,
    OFAResNetSpace,
)

_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.*)$")
_STEM_KEY = re.compile(r"^stem\.(\d+)\.(.*)$")


class OFAResNetSupernet(Supernet):
    """Supernet of an :class:`OFAResNetSpace` (``ofa-resnet50``).

    Args:
        space: the space.
        num_classes: classifier outputs; default the space's (1000).
        dropout_rate: dropout before the classifier.
        in_channels: image channels of the stem (3 for RGB; 1 for grey-scale data such as
            ``digits``); passed on to the standalone builder when not 3.
    """

    space: OFAResNetSpace

    def __init__(
        self,
        space: OFAResNetSpace,
        *,
        num_classes: int | None = None,
        dropout_rate: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.space = space
        classes = space.num_classes if num_classes is None else int(num_classes)
        self.build_options: dict[str, Any] = {"num_classes": classes}
        if dropout_rate > 0:
            self.build_options["dropout_rate"] = dropout_rate
        if in_channels != 3:
            self.build_options["in_channels"] = in_channels
        widest = {
            g.name: max(float(c) for c in g.choices)
            for g in space.full_genes
            if g.name.endswith((".w0", ".w1", ".width", ".expand"))
        }
        stem_out = make_divisible(RESNET_STEM_BASE * widest["stem.w1"], 8)
        stem_mid = make_divisible(make_divisible(RESNET_STEM_BASE * widest["stem.w0"], 8) // 2, 8)
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, stem_mid, 3, 2, act="relu"),
            _ResidualConv(stem_mid),
            ConvBNAct(stem_mid, stem_out, 3, 1, act="relu"),
        )
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        blocks: list[nn.Module] = []
        self._first_slot: list[int] = []  # supernet block index of each unit's first slot
        channels = stem_out
        for u, (base, stride, max_depth) in enumerate(
            zip(RESNET_BASE_WIDTHS, RESNET_STRIDES, RESNET_MAX_DEPTHS, strict=True), 1
        ):
            out = make_divisible(base * widest[f"u{u}.width"], 8)
            self._first_slot.append(len(blocks))
            for j in range(1, max_depth + 1):
                mid = make_divisible(round(out * widest[f"u{u}.b{j}.expand"]), 8)
                blocks.append(Bottleneck(channels, mid, out, stride if j == 1 else 1))
                channels = out
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.classifier = nn.Linear(channels, classes)

    def largest(self) -> Architecture:
        """Every gene (resolution, depths, widths, expand ratios) at its largest choice."""
        return self.space.make({g.name: max(g.choices, key=float) for g in self.space.genes})

    def smallest(self) -> Architecture:
        """Every gene at its smallest choice."""
        return self.space.make({g.name: min(g.choices, key=float) for g in self.space.genes})

    def _slots(self, arch: Architecture) -> list[int]:
        """Supernet block index of every active bottleneck block, in order."""
        d = self.space.as_dict(arch)
        return [
            first + j
            for u, first in enumerate(self._first_slot, 1)
            for j in range(int(d[f"u{u}.depth"]))
        ]

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        mid, out = self.space.stem_channels(arch)
        conv0, res, conv1 = (cast(ConvBNAct, self.stem[0]), self.stem[1], self.stem[2])
        x = _conv_bn_act(conv0, x, mid, relu=True)  # (N, mid, H / 2, W / 2)
        if int(self.space.as_dict(arch)["stem.depth"]) > 0:
            x = x + _conv_bn_act(cast(_ResidualConv, res).conv, x, mid, relu=True)
        x = _conv_bn_act(cast(ConvBNAct, conv1), x, out, relu=True)
        x = self.max_pool(x)  # (N, out, H / 4, W / 4)
        for index, (_, b_mid, b_out, _) in zip(
            self._slots(arch), self.space.block_plan(arch), strict=True
        ):
            block = cast(Bottleneck, self.blocks[index])
            y = _conv_bn_act(block.conv1, x, b_mid, relu=True)
            y = _conv_bn_act(block.conv2, y, b_mid, relu=True)
            y = _conv_bn_act(block.conv3, y, b_out, relu=False)
            if isinstance(block.downsample, nn.Sequential):
                pool, conv = block.downsample[0], cast(ConvBNAct, block.downsample[1])
                shortcut = _conv_bn_act(conv, pool(x), b_out, relu=False)
            else:
                shortcut = x
            x = F.relu(y + shortcut)  # (N, b_out, H / s, W / s)
        x = torch.flatten(x.mean(dim=(2, 3)), 1)  # (N, last)
        return sliced_linear(self.classifier, self.dropout(x))  # (N, num_classes)

    def subnet_state_dict(
        self, arch: Architecture, shapes: Mapping[str, torch.Size]
    ) -> dict[str, torch.Tensor]:
        """Stem and slot weights of the active layers, renumbered to the standalone order."""
        slots = self._slots(arch)
        stem_layers = [0, 1, 2] if int(self.space.as_dict(arch)["stem.depth"]) > 0 else [0, 2]
        full = self.state_dict()
        out: dict[str, torch.Tensor] = {}
        for name, shape in shapes.items():
            source = name
            if (m := _BLOCK_KEY.match(name)) is not None:
                source = f"blocks.{slots[int(m.group(1))]}.{m.group(2)}"
            elif (m := _STEM_KEY.match(name)) is not None:
                source = f"stem.{stem_layers[int(m.group(1))]}.{m.group(2)}"
            out[name] = fit_tensor(full[source], shape)
        return out


def _conv_bn_act(
    layer: ConvBNAct, x: torch.Tensor, out_channels: int, *, relu: bool
) -> torch.Tensor:
    """``layer`` on the leading ``out_channels`` filters over the input's channels."""
    y = sliced_bn(layer.bn, sliced_conv(layer.conv, x, out_channels))
    return F.relu(y) if relu else y
