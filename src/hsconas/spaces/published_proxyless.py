"""Import and export of the original ProxylessNAS ``net.config``s (``proxylessnas-<net>`` spaces).

These networks list one block per slot of the macro (21 slots), skipped slots as ``ZeroLayer``s;
:func:`_import_proxyless` maps each slot to its ``op`` gene and :func:`_proxyless_blocks_json`
writes the slots back in that schema. This module is torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hsconas.space.core import Architecture, Value
from hsconas.spaces.ofa_mbv3 import BlockSpec, first_block
from hsconas.spaces.proxylessnas import SKIP, ProxylessMacroSpace, parse_op
from hsconas.spaces.published_schema import (
    _block_json,
    _check_block,
    _check_first,
    _check_stem,
    _field,
    _identity_json,
    _Mismatch,
)


def _import_proxyless(space: ProxylessMacroSpace, config: Mapping[str, Any]) -> list[Value]:
    macro = space.macro
    blocks = _check_stem(macro, config)
    first = first_block(macro)
    _check_first(blocks[0], first, ofa_schema=False)
    n_slots = sum(u.max_depth for u in macro.units)
    if len(blocks) != 1 + n_slots:
        raise _Mismatch(
            1,
            f"{space.name} networks have {1 + n_slots} blocks (the first block and "
            f"{n_slots} slots, ZeroLayers included), the config has {len(blocks)}",
        )
    values: list[Value] = []
    channels = first.out_channels
    index = 1
    for u, spec in enumerate(macro.units, start=1):
        for j in range(spec.max_depth):
            block = blocks[index]
            gene = space.gene(f"u{u}.l{j + 1}.op")
            conv = _field(block, "mobile_inverted_conv", f"block {index}", index)
            if _field(conv, "name", f"block {index}", index) == "ZeroLayer":
                if SKIP not in gene.choices:
                    raise _Mismatch(
                        index,
                        f"block {index} ({gene.name}) is a ZeroLayer, but the first slot of a "
                        f"unit changes width or stride and cannot be skipped",
                    )
                values.append(SKIP)
                index += 1
                continue
            kernel = _field(conv, "kernel_size", f"block {index}", index)
            expand = _field(conv, "expand_ratio", f"block {index}", index)
            op = f"k{kernel}e{expand}"
            if op not in gene.choices:
                shown = ", ".join(str(c) for c in gene.choices)
                raise _Mismatch(
                    index, f"block {index} ({gene.name}) is {op}; {space.name} allows {shown}"
                )
            stride = spec.stride if j == 0 else 1
            expected = BlockSpec(
                channels,
                spec.width,
                int(kernel),
                stride,
                expand,
                macro.mid_channels(channels, expand),
                spec.act,
                False,
                stride == 1 and channels == spec.width,
            )
            _check_block(block, index, expected, ofa_schema=False)
            values.append(op)
            channels = spec.width
            index += 1
    return values


def _proxyless_blocks_json(space: ProxylessMacroSpace, arch: Architecture) -> list[dict[str, Any]]:
    macro = space.macro
    first = first_block(macro)
    out = [_block_json(first, ofa_schema=False)]
    channels = first.out_channels
    for spec, ops in zip(macro.units, space.slots(arch), strict=True):
        for j, op in enumerate(ops):
            if op == SKIP:
                out.append(
                    {
                        "name": "MobileInvertedResidualBlock",
                        "mobile_inverted_conv": {"name": "ZeroLayer", "stride": 1},
                        "shortcut": _identity_json(channels, ofa_schema=False),
                    }
                )
                continue
            kernel, expand = parse_op(op)
            stride = spec.stride if j == 0 else 1
            block = BlockSpec(
                channels,
                spec.width,
                kernel,
                stride,
                expand,
                macro.mid_channels(channels, expand),
                spec.act,
                False,
                stride == 1 and channels == spec.width,
            )
            out.append(_block_json(block, ofa_schema=False))
            channels = spec.width
    return out
