"""Import and export of published Once-for-All / ProxylessNAS ``net.config`` network descriptions.

A ``net.config`` (the JSON written by the OFA and ProxylessNAS code) lists a network layer by layer:
``first_conv``, ``blocks`` (each a ``MobileInvertedResidualBlock`` with a ``mobile_inverted_conv``
and a ``shortcut``), the head layers and ``classifier``. :func:`import_net_config` finds the space
the network belongs to and maps every block to genes:

- ``MobileNetV3`` configs go to ``ofa-mbv3`` (stem 16) or ``ofa-mbv3-w1.2`` (stem 24);
- ``ProxylessNASNets`` configs go to Once-for-All's ``proxylessnas`` (w1.3) or, when they have the
  widths of a published ProxylessNAS network (and its 21 slots with ``ZeroLayer``s), to
  ``proxylessnas-{mobile,mobile14,cpu,gpu}``.

Resolution. A ``net.config`` has no input size; it comes from the ``image_size`` argument, from
an ``image_size`` beside ``net_config`` in a wrapping document, or defaults to 224. Some published
OFA subnets run at sizes outside the search range (228..260 > 224). The imported
:class:`ImportedNet` therefore keeps two numbers: ``arch``'s ``resolution`` gene holds the image
size when it is a choice and otherwise the nearest choice, while ``image_size`` keeps the published
size. The built networks pool globally before the classifier, so parameters do not depend on the
size; count MACs (and measure latency) at ``image_size`` to compare with published figures.

:func:`export_net_config` is the inverse: it writes the ``net.config`` of an architecture in the
schema of the published files (OFA schema for the elastic spaces, the original ProxylessNAS schema,
with ``ZeroLayer`` slots, for the ``proxylessnas-<net>`` spaces). Exporting a published network's
imported architecture gives back the published ``net.config`` exactly.

This module is torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsconas.errors import (
    ConfigImportError,
    DataFormatError,
    DataNotFoundError,
    InvalidArchitectureError,
)
from hsconas.space.core import Architecture, Value
from hsconas.space.registry import get_space
from hsconas.spaces.ofa_mbv3 import BlockSpec, ElasticMBConvSpace, MBNetMacro, first_block
from hsconas.spaces.proxylessnas import SKIP, ProxylessMacroSpace, parse_op

DEFAULT_IMAGE_SIZE = 224
"""Input size assumed for a bare ``net.config`` imported without ``image_size``."""

FAMILY_SPACES: dict[str, tuple[str, ...]] = {
    "MobileNetV3": ("ofa-mbv3", "ofa-mbv3-w1.2"),
    "ProxylessNASNets": (
        "proxylessnas",
        "proxylessnas-mobile",
        "proxylessnas-mobile14",
        "proxylessnas-cpu",
        "proxylessnas-gpu",
    ),
}
"""The spaces a ``net.config`` of each network family may belong to, tried in this order."""


@dataclass(frozen=True)
class ImportedNet:
    """A published network mapped onto a search space.

    Attributes:
        arch: the architecture; its ``resolution`` gene (elastic spaces) is ``image_size`` when
            that is a choice, else the nearest choice.
        image_size: the input size the network was published at, in pixels; count MACs and
            measure latency at this size.
        num_classes: classifier outputs of the published network.
    """

    arch: Architecture
    image_size: int
    num_classes: int = 1000

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(3, image_size, image_size)."""
        return (3, self.image_size, self.image_size)


class _Mismatch(Exception):
    """A config that does not fit one candidate space; ``progress`` ranks how far it got."""

    def __init__(self, progress: int, message: str) -> None:
        self.progress = progress
        super().__init__(message)


# ---------------------------------------------------------------------- import


def import_net_config(config: Mapping[str, Any], *, image_size: int | None = None) -> ImportedNet:
    """Map a published ``net.config`` onto the architecture of its search space.

    Args:
        config: a ``net.config`` object, or a document ``{"net_config": ..., "image_size": ...}``
            (the form of one line of ``ofa_specialized_net_configs.jsonl``).
        image_size: the input size in pixels; overrides the document's ``image_size``;
            defaults to :data:`DEFAULT_IMAGE_SIZE`.

    Raises:
        ConfigImportError: if the config is malformed or fits no space; the message names the
            block and what was unexpected.
    """
    if not isinstance(config, Mapping):
        raise ConfigImportError(f"a net config must be a JSON object, got {type(config).__name__}")
    if "net_config" in config:
        if image_size is None and config.get("image_size") is not None:
            image_size = _as_int(config["image_size"], "image_size")
        config = config["net_config"]
        if not isinstance(config, Mapping):
            raise ConfigImportError("'net_config' must be a JSON object")
    size = DEFAULT_IMAGE_SIZE if image_size is None else _as_int(image_size, "image_size")
    if size <= 0:
        raise ConfigImportError(f"image_size must be positive, got {size}")
    family = config.get("name")
    if family not in FAMILY_SPACES:
        raise ConfigImportError(
            f"unknown network family {family!r} in the config's 'name'; "
            f"expected one of: {', '.join(FAMILY_SPACES)}"
        )
    failures: list[tuple[int, str, str]] = []
    for space_name in FAMILY_SPACES[family]:
        space = get_space(space_name)
        try:
            if isinstance(space, ElasticMBConvSpace):
                values = _import_elastic(space, config, size)
            elif isinstance(space, ProxylessMacroSpace):
                values = _import_proxyless(space, config)
            else:  # pragma: no cover - FAMILY_SPACES lists only these two kinds
                continue
            num_classes = _import_head(space.macro, config)
            arch = space.make(values)
        except _Mismatch as exc:
            failures.append((exc.progress, space_name, str(exc)))
            continue
        except InvalidArchitectureError as exc:
            failures.append((10_000, space_name, str(exc)))
            continue
        return ImportedNet(arch, size, num_classes)
    _, best_space, best_msg = max(failures, key=lambda f: f[0])
    tried = ", ".join(FAMILY_SPACES[family])
    raise ConfigImportError(
        f"{family} config fits none of the spaces {tried}; closest is {best_space}: {best_msg}"
    )


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigImportError(f"{what} must be an integer, got {value!r}")
    return int(value)


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


def _check_first(block: Mapping[str, Any], first: BlockSpec, *, ofa_schema: bool) -> None:
    conv = _field(block, "mobile_inverted_conv", "block 0", 1)
    _expect(_field(conv, "kernel_size", "block 0", 1), 3, "block 0 kernel_size", 1)
    _expect(_field(conv, "expand_ratio", "block 0", 1), 1, "block 0 expand_ratio", 1)
    _check_block(block, 0, first, ofa_schema=ofa_schema)


def _check_choice(space: ElasticMBConvSpace, gene_name: str, value: object, index: int) -> None:
    gene = space.gene(gene_name)
    if value not in gene.choices:
        shown = ", ".join(str(c) for c in gene.choices)
        raise _Mismatch(
            index,
            f"block {index} ({gene_name}) has {gene_name.rsplit('.', 1)[1]} {value!r}; "
            f"{space.name} allows {shown}",
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


def _nearest(choices: tuple[Value, ...], size: int) -> Value:
    """The choice closest to ``size`` (the larger one on a tie)."""
    return min(choices, key=lambda c: (abs(float(c) - size), -float(c)))


# ---------------------------------------------------------------------- export


def export_net_config(
    arch: Architecture, *, image_size: int | None = None, num_classes: int = 1000
) -> dict[str, Any]:
    """The ``net.config`` of ``arch`` in the published schema of its space.

    Args:
        arch: an architecture of ``ofa-mbv3``, ``ofa-mbv3-w1.2``, ``proxylessnas`` or a
            ``proxylessnas-<net>`` space.
        image_size: if given, the result is wrapped as ``{"image_size": ..., "net_config": ...}``
            (the form :func:`import_net_config` and :func:`load_net_configs` read), so that the
            input size travels with the network.
        num_classes: classifier outputs.

    Raises:
        ConfigImportError: if the architecture's space has no ``net.config`` form.
        InvalidArchitectureError: if ``arch`` is not a member of its space.
    """
    space = get_space(arch.space)
    space.validate(arch)
    if isinstance(space, ElasticMBConvSpace):
        blocks = [_block_json(b, ofa_schema=True) for b in space.block_specs(arch)]
    elif isinstance(space, ProxylessMacroSpace):
        blocks = _proxyless_blocks_json(space, arch)
    else:
        raise ConfigImportError(
            f"space {arch.space!r} has no net.config form; "
            f"use one of: {', '.join(s for v in FAMILY_SPACES.values() for s in v)}"
        )
    cfg = _net_json(space.macro, blocks, num_classes)
    if image_size is None:
        return cfg
    return {"image_size": int(image_size), "net_config": cfg}


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


# ---------------------------------------------------------------------- files


def load_net_configs(path: str | Path) -> list[tuple[str, ImportedNet]]:
    """Read published networks from a file.

    Accepted forms: a single ``net.config`` (``.config`` or ``.json``); a JSON object with
    ``net_config`` (and optionally ``image_size`` and ``net_id``); a ``.jsonl`` file with one
    ``{"net_id", "image_size", "net_config"}`` object per line.

    Returns:
        ``(name, imported)`` pairs in file order; the name is ``net_id`` or the file stem.

    Raises:
        DataNotFoundError: if ``path`` does not exist.
        DataFormatError: if the file is not JSON of one of these forms.
        ConfigImportError: if a network fits no space (the message starts with the path).
    """
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"net config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{p}: cannot read net config file: {exc}") from exc
    docs: list[tuple[str, Any]] = []
    if p.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{p}:{lineno}: not valid JSON: {exc}") from None
            if not isinstance(doc, dict) or "net_config" not in doc:
                raise DataFormatError(
                    f"{p}:{lineno}: each line must be an object with 'net_config' "
                    f"(and 'net_id', 'image_size')"
                )
            docs.append((f"{p}:{lineno}", doc))
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{p}: not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or not ("net_config" in doc or "blocks" in doc):
            raise DataFormatError(
                f"{p}: expected a net.config object (with 'blocks') or an object with 'net_config'"
            )
        docs.append((str(p), doc))
    out: list[tuple[str, ImportedNet]] = []
    for where, doc in docs:
        name = str(doc.get("net_id", p.stem))
        try:
            out.append((name, import_net_config(doc)))
        except ConfigImportError as exc:
            raise ConfigImportError(f"{where}: {exc}") from exc
    return out
