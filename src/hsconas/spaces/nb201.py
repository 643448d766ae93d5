"""NAS-Bench-201 cell space: 6 edges of a 4-node cell, each one of 5 ops.

The op order and the string form are those of NAS-Bench-201 / NATS-Bench and of the tables in
``shared/data/nb201``: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` lists, for nodes 1, 2, 3, the op on
the edge from each earlier node.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hsconas.errors import ArchitectureFormatError
from hsconas.space.core import Architecture, Gene, SearchSpace, Value
from hsconas.space.registry import register_space

if TYPE_CHECKING:
    from hsconas.space.codec import CodeFeatures, FeatureTarget, GeneCodec

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
#: (to_node, from_node) of the 6 edges, in string order.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

_NODE_RE = re.compile(r"^\|(?:[a-z0-9_]+~\d\|)+$")


class NB201Space(SearchSpace):
    """The NAS-Bench-201 topology space (15625 cells)."""

    def __init__(self) -> None:
        self.name = "nb201"
        self.description = (
            "NAS-Bench-201 cell: 6 edges x {none, skip, conv1x1, conv3x3, avgpool3x3}"
        )
        self._init_genes([Gene(f"edge{t}<-{f}", NB201_OPS) for t, f in NB201_EDGES])

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """NAS-Bench-201 networks take 32x32 RGB images (CIFAR; ImageNet16-120 is 16x16)."""
        return (3, 32, 32)

    def surrogate_features(self, codec: GeneCodec, target: FeatureTarget) -> CodeFeatures:
        """Cell features (:class:`~hsconas.spaces.nb201_features.CellFeatureMap`).

        Accuracy: only what is trained, so that cells computing the same function share
        features (and a class whose spread is training noise). Latency: op counts in front of
        the per-edge one-hot scaled by 0.1, so a ridge learns one cost per op before per-edge
        deviations, plus the effective and dead-code-surviving one-hot at 0.1, penalised more
        than the ops placed (see ``docs/experiments.md`` for the measured effect of each).
        """
        from hsconas.spaces.nb201_features import CellFeatureMap

        if target == "accuracy":
            return CellFeatureMap(codec, effective_only=True)
        return CellFeatureMap(codec, one_hot_only=True, derived_weight=0.1, edge_weight=0.1)

    def _format(self, values: tuple[Value, ...]) -> str:
        nodes: list[str] = []
        k = 0
        for to in (1, 2, 3):
            parts = [f"{values[k + f]}~{f}" for f in range(to)]
            k += to
            nodes.append("|" + "|".join(parts) + "|")
        return "+".join(nodes)

    def _parse(self, text: str) -> tuple[Value, ...]:
        nodes = text.split("+")
        if len(nodes) != 3 or not all(_NODE_RE.match(n) for n in nodes):
            raise ArchitectureFormatError(
                f"nb201: cannot parse {text!r}; expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|",
                space=self.name,
            )
        values: list[Value] = []
        for to, node in enumerate(nodes, start=1):
            edges = node.strip("|").split("|")
            if len(edges) != to:
                raise ArchitectureFormatError(
                    f"nb201: node {to} must have {to} incoming edges, got {len(edges)} in {text!r}",
                    space=self.name,
                )
            for frm, edge in enumerate(edges):
                op, _, src = edge.partition("~")
                if src != str(frm):
                    raise ArchitectureFormatError(
                        f"nb201: edge {edge!r} of node {to} should come from node {frm}",
                        space=self.name,
                    )
                values.append(op)
        return tuple(values)


@register_space("nb201")
def _nb201() -> SearchSpace:
    return NB201Space()
