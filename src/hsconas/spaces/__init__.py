"""The built-in search spaces; importing this package registers them."""

from hsconas.spaces import fbnet, nb201

__all__ = ["fbnet", "nb201"]
