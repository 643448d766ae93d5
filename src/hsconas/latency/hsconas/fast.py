"""Fast block decomposition of HSCoNAS-family networks for the hardware model (an adapter).

:func:`hsconas.latency.hsconas.model.network_features` decomposes a network by a forward pass on the
meta device (about 0.2 s per network on a loaded 2-core machine), which dominates a search that
predicts thousands of latencies. For the ``hsconas`` space family the input shape of every block
follows from :meth:`HSCoNASSpace.channel_plan`, so the same block keys (class, input shape, repr
hash: :func:`hsconas.latency.hsconas.lut.block_key`) can be computed without a forward pass. MACs are
counted once per distinct block and summed.

:func:`fast_features_agree` checks the shortcut against the generic decomposition; the pipeline
uses it only when they agree, and falls back to the generic path otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hsconas.latency.hsconas.lut import (
    BlockCall,
    block_key,
    block_modules,
    collect_blocks,
    meta_build,
)
from hsconas.latency.hsconas.model import HSCoNASModel, NetworkFeatures, network_features
from hsconas.space import Architecture, SearchSpace, get_space
from hsconas.spaces.hsconas_space import HSCoNASSpace

__all__ = [
    "FastHSCoNASModel",
    "all_layer_blocks",
    "fast_block_calls",
    "fast_collect_blocks",
    "fast_features_agree",
    "fast_network_features",
    "supports_fast_path",
]

_MACS: dict[str, int] = {}


def supports_fast_path(space: SearchSpace | str) -> bool:
    """Whether ``space`` is of the HSCoNAS family (the shortcut knows its block shapes)."""
    sp = get_space(space) if isinstance(space, str) else space
    return isinstance(sp, HSCoNASSpace)


def _block_shapes(space: HSCoNASSpace, arch: Architecture) -> list[tuple[int, ...]]:
    """Input shape of each block of the built network, in ``block_modules`` order."""
    plan = space.channel_plan(arch)
    size = space.input_size
    shapes: list[tuple[int, ...]] = [(space.in_channels, size, size)]
    size = math.ceil(size / space.stem_stride)
    last = space.stem_width
    for lp in plan:
        shapes.append((lp.in_channels, lp.input_size, lp.input_size))
        size = math.ceil(lp.input_size / lp.stride)
        last = lp.out_channels
    shapes.append((last, size, size))  # head
    shapes.append((space.head_width, size, size))  # pool
    shapes.append((space.head_width,))  # dropout (identity)
    shapes.append((space.head_width,))  # classifier
    return shapes


_LAYER_CALLS: dict[Any, BlockCall] = {}
_OUTER_CALLS: dict[Any, list[BlockCall]] = {}


def _layer_call(plan: Any, index: int) -> BlockCall:
    """The block call of one searchable layer (cached per layer plan and position)."""
    from hsconas.nn.builders.hsconas_net import make_layer

    k = (plan, index)
    if k not in _LAYER_CALLS:
        with torch.device("meta"):
            module = make_layer(plan)
        shape = (plan.in_channels, plan.input_size, plan.input_size)
        _LAYER_CALLS[k] = BlockCall(
            block_key(module, shape), f"layers.{index}", module, shape, "float32"
        )
    return _LAYER_CALLS[k]


def fast_block_calls(arch: Architecture) -> list[BlockCall]:
    """Block calls of ``arch``'s network (meta-device modules) without a forward pass.

    Searchable layers are built one at a time from the channel plan and cached per plan; the
    stem, head, pooling and classifier are taken from one built network per last-unit width.
    """
    space = get_space(arch.space)
    if not isinstance(space, HSCoNASSpace):
        raise TypeError(f"{arch.space}: the fast path covers the hsconas space family only")
    plan = space.channel_plan(arch)
    last = plan[-1].out_channels if plan else space.stem_width
    outer_key = (space.name, last)
    if outer_key not in _OUTER_CALLS:
        blocks = block_modules(meta_build(arch))
        shapes = _block_shapes(space, arch)
        if len(blocks) != len(shapes):
            raise RuntimeError(
                f"{arch.space}: {len(blocks)} blocks but {len(shapes)} shapes; the builder changed"
            )
        _OUTER_CALLS[outer_key] = [
            BlockCall(block_key(m, sh), name, m, sh, "float32")
            for (name, m), sh in zip(blocks, shapes, strict=True)
            if not name.startswith("layers.")
        ]
    outer = _OUTER_CALLS[outer_key]
    layers = [_layer_call(lp, i) for i, lp in enumerate(plan)]
    return [outer[0], *layers, *outer[1:]]


def _macs_of(call: BlockCall) -> int:
    """Conv + linear MACs of one block call (meta device, same convention as ``count_macs``)."""
    if call.key in _MACS:
        return _MACS[call.key]
    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    mods = [call.module] if not list(call.module.children()) else list(call.module.modules())
    handles = [m.register_forward_hook(hook) for m in mods if isinstance(m, nn.Conv2d | nn.Linear)]
    tensors = [*call.module.parameters(), *call.module.buffers()]
    device = tensors[0].device if tensors else torch.device("meta")
    was = call.module.training
    call.module.eval()
    try:
        with torch.inference_mode():
            call.module(torch.zeros(1, *call.input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        call.module.train(was)
    _MACS[call.key] = int(total)
    return _MACS[call.key]


def fast_network_features(arch: Architecture) -> NetworkFeatures:
    """Same as :func:`hsconas.latency.hsconas.model.network_features` for the hsconas family."""
    calls = fast_block_calls(arch)
    macs = sum(_macs_of(c) for c in calls)
    heights = tuple(int(c.input_shape[1]) if len(c.input_shape) >= 2 else 1 for c in calls)
    return NetworkFeatures(tuple(c.key for c in calls), heights, macs / 1e6)


def fast_features_agree(space: SearchSpace, n: int = 3, seed: int = 0) -> bool:
    """Whether the shortcut reproduces the generic decomposition on ``n`` sampled networks."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        arch = space.sample(rng)
        a, b = fast_network_features(arch), network_features(arch)
        if a.block_keys != b.block_keys or a.block_heights != b.block_heights:
            return False
        if not math.isclose(a.macs_m, b.macs_m, rel_tol=1e-9):
            return False
    return True


def fast_collect_blocks(
    space: SearchSpace,
    *,
    seed: int = 0,
    max_samples: int = 2000,
    patience: int = 150,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, BlockCall]:
    """Distinct blocks of ``space`` by sampling (:func:`hsconas.latency.hsconas.lut.collect_blocks`),
    with the fast decomposition."""
    return collect_blocks(
        space,
        seed=seed,
        max_samples=max_samples,
        patience=patience,
        progress=progress,
        block_calls=fast_block_calls,
    )


def all_layer_blocks(space: HSCoNASSpace) -> dict[str, BlockCall]:
    """Every distinct searchable-layer block of ``space`` (restrictions honoured), enumerated.

    A layer's block depends only on its op, its channel factor, its unit's width factor and (for
    the first layer of a unit) the previous unit's width factor, so the blocks can be listed
    exhaustively without sampling networks. Random sampling (:func:`fast_collect_blocks`) can miss
    rare combinations; the union of both is complete.
    """
    from hsconas.nn.builders.hsconas_net import make_layer
    from hsconas.space.channels import make_divisible
    from hsconas.spaces.hsconas_space import LayerPlan, op_kernel_expand

    def unit_out(i: int) -> list[int]:
        factors = space.gene(f"u{i}.width").choices
        return sorted({make_divisible(space.unit_widths[i - 1] * float(f), 8) for f in factors})

    found: dict[str, BlockCall] = {}
    size = math.ceil(space.input_size / space.stem_stride)
    index = 0
    for i, (depth, stride) in enumerate(zip(space.unit_depths, space.unit_strides, strict=True), 1):
        outs = unit_out(i)
        for j in range(1, depth + 1):
            if j == 1:  # in: the previous unit's (or the stem's) width; out: this unit's
                ins = [space.stem_width] if i == 1 else unit_out(i - 1)
                pairs = [(cin, cout) for cin in ins for cout in outs]
            else:  # inside a unit, in = out = the unit's width
                pairs = [(c, c) for c in outs]
            s = stride if j == 1 else 1
            ops = space.gene(f"u{i}.l{j}.op").choices
            factors = space.gene(f"u{i}.l{j}.factor").choices
            for cin, cout in pairs:
                for op in ops:
                    if op == "skip":
                        plans = [LayerPlan(f"u{i}.l{j}", "skip", cin, 0, cin, 0, 1, size)]
                    else:
                        k, e = op_kernel_expand(str(op))
                        plans = [
                            LayerPlan(
                                f"u{i}.l{j}",
                                str(op),
                                cin,
                                make_divisible(cin * e * float(f), 8),
                                cout,
                                k,
                                s,
                                size,
                            )
                            for f in factors
                        ]
                    for plan in plans:
                        with torch.device("meta"):
                            module = make_layer(plan)
                        shape = (plan.in_channels, size, size)
                        key = block_key(module, shape)
                        if key not in found:
                            found[key] = BlockCall(key, f"layers.{index}", module, shape, "float32")
            size = math.ceil(size / s)
            index += 1
    return found


@dataclass
class FastHSCoNASModel(HSCoNASModel):
    """:class:`HSCoNASModel` whose block decomposition uses :func:`fast_network_features`.

    Same parameters, file format and predictions; only :meth:`features` is faster.
    """

    def features(self, arch: Architecture) -> NetworkFeatures:
        """Block decomposition and MACs of ``arch`` (cached per architecture)."""
        self.check_compatible(space=arch.space)
        k = (arch, self.lut.resolution)
        if k not in self._cache:
            self._cache[k] = fast_network_features(arch)
        return self._cache[k]
