"""Weight-sharing supernets: one set of weights, the architecture is an argument of ``forward``."""

from __future__ import annotations

from typing import Any

from hsconas.nn.supernet.base import Supernet
from hsconas.nn.supernet.hsconas_supernet import HSCoNASSupernet
from hsconas.nn.supernet.nb201_supernet import NB201Supernet
from hsconas.nn.supernet.ofa_mbv3_supernet import (
    SUPPORTED_FAMILIES,
    ElasticMBConvSupernet,
    OFAMobileNetV3Supernet,
)
from hsconas.nn.supernet.ofa_resnet_supernet import OFAResNetSupernet
from hsconas.space import SearchSpace, get_space
from hsconas.spaces.hsconas_space import HSCoNASSpace
from hsconas.spaces.ofa_mbv3 import ElasticMBConvSpace
from hsconas.spaces.ofa_resnet import OFAResNetSpace

__all__ = [
    "ElasticMBConvSupernet",
    "HSCoNASSupernet",
    "NB201Supernet",
    "OFAMobileNetV3Supernet",
    "OFAResNetSupernet",
    "Supernet",
    "build_supernet",
    "supernet_spaces",
]


def supernet_spaces() -> tuple[str, ...]:
    """Names of the registered spaces that have a supernet."""
    return (
        "hsconas",
        "hsconas-cifar",
        "hsconas-digits",
        "nb201",
        "ofa-mbv3",
        "ofa-mbv3-w1.2",
        "ofa-resnet50",
        "proxylessnas",
    )


def build_supernet(space: str | SearchSpace, **options: Any) -> Supernet:
    """A freshly initialised supernet of ``space``.

    Args:
        space: a space or its registered name (see :func:`supernet_spaces`; possibly
            restricted).
        **options: supernet options (``num_classes``; for nb201 also ``channels`` and
            ``cells_per_stage``; for ``ofa-mbv3*``, ``proxylessnas`` and ``ofa-resnet50`` also
            ``dropout_rate`` and ``in_channels``); ``restriction`` (gene -> allowed choices)
            restricts the space as :meth:`SearchSpace.restrict` does (a shrunk space keeps the
            full-width weights).
            ``in_channels`` (image channels) is accepted by every space: the OFA-family
            supernets adapt their stem to it, the others must already take that many channels.

    Raises:
        NotImplementedError: for a space without a supernet.
        ValueError: if ``in_channels`` differs from the fixed input channels of the space.
    """
    sp = get_space(space) if isinstance(space, str) else space
    options.pop("space", None)
    restriction = options.pop("restriction", None)
    in_channels = options.pop("in_channels", None)
    if restriction:
        sp = sp.restrict(restriction)
    if isinstance(sp, ElasticMBConvSpace) and sp.macro.family in SUPPORTED_FAMILIES:
        if in_channels is not None:
            options["in_channels"] = int(in_channels)
        return ElasticMBConvSupernet(sp, **options)
    if isinstance(sp, OFAResNetSpace):
        if in_channels is not None:
            options["in_channels"] = int(in_channels)
        return OFAResNetSupernet(sp, **options)
    fixed = sp.in_channels if isinstance(sp, HSCoNASSpace) else 3
    if in_channels is not None and int(in_channels) != fixed:
        raise ValueError(
            f"the {sp.name} supernet takes {fixed}-channel images, not {in_channels}-channel ones"
        )
    if isinstance(sp, HSCoNASSpace):
        return HSCoNASSupernet(sp, **options)
    if sp.name == "nb201":
        return NB201Supernet(sp, **options)
    raise NotImplementedError(
        f"no supernet for space {sp.name!r}; supernets exist for: {', '.join(supernet_spaces())}"
    )
