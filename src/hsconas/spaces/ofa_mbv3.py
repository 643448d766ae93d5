"""Once-for-All MobileNetV3 spaces (``ofa-mbv3``, ``ofa-mbv3-w1.2``) and the shared elastic MBConv space.

A network of these spaces is: a 3x3 stride-2 stem, a fixed MBConv k3 e1 block, then units of
elastic depth whose layers each choose a depthwise kernel and an expand ratio, then the head. The
first layer of a unit has the unit's stride and output width; the others have stride 1 and a
residual connection. Layers past a unit's depth are *inactive* (they hold their gene's first
choice), so every network has exactly one architecture.

Genes, in order: ``resolution`` (input size in pixels), then for each unit ``u{i}``:
``u{i}.depth`` and, for each layer ``l{j}`` up to the unit's maximum depth, ``u{i}.l{j}.kernel``
and ``u{i}.l{j}.expand``. Units and layers count from 1.

Canonical string: ``r<resolution>`` then one field per unit, separated by ``|``; a unit lists its
active layers as ``k<kernel>e<expand>`` separated by ``-``, e.g.
``r224|k3e4-k5e6|k3e3-k3e3-k7e6|k5e4-k3e3|k7e6-k5e3-k3e4-k3e3|k3e6-k5e4``.

The macro-architecture (widths, strides, activations, SE placement, head) is described by the
torch-free :class:`MBNetMacro`; :meth:`ElasticMBConvSpace.block_specs` lists the concrete blocks of
an architecture, which the PyTorch builder and the ``net.config`` exporter both read. Widths follow
Once-for-All: ``make_divisible(base * width_mult, 8)`` (a rounding that never loses more than 10%),
which gives 16/16/24/40/80/112/160/960/1280 at width 1.0 and 24/24/32/48/96/136/192/1152/1536 at
width 1.2, as in the published OFA subnets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hsconas.errors import ArchitectureFormatError
from hsconas.space.channels import make_divisible
from hsconas.space.core import Architecture, Gene, SearchSpace, Value
from hsconas.space.registry import register_space

OFA_KERNELS: tuple[int, ...] = (3, 5, 7)
OFA_EXPANDS: tuple[int, ...] = (3, 4, 6)
OFA_DEPTHS: tuple[int, ...] = (2, 3, 4)
OFA_RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))
"""Input sizes of the OFA spaces: 128..224 pixels in steps of 4 (25 choices)."""

_LAYER_RE = re.compile(r"^k(\d+)e(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class UnitSpec:
    """One unit (stage) of a MobileNet-style macro-architecture.

    Attributes:
        width: output channels of every layer of the unit.
        stride: stride of the unit's first layer (the others have stride 1).
        act: activation of the unit's MBConv layers (``relu``, ``relu6``, ``h_swish``).
        use_se: whether the unit's layers use squeeze-and-excitation.
        max_depth: number of layer slots (genes) of the unit.
    """

    width: int
    stride: int
    act: str
    use_se: bool
    max_depth: int


@dataclass(frozen=True)
class MBNetMacro:
    """The fixed part of a MobileNet-family network (everything that is not a gene).

    Attributes:
        family: ``"MobileNetV3"`` (OFA MobileNetV3 head: final expand, pool, feature mix without
            BN, dropout) or ``"ProxylessNASNets"`` (feature mix with BN before the pool).
        width_mult: the width multiplier the widths were derived with (informational).
        stem_width: output channels of the 3x3 stride-2 stem convolution.
        stem_act: stem activation.
        first_width: output channels of the fixed MBConv k3 e1 block after the stem.
        first_act: activation of that block.
        units: the searchable units.
        final_expand_width: channels of the 1x1 expansion before pooling (MobileNetV3 only).
        feature_mix_width: channels of the 1x1 feature-mix convolution (the classifier's input).
        feature_mix_bn: whether the feature mix has batch norm.
        head_act: activation of the final expand and feature-mix layers.
        dropout_rate: dropout before the classifier (published default).
        bn_momentum: batch-norm momentum of the published networks.
        bn_eps: batch-norm epsilon of the published networks.
        mid_divisor: the expanded width of a layer is ``make_divisible(round(in * e), mid_divisor)``
            (8 in Once-for-All), or ``round(in * e)`` if ``None`` (original ProxylessNAS).
    """

    family: str
    width_mult: float
    stem_width: int
    stem_act: str
    first_width: int
    first_act: str
    units: tuple[UnitSpec, ...]
    final_expand_width: int | None
    feature_mix_width: int
    feature_mix_bn: bool
    head_act: str
    dropout_rate: float
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    mid_divisor: int | None = 8

    def mid_channels(self, in_channels: int, expand_ratio: float) -> int:
        """Expanded width of a layer with ``in_channels`` inputs and ratio ``expand_ratio``."""
        raw = round(in_channels * expand_ratio)
        return raw if self.mid_divisor is None else make_divisible(raw, self.mid_divisor)


@dataclass(frozen=True)
class BlockSpec:
    """One concrete MBConv block of a network (input to builders and exporters).

    Attributes:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: depthwise kernel size.
        stride: depthwise stride.
        expand_ratio: expand ratio (1 for the fixed first block: no expansion conv).
        mid_channels: expanded width (``in_channels`` when ``expand_ratio == 1``).
        act: activation name.
        use_se: squeeze-and-excitation after the depthwise convolution.
        residual: identity shortcut (stride 1 and ``in_channels == out_channels``).
    """

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    expand_ratio: float
    mid_channels: int
    act: str
    use_se: bool
    residual: bool


def make_block(
    macro: MBNetMacro,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    expand_ratio: float,
    act: str,
    use_se: bool,
) -> BlockSpec:
    """A :class:`BlockSpec` with the macro's expanded-width rule and the residual rule applied."""
    mid = in_channels if expand_ratio == 1 else macro.mid_channels(in_channels, expand_ratio)
    return BlockSpec(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel_size,
        stride=stride,
        expand_ratio=expand_ratio,
        mid_channels=mid,
        act=act,
        use_se=use_se,
        residual=stride == 1 and in_channels == out_channels,
    )


def first_block(macro: MBNetMacro) -> BlockSpec:
    """The fixed MBConv k3 e1 block that follows the stem."""
    return make_block(macro, macro.stem_width, macro.first_width, 3, 1, 1, macro.first_act, False)


def ofa_mbv3_macro(width_mult: float) -> MBNetMacro:
    """The Once-for-All MobileNetV3 macro-architecture at ``width_mult`` (1.0 or 1.2 published)."""

    def w(base: float) -> int:
        return make_divisible(base * width_mult, 8)

    acts = ("relu", "relu", "h_swish", "h_swish", "h_swish")
    ses = (False, True, False, True, True)
    units = tuple(
        UnitSpec(width=w(b), stride=s, act=a, use_se=se, max_depth=max(OFA_DEPTHS))
        for b, s, a, se in zip((24, 40, 80, 112, 160), (2, 2, 2, 1, 2), acts, ses, strict=True)
    )
    return MBNetMacro(
        family="MobileNetV3",
        width_mult=width_mult,
        stem_width=w(16),
        stem_act="h_swish",
        first_width=w(16),
        first_act="relu",
        units=units,
        final_expand_width=w(960),
        feature_mix_width=w(1280),
        feature_mix_bn=False,
        head_act="h_swish",
        # the published w1.0 subnets use dropout 0.1, the w1.2 ones 0.2
        dropout_rate=0.1 if width_mult <= 1.0 else 0.2,
        bn_momentum=0.1,
        bn_eps=1e-5,
        mid_divisor=8,
    )


class ElasticMBConvSpace(SearchSpace):
    """A MobileNet-family space with elastic resolution, unit depth, kernel and expand ratio.

    Args:
        name: registered name of the space.
        macro: the fixed macro-architecture.
        depths: allowed depths of each unit (one tuple per unit of ``macro``).
        kernels: depthwise kernel choices of every layer.
        expands: expand-ratio choices of every layer.
        resolutions: input-size choices in pixels.
        description: one-line description.
    """

    def __init__(
        self,
        name: str,
        macro: MBNetMacro,
        *,
        depths: Sequence[Sequence[int]],
        kernels: Sequence[int] = OFA_KERNELS,
        expands: Sequence[int] = OFA_EXPANDS,
        resolutions: Sequence[int] = OFA_RESOLUTIONS,
        description: str = "",
    ) -> None:
        if len(depths) != len(macro.units):
            raise ValueError(f"{name}: {len(depths)} depth lists for {len(macro.units)} units")
        for unit, ds in zip(macro.units, depths, strict=True):
            if not ds or max(ds) > unit.max_depth or min(ds) < 1:
                raise ValueError(
                    f"{name}: depths {ds} do not fit a unit of {unit.max_depth} layers"
                )
        self.name = name
        self.description = description
        self.macro = macro
        genes = [Gene("resolution", tuple(resolutions))]
        for i, (unit, ds) in enumerate(zip(macro.units, depths, strict=True), start=1):
            genes.append(Gene(f"u{i}.depth", tuple(ds)))
            for j in range(1, unit.max_depth + 1):
                genes.append(Gene(f"u{i}.l{j}.kernel", tuple(kernels)))
                genes.append(Gene(f"u{i}.l{j}.expand", tuple(expands)))
        self._init_genes(genes)
        # per unit: index of its depth gene and its max depth
        self._units = [
            (self._index[f"u{i}.depth"], unit.max_depth)
            for i, unit in enumerate(macro.units, start=1)
        ]

    # ------------------------------------------------------------------ structure
    @property
    def num_units(self) -> int:
        return len(self.macro.units)

    def active_mask(self, values: Sequence[Value]) -> tuple[bool, ...]:
        """Resolution and depths are always active; layer ``j`` of a unit iff ``j <= depth``."""
        mask = [True] * len(values)
        for di, max_depth in self._units:
            depth = values[di]
            for j in range(max_depth):
                on = isinstance(depth, int | float) and j < depth
                mask[di + 1 + 2 * j] = on
                mask[di + 2 + 2 * j] = on
        return tuple(mask)

    def size(self) -> int:
        """Distinct networks: resolutions x prod over units of sum over depths of layer choices."""
        total = len(self.gene("resolution").choices)
        for i, _ in enumerate(self.macro.units, start=1):
            per_unit = 0
            for depth in self.gene(f"u{i}.depth").choices:
                n = 1
                for j in range(1, int(depth) + 1):
                    n *= len(self.gene(f"u{i}.l{j}.kernel").choices)
                    n *= len(self.gene(f"u{i}.l{j}.expand").choices)
                per_unit += n
            total *= per_unit
        return total

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """(3, r, r) where r is the architecture's resolution gene."""
        self._check_space_name(arch)
        r = int(arch.values[self._index["resolution"]])
        return (3, r, r)

    def resolution(self, arch: Architecture) -> int:
        """The input size in pixels."""
        return self.input_shape(arch)[1]

    def depths(self, arch: Architecture) -> tuple[int, ...]:
        """The depth of every unit."""
        self._check_space_name(arch)
        return tuple(int(arch.values[di]) for di, _ in self._units)

    def layers(self, arch: Architecture) -> list[list[tuple[int, Value]]]:
        """Per unit, the active layers as ``(kernel, expand)`` pairs."""
        self._check_space_name(arch)
        out = []
        for di, _ in self._units:
            depth = int(arch.values[di])
            out.append(
                [
                    (int(arch.values[di + 1 + 2 * j]), arch.values[di + 2 + 2 * j])
                    for j in range(depth)
                ]
            )
        return out

    def block_specs(self, arch: Architecture) -> list[BlockSpec]:
        """Every MBConv block of the network, the fixed first block included, in order."""
        self.validate(arch)
        macro = self.macro
        blocks = [first_block(macro)]
        channels = macro.first_width
        for unit, layers in zip(macro.units, self.layers(arch), strict=True):
            for j, (kernel, expand) in enumerate(layers):
                stride = unit.stride if j == 0 else 1
                blocks.append(
                    make_block(
                        macro,
                        channels,
                        unit.width,
                        kernel,
                        stride,
                        float(expand),
                        unit.act,
                        unit.use_se,
                    )
                )
                channels = unit.width
        return blocks

    # ------------------------------------------------------------------ codec
    def _format(self, values: tuple[Value, ...]) -> str:
        parts = [f"r{values[self._index['resolution']]}"]
        for di, _ in self._units:
            depth = int(values[di])
            layers = [
                f"k{values[di + 1 + 2 * j]}e{_fmt_num(values[di + 2 + 2 * j])}"
                for j in range(depth)
            ]
            parts.append("-".join(layers))
        return "|".join(parts)

    def _parse(self, text: str) -> tuple[Value, ...]:
        fields = text.split("|")
        if len(fields) != 1 + self.num_units:
            raise ArchitectureFormatError(
                f"{self.name}: expected 'r<resolution>' then {self.num_units} units separated by "
                f"'|' (e.g. 'r224|k3e4-k5e6|...'), got {len(fields)} fields in {text!r}",
                space=self.name,
            )
        res_text = fields[0].strip()
        if not re.fullmatch(r"r\d+", res_text):
            raise ArchitectureFormatError(
                f"{self.name}: the first field must be the resolution as 'r<pixels>' "
                f"(e.g. 'r224'), got {res_text!r}",
                space=self.name,
                gene="resolution",
                value=res_text,
                allowed=self.gene("resolution").choices,
            )
        values: list[Value] = [g.default for g in self.full_genes]
        values[self._index["resolution"]] = int(res_text[1:])
        for i, ((di, max_depth), field) in enumerate(zip(self._units, fields[1:], strict=True), 1):
            tokens = [t.strip() for t in field.split("-")] if field.strip() else []
            if len(tokens) > max_depth:
                raise ArchitectureFormatError.bad_choice(
                    self.name, f"u{i}.depth", len(tokens), self.full_genes[di].choices
                )
            values[di] = len(tokens)
            for j, token in enumerate(tokens):
                m = _LAYER_RE.match(token)
                if m is None:
                    gene_k = self.full_genes[di + 1 + 2 * j]
                    gene_e = self.full_genes[di + 2 + 2 * j]
                    raise ArchitectureFormatError(
                        f"{self.name}: layer 'u{i}.l{j + 1}' is {token!r}; expected "
                        f"'k<kernel>e<expand>' with kernel in {_choices(gene_k)} and expand in "
                        f"{_choices(gene_e)}, e.g. 'k3e4'",
                        space=self.name,
                        gene=f"u{i}.l{j + 1}",
                        value=token,
                    )
                values[di + 1 + 2 * j] = int(m.group(1))
                values[di + 2 + 2 * j] = _parse_num(m.group(2))
        return tuple(values)

    # ------------------------------------------------------------------ features
    @property
    def feature_names(self) -> tuple[str, ...]:
        """One-hot columns, then numeric ``resolution`` (pixels) and ``u{i}.depth`` columns."""
        numeric = ("resolution", *(f"u{i}.depth" for i in range(1, self.num_units + 1)))
        return super().feature_names + numeric

    def features(self, arch: Architecture) -> np.ndarray:
        """One-hot of active genes followed by the resolution in pixels and the unit depths."""
        onehot = super().features(arch)
        numeric = [float(self.resolution(arch)), *(float(d) for d in self.depths(arch))]
        return np.concatenate([onehot, np.asarray(numeric, dtype=np.float64)])


def _fmt_num(v: Value) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _parse_num(text: str) -> int | float:
    f = float(text)
    return int(f) if f.is_integer() else f


def _choices(gene: Gene) -> str:
    return "{" + ",".join(str(c) for c in gene.choices) + "}"


def ofa_mbv3_space(width_mult: float = 1.0, name: str = "ofa-mbv3") -> ElasticMBConvSpace:
    """The Once-for-All MobileNetV3 space at ``width_mult``."""
    macro = ofa_mbv3_macro(width_mult)
    widths = "/".join(str(u.width) for u in macro.units)
    return ElasticMBConvSpace(
        name,
        macro,
        depths=[OFA_DEPTHS] * len(macro.units),
        description=(
            f"Once-for-All MobileNetV3 w{width_mult:g}: 5 units of depth {{2,3,4}} "
            f"(widths {widths}), MBConv k{{3,5,7}} x e{{3,4,6}}, resolution 128..224"
        ),
    )


@register_space("ofa-mbv3")
def _ofa_mbv3() -> SearchSpace:
    return ofa_mbv3_space(1.0, "ofa-mbv3")


@register_space("ofa-mbv3-w1.2")
def _ofa_mbv3_w12() -> SearchSpace:
    return ofa_mbv3_space(1.2, "ofa-mbv3-w1.2")
