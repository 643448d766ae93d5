"""The built-in search spaces; importing this package registers them."""

from hsconas.spaces import fbnet, hsconas_space, nb201, ofa_mbv3, ofa_resnet, proxylessnas

__all__ = ["fbnet", "hsconas_space", "nb201", "ofa_mbv3", "ofa_resnet", "proxylessnas"]
