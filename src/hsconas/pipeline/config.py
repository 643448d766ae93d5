"""The configuration of ``hsconas run``: loaded from YAML or TOML into the section dataclasses of
:mod:`.config_sections`, validated by :mod:`.config_validate`, and written back.

Every field is documented on its dataclass. Loading validates strictly and fails with a
:class:`ConfigError` whose one-line message names the field (``search.n_queries``) and the fix:
unknown fields, wrong types, out-of-range values, an unknown backend or space, a missing dataset
path. No torch here.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from hsconas.pipeline.config_sections import (
    DEFAULT_CONFIG_TEXT,
    BlocksConfig,
    ConfigError,
    DatasetConfig,
    DeviceConfig,
    FinalConfig,
    PipelineConfig,
    ProfileConfig,
    SearchConfig,
    SpaceConfig,
    SupernetConfig,
    TimingSection,
)
from hsconas.pipeline.config_validate import validate

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "BlocksConfig",
    "ConfigError",
    "DatasetConfig",
    "DeviceConfig",
    "FinalConfig",
    "PipelineConfig",
    "ProfileConfig",
    "SearchConfig",
    "SpaceConfig",
    "SupernetConfig",
    "TimingSection",
    "config_from_dict",
    "config_to_dict",
    "default_config",
    "load_config",
]


# ---------------------------------------------------------------------------------- parsing
def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a section (mapping)"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, str(tp)
    )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                continue
        raise _type_error(value, tp, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _type_error(value, tp, where)
        return _section(tp, value, where)  # type: ignore[arg-type]
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _type_error(value, tp, where)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(value, tp, where)
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _type_error(value, tp, where)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, tp, where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, tp, where)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _type_error(value, tp, where)
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {where}")


def _type_error(value: Any, tp: Any, where: str) -> ConfigError:
    return ConfigError(
        f"config field {where!r} must be {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__}); fix its value in the config file",
        field=where,
    )


def _section(cls: type[Any], doc: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in hints:
            import difflib

            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            section = f"section {where!r}" if where else "the top level"
            raise ConfigError(
                f"unknown config field {full!r}; {hint}fields of {section}: {', '.join(names)}",
                field=full,
            )
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


def config_from_dict(doc: Any, *, base_dir: Path | None = None) -> PipelineConfig:
    """Parse and validate a configuration mapping (see :func:`load_config`)."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(
            "the config file must hold a mapping of sections (run_dir:, device:, ...)"
        )
    cfg = _section(PipelineConfig, doc, "")
    return validate(cfg, base_dir=base_dir)


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) pipeline configuration.

    Args:
        path: the file; ``None`` gives the embedded default (:data:`DEFAULT_CONFIG_TEXT`).

    Raises:
        ConfigError: unreadable file, unknown format, or a field that fails validation.
    """
    import yaml

    if path is None:
        return config_from_dict(yaml.safe_load(DEFAULT_CONFIG_TEXT))
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} not found; check the --config path") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            doc: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml", ".json"):
            doc = yaml.safe_load(text)
        else:
            raise ConfigError(
                f"config file {str(p)!r}: unknown format {suffix!r}; use .yaml, .yml or .toml"
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {str(p)!r} is not valid {suffix[1:]}: {first}") from None
    return config_from_dict(doc, base_dir=p.resolve().parent)


def default_config() -> PipelineConfig:
    """The embedded default configuration (the demo)."""
    return load_config(None)


def config_to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    """A JSON/YAML-ready dict of every field (defaults included): the exact config of a run."""
    doc: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(cfg)))
    return doc
