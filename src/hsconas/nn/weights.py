"""Reading weight files: the one place that calls ``torch.load``, always with ``weights_only``.

A weight file comes from the user, so it is read with ``torch.load(weights_only=True)`` (tensors and
plain containers only, no code) and every failure becomes one :class:`CheckpointError` naming the
file and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hsconas.errors import CheckpointError, DataNotFoundError


def read_torch_file(path: str | os.PathLike[str], *, what: str = "weights file") -> Any:
    """The object saved in ``path``, loaded with ``torch.load(weights_only=True)`` onto the CPU.

    Raises:
        DataNotFoundError: ``path`` is not a file.
        CheckpointError: the file is corrupt, truncated, not a torch file, or holds objects other
            than tensors and plain containers.
    """
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"{what} not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        reason = " ".join(str(exc).split())
        if not reason or p.stat().st_size == 0:
            reason = "empty or truncated file"
        elif "weights only load failed" in reason.lower():
            reason = "corrupt, or holds objects other than tensors"
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise CheckpointError(
            f"{p}: cannot read as a {what}: {reason} (expected a torch.save file of tensors)"
        ) from None


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A ``state_dict`` saved with ``torch.save(model.state_dict(), path)``.

    Raises:
        DataNotFoundError: ``path`` is not a file.
        CheckpointError: the file cannot be read, or holds something other than a mapping of
            parameter names to tensors.
    """
    state = read_torch_file(path, what="state_dict file")
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(
            f"{path}: not a state_dict (expected a mapping of parameter names to tensors, "
            "as written by `hsconas model export --state-dict`)"
        )
    return dict(state)
