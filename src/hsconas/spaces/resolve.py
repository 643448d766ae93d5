"""Resolve user-given *sources* of architectures into validated architectures (torch-free).

A source is what a user types to name one or more networks:

- ``SPACE:ARCH_STRING``: a canonical string of a registered space, split on the first colon only
  (``nb201:|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``);
- a path to an architecture JSON file: one :meth:`SearchSpace.to_json` object, a list of them, or
  JSON Lines with one per line (extra keys such as ``image_size`` are allowed);
- a path to published network configurations (OFA ``net.config``, ``.config`` / ``.json`` with a
  ``net_config`` key, or ``.jsonl`` of ``{net_id, image_size, net_config}``), read through
  :func:`hsconas.spaces.published.load_net_configs`.

Every failure is an :class:`~hsconas.errors.HsconasError` whose message says what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsconas.errors import ArchitectureFormatError, DataNotFoundError, InvalidArchitectureError
from hsconas.space import Architecture, get_space, list_spaces

__all__ = [
    "ResolvedSource",
    "arch_input_shape",
    "input_shape_of",
    "load_arch_file",
    "load_config_file",
    "parse_arch_string",
    "resolve_source",
]


@dataclass(frozen=True)
class ResolvedSource:
    """One architecture named by a source.

    Attributes:
        name: what to call it in output: the source string, ``file.json[3]`` or a published net id.
        arch: the validated architecture.
        image_size: input resolution in pixels if the source fixes it (published configs, or an
            ``image_size`` key in a JSON file); ``None`` means the space's default input shape.
        num_classes: classifier outputs the source fixes (published configs, a ``num_classes``
            key in a JSON file); ``None`` means the builder's default.
    """

    name: str
    arch: Architecture
    image_size: int | None = None
    num_classes: int | None = None


def parse_arch_string(text: str) -> Architecture:
    """Parse ``SPACE:ARCH_STRING`` (split on the first colon) into a validated architecture.

    Raises:
        UnknownSpaceError: if ``SPACE`` is not registered (the message lists the known spaces).
        InvalidArchitectureError: if the string is not a member of the space (the message names the
            layer, the bad value and the allowed choices).
        ArchitectureFormatError: if there is no colon.
    """
    space_name, sep, arch_text = text.partition(":")
    if not sep:
        raise ArchitectureFormatError(
            f"cannot read {text!r}: expected SPACE:ARCH_STRING (spaces: {', '.join(list_spaces())})"
            " or the path of an existing architecture file",
            space="",
        )
    space = get_space(space_name.strip())
    return space.from_string(arch_text)


def _read_json(path: Path) -> Any:
    """The JSON value of ``path``, or the list of its lines' values if it is JSON Lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataNotFoundError(f"file not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ArchitectureFormatError(f"{path}: not a JSON text file ({exc})", space="") from None
    if not text.strip():
        raise ArchitectureFormatError(f"{path}: file is empty", space="")
    try:
        return json.loads(text)
    except json.JSONDecodeError as whole_error:
        docs = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                where = whole_error if lineno == 1 else exc
                raise ArchitectureFormatError(
                    f"{path}: malformed JSON (line {lineno}): {where.msg}", space=""
                ) from None
        return docs


def _is_net_config(doc: object) -> bool:
    """Whether a JSON value looks like a published network configuration (OFA/Proxyless)."""
    if isinstance(doc, list):
        return bool(doc) and all(_is_net_config(d) for d in doc)
    return isinstance(doc, Mapping) and ("net_config" in doc or "first_conv" in doc)


def _arch_from_doc(doc: object, where: str) -> ResolvedSource:
    if not isinstance(doc, Mapping):
        raise ArchitectureFormatError(
            f"{where}: expected an architecture object with 'space' and 'genes' or 'arch', "
            f"got {type(doc).__name__}",
            space="",
        )
    if "space" not in doc:
        raise ArchitectureFormatError(
            f"{where}: architecture JSON needs a 'space' key (one of: {', '.join(list_spaces())})",
            space="",
        )
    space = get_space(str(doc["space"]))
    try:
        arch = space.from_json(doc)
    except InvalidArchitectureError as exc:
        raise type(exc)(
            f"{where}: {exc}", space=exc.space, gene=exc.gene, value=exc.value, allowed=exc.allowed
        ) from None
    image_size = doc.get("image_size")
    if image_size is not None and (not isinstance(image_size, int) or image_size <= 0):
        raise ArchitectureFormatError(
            f"{where}: 'image_size' must be a positive integer, got {image_size!r}",
            space=space.name,
        )
    return ResolvedSource(name=where, arch=arch, image_size=image_size)


def load_arch_file(path: str | Path) -> list[ResolvedSource]:
    """Architectures of a JSON file: one ``to_json`` object, a list of them, or JSON Lines.

    Names are the file name, with ``[i]`` appended when the file holds several architectures.

    Raises:
        DataNotFoundError: if the file does not exist.
        ArchitectureFormatError: if it is not JSON or not architecture objects.
        InvalidArchitectureError: if an architecture is not a member of its space.
    """
    path = Path(path)
    doc = _read_json(path)
    if isinstance(doc, list):
        if not doc:
            raise ArchitectureFormatError(f"{path}: the list of architectures is empty", space="")
        return [_arch_from_doc(d, f"{path}[{i}]") for i, d in enumerate(doc)]
    return [_arch_from_doc(doc, str(path))]


def load_config_file(path: str | Path) -> list[ResolvedSource]:
    """Published network configurations of a file, as architectures with their image sizes.

    Raises:
        DataNotFoundError: if the file does not exist.
        ConfigImportError: if a configuration cannot be mapped onto a registered space.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"file not found: {path}")
    from hsconas.spaces.published import load_net_configs

    return [
        ResolvedSource(
            name=name, arch=net.arch, image_size=net.image_size, num_classes=net.num_classes
        )
        for name, net in load_net_configs(path)
    ]


def resolve_source(source: str) -> list[ResolvedSource]:
    """All architectures named by one source (see the module docstring for the forms).

    Text starting with a registered space name and a colon is an architecture string; otherwise
    an existing path is read as a file (architecture JSON, or published configs if its content
    looks like one). Anything else is an unknown space or a missing file.
    """
    if not source.strip():
        raise ArchitectureFormatError(
            "empty architecture: give SPACE:ARCH_STRING (see `hsconas spaces sample`) or a file",
            space="",
        )
    space_name, sep, _ = source.partition(":")
    if sep and space_name.strip() in list_spaces():
        return [ResolvedSource(name=source, arch=parse_arch_string(source))]
    path = Path(source)
    if _is_file(path):
        if path.suffix == ".config":
            return load_config_file(path)
        doc = _read_json(path)
        if _is_net_config(doc):
            return load_config_file(path)
        return load_arch_file(path)
    if path.suffix.lower() in {".json", ".jsonl", ".config"} or "/" in source or not sep:
        if _exists(path):
            raise ArchitectureFormatError(f"{source}: is not a file", space="")
        raise DataNotFoundError(
            f"file not found: {source} (a source is SPACE:ARCH_STRING or an architecture file)"
        )
    return [ResolvedSource(name=source, arch=parse_arch_string(source))]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, ...
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def arch_input_shape(arch: Architecture, image_size: int | None = None) -> tuple[int, int, int]:
    """(channels, height, width) of ``arch``'s input: the space's, with ``image_size`` pixels if
    given."""
    c, h, w = get_space(arch.space).input_shape(arch)
    if image_size is None:
        return (c, h, w)
    return (c, int(image_size), int(image_size))


def input_shape_of(src: ResolvedSource) -> tuple[int, int, int]:
    """(channels, height, width) of one input of ``src``: its image size, else the space default."""
    return arch_input_shape(src.arch, src.image_size)
