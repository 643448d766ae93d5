"""Builder registry: one function per space turns an architecture into a standalone nn.Module."""

from __future__ import annotations

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


def _load_builtin_builders() -> None:
    import hsconas.nn.builders  # noqa: F401  (registers the built-in builders)


def build_model(arch: Architecture, **options: Any) -> nn.Module:
    """A freshly initialised standalone ``nn.Module`` for ``arch``.

    Args:
        arch: a valid architecture of a registered space.
        **options: builder options of the space (for example ``num_classes``).

    Raises:
        InvalidArchitectureError: if ``arch`` is not a member of its space.
    """
    _load_builtin_builders()
    space: SearchSpace = get_space(arch.space)
    space.validate(arch)
    try:
        builder = _BUILDERS[arch.space]
    except KeyError:
        raise NotImplementedError(
            f"no PyTorch builder registered for space {arch.space!r}"
        ) from None
    return builder(space, arch, **options)
