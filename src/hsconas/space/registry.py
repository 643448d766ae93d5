"""Registry of search spaces by name (the timm habit: register a factory, create by name).

Concrete spaces register themselves by importing this module (:mod:`hsconas.spaces`); the registry
never imports them. Importing :mod:`hsconas` registers the built-in spaces.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from hsconas.errors import UnknownSpaceError
from hsconas.space.core import SearchSpace

_FACTORIES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str) -> Callable[[Callable[[], SearchSpace]], Callable[[], SearchSpace]]:
    """Decorator registering a zero-argument factory that returns the space called ``name``."""

    def wrap(factory: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
        if name in _FACTORIES:
            raise ValueError(f"search space {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return wrap


def list_spaces() -> list[str]:
    """Names of every registered space, sorted."""
    return sorted(_FACTORIES)


@cache
def get_space(name: str) -> SearchSpace:
    """The space registered as ``name`` (one shared instance per name; spaces are immutable)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownSpaceError(name, sorted(_FACTORIES)) from None
    space = factory()
    if space.name != name:
        raise RuntimeError(f"factory for {name!r} built a space called {space.name!r}")
    return space
