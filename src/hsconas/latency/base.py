"""What every latency model is, and the one reader of every latency model file (no torch here).

Two kinds of model file exist, both versioned JSON (no pickles):

- ``hsconas-hw-model``: the HSCoNAS hardware model, a block LUT plus a learned correction
  (:class:`~hsconas.latency.hsconas.model.HSCoNASModel`, written by ``hsconas latency profile``);
- ``hsconas-latency-model``: a predictor learned from end-to-end measurements
  (:class:`~hsconas.latency.model_io.PredictorModel`, written by ``hsconas latency fit-table``).

:func:`load_latency_model` tells them apart and checks the space and device they describe.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from hsconas.latency.model_file import (
    HW_MODEL_FORMAT,
    PREDICTOR_FORMAT,
    IncompatibleModelError,
    ModelFileError,
    file_digest,
    read_model_json,
)
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
