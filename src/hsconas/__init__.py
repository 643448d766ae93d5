"""hsconas: hardware-aware neural architecture search."""

from hsconas import spaces as _builtin_spaces  # noqa: F401  (registers the built-in spaces)
from hsconas.space import Architecture, SearchSpace, get_space, list_spaces

__version__ = "0.1.0"

__all__ = ["Architecture", "SearchSpace", "__version__", "get_space", "list_spaces"]
