"""The built-in search spaces; importing this package registers them."""

from hsconas.spaces import fbnet, nb201
from hsconas.spaces import hsconas_space, ofa_resnet

__all__ = ["fbnet", "hsconas_space", "nb201", "ofa_resnet"]
