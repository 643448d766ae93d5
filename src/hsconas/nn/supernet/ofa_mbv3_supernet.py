"""Weight-sharing supernet of the Once-for-All MobileNet-family spaces (elastic depth, kernel,
expand): ``ofa-mbv3`` (MobileNetV3 head) and ``proxylessnas`` (OFA's ProxylessNAS w1.3 space).

Every layer slot of every unit is stored once at its largest: the largest depthwise kernel (7x7) and
the largest expand ratio. A member

- runs the first ``depth`` slots of each unit (elastic depth, as in OFA),
- uses the leading expanded channels of each slot (elastic expand ratio), including the leading
  channels of the squeeze-and-excitation convolutions (OFA's dynamic SE),
- uses the centre crop of the largest depthwise kernel (elastic kernel; OFA's kernel transform
  matrices are not used).

Stem, the fixed first block, the head (MobileNetV3: final expand, pool, feature mix without BN;
ProxylessNAS: feature mix with BN, then pool) and the classifier are shared as is.
Elastic resolution is a property of the input: run the supernet on images of the member's
resolution (global pooling makes every resolution valid). Standalone parameter names are those
of :mod:`hsconas.nn.builders.mobilenet`, whose ``blocks.{k}`` count active blocks only; the
supernet's ``blocks.{k}`` count slots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from hsconas.nn.blocks import ConvBNAct, MBConv, SqueezeExcite, make_activation, make_divisible
from hsconas.nn.supernet.base import Supernet
from hsconas.nn.supernet.slicing import fit_tensor, sliced_bn, sliced_conv
from hsconas.space import Architecture
from hsconas.spaces.ofa_mbv3 import BlockSpec, ElasticMBConvSpace, first_block

SUPPORTED_FAMILIES: tuple[str, ...] = ("MobileNetV3", "ProxylessNASNets")
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.*)$")


class ElasticMBConvSupernet(Supernet):
    """Supernet of an :class:`ElasticMBConvSpace` (``ofa-mbv3*`` and ``proxylessnas``).

    Args:
        space: the space (macro family ``MobileNetV3`` or ``ProxylessNASNets``).
        num_classes: classifier outputs.
        dropout_rate: dropout before the classifier; default the macro's published value.
        in_channels: image channels of the stem (3 for RGB; 1 for grey-scale data such as
            ``digits``); passed on to the standalone builder when not 3.
    """

    space: ElasticMBConvSpace

    def __init__(
        self,
        space: ElasticMBConvSpace,
        *,
        num_classes: int = 1000,
        dropout_rate: float | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        macro = space.macro
        if macro.family not in SUPPORTED_FAMILIES:
            raise NotImplementedError(
                f"{space.name}: macro family {macro.family!r} is not one of {SUPPORTED_FAMILIES}"
            )
        if macro.family == "MobileNetV3" and macro.final_expand_width is None:
            raise NotImplementedError(f"{space.name}: a MobileNetV3 macro needs final_expand_width")
        self.space = space
        self.build_options: dict[str, Any] = {"num_classes": num_classes}
        if dropout_rate is not None:
            self.build_options["dropout_rate"] = dropout_rate
        if in_channels != 3:
            self.build_options["in_channels"] = in_channels
        self._pool_before_mix = macro.family == "MobileNetV3"
        bn: dict[str, Any] = {"bn_eps": macro.bn_eps, "bn_momentum": macro.bn_momentum}
        self.first_conv = ConvBNAct(in_channels, macro.stem_width, 3, 2, act=macro.stem_act, **bn)
        fb = first_block(macro)
        blocks: list[nn.Module] = [
            MBConv(
                fb.in_channels,
                fb.out_channels,
                fb.kernel_size,
                fb.stride,
                fb.expand_ratio,
                act=fb.act,
                mid_channels=fb.mid_channels,
                residual=fb.residual,
                **bn,
            )
        ]
        self._slot_of: list[tuple[int, int]] = []  # (unit, slot) of supernet blocks[1:]
        channels = fb.out_channels
        max_expand = max(
            float(e) for g in space.full_genes if g.name.endswith(".expand") for e in g.choices
        )
        max_kernel = max(
            int(k) for g in space.full_genes if g.name.endswith(".kernel") for k in g.choices
        )
        for i, unit in enumerate(macro.units):
            for j in range(unit.max_depth):
                mid = macro.mid_channels(channels, max_expand)
                blocks.append(
                    MBConv(
                        channels,
                        unit.width,
                        max_kernel,
                        unit.stride if j == 0 else 1,
                        max_expand,
                        act=unit.act,
                        use_se=unit.use_se,
                        mid_channels=mid,
                        residual=False,
                        **bn,
                    )
                )
                self._slot_of.append((i, j))
                channels = unit.width
        self.blocks = nn.ModuleList(blocks)
        self.final_expand: nn.Module = nn.Identity()
        if macro.final_expand_width is not None and macro.family == "MobileNetV3":
            self.final_expand = ConvBNAct(
                channels, macro.final_expand_width, 1, act=macro.head_act, **bn
            )
            channels = macro.final_expand_width
        self.feature_mix = ConvBNAct(
            channels,
            macro.feature_mix_width,
            1,
            act=macro.head_act,
            use_bn=macro.feature_mix_bn,
            **bn,
        )
        rate = macro.dropout_rate if dropout_rate is None else dropout_rate
        self.dropout = nn.Dropout(rate) if rate > 0 else nn.Identity()
        self.classifier = nn.Linear(macro.feature_mix_width, num_classes)
        self._acts = {u.act: make_activation(u.act) for u in macro.units}

    def largest(self) -> Architecture:
        """Every gene (depth, kernel, expand, resolution) at its largest choice."""
        return self.space.make({g.name: max(g.choices, key=float) for g in self.space.genes})

    def smallest(self) -> Architecture:
        """Every gene at its smallest choice."""
        return self.space.make({g.name: min(g.choices, key=float) for g in self.space.genes})

    def _active(self, arch: Architecture) -> list[tuple[int, BlockSpec]]:
        """(supernet block index, spec) of every active searchable block."""
        depths = self.space.depths(arch)
        specs = self.space.block_specs(arch)[1:]
        slots = [k + 1 for k, (i, j) in enumerate(self._slot_of) if j < depths[i]]
        return list(zip(slots, specs, strict=True))

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.blocks[0](self.first_conv(x))  # (N, first_width, H / 2, W / 2)
        for index, spec in self._active(arch):
            block = cast(MBConv, self.blocks[index])
            act = self._acts[spec.act]
            expand = cast(ConvBNAct, block.expand)
            y = act(sliced_bn(expand.bn, sliced_conv(expand.conv, x, spec.mid_channels)))
            y = sliced_conv(
                block.depthwise.conv, y, spec.mid_channels, kernel=spec.kernel_size, depthwise=True
            )
            y = act(sliced_bn(block.depthwise.bn, y))  # (N, mid, H / s, W / s)
            if spec.use_se:
                y = _sliced_se(cast(SqueezeExcite, block.se), y)
            y = sliced_bn(block.project.bn, sliced_conv(block.project.conv, y, spec.out_channels))
            x = x + y if spec.residual else y
        x = self.final_expand(x)
        if self._pool_before_mix:  # MobileNetV3: pool, then the feature mix
            x = self.feature_mix(x.mean(dim=(2, 3), keepdim=True))  # (N, feature_mix, 1, 1)
        else:  # ProxylessNAS: the feature mix (with BN) at full resolution, then pool
            x = self.feature_mix(x).mean(dim=(2, 3), keepdim=True)
        return self.classifier(self.dropout(torch.flatten(x, 1)))  # (N, num_classes)

    def subnet_state_dict(
        self, arch: Architecture, shapes: Mapping[str, torch.Size]
    ) -> dict[str, torch.Tensor]:
        """Slot weights of the active blocks, renumbered to the standalone block order."""
        slot_of_block = [0] + [index for index, _ in self._active(arch)]
        full = self.state_dict()
        out: dict[str, torch.Tensor] = {}
        for name, shape in shapes.items():
            m = _BLOCK_KEY.match(name)
            source = name if m is None else f"blocks.{slot_of_block[int(m.group(1))]}.{m.group(2)}"
            out[name] = fit_tensor(full[source], shape)
        return out


OFAMobileNetV3Supernet = ElasticMBConvSupernet
"""The former name, kept for code that imports it."""


def _sliced_se(se: SqueezeExcite, x: torch.Tensor, reduction: int = 4) -> torch.Tensor:
    """Squeeze-and-excitation over the leading ``C`` channels with the standalone bottleneck
    ``make_divisible(C // reduction, 8)`` (the leading rows of the widest SE convolutions)."""
    c = x.shape[1]
    mid = make_divisible(c // reduction, 8)
    reduce_bias = se.reduce.bias[:mid] if se.reduce.bias is not None else None
    expand_bias = se.expand.bias[:c] if se.expand.bias is not None else None
    s = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    s = se.act(F.conv2d(s, se.reduce.weight[:mid, :c], reduce_bias))  # (N, mid, 1, 1)
    s = F.conv2d(s, se.expand.weight[:c, :mid], expand_bias)  # (N, C, 1, 1)
    return x * se.gate(s)
