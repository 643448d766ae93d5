"""ProxylessNAS spaces: Once-for-All's elastic ``proxylessnas`` (w1.3) and the original macros.

``proxylessnas`` is the ProxylessNAS space of Once-for-All at width 1.3: stem 40, a fixed MBConv k3
e1 block to 24 channels, then 6 units (widths 32/56/104/128/248/416, strides 2/2/2/1/2/1) of depth
{2,3,4} (the last unit has exactly one layer), MBConv-v2 layers (ReLU6, no SE) with kernel {3,5,7}
x expand {3,4,6}, a 1x1 feature mix to 1664 channels (with BN, before the pool) and a classifier.
Genes and canonical string are those of :class:`~hsconas.spaces.ofa_mbv3.ElasticMBConvSpace`.

``proxylessnas-{mobile,mobile14,cpu,gpu}`` are the original ProxylessNAS search spaces around the
four published networks (Cai et al., ICLR 2019): each has the fixed widths of its published macro
and 6 units of 4,4,4,4,4,1 layer slots at input size 224. Every slot is one gene ``u{i}.l{j}.op``
choosing an MBConv ``k{3,5,7}e{3,6}`` or ``skip`` (the zero layer: the slot is bypassed); the first
slot of a unit changes width or stride and cannot be skipped. Canonical string: the units separated
by ``|``, each listing its slots' ops separated by ``-``, e.g.
``k5e3-k3e3-skip-skip|k7e3-k3e3-k5e3-k5e3|...|k7e6``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hsconas.errors import ArchitectureFormatError
from hsconas.space.core import Architecture, Gene, SearchSpace, Value
from hsconas.space.registry import register_space
from hsconas.spaces.ofa_mbv3 import (
    OFA_DEPTHS,
    OFA_EXPANDS,
    OFA_KERNELS,
    BlockSpec,
    ElasticMBConvSpace,
    MBNetMacro,
    UnitSpec,
    first_block,
    make_block,
    make_divisible,
)

PROXYLESS_STRIDES: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
PROXYLESS_BASE_WIDTHS: tuple[int, ...] = (24, 40, 80, 96, 192, 320)
PROXYLESS_MAX_DEPTHS: tuple[int, ...] = (4, 4, 4, 4, 4, 1)

SKIP = "skip"
"""The zero-layer op of the original ProxylessNAS spaces."""

PROXYLESS_OPS: tuple[str, ...] = ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")
"""MBConv ops of the original ProxylessNAS space (``skip`` is added where allowed)."""


def ofa_proxyless_macro(width_mult: float = 1.3) -> MBNetMacro:
    """Once-for-All's ProxylessNAS macro-architecture at ``width_mult`` (1.3 published)."""

    def w(base: float) -> int:
        return make_divisible(base * width_mult, 8)

    units = tuple(
        UnitSpec(width=w(b), stride=s, act="relu6", use_se=False, max_depth=d)
        for b, s, d in zip(
            PROXYLESS_BASE_WIDTHS, PROXYLESS_STRIDES, PROXYLESS_MAX_DEPTHS, strict=True
        )
    )
    return MBNetMacro(
        family="ProxylessNASNets",
        width_mult=width_mult,
        stem_width=w(32),
        stem_act="relu6",
        first_width=w(16),
        first_act="relu6",
        units=units,
        final_expand_width=None,
        feature_mix_width=w(1280),
        feature_mix_bn=True,
        head_act="relu6",
        dropout_rate=0.0,
        bn_momentum=0.1,
        bn_eps=1e-3,
        mid_divisor=8,
    )


@register_space("proxylessnas")
def _proxylessnas() -> SearchSpace:
    macro = ofa_proxyless_macro(1.3)
    depths = [OFA_DEPTHS if u.max_depth > 1 else (1,) for u in macro.units]
    widths = "/".join(str(u.width) for u in macro.units)
    return ElasticMBConvSpace(
        "proxylessnas",
        macro,
        depths=depths,
        kernels=OFA_KERNELS,
        expands=OFA_EXPANDS,
        description=(
            f"Once-for-All ProxylessNAS w1.3: 6 units of depth {{2,3,4}} (last unit 1 layer; "
            f"widths {widths}), MBConv-v2 k{{3,5,7}} x e{{3,4,6}}, resolution 128..224"
        ),
    )


# ---------------------------------------------------------------------- original ProxylessNAS


@dataclass(frozen=True)
class ProxylessMacro:
    """Fixed widths of one published ProxylessNAS network.

    Attributes:
        stem_width: output channels of the stem convolution.
        first_width: output channels of the fixed MBConv k3 e1 block.
        unit_widths: output channels of the 6 units.
        feature_mix_width: channels of the final 1x1 feature-mix convolution.
    """

    stem_width: int
    first_width: int
    unit_widths: tuple[int, int, int, int, int, int]
    feature_mix_width: int

    def to_mbnet(self) -> MBNetMacro:
        """The macro in the shared :class:`MBNetMacro` form (ReLU6, no SE, BN eps 1e-3)."""
        units = tuple(
            UnitSpec(width=w, stride=s, act="relu6", use_se=False, max_depth=d)
            for w, s, d in zip(
                self.unit_widths, PROXYLESS_STRIDES, PROXYLESS_MAX_DEPTHS, strict=True
            )
        )
        return MBNetMacro(
            family="ProxylessNASNets",
            width_mult=1.0,
            stem_width=self.stem_width,
            stem_act="relu6",
            first_width=self.first_width,
            first_act="relu6",
            units=units,
            final_expand_width=None,
            feature_mix_width=self.feature_mix_width,
            feature_mix_bn=True,
            head_act="relu6",
            dropout_rate=0.0,
            bn_momentum=0.1,
            bn_eps=1e-3,
            mid_divisor=None,
        )


PROXYLESS_MACROS: dict[str, ProxylessMacro] = {
    "mobile": ProxylessMacro(32, 16, (32, 40, 80, 96, 192, 320), 1280),
    "mobile14": ProxylessMacro(48, 24, (40, 56, 112, 136, 256, 448), 1792),
    "cpu": ProxylessMacro(40, 24, (32, 48, 88, 104, 216, 360), 1432),
    "gpu": ProxylessMacro(40, 24, (32, 56, 112, 128, 256, 432), 1728),
}
"""The macros of the published networks ``proxyless_{mobile,mobile_14,cpu,gpu}.config``."""


def parse_op(op: str) -> tuple[int, int]:
    """``"k5e3"`` -> ``(5, 3)``."""
    k, e = op[1:].split("e")
    return int(k), int(e)


class ProxylessMacroSpace(SearchSpace):
    """The original ProxylessNAS space with the fixed widths of one published network.

    Args:
        name: registered name.
        macro: the network's fixed widths.
        ops: MBConv ops of a slot (``skip`` is added to slots that may be bypassed).
        resolution: input size in pixels (224 for the published networks).
    """

    def __init__(
        self,
        name: str,
        macro: ProxylessMacro,
        *,
        ops: Sequence[str] = PROXYLESS_OPS,
        resolution: int = 224,
    ) -> None:
        self.name = name
        self.proxyless_macro = macro
        self.macro = macro.to_mbnet()
        self.image_size = resolution
        self.description = (
            f"ProxylessNAS (original space, widths of the published {name} net): 6 units of "
            f"4,4,4,4,4,1 slots, each MBConv k{{3,5,7}} x e{{3,6}} or skip (not the first slot)"
        )
        genes = []
        for i, unit in enumerate(self.macro.units, start=1):
            for j in range(1, unit.max_depth + 1):
                choices = tuple(ops) if j == 1 else (*ops, SKIP)
                genes.append(Gene(f"u{i}.l{j}.op", choices))
        self._init_genes(genes)

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """The published networks take 224x224 RGB images."""
        self._check_space_name(arch)
        return (3, self.image_size, self.image_size)

    def slots(self, arch: Architecture) -> list[list[str]]:
        """Per unit, the op of every slot (``skip`` included)."""
        self._check_space_name(arch)
        out: list[list[str]] = []
        pos = 0
        for unit in self.macro.units:
            out.append([str(v) for v in arch.values[pos : pos + unit.max_depth]])
            pos += unit.max_depth
        return out

    def block_specs(self, arch: Architecture) -> list[BlockSpec]:
        """Every MBConv block of the network (skipped slots omitted), first block included."""
        self.validate(arch)
        macro = self.macro
        blocks = [first_block(macro)]
        channels = macro.first_width
        for unit, ops in zip(macro.units, self.slots(arch), strict=True):
            for j, op in enumerate(ops):
                if op == SKIP:
                    continue
                kernel, expand = parse_op(op)
                stride = unit.stride if j == 0 else 1
                blocks.append(
                    make_block(macro, channels, unit.width, kernel, stride, expand, "relu6", False)
                )
                channels = unit.width
        return blocks

    def _format(self, values: tuple[Value, ...]) -> str:
        parts = []
        pos = 0
        for unit in self.macro.units:
            parts.append("-".join(str(v) for v in values[pos : pos + unit.max_depth]))
            pos += unit.max_depth
        return "|".join(parts)

    def _parse(self, text: str) -> tuple[Value, ...]:
        fields = text.split("|")
        units = self.macro.units
        if len(fields) != len(units):
            raise ArchitectureFormatError(
                f"{self.name}: expected {len(units)} units separated by '|', got {len(fields)} "
                f"in {text!r}",
                space=self.name,
            )
        values: list[Value] = []
        for i, (unit, field) in enumerate(zip(units, fields, strict=True), start=1):
            ops = [t.strip() for t in field.split("-")]
            if len(ops) != unit.max_depth:
                raise ArchitectureFormatError(
                    f"{self.name}: unit {i} must list {unit.max_depth} slot ops separated by '-' "
                    f"(use '{SKIP}' for a bypassed slot), got {len(ops)} in {field!r}",
                    space=self.name,
                )
            values.extend(ops)
        return tuple(values)


def proxyless_macro_space(key: str) -> ProxylessMacroSpace:
    """The original ProxylessNAS space of the published network ``key`` (see PROXYLESS_MACROS)."""
    return ProxylessMacroSpace(f"proxylessnas-{key}", PROXYLESS_MACROS[key])


@register_space("proxylessnas-mobile")
def _proxyless_mobile() -> SearchSpace:
    return proxyless_macro_space("mobile")


@register_space("proxylessnas-mobile14")
def _proxyless_mobile14() -> SearchSpace:
    return proxyless_macro_space("mobile14")


@register_space("proxylessnas-cpu")
def _proxyless_cpu() -> SearchSpace:
    return proxyless_macro_space("cpu")


@register_space("proxylessnas-gpu")
def _proxyless_gpu() -> SearchSpace:
    return proxyless_macro_space("gpu")
