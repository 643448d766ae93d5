"""Training checkpoints: the one file a run writes after every epoch, read back safely.

A checkpoint is ``OUT/checkpoint.pt``, written atomically with ``torch.save`` of tensors and plain
data (the model's config, weights, optimizer and RNG states, the metric history) and read with
``torch.load(weights_only=True)`` through :mod:`hsconas.nn.weights`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hsconas.errors import CheckpointError, DataNotFoundError
from hsconas.nn.supernet.base import Supernet
from hsconas.nn.weights import read_torch_file
from hsconas.space import Architecture

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "load_checkpoint",
    "load_trained",
    "model_config",
    "save_atomic",
]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "hsconas-checkpoint-v1"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train` with ``torch.load(weights_only=True)``.

    ``path`` may be the file or its folder.

    Raises:
        DataNotFoundError: if there is no checkpoint there.
        CheckpointError: if the file is not an hsconas checkpoint.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise DataNotFoundError(f"checkpoint not found: expected {p}")
    ckpt = read_torch_file(p, what="checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: not an hsconas checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def save_atomic(obj: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(obj), tmp)
    tmp.replace(path)


def model_config(
    model: nn.Module,
    arch: Architecture | None = None,
    build_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What :func:`load_trained` needs to rebuild ``model``: a supernet's config, or the space,
    canonical string and builder options of a standalone architecture."""
    if isinstance(model, Supernet):
        return {"kind": "supernet", **model.config()}
    if arch is None:
        raise ValueError("a standalone model needs its architecture to be checkpointed")
    from hsconas.space import get_space

    cfg: dict[str, Any] = {
        "kind": "standalone",
        "space": arch.space,
        "arch": get_space(arch.space).to_string(arch),
    }
    if build_options:
        cfg["build_options"] = dict(build_options)
    return cfg


def load_trained(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a checkpoint (supernet or standalone) with its weights.

    Returns:
        (model in eval mode, the checkpoint dict).
    """
    ckpt = load_checkpoint(path)
    cfg = dict(ckpt["model_config"])
    kind = cfg.pop("kind")
    model: nn.Module
    if kind == "supernet":
        from hsconas.nn.supernet import build_supernet

        model = build_supernet(cfg.pop("space"), **cfg)
    else:
        from hsconas.nn import build_model
        from hsconas.space import get_space

        arch = get_space(cfg["space"]).from_string(cfg["arch"])
        model = build_model(arch, **dict(cfg.get("build_options", {})))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
