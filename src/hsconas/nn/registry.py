"""Builder registry: one function per space turns an architecture into a standalone nn.Module."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from hsconas.space import Architecture, SearchSpace, get_space

Builder = Callable[..., nn.Module]
"""``builder(space, arch, **options) -> nn.Module``."""

_BUILDERS: dict[str, Builder] = {}


def register_builder(space_name: str) -> Callable[[Builder], Builder]:
    """Decorator registering the builder of the space called ``space_name``."""

    def wrap(fn: Builder) -> Builder:
        _BUILDERS[space_name] = fn
        return fn

    return wrap


def build_model(arch: Architecture, **options: Any) -> nn.Module:
    """A freshly initialised standalone ``nn.Module`` for ``arch``.

    Args:
        arch: a valid architecture of a registered space.
        **options: builder options of the space (for example ``num_classes``).

    Raises:
        InvalidArchitectureError: if ``arch`` is not a member of its space.
    """
    space: SearchSpace = get_space(arch.space)
    space.validate(arch)
    try:
        builder = _BUILDERS[arch.space]
    except KeyError:
        raise NotImplementedError(
            f"no PyTorch builder registered for space {arch.space!r}"
        ) from None
    _check_options(arch.space, builder, options)
    return builder(space, arch, **options)


def _check_options(space_name: str, builder: Builder, options: dict[str, Any]) -> None:
    """Raise TypeError naming the unknown options and the ones ``builder`` accepts."""
    params = list(inspect.signature(builder).parameters.values())[2:]  # after (space, arch)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(
            f"{space_name} builder got unknown options: {', '.join(unknown)}; "
            f"it accepts: {', '.join(known) or 'none'}"
        )
