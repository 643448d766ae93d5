"""What every latency model is, and the one reader of every latency model file (no torch here).

Two kinds of model file exist, both versioned JSON (no pickles):

- ``hsconas-hw-model``: the HSCoNAS hardware model, a block LUT plus a learned correction
  (:class:`~hsconas.latency.hsconas.model.HSCoNASModel`, written by ``hsconas latency profile``);
- ``hsconas-latency-model``: a predictor learned from end-to-end measurements
  (:class:`~hsconas.latency.model_io.PredictorModel`, written by ``hsconas latency fit-table``).

:func:`load_latency_model` tells them apart and checks the space and device they describe.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hsconas.errors import DataNotFoundError, HsconasError
from hsconas.space import Architecture

__all__ = [
    "HW_MODEL_FORMAT",
    "PREDICTOR_FORMAT",
    "IncompatibleModelError",
    "LatencyModel",
    "ModelFileError",
    "file_digest",
    "load_latency_model",
    "read_model_json",
]

HW_MODEL_FORMAT = "hsconas-hw-model"
PREDICTOR_FORMAT = "hsconas-latency-model"


class ModelFileError(HsconasError, ValueError):
    """A latency model file that cannot be read, or that does not fit the space/device it is used with."""


class IncompatibleModelError(ModelFileError):
    """A latency model used with another space, device, backend or format than its own."""


@runtime_checkable
class LatencyModel(Protocol):
    """A fitted latency model of one device over one space."""

    @property
    def space(self) -> str:
        """Name of the space whose architectures the model predicts."""
        ...

    @property
    def device(self) -> str:
        """The device (setting) whose latency the model predicts."""
        ...

    def predict_ms(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted latency of each architecture, milliseconds."""
        ...

    def predict_with_uncertainty(
        self, archs: Sequence[Architecture]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(predicted latency, standard deviation), milliseconds."""
        ...


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex): identifies a model or checkpoint file in run settings."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_model_json(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The path and parsed JSON object of a latency model file of any kind.

    Raises:
        DataNotFoundError: the file does not exist.
        ModelFileError: the file is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"latency model file not found: {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{p}: not a JSON latency model file ({exc})") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{p}: not an hsconas latency model file (not a JSON object)")
    return p, doc


def load_latency_model(
    path: str | os.PathLike[str],
    *,
    space: str | None = None,
    device: str | None = None,
    fast: bool = False,
) -> LatencyModel:
    """Read a latency model file of either kind, checking its space and device.

    Args:
        path: an ``hsconas-hw-model`` file (``hsconas latency profile``) or an
            ``hsconas-latency-model`` file (``hsconas latency fit-table``).
        space: the space the caller will use it with (``None``: not checked).
        device: the device the caller asks for (``None``: the model's own).
        fast: an HSCoNAS model decomposes networks through the space's fast block listing
            (:class:`~hsconas.latency.hsconas.fast.FastHSCoNASModel`; same predictions).

    Raises:
        DataNotFoundError: no such file.
        ModelFileError: not a latency model file, a malformed one, or one of another space or
            device (the message names both).
    """
    p, doc = read_model_json(path)
    fmt = doc.get("format")
    if fmt == HW_MODEL_FORMAT:
        from hsconas.latency.hsconas.fast import FastHSCoNASModel
        from hsconas.latency.hsconas.model import HSCoNASModel

        cls = FastHSCoNASModel if fast else HSCoNASModel
        try:
            hw = cls.from_json(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{p}: malformed HSCoNAS latency model ({exc})") from None
        for what, mine, theirs in (("space", hw.space, space), ("device", hw.device, device)):
            if theirs is not None and theirs != mine:
                raise IncompatibleModelError(
                    f"{p} is an HSCoNAS latency model of {what} {mine!r} (space {hw.space!r}, "
                    f"device {hw.device!r}), not of {what} {theirs!r}"
                )
        return hw
    if fmt == PREDICTOR_FORMAT:
        from hsconas.latency.model_io import load_model

        return load_model(p, space=space, device=device)
    raise ModelFileError(
        f"{p}: not a latency model file, not an hsconas latency model (format {fmt!r}; expected {HW_MODEL_FORMAT!r} from "
        f"`hsconas latency profile` or {PREDICTOR_FORMAT!r} from `hsconas latency fit-table`)"
    )
