"""Extract a member of a supernet as a standalone network with its inherited weights."""

from __future__ import annotations

from torch import nn

from hsconas.nn.registry import build_model
from hsconas.nn.supernet.base import Supernet
from hsconas.space import Architecture


def extract_subnet(supernet: Supernet, arch: Architecture) -> nn.Module:
    """The standalone network of ``arch`` (from :func:`hsconas.nn.build_model`) carrying the
    supernet's weights and batch-norm statistics for that member.

    The result is an ordinary module (exportable to ONNX, trainable on its own) that is
    independent of the supernet: it owns copies of the weights. In eval mode its output equals
    ``supernet(x, arch)``. It is returned in eval mode.

    Raises:
        InvalidArchitectureError: if ``arch`` is not a member of the supernet's space.
    """
    supernet.space.validate(arch)
    model = build_model(arch, **supernet.build_options)
    shapes = {name: t.shape for name, t in model.state_dict().items()}
    model.load_state_dict(supernet.subnet_state_dict(arch, shapes), strict=True)
    model.to(next(supernet.parameters()).device)
    return model.eval()
