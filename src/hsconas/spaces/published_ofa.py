"""Import of Once-for-All ``net.config``s onto the elastic spaces (``ofa-mbv3*``, ``proxylessnas``).

:func:`_import_elastic` walks the blocks of a config, assigns each to a unit of the space's macro
(a new unit where the width changes or the stride is not 1) and maps it to the unit's
``kernel``, ``expand`` and ``depth`` genes; the ``resolution`` gene is the nearest choice to the
image size. This module is torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hsconas.space.core import Value
from hsconas.spaces.ofa_mbv3 import BlockSpec, ElasticMBConvSpace, first_block
from hsconas.spaces.published_schema import (
    _check_block,
    _check_first,
    _check_stem,
    _field,
    _Mismatch,
)


def _import_elastic(space: ElasticMBConvSpace, config: Mapping[str, Any], size: int) -> list[Value]:
    macro = space.macro
    blocks = _check_stem(macro, config)
    for index, block in enumerate(blocks):
        conv = block.get("mobile_inverted_conv") if isinstance(block, Mapping) else None
        if isinstance(conv, Mapping) and conv.get("name") == "ZeroLayer":
            raise _Mismatch(0, f"block {index} is a ZeroLayer; {space.name} has no skipped layers")
    first = first_block(macro)
    _check_first(blocks[0], first, ofa_schema=True)
    values: dict[str, Value] = {"resolution": _nearest(space.full_genes[0].choices, size)}
    unit = -1
    layer = 0
    channels = first.out_channels
    for index, block in enumerate(blocks[1:], start=1):
        conv = _field(block, "mobile_inverted_conv", f"block {index}", index)
        out = _field(conv, "out_channels", f"block {index}", index)
        stride = _field(conv, "stride", f"block {index}", index)
        same_unit = unit >= 0 and out == macro.units[unit].width and stride == 1
        if same_unit and layer + 1 >= macro.units[unit].max_depth:
            raise _Mismatch(
                index,
                f"block {index} would be layer {layer + 2} of unit {unit + 1} "
                f"({out} channels), which has at most {macro.units[unit].max_depth} layers",
            )
        if same_unit:
            layer += 1
        else:
            unit, layer = unit + 1, 0
            if unit >= len(macro.units):
                raise _Mismatch(
                    index,
                    f"block {index} ({channels}->{out}) is past the last unit of {space.name}",
                )
        spec = macro.units[unit]
        kernel = _field(conv, "kernel_size", f"block {index}", index)
        expand = _field(conv, "expand_ratio", f"block {index}", index)
        gene = f"u{unit + 1}.l{layer + 1}"
        _check_choice(space, f"{gene}.kernel", kernel, index)
        _check_choice(space, f"{gene}.expand", expand, index)
        expected = BlockSpec(
            in_channels=channels,
            out_channels=spec.width,
            kernel_size=int(kernel),
            stride=spec.stride if layer == 0 else 1,
            expand_ratio=expand,
            mid_channels=macro.mid_channels(channels, expand),
            act=spec.act,
            use_se=spec.use_se,
            residual=layer > 0,
        )
        _check_block(block, index, expected, ofa_schema=True)
        values[f"{gene}.kernel"] = kernel
        values[f"{gene}.expand"] = expand
        values[f"u{unit + 1}.depth"] = layer + 1
        channels = spec.width
    if unit != len(macro.units) - 1:
        raise _Mismatch(
            len(blocks),
            f"the config ends in unit {unit + 1} ({channels} channels), but {space.name} has "
            f"{len(macro.units)} units (last width {macro.units[-1].width})",
        )
    for u in range(1, len(macro.units) + 1):
        depth_gene = space.gene(f"u{u}.depth")
        depth = values.get(depth_gene.name)
        if depth not in depth_gene.choices:
            raise _Mismatch(
                len(blocks),
                f"unit {u} ({macro.units[u - 1].width} channels) has {depth} blocks; "
                f"{space.name} allows {', '.join(str(c) for c in depth_gene.choices)}",
            )
    return [values.get(g.name, g.default) for g in space.full_genes]


def _check_choice(space: ElasticMBConvSpace, gene_name: str, value: object, index: int) -> None:
    gene = space.gene(gene_name)
    if value not in gene.choices:
        shown = ", ".join(str(c) for c in gene.choices)
        raise _Mismatch(
            index,
            f"block {index} ({gene_name}) has {gene_name.rsplit('.', 1)[1]} {value!r}; "
            f"{space.name} allows {shown}",
        )


def _nearest(choices: tuple[Value, ...], size: int) -> Value:
    """The choice closest to ``size`` (the larger one on a tie)."""
    return min(choices, key=lambda c: (abs(float(c) - size), -float(c)))
