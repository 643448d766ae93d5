"""The layers of a published ``net.config`` that every MobileNet-like family shares.

Reading: checks of the stem (``first_conv``), of one ``MobileInvertedResidualBlock`` against the
block a space would build, and of the head (``final_expand_layer``, ``feature_mix_layer``,
``classifier``); a config that does not fit raises :class:`_Mismatch`, ranked by how far it got.
Writing: the JSON of those layers in the OFA schema or the original ProxylessNAS schema. The
per-family block walks live in :mod:`hsconas.spaces.published_ofa` and
:mod:`hsconas.spaces.published_proxyless`, the entry points in :mod:`hsconas.spaces.published`.
This module is torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hsconas.spaces.ofa_mbv3 import BlockSpec, MBNetMacro


class _Mismatch(Exception):
    """A config that does not fit one candidate space; ``progress`` ranks how far it got."""

    def __init__(self, progress: int, message: str) -> None:
        self.progress = progress
        super().__init__(message)


# ---------------------------------------------------------------------- import


def _field(layer: Mapping[str, Any], key: str, where: str, progress: int) -> Any:
    if not isinstance(layer, Mapping):
        raise _Mismatch(progress, f"{where} must be a JSON object, got {type(layer).__name__}")
    if key not in layer:
        raise _Mismatch(progress, f"{where} has no {key!r}")
    return layer[key]


def _expect(actual: object, expected: object, what: str, progress: int) -> None:
    if actual != expected:
        raise _Mismatch(progress, f"{what} is {actual!r}, expected {expected!r}")


def _check_stem(macro: MBNetMacro, config: Mapping[str, Any]) -> list[Any]:
    stem = _field(config, "first_conv", "the config", 0)
    _expect(_field(stem, "out_channels", "first_conv", 0), macro.stem_width, "first_conv width", 0)
    _expect(_field(stem, "kernel_size", "first_conv", 0), 3, "first_conv kernel_size", 0)
    _expect(_field(stem, "stride", "first_conv", 0), 2, "first_conv stride", 0)
    blocks = _field(config, "blocks", "the config", 0)
    if not isinstance(blocks, list) or not blocks:
        raise _Mismatch(0, "'blocks' must be a non-empty list")
    return blocks


def _check_block(
    block: Mapping[str, Any], index: int, expected: BlockSpec, *, ofa_schema: bool
) -> None:
    """Compare published block ``index`` with the block the space would build there."""
    where = f"block {index}"
    conv = _field(block, "mobile_inverted_conv", where, index)
    name = _field(conv, "name", where, index)
    if name != "MBInvertedConvLayer":
        raise _Mismatch(index, f"{where} is a {name}, expected an MBInvertedConvLayer")
    checks: list[tuple[str, object]] = [
        ("in_channels", expected.in_channels),
        ("out_channels", expected.out_channels),
        ("stride", expected.stride),
    ]
    for key, value in checks:
        _expect(_field(conv, key, where, index), value, f"{where} {key}", index)
    if ofa_schema:
        if conv.get("act_func", expected.act) != expected.act:
            raise _Mismatch(
                index, f"{where} act_func is {conv.get('act_func')!r}, expected {expected.act!r}"
            )
        if bool(conv.get("use_se", expected.use_se)) != expected.use_se:
            raise _Mismatch(
                index, f"{where} use_se is {conv.get('use_se')!r}, expected {expected.use_se}"
            )
        mid = conv.get("mid_channels")
        if mid is not None and expected.expand_ratio != 1 and mid != expected.mid_channels:
            raise _Mismatch(
                index, f"{where} mid_channels is {mid}, expected {expected.mid_channels}"
            )
    shortcut = block.get("shortcut")
    if (shortcut is not None) != expected.residual:
        want = "an identity shortcut" if expected.residual else "no shortcut"
        raise _Mismatch(index, f"{where} shortcut is {shortcut!r}, expected {want}")


def _check_first(block: Mapping[str, Any], first: BlockSpec, *, ofa_schema: bool) -> None:
    conv = _field(block, "mobile_inverted_conv", "block 0", 1)
    _expect(_field(conv, "kernel_size", "block 0", 1), 3, "block 0 kernel_size", 1)
    _expect(_field(conv, "expand_ratio", "block 0", 1), 1, "block 0 expand_ratio", 1)
    _check_block(block, 0, first, ofa_schema=ofa_schema)


def _import_head(macro: MBNetMacro, config: Mapping[str, Any]) -> int:
    progress = 1000
    last = macro.units[-1].width
    if macro.final_expand_width is not None:
        fe = _field(config, "final_expand_layer", "the config", progress)
        _expect(
            _field(fe, "in_channels", "final_expand_layer", progress),
            last,
            "final_expand_layer in_channels",
            progress,
        )
        _expect(
            _field(fe, "out_channels", "final_expand_layer", progress),
            macro.final_expand_width,
            "final_expand_layer width",
            progress,
        )
        last = macro.final_expand_width
    fm = _field(config, "feature_mix_layer", "the config", progress)
    _expect(
        _field(fm, "in_channels", "feature_mix_layer", progress),
        last,
        "feature_mix_layer in_channels",
        progress,
    )
    _expect(
        _field(fm, "out_channels", "feature_mix_layer", progress),
        macro.feature_mix_width,
        "feature_mix_layer width",
        progress,
    )
    cls = _field(config, "classifier", "the config", progress)
    _expect(
        _field(cls, "in_features", "classifier", progress),
        macro.feature_mix_width,
        "classifier in_features",
        progress,
    )
    n = _field(cls, "out_features", "classifier", progress)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise _Mismatch(progress, f"classifier out_features must be a positive integer, got {n!r}")
    return n


# ---------------------------------------------------------------------- export


def _conv_json(
    in_channels: int, out_channels: int, kernel: int, stride: int, act: str, use_bn: bool
) -> dict[str, Any]:
    return {
        "name": "ConvLayer",
        "kernel_size": kernel,
        "stride": stride,
        "dilation": 1,
        "groups": 1,
        "bias": False,
        "has_shuffle": False,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "use_bn": use_bn,
        "act_func": act,
        "dropout_rate": 0,
        "ops_order": "weight_bn_act",
    }


def _identity_json(channels: int, *, ofa_schema: bool) -> dict[str, Any]:
    ch: int | list[int] = [channels] if ofa_schema else channels
    return {
        "name": "IdentityLayer",
        "in_channels": ch,
        "out_channels": ch,
        "use_bn": False,
        "act_func": None,
        "dropout_rate": 0,
        "ops_order": "weight_bn_act",
    }


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _block_json(b: BlockSpec, *, ofa_schema: bool) -> dict[str, Any]:
    conv: dict[str, Any] = {
        "name": "MBInvertedConvLayer",
        "in_channels": b.in_channels,
        "out_channels": b.out_channels,
        "kernel_size": b.kernel_size,
        "stride": b.stride,
        "expand_ratio": _num(b.expand_ratio),
    }
    if ofa_schema:
        conv["mid_channels"] = None if b.expand_ratio == 1 else b.mid_channels
        conv["act_func"] = b.act
        conv["use_se"] = b.use_se
    return {
        "name": "MobileInvertedResidualBlock",
        "mobile_inverted_conv": conv,
        "shortcut": _identity_json(b.out_channels, ofa_schema=ofa_schema) if b.residual else None,
    }


def _net_json(macro: MBNetMacro, blocks: list[dict[str, Any]], num_classes: int) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": macro.family,
        "bn": {"momentum": macro.bn_momentum, "eps": macro.bn_eps},
        "first_conv": _conv_json(3, macro.stem_width, 3, 2, macro.stem_act, True),
        "blocks": blocks,
    }
    last = macro.units[-1].width
    if macro.final_expand_width is not None:
        cfg["final_expand_layer"] = _conv_json(
            last, macro.final_expand_width, 1, 1, macro.head_act, True
        )
        last = macro.final_expand_width
    cfg["feature_mix_layer"] = _conv_json(
        last, macro.feature_mix_width, 1, 1, macro.head_act, macro.feature_mix_bn
    )
    cfg["classifier"] = {
        "name": "LinearLayer",
        "in_features": macro.feature_mix_width,
        "out_features": num_classes,
        "bias": True,
        "use_bn": False,
        "act_func": None,
        "dropout_rate": _num(macro.dropout_rate),
        "ops_order": "weight_bn_act",
    }
    return cfg
