"""Framework-free search-space core (numpy only)."""

from hsconas.space.core import Architecture, Gene, SearchSpace, SeedLike, Value, as_generator
from hsconas.space.registry import get_space, list_spaces, register_space

__all__ = [
    "Architecture",
    "Gene",
    "SearchSpace",
    "SeedLike",
    "Value",
    "as_generator",
    "get_space",
    "list_spaces",
    "register_space",
]
