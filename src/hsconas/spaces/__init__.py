"""The built-in search spaces; importing this package registers them."""

from hsconas.spaces import fbnet, nb201
from hsconas.spaces import hsconas_space, ofa_resnet
from hsconas.spaces import ofa_mbv3, proxylessnas

__all__ = ["fbnet", "hsconas_space", "nb201", "ofa_mbv3", "ofa_resnet", "proxylessnas"]
