"""Weight-sharing supernet of the NAS-Bench-201 cell space.

The macro network is NB201's ``TinyNetwork``; on every edge of every cell the supernet holds all
five candidate ops (``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``,
``avg_pool_3x3``) with their own weights, shared by every member that picks that op on that edge.
A member runs one op per edge (single path). Stem, reduction blocks and classifier are shared by
all members. Parameter names follow :mod:`hsconas.nn.builders.nb201` with the op name inserted
after the edge index (``cells.0.edges.3.nor_conv_3x3.op.1.weight``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from hsconas.nn.builders.nb201 import ResNetBasicBlock, make_op
from hsconas.nn.supernet.base import Supernet
from hsconas.nn.supernet.slicing import fit_tensor
from hsconas.space import Architecture, SearchSpace
from hsconas.spaces.nb201 import NB201_EDGES, NB201_OPS

_EDGE_KEY = re.compile(r"^(cells\.\d+\.edges\.\d+)\.(.*)$")


class NB201SuperCell(nn.Module):
    """A cell holding every op on every edge; ``forward(x, ops)`` runs one op per edge."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, channels) for op in NB201_OPS}) for _ in NB201_EDGES
        )

    def forward(self, x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
        edges = [cast(nn.ModuleDict, e) for e in self.edges]
        nodes = [x]
        k = 0
        for to in (1, 2, 3):
            total = edges[k][ops[k]](nodes[0])
            for frm in range(1, to):
                total = total + edges[k + frm][ops[k + frm]](nodes[frm])
            k += to
            nodes.append(total)
        return nodes[-1]  # (N, C, H, W)


class NB201Supernet(Supernet):
    """Supernet of the ``nb201`` space.

    Args:
        space: the ``nb201`` space.
        num_classes: classifier outputs.
        channels: channels of the first stage (16 in NAS-Bench-201).
        cells_per_stage: cells per stage (5 in NAS-Bench-201).
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        self.space = space
        self.build_options: dict[str, Any] = {
            "num_classes": num_classes,
            "channels": channels,
            "cells_per_stage": cells_per_stage,
        }
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        cells: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            cells.extend(NB201SuperCell(c) for _ in range(cells_per_stage))
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        ops = tuple(str(v) for v in arch.values)
        x = self.stem(x)  # (N, C, H, W)
        for cell in self.cells:
            x = cell(x, ops) if isinstance(cell, NB201SuperCell) else cell(x)
        x = torch.flatten(self.pool(self.lastact(x)), 1)  # (N, 4C)
        return self.classifier(x)  # (N, num_classes)

    def subnet_state_dict(
        self, arch: Architecture, shapes: Mapping[str, torch.Size]
    ) -> dict[str, torch.Tensor]:
        """Weights of the chosen op of every edge, renamed to the standalone edge names."""
        ops = tuple(str(v) for v in arch.values)
        full = self.state_dict()
        out: dict[str, torch.Tensor] = {}
        for name, shape in shapes.items():
            m = _EDGE_KEY.match(name)
            if m is not None:
                edge = int(m.group(1).rsplit(".", 1)[1])
                source = f"{m.group(1)}.{ops[edge]}.{m.group(2)}"
            else:
                source = name
            out[name] = fit_tensor(full[source], shape)
        return out


__all__ = ["NB201SuperCell", "NB201Supernet"]
