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

The shared layer schema lives in :mod:`hsconas.spaces.published_schema`, the per-family block
walks in :mod:`hsconas.spaces.published_ofa` and :mod:`hsconas.spaces.published_proxyless`; this
module holds the entry points (import, export, reading files). The modules are torch-free.
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
from hsconas.space.core import Architecture
from hsconas.space.registry import get_space
from hsconas.spaces.ofa_mbv3 import ElasticMBConvSpace
from hsconas.spaces.proxylessnas import ProxylessMacroSpace
from hsconas.spaces.published_ofa import _import_elastic
from hsconas.spaces.published_proxyless import _import_proxyless, _proxyless_blocks_json
from hsconas.spaces.published_schema import _block_json, _import_head, _Mismatch, _net_json

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
