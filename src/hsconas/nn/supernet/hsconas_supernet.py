"""Weight-sharing supernet of the ``hsconas`` space family with dynamic channel scaling.

Every searchable layer is stored once at its widest: an MBConv with a 7x7 depthwise kernel,
expand ratio 6 at channel factor 1.0, reading the widest input and writing the widest output
(unit width factor 1.0). A member uses

- the leading ``in`` input and ``mid`` expanded channels of the expansion convolution
  (expand ratio 3 or 6 and the channel factor both only change ``mid``: dynamic channel scaling
  shares weights by slicing leading channels),
- the centre ``k x k`` crop of the depthwise kernel (elastic kernel, plain crop without OFA's kernel
  transform matrices),
- the leading ``out`` channels of the projection and the leading channels of every batch norm's
  affine weights and running statistics (recalibrate them per member before evaluating),
- nothing of a ``skip`` layer (identity).

Shapes come from :meth:`HSCoNASSpace.channel_plan`, so a member has exactly the shapes of the
standalone network of :mod:`hsconas.nn.builders.hsconas_net`, whose parameter names the supernet
reuses (``stem.*``, ``layers.{i}.expand.conv.weight``, ``head.*``, ``classifier.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from hsconas.nn.blocks import ConvBNAct, MBConv, make_divisible
from hsconas.nn.supernet.base import Supernet
from hsconas.nn.supernet.slicing import fit_tensor, sliced_bn, sliced_conv
from hsconas.space import Architecture
from hsconas.spaces.hsconas_space import HSCONAS_OPS, HSCoNASSpace, LayerPlan

MAX_KERNEL = 7
MAX_EXPAND = 6


class HSCoNASSupernet(Supernet):
    """Supernet of an :class:`HSCoNASSpace` (``hsconas``, ``hsconas-cifar``, ``hsconas-digits``).

    Args:
        space: the space.
        num_classes: classifier outputs; default the space's.
        bn_momentum: momentum of every batch norm during supernet training.
    """

    space: HSCoNASSpace

    def __init__(
        self, space: HSCoNASSpace, *, num_classes: int | None = None, bn_momentum: float = 0.1
    ) -> None:
        super().__init__()
        self.space = space
        self.num_classes = space.num_classes if num_classes is None else int(num_classes)
        self.build_options: dict[str, Any] = {"num_classes": self.num_classes}
        self.stem = ConvBNAct(
            space.in_channels,
            space.stem_width,
            3,
            space.stem_stride,
            act="relu6",
            bn_momentum=bn_momentum,
        )
        layers: list[nn.Module] = []
        max_in = space.stem_width
        for unit_width, depth, stride in zip(
            space.unit_widths, space.unit_depths, space.unit_strides, strict=True
        ):
            max_out = make_divisible(unit_width * max(space.unit_factors), 8)
            for j in range(depth):
                max_mid = make_divisible(max_in * MAX_EXPAND * max(space.layer_factors), 8)
                layers.append(
                    MBConv(
                        max_in,
                        max_out,
                        MAX_KERNEL,
                        stride if j == 0 else 1,
                        MAX_EXPAND,
                        act="relu6",
                        mid_channels=max_mid,
                        residual=False,
                        bn_momentum=bn_momentum,
                    )
                )
                max_in = max_out
        self.layers = nn.ModuleList(layers)
        self.head = ConvBNAct(max_in, space.head_width, 1, act="relu6", bn_momentum=bn_momentum)
        self.classifier = nn.Linear(space.head_width, self.num_classes)
        self._plans: dict[Architecture, tuple[LayerPlan, ...]] = {}

    def _plan(self, arch: Architecture) -> tuple[LayerPlan, ...]:
        """The member's channel plan (memoised: the same members recur during training)."""
        plan = self._plans.get(arch)
        if plan is None:
            if len(self._plans) >= 4096:
                self._plans.clear()
            plan = self._plans[arch] = tuple(self.space.channel_plan(arch))
        return plan

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.stem(x)  # (N, stem, H / s, W / s)
        for layer, lp in zip(self.layers, self._plan(arch), strict=True):
            if lp.op == "skip":
                continue
            assert isinstance(layer, MBConv)
            expand = cast(ConvBNAct, layer.expand)
            y = F.relu6(sliced_bn(expand.bn, sliced_conv(expand.conv, x, lp.mid_channels)))
            y = sliced_conv(
                layer.depthwise.conv, y, lp.mid_channels, kernel=lp.kernel, depthwise=True
            )
            y = F.relu6(sliced_bn(layer.depthwise.bn, y))  # (N, mid, H / stride, W / stride)
            y = sliced_bn(layer.project.bn, sliced_conv(layer.project.conv, y, lp.out_channels))
            x = x + y if lp.stride == 1 and lp.in_channels == lp.out_channels else y
        x = F.relu6(sliced_bn(self.head.bn, sliced_conv(self.head.conv, x, self.space.head_width)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (N, head_width)
        return self.classifier(x)  # (N, num_classes)

    def subnet_state_dict(
        self, arch: Architecture, shapes: Mapping[str, torch.Size]
    ) -> dict[str, torch.Tensor]:
        """Leading-channel slices and centre-cropped kernels under the standalone names."""
        full = self.state_dict()
        out: dict[str, torch.Tensor] = {}
        for name, shape in shapes.items():
            if name not in full:
                raise KeyError(f"standalone parameter {name!r} has no counterpart in the supernet")
            out[name] = fit_tensor(full[name], shape)
        return out

    def largest(self) -> Architecture:
        """Every layer ``mb_k7_e6`` at the largest factors."""
        return self._extreme(largest=True)

    def smallest(self) -> Architecture:
        """``skip`` wherever allowed, else ``mb_k3_e3``, at the smallest factors."""
        return self._extreme(largest=False)

    def _extreme(self, *, largest: bool) -> Architecture:
        pick = max if largest else min
        values: dict[str, Any] = {}
        for gene in self.space.genes:
            if gene.name.endswith(".op"):
                if largest:
                    values[gene.name] = (
                        "mb_k7_e6" if "mb_k7_e6" in gene.choices else gene.choices[-1]
                    )
                else:
                    values[gene.name] = "skip" if "skip" in gene.choices else HSCONAS_OPS[0]
                    if values[gene.name] not in gene.choices:
                        values[gene.name] = gene.choices[0]
            else:
                values[gene.name] = pick(gene.choices, key=float)
        return self.space.make(values)
