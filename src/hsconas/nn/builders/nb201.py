"""Builder of the ``nb201`` space: the NAS-Bench-201 macro network (``TinyNetwork``).

As in the NAS-Bench-201 reference code: a ``conv3x3(3 -> C) + BN`` stem; three stages of ``N`` cells
with ``C``, ``2C`` and ``4C`` channels, separated by residual reduction blocks
(``ReLU-Conv3x3(stride 2)-BN``, ``ReLU-Conv3x3-BN``, shortcut ``AvgPool2x2 -> conv1x1``); then
``BN -> ReLU``, global average pooling and a linear classifier. A cell is the 4-node DAG whose node
``j`` is the sum over earlier nodes ``i`` of ``op(i -> j)(node i)``; ops are ``none`` (zeros),
``skip_connect``, ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN) and ``avg_pool_3x3``.
"""

from __future__ import annotations

import torch
from torch import nn

from hsconas.nn.registry import register_builder
from hsconas.space import Architecture, SearchSpace
from hsconas.spaces.nb201 import NB201_EDGES


class ReLUConvBN(nn.Module):
    """``ReLU -> Conv(k, stride) -> BN`` (NB201's ``nor_conv``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """An NB201 edge op on ``channels`` channels (stride 1)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}")


class NB201Cell(nn.Module):
    """The 4-node NB201 cell; ``ops`` are the 6 edge ops in string order."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to in (1, 2, 3):
            total = self.edges[k](nodes[0])
            for frm in range(1, to):
                total = total + self.edges[k + frm](nodes[frm])
            k += to
            nodes.append(total)
        return nodes[-1]  # (N, C, H, W)


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two ReLU-Conv3x3-BN and an avg-pool + conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))  # (N, c_out, H / 2, W / 2)


class NB201Network(nn.Module):
    """NAS-Bench-201 ``TinyNetwork`` for one cell.

    Args:
        ops: the 6 edge ops of the cell (string order, see ``hsconas.spaces.nb201``).
        channels: channels of the first stage (16 in NAS-Bench-201).
        cells_per_stage: cells per stage (5 in NAS-Bench-201).
        num_classes: classifier outputs (10 CIFAR-10, 100 CIFAR-100, 120 ImageNet16-120).
    """

    def __init__(
        self,
        ops: tuple[str, ...],
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if len(ops) != len(NB201_EDGES):
            raise ValueError(f"an NB201 cell has {len(NB201_EDGES)} edges, got {len(ops)} ops")
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        cells: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            cells.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def block_modules(self) -> list[tuple[str, nn.Module]]:
        """The LUT's blocks: the stem, every edge op of every cell, the reduction blocks, then
        ``lastact``, ``pool`` and ``classifier``.

        A cell is a 4-node DAG (several inputs per node), so it is split into its edge ops, each
        a one-input block: the 5 ops at 3 widths give 15 distinct edge blocks for the whole space.
        Keyed by whole cells instead, the 15625 cells x 3 widths never saturate a sampled table,
        and networks the table was not built from miss blocks. The node sums between edges are
        left to the latency model's learned correction.
        """
        out: list[tuple[str, nn.Module]] = [("stem", self.stem)]
        for i, cell in enumerate(self.cells):
            if isinstance(cell, NB201Cell):
                out.extend((f"cells.{i}.edges.{k}", op) for k, op in enumerate(cell.edges))
            else:
                out.append((f"cells.{i}", cell))
        out += [("lastact", self.lastact), ("pool", self.pool), ("classifier", self.classifier)]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))  # (N, 4C, H / 4, W / 4)
        x = torch.flatten(self.pool(self.lastact(x)), 1)  # (N, 4C)
        return self.classifier(x)  # (N, num_classes)


@register_builder("nb201")
def build_nb201(
    space: SearchSpace,
    arch: Architecture,
    *,
    num_classes: int = 10,
    channels: int = 16,
    cells_per_stage: int = 5,
) -> nn.Module:
    """The NB201 network of ``arch`` (defaults: CIFAR-10, C=16, N=5 as in the benchmark)."""
    ops = tuple(str(v) for v in arch.values)
    return NB201Network(
        ops, channels=channels, cells_per_stage=cells_per_stage, num_classes=num_classes
    )
