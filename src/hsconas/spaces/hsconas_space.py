"""The HSCoNAS space family: a single-path MBConv space with dynamic channel scaling.

The macro network is a stem convolution, units of searchable layers and a 1x1 head convolution
followed by pooling and a classifier. Every searchable layer picks an op and a channel factor;
every unit picks an output-width factor:

- ``u{i}.l{j}.op``: one of ``mb_k{3,5,7}_e{3,6}`` (an MBConv with that depthwise kernel and
  expansion) or ``skip`` (identity). The first layer of a unit changes stride or width, so ``skip``
  is not one of its choices.
- ``u{i}.l{j}.factor``: the layer's channel scaling factor; the expanded (middle) width is
  ``make_divisible(in_channels * expand * factor, 8)``. Inactive when the op is ``skip``.
- ``u{i}.width``: the unit's output-width factor; its channels are
  ``make_divisible(base_width * factor, 8)``.

The widest tensors are at factor 1.0, so a supernet can hold the widest weights and slice their
leading channels for any member.

Canonical string: the unit width factors, then one ``|``-separated group per unit of
``-``-separated layers, each ``<op>x<factor>`` or ``skip``::

    w1.0,0.75,1.0|mb_k3_e6x0.75-skip|mb_k5_e3x1.0-mb_k7_e6x0.5-skip
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hsconas.errors import ArchitectureFormatError, InvalidArchitectureError
from hsconas.space.channels import make_divisible, parse_number
from hsconas.space.core import Architecture, Gene, SearchSpace, Value
from hsconas.space.registry import register_space

HSCONAS_OPS: tuple[str, ...] = (
    "mb_k3_e3", "mb_k3_e6", "mb_k5_e3", "mb_k5_e6", "mb_k7_e3", "mb_k7_e6", "skip",
)  # fmt: skip
HSCONAS_LAYER_FACTORS: tuple[float, ...] = (0.5, 0.625, 0.75, 0.875, 1.0)
HSCONAS_UNIT_FACTORS: tuple[float, ...] = (0.5, 0.75, 1.0)

_OP_RE = re.compile(r"^mb_k(\d+)_e(\d+)$")


def op_kernel_expand(op: str) -> tuple[int, int]:
    """(depthwise kernel, expand ratio) of an ``mb_k{k}_e{e}`` op; (0, 0) for ``skip``."""
    if op == "skip":
        return 0, 0
    m = _OP_RE.match(op)
    if m is None:
        raise ValueError(f"unknown hsconas op {op!r}; ops are {', '.join(HSCONAS_OPS)}")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class LayerPlan:
    """Channels and shape of one searchable layer of an HSCoNAS network.

    Attributes:
        name: ``u{i}.l{j}``.
        op: the layer's op (``skip`` for identity).
        in_channels: input channels.
        mid_channels: expanded (depthwise) channels; 0 for ``skip``.
        out_channels: output channels (equal to ``in_channels`` for ``skip``).
        kernel: depthwise kernel size; 0 for ``skip``.
        stride: spatial stride (1 for ``skip``).
        input_size: input height (= width) in pixels.
    """

    name: str
    op: str
    in_channels: int
    mid_channels: int
    out_channels: int
    kernel: int
    stride: int
    input_size: int


class HSCoNASSpace(SearchSpace):
    """Single-path MBConv space with per-layer channel scaling and per-unit width factors.

    Args:
        name: registered name of the space.
        input_size: input height and width in pixels.
        in_channels: input image channels.
        num_classes: classifier outputs.
        stem_width: output channels of the 3x3 stem convolution.
        unit_widths: base output channels of each unit (at width factor 1.0).
        unit_depths: searchable layers per unit.
        unit_strides: stride of the first layer of each unit.
        layer_factors: choices of the per-layer channel scaling factor.
        unit_factors: choices of the per-unit output-width factor.
        head_width: output channels of the 1x1 head convolution before pooling.
        stem_stride: stride of the stem convolution.
    """

    def __init__(
        self,
        name: str,
        input_size: int,
        in_channels: int,
        num_classes: int,
        stem_width: int,
        unit_widths: Sequence[int],
        unit_depths: Sequence[int],
        unit_strides: Sequence[int],
        layer_factors: Sequence[float] = HSCONAS_LAYER_FACTORS,
        unit_factors: Sequence[float] = HSCONAS_UNIT_FACTORS,
        head_width: int = 1504,
        *,
        stem_stride: int = 2,
    ) -> None:
        if not len(unit_widths) == len(unit_depths) == len(unit_strides):
            raise ValueError(
                f"{name}: unit_widths, unit_depths and unit_strides must have equal lengths, got "
                f"{len(unit_widths)}, {len(unit_depths)}, {len(unit_strides)}"
            )
        if any(d < 1 for d in unit_depths):
            raise ValueError(f"{name}: every unit needs at least one layer, got {unit_depths}")
        if any(s not in (1, 2) for s in (*unit_strides, stem_stride)):
            raise ValueError(f"{name}: strides must be 1 or 2")
        if not layer_factors or not unit_factors:
            raise ValueError(f"{name}: layer_factors and unit_factors must not be empty")
        if max(layer_factors) > 1.0 or max(unit_factors) > 1.0 or min(layer_factors) <= 0:
            raise ValueError(f"{name}: channel factors must lie in (0, 1]")
        self.name = name
        self.input_size = int(input_size)
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.stem_width = int(stem_width)
        self.stem_stride = int(stem_stride)
        self.unit_widths = tuple(int(w) for w in unit_widths)
        self.unit_depths = tuple(int(d) for d in unit_depths)
        self.unit_strides = tuple(int(s) for s in unit_strides)
        self.layer_factors = tuple(float(f) for f in layer_factors)
        self.unit_factors = tuple(float(f) for f in unit_factors)
        self.head_width = int(head_width)
        self.description = (
            f"HSCoNAS single-path MBConv space, {input_size}x{input_size}x{in_channels} input, "
            f"{len(self.unit_widths)} units of depth {'/'.join(map(str, self.unit_depths))}, "
            f"ops {{MB k3/k5/k7 x e3/e6, skip}} x channel factor {self.layer_factors}"
        )
        genes: list[Gene] = []
        for i, depth in enumerate(self.unit_depths, 1):
            genes.append(Gene(f"u{i}.width", self.unit_factors))
            for j in range(1, depth + 1):
                ops = HSCONAS_OPS if j > 1 else tuple(o for o in HSCONAS_OPS if o != "skip")
                genes.append(Gene(f"u{i}.l{j}.op", ops))
                genes.append(Gene(f"u{i}.l{j}.factor", self.layer_factors))
        self._init_genes(genes)

    # ------------------------------------------------------------------ structure
    def layer_names(self) -> list[str]:
        """``u{i}.l{j}`` of every searchable layer, in network order."""
        return [f"u{i}.l{j}" for i, d in enumerate(self.unit_depths, 1) for j in range(1, d + 1)]

    def active_mask(self, values: Sequence[Value]) -> tuple[bool, ...]:
        """A layer's factor gene is inactive when its op is ``skip``."""
        mask = [True] * len(values)
        for layer in self.layer_names():
            if values[self._index[f"{layer}.op"]] == "skip":
                mask[self._index[f"{layer}.factor"]] = False
        return tuple(mask)

    def _check(self, values: tuple[Value, ...]) -> None:
        # Guards restricted or hand-made gene lists: a unit's first layer changes shape.
        for i in range(1, len(self.unit_depths) + 1):
            if values[self._index[f"u{i}.l1.op"]] == "skip":
                allowed = [o for o in HSCONAS_OPS if o != "skip"]
                raise InvalidArchitectureError(
                    f"{self.name}: layer 'u{i}.l1.op' cannot be 'skip' (the first layer of a unit "
                    f"changes stride or width); allowed: {', '.join(allowed)}",
                    space=self.name,
                    gene=f"u{i}.l1.op",
                    value="skip",
                    allowed=allowed,
                )

    def size(self) -> int:
        """Distinct networks: per unit, width choices x per layer (MB ops x factors [+ skip])."""
        total = 1
        for gene in self.genes:
            name = gene.name
            if name.endswith(".width"):
                total *= len(gene.choices)
            elif name.endswith(".op"):
                factor = self.genes[self._index[name[: -len(".op")] + ".factor"]]
                n_mb = sum(1 for c in gene.choices if c != "skip")
                total *= n_mb * len(factor.choices) + (1 if "skip" in gene.choices else 0)
        return total

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """(channels, height, width) of the variant's input images."""
        return (self.in_channels, self.input_size, self.input_size)

    def unit_channels(self, arch: Architecture) -> list[int]:
        """Output channels of each unit for ``arch``."""
        d = self.as_dict(arch)
        return [
            make_divisible(base * float(d[f"u{i}.width"]), 8)
            for i, base in enumerate(self.unit_widths, 1)
        ]

    def channel_plan(self, arch: Architecture) -> list[LayerPlan]:
        """Per searchable layer: op, in/mid/out channels, kernel, stride and input size.

        Torch-free; latency tables and supernets use it to size their blocks.
        """
        self._check_space_name(arch)
        d = self.as_dict(arch)
        size = math.ceil(self.input_size / self.stem_stride)
        channels = self.stem_width
        plan: list[LayerPlan] = []
        for i, (out, depth, stride) in enumerate(
            zip(self.unit_channels(arch), self.unit_depths, self.unit_strides, strict=True), 1
        ):
            for j in range(1, depth + 1):
                op = str(d[f"u{i}.l{j}.op"])
                s = stride if j == 1 else 1
                if op == "skip":
                    plan.append(LayerPlan(f"u{i}.l{j}", op, channels, 0, channels, 0, 1, size))
                    continue
                kernel, expand = op_kernel_expand(op)
                mid = make_divisible(channels * expand * float(d[f"u{i}.l{j}.factor"]), 8)
                plan.append(LayerPlan(f"u{i}.l{j}", op, channels, mid, out, kernel, s, size))
                size = math.ceil(size / s)
                channels = out
        return plan

    # ------------------------------------------------------------------ features
    @property
    def feature_names(self) -> tuple[str, ...]:
        """One-hot columns, then numeric columns per layer (kernel, expand x factor, mid
        channels) and per unit (output channels)."""
        numeric = [
            f"{layer}:{col}" for layer in self.layer_names() for col in ("kernel", "expand", "mid")
        ]
        numeric += [f"u{i}:channels" for i in range(1, len(self.unit_widths) + 1)]
        return super().feature_names + tuple(numeric)

    def features(self, arch: Architecture) -> np.ndarray:
        """One-hot encoding plus numeric columns (0 for ``skip`` layers), float64."""
        onehot = super().features(arch)
        d = self.as_dict(arch)
        numeric: list[float] = []
        for lp in self.channel_plan(arch):
            _, expand = op_kernel_expand(lp.op)
            factor = float(d[f"{lp.name}.factor"]) if lp.op != "skip" else 0.0
            numeric += [float(lp.kernel), expand * factor, float(lp.mid_channels)]
        numeric += [float(c) for c in self.unit_channels(arch)]
        return np.concatenate([onehot, np.asarray(numeric, dtype=np.float64)])

    # ------------------------------------------------------------------ codec
    def _format(self, values: tuple[Value, ...]) -> str:
        d = dict(zip(self.gene_names, values, strict=True))
        n = len(self.unit_depths)
        widths = ",".join(str(float(d[f"u{i}.width"])) for i in range(1, n + 1))
        units = []
        for i, depth in enumerate(self.unit_depths, 1):
            layers = []
            for j in range(1, depth + 1):
                op = str(d[f"u{i}.l{j}.op"])
                layers.append(op if op == "skip" else f"{op}x{float(d[f'u{i}.l{j}.factor'])}")
            units.append("-".join(layers))
        return "|".join([f"w{widths}", *units])

    def _parse(self, text: str) -> tuple[Value, ...]:
        parts = text.split("|")
        n = len(self.unit_depths)
        example = "w1.0,...|mb_k3_e6x0.75-skip-...|..."
        if len(parts) != n + 1 or not parts[0].startswith("w"):
            raise ArchitectureFormatError(
                f"{self.name}: cannot parse {text!r}; expected {n} unit width factors and {n} "
                f"'|'-separated units, like {example}",
                space=self.name,
            )
        widths = parts[0][1:].split(",")
        if len(widths) != n:
            raise ArchitectureFormatError(
                f"{self.name}: expected {n} unit width factors, got {len(widths)} in {parts[0]!r}",
                space=self.name,
            )
        genes: dict[str, Value] = {}
        for i, w in enumerate(widths, 1):
            genes[f"u{i}.width"] = parse_number(self.name, f"u{i}.width", w)
        for i, (unit, depth) in enumerate(zip(parts[1:], self.unit_depths, strict=True), 1):
            layers = unit.split("-")
            if len(layers) != depth:
                raise ArchitectureFormatError(
                    f"{self.name}: unit u{i} needs {depth} '-'-separated layers, got "
                    f"{len(layers)} in {unit!r}",
                    space=self.name,
                )
            for j, layer in enumerate(layers, 1):
                if layer == "skip":
                    genes[f"u{i}.l{j}.op"] = "skip"
                    continue
                op, sep, factor = layer.rpartition("x")
                if not sep:
                    raise ArchitectureFormatError(
                        f"{self.name}: layer 'u{i}.l{j}' is {layer!r}; expected '<op>x<factor>' "
                        f"(e.g. mb_k3_e6x0.75) or 'skip'",
                        space=self.name,
                        gene=f"u{i}.l{j}.op",
                    )
                genes[f"u{i}.l{j}.op"] = op
                genes[f"u{i}.l{j}.factor"] = parse_number(self.name, f"u{i}.l{j}.factor", factor)
        return tuple(genes.get(g.name, g.default) for g in self.full_genes)


@register_space("hsconas")
def _hsconas() -> SearchSpace:
    return HSCoNASSpace(
        "hsconas",
        input_size=224,
        in_channels=3,
        num_classes=1000,
        stem_width=16,
        unit_widths=(24, 32, 64, 112, 184, 352),
        unit_depths=(4, 4, 4, 4, 4, 1),
        unit_strides=(2, 2, 2, 1, 2, 1),
        head_width=1504,
        stem_stride=2,
    )


@register_space("hsconas-cifar")
def _hsconas_cifar() -> SearchSpace:
    return HSCoNASSpace(
        "hsconas-cifar",
        input_size=32,
        in_channels=3,
        num_classes=10,
        stem_width=16,
        unit_widths=(24, 32, 64, 96, 160, 320),
        unit_depths=(2, 3, 4, 3, 3, 1),
        unit_strides=(1, 2, 2, 1, 2, 1),
        head_width=1280,
        stem_stride=1,
    )


@register_space("hsconas-digits")
def _hsconas_digits() -> SearchSpace:
    return HSCoNASSpace(
        "hsconas-digits",
        input_size=8,
        in_channels=1,
        num_classes=10,
        stem_width=16,
        unit_widths=(16, 24, 32),
        unit_depths=(2, 3, 3),
        unit_strides=(1, 2, 2),
        head_width=128,
        stem_stride=1,
    )
