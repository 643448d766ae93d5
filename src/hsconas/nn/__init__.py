"""PyTorch side: blocks, builders (architecture -> nn.Module) and cost counting."""

from hsconas.nn import builders as _builtin_builders  # noqa: F401  (registers the built-in builders)
from hsconas.nn.counting import ModelCost, count_macs, count_params, model_cost
from hsconas.nn.registry import build_model, register_builder

__all__ = [
    "ModelCost",
    "build_model",
    "count_macs",
    "count_params",
    "model_cost",
    "register_builder",
]
