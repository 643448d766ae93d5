"""FBNet space: 22 searchable layers, each one of 9 ops (as in the FBNet latency tables of HELP).

Op order follows ``op_idx_list`` of ``shared/data/fbnet/latency_help.csv.gz``; the canonical string
is the table's ``arch_str``: the 22 op names separated by spaces, e.g. ``k3_e1 skip k5_e6 ...``.
"""

from __future__ import annotations

from hsconas.errors import ArchitectureFormatError
from hsconas.space.core import Architecture, Gene, SearchSpace, Value
from hsconas.space.registry import register_space

FBNET_OPS: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)  # fmt: skip
FBNET_NUM_LAYERS = 22


class FBNetSpace(SearchSpace):
    """FBNet-A/B/C macro space: 22 layers x 9 ops (9^22 architectures)."""

    def __init__(self) -> None:
        self.name = "fbnet"
        self.description = "FBNet: 22 layers x {MB k3/k5 x e1/e3/e6, grouped e1, skip}"
        self._init_genes([Gene(f"layer{i}", FBNET_OPS) for i in range(FBNET_NUM_LAYERS)])

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """FBNet networks take 224x224 RGB images (ImageNet)."""
        return (3, 224, 224)

    def _format(self, values: tuple[Value, ...]) -> str:
        return " ".join(str(v) for v in values)

    def _parse(self, text: str) -> tuple[Value, ...]:
        ops = text.split()
        if len(ops) != FBNET_NUM_LAYERS:
            raise ArchitectureFormatError(
                f"fbnet: expected {FBNET_NUM_LAYERS} space-separated ops, got {len(ops)}",
                space=self.name,
            )
        return tuple(ops)

    def op_indices(self, values: tuple[Value, ...]) -> list[int]:
        """The ``op_idx_list`` form of the tables."""
        return [FBNET_OPS.index(str(v)) for v in values]


@register_space("fbnet")
def _fbnet() -> SearchSpace:
    return FBNetSpace()
