"""hsconas: hardware-aware neural architecture search."""

from hsconas.space import Architecture, SearchSpace, get_space, list_spaces

__version__ = "0.1.0"

__all__ = ["Architecture", "SearchSpace", "__version__", "get_space", "list_spaces"]
