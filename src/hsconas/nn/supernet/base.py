"""The supernet contract shared by every weight-sharing supernet."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from hsconas.space import Architecture, SearchSpace


class Supernet(nn.Module, abc.ABC):
    """One set of shared weights for every member of a search space.

    The architecture is an argument of :meth:`forward`; a supernet keeps no "active subnet" state,
    so one instance can run different members in turn (or in different threads in eval mode).

    Attributes:
        space: the search space whose members this supernet runs.
        build_options: keyword options of :func:`hsconas.nn.build_model` that give standalone
            networks with the same shapes (for example ``num_classes``).
    """

    space: SearchSpace
    build_options: dict[str, Any]

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        """Logits (N, num_classes) of member ``arch`` for images ``x`` (N, C, H, W)."""

    @abc.abstractmethod
    def subnet_state_dict(
        self, arch: Architecture, shapes: Mapping[str, torch.Size]
    ) -> dict[str, torch.Tensor]:
        """The inherited weights of ``arch`` under the standalone network's parameter names.

        Args:
            arch: a member of :attr:`space`.
            shapes: the standalone network's ``state_dict`` names and shapes.
        """

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly sampled member (single-path uniform sampling)."""
        return self.space.sample(rng)

    def largest(self) -> Architecture | None:
        """The widest member (for the sandwich rule), or ``None`` if the space has no order."""
        return None

    def smallest(self) -> Architecture | None:
        """The narrowest member (for the sandwich rule), or ``None`` if the space has no order."""
        return None

    def config(self) -> dict[str, Any]:
        """What :func:`hsconas.nn.supernet.build_supernet` needs to rebuild this supernet."""
        cfg: dict[str, Any] = {"space": self.space.name, **self.build_options}
        if self.space.is_restricted:
            cfg["restriction"] = {k: list(v) for k, v in self.space.restriction().items()}
        return cfg
